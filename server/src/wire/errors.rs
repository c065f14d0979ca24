//! Errors to Postgres `ErrorResponse`s.
//!
//! DataFusion reports unknown tables, unknown columns and type errors as plan or schema
//! errors; this module maps each to the SQLSTATE Postgres uses, keeping DataFusion's message
//! (it names the offending object) and adding a hint where one helps.

use datafusion::common::SchemaError;
use datafusion::error::DataFusionError;
use pgwire::error::{ErrorInfo, PgWireError};
use weir_executor::ExecError;
use weir_planner::{sqlstate, SqlError};
use weir_storage::StorageError;

/// Message fields are NUL-terminated on the wire; a NUL inside one would corrupt the message.
fn wire_text(s: &str) -> String {
    s.replace('\0', "\\0")
}

pub fn to_error_info(e: &SqlError) -> ErrorInfo {
    let mut info = ErrorInfo::new("ERROR".to_string(), e.code.to_string(), wire_text(&e.message));
    info.detail = e.details.detail.as_deref().map(wire_text);
    info.hint = e.details.hint.as_deref().map(wire_text);
    info.position = e.details.position.map(|p| p.to_string());
    info.where_context = e.details.context.as_deref().map(wire_text);
    info
}

pub fn to_pgwire(e: SqlError) -> PgWireError {
    PgWireError::UserError(Box::new(to_error_info(&e)))
}

pub fn from_storage(e: StorageError) -> SqlError {
    match e {
        StorageError::UniqueViolation { constraint, detail } => SqlError::new(
            sqlstate::UNIQUE_VIOLATION,
            format!("duplicate key value violates unique constraint \"{constraint}\""),
        )
        .with_detail(detail),
        StorageError::NotNullViolation { .. } => SqlError::new(sqlstate::NOT_NULL_VIOLATION, e.to_string()),
        StorageError::TableExists(_) => SqlError::new(sqlstate::DUPLICATE_TABLE, e.to_string()),
        StorageError::TableNotFound(_) => SqlError::new(sqlstate::UNDEFINED_TABLE, e.to_string()),
        StorageError::Invalid(m) => SqlError::new(sqlstate::FEATURE_NOT_SUPPORTED, m),
        other => SqlError::new(sqlstate::IO_ERROR, other.to_string()),
    }
}

/// An error of the streaming runtime or a connector, by its variant.
pub fn from_exec(e: ExecError) -> SqlError {
    match e {
        ExecError::PermissionDenied(m) => SqlError::new(sqlstate::INSUFFICIENT_PRIVILEGE, m),
        ExecError::Connector(m) => SqlError::new(sqlstate::INVALID_PARAMETER_VALUE, m),
        ExecError::Storage(e) => from_storage(e),
        ExecError::DataFusion(e) => from_datafusion(e),
        other => SqlError::internal(other.to_string()),
    }
}

pub fn from_datafusion(e: DataFusionError) -> SqlError {
    match e {
        DataFusionError::Context(_, inner) => from_datafusion(*inner),
        DataFusionError::Diagnostic(_, inner) => from_datafusion(*inner),
        DataFusionError::Shared(inner) => {
            from_datafusion(DataFusionError::External(Box::new(SharedError(inner.to_string()))))
        }
        DataFusionError::External(inner) => match inner.downcast::<StorageError>() {
            Ok(storage) => from_storage(*storage),
            Err(inner) => match inner.downcast::<SqlError>() {
                Ok(sql) => *sql,
                Err(inner) => match inner.downcast::<DataFusionError>() {
                    Ok(df) => from_datafusion(*df),
                    Err(other) => classify_message(&other.to_string()),
                },
            },
        },
        DataFusionError::SQL(parser_error, _) => {
            SqlError::new(sqlstate::SYNTAX_ERROR, format!("syntax error: {parser_error}"))
        }
        DataFusionError::SchemaError(schema_error, _) => match *schema_error {
            SchemaError::FieldNotFound { ref field, .. } => {
                SqlError::new(sqlstate::UNDEFINED_COLUMN, format!("column \"{}\" does not exist", field.name))
            }
            SchemaError::AmbiguousReference { ref field } => SqlError::new(
                sqlstate::AMBIGUOUS_COLUMN,
                format!("column reference \"{}\" is ambiguous", field.name),
            ),
            other => SqlError::new(sqlstate::SYNTAX_ERROR, other.to_string()),
        },
        DataFusionError::NotImplemented(m) => {
            SqlError::new(sqlstate::FEATURE_NOT_SUPPORTED, format!("{m} is not supported by Weir yet"))
        }
        DataFusionError::ResourcesExhausted(m) => SqlError::new("53200", m),
        DataFusionError::ArrowError(arrow_error, _) => classify_arrow(&arrow_error.to_string()),
        DataFusionError::Plan(m) | DataFusionError::Execution(m) => classify_message(&m),
        other => classify_message(&other.to_string()),
    }
}

#[derive(Debug)]
struct SharedError(String);
impl std::fmt::Display for SharedError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for SharedError {}

fn classify_arrow(m: &str) -> SqlError {
    if m.contains("Divide by zero") || m.contains("divide by zero") {
        SqlError::new(sqlstate::DIVISION_BY_ZERO, "division by zero")
    } else if m.contains("Cannot cast") || m.contains("Parser error") || m.contains("Cast error") {
        SqlError::new(sqlstate::INVALID_TEXT_REPRESENTATION, clean(m))
    } else if m.contains("overflow") {
        SqlError::new(sqlstate::NUMERIC_VALUE_OUT_OF_RANGE, clean(m))
    } else {
        SqlError::new(sqlstate::DATA_EXCEPTION, clean(m))
    }
}

fn classify_message(m: &str) -> SqlError {
    let lower = m.to_ascii_lowercase();
    if let Some(name) = quoted_after(m, "table '").or_else(|| quoted_after(m, "table \"")) {
        if lower.contains("not found") || lower.contains("does not exist") {
            return SqlError::new(sqlstate::UNDEFINED_TABLE, format!("relation \"{name}\" does not exist"));
        }
    }
    if lower.contains("invalid function")
        || lower.contains("no function matches")
        || lower.contains("function") && lower.contains("not found")
    {
        return SqlError::new(sqlstate::UNDEFINED_FUNCTION, clean(m))
            .with_hint("No function matches the given name and argument types.");
    }
    if lower.contains("cannot coerce arithmetic") || lower.contains("no operator") {
        return SqlError::new(sqlstate::UNDEFINED_FUNCTION, format!("operator does not exist: {}", clean(m)))
            .with_hint("No operator matches the given name and argument types. You might need to add explicit type casts.");
    }
    if lower.contains("cannot infer common")
        || lower.contains("coercion")
        || lower.contains("cannot be cast")
        || lower.contains("does not support")
        || lower.contains("unsupported argument")
        || lower.contains("type mismatch")
        || lower.contains("expected type")
        || lower.contains("but type")
        || lower.contains("data type")
        || lower.contains("signature")
    {
        return SqlError::new(sqlstate::DATATYPE_MISMATCH, clean(m));
    }
    if lower.contains("divide by zero") || lower.contains("division by zero") {
        return SqlError::new(sqlstate::DIVISION_BY_ZERO, "division by zero");
    }
    if lower.contains("cast")
        || lower.contains("parser error")
        || lower.contains("invalid") && lower.contains("value")
    {
        return SqlError::new(sqlstate::INVALID_TEXT_REPRESENTATION, clean(m));
    }
    if lower.contains("not implemented") || lower.contains("unsupported") {
        return SqlError::new(sqlstate::FEATURE_NOT_SUPPORTED, clean(m));
    }
    if lower.contains("arrow error") {
        return classify_arrow(m);
    }
    SqlError::new(sqlstate::SYNTAX_ERROR, clean(m))
}

fn quoted_after(m: &str, prefix: &str) -> Option<String> {
    let start = m.find(prefix)? + prefix.len();
    let quote = prefix.chars().last()?;
    let end = m[start..].find(quote)? + start;
    let name = &m[start..end];
    Some(name.rsplit('.').next().unwrap_or(name).to_string())
}

/// DataFusion prefixes messages with "Error during planning:" and the like; drop that.
fn clean(m: &str) -> String {
    let prefixes = [
        "Error during planning: ",
        "Execution error: ",
        "This feature is not implemented: ",
        "Arrow error: ",
        "Invalid argument error: ",
    ];
    let mut s = m.trim();
    loop {
        let before = s;
        for p in prefixes {
            if let Some(rest) = s.strip_prefix(p) {
                s = rest;
            }
        }
        if s == before {
            break;
        }
    }
    s.lines().next().unwrap_or(s).to_string()
}
