//! A partition's rows in a checkpoint snapshot.
//!
//! Format: for every row in order, its `u32` length, its row-format bytes and its `i64`
//! multiplicity (little-endian), then `u32::MAX` as the end mark. Rows are written as they
//! are stored, so restoring needs no schema and gives back exactly the map that was captured.

use std::io::{Read, Write};
use std::sync::Arc;

use super::ViewRows;

/// Writes `rows` in the checkpoint format.
pub fn write_rows(rows: &ViewRows, out: &mut dyn Write) -> std::io::Result<()> {
    let mut out = std::io::BufWriter::new(out);
    for (row, count) in rows.iter() {
        let len = u32::try_from(row.len()).map_err(|_| std::io::Error::other("row too large"))?;
        out.write_all(&len.to_le_bytes())?;
        out.write_all(row)?;
        out.write_all(&count.to_le_bytes())?;
    }
    out.write_all(&u32::MAX.to_le_bytes())?;
    out.flush()
}

/// Reads rows [`write_rows`] wrote.
pub fn read_rows(input: &mut dyn Read) -> std::io::Result<ViewRows> {
    let mut input = std::io::BufReader::new(input);
    let mut rows = ViewRows::new();
    loop {
        let mut len = [0u8; 4];
        input.read_exact(&mut len)?;
        let len = u32::from_le_bytes(len);
        if len == u32::MAX {
            return Ok(rows);
        }
        let mut row = vec![0u8; len as usize];
        input.read_exact(&mut row)?;
        let mut count = [0u8; 8];
        input.read_exact(&mut count)?;
        rows.insert(Arc::from(row), i64::from_le_bytes(count));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_round_trip_and_truncation_is_an_error() {
        let rows: ViewRows = [(&b"a"[..], 1), (b"bc", -2), (b"", 3)]
            .into_iter()
            .map(|(k, n)| (Arc::<[u8]>::from(k), n))
            .collect();
        let mut file = Vec::new();
        write_rows(&rows, &mut file).unwrap();
        assert_eq!(file.len(), 3 * (4 + 8) + 3 + 4);
        assert_eq!(read_rows(&mut file.as_slice()).unwrap(), rows);
        assert!(read_rows(&mut &file[..file.len() - 1]).is_err());
    }
}
