//! The catalog's format version, and the upgrade of catalogs written by earlier versions.
//!
//! The catalog column family holds `meta/catalog_format` (a big-endian `u32`). A data
//! directory without it was written before the version existed (format 1), where a view's
//! or sink's JobGraph was JSON text inside the definition's JSON, named its job
//! `view_id`/`view_name`, and carried watermarks as `{column, expr}` over positional names.
//! Opening such a directory rewrites those definitions in the current format, in one synced
//! write batch, before anything reads them; a directory written by a newer Weir is refused.
//! Anything that still cannot be read stops the server at startup with the object's name,
//! rather than leaving a view silently without its job.

use rocksdb::{WriteBatch, DB};
use serde_json::{json, Map, Value};
use tracing::info;

use crate::error::{StorageError, StorageResult};

/// The format this version writes.
pub const CATALOG_FORMAT: u32 = 2;

pub(crate) const FORMAT_KEY: &[u8] = b"meta/catalog_format";

/// Brings the catalog in `cf` to [`CATALOG_FORMAT`]; `prefixes` are the key prefixes of
/// definitions that hold a JobGraph (views and sinks).
pub(crate) fn upgrade(db: &DB, cf: &rocksdb::ColumnFamily, prefixes: &[&[u8]]) -> StorageResult<()> {
    let version = match db.get_cf(cf, FORMAT_KEY)? {
        Some(bytes) => u32::from_be_bytes(
            bytes.as_slice().try_into().map_err(|_| corrupt("the catalog format version is not 4 bytes"))?,
        ),
        None => 1,
    };
    if version == CATALOG_FORMAT {
        return Ok(());
    }
    if version > CATALOG_FORMAT {
        return Err(corrupt(format!(
            "the catalog was written in format {version} by a newer Weir; this version reads formats up to \
             {CATALOG_FORMAT}"
        )));
    }
    let mut batch = WriteBatch::default();
    let mut upgraded = 0usize;
    for prefix in prefixes {
        for item in db.prefix_iterator_cf(cf, prefix) {
            let (key, value) = item?;
            if !key.starts_with(prefix) {
                break;
            }
            let what = String::from_utf8_lossy(&key[..prefix.len().saturating_sub(1)]).into_owned();
            let mut def: Value = serde_json::from_slice(&value)
                .map_err(|e| corrupt(format!("{what} definition is not JSON: {e}")))?;
            upgrade_definition(&mut def).map_err(|e| corrupt(format!("{what} {}: {e}", name_of(&def))))?;
            let bytes = serde_json::to_vec(&def).map_err(|e| corrupt(e.to_string()))?;
            batch.put_cf(cf, &key, bytes);
            upgraded += 1;
        }
    }
    batch.put_cf(cf, FORMAT_KEY, CATALOG_FORMAT.to_be_bytes());
    let mut opts = rocksdb::WriteOptions::default();
    opts.set_sync(true);
    db.write_opt(batch, &opts)?;
    match upgraded {
        // A new data directory (or one without views or sinks) only gets the version.
        0 => tracing::debug!(format = CATALOG_FORMAT, "catalog format recorded"),
        _ => info!(from = version, to = CATALOG_FORMAT, definitions = upgraded, "catalog format upgraded"),
    }
    Ok(())
}

/// Format 1 → 2 of one view or sink definition.
fn upgrade_definition(def: &mut Value) -> Result<(), String> {
    let object = def.as_object_mut().ok_or("is not a JSON object")?;
    let graph = match object.get("job_graph") {
        Some(Value::String(text)) => {
            serde_json::from_str::<Value>(text).map_err(|e| format!("has an unreadable job graph: {e}"))?
        }
        _ => return Err("has no job graph".into()),
    };
    object.insert("job_graph".into(), upgrade_graph(graph)?);
    Ok(())
}

fn upgrade_graph(mut graph: Value) -> Result<Value, String> {
    let object = graph.as_object_mut().ok_or("job graph is not a JSON object")?;
    let id = object.remove("view_id").ok_or("job graph has no view_id")?;
    let name = object.remove("view_name").ok_or("job graph has no view_name")?;
    let vertices =
        object.get_mut("vertices").and_then(Value::as_array_mut).ok_or("job graph has no vertices")?;
    let mut sink = false;
    for vertex in vertices.iter_mut() {
        let Some(vertex) = vertex.as_object_mut() else { continue };
        sink |= vertex
            .get("chain")
            .and_then(Value::as_array)
            .is_some_and(|chain| chain.iter().any(|op| op.get("Sink").is_some()));
        // A source is `{"Table": {...}}`, `{"Connector": {...}}` or `{"View": {...}}`.
        if let Some(source) = vertex.get_mut("source").and_then(Value::as_object_mut) {
            for spec in source.values_mut() {
                if let Some(watermark) = spec.get("watermark").and_then(Value::as_object) {
                    let upgraded = upgrade_watermark(watermark)?;
                    spec["watermark"] = upgraded;
                }
            }
        }
    }
    let kind = if sink { "Sink" } else { "MaterializedView" };
    object.insert("target".into(), json!({ "id": id, "name": name, "kind": kind }));
    Ok(graph)
}

/// `{column, expr}` over positional names becomes the catalog's watermark, whose `expr` is
/// for display and `positional_expr` is what the runtime compiles.
fn upgrade_watermark(old: &Map<String, Value>) -> Result<Value, String> {
    let column = old.get("column").cloned().ok_or("watermark has no column")?;
    let expr = old.get("expr").cloned().ok_or("watermark has no expression")?;
    Ok(json!({ "column": column, "expr": expr.clone(), "positional_expr": expr }))
}

fn name_of(def: &Value) -> String {
    let name = def.get("name").or_else(|| def.get("relation").and_then(|r| r.get("name")));
    match name.and_then(Value::as_str) {
        Some(name) => format!("\"{name}\""),
        None => "(unnamed)".into(),
    }
}

fn corrupt(message: impl Into<String>) -> StorageError {
    StorageError::CorruptCatalog(message.into())
}

#[cfg(test)]
mod tests {
    use rocksdb::{ColumnFamilyDescriptor, Options, DB};
    use serde_json::json;
    use weir_plan::job_graph::{OperatorSpec, SourceSpec};
    use weir_plan::TargetKind;

    use crate::store::{CF_CATALOG, CF_LOG, CF_ROWS};
    use crate::Store;

    /// Writes catalog entries as a Weir without a format version did.
    fn write_format_1(dir: &std::path::Path, entries: &[(Vec<u8>, serde_json::Value)]) {
        let mut opts = Options::default();
        opts.create_if_missing(true);
        opts.create_missing_column_families(true);
        let cfs =
            [CF_CATALOG, CF_ROWS, CF_LOG].map(|name| ColumnFamilyDescriptor::new(name, Options::default()));
        let db = DB::open_cf_descriptors(&opts, dir.join("rocksdb"), cfs).unwrap();
        let cf = db.cf_handle(CF_CATALOG).unwrap();
        for (key, value) in entries {
            db.put_cf(cf, key, serde_json::to_vec(value).unwrap()).unwrap();
        }
    }

    fn sink_key(id: u64) -> Vec<u8> {
        let mut key = b"sink/".to_vec();
        key.extend_from_slice(&id.to_be_bytes());
        key
    }

    /// A sink over a watermarked source, as format 1 stored it: the graph as JSON text.
    fn format_1_sink(graph_text: String) -> serde_json::Value {
        json!({
            "id": 5, "schema_name": "public", "name": "out", "definition": "SELECT * FROM s",
            "connector": "blackhole", "options": {}, "depends_on": [4],
            "job_graph": graph_text, "created_at": 0
        })
    }

    #[test]
    fn a_format_1_catalog_is_upgraded_and_keeps_its_jobs() {
        let dir = tempfile::tempdir().unwrap();
        let graph = json!({
            "view_id": 5,
            "view_name": "out",
            "vertices": [{
                "id": 0,
                "parallelism": 1,
                "source": {"Connector": {
                    "source_id": 4, "source_name": "s", "connector": "datagen", "options": {},
                    "schema": [{"name": "ts", "data_type": "Timestamp(µs)"}],
                    "watermark": {"column": 0, "expr": "_c0 - INTERVAL '1' SECOND"}
                }},
                "inputs": [],
                "chain": [{"Sink": {"sink_id": 5, "connector": "blackhole", "options": {}}}]
            }]
        });
        write_format_1(dir.path(), &[(sink_key(5), format_1_sink(graph.to_string()))]);

        let store = Store::open(dir.path()).unwrap();
        let sink = store.sink("public", "out").unwrap();
        assert_eq!(sink.job_graph.id(), 5);
        assert_eq!(sink.job_graph.target.name, "out");
        assert_eq!(sink.job_graph.target.kind, TargetKind::Sink);
        assert!(matches!(sink.job_graph.vertices[0].chain[0], OperatorSpec::Sink { .. }));
        let Some(SourceSpec::Connector { watermark: Some(watermark), .. }) =
            &sink.job_graph.vertices[0].source
        else {
            panic!("the source lost its watermark")
        };
        assert_eq!(watermark.positional_expr, "_c0 - INTERVAL '1' SECOND");
        drop(store);
        // Written back in the current format: a second open reads it as is.
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.sink("public", "out").unwrap().job_graph.target.name, "out");
    }

    #[test]
    fn a_table_written_before_time_precisions_were_kept_opens() {
        use weir_plan::catalog::ColumnType;
        let dir = tempfile::tempdir().unwrap();
        let mut key = b"table/".to_vec();
        key.extend_from_slice(&3u64.to_be_bytes());
        // Columns as a Weir that dropped `timestamp(0)`'s precision wrote them.
        let table = json!({
            "id": 3, "schema_name": "public", "name": "events", "primary_key": [],
            "columns": [
                {"name": "ts", "column_type": {"type": "timestamp"}, "not_null": false},
                {"name": "tz", "column_type": {"type": "timestamptz"}, "not_null": false},
                {"name": "t", "column_type": {"type": "time"}, "not_null": false},
                {"name": "i", "column_type": {"type": "interval"}, "not_null": false}
            ]
        });
        write_format_1(dir.path(), &[(key, table)]);
        let store = Store::open(dir.path()).unwrap();
        let def = store.table("public", "events").expect("the table opens").def();
        let types: Vec<_> = def.columns.iter().map(|c| c.column_type.clone()).collect();
        assert_eq!(
            types,
            vec![
                ColumnType::Timestamp { precision: None },
                ColumnType::Timestamptz { precision: None },
                ColumnType::Time { precision: None },
                ColumnType::Interval { precision: None },
            ]
        );
    }

    #[test]
    fn an_unreadable_job_graph_stops_startup_naming_the_object() {
        let dir = tempfile::tempdir().unwrap();
        write_format_1(dir.path(), &[(sink_key(5), format_1_sink("{not json".into()))]);
        let err = Store::open(dir.path()).err().expect("opening must fail").to_string();
        assert!(err.contains("\"out\"") && err.contains("unreadable job graph"), "{err}");
    }

    #[test]
    fn a_catalog_from_a_newer_weir_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        drop(Store::open(dir.path()).unwrap());
        {
            let cfs =
                [CF_CATALOG, CF_ROWS, CF_LOG].map(|n| ColumnFamilyDescriptor::new(n, Options::default()));
            let db = DB::open_cf_descriptors(&Options::default(), dir.path().join("rocksdb"), cfs).unwrap();
            db.put_cf(db.cf_handle(CF_CATALOG).unwrap(), super::FORMAT_KEY, 99u32.to_be_bytes()).unwrap();
        }
        let err = Store::open(dir.path()).err().expect("opening must fail").to_string();
        assert!(err.contains("format 99"), "{err}");
    }
}
