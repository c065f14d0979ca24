//! `SET`, `RESET`, `SET TIME ZONE` and `SHOW`.

use std::sync::Arc;

use arrow::array::{RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use weir_planner::sqlparser::ast::{Expr, Ident, Reset, Set, Value};
use weir_planner::{sqlstate, SqlError, SqlResult};

use super::{planning::rows, Context, Outcome};
use crate::engine::PG_SERVER_VERSION;
use crate::session::DEFAULT_SETTINGS;

pub fn set(cx: &Context<'_>, set: Set) -> SqlResult<Outcome> {
    match set {
        Set::SingleAssignment { variable, values, .. } => {
            let name = variable.to_string();
            let mut session = cx.session()?;
            if values.len() == 1 && is_default(&values[0]) {
                session.reset(&name)?;
            } else {
                let value = values.iter().map(value_text).collect::<Vec<_>>().join(", ");
                session.set(&name, &value)?;
            }
            Ok(Outcome::Command { tag: "SET", rows: None })
        }
        Set::SetTimeZone { value, .. } => set_time_zone(cx, &value),
        Set::SetNames { .. } | Set::SetNamesDefault { .. } => Ok(Outcome::Command { tag: "SET", rows: None }),
        Set::SetTransaction { .. } => Ok(Outcome::Command { tag: "SET", rows: None }),
        other => Err(SqlError::unsupported(format!("{other}"))),
    }
}

/// `RESET name` sets one setting back to its default (`42704` for a name Postgres does not
/// know either); `RESET ALL` every setting of the session.
pub fn reset(cx: &Context<'_>, reset: Reset) -> SqlResult<Outcome> {
    let mut session = cx.session()?;
    match reset {
        Reset::ALL => session.reset_all(),
        Reset::ConfigurationParameter(name) => session.reset(&name.to_string())?,
    }
    Ok(Outcome::Command { tag: "RESET", rows: None })
}

pub fn set_time_zone(cx: &Context<'_>, value: &Expr) -> SqlResult<Outcome> {
    cx.session()?.set("TimeZone", &value_text(value))?;
    Ok(Outcome::Command { tag: "SET", rows: None })
}

fn is_default(e: &Expr) -> bool {
    matches!(e, Expr::Identifier(i) if i.value.eq_ignore_ascii_case("default"))
}

fn value_text(e: &Expr) -> String {
    match e {
        Expr::Value(v) => match &v.value {
            Value::SingleQuotedString(s) | Value::DoubleQuotedString(s) => s.clone(),
            Value::Number(n, _) => n.clone(),
            Value::Boolean(b) => {
                if *b {
                    "on".into()
                } else {
                    "off".into()
                }
            }
            other => other.to_string(),
        },
        Expr::Identifier(i) => i.value.clone(),
        Expr::UnaryOp { op, expr } => format!("{op}{}", value_text(expr)),
        other => other.to_string(),
    }
}

pub fn show_schema(variable: &[Ident]) -> SchemaRef {
    let name = show_name(variable);
    if name == "all" {
        Arc::new(Schema::new(vec![
            Field::new("name", DataType::Utf8, false),
            Field::new("setting", DataType::Utf8, false),
            Field::new("description", DataType::Utf8, false),
        ]))
    } else {
        Arc::new(Schema::new(vec![Field::new(name, DataType::Utf8, false)]))
    }
}

fn show_name(variable: &[Ident]) -> String {
    variable.iter().map(|i| i.value.to_ascii_lowercase()).collect::<Vec<_>>().join("_")
}

pub async fn show(cx: &Context<'_>, variable: &[Ident]) -> SqlResult<Outcome> {
    let session = cx.session()?;
    // A custom setting's name has a dot (`SHOW myapp.user_id` comes as two words).
    let dotted = variable.iter().map(|i| i.value.to_ascii_lowercase()).collect::<Vec<_>>().join(".");
    let (name, schema) = match variable.len() > 1 && session.get(&dotted).is_some() {
        true => {
            let schema = Arc::new(Schema::new(vec![Field::new(dotted.clone(), DataType::Utf8, false)]));
            (dotted, schema as SchemaRef)
        }
        false => (show_name(variable), show_schema(variable)),
    };
    if name == "all" {
        let settings = session.settings();
        let description = |n: &str| {
            DEFAULT_SETTINGS
                .iter()
                .find(|(d, _, _)| d.eq_ignore_ascii_case(n))
                .map(|(_, _, desc)| *desc)
                .unwrap_or("")
        };
        let batch = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(StringArray::from_iter_values(settings.iter().map(|(n, _)| n.as_str()))),
                Arc::new(StringArray::from_iter_values(settings.iter().map(|(_, v)| v.as_str()))),
                Arc::new(StringArray::from_iter_values(settings.iter().map(|(n, _)| description(n)))),
            ],
        )
        .map_err(|e| SqlError::internal(e.to_string()))?;
        return Ok(rows(batch));
    }
    let value = match name.as_str() {
        "server_version" => Some(PG_SERVER_VERSION.to_string()),
        "server_version_num" => Some("150000".to_string()),
        "transaction_isolation_level" => Some("read committed".to_string()),
        "is_superuser" => {
            let superuser = cx.engine.roles.snapshot().is_superuser(&session.user);
            Some(if superuser { "on" } else { "off" }.to_string())
        }
        "session_authorization" => Some(session.user.clone()),
        "streaming_parallelism" => Some(session.streaming_parallelism().to_string()),
        "streaming_watermark_alignment_max_drift" => Some(
            session
                .streaming_watermark_alignment_max_drift_ms()
                .unwrap_or(cx.engine.config.watermark_alignment_max_drift_ms)
                .to_string(),
        ),
        _ => session.get(&name).map(str::to_string),
    }
    .ok_or_else(|| {
        SqlError::new(sqlstate::UNDEFINED_OBJECT, format!("unrecognized configuration parameter \"{name}\""))
    })?;
    let batch = RecordBatch::try_new(schema, vec![Arc::new(StringArray::from(vec![value]))])
        .map_err(|e| SqlError::internal(e.to_string()))?;
    Ok(rows(batch))
}
