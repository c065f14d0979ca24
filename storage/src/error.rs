//! Storage errors. Each variant carries its SQLSTATE ([`StorageError::sqlstate`]), so the
//! server never guesses a code from message text: constraint violations are `23505`/`23502`,
//! I/O failures `58030` (`53100` when the disk is full), corrupt data `XX001`, anything else
//! a bug (`XX000`).

use thiserror::Error;

pub type StorageResult<T> = Result<T, StorageError>;

#[derive(Debug, Error)]
pub enum StorageError {
    #[error("storage I/O error: {0}")]
    Rocks(#[from] rocksdb::Error),

    #[error("could not encode or decode rows: {0}")]
    Codec(#[from] arrow::error::ArrowError),

    #[error("corrupt catalog entry: {0}")]
    CorruptCatalog(String),

    #[error("duplicate key value violates unique constraint \"{constraint}\"")]
    UniqueViolation { constraint: String, detail: String },

    #[error("null value in column \"{column}\" of relation \"{table}\" violates not-null constraint")]
    NotNullViolation { table: String, column: String },

    #[error("value too long for type {type_name}")]
    StringTooLong { type_name: String },

    #[error("relation \"{0}\" already exists")]
    TableExists(String),

    #[error("relation \"{0}\" does not exist")]
    TableNotFound(String),

    #[error("{0}")]
    Invalid(String),
}

impl StorageError {
    /// The SQLSTATE a client gets for this error.
    pub fn sqlstate(&self) -> &'static str {
        match self {
            StorageError::Rocks(e) => match e.kind() {
                rocksdb::ErrorKind::Corruption => "XX001",
                rocksdb::ErrorKind::IOError if is_no_space(e.as_ref()) => "53100",
                rocksdb::ErrorKind::IOError
                | rocksdb::ErrorKind::Busy
                | rocksdb::ErrorKind::TimedOut
                | rocksdb::ErrorKind::TryAgain
                | rocksdb::ErrorKind::Incomplete
                | rocksdb::ErrorKind::ShutdownInProgress => "58030",
                _ => "XX000",
            },
            // Rows Weir wrote that it cannot read back, or a catalog entry it cannot parse.
            StorageError::Codec(_) | StorageError::CorruptCatalog(_) => "XX001",
            StorageError::UniqueViolation { .. } => "23505",
            StorageError::NotNullViolation { .. } => "23502",
            StorageError::StringTooLong { .. } => "22001",
            StorageError::TableExists(_) => "42P07",
            StorageError::TableNotFound(_) => "42P01",
            StorageError::Invalid(_) => "XX000",
        }
    }
}

/// Whether a RocksDB I/O error is its `NoSpace` status. rust-rocksdb hands on only the
/// status text, whose subcode part RocksDB words as below (`status.cc`); the WAL append that
/// hit the full disk and the stopped database's later refusals both carry it. RocksDB
/// resumes by itself once the disk has room for a memtable again (its SstFileManager polls).
fn is_no_space(status: &str) -> bool {
    status.contains("No space left on device")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_disk_is_told_apart() {
        assert!(is_no_space(
            "IO error: No space left on device: While appending to file: /d/rocksdb/000004.log: No space left on device"
        ));
        assert!(!is_no_space("IO error: Permission denied"));
    }

    #[test]
    fn codes_follow_the_variant() {
        assert_eq!(StorageError::CorruptCatalog("x".into()).sqlstate(), "XX001");
        assert_eq!(StorageError::Invalid("anything at all, even 'syntax'".into()).sqlstate(), "XX000");
        assert_eq!(StorageError::TableNotFound("t".into()).sqlstate(), "42P01");
        let codec = StorageError::Codec(arrow::error::ArrowError::ParseError("bad".into()));
        assert_eq!(codec.sqlstate(), "XX001");
    }
}
