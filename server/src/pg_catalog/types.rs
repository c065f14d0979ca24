//! Postgres' built-in types as clients know them: oids, `pg_type` rows, type modifiers and
//! `format_type()`.
//!
//! Clients key everything on type oids (a driver picks its decoder by `atttypid`, psql prints
//! `format_type(atttypid, atttypmod)`), so the oids and names here are Postgres' own. Weir's
//! [`ColumnType`] maps onto them with the same type modifier encoding Postgres uses
//! (`varchar(n)` is `n + 4`, `numeric(p,s)` is `((p << 16) | s) + 4`), so `format_type`
//! round-trips every declared column type.

use weir_plan::catalog::ColumnType;

use super::columns::{row, Col, Columns, Row, Value};
use super::{CatalogSnapshot, BOOTSTRAP_SUPERUSER_OID, PG_CATALOG_NAMESPACE_OID};

pub const BOOL: i64 = 16;
pub const BYTEA: i64 = 17;
pub const CHAR: i64 = 18;
pub const NAME: i64 = 19;
pub const INT8: i64 = 20;
pub const INT2: i64 = 21;
pub const INT2VECTOR: i64 = 22;
pub const INT4: i64 = 23;
pub const REGPROC: i64 = 24;
pub const TEXT: i64 = 25;
pub const OID: i64 = 26;
pub const OIDVECTOR: i64 = 30;
pub const JSON: i64 = 114;
pub const PG_NODE_TREE: i64 = 194;
pub const FLOAT4: i64 = 700;
pub const FLOAT8: i64 = 701;
pub const BPCHAR: i64 = 1042;
pub const VARCHAR: i64 = 1043;
pub const DATE: i64 = 1082;
pub const TIME: i64 = 1083;
pub const TIMESTAMP: i64 = 1114;
pub const TIMESTAMPTZ: i64 = 1184;
pub const INTERVAL: i64 = 1186;
pub const TIMETZ: i64 = 1266;
pub const BIT: i64 = 1560;
pub const VARBIT: i64 = 1562;
pub const NUMERIC: i64 = 1700;
pub const JSONB: i64 = 3802;
pub const TEXT_ARRAY: i64 = 1009;
pub const OID_ARRAY: i64 = 1028;
pub const INT2_ARRAY: i64 = 1005;
pub const CHAR_ARRAY: i64 = 1002;

/// Collation oids (`pg_collation`): the database default, `C`, `POSIX`.
pub const DEFAULT_COLLATION_OID: i64 = 100;
pub const C_COLLATION_OID: i64 = 950;
pub const POSIX_COLLATION_OID: i64 = 951;

/// The size of a varlena header, which Postgres adds to every length-like type modifier.
const VARHDRSZ: i32 = 4;

/// One built-in scalar type. Its array type (`_name`) is derived.
struct BuiltinType {
    oid: i64,
    name: &'static str,
    /// `format_type()` name without modifiers; `None` when it is the type name.
    sql_name: Option<&'static str>,
    len: i64,
    by_val: bool,
    /// `b` base, `p` pseudo.
    kind: &'static str,
    category: &'static str,
    preferred: bool,
    array_oid: i64,
    /// `c`, `s`, `i` or `d`.
    align: &'static str,
    /// `p` plain, `x` extended, `m` main.
    storage: &'static str,
    collation: i64,
    /// Prefix of its I/O functions (`int4` -> `int4in`, `int4out`, ...).
    io: &'static str,
}

const fn t(
    oid: i64,
    name: &'static str,
    sql_name: Option<&'static str>,
    len: i64,
    category: &'static str,
    array_oid: i64,
    align: &'static str,
) -> BuiltinType {
    BuiltinType {
        oid,
        name,
        sql_name,
        len,
        by_val: len > 0 && len <= 8,
        kind: "b",
        category,
        preferred: false,
        array_oid,
        align,
        storage: if len == -1 { "x" } else { "p" },
        collation: 0,
        io: name,
    }
}

const fn preferred(mut ty: BuiltinType) -> BuiltinType {
    ty.preferred = true;
    ty
}

const fn collatable(mut ty: BuiltinType, collation: i64) -> BuiltinType {
    ty.collation = collation;
    ty
}

const fn pseudo(oid: i64, name: &'static str, array_oid: i64) -> BuiltinType {
    let mut ty = t(oid, name, None, 4, "P", array_oid, "i");
    ty.kind = "p";
    ty
}

const fn with_io(mut ty: BuiltinType, io: &'static str, storage: &'static str) -> BuiltinType {
    ty.io = io;
    ty.storage = storage;
    ty
}

static BUILTIN_TYPES: &[BuiltinType] = &[
    preferred(t(BOOL, "bool", Some("boolean"), 1, "B", 1000, "c")),
    t(BYTEA, "bytea", None, -1, "U", 1001, "i"),
    t(CHAR, "char", Some("\"char\""), 1, "Z", CHAR_ARRAY, "c"),
    collatable(t(NAME, "name", None, 64, "S", 1003, "c"), C_COLLATION_OID),
    t(INT8, "int8", Some("bigint"), 8, "N", 1016, "d"),
    t(INT2, "int2", Some("smallint"), 2, "N", INT2_ARRAY, "s"),
    with_io(t(INT2VECTOR, "int2vector", None, -1, "A", 1006, "i"), "int2vector", "p"),
    t(INT4, "int4", Some("integer"), 4, "N", 1007, "i"),
    t(REGPROC, "regproc", None, 4, "N", 1008, "i"),
    preferred(collatable(t(TEXT, "text", None, -1, "S", TEXT_ARRAY, "i"), DEFAULT_COLLATION_OID)),
    preferred(t(OID, "oid", None, 4, "N", OID_ARRAY, "i")),
    t(27, "tid", None, 6, "U", 1010, "s"),
    t(28, "xid", None, 4, "U", 1011, "i"),
    t(29, "cid", None, 4, "U", 1012, "i"),
    with_io(t(OIDVECTOR, "oidvector", None, -1, "A", 1013, "i"), "oidvector", "p"),
    t(JSON, "json", None, -1, "U", 199, "i"),
    t(142, "xml", None, -1, "U", 143, "i"),
    collatable(t(PG_NODE_TREE, "pg_node_tree", None, -1, "Z", 0, "i"), DEFAULT_COLLATION_OID),
    t(650, "cidr", None, -1, "I", 651, "i"),
    preferred(t(869, "inet", None, -1, "I", 1041, "i")),
    t(FLOAT4, "float4", Some("real"), 4, "N", 1021, "i"),
    preferred(t(FLOAT8, "float8", Some("double precision"), 8, "N", 1022, "d")),
    pseudo(705, "unknown", 0),
    t(790, "money", None, 8, "N", 791, "d"),
    t(829, "macaddr", None, 6, "U", 1040, "i"),
    t(1033, "aclitem", None, 12, "U", 1034, "i"),
    collatable(t(BPCHAR, "bpchar", Some("character"), -1, "S", 1014, "i"), DEFAULT_COLLATION_OID),
    collatable(t(VARCHAR, "varchar", Some("character varying"), -1, "S", 1015, "i"), DEFAULT_COLLATION_OID),
    t(DATE, "date", None, 4, "D", 1182, "i"),
    t(TIME, "time", Some("time without time zone"), 8, "D", 1183, "d"),
    t(TIMESTAMP, "timestamp", Some("timestamp without time zone"), 8, "D", 1115, "d"),
    preferred(t(TIMESTAMPTZ, "timestamptz", Some("timestamp with time zone"), 8, "D", 1185, "d")),
    preferred(t(INTERVAL, "interval", None, 16, "T", 1187, "d")),
    t(TIMETZ, "timetz", Some("time with time zone"), 12, "D", 1270, "d"),
    t(BIT, "bit", None, -1, "V", 1561, "i"),
    preferred(t(VARBIT, "varbit", Some("bit varying"), -1, "V", 1563, "i")),
    with_io(t(NUMERIC, "numeric", None, -1, "N", 1231, "i"), "numeric", "m"),
    t(1790, "refcursor", None, -1, "U", 2201, "i"),
    t(2202, "regprocedure", None, 4, "N", 2207, "i"),
    t(2205, "regclass", None, 4, "N", 2210, "i"),
    t(2206, "regtype", None, 4, "N", 2211, "i"),
    t(4089, "regnamespace", None, 4, "N", 4090, "i"),
    t(4096, "regrole", None, 4, "N", 4097, "i"),
    t(2950, "uuid", None, 16, "U", 2951, "c"),
    t(3220, "pg_lsn", None, 8, "U", 3221, "d"),
    t(3614, "tsvector", None, -1, "U", 3643, "i"),
    t(3615, "tsquery", None, -1, "U", 3645, "i"),
    t(JSONB, "jsonb", None, -1, "U", 3807, "i"),
    t(4072, "jsonpath", None, -1, "U", 4073, "i"),
    pseudo(2249, "record", 2287),
    pseudo(2275, "cstring", 1263),
    pseudo(2276, "any", 0),
    pseudo(2277, "anyarray", 0),
    pseudo(2278, "void", 0),
    pseudo(2279, "trigger", 0),
    pseudo(2283, "anyelement", 0),
];

fn builtin(oid: i64) -> Option<&'static BuiltinType> {
    BUILTIN_TYPES.iter().find(|t| t.oid == oid)
}

/// The element type of a built-in array type.
fn array_element(oid: i64) -> Option<&'static BuiltinType> {
    BUILTIN_TYPES.iter().find(|t| t.array_oid == oid && oid != 0)
}

/// The oid of a Weir column type.
pub fn type_oid(column_type: &ColumnType) -> i64 {
    match column_type {
        ColumnType::Boolean => BOOL,
        ColumnType::Int2 => INT2,
        ColumnType::Int4 => INT4,
        ColumnType::Int8 => INT8,
        ColumnType::Float4 => FLOAT4,
        ColumnType::Float8 => FLOAT8,
        ColumnType::Numeric { .. } => NUMERIC,
        ColumnType::Text => TEXT,
        ColumnType::Varchar { .. } => VARCHAR,
        ColumnType::Bytea => BYTEA,
        ColumnType::Date => DATE,
        ColumnType::Time { .. } => TIME,
        ColumnType::Timestamp { .. } => TIMESTAMP,
        ColumnType::Timestamptz { .. } => TIMESTAMPTZ,
        ColumnType::Interval { .. } => INTERVAL,
        ColumnType::Json => JSON,
        ColumnType::Jsonb => JSONB,
    }
}

/// Postgres' `atttypmod` for a Weir column type; -1 when the type has no modifier.
pub fn type_modifier(column_type: &ColumnType) -> i32 {
    match column_type {
        ColumnType::Varchar { length: Some(n) } => {
            i32::try_from(*n).map_or(-1, |n| n.saturating_add(VARHDRSZ))
        }
        ColumnType::Numeric { precision: Some(p), scale } => {
            let scale = i32::from(scale.unwrap_or(0)) & 0x7ff;
            ((i32::from(*p) << 16) | scale) + VARHDRSZ
        }
        ColumnType::Interval { precision: Some(p) } => interval_typmod(*p),
        ColumnType::Time { precision: Some(p) }
        | ColumnType::Timestamp { precision: Some(p) }
        | ColumnType::Timestamptz { precision: Some(p) } => i32::from(*p),
        _ => -1,
    }
}

/// `INTERVAL_FULL_RANGE`: an interval declared without fields (`interval(3)`).
const INTERVAL_FULL_RANGE: i32 = 0x7fff;
/// `INTERVAL_FULL_PRECISION`: an interval declared with fields and no precision.
const INTERVAL_FULL_PRECISION: i32 = 0xffff;

/// Postgres' `INTERVAL_TYPMOD(precision, range)` of an interval without fields: `interval(1)`
/// is `2147418113`.
fn interval_typmod(precision: u8) -> i32 {
    (INTERVAL_FULL_RANGE << 16) | i32::from(precision)
}

/// The fractional-seconds precision an `interval` type modifier declares, `None` for full
/// precision (`INTERVAL_PRECISION(typmod)`).
pub fn interval_precision(typmod: i32) -> Option<i32> {
    let precision = typmod & 0xffff;
    (typmod >= 0 && precision != INTERVAL_FULL_PRECISION).then_some(precision)
}

/// `typlen` of a type, as `pg_attribute.attlen` repeats it.
pub fn type_len(oid: i64) -> i64 {
    builtin(oid).map_or(-1, |t| t.len)
}

pub fn type_by_val(oid: i64) -> bool {
    builtin(oid).is_some_and(|t| t.by_val)
}

pub fn type_align(oid: i64) -> &'static str {
    builtin(oid).map_or("i", |t| t.align)
}

pub fn type_storage(oid: i64) -> &'static str {
    builtin(oid).map_or("x", |t| t.storage)
}

pub fn type_collation(oid: i64) -> i64 {
    builtin(oid).map_or(0, |t| t.collation)
}

/// `pg_type.typname`, also for array types (`_int4`).
pub fn type_name(oid: i64) -> Option<String> {
    if let Some(t) = builtin(oid) {
        return Some(t.name.to_string());
    }
    array_element(oid).map(|e| format!("_{}", e.name))
}

/// `format_type(oid, typmod)`. `typmod` is `None` when the caller passed SQL NULL, which
/// Postgres treats differently from -1 for `bpchar` (`character` vs `bpchar`).
pub fn format_type(oid: i64, typmod: Option<i32>) -> String {
    if let Some(element) = array_element(oid) {
        return format!("{}[]", format_type(element.oid, typmod));
    }
    let Some(ty) = builtin(oid) else {
        return "???".to_string();
    };
    let modifier = typmod.filter(|m| *m >= 0);
    match (oid, modifier) {
        (BPCHAR, Some(m)) => format!("character({})", m - VARHDRSZ),
        (BPCHAR, None) if typmod.is_some() => "bpchar".to_string(),
        (VARCHAR, Some(m)) => format!("character varying({})", m - VARHDRSZ),
        (NUMERIC, Some(m)) => {
            let (precision, scale) = numeric_precision_scale(m);
            format!("numeric({precision},{scale})")
        }
        (TIME, Some(p)) => format!("time({p}) without time zone"),
        (TIMETZ, Some(p)) => format!("time({p}) with time zone"),
        (TIMESTAMP, Some(p)) => format!("timestamp({p}) without time zone"),
        (TIMESTAMPTZ, Some(p)) => format!("timestamp({p}) with time zone"),
        // Intervals declared with fields (`interval day to second`) are not kept by Weir.
        (INTERVAL, Some(m)) => match interval_precision(m) {
            Some(p) if m >> 16 == INTERVAL_FULL_RANGE => format!("interval({p})"),
            _ => "interval".to_string(),
        },
        (BIT, Some(n)) => format!("bit({n})"),
        (VARBIT, Some(n)) => format!("bit varying({n})"),
        _ => ty.sql_name.unwrap_or(ty.name).to_string(),
    }
}

/// Precision and scale packed in a `numeric` type modifier (scale may be negative).
pub fn numeric_precision_scale(typmod: i32) -> (i32, i32) {
    let packed = typmod - VARHDRSZ;
    let precision = (packed >> 16) & 0xffff;
    let scale = ((packed & 0x7ff) ^ 1024) - 1024;
    (precision, scale)
}

/// Resolves a type name as `'...'::regtype` does: SQL names (`integer`, `character
/// varying`), internal names (`int4`, `_int4`), aliases (`int`, `decimal`) and `name[]`.
pub fn type_oid_by_name(name: &str) -> Option<i64> {
    let name = name.trim().trim_start_matches("pg_catalog.");
    if name == "\"char\"" {
        return Some(CHAR);
    }
    let name = name.trim_matches('"');
    let lower = name.to_ascii_lowercase();
    if let Some(element) = lower.strip_suffix("[]") {
        let element = type_oid_by_name(element)?;
        return builtin(element).map(|t| t.array_oid).filter(|oid| *oid != 0);
    }
    // Drop a type modifier: `varchar(20)` names `varchar`.
    let base = match lower.find('(') {
        Some(open) => {
            let close = lower.rfind(')').unwrap_or(lower.len());
            format!("{}{}", lower[..open].trim_end(), &lower[(close + 1).min(lower.len())..])
        }
        None => lower.clone(),
    };
    let alias = match base.as_str() {
        "int" | "integer" => Some(INT4),
        "smallint" => Some(INT2),
        "bigint" => Some(INT8),
        "real" => Some(FLOAT4),
        "double precision" | "float" => Some(FLOAT8),
        "decimal" => Some(NUMERIC),
        "boolean" => Some(BOOL),
        "character varying" => Some(VARCHAR),
        "character" | "char" => Some(BPCHAR),
        "timestamp without time zone" => Some(TIMESTAMP),
        "timestamp with time zone" => Some(TIMESTAMPTZ),
        "time without time zone" => Some(TIME),
        "time with time zone" => Some(TIMETZ),
        "bit varying" => Some(VARBIT),
        _ => None,
    };
    if alias.is_some() {
        return alias;
    }
    BUILTIN_TYPES.iter().find(|t| t.name == base).map(|t| t.oid).or_else(|| {
        let element = base.strip_prefix('_')?;
        BUILTIN_TYPES.iter().find(|t| t.name == element && t.array_oid != 0).map(|t| t.array_oid)
    })
}

pub static PG_TYPE_COLUMNS: Columns = &[
    ("oid", Col::Oid),
    ("typname", Col::Name),
    ("typnamespace", Col::Oid),
    ("typowner", Col::Oid),
    ("typlen", Col::Int2),
    ("typbyval", Col::Bool),
    ("typtype", Col::Char),
    ("typcategory", Col::Char),
    ("typispreferred", Col::Bool),
    ("typisdefined", Col::Bool),
    ("typdelim", Col::Char),
    ("typrelid", Col::Oid),
    ("typsubscript", Col::Text),
    ("typelem", Col::Oid),
    ("typarray", Col::Oid),
    ("typinput", Col::Text),
    ("typoutput", Col::Text),
    ("typreceive", Col::Text),
    ("typsend", Col::Text),
    ("typmodin", Col::Text),
    ("typmodout", Col::Text),
    ("typanalyze", Col::Text),
    ("typalign", Col::Char),
    ("typstorage", Col::Char),
    ("typnotnull", Col::Bool),
    ("typbasetype", Col::Oid),
    ("typtypmod", Col::Int4),
    ("typndims", Col::Int4),
    ("typcollation", Col::Oid),
    ("typdefaultbin", Col::Text),
    ("typdefault", Col::Text),
    ("typacl", Col::TextArray),
];

/// `pg_type`: every built-in type and its array type.
pub fn pg_type_rows(_snapshot: &CatalogSnapshot) -> Vec<Row> {
    let mut rows = Vec::with_capacity(BUILTIN_TYPES.len() * 2);
    for ty in BUILTIN_TYPES {
        let modin = match ty.oid {
            BPCHAR | VARCHAR | NUMERIC | TIME | TIMETZ | TIMESTAMP | TIMESTAMPTZ | INTERVAL | BIT
            | VARBIT => format!("{}typmodin", ty.name),
            _ => "-".to_string(),
        };
        let modout = if modin == "-" { modin.clone() } else { format!("{}typmodout", ty.name) };
        let subscript = match ty.oid {
            INT2VECTOR | OIDVECTOR => "array_subscript_handler",
            NAME => "raw_array_subscript_handler",
            _ => "-",
        };
        let element = match ty.oid {
            INT2VECTOR => INT2,
            OIDVECTOR => OID,
            NAME => CHAR,
            _ => 0,
        };
        rows.push(row![
            ty.oid,
            ty.name,
            PG_CATALOG_NAMESPACE_OID,
            BOOTSTRAP_SUPERUSER_OID,
            ty.len,
            ty.by_val,
            ty.kind,
            ty.category,
            ty.preferred,
            true,
            ",",
            0i64,
            subscript,
            element,
            ty.array_oid,
            format!("{}in", ty.io),
            format!("{}out", ty.io),
            format!("{}recv", ty.io),
            format!("{}send", ty.io),
            modin.clone(),
            modout.clone(),
            "-",
            ty.align,
            ty.storage,
            false,
            0i64,
            -1i64,
            0i64,
            ty.collation,
            Value::Null,
            Value::Null,
            Value::Null,
        ]);
        if ty.array_oid != 0 {
            rows.push(row![
                ty.array_oid,
                format!("_{}", ty.name),
                PG_CATALOG_NAMESPACE_OID,
                BOOTSTRAP_SUPERUSER_OID,
                -1i64,
                false,
                "b",
                "A",
                false,
                true,
                ",",
                0i64,
                "array_subscript_handler",
                ty.oid,
                0i64,
                "array_in",
                "array_out",
                "array_recv",
                "array_send",
                modin,
                modout,
                "array_typanalyze",
                if ty.align == "d" { "d" } else { "i" },
                "x",
                false,
                0i64,
                -1i64,
                0i64,
                ty.collation,
                Value::Null,
                Value::Null,
                Value::Null,
            ]);
        }
    }
    rows
}

/// `information_schema.columns.data_type`: the SQL name without modifiers; `ARRAY` for
/// arrays, `USER-DEFINED` for anything else unknown.
pub fn information_schema_data_type(oid: i64) -> String {
    if array_element(oid).is_some() {
        return "ARRAY".to_string();
    }
    match builtin(oid) {
        Some(ty) => ty.sql_name.unwrap_or(ty.name).to_string(),
        None => "USER-DEFINED".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all_column_types() -> Vec<ColumnType> {
        vec![
            ColumnType::Boolean,
            ColumnType::Int2,
            ColumnType::Int4,
            ColumnType::Int8,
            ColumnType::Float4,
            ColumnType::Float8,
            ColumnType::Numeric { precision: None, scale: None },
            ColumnType::Numeric { precision: Some(10), scale: Some(2) },
            ColumnType::Numeric { precision: Some(5), scale: None },
            ColumnType::Numeric { precision: Some(38), scale: Some(-3) },
            ColumnType::Text,
            ColumnType::Varchar { length: None },
            ColumnType::Varchar { length: Some(20) },
            ColumnType::Bytea,
            ColumnType::Date,
            ColumnType::Time { precision: None },
            ColumnType::Time { precision: Some(2) },
            ColumnType::Timestamp { precision: None },
            ColumnType::Timestamp { precision: Some(0) },
            ColumnType::Timestamptz { precision: None },
            ColumnType::Timestamptz { precision: Some(3) },
            ColumnType::Interval { precision: None },
            ColumnType::Interval { precision: Some(1) },
            ColumnType::Json,
            ColumnType::Jsonb,
        ]
    }

    #[test]
    fn format_type_round_trips_every_column_type() {
        for ct in all_column_types() {
            assert_eq!(format_type(type_oid(&ct), Some(type_modifier(&ct))), ct.pg_display_name(), "{ct:?}");
        }
    }

    #[test]
    fn type_modifiers_use_postgres_encoding() {
        assert_eq!(type_modifier(&ColumnType::Varchar { length: Some(20) }), 24);
        assert_eq!(
            type_modifier(&ColumnType::Numeric { precision: Some(10), scale: Some(2) }),
            (10 << 16 | 2) + 4
        );
        assert_eq!(type_modifier(&ColumnType::Numeric { precision: None, scale: None }), -1);
        assert_eq!(type_modifier(&ColumnType::Text), -1);
        assert_eq!(numeric_precision_scale(655366), (10, 2));
        // PostgreSQL 15's atttypmod of timestamp(0), timestamptz(3), time(2), interval(1).
        assert_eq!(type_modifier(&ColumnType::Timestamp { precision: Some(0) }), 0);
        assert_eq!(type_modifier(&ColumnType::Timestamptz { precision: Some(3) }), 3);
        assert_eq!(type_modifier(&ColumnType::Time { precision: Some(2) }), 2);
        assert_eq!(type_modifier(&ColumnType::Interval { precision: Some(1) }), 2147418113);
        assert_eq!(interval_precision(2147418113), Some(1));
        assert_eq!(type_modifier(&ColumnType::Timestamp { precision: None }), -1);
    }

    #[test]
    fn format_type_matches_postgres_for_special_cases() {
        assert_eq!(format_type(BPCHAR, Some(-1)), "bpchar");
        assert_eq!(format_type(BPCHAR, None), "character");
        assert_eq!(format_type(BPCHAR, Some(9)), "character(5)");
        assert_eq!(format_type(CHAR, Some(-1)), "\"char\"");
        assert_eq!(format_type(1007, Some(-1)), "integer[]");
        assert_eq!(format_type(1015, Some(14)), "character varying(10)[]");
        assert_eq!(format_type(TIMESTAMPTZ, Some(3)), "timestamp(3) with time zone");
        assert_eq!(format_type(123_456, Some(-1)), "???");
    }

    #[test]
    fn regtype_names_resolve() {
        assert_eq!(type_oid_by_name("integer"), Some(INT4));
        assert_eq!(type_oid_by_name("int4"), Some(INT4));
        assert_eq!(type_oid_by_name("character varying(20)"), Some(VARCHAR));
        assert_eq!(type_oid_by_name("text[]"), Some(TEXT_ARRAY));
        assert_eq!(type_oid_by_name("_int4"), Some(1007));
        assert_eq!(type_oid_by_name("pg_catalog.timestamptz"), Some(TIMESTAMPTZ));
        assert_eq!(type_oid_by_name("\"char\""), Some(CHAR));
        assert_eq!(type_oid_by_name("hstore"), None);
    }
}
