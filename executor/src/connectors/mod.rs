//! Connectors: where a source's rows come from.
//!
//! A source is declared with `CREATE SOURCE ... WITH (connector = '...', ...)`. Its connector
//! validates the options once, at CREATE time ([`open_connector`]), and later opens one
//! [`SplitReader`] per split; each split is read by its own source subtask. A reader is
//! plain, blocking, synchronous code: the source task (see `sources::connector`)
//! runs its reads on the bounded reader pool (`sources::reader_pool`), generates watermarks, injects barriers between batches
//! and records offsets, so a connector only has to turn its input into Arrow batches of the
//! declared schema and say where it is.
//!
//! Every reader is resumable: `offset()` is a JSON value that, given to `seek` on a freshly
//! opened reader of the same split, continues right after the last row returned. That is
//! what checkpoints record.

pub mod datagen;
pub mod file;
pub mod file_access;
pub mod metrics;
pub mod nexmark;
mod options;
mod prng;
pub mod split_limit;
mod type_names;

pub use file_access::FileAccess;
pub use options::check_known_options;
pub use split_limit::SplitLimit;

use std::collections::BTreeMap;
use std::time::Duration;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use thiserror::Error;

use crate::error::{ExecError, ExecResult};

/// `WITH (...)` options of a source, keys lower-cased, `connector` itself excluded.
pub type ConnectorOptions = BTreeMap<String, String>;

/// Rows per batch a reader returns unless its options say otherwise.
pub const DEFAULT_BATCH_ROWS: usize = 8192;

/// A source definition the user must fix: unknown option, bad value, missing file...
/// The server reports it as SQLSTATE 22023 (invalid_parameter_value).
#[derive(Debug, Error)]
#[error("{0}")]
pub struct OptionError(pub String);

impl From<OptionError> for ExecError {
    fn from(e: OptionError) -> Self {
        ExecError::Connector(e.0)
    }
}

/// What one call to [`SplitReader::next_batch`] produced.
#[derive(Debug)]
pub enum ReadOutcome {
    /// Rows in the source's declared schema (never empty).
    Batch(RecordBatch),
    /// Nothing to return before this much time has passed (a rate limit, or an unbounded
    /// input with nothing new yet). The caller keeps serving barriers meanwhile.
    Wait(Duration),
    /// A bounded split has been read to its end; later calls keep returning `Finished`.
    Finished,
}

/// A malformed input row that was skipped (or, with `on_error = 'fail'`, that failed the
/// source).
#[derive(Debug, Clone, PartialEq)]
pub struct RowError {
    /// Where the row is, for a person to find it: e.g. `bids.csv line 1234`.
    pub location: String,
    /// What is wrong with it: e.g. `column price: cannot parse "abc" as bigint`.
    pub reason: String,
}

/// A resumable, ordered reader of one split.
pub trait SplitReader: Send {
    /// Reads the next rows (at most the connector's batch size).
    fn next_batch(&mut self) -> ExecResult<ReadOutcome>;

    /// Malformed rows skipped since the last call, oldest first (drained by the caller).
    fn take_errors(&mut self) -> Vec<RowError> {
        Vec::new()
    }

    /// The position right after the last row returned.
    fn offset(&self) -> serde_json::Value;

    /// Moves a freshly opened reader to `offset` (a value `offset()` returned before).
    fn seek(&mut self, offset: &serde_json::Value) -> ExecResult<()>;

    /// Lets the reader run part of its work (decoding what it has read) on `pool`'s other
    /// threads, ahead of the batches asked for. Readers whose work does not split ignore it.
    fn decode_on(&mut self, _pool: &crate::sources::reader_pool::ReaderPool) {}

    /// Says which columns (indices of the connector's schema, ascending) the job uses. A
    /// reader may then return the others as placeholders (zeros, empty strings) rather than
    /// their values, to spare building and carrying them; it still checks them, so the
    /// rows it skips as malformed are the same whichever columns a job uses.
    fn read_only(&mut self, _columns: &[usize]) {}
}

/// A configured connector: knows its splits and opens readers for them.
pub trait Connector: Send + Sync {
    /// Number of splits; the source vertex runs one subtask per split.
    fn splits(&self) -> usize;

    /// Opens split `split` (in `0..splits()`), positioned at its beginning.
    fn open(&self, split: usize) -> ExecResult<Box<dyn SplitReader>>;

    /// Whether every split ends (a file) or runs forever (a generator without an event count).
    fn bounded(&self) -> bool;
}

/// Options every source accepts, handled by the source task rather than the connector.
pub const COMMON_OPTIONS: &[&str] = &["on_error", "idle_timeout_ms"];

/// Validates `options` for connector `name` against the declared `schema` and returns the
/// configured connector. Called at `CREATE SOURCE` (so mistakes are reported there) and
/// again when a job deploys. A `file` source may only read files `files` allows, and no
/// source may have more splits than `limit` allows.
pub fn open_connector(
    name: &str,
    options: &ConnectorOptions,
    schema: SchemaRef,
    files: &FileAccess,
    limit: SplitLimit,
) -> ExecResult<Box<dyn Connector>> {
    let options: ConnectorOptions = options
        .iter()
        .filter(|(k, _)| !COMMON_OPTIONS.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let connector: Box<dyn Connector> = match name.to_ascii_lowercase().as_str() {
        "file" => Box::new(file::FileConnector::new(&options, schema, files, limit)?),
        "nexmark" => Box::new(nexmark::NexmarkConnector::new(&options, schema)?),
        "datagen" => Box::new(datagen::DatagenConnector::new(&options, schema)?),
        other => {
            return Err(OptionError(format!(
                "unknown connector '{other}'; the connectors are 'file', 'nexmark' and 'datagen'"
            ))
            .into())
        }
    };
    limit.check(connector.splits(), || format!("its {name} options ask for {}", connector.splits()))?;
    Ok(connector)
}
