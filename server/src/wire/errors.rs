//! Errors to Postgres `ErrorResponse`s.
//!
//! Each error is mapped by its type and variant: Weir's own errors carry their SQLSTATE
//! (`StorageError::sqlstate`, `ExecError::sqlstate`, `SqlError::code`), Arrow and DataFusion
//! errors are mapped by variant here. Only DataFusion's plan and execution errors, which
//! DataFusion reports as bare strings (unknown tables and functions, type errors), are told
//! apart by their wording, keeping DataFusion's message (it names the offending object) and
//! adding a hint where one helps. What is not recognised is never a syntax error: `42000`
//! for a planning error, `XX000` (internal error: likely a bug) for anything else.

use arrow::datatypes::DataType;
use arrow::error::ArrowError;
use datafusion::common::SchemaError;
use datafusion::error::DataFusionError;
use pgwire::error::{ErrorInfo, PgWireError};
use weir_executor::error::{arrow_sqlstate, out_of_range_message};
use weir_executor::ExecError;
use weir_plan::catalog::ColumnType;
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
    let code = e.sqlstate();
    match e {
        StorageError::UniqueViolation { constraint, detail } => {
            SqlError::new(code, format!("duplicate key value violates unique constraint \"{constraint}\""))
                .with_detail(detail)
        }
        other => SqlError::new(code, other.to_string()),
    }
}

/// An error of the streaming runtime or a connector, by its variant.
pub fn from_exec(e: ExecError) -> SqlError {
    match e {
        ExecError::Storage(e) => from_storage(e),
        ExecError::DataFusion(e) => from_datafusion(e),
        ExecError::Arrow(e) => from_arrow(e),
        ExecError::InOperator { source, operator, epoch } => {
            let context = format!("operator {operator} (epoch {epoch})");
            from_exec(*source).with_context(context)
        }
        // The job failed with an error that carried no SQLSTATE (one of DataFusion's bare
        // strings, reported by the task as text): read the text as for any such error.
        ExecError::JobFailed { reason, sqlstate: None } => {
            let code = classify_plan_message(&reason).map_or(sqlstate::INTERNAL_ERROR, |e| e.code);
            SqlError::new(code, format!("the view's job failed: {reason}"))
        }
        other => {
            let code = other.sqlstate().unwrap_or(sqlstate::INTERNAL_ERROR);
            SqlError::new(code, other.to_string())
        }
    }
}

/// Arrow errors by variant ([`arrow_sqlstate`]: bad input data is a `22xxx` data exception,
/// I/O is `58030`), anything else is a bug (`XX000`).
pub fn from_arrow(e: ArrowError) -> SqlError {
    match e {
        ArrowError::DivideByZero => SqlError::new(sqlstate::DIVISION_BY_ZERO, "division by zero"),
        // Postgres' own words (`bigint out of range`), without Arrow's prefix.
        ArrowError::ArithmeticOverflow(message) => {
            SqlError::new(sqlstate::NUMERIC_VALUE_OUT_OF_RANGE, clean(&message))
        }
        ArrowError::ExternalError(inner) => from_external(inner),
        // Overflows Arrow has no variant for, in Postgres' words.
        ArrowError::InvalidArgumentError(message)
        | ArrowError::ComputeError(message)
        | ArrowError::CastError(message)
            if out_of_range_message(&message).is_some() =>
        {
            SqlError::new(
                sqlstate::NUMERIC_VALUE_OUT_OF_RANGE,
                out_of_range_message(&message).unwrap_or_default(),
            )
        }
        other => {
            let code = arrow_sqlstate(&other).unwrap_or(sqlstate::INTERNAL_ERROR);
            SqlError::new(code, clean(&other.to_string()))
        }
    }
}

/// A boxed error of unknown type: recognised by downcasting, never by its text.
fn from_external(inner: Box<dyn std::error::Error + Send + Sync>) -> SqlError {
    let inner = match inner.downcast::<SqlError>() {
        Ok(sql) => return *sql,
        Err(inner) => inner,
    };
    let inner = match inner.downcast::<StorageError>() {
        Ok(storage) => return from_storage(*storage),
        Err(inner) => inner,
    };
    let inner = match inner.downcast::<ExecError>() {
        Ok(exec) => return from_exec(*exec),
        Err(inner) => inner,
    };
    let inner = match inner.downcast::<DataFusionError>() {
        Ok(df) => return from_datafusion(*df),
        Err(inner) => inner,
    };
    let inner = match inner.downcast::<ArrowError>() {
        Ok(arrow) => return from_arrow(*arrow),
        Err(inner) => inner,
    };
    match inner.downcast::<std::io::Error>() {
        Ok(io) => from_io(&io),
        Err(other) => SqlError::internal(other.to_string()),
    }
}

/// An I/O error: `53100` when the disk is full (a client can retry once space is freed),
/// `58030` otherwise.
pub fn from_io(e: &std::io::Error) -> SqlError {
    let code =
        if e.kind() == std::io::ErrorKind::StorageFull { sqlstate::DISK_FULL } else { sqlstate::IO_ERROR };
    SqlError::new(code, e.to_string())
}

/// DataFusion errors by variant. Only DataFusion's planning and execution errors, which it
/// reports as bare strings, are told apart by their text ([`classify_plan_message`]); a
/// message that is not recognised is `42000` for a planning error and `XX000` (a bug) for
/// an execution error, never a syntax error.
pub fn from_datafusion(e: DataFusionError) -> SqlError {
    match e {
        DataFusionError::Context(_, inner) => from_datafusion(*inner),
        DataFusionError::Diagnostic(_, inner) => from_datafusion(*inner),
        DataFusionError::Shared(inner) => match std::sync::Arc::try_unwrap(inner) {
            Ok(inner) => from_datafusion(inner),
            Err(shared) => shared_error(&shared),
        },
        DataFusionError::External(inner) => from_external(inner),
        // Several errors planning one statement (a type error in two expressions): the
        // first, as Postgres reports the first error it meets.
        DataFusionError::Collection(errors) => match errors.into_iter().next() {
            Some(first) => from_datafusion(first),
            None => SqlError::internal("an empty collection of errors"),
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
            SchemaError::DuplicateQualifiedField { .. } | SchemaError::DuplicateUnqualifiedField { .. } => {
                SqlError::new(sqlstate::DUPLICATE_COLUMN, schema_error.to_string())
            }
        },
        // DataFusion's message may already say so ("Operator -> is not yet supported").
        DataFusionError::NotImplemented(m)
            if m.contains("not supported") || m.contains("not yet supported") =>
        {
            SqlError::new(sqlstate::FEATURE_NOT_SUPPORTED, m)
        }
        DataFusionError::NotImplemented(m) => {
            SqlError::new(sqlstate::FEATURE_NOT_SUPPORTED, format!("{m} is not supported by Weir yet"))
        }
        DataFusionError::ResourcesExhausted(m) => {
            SqlError::new(sqlstate::OUT_OF_MEMORY, m).with_hint(crate::query_memory::HINT)
        }
        DataFusionError::ArrowError(arrow_error, _) => from_arrow(*arrow_error),
        DataFusionError::ParquetError(e) => SqlError::new(sqlstate::DATA_EXCEPTION, e.to_string()),
        DataFusionError::IoError(e) => from_io(&e),
        DataFusionError::ObjectStore(e) => SqlError::new(sqlstate::IO_ERROR, e.to_string()),
        DataFusionError::Plan(m) => classify_plan_message(&m)
            .unwrap_or_else(|| SqlError::new(sqlstate::SYNTAX_ERROR_OR_ACCESS_RULE_VIOLATION, clean(&m))),
        DataFusionError::Execution(m) => {
            classify_plan_message(&m).unwrap_or_else(|| SqlError::internal(clean(&m)))
        }
        other => SqlError::internal(clean(&other.to_string())),
    }
}

/// A DataFusion error shared by several consumers (it cannot be moved out): its text is all
/// there is, reported as a bug unless DataFusion's text says what it is.
fn shared_error(e: &DataFusionError) -> SqlError {
    if let Some(error) = shared_cause(e) {
        return error;
    }
    let m = e.to_string();
    classify_plan_message(&m).unwrap_or_else(|| SqlError::internal(clean(&m)))
}

/// The error inside a shared DataFusion error (one several partitions report), by the
/// variant of Weir's or Arrow's error it wraps: a shared error cannot be moved out, so
/// this reads it by reference. `None` when it wraps neither.
fn shared_cause(e: &DataFusionError) -> Option<SqlError> {
    match e {
        DataFusionError::Context(_, inner) | DataFusionError::Diagnostic(_, inner) => shared_cause(inner),
        DataFusionError::Shared(inner) => shared_cause(inner),
        DataFusionError::External(inner) => {
            if let Some(exec) = inner.downcast_ref::<ExecError>() {
                let code = exec.sqlstate().filter(|code| *code != sqlstate::INTERNAL_ERROR)?;
                return Some(SqlError::new(code, exec.to_string()));
            }
            inner.downcast_ref::<DataFusionError>().and_then(shared_cause)
        }
        DataFusionError::ArrowError(arrow, _) => match arrow.as_ref() {
            ArrowError::DivideByZero => Some(SqlError::new(sqlstate::DIVISION_BY_ZERO, "division by zero")),
            ArrowError::ArithmeticOverflow(message) => {
                Some(SqlError::new(sqlstate::NUMERIC_VALUE_OUT_OF_RANGE, clean(message)))
            }
            other => {
                let message = clean(&other.to_string());
                classify_plan_message(&message)
                    .or_else(|| arrow_sqlstate(other).map(|code| SqlError::new(code, message)))
            }
        },
        _ => None,
    }
}

/// DataFusion's plan and execution errors carry only a message: the kinds Postgres
/// distinguishes are recognised by DataFusion's wording. `None` when not recognised.
fn classify_plan_message(m: &str) -> Option<SqlError> {
    let lower = m.to_ascii_lowercase();
    if let Some(error) = no_common_type(m) {
        return Some(error);
    }
    if let Some(name) = quoted_after(m, "table '").or_else(|| quoted_after(m, "table \"")) {
        if lower.contains("not found") || lower.contains("does not exist") {
            return Some(SqlError::new(
                sqlstate::UNDEFINED_TABLE,
                format!("relation \"{name}\" does not exist"),
            ));
        }
    }
    if lower.contains("invalid function")
        || lower.contains("no function matches")
        || lower.contains("function") && lower.contains("not found")
    {
        return Some(
            SqlError::new(sqlstate::UNDEFINED_FUNCTION, clean(m))
                .with_hint("No function matches the given name and argument types."),
        );
    }
    if lower.contains("cannot coerce arithmetic") || lower.contains("no operator") {
        return Some(SqlError::new(sqlstate::UNDEFINED_FUNCTION, format!("operator does not exist: {}", clean(m)))
            .with_hint("No operator matches the given name and argument types. You might need to add explicit type casts."));
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
        return Some(SqlError::new(sqlstate::DATATYPE_MISMATCH, clean(m)));
    }
    if lower.contains("divide by zero") || lower.contains("division by zero") {
        return Some(SqlError::new(sqlstate::DIVISION_BY_ZERO, "division by zero"));
    }
    // DataFusion's substr with a negative length (found by the SQL fuzzer, was XX000).
    if lower.contains("negative count not allowed") {
        return Some(SqlError::new(sqlstate::SUBSTRING_ERROR, "negative substring length not allowed"));
    }
    // Integer overflow DataFusion reports as a bare string (same).
    if lower.contains("arithmetic overflow") {
        return Some(SqlError::new(sqlstate::NUMERIC_VALUE_OUT_OF_RANGE, "integer out of range"));
    }
    // abs() of the smallest integer, a decimal too wide for its precision (same).
    if let Some(message) = out_of_range_message(m) {
        return Some(SqlError::new(sqlstate::NUMERIC_VALUE_OUT_OF_RANGE, message));
    }
    // date_trunc and interval arithmetic beyond the nanosecond timestamp range (same).
    if lower.contains("timestamp") && lower.contains("out of range") {
        return Some(SqlError::new(sqlstate::DATETIME_FIELD_OVERFLOW, "timestamp out of range"));
    }
    if lower.contains("cast")
        || lower.contains("parser error")
        || lower.contains("invalid") && lower.contains("value")
    {
        return Some(SqlError::new(sqlstate::INVALID_TEXT_REPRESENTATION, clean(m)));
    }
    if lower.contains("not implemented") || lower.contains("unsupported") {
        return Some(SqlError::new(sqlstate::FEATURE_NOT_SUPPORTED, clean(m)));
    }
    None
}

/// COALESCE, GREATEST, LEAST and CASE whose arguments have no common type are Postgres'
/// `42804` "COALESCE types boolean and text cannot be matched", naming the first two types
/// that do not match (for CASE, Postgres compares the ELSE branch first). DataFusion says
/// "Function 'coalesce' user-defined coercion failed with: … 'coalesce(Boolean, Utf8)'" and
/// "Failed to coerce then (Boolean) and else (Utf8) to common types in CASE WHEN expression".
fn no_common_type(m: &str) -> Option<SqlError> {
    let (construct, types) = if m.contains("user-defined coercion failed") {
        let name = quoted_after(m, "Function '")?;
        if !["coalesce", "greatest", "least"].contains(&name.as_str()) {
            return None;
        }
        let call = format!("'{name}(");
        let start = m.find(&call)? + call.len();
        let end = m[start..].find(")'")? + start;
        (name.to_ascii_uppercase(), m[start..end].split(", ").map(str::to_string).collect::<Vec<_>>())
    } else if m.contains("to common types in CASE WHEN expression") {
        let listed = |prefix: &str| {
            let start = m.find(prefix)? + prefix.len();
            let end = m[start..].find(')')? + start;
            Some(m[start..end].split(", ").map(str::to_string).collect::<Vec<_>>())
        };
        let mut types = listed("else (").filter(|t| t.as_slice() != ["None"]).unwrap_or_default();
        types.extend(listed("then (")?);
        ("CASE".to_string(), types)
    } else {
        return None;
    };
    let types: Vec<ColumnType> = types
        .iter()
        .filter(|t| t.as_str() != "Null")
        .filter_map(|t| t.parse::<DataType>().ok())
        .map(|t| ColumnType::from_arrow(&t))
        .collect();
    let first = types.first()?;
    let other = types.iter().find(|t| type_category(t) != type_category(first))?;
    Some(SqlError::new(
        sqlstate::DATATYPE_MISMATCH,
        format!("{construct} types {} and {} cannot be matched", pg_type_name(first), pg_type_name(other)),
    ))
}

/// Postgres' type categories (`pg_type.typcategory`): types of one category have a common type.
pub(crate) fn type_category(t: &ColumnType) -> char {
    match t {
        ColumnType::Boolean => 'B',
        ColumnType::Int2 | ColumnType::Int4 | ColumnType::Int8 => 'N',
        ColumnType::Float4 | ColumnType::Float8 | ColumnType::Numeric { .. } => 'N',
        ColumnType::Text | ColumnType::Varchar { .. } => 'S',
        ColumnType::Date | ColumnType::Timestamp { .. } | ColumnType::Timestamptz { .. } => 'D',
        ColumnType::Time { .. } | ColumnType::Interval { .. } => 'T',
        ColumnType::Bytea | ColumnType::Json | ColumnType::Jsonb => 'U',
    }
}

/// A type's name without its modifier, as Postgres names types in these messages.
pub(crate) fn pg_type_name(t: &ColumnType) -> String {
    match t {
        ColumnType::Numeric { .. } => "numeric".into(),
        ColumnType::Varchar { .. } => "character varying".into(),
        ColumnType::Time { .. } => "time without time zone".into(),
        ColumnType::Timestamp { .. } => "timestamp without time zone".into(),
        ColumnType::Timestamptz { .. } => "timestamp with time zone".into(),
        ColumnType::Interval { .. } => "interval".into(),
        other => other.pg_display_name(),
    }
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
        "Parser error: ",
        "Not yet implemented: ",
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

#[cfg(test)]
mod tests {
    use super::*;

    fn code_of(e: DataFusionError) -> &'static str {
        from_datafusion(e).code
    }

    #[derive(Debug)]
    struct Opaque(&'static str);
    impl std::fmt::Display for Opaque {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0)
        }
    }
    impl std::error::Error for Opaque {}

    #[test]
    fn unknown_errors_are_internal_not_syntax_errors() {
        assert_eq!(code_of(DataFusionError::External(Box::new(Opaque("something broke")))), "XX000");
        assert_eq!(code_of(DataFusionError::Execution("something broke".into())), "XX000");
        assert_eq!(code_of(DataFusionError::Internal("a bug".into())), "XX000");
        assert_eq!(from_exec(ExecError::Internal("invalid value in a cast".into())).code, "XX000");
        // A planning error DataFusion words in a way not recognised is still not a syntax error.
        assert_eq!(code_of(DataFusionError::Plan("something unexpected".into())), "42000");
    }

    #[test]
    fn data_errors_the_sql_fuzzer_found_are_not_internal() {
        let substr = DataFusionError::Execution("negative count not allowed: -1".into());
        assert_eq!(from_datafusion(substr).message, "negative substring length not allowed");
        let trunc = DataFusionError::Execution(
            "Timestamp -9223372036000000000 out of range after truncating to day".into(),
        );
        assert_eq!(code_of(trunc), "22008");
        let shifted = DataFusionError::Execution("Compute error: Timestamp out of range".into());
        assert_eq!(code_of(shifted), "22008");
        assert_eq!(code_of(DataFusionError::Execution("negative count not allowed: -1".into())), "22011");
        let overflow = DataFusionError::Execution("Arithmetic overflow: integer out of range".into());
        assert_eq!(code_of(overflow), "22003");
    }

    #[test]
    fn integer_casts_out_of_range_are_postgres_overflows() {
        let arrow = |m: &str| from_arrow(ArrowError::CastError(m.into()));
        let e = arrow("Can't cast value 6000000000 to type Int32");
        assert_eq!((e.code, e.message.as_str()), ("22003", "integer out of range"));
        assert_eq!(arrow("Can't cast value 70000 to type Int16").message, "smallint out of range");
        assert_eq!(
            arrow("value of 99999999999999999999 is out of range Int64").message,
            "bigint out of range"
        );
        assert_eq!(
            arrow("Cannot cast to Decimal128(10, 3). Overflowing on 1e30").message,
            "numeric field overflow"
        );
        assert_eq!(arrow("Cannot cast string 'x' to value of Int32 type").code, "22P02");
    }

    #[test]
    fn overflows_reported_as_text_are_out_of_range() {
        let abs = DataFusionError::Execution(
            "Compute error: Int64Array overflow on abs(-9223372036854775808)".into(),
        );
        let e = from_datafusion(abs);
        assert_eq!((e.code, e.message.as_str()), ("22003", "bigint out of range"));
        let decimal = ArrowError::InvalidArgumentError(
            "1767225600000000.000 is too large to store in a Decimal128 of precision 10. Max is 9999999.999"
                .into(),
        );
        let shared = DataFusionError::Shared(std::sync::Arc::new(DataFusionError::ArrowError(
            Box::new(decimal),
            None,
        )));
        let e = from_datafusion(shared);
        assert_eq!((e.code, e.message.as_str()), ("22003", "numeric field overflow"));
        let job = ExecError::JobFailed {
            reason: "job 22 vertex 0 subtask 0: operator Project (epoch 1): Execution error: Timestamp \
                     -9223372036000000000 out of range after truncating to hour"
                .into(),
            sqlstate: None,
        };
        assert_eq!(from_exec(job).code, "22008");
    }

    #[test]
    fn several_errors_are_reported_by_the_first() {
        let first = DataFusionError::Plan(
            "Failed to coerce then (Boolean) and else (Utf8) to common types in CASE WHEN expression".into(),
        );
        let second = DataFusionError::Internal("a bug".into());
        assert_eq!(code_of(DataFusionError::Collection(vec![first, second])), "42804");
    }

    #[test]
    fn arguments_without_a_common_type_are_postgres_datatype_mismatches() {
        let coalesce = DataFusionError::Execution(
            "Function 'coalesce' user-defined coercion failed with: Execution error: Fail to find the coerced \
             type, errors: Execution error: Expect to get struct but got Boolean. No function matches the given \
             name and argument types 'coalesce(Boolean, Utf8)'. You might need to add explicit type casts."
                .into(),
        );
        let e = from_datafusion(coalesce);
        assert_eq!(
            (e.code, e.message.as_str()),
            ("42804", "COALESCE types boolean and text cannot be matched")
        );
        let case = DataFusionError::Plan(
            "Failed to coerce then (Boolean, Int32) and else (Utf8) to common types in CASE WHEN expression"
                .into(),
        );
        let e = from_datafusion(case);
        assert_eq!((e.code, e.message.as_str()), ("42804", "CASE types text and boolean cannot be matched"));
    }

    #[test]
    fn codes_follow_the_variant_not_the_text() {
        let io = std::io::Error::other("cast failed: invalid value");
        assert_eq!(code_of(DataFusionError::IoError(io)), "58030");
        let full = std::io::Error::from_raw_os_error(28);
        assert_eq!(code_of(DataFusionError::IoError(full)), "53100");
        let io = std::io::Error::other("divide by zero");
        assert_eq!(code_of(DataFusionError::External(Box::new(io))), "58030");
        let arrow = |e: ArrowError| code_of(DataFusionError::ArrowError(Box::new(e), None));
        assert_eq!(arrow(ArrowError::DivideByZero), "22012");
        assert_eq!(arrow(ArrowError::ComputeError("cannot cast".into())), "22000");
        assert_eq!(arrow(ArrowError::ArithmeticOverflow("x".into())), "22003");
        assert_eq!(arrow(ArrowError::IoError("Cast error".into(), std::io::Error::other("disk"))), "58030");
        assert_eq!(from_storage(StorageError::CorruptCatalog("unreadable".into())).code, "XX001");
        assert_eq!(from_storage(StorageError::Invalid("feature".into())).code, "XX000");
        let denied = ExecError::PermissionDenied("no".into()).in_operator("source", 3);
        assert_eq!(from_exec(denied).code, "42501");
        let storage = ExecError::Storage(StorageError::TableNotFound("t".into()));
        assert_eq!(code_of(DataFusionError::External(Box::new(storage))), "42P01");
    }
}
