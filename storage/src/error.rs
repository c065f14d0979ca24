//! Storage errors. Each variant carries its SQLSTATE ([`StorageError::sqlstate`]), so the
//! server never guesses a code from message text: constraint violations are `23505`/`23502`,
//! I/O failures `58030`, corrupt data `XX001`, anything else a bug (`XX000`).

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_follow_the_variant() {
        assert_eq!(StorageError::CorruptCatalog("x".into()).sqlstate(), "XX001");
        assert_eq!(StorageError::Invalid("anything at all, even 'syntax'".into()).sqlstate(), "XX000");
        assert_eq!(StorageError::TableNotFound("t".into()).sqlstate(), "42P01");
        let codec = StorageError::Codec(arrow::error::ArrowError::ParseError("bad".into()));
        assert_eq!(codec.sqlstate(), "XX001");
    }
}
