//! The per-query memory limit (`[query] memory_limit_mb`).
//!
//! DataFusion tracks what its operators hold (hash tables of joins and aggregates, sort
//! buffers) against a memory pool, but without one it lets a single query grow until the
//! process is killed, taking every session with it. Each batch query gets its own pool of the
//! configured size: a query that needs more fails with SQLSTATE `53200` (out_of_memory) and a
//! hint naming the setting, and the server and every other session carry on. Sorts spill to
//! the system's temporary directory instead of failing; hash joins and aggregates that cannot
//! spill fail. The pool tracks the largest consumers so the message says which operator ran
//! out.

use std::num::NonZeroUsize;
use std::sync::Arc;

use datafusion::error::Result as DfResult;
use datafusion::execution::memory_pool::{GreedyMemoryPool, TrackConsumersPool};
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};

/// Memory one batch query may use unless `[query] memory_limit_mb` says otherwise.
pub const DEFAULT_MEMORY_LIMIT_MB: usize = 1024;

/// The hint a client gets with a query's out-of-memory error.
pub const HINT: &str =
    "The query needs more memory than one query may use; make it read less, or raise the server's [query] memory_limit_mb.";

/// A fresh runtime for one query, whose operators may hold at most `limit_bytes`.
pub fn query_runtime(limit_bytes: usize) -> DfResult<Arc<RuntimeEnv>> {
    let consumers_named = NonZeroUsize::new(3).unwrap_or(NonZeroUsize::MIN);
    let pool = TrackConsumersPool::new(GreedyMemoryPool::new(limit_bytes), consumers_named);
    RuntimeEnvBuilder::new().with_memory_pool(Arc::new(pool)).build_arc()
}
