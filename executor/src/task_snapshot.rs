//! The file a task writes for a checkpoint: the snapshots of its chain's operators.
//!
//! Layout: the magic `WEIRTS01`, then per stateful operator its index in the chain, its
//! `meta` bytes and, when it has deferred state, that state as a chunked stream (`u32`
//! length, bytes, ..., a zero length). Chunking makes every operator's stream
//! self-delimiting whatever it writes, so a restore can never read into the next section,
//! and the writer never needs to know a length in advance. `u32::MAX` ends the file.
//! Integers are little-endian.

use std::io::{Read, Write};

use crate::error::{ExecError, ExecResult};
use crate::operators::OperatorSnapshot;

const MAGIC: &[u8; 8] = b"WEIRTS01";
const END: u32 = u32::MAX;
const CHUNK: usize = 1 << 20;

fn io(e: std::io::Error) -> ExecError {
    ExecError::Internal(format!("task snapshot: {e}"))
}

fn corrupt(what: &str) -> ExecError {
    ExecError::Internal(format!("task snapshot is corrupt: {what}"))
}

/// Writes the snapshots of a chain's operators (operator index, snapshot) to `out`.
pub fn write_task_snapshot(sections: Vec<(u32, OperatorSnapshot)>, out: &mut dyn Write) -> ExecResult<()> {
    out.write_all(MAGIC).map_err(io)?;
    for (index, snapshot) in sections {
        out.write_all(&index.to_le_bytes()).map_err(io)?;
        let meta_len = u32::try_from(snapshot.meta.len()).map_err(|_| corrupt("operator meta too large"))?;
        out.write_all(&meta_len.to_le_bytes()).map_err(io)?;
        out.write_all(&snapshot.meta).map_err(io)?;
        match snapshot.deferred {
            None => out.write_all(&[0]).map_err(io)?,
            Some(deferred) => {
                out.write_all(&[1]).map_err(io)?;
                let mut chunks = ChunkWriter { out, buffer: Vec::with_capacity(CHUNK) };
                deferred(&mut chunks)?;
                chunks.finish()?;
            }
        }
    }
    out.write_all(&END.to_le_bytes()).map_err(io)
}

/// Reads a task snapshot, calling `restore(index, meta, deferred)` for every section. The
/// deferred reader yields exactly what the operator wrote; what it leaves unread is skipped.
pub fn read_task_snapshot(
    input: &mut dyn Read,
    mut restore: impl FnMut(u32, &[u8], Option<&mut dyn Read>) -> ExecResult<()>,
) -> ExecResult<()> {
    let mut magic = [0u8; 8];
    input.read_exact(&mut magic).map_err(io)?;
    if &magic != MAGIC {
        return Err(corrupt("bad magic"));
    }
    loop {
        let index = read_u32(input)?;
        if index == END {
            return Ok(());
        }
        let meta_len = read_u32(input)? as usize;
        let mut meta = vec![0u8; meta_len];
        input.read_exact(&mut meta).map_err(io)?;
        let mut flag = [0u8];
        input.read_exact(&mut flag).map_err(io)?;
        match flag[0] {
            0 => restore(index, &meta, None)?,
            1 => {
                let mut chunks = ChunkReader { input: &mut *input, remaining: 0, done: false };
                restore(index, &meta, Some(&mut chunks))?;
                std::io::copy(&mut chunks, &mut std::io::sink()).map_err(io)?;
            }
            _ => return Err(corrupt("bad section flag")),
        }
    }
}

fn read_u32(input: &mut dyn Read) -> ExecResult<u32> {
    let mut bytes = [0u8; 4];
    input.read_exact(&mut bytes).map_err(io)?;
    Ok(u32::from_le_bytes(bytes))
}

struct ChunkWriter<'a> {
    out: &'a mut dyn Write,
    buffer: Vec<u8>,
}

impl ChunkWriter<'_> {
    fn flush_chunk(&mut self) -> std::io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        // The buffer never exceeds CHUNK, so the length fits.
        self.out.write_all(&(self.buffer.len() as u32).to_le_bytes())?;
        self.out.write_all(&self.buffer)?;
        self.buffer.clear();
        Ok(())
    }

    fn finish(mut self) -> ExecResult<()> {
        self.flush_chunk().map_err(io)?;
        self.out.write_all(&0u32.to_le_bytes()).map_err(io)
    }
}

impl Write for ChunkWriter<'_> {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        let n = data.len().min(CHUNK - self.buffer.len());
        self.buffer.extend_from_slice(&data[..n]);
        if self.buffer.len() == CHUNK {
            self.flush_chunk()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

struct ChunkReader<'a> {
    input: &'a mut dyn Read,
    remaining: usize,
    done: bool,
}

impl Read for ChunkReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.done || buf.is_empty() {
            return Ok(0);
        }
        if self.remaining == 0 {
            let mut len = [0u8; 4];
            self.input.read_exact(&mut len)?;
            self.remaining = u32::from_le_bytes(len) as usize;
            if self.remaining == 0 {
                self.done = true;
                return Ok(0);
            }
        }
        let n = buf.len().min(self.remaining);
        let read = self.input.read(&mut buf[..n])?;
        if read == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        self.remaining -= read;
        Ok(read)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deferred(data: Vec<u8>) -> OperatorSnapshot {
        OperatorSnapshot {
            meta: vec![7],
            deferred: Some(Box::new(move |out: &mut dyn Write| out.write_all(&data).map_err(io))),
            delta: false,
        }
    }

    #[test]
    fn sections_round_trip_and_unread_state_is_skipped() {
        let big: Vec<u8> = (0..3 * CHUNK + 17).map(|i| (i % 251) as u8).collect();
        let sections = vec![
            (0, OperatorSnapshot { meta: b"watermark".to_vec(), deferred: None, delta: false }),
            (2, deferred(big.clone())),
            (3, deferred(b"tail".to_vec())),
        ];
        let mut file = Vec::new();
        write_task_snapshot(sections, &mut file).unwrap();
        let mut seen = Vec::new();
        read_task_snapshot(&mut file.as_slice(), |index, meta, state| {
            let mut data = Vec::new();
            if let Some(state) = state {
                // Operator 2 reads only a prefix; the rest must be skipped, not misread.
                match index {
                    2 => state.take(10).read_to_end(&mut data).map(|_| ()).map_err(io)?,
                    _ => state.read_to_end(&mut data).map(|_| ()).map_err(io)?,
                }
            }
            seen.push((index, meta.to_vec(), data));
            Ok(())
        })
        .unwrap();
        assert_eq!(seen[0], (0, b"watermark".to_vec(), vec![]));
        assert_eq!(seen[1], (2, vec![7], big[..10].to_vec()));
        assert_eq!(seen[2], (3, vec![7], b"tail".to_vec()));
    }

    #[test]
    fn a_truncated_file_is_an_error() {
        let mut file = Vec::new();
        write_task_snapshot(vec![(1, deferred(vec![1; 100]))], &mut file).unwrap();
        file.truncate(file.len() - 30);
        let err = read_task_snapshot(&mut file.as_slice(), |_, _, state| {
            let mut data = Vec::new();
            if let Some(state) = state {
                state.read_to_end(&mut data).map_err(io)?;
            }
            Ok(())
        })
        .unwrap_err();
        assert!(err.to_string().contains("task snapshot"), "{err}");
    }
}
