//! Storage errors. Constraint violations are their own variants so the server can map them to
//! the right SQLSTATE (`23505`, `23502`) without looking at message text.

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

    #[error("relation \"{0}\" already exists")]
    TableExists(String),

    #[error("relation \"{0}\" does not exist")]
    TableNotFound(String),

    #[error("{0}")]
    Invalid(String),
}
