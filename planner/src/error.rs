//! `SqlError`: an error as a Postgres client sees it — SQLSTATE, message, optional hint and
//! cursor position.

use std::fmt;

pub type SqlResult<T> = Result<T, SqlError>;

/// SQLSTATE codes Weir emits (see the Postgres "Errors and Messages" appendix).
pub mod sqlstate {
    pub const SYNTAX_ERROR: &str = "42601";
    pub const UNDEFINED_TABLE: &str = "42P01";
    pub const UNDEFINED_COLUMN: &str = "42703";
    pub const UNDEFINED_FUNCTION: &str = "42883";
    pub const UNDEFINED_OBJECT: &str = "42704";
    pub const DATATYPE_MISMATCH: &str = "42804";
    pub const DUPLICATE_TABLE: &str = "42P07";
    pub const DUPLICATE_COLUMN: &str = "42701";
    pub const INVALID_TABLE_DEFINITION: &str = "42P16";
    pub const AMBIGUOUS_COLUMN: &str = "42702";
    pub const UNIQUE_VIOLATION: &str = "23505";
    pub const NOT_NULL_VIOLATION: &str = "23502";
    pub const INVALID_CATALOG_NAME: &str = "3D000";
    pub const INVALID_SCHEMA_NAME: &str = "3F000";
    pub const FEATURE_NOT_SUPPORTED: &str = "0A000";
    pub const INVALID_TEXT_REPRESENTATION: &str = "22P02";
    pub const DATA_EXCEPTION: &str = "22000";
    pub const DATETIME_FIELD_OVERFLOW: &str = "22008";
    pub const SUBSTRING_ERROR: &str = "22011";
    pub const DIVISION_BY_ZERO: &str = "22012";
    pub const NUMERIC_VALUE_OUT_OF_RANGE: &str = "22003";
    pub const BAD_COPY_FILE_FORMAT: &str = "22P04";
    pub const UNDEFINED_PARAMETER: &str = "42704";
    pub const INVALID_PARAMETER_VALUE: &str = "22023";
    pub const QUERY_CANCELED: &str = "57014";
    pub const INSUFFICIENT_PRIVILEGE: &str = "42501";
    pub const SYNTAX_ERROR_OR_ACCESS_RULE_VIOLATION: &str = "42000";
    pub const DISK_FULL: &str = "53100";
    pub const OUT_OF_MEMORY: &str = "53200";
    pub const DATA_CORRUPTED: &str = "XX001";
    pub const INTERNAL_ERROR: &str = "XX000";
    pub const IO_ERROR: &str = "58030";
    pub const PROTOCOL_VIOLATION: &str = "08P01";
    pub const INVALID_PASSWORD: &str = "28P01";
    pub const WRONG_OBJECT_TYPE: &str = "42809";
    pub const INVALID_COLUMN_REFERENCE: &str = "42P10";
    pub const DEPENDENT_OBJECTS_STILL_EXIST: &str = "2BP01";
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqlError {
    pub code: &'static str,
    pub message: String,
    /// The optional fields, boxed so `Result<_, SqlError>` stays small.
    pub details: Box<ErrorDetails>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ErrorDetails {
    pub detail: Option<String>,
    pub hint: Option<String>,
    /// 1-based character offset into the statement text, as Postgres reports it.
    pub position: Option<usize>,
    /// Where the error happened, e.g. `COPY orders, line 3, column amount: "x"`.
    pub context: Option<String>,
}

impl SqlError {
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self { code, message: message.into(), details: Box::default() }
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.details.hint = Some(hint.into());
        self
    }

    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.details.detail = Some(detail.into());
        self
    }

    pub fn with_context(mut self, context: impl Into<String>) -> Self {
        self.details.context = Some(context.into());
        self
    }

    pub fn with_position(mut self, position: usize) -> Self {
        self.details.position = Some(position);
        self
    }

    pub fn syntax(message: impl Into<String>) -> Self {
        Self::new(sqlstate::SYNTAX_ERROR, message)
    }

    pub fn unsupported(what: impl fmt::Display) -> Self {
        Self::new(sqlstate::FEATURE_NOT_SUPPORTED, format!("{what} is not supported by Weir yet"))
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(sqlstate::INTERNAL_ERROR, message)
    }
}

impl fmt::Display for SqlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.message, self.code)
    }
}

impl std::error::Error for SqlError {}

/// DataFusion errors reaching the planner after binding are Weir's own bugs, except for
/// features DataFusion reports as not implemented.
impl From<datafusion::error::DataFusionError> for SqlError {
    fn from(e: datafusion::error::DataFusionError) -> Self {
        match e {
            datafusion::error::DataFusionError::NotImplemented(what) => SqlError::unsupported(what),
            other => SqlError::internal(other.to_string()),
        }
    }
}
