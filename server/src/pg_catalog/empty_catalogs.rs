//! Catalogs of features Weir does not have (defaults, comments, dependencies, inheritance,
//! partitions, triggers, rules, sequences, policies, extended statistics, publications,
//! subscriptions, event triggers, foreign data): the right columns and no rows.
//!
//! psql reads them unconditionally while describing a table (`\d t`), so they must exist
//! with Postgres' column names and types; the registry gives each of them no rows.

use super::columns::{Col, Columns};

pub static PG_ATTRDEF: Columns =
    &[("oid", Col::Oid), ("adrelid", Col::Oid), ("adnum", Col::Int2), ("adbin", Col::Text)];

pub static PG_DESCRIPTION: Columns =
    &[("objoid", Col::Oid), ("classoid", Col::Oid), ("objsubid", Col::Int4), ("description", Col::Text)];

pub static PG_SHDESCRIPTION: Columns =
    &[("objoid", Col::Oid), ("classoid", Col::Oid), ("description", Col::Text)];

pub static PG_DEPEND: Columns = &[
    ("classid", Col::Oid),
    ("objid", Col::Oid),
    ("objsubid", Col::Int4),
    ("refclassid", Col::Oid),
    ("refobjid", Col::Oid),
    ("refobjsubid", Col::Int4),
    ("deptype", Col::Char),
];

pub static PG_INHERITS: Columns = &[
    ("inhrelid", Col::Oid),
    ("inhparent", Col::Oid),
    ("inhseqno", Col::Int4),
    ("inhdetachpending", Col::Bool),
];

pub static PG_PARTITIONED_TABLE: Columns = &[
    ("partrelid", Col::Oid),
    ("partstrat", Col::Char),
    ("partnatts", Col::Int2),
    ("partdefid", Col::Oid),
    ("partattrs", Col::Int2Array),
    ("partclass", Col::OidArray),
    ("partcollation", Col::OidArray),
    ("partexprs", Col::Text),
];

pub static PG_TRIGGER: Columns = &[
    ("oid", Col::Oid),
    ("tgrelid", Col::Oid),
    ("tgparentid", Col::Oid),
    ("tgname", Col::Name),
    ("tgfoid", Col::Oid),
    ("tgtype", Col::Int2),
    ("tgenabled", Col::Char),
    ("tgisinternal", Col::Bool),
    ("tgconstrrelid", Col::Oid),
    ("tgconstrindid", Col::Oid),
    ("tgconstraint", Col::Oid),
    ("tgdeferrable", Col::Bool),
    ("tginitdeferred", Col::Bool),
    ("tgnargs", Col::Int2),
    ("tgattr", Col::Int2Array),
    ("tgargs", Col::Text),
    ("tgqual", Col::Text),
    ("tgoldtable", Col::Name),
    ("tgnewtable", Col::Name),
];

pub static PG_REWRITE: Columns = &[
    ("oid", Col::Oid),
    ("rulename", Col::Name),
    ("ev_class", Col::Oid),
    ("ev_type", Col::Char),
    ("ev_enabled", Col::Char),
    ("is_instead", Col::Bool),
    ("ev_qual", Col::Text),
    ("ev_action", Col::Text),
];

pub static PG_SEQUENCE: Columns = &[
    ("seqrelid", Col::Oid),
    ("seqtypid", Col::Oid),
    ("seqstart", Col::Int8),
    ("seqincrement", Col::Int8),
    ("seqmax", Col::Int8),
    ("seqmin", Col::Int8),
    ("seqcache", Col::Int8),
    ("seqcycle", Col::Bool),
];

pub static PG_POLICY: Columns = &[
    ("oid", Col::Oid),
    ("polname", Col::Name),
    ("polrelid", Col::Oid),
    ("polcmd", Col::Char),
    ("polpermissive", Col::Bool),
    ("polroles", Col::OidArray),
    ("polqual", Col::Text),
    ("polwithcheck", Col::Text),
];

pub static PG_STATISTIC_EXT: Columns = &[
    ("oid", Col::Oid),
    ("stxrelid", Col::Oid),
    ("stxname", Col::Name),
    ("stxnamespace", Col::Oid),
    ("stxowner", Col::Oid),
    ("stxstattarget", Col::Int4),
    ("stxkeys", Col::Int2Array),
    ("stxkind", Col::CharArray),
    ("stxexprs", Col::Text),
];

pub static PG_PUBLICATION: Columns = &[
    ("oid", Col::Oid),
    ("pubname", Col::Name),
    ("pubowner", Col::Oid),
    ("puballtables", Col::Bool),
    ("pubinsert", Col::Bool),
    ("pubupdate", Col::Bool),
    ("pubdelete", Col::Bool),
    ("pubtruncate", Col::Bool),
    ("pubviaroot", Col::Bool),
];

pub static PG_PUBLICATION_NAMESPACE: Columns =
    &[("oid", Col::Oid), ("pnpubid", Col::Oid), ("pnnspid", Col::Oid)];

pub static PG_PUBLICATION_REL: Columns = &[
    ("oid", Col::Oid),
    ("prpubid", Col::Oid),
    ("prrelid", Col::Oid),
    ("prqual", Col::Text),
    ("prattrs", Col::Int2Array),
];

/// Event triggers, subscriptions and foreign data: none exist in a fresh Postgres either.
pub static PG_EVENT_TRIGGER: Columns = &[
    ("oid", Col::Oid),
    ("evtname", Col::Name),
    ("evtevent", Col::Name),
    ("evtowner", Col::Oid),
    ("evtfoid", Col::Oid),
    ("evtenabled", Col::Char),
    ("evttags", Col::TextArray),
];

pub static PG_SUBSCRIPTION: Columns = &[
    ("oid", Col::Oid),
    ("subdbid", Col::Oid),
    ("subskiplsn", Col::Text),
    ("subname", Col::Name),
    ("subowner", Col::Oid),
    ("subenabled", Col::Bool),
    ("subbinary", Col::Bool),
    ("substream", Col::Bool),
    ("subtwophasestate", Col::Char),
    ("subdisableonerr", Col::Bool),
    ("subconninfo", Col::Text),
    ("subslotname", Col::Name),
    ("subsynccommit", Col::Text),
    ("subpublications", Col::TextArray),
];

pub static PG_FOREIGN_DATA_WRAPPER: Columns = &[
    ("oid", Col::Oid),
    ("fdwname", Col::Name),
    ("fdwowner", Col::Oid),
    ("fdwhandler", Col::Oid),
    ("fdwvalidator", Col::Oid),
    ("fdwacl", Col::TextArray),
    ("fdwoptions", Col::TextArray),
];

pub static PG_FOREIGN_SERVER: Columns = &[
    ("oid", Col::Oid),
    ("srvname", Col::Name),
    ("srvowner", Col::Oid),
    ("srvfdw", Col::Oid),
    ("srvtype", Col::Text),
    ("srvversion", Col::Text),
    ("srvacl", Col::TextArray),
    ("srvoptions", Col::TextArray),
];

pub static PG_FOREIGN_TABLE: Columns =
    &[("ftrelid", Col::Oid), ("ftserver", Col::Oid), ("ftoptions", Col::TextArray)];
