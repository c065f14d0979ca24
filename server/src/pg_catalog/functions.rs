//! Postgres' system functions that clients call in catalog queries: `format_type`,
//! `pg_get_indexdef`, `pg_table_is_visible`, `current_setting`, ..., and the `weir_reg*`
//! functions the query rewriter substitutes for casts to `regclass`, `regtype`, etc.
//!
//! Each function is a DataFusion scalar UDF closing over the statement's
//! [`CatalogSnapshot`], so it answers with the same catalog the system tables show. Functions
//! accept any argument types and convert them the way Postgres would coerce its literals:
//! `pg_relation_is_publishable('16385')` takes a string that names an oid, a `regclass`
//! argument may be a relation name. Errors a user can cause (an unknown relation name in
//! `'x'::regclass`, an unknown setting) are returned as execution errors with Postgres'
//! message, never panics.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, BooleanBuilder, Int32Array, Int64Array, ListBuilder, StringArray,
    StringBuilder,
};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Field, Int64Type};
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, TypeSignature, Volatility,
};
use datafusion::prelude::SessionContext;

use super::relations::{self, all_relations};
use super::{cluster, types, viewdef, CatalogSnapshot};
use super::{indexes, namespaces, naming};

/// Registers every system function, bound to `snapshot`, in `ctx`.
pub fn register_functions(ctx: &SessionContext, snapshot: Arc<CatalogSnapshot>) {
    for function in functions(&snapshot) {
        ctx.register_udf(function);
    }
}

/// How a function's result type is decided.
#[derive(Clone, Copy)]
pub(super) enum Returns {
    Fixed(fn() -> DataType),
    /// `weir_regclass('t')` is an oid, `weir_regclass(16385)` a name.
    OidForTextElseName,
}

type Body = Arc<dyn Fn(&[ArrayRef], usize) -> Result<ArrayRef> + Send + Sync>;

/// A system function: a name, Postgres-like loose argument handling, and a body working on
/// whole columns.
struct PgFunction {
    name: &'static str,
    signature: Signature,
    returns: Returns,
    body: Body,
}

impl fmt::Debug for PgFunction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgFunction").field("name", &self.name).finish()
    }
}

// A context holds one function per name, so the name identifies it.
impl PartialEq for PgFunction {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}
impl Eq for PgFunction {}
impl Hash for PgFunction {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.name.hash(state);
    }
}

impl ScalarUDFImpl for PgFunction {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        Ok(match self.returns {
            Returns::Fixed(data_type) => data_type(),
            Returns::OidForTextElseName => match arg_types.first() {
                Some(DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View) => DataType::Int64,
                _ => DataType::Utf8,
            },
        })
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let arrays = args.args.iter().map(|a| a.to_array(rows)).collect::<Result<Vec<_>>>()?;
        (self.body)(&arrays, rows).map(ColumnarValue::Array)
    }
}

fn text() -> DataType {
    DataType::Utf8
}
pub(super) fn boolean() -> DataType {
    DataType::Boolean
}
fn int8() -> DataType {
    DataType::Int64
}
pub(super) fn int4() -> DataType {
    DataType::Int32
}
fn text_list() -> DataType {
    DataType::List(Arc::new(Field::new_list_field(DataType::Utf8, true)))
}

fn function(
    name: &'static str,
    arities: &[usize],
    returns: Returns,
    body: impl Fn(&[ArrayRef], usize) -> Result<ArrayRef> + Send + Sync + 'static,
) -> ScalarUDF {
    function_with_volatility(name, arities, Volatility::Stable, returns, body)
}

/// [`function`] with the given volatility (`Volatile` for a function with side effects,
/// which the optimizer must neither fold nor skip).
pub(super) fn function_with_volatility(
    name: &'static str,
    arities: &[usize],
    volatility: Volatility,
    returns: Returns,
    body: impl Fn(&[ArrayRef], usize) -> Result<ArrayRef> + Send + Sync + 'static,
) -> ScalarUDF {
    let signature = match arities {
        [0] => Signature::nullary(volatility),
        _ => Signature::one_of(
            arities
                .iter()
                .map(|&n| if n == 0 { TypeSignature::Nullary } else { TypeSignature::Any(n) })
                .collect(),
            volatility,
        ),
    };
    ScalarUDF::new_from_impl(PgFunction { name, signature, returns, body: Arc::new(body) })
}

/// A function that takes any number (at least one) of arguments of any type.
fn variadic(
    name: &'static str,
    returns: Returns,
    body: impl Fn(&[ArrayRef], usize) -> Result<ArrayRef> + Send + Sync + 'static,
) -> ScalarUDF {
    ScalarUDF::new_from_impl(PgFunction {
        name,
        signature: Signature::variadic_any(Volatility::Stable),
        returns,
        body: Arc::new(body),
    })
}

// ---------------------------------------------------------------------------------------
// Argument and result helpers

pub(super) fn arg(args: &[ArrayRef], i: usize) -> Result<&ArrayRef> {
    args.get(i).ok_or_else(|| DataFusionError::Internal(format!("missing argument {}", i + 1)))
}

/// An argument as int8; strings holding numbers convert, others become NULL.
pub(super) fn ints(array: &ArrayRef) -> Result<Int64Array> {
    Ok(cast(array, &DataType::Int64)?.as_primitive::<Int64Type>().clone())
}

fn strings(array: &ArrayRef) -> Result<StringArray> {
    Ok(cast(array, &DataType::Utf8)?.as_string::<i32>().clone())
}

fn bools(array: &ArrayRef) -> Result<BooleanArray> {
    Ok(cast(array, &DataType::Boolean)?.as_boolean().clone())
}

fn is_text(array: &ArrayRef) -> bool {
    matches!(array.data_type(), DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View)
}

pub(super) fn int_at(array: &Int64Array, row: usize) -> Option<i64> {
    array.is_valid(row).then(|| array.value(row))
}

fn str_at(array: &StringArray, row: usize) -> Option<&str> {
    array.is_valid(row).then(|| array.value(row))
}

fn bool_at(array: &BooleanArray, row: usize) -> Option<bool> {
    array.is_valid(row).then(|| array.value(row))
}

/// Relation oids from a `regclass` argument: oids, numeric strings, or relation names.
fn relation_oids(snapshot: &CatalogSnapshot, array: &ArrayRef) -> Result<Vec<Option<i64>>> {
    if is_text(array) {
        let names = strings(array)?;
        (0..names.len())
            .map(|row| match str_at(&names, row) {
                None => Ok(None),
                Some(name) => naming::regclass_oid(snapshot, name)
                    .map(Some)
                    .ok_or_else(|| relation_does_not_exist(name)),
            })
            .collect()
    } else {
        let oids = ints(array)?;
        Ok((0..oids.len()).map(|row| int_at(&oids, row)).collect())
    }
}

fn relation_does_not_exist(name: &str) -> DataFusionError {
    DataFusionError::Execution(format!("relation \"{name}\" does not exist"))
}

fn text_rows(rows: usize, mut f: impl FnMut(usize) -> Result<Option<String>>) -> Result<ArrayRef> {
    let mut b = StringBuilder::new();
    for row in 0..rows {
        b.append_option(f(row)?);
    }
    Ok(Arc::new(b.finish()))
}

pub(super) fn bool_rows(rows: usize, mut f: impl FnMut(usize) -> Result<Option<bool>>) -> Result<ArrayRef> {
    let mut b = BooleanBuilder::new();
    for row in 0..rows {
        b.append_option(f(row)?);
    }
    Ok(Arc::new(b.finish()))
}

fn int8_rows(rows: usize, mut f: impl FnMut(usize) -> Result<Option<i64>>) -> Result<ArrayRef> {
    (0..rows).map(&mut f).collect::<Result<Int64Array>>().map(|a| Arc::new(a) as ArrayRef)
}

pub(super) fn int4_rows(rows: usize, mut f: impl FnMut(usize) -> Result<Option<i32>>) -> Result<ArrayRef> {
    (0..rows).map(&mut f).collect::<Result<Int32Array>>().map(|a| Arc::new(a) as ArrayRef)
}

/// A constant for every row.
fn constant_text(value: Option<String>) -> impl Fn(&[ArrayRef], usize) -> Result<ArrayRef> {
    move |_, rows| text_rows(rows, |_| Ok(value.clone()))
}

// ---------------------------------------------------------------------------------------
// The functions

fn functions(snapshot: &Arc<CatalogSnapshot>) -> Vec<ScalarUDF> {
    let mut out = Vec::new();
    out.extend(session_functions(snapshot));
    out.extend(super::backend_functions::functions(snapshot));
    out.extend(catalog_functions(snapshot));
    out.extend(reg_functions(snapshot));
    out.extend(utility_functions(snapshot));
    out
}

/// Who and where: `version()`, `current_user`, `current_setting()`, ...
fn session_functions(snapshot: &Arc<CatalogSnapshot>) -> Vec<ScalarUDF> {
    let s = snapshot.clone();
    let version = format!(
        "PostgreSQL {} (Weir {}) on {}-{}, 64-bit",
        s.server_version,
        env!("CARGO_PKG_VERSION"),
        std::env::consts::ARCH,
        std::env::consts::OS
    );
    let mut out = vec![
        function("version", &[0], Returns::Fixed(text), constant_text(Some(version))),
        function("pg_is_in_recovery", &[0], Returns::Fixed(boolean), |_, rows| {
            bool_rows(rows, |_| Ok(Some(false)))
        }),
        function("current_schema", &[0], Returns::Fixed(text), constant_text(namespaces::current_schema(&s))),
    ];
    for name in ["current_database", "current_catalog"] {
        out.push(function(name, &[0], Returns::Fixed(text), constant_text(Some(s.database.clone()))));
    }
    for name in ["current_user", "session_user", "user", "current_role"] {
        out.push(function(name, &[0], Returns::Fixed(text), constant_text(Some(s.user.clone()))));
    }
    let snap = s.clone();
    out.push(function("current_schemas", &[1], Returns::Fixed(text_list), move |args, rows| {
        let include_implicit = bools(arg(args, 0)?)?;
        let explicit_catalog = snap
            .setting("search_path")
            .is_some_and(|p| p.split(',').any(|i| i.trim().trim_matches('"') == "pg_catalog"));
        let path = namespaces::search_path(&snap);
        let mut b = ListBuilder::new(StringBuilder::new());
        for row in 0..rows {
            match bool_at(&include_implicit, row) {
                None => b.append(false),
                Some(implicit) => {
                    for ns in &path {
                        if implicit || explicit_catalog || ns.name != "pg_catalog" {
                            b.values().append_value(&ns.name);
                        }
                    }
                    b.append(true);
                }
            }
        }
        Ok(Arc::new(b.finish()))
    }));
    let snap = s.clone();
    out.push(function("current_setting", &[1, 2], Returns::Fixed(text), move |args, rows| {
        let names = strings(arg(args, 0)?)?;
        let missing_ok = match args.get(1) {
            Some(a) => Some(bools(a)?),
            None => None,
        };
        let settings = cluster::settings(&snap);
        text_rows(rows, |row| {
            let Some(name) = str_at(&names, row) else {
                return Ok(None);
            };
            match settings.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)) {
                Some((_, value)) => Ok(Some(value.clone())),
                None if missing_ok.as_ref().and_then(|m| bool_at(m, row)) == Some(true) => Ok(None),
                None => Err(DataFusionError::Execution(format!(
                    "unrecognized configuration parameter \"{name}\""
                ))),
            }
        })
    }));
    out
}

/// Functions over catalog objects: `format_type`, `pg_get_indexdef`, visibility, ...
fn catalog_functions(snapshot: &Arc<CatalogSnapshot>) -> Vec<ScalarUDF> {
    let mut out = Vec::new();

    out.push(function("format_type", &[2], Returns::Fixed(text), |args, rows| {
        let oids = ints(arg(args, 0)?)?;
        let typmods = ints(arg(args, 1)?)?;
        text_rows(rows, |row| {
            let typmod = int_at(&typmods, row).map(|m| i32::try_from(m).unwrap_or(-1));
            Ok(int_at(&oids, row).map(|oid| types::format_type(oid, typmod)))
        })
    }));

    let s = snapshot.clone();
    out.push(function("pg_table_is_visible", &[1], Returns::Fixed(boolean), move |args, rows| {
        let oids = ints(arg(args, 0)?)?;
        let relations = all_relations(&s);
        bool_rows(rows, |row| {
            Ok(int_at(&oids, row).map(|oid| {
                relations
                    .iter()
                    .find(|r| r.oid == oid)
                    .is_some_and(|r| namespaces::is_visible(&s, &relations, r))
            }))
        })
    }));
    // Weir has no user-defined types or functions: everything there is, is visible.
    for name in ["pg_type_is_visible", "pg_function_is_visible"] {
        out.push(function(name, &[1], Returns::Fixed(boolean), |args, rows| {
            let oids = ints(arg(args, 0)?)?;
            bool_rows(rows, |row| Ok(int_at(&oids, row).map(|_| true)))
        }));
    }

    let s = snapshot.clone();
    out.push(function("pg_get_userbyid", &[1], Returns::Fixed(text), move |args, rows| {
        let oids = ints(arg(args, 0)?)?;
        text_rows(rows, |row| Ok(int_at(&oids, row).map(|oid| cluster::role_name(&s, oid))))
    }));

    // Weir stores no expression trees: an expression column already holds its text.
    out.push(function("pg_get_expr", &[2, 3], Returns::Fixed(text), |args, rows| {
        let exprs = strings(arg(args, 0)?)?;
        text_rows(rows, |row| Ok(str_at(&exprs, row).map(str::to_string)))
    }));

    let s = snapshot.clone();
    out.push(function("pg_get_indexdef", &[1, 3], Returns::Fixed(text), move |args, rows| {
        let oids = ints(arg(args, 0)?)?;
        let columns = match args.get(1) {
            Some(a) => Some(ints(a)?),
            None => None,
        };
        let pretty = match args.get(2) {
            Some(a) => Some(bools(a)?),
            None => None,
        };
        text_rows(rows, |row| {
            let column = columns.as_ref().and_then(|c| int_at(c, row)).unwrap_or(0);
            let pretty = pretty.as_ref().and_then(|p| bool_at(p, row)).unwrap_or(false);
            Ok(int_at(&oids, row).and_then(|oid| indexes::index_def(&s, oid, column, pretty)))
        })
    }));

    let s = snapshot.clone();
    out.push(function("pg_get_constraintdef", &[1, 2], Returns::Fixed(text), move |args, rows| {
        let oids = ints(arg(args, 0)?)?;
        text_rows(rows, |row| Ok(int_at(&oids, row).and_then(|oid| indexes::constraint_def(&s, oid))))
    }));

    out.push(function("pg_encoding_to_char", &[1], Returns::Fixed(text), |args, rows| {
        let encodings = ints(arg(args, 0)?)?;
        text_rows(rows, |row| Ok(int_at(&encodings, row).map(|e| cluster::encoding_name(e).to_string())))
    }));

    let s = snapshot.clone();
    out.push(function("pg_relation_is_publishable", &[1], Returns::Fixed(boolean), move |args, rows| {
        let oids = relation_oids(&s, arg(args, 0)?)?;
        bool_rows(rows, |row| {
            Ok(oids.get(row).copied().flatten().map(|oid| relations::is_publishable(&s, oid)))
        })
    }));

    // Sizes: Weir's storage does not account space per relation; relations report 0 bytes.
    for name in ["pg_table_size", "pg_total_relation_size", "pg_relation_size", "pg_indexes_size"] {
        let s = snapshot.clone();
        out.push(function(name, &[1, 2], Returns::Fixed(int8), move |args, rows| {
            let oids = relation_oids(&s, arg(args, 0)?)?;
            let relations = all_relations(&s);
            int8_rows(rows, |row| {
                Ok(oids
                    .get(row)
                    .copied()
                    .flatten()
                    .filter(|oid| relations.iter().any(|r| r.oid == *oid))
                    .map(|_| 0))
            })
        }));
    }

    // `pg_get_viewdef(view [, pretty])`: the view may be given as an oid or (the obsolete
    // form) a name; the second argument is `pretty` or, in `(oid, int)`, a wrap column that
    // implies pretty. NULL for relations that are not materialized views.
    let s = snapshot.clone();
    out.push(function("pg_get_viewdef", &[1, 2], Returns::Fixed(text), move |args, rows| {
        let oids = relation_oids(&s, arg(args, 0)?)?;
        let pretty = match args.get(1) {
            Some(a) if a.data_type().is_integer() => Some(BooleanArray::from(vec![true; a.len()])),
            Some(a) => Some(bools(a)?),
            None => None,
        };
        text_rows(rows, |row| {
            let pretty = pretty.as_ref().and_then(|p| bool_at(p, row)).unwrap_or(false);
            Ok(oids.get(row).copied().flatten().and_then(|oid| viewdef::view_definition(&s, oid, pretty)))
        })
    }));

    // `COMMENT ON` texts: of relations (on `pg_class`), and of their columns.
    let s = snapshot.clone();
    out.push(function("obj_description", &[1, 2], Returns::Fixed(text), move |args, rows| {
        let oids = relation_oids(&s, arg(args, 0)?)?;
        let catalogs = match args.get(1) {
            Some(a) => Some(arrow::compute::cast(a, &DataType::Utf8)?),
            None => None,
        };
        text_rows(rows, |row| {
            let on_pg_class = catalogs.as_ref().is_none_or(|c| {
                let c = c.as_string::<i32>();
                c.is_valid(row) && c.value(row).trim_start_matches("pg_catalog.") == "pg_class"
            });
            Ok(oids
                .get(row)
                .copied()
                .flatten()
                .filter(|_| on_pg_class)
                .and_then(|oid| s.comment(oid, 0))
                .map(str::to_string))
        })
    }));
    let s = snapshot.clone();
    out.push(function("col_description", &[2], Returns::Fixed(text), move |args, rows| {
        let oids = relation_oids(&s, arg(args, 0)?)?;
        let columns = arrow::compute::cast(arg(args, 1)?, &DataType::Int64)?;
        let columns = columns.as_primitive::<arrow::datatypes::Int64Type>();
        text_rows(rows, |row| {
            let column = columns.is_valid(row).then(|| i32::try_from(columns.value(row)).ok()).flatten();
            Ok(match (oids.get(row).copied().flatten(), column) {
                (Some(oid), Some(column)) if column > 0 => s.comment(oid, column).map(str::to_string),
                _ => None,
            })
        })
    }));
    // Weir keeps no shared comments, statistics objects, rules or function definitions.
    for (name, arities) in [
        ("shobj_description", &[2usize][..]),
        ("pg_get_statisticsobjdef_columns", &[1]),
        ("pg_get_function_result", &[1]),
        ("pg_get_function_arguments", &[1]),
        ("pg_get_function_identity_arguments", &[1]),
        ("pg_get_ruledef", &[1, 2]),
        ("pg_get_triggerdef", &[1, 2]),
        ("pg_get_partkeydef", &[1]),
        ("pg_get_serial_sequence", &[2]),
    ] {
        out.push(function(name, arities, Returns::Fixed(text), constant_text(None)));
    }
    // Tablespaces are Postgres' built-in ones, which have no location of their own.
    out.push(function(
        "pg_tablespace_location",
        &[1],
        Returns::Fixed(text),
        constant_text(Some(String::new())),
    ));

    out.extend(privilege_functions(snapshot));
    // Privileges Weir does not model (databases, columns, functions, sequences): what
    // Postgres answers for their defaults, which PUBLIC holds.
    for name in [
        "has_database_privilege",
        "has_column_privilege",
        "has_function_privilege",
        "has_sequence_privilege",
        "has_any_column_privilege",
    ] {
        out.push(variadic(name, Returns::Fixed(boolean), |_, rows| bool_rows(rows, |_| Ok(Some(true)))));
    }
    out
}

/// `has_table_privilege`, `has_schema_privilege` and `pg_has_role`, answered from the
/// privilege catalog for the current user or the role given first.
fn privilege_functions(snapshot: &Arc<CatalogSnapshot>) -> Vec<ScalarUDF> {
    use crate::privileges::PrivilegeSet;
    /// The role of each row: the first argument when there is one more than `rest`.
    fn users(
        s: &CatalogSnapshot,
        args: &[ArrayRef],
        rest: usize,
        rows: usize,
    ) -> Result<Vec<Option<String>>> {
        if args.len() <= rest {
            return Ok(vec![Some(s.user.clone()); rows]);
        }
        let first = arg(args, 0)?;
        if is_text(first) {
            let names = strings(first)?;
            return Ok((0..rows).map(|r| str_at(&names, r).map(str::to_string)).collect());
        }
        let oids = ints(first)?;
        Ok((0..rows).map(|r| int_at(&oids, r).map(|oid| cluster::role_name(s, oid))).collect())
    }
    /// A privilege list such as `'SELECT, INSERT'` (any of them suffices, as in Postgres).
    fn wanted(text: &str) -> Result<Vec<PrivilegeSet>> {
        text.split(',')
            .map(|p| {
                let p = p.trim();
                let p = p
                    .strip_suffix(" WITH GRANT OPTION")
                    .or(p.strip_suffix(" with grant option"))
                    .unwrap_or(p);
                PrivilegeSet::from_keyword(p.trim())
                    .or_else(|| p.eq_ignore_ascii_case("CREATE").then_some(PrivilegeSet::ALL))
                    .or_else(|| p.eq_ignore_ascii_case("USAGE").then_some(PrivilegeSet::NONE))
                    .ok_or_else(|| {
                        DataFusionError::Execution(format!("unrecognized privilege type: \"{p}\""))
                    })
            })
            .collect()
    }
    let s = snapshot.clone();
    let table = variadic("has_table_privilege", Returns::Fixed(boolean), move |args, rows| {
        let users = users(&s, args, 2, rows)?;
        let base = args.len().saturating_sub(2);
        let oids = relation_oids(&s, arg(args, base)?)?;
        let privileges = strings(arg(args, base + 1)?)?;
        bool_rows(rows, |row| {
            let (Some(user), Some(Some(oid)), Some(text)) =
                (&users[row], oids.get(row), str_at(&privileges, row))
            else {
                return Ok(None);
            };
            let wanted = wanted(text)?;
            let object = s
                .tables
                .iter()
                .find(|t| super::table_oid(t) == *oid)
                .map(|t| t.id)
                .or_else(|| s.views.iter().find(|v| super::view_oid(v) == *oid).map(|v| v.id()));
            Ok(Some(match object {
                Some(id) => wanted.iter().any(|p| s.privileges.has_privilege(user, id, *p)),
                // System catalogs: PUBLIC may read them, only superusers change them.
                None => s.privileges.is_superuser(user) || wanted.contains(&PrivilegeSet::SELECT),
            }))
        })
    });
    let s = snapshot.clone();
    let schema = variadic("has_schema_privilege", Returns::Fixed(boolean), move |args, rows| {
        let users = users(&s, args, 2, rows)?;
        let base = args.len().saturating_sub(2);
        let schemas = strings(arg(args, base)?)?;
        let privileges = strings(arg(args, base + 1)?)?;
        bool_rows(rows, |row| {
            let (Some(user), Some(schema), Some(text)) =
                (&users[row], str_at(&schemas, row), str_at(&privileges, row))
            else {
                return Ok(None);
            };
            let creating = text.to_ascii_uppercase().contains("CREATE");
            let using = text.to_ascii_uppercase().contains("USAGE");
            let may_create = schema == "public" && s.privileges.may_create_in_public(user);
            Ok(Some(s.privileges.is_superuser(user) || using || (creating && may_create)))
        })
    });
    let s = snapshot.clone();
    let has_role = variadic("pg_has_role", Returns::Fixed(boolean), move |args, rows| {
        let users = users(&s, args, 2, rows)?;
        let base = args.len().saturating_sub(2);
        let roles = arg(args, base)?;
        let roles: Vec<Option<String>> = if is_text(roles) {
            let names = strings(roles)?;
            (0..rows).map(|r| str_at(&names, r).map(str::to_string)).collect()
        } else {
            let oids = ints(roles)?;
            (0..rows).map(|r| int_at(&oids, r).map(|oid| cluster::role_name(&s, oid))).collect()
        };
        bool_rows(rows, |row| match (&users[row], &roles[row]) {
            (Some(user), Some(role)) => {
                Ok(Some(s.privileges.is_superuser(user) || s.privileges.is_member_of(user, role)))
            }
            _ => Ok(None),
        })
    });
    vec![table, schema, has_role]
}

/// The `regclass`-style conversions between names and oids, for the rewritten casts
/// (`x::regclass` is `weir_regclass(x)`) and `to_regclass()`-style lookups.
fn reg_functions(snapshot: &Arc<CatalogSnapshot>) -> Vec<ScalarUDF> {
    /// name -> oid, None when there is no such object.
    type Lookup = fn(&CatalogSnapshot, &str) -> Option<i64>;
    /// oid -> name, falling back to the number as Postgres does.
    type Display = fn(&CatalogSnapshot, i64) -> String;

    fn regclass_lookup(s: &CatalogSnapshot, name: &str) -> Option<i64> {
        naming::regclass_oid(s, name)
    }
    fn regtype_lookup(_: &CatalogSnapshot, name: &str) -> Option<i64> {
        name.trim().parse::<i64>().ok().or_else(|| types::type_oid_by_name(name))
    }
    fn regnamespace_lookup(s: &CatalogSnapshot, name: &str) -> Option<i64> {
        let name = naming::split_qualified_name(name).pop()?;
        namespaces::namespaces(s).into_iter().find(|n| n.name == name).map(|n| n.oid)
    }
    fn regrole_lookup(s: &CatalogSnapshot, name: &str) -> Option<i64> {
        let name = naming::split_qualified_name(name).pop()?;
        cluster::role_oid(s, &name)
    }
    fn regproc_lookup(_: &CatalogSnapshot, name: &str) -> Option<i64> {
        // No functions are listed in pg_proc; only oids resolve.
        name.trim().parse::<i64>().ok()
    }
    fn regclass_display(s: &CatalogSnapshot, oid: i64) -> String {
        naming::regclass_name(s, oid)
    }
    fn regtype_display(_: &CatalogSnapshot, oid: i64) -> String {
        match types::type_name(oid) {
            Some(_) => types::format_type(oid, None),
            None => oid.to_string(),
        }
    }
    fn regnamespace_display(s: &CatalogSnapshot, oid: i64) -> String {
        namespaces::namespace_name(s, oid).map_or_else(|| oid.to_string(), |n| naming::quote_ident(&n))
    }
    fn regrole_display(s: &CatalogSnapshot, oid: i64) -> String {
        cluster::role_oid(s, &cluster::role_name(s, oid))
            .map_or_else(|| oid.to_string(), |_| naming::quote_ident(&cluster::role_name(s, oid)))
    }
    fn regproc_display(_: &CatalogSnapshot, oid: i64) -> String {
        if oid == 0 {
            "-".to_string()
        } else {
            oid.to_string()
        }
    }

    let kinds: [(&'static str, &'static str, &'static str, Lookup, Display); 5] = [
        ("weir_regclass", "to_regclass", "relation", regclass_lookup, regclass_display),
        ("weir_regtype", "to_regtype", "type", regtype_lookup, regtype_display),
        ("weir_regnamespace", "to_regnamespace", "schema", regnamespace_lookup, regnamespace_display),
        ("weir_regrole", "to_regrole", "role", regrole_lookup, regrole_display),
        ("weir_regproc", "to_regproc", "function", regproc_lookup, regproc_display),
    ];
    let mut out = Vec::new();
    for (cast_name, to_name, what, lookup, display) in kinds {
        let s = snapshot.clone();
        out.push(function(cast_name, &[1], Returns::OidForTextElseName, move |args, rows| {
            let input = arg(args, 0)?;
            if is_text(input) {
                let names = strings(input)?;
                int8_rows(rows, |row| match str_at(&names, row) {
                    None => Ok(None),
                    Some(name) => lookup(&s, name).map(Some).ok_or_else(|| {
                        DataFusionError::Execution(format!("{what} \"{name}\" does not exist"))
                    }),
                })
            } else {
                let oids = ints(input)?;
                text_rows(rows, |row| Ok(int_at(&oids, row).map(|oid| display(&s, oid))))
            }
        }));
        let s = snapshot.clone();
        out.push(function(to_name, &[1], Returns::Fixed(int8), move |args, rows| {
            let names = strings(arg(args, 0)?)?;
            int8_rows(rows, |row| Ok(str_at(&names, row).and_then(|name| lookup(&s, name))))
        }));
    }
    out
}

/// General helpers psql and drivers use that DataFusion lacks.
fn utility_functions(_snapshot: &Arc<CatalogSnapshot>) -> Vec<ScalarUDF> {
    vec![
        function("array_upper", &[2], Returns::Fixed(int4), |args, rows| array_bound(args, rows, true)),
        function("array_lower", &[2], Returns::Fixed(int4), |args, rows| array_bound(args, rows, false)),
        function("pg_size_pretty", &[1], Returns::Fixed(text), |args, rows| {
            let sizes = ints(arg(args, 0)?)?;
            text_rows(rows, |row| Ok(int_at(&sizes, row).map(size_pretty)))
        }),
        function("quote_ident", &[1], Returns::Fixed(text), |args, rows| {
            let names = strings(arg(args, 0)?)?;
            text_rows(rows, |row| Ok(str_at(&names, row).map(naming::quote_ident)))
        }),
        function("quote_literal", &[1], Returns::Fixed(text), |args, rows| {
            let values = strings(arg(args, 0)?)?;
            text_rows(rows, |row| Ok(str_at(&values, row).map(naming::quote_literal)))
        }),
        function("pg_typeof", &[1], Returns::Fixed(text), |args, rows| {
            let name = pg_type_name_of(arg(args, 0)?.data_type());
            text_rows(rows, |_| Ok(Some(name.clone())))
        }),
    ]
}

/// `array_upper`/`array_lower` for one-dimensional arrays (Weir has no others): bounds are
/// 1..=len, NULL for empty arrays and other dimensions.
fn array_bound(args: &[ArrayRef], rows: usize, upper: bool) -> Result<ArrayRef> {
    let array = arg(args, 0)?;
    let dims = ints(arg(args, 1)?)?;
    let lengths: Vec<Option<usize>> = match array.data_type() {
        DataType::List(_) => {
            let list = array.as_list::<i32>();
            (0..list.len()).map(|i| list.is_valid(i).then(|| list.value_length(i) as usize)).collect()
        }
        DataType::LargeList(_) => {
            let list = array.as_list::<i64>();
            (0..list.len()).map(|i| list.is_valid(i).then(|| list.value_length(i) as usize)).collect()
        }
        DataType::FixedSizeList(_, n) => {
            let list = array.as_fixed_size_list();
            (0..list.len()).map(|i| list.is_valid(i).then_some(*n as usize)).collect()
        }
        DataType::Null => vec![None; rows],
        other => {
            return Err(DataFusionError::Plan(format!(
                "function array_{}({other}, integer) does not exist",
                if upper { "upper" } else { "lower" }
            )))
        }
    };
    int4_rows(rows, |row| {
        let len = lengths.get(row).copied().flatten().filter(|n| *n > 0);
        Ok(match (len, int_at(&dims, row)) {
            (Some(len), Some(1)) => Some(if upper { i32::try_from(len).unwrap_or(i32::MAX) } else { 1 }),
            _ => None,
        })
    })
}

/// Postgres' `pg_size_pretty(bigint)`: bytes below 10 kB, else the first of kB, MB, GB, TB,
/// PB in which the value is below 10 240, rounded half away from zero.
pub fn size_pretty(size: i64) -> String {
    const LIMIT: u64 = 10 * 1024;
    const LIMIT2: u64 = LIMIT * 2 - 1;
    fn half_rounded(x: i64) -> i64 {
        (x + if x < 0 { -1 } else { 1 }) / 2
    }
    if size.unsigned_abs() < LIMIT {
        return format!("{size} bytes");
    }
    // Keep one extra bit for rounding.
    let mut size = size >> 9;
    for unit in ["kB", "MB", "GB", "TB"] {
        if size.unsigned_abs() < LIMIT2 {
            return format!("{} {unit}", half_rounded(size));
        }
        size >>= 10;
    }
    format!("{} PB", half_rounded(size))
}

/// The Postgres type name of a value of an Arrow type, for `pg_typeof`.
fn pg_type_name_of(data_type: &DataType) -> String {
    let oid = match data_type {
        DataType::Boolean => types::BOOL,
        DataType::Int8 | DataType::Int16 | DataType::UInt8 => types::INT2,
        DataType::Int32 | DataType::UInt16 => types::INT4,
        DataType::Int64 | DataType::UInt32 => types::INT8,
        DataType::Float16 | DataType::Float32 => types::FLOAT4,
        DataType::Float64 => types::FLOAT8,
        DataType::Decimal128(..) | DataType::Decimal256(..) | DataType::UInt64 => types::NUMERIC,
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView => types::BYTEA,
        DataType::Date32 | DataType::Date64 => types::DATE,
        DataType::Time32(_) | DataType::Time64(_) => types::TIME,
        DataType::Timestamp(_, None) => types::TIMESTAMP,
        DataType::Timestamp(_, Some(_)) => types::TIMESTAMPTZ,
        DataType::Interval(_) | DataType::Duration(_) => types::INTERVAL,
        DataType::Null => return "unknown".to_string(),
        DataType::List(f) | DataType::LargeList(f) | DataType::FixedSizeList(f, _) => {
            return format!("{}[]", pg_type_name_of(f.data_type()))
        }
        _ => types::TEXT,
    };
    types::format_type(oid, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn size_pretty_matches_postgres() {
        assert_eq!(size_pretty(0), "0 bytes");
        assert_eq!(size_pretty(8192), "8192 bytes");
        assert_eq!(size_pretty(10239), "10239 bytes");
        assert_eq!(size_pretty(10240), "10 kB");
        assert_eq!(size_pretty(1_000_000), "977 kB");
        assert_eq!(size_pretty(20_971_520), "20 MB");
        assert_eq!(size_pretty(-10240), "-10 kB");
        assert_eq!(size_pretty(1 << 50), "1024 TB");
        assert_eq!(size_pretty(i64::MAX), "8192 PB");
        assert_eq!(size_pretty(i64::MIN), "-8192 PB");
    }
}
