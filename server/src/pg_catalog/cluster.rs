//! Objects outside any schema: the database, roles, settings, tablespaces, access methods,
//! collations, languages — and the function/type catalogs Weir leaves empty.
//!
//! Weir serves one database. Its roles are the bootstrap superuser (`auth.user`), the
//! predefined roles and those made with `CREATE ROLE` (see `privileges.rs`).

use super::columns::{row, Col, Columns, Row, Value};
use super::types::{C_COLLATION_OID, DEFAULT_COLLATION_OID, POSIX_COLLATION_OID};
use super::{
    CatalogSnapshot, BOOTSTRAP_SUPERUSER_OID, BTREE_AM_OID, DATABASE_OID, HEAP_AM_OID,
    PG_CATALOG_NAMESPACE_OID,
};

/// `pg_database.encoding` of UTF8.
pub const UTF8_ENCODING: i64 = 6;
/// Weir compares strings bytewise: the C collation over UTF-8.
const LOCALE: &str = "C.UTF-8";

/// Names of role oids, as `pg_get_userbyid` prints them.
pub fn role_name(snapshot: &CatalogSnapshot, oid: i64) -> String {
    match snapshot.privileges.roles().into_iter().find(|r| r.oid == oid) {
        Some(role) => role.name,
        None => format!("unknown (OID={oid})"),
    }
}

pub fn role_oid(snapshot: &CatalogSnapshot, name: &str) -> Option<i64> {
    snapshot.privileges.role(name).map(|r| r.oid)
}

/// `pg_encoding_to_char`.
pub fn encoding_name(encoding: i64) -> &'static str {
    match encoding {
        0 => "SQL_ASCII",
        UTF8_ENCODING => "UTF8",
        _ => "",
    }
}

pub static PG_DATABASE: Columns = &[
    ("oid", Col::Oid),
    ("datname", Col::Name),
    ("datdba", Col::Oid),
    ("encoding", Col::Int4),
    ("datlocprovider", Col::Char),
    ("datistemplate", Col::Bool),
    ("datallowconn", Col::Bool),
    ("datconnlimit", Col::Int4),
    ("datfrozenxid", Col::Int8),
    ("datminmxid", Col::Int8),
    ("dattablespace", Col::Oid),
    ("datcollate", Col::Text),
    ("datctype", Col::Text),
    ("daticulocale", Col::Text),
    ("datcollversion", Col::Text),
    ("datacl", Col::TextArray),
];

pub fn pg_database(snapshot: &CatalogSnapshot) -> Vec<Row> {
    vec![row![
        DATABASE_OID,
        snapshot.database.as_str(),
        BOOTSTRAP_SUPERUSER_OID,
        UTF8_ENCODING,
        "c",
        false,
        true,
        -1i64,
        0i64,
        1i64,
        1663i64,
        LOCALE,
        LOCALE,
        Value::Null,
        Value::Null,
        Value::Null,
    ]]
}

pub static PG_AUTHID: Columns = &[
    ("oid", Col::Oid),
    ("rolname", Col::Name),
    ("rolsuper", Col::Bool),
    ("rolinherit", Col::Bool),
    ("rolcreaterole", Col::Bool),
    ("rolcreatedb", Col::Bool),
    ("rolcanlogin", Col::Bool),
    ("rolreplication", Col::Bool),
    ("rolbypassrls", Col::Bool),
    ("rolconnlimit", Col::Int4),
    ("rolpassword", Col::Text),
    ("rolvaliduntil", Col::Timestamptz),
];

/// `pg_authid`: every role, with its SCRAM verifier (Postgres shows this catalog to
/// superusers only; Weir's catalogs are readable by all, so the verifier is masked for
/// anyone else).
pub fn pg_authid(snapshot: &CatalogSnapshot) -> Vec<Row> {
    let reader_is_superuser = snapshot.privileges.is_superuser(&snapshot.user);
    snapshot
        .privileges
        .roles()
        .into_iter()
        .map(|r| {
            let password = match &r.password {
                Some(p) if reader_is_superuser => Value::Text(p.clone()),
                Some(_) => Value::Text("********".into()),
                None => Value::Null,
            };
            row![
                r.oid,
                r.name,
                r.superuser,
                true,
                r.create_role,
                r.bootstrap,
                r.login,
                r.bootstrap,
                r.bootstrap,
                -1i64,
                password,
                Value::Null
            ]
        })
        .collect()
}

pub static PG_ROLES: Columns = &[
    ("rolname", Col::Name),
    ("rolsuper", Col::Bool),
    ("rolinherit", Col::Bool),
    ("rolcreaterole", Col::Bool),
    ("rolcreatedb", Col::Bool),
    ("rolcanlogin", Col::Bool),
    ("rolreplication", Col::Bool),
    ("rolconnlimit", Col::Int4),
    ("rolpassword", Col::Text),
    ("rolvaliduntil", Col::Timestamptz),
    ("rolbypassrls", Col::Bool),
    ("rolconfig", Col::TextArray),
    ("oid", Col::Oid),
];

pub fn pg_roles(snapshot: &CatalogSnapshot) -> Vec<Row> {
    snapshot
        .privileges
        .roles()
        .into_iter()
        .map(|r| {
            row![
                r.name,
                r.superuser,
                true,
                r.create_role,
                r.bootstrap,
                r.login,
                r.bootstrap,
                -1i64,
                "********",
                Value::Null,
                r.bootstrap,
                Value::Null,
                r.oid
            ]
        })
        .collect()
}

pub static PG_USER: Columns = &[
    ("usename", Col::Name),
    ("usesysid", Col::Oid),
    ("usecreatedb", Col::Bool),
    ("usesuper", Col::Bool),
    ("userepl", Col::Bool),
    ("usebypassrls", Col::Bool),
    ("passwd", Col::Text),
    ("valuntil", Col::Timestamptz),
    ("useconfig", Col::TextArray),
];

/// `pg_user`: the roles that can log in.
pub fn pg_user(snapshot: &CatalogSnapshot) -> Vec<Row> {
    snapshot
        .privileges
        .roles()
        .into_iter()
        .filter(|r| r.login)
        .map(|r| {
            row![
                r.name,
                r.oid,
                r.bootstrap,
                r.superuser,
                r.bootstrap,
                r.bootstrap,
                "********",
                Value::Null,
                Value::Null,
            ]
        })
        .collect()
}

pub static PG_AUTH_MEMBERS: Columns =
    &[("roleid", Col::Oid), ("member", Col::Oid), ("grantor", Col::Oid), ("admin_option", Col::Bool)];

/// `pg_auth_members`: one row per membership (`GRANT role TO member`), granted by the
/// bootstrap superuser.
pub fn pg_auth_members(snapshot: &CatalogSnapshot) -> Vec<Row> {
    snapshot
        .privileges
        .memberships()
        .into_iter()
        .filter_map(|(role, member)| {
            let role = role_oid(snapshot, &role)?;
            let member = role_oid(snapshot, &member)?;
            Some(row![role, member, BOOTSTRAP_SUPERUSER_OID, false])
        })
        .collect()
}

pub static PG_TABLESPACE: Columns = &[
    ("oid", Col::Oid),
    ("spcname", Col::Name),
    ("spcowner", Col::Oid),
    ("spcacl", Col::TextArray),
    ("spcoptions", Col::TextArray),
];

pub fn pg_tablespace(_snapshot: &CatalogSnapshot) -> Vec<Row> {
    vec![
        row![1663i64, "pg_default", BOOTSTRAP_SUPERUSER_OID, Value::Null, Value::Null],
        row![1664i64, "pg_global", BOOTSTRAP_SUPERUSER_OID, Value::Null, Value::Null],
    ]
}

pub static PG_SETTINGS: Columns = &[
    ("name", Col::Text),
    ("setting", Col::Text),
    ("unit", Col::Text),
    ("category", Col::Text),
    ("short_desc", Col::Text),
    ("extra_desc", Col::Text),
    ("context", Col::Text),
    ("vartype", Col::Text),
    ("source", Col::Text),
    ("min_val", Col::Text),
    ("max_val", Col::Text),
    ("enumvals", Col::TextArray),
    ("boot_val", Col::Text),
    ("reset_val", Col::Text),
    ("sourcefile", Col::Text),
    ("sourceline", Col::Int4),
    ("pending_restart", Col::Bool),
];

/// Settings every server reports besides the session's own.
pub fn settings(snapshot: &CatalogSnapshot) -> Vec<(String, String)> {
    let mut all = snapshot.settings.clone();
    let mut add = |name: &str, value: String| {
        if !all.iter().any(|(n, _)| n.eq_ignore_ascii_case(name)) {
            all.push((name.to_string(), value));
        }
    };
    add("server_version", snapshot.server_version.clone());
    add("server_version_num", server_version_num(&snapshot.server_version));
    add("lc_collate", LOCALE.to_string());
    add("lc_ctype", LOCALE.to_string());
    all.sort_by_key(|(n, _)| n.to_ascii_lowercase());
    all
}

/// `15.2` -> `150002`.
pub fn server_version_num(version: &str) -> String {
    let mut parts = version.split(|c: char| !c.is_ascii_digit()).filter(|p| !p.is_empty());
    let major: i64 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    let minor: i64 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    (major * 10_000 + minor).to_string()
}

pub fn pg_settings(snapshot: &CatalogSnapshot) -> Vec<Row> {
    settings(snapshot)
        .into_iter()
        .map(|(name, value)| {
            let vartype = if matches!(value.as_str(), "on" | "off") {
                "bool"
            } else if value.parse::<i64>().is_ok() {
                "integer"
            } else {
                "string"
            };
            row![
                name,
                value.as_str(),
                Value::Null,
                Value::Null,
                Value::Null,
                Value::Null,
                "user",
                vartype,
                "default",
                Value::Null,
                Value::Null,
                Value::Null,
                value.as_str(),
                value.as_str(),
                Value::Null,
                Value::Null,
                false,
            ]
        })
        .collect()
}

pub static PG_AM: Columns =
    &[("oid", Col::Oid), ("amname", Col::Name), ("amhandler", Col::Text), ("amtype", Col::Char)];

pub fn pg_am(_snapshot: &CatalogSnapshot) -> Vec<Row> {
    vec![
        row![HEAP_AM_OID, "heap", "heap_tableam_handler", "t"],
        row![BTREE_AM_OID, "btree", "bthandler", "i"],
        row![405i64, "hash", "hashhandler", "i"],
        row![783i64, "gist", "gisthandler", "i"],
        row![2742i64, "gin", "ginhandler", "i"],
        row![4000i64, "spgist", "spghandler", "i"],
        row![3580i64, "brin", "brinhandler", "i"],
    ]
}

pub static PG_COLLATION: Columns = &[
    ("oid", Col::Oid),
    ("collname", Col::Name),
    ("collnamespace", Col::Oid),
    ("collowner", Col::Oid),
    ("collprovider", Col::Char),
    ("collisdeterministic", Col::Bool),
    ("collencoding", Col::Int4),
    ("collcollate", Col::Text),
    ("collctype", Col::Text),
    ("colliculocale", Col::Text),
    ("collversion", Col::Text),
];

pub fn pg_collation(_snapshot: &CatalogSnapshot) -> Vec<Row> {
    let ns = PG_CATALOG_NAMESPACE_OID;
    let owner = BOOTSTRAP_SUPERUSER_OID;
    vec![
        row![
            DEFAULT_COLLATION_OID,
            "default",
            ns,
            owner,
            "d",
            true,
            -1i64,
            Value::Null,
            Value::Null,
            Value::Null,
            Value::Null
        ],
        row![C_COLLATION_OID, "C", ns, owner, "c", true, -1i64, "C", "C", Value::Null, Value::Null],
        row![
            POSIX_COLLATION_OID,
            "POSIX",
            ns,
            owner,
            "c",
            true,
            -1i64,
            "POSIX",
            "POSIX",
            Value::Null,
            Value::Null
        ],
    ]
}

pub static PG_LANGUAGE: Columns = &[
    ("oid", Col::Oid),
    ("lanname", Col::Name),
    ("lanowner", Col::Oid),
    ("lanispl", Col::Bool),
    ("lanpltrusted", Col::Bool),
    ("lanplcallfoid", Col::Oid),
    ("laninline", Col::Oid),
    ("lanvalidator", Col::Oid),
    ("lanacl", Col::TextArray),
];

pub fn pg_language(_snapshot: &CatalogSnapshot) -> Vec<Row> {
    let owner = BOOTSTRAP_SUPERUSER_OID;
    vec![
        row![12i64, "internal", owner, false, false, 0i64, 0i64, 2246i64, Value::Null],
        row![13i64, "c", owner, false, false, 0i64, 0i64, 2247i64, Value::Null],
        row![14i64, "sql", owner, false, true, 0i64, 0i64, 2248i64, Value::Null],
    ]
}

pub static PG_PROC: Columns = &[
    ("oid", Col::Oid),
    ("proname", Col::Name),
    ("pronamespace", Col::Oid),
    ("proowner", Col::Oid),
    ("prolang", Col::Oid),
    ("procost", Col::Float4),
    ("prorows", Col::Float4),
    ("provariadic", Col::Oid),
    ("prosupport", Col::Text),
    ("prokind", Col::Char),
    ("prosecdef", Col::Bool),
    ("proleakproof", Col::Bool),
    ("proisstrict", Col::Bool),
    ("proretset", Col::Bool),
    ("provolatile", Col::Char),
    ("proparallel", Col::Char),
    ("pronargs", Col::Int2),
    ("pronargdefaults", Col::Int2),
    ("prorettype", Col::Oid),
    ("proargtypes", Col::OidArray),
    ("proallargtypes", Col::OidArray),
    ("proargmodes", Col::CharArray),
    ("proargnames", Col::TextArray),
    ("proargdefaults", Col::Text),
    ("protrftypes", Col::OidArray),
    ("prosrc", Col::Text),
    ("probin", Col::Text),
    ("prosqlbody", Col::Text),
    ("proconfig", Col::TextArray),
    ("proacl", Col::TextArray),
];

pub static PG_ENUM: Columns =
    &[("oid", Col::Oid), ("enumtypid", Col::Oid), ("enumsortorder", Col::Float4), ("enumlabel", Col::Name)];

pub static PG_RANGE: Columns = &[
    ("rngtypid", Col::Oid),
    ("rngsubtype", Col::Oid),
    ("rngmultitypid", Col::Oid),
    ("rngcollation", Col::Oid),
    ("rngsubopc", Col::Oid),
    ("rngcanonical", Col::Text),
    ("rngsubdiff", Col::Text),
];

pub static PG_EXTENSION: Columns = &[
    ("oid", Col::Oid),
    ("extname", Col::Name),
    ("extowner", Col::Oid),
    ("extnamespace", Col::Oid),
    ("extrelocatable", Col::Bool),
    ("extversion", Col::Text),
    ("extconfig", Col::OidArray),
    ("extcondition", Col::TextArray),
];
