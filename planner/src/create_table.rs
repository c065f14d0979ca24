//! `CREATE TABLE` to a catalog [`TableDef`].

use datafusion::sql::sqlparser::ast::{
    ColumnOption, CreateTable, Expr, ObjectName, ObjectNamePart, TableConstraint,
};
use weir_plan::catalog::{ColumnDef, TableDef};

use crate::error::{sqlstate, SqlError, SqlResult};
use crate::types::column_type_from_sql;

/// A validated table definition and whether `IF NOT EXISTS` was given.
#[derive(Debug)]
pub struct CreateTablePlan {
    pub def: TableDef,
    pub if_not_exists: bool,
}

pub fn plan_create_table(stmt: &CreateTable) -> SqlResult<CreateTablePlan> {
    reject_unsupported_clauses(stmt)?;
    let (schema_name, name) = split_name(&stmt.name)?;
    if stmt.columns.is_empty() {
        return Err(SqlError::unsupported("a table without columns"));
    }
    let (mut columns, mut primary_key) = plan_columns(&stmt.columns, &name, true)?;
    for constraint in &stmt.constraints {
        match constraint {
            TableConstraint::PrimaryKey(pk) => {
                if !primary_key.is_empty() {
                    return Err(multiple_primary_keys(&name));
                }
                for key_column in &pk.columns {
                    let Expr::Identifier(ident) = &key_column.column.expr else {
                        return Err(SqlError::unsupported("an expression in a primary key"));
                    };
                    let key_name = normalize_ident(ident);
                    let idx = columns.iter().position(|c| c.name == key_name).ok_or_else(|| {
                        SqlError::new(
                            sqlstate::UNDEFINED_COLUMN,
                            format!("column \"{key_name}\" named in key does not exist"),
                        )
                    })?;
                    if primary_key.contains(&idx) {
                        return Err(SqlError::new(
                            sqlstate::DUPLICATE_COLUMN,
                            format!("column \"{key_name}\" appears twice in primary key constraint"),
                        ));
                    }
                    columns[idx].not_null = true;
                    primary_key.push(idx);
                }
            }
            other => {
                return Err(SqlError::unsupported(format!("table constraint {other}"))
                    .with_hint("Weir supports PRIMARY KEY constraints"))
            }
        }
    }
    Ok(CreateTablePlan {
        def: TableDef {
            id: 0,
            schema_name,
            name,
            columns,
            primary_key,
            watermark: None,
            primary_key_name: None,
        },
        if_not_exists: stmt.if_not_exists,
    })
}

fn reject_unsupported_clauses(stmt: &CreateTable) -> SqlResult<()> {
    if stmt.query.is_some() {
        return Err(SqlError::unsupported("CREATE TABLE ... AS SELECT")
            .with_hint("create the table, then INSERT INTO ... SELECT"));
    }
    if stmt.temporary {
        return Err(SqlError::unsupported("CREATE TEMPORARY TABLE"));
    }
    if stmt.or_replace {
        return Err(SqlError::unsupported("CREATE OR REPLACE TABLE"));
    }
    Ok(())
}

/// The columns of a `CREATE TABLE` or `CREATE SOURCE`, and the indexes of those declared
/// `PRIMARY KEY` (allowed only when `primary_key_allowed`).
pub(crate) fn plan_columns(
    declared: &[datafusion::sql::sqlparser::ast::ColumnDef],
    relation: &str,
    primary_key_allowed: bool,
) -> SqlResult<(Vec<ColumnDef>, Vec<usize>)> {
    let mut columns: Vec<ColumnDef> = Vec::with_capacity(declared.len());
    let mut primary_key: Vec<usize> = Vec::new();
    for (index, column) in declared.iter().enumerate() {
        let column_name = normalize_ident(&column.name);
        if columns.iter().any(|c| c.name == column_name) {
            return Err(SqlError::new(
                sqlstate::DUPLICATE_COLUMN,
                format!("column \"{column_name}\" specified more than once"),
            ));
        }
        let mut not_null = false;
        let mut default = None;
        for option in &column.options {
            match &option.option {
                ColumnOption::NotNull => not_null = true,
                ColumnOption::Null => not_null = false,
                ColumnOption::Default(expr) if primary_key_allowed => default = Some(expr.to_string()),
                ColumnOption::PrimaryKey(_) if primary_key_allowed => {
                    if !primary_key.is_empty() {
                        return Err(multiple_primary_keys(relation));
                    }
                    primary_key.push(index);
                    not_null = true;
                }
                other if primary_key_allowed => {
                    return Err(SqlError::unsupported(format!("column option {other}"))
                        .with_hint("Weir supports NOT NULL, NULL, DEFAULT and PRIMARY KEY on columns"))
                }
                other => {
                    return Err(SqlError::unsupported(format!("column option {other} on a source"))
                        .with_hint("A source column takes only NULL or NOT NULL."))
                }
            }
        }
        columns.push(ColumnDef {
            name: column_name,
            column_type: column_type_from_sql(&column.data_type)?,
            not_null,
            default,
        });
    }
    Ok((columns, primary_key))
}

/// The column `ALTER TABLE ... ADD COLUMN` declares, and whether it is declared PRIMARY KEY.
pub fn plan_added_column(
    column: &datafusion::sql::sqlparser::ast::ColumnDef,
    table: &str,
) -> SqlResult<(ColumnDef, bool)> {
    let (mut columns, primary_key) = plan_columns(std::slice::from_ref(column), table, true)?;
    let def = columns.pop().ok_or_else(|| SqlError::internal("a column definition planned to no column"))?;
    Ok((def, !primary_key.is_empty()))
}

fn multiple_primary_keys(table: &str) -> SqlError {
    SqlError::new(
        sqlstate::INVALID_TABLE_DEFINITION,
        format!("multiple primary keys for table \"{table}\" are not allowed"),
    )
}

/// Postgres folds unquoted identifiers to lower case and keeps quoted ones as written.
pub fn normalize_ident(ident: &datafusion::sql::sqlparser::ast::Ident) -> String {
    if ident.quote_style.is_some() {
        ident.value.clone()
    } else {
        ident.value.to_lowercase()
    }
}

/// `[schema.]name` with Postgres identifier folding; the schema defaults to `public`.
pub fn split_name(name: &ObjectName) -> SqlResult<(String, String)> {
    let parts: Vec<String> = name
        .0
        .iter()
        .map(|p| match p {
            ObjectNamePart::Identifier(ident) => Ok(normalize_ident(ident)),
            other => Err(SqlError::unsupported(format!("object name {other}"))),
        })
        .collect::<SqlResult<_>>()?;
    match parts.as_slice() {
        [name] => Ok(("public".to_string(), name.clone())),
        [schema, name] => Ok((schema.clone(), name.clone())),
        [_db, schema, name] => Ok((schema.clone(), name.clone())),
        _ => Err(SqlError::syntax(format!("improper qualified name (too many dotted names): {name}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parser::{parse_sql, WeirStatement};
    use datafusion::sql::sqlparser::ast::Statement;
    use weir_plan::catalog::ColumnType;

    fn plan(sql: &str) -> SqlResult<CreateTablePlan> {
        let WeirStatement::Sql(stmt) = parse_sql(sql)?.remove(0) else { panic!("not SQL") };
        match *stmt {
            Statement::CreateTable(ct) => plan_create_table(&ct),
            other => panic!("not a CREATE TABLE: {other}"),
        }
    }

    #[test]
    fn column_and_table_primary_keys() {
        let p = plan("CREATE TABLE Orders (id BIGINT PRIMARY KEY, customer TEXT NOT NULL, amount DOUBLE PRECISION, ts TIMESTAMP)").unwrap();
        assert_eq!(p.def.name, "orders");
        assert_eq!(p.def.primary_key, vec![0]);
        assert_eq!(p.def.columns[1].column_type, ColumnType::Text);
        assert!(p.def.columns[1].not_null);
        assert_eq!(p.def.columns[3].column_type, ColumnType::Timestamp { precision: None });

        let p = plan("CREATE TABLE IF NOT EXISTS t (a INT, b VARCHAR(10), PRIMARY KEY (b, a))").unwrap();
        assert!(p.if_not_exists);
        assert_eq!(p.def.primary_key, vec![1, 0]);
        assert!(p.def.columns[0].not_null);
    }

    #[test]
    fn rejects_bad_definitions() {
        assert_eq!(plan("CREATE TABLE t (a INT, a INT)").unwrap_err().code, "42701");
        assert_eq!(plan("CREATE TABLE t (a INT PRIMARY KEY, b INT PRIMARY KEY)").unwrap_err().code, "42P16");
        assert_eq!(plan("CREATE TABLE t (a INT, PRIMARY KEY (z))").unwrap_err().code, "42703");
        assert_eq!(plan("CREATE TABLE t (a serial)").unwrap_err().code, "0A000");
        assert_eq!(plan("CREATE TABLE t (a INT REFERENCES u(x))").unwrap_err().code, "0A000");
    }
}
