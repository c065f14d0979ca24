//! Reading the little-endian encodings operators write into their checkpoint snapshots.
//!
//! Every reader fails on short input instead of panicking, and a length prefix never
//! allocates more than the input really holds, so a corrupt snapshot is an error, not a
//! crash or a gigabyte allocation. The callers turn `None` and I/O errors into their own
//! "state is corrupt" messages.

use std::io::Read;

/// Takes `n` bytes off the front of `input`; `None` when it is shorter.
pub fn take<'a>(input: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
    if input.len() < n {
        return None;
    }
    let (head, rest) = input.split_at(n);
    *input = rest;
    Some(head)
}

pub fn take_u32(input: &mut &[u8]) -> Option<u32> {
    take(input, 4).and_then(|b| b.try_into().ok()).map(u32::from_le_bytes)
}

pub fn take_i64(input: &mut &[u8]) -> Option<i64> {
    take(input, 8).and_then(|b| b.try_into().ok()).map(i64::from_le_bytes)
}

pub fn read_u8(input: &mut impl Read) -> std::io::Result<u8> {
    let mut byte = [0u8];
    input.read_exact(&mut byte)?;
    Ok(byte[0])
}

pub fn read_u64(input: &mut impl Read) -> std::io::Result<u64> {
    let mut bytes = [0u8; 8];
    input.read_exact(&mut bytes)?;
    Ok(u64::from_le_bytes(bytes))
}

/// Reads a `u32`-length prefixed byte string into `buf` (replacing its contents). Reads
/// through `take`, so a corrupt length fails as truncated input.
pub fn read_bytes(input: &mut impl Read, buf: &mut Vec<u8>) -> std::io::Result<()> {
    let mut len = [0u8; 4];
    input.read_exact(&mut len)?;
    let len = u64::from(u32::from_le_bytes(len));
    buf.clear();
    input.take(len).read_to_end(buf)?;
    if buf.len() as u64 != len {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_input_is_none_or_an_error() {
        let mut meta: &[u8] = &[1, 0, 0, 0, 9];
        assert_eq!(take_u32(&mut meta), Some(1));
        assert_eq!(take_i64(&mut meta), None);
        let mut buf = Vec::new();
        // A length of 4 GiB over 2 bytes of input.
        let mut input: &[u8] = &[0xff, 0xff, 0xff, 0xff, 1, 2];
        assert!(read_bytes(&mut input, &mut buf).is_err());
        let mut input: &[u8] = &[2, 0, 0, 0, 7, 8];
        read_bytes(&mut input, &mut buf).unwrap();
        assert_eq!(buf, [7, 8]);
    }
}
