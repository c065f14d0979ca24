//! `COPY table [(columns)] FROM STDIN [WITH (...)]`: validates the statement, takes the
//! table's write lock (held until the COPY commits or is rolled back) and puts the session
//! into copy-in mode; the data is parsed and written in chunks as it arrives and committed
//! when the client finishes (see `copy_in.rs`), all or nothing.

use weir_planner::sqlparser::ast::{
    CopyLegacyCsvOption, CopyLegacyOption, CopyOption, CopySource, CopyTarget,
};
use weir_planner::{normalize_ident, split_name, sqlstate, SqlError, SqlResult};

use super::{Context, Outcome};
use crate::copy_in::{CopyFormat, CopyInState};
use crate::table_writer::TableWriter;

pub async fn start(
    cx: &Context<'_>,
    source: CopySource,
    to: bool,
    target: CopyTarget,
    options: Vec<CopyOption>,
    legacy_options: Vec<CopyLegacyOption>,
) -> SqlResult<Outcome> {
    if to {
        return Err(SqlError::unsupported("COPY ... TO").with_hint("use SELECT to read data"));
    }
    if !matches!(target, CopyTarget::Stdin) {
        return Err(SqlError::unsupported("COPY FROM a server-side file or program")
            .with_hint("use COPY ... FROM STDIN (psql: \\copy)"));
    }
    let CopySource::Table { table_name, columns } = source else {
        return Err(SqlError::syntax("COPY FROM needs a table"));
    };
    let (schema, name) = split_name(&table_name)?;
    let table = cx
        .engine
        .store
        .table(&schema, &name)
        .ok_or_else(|| crate::engine::not_a_writable_table(&cx.engine.store, &schema, &name))?;
    let def = table.def();
    super::access::require(
        cx,
        &super::access::Object { id: def.id, kind: super::access::ObjectKind::Table, name: def.name.clone() },
        crate::privileges::PrivilegeSet::INSERT,
    )?;
    let column_indices: Vec<usize> = if columns.is_empty() {
        (0..def.columns.len()).collect()
    } else {
        columns
            .iter()
            .map(|c| {
                let n = normalize_ident(c);
                def.column_index(&n).ok_or_else(|| {
                    SqlError::new(
                        sqlstate::UNDEFINED_COLUMN,
                        format!("column \"{n}\" of relation \"{name}\" does not exist"),
                    )
                })
            })
            .collect::<SqlResult<_>>()?
    };
    let mut format = CopyFormat::text();
    for option in options {
        match option {
            CopyOption::Format(f) => match f.value.to_ascii_lowercase().as_str() {
                "csv" => {
                    format = CopyFormat {
                        delimiter: b',',
                        null: String::new(),
                        ..CopyFormat::csv_with(format.header)
                    }
                }
                "text" => format = CopyFormat { header: format.header, ..CopyFormat::text() },
                other => return Err(SqlError::unsupported(format!("COPY format {other}"))),
            },
            CopyOption::Header(h) => format.header = h,
            CopyOption::Delimiter(d) => format.delimiter = single_byte(d)?,
            CopyOption::Null(n) => format.null = n,
            CopyOption::Quote(q) => format.quote = single_byte(q)?,
            CopyOption::Escape(e) => format.escape = single_byte(e)?,
            CopyOption::Encoding(e) if e.eq_ignore_ascii_case("utf8") || e.eq_ignore_ascii_case("utf-8") => {}
            CopyOption::Freeze(_) => {}
            other => return Err(SqlError::unsupported(format!("COPY option {other}"))),
        }
    }
    for option in legacy_options {
        match option {
            CopyLegacyOption::Csv(csv_options) => {
                let mut f = CopyFormat::csv_with(format.header);
                for o in csv_options {
                    match o {
                        CopyLegacyCsvOption::Header => f.header = true,
                        CopyLegacyCsvOption::Quote(q) => f.quote = single_byte(q)?,
                        CopyLegacyCsvOption::Escape(e) => f.escape = single_byte(e)?,
                        other => return Err(SqlError::unsupported(format!("COPY option {other}"))),
                    }
                }
                format = f;
            }
            CopyLegacyOption::Delimiter(d) => format.delimiter = single_byte(d)?,
            CopyLegacyOption::Null(n) => format.null = n,
            CopyLegacyOption::Header => format.header = true,
            CopyLegacyOption::Binary => return Err(SqlError::unsupported("COPY format binary")),
            other => return Err(SqlError::unsupported(format!("COPY option {other}"))),
        }
    }
    let columns = column_indices.len();
    let writer = TableWriter::lock(&table).await;
    let (timeout_ms, gate) = {
        let session = cx.session()?;
        (session.statement_timeout_ms(), session.commit.clone())
    };
    let copy = CopyInState::start(writer, table, column_indices, format, timeout_ms, gate).await;
    cx.session()?.copy_in = Some(copy);
    Ok(Outcome::CopyIn { columns })
}

fn single_byte(c: char) -> SqlResult<u8> {
    u8::try_from(c as u32).ok().filter(|b| b.is_ascii()).ok_or_else(|| {
        SqlError::new(
            sqlstate::FEATURE_NOT_SUPPORTED,
            "COPY delimiter, quote and escape must be single one-byte characters",
        )
    })
}
