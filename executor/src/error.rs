//! Errors of the streaming runtime. Each says which layer failed; task-level failures are
//! wrapped with the operator and epoch they happened in. Each variant carries the SQLSTATE
//! a client gets for it ([`ExecError::sqlstate`]).

use arrow::error::ArrowError;
use datafusion::error::DataFusionError;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum ExecError {
    #[error(transparent)]
    Arrow(#[from] arrow::error::ArrowError),
    #[error(transparent)]
    DataFusion(#[from] datafusion::error::DataFusionError),
    #[error(transparent)]
    Storage(#[from] weir_storage::StorageError),
    #[error(transparent)]
    Plan(#[from] weir_plan::PlanError),
    /// The JobGraph cannot be deployed as written (a planner bug or a stale catalog entry).
    #[error("invalid job graph: {0}")]
    InvalidGraph(String),
    /// A peer task or the JobManager went away.
    #[error("channel closed: {0}")]
    ChannelClosed(String),
    /// A source's definition or input is wrong in a way the user must fix (SQLSTATE 22023
    /// at CREATE time).
    #[error("{0}")]
    Connector(String),
    /// A file source or sink names a file outside `[file] allowed_dirs` (SQLSTATE 42501).
    #[error("{0}")]
    PermissionDenied(String),
    /// The cluster's free task slots are fewer than a job's highest parallelism: the job
    /// waits for TaskManagers to register (SQLSTATE 53000).
    #[error("the job needs {needed} free task slots and the cluster has {free}; start more taskmanagers or lower the parallelism")]
    NotEnoughSlots { needed: usize, free: usize },
    /// A write refused because this TaskManager lost its lease: the JobManager may have
    /// moved its jobs elsewhere (see `lease`).
    #[error("{0}")]
    Fenced(String),
    /// A date, time or interval result out of its type's range (SQLSTATE 22008).
    #[error("{0}")]
    DatetimeOverflow(String),
    /// Text that is not a value of the type it is read as (SQLSTATE 22P02).
    #[error("{0}")]
    InvalidText(String),
    /// A UTC offset beyond ±15:59:59 (SQLSTATE 22009).
    #[error("{0}")]
    TimeZoneDisplacement(String),
    /// Text that does not read as the date/time template says (SQLSTATE 22007).
    #[error("{0}")]
    InvalidDatetimeFormat(String),
    /// A feature Weir does not have, said so (SQLSTATE 0A000).
    #[error("{0}")]
    Unsupported(String),
    /// A function argument Postgres refuses (`generate_series` with a step of zero)
    /// (SQLSTATE 22023).
    #[error("{0}")]
    InvalidParameter(String),
    /// A statement asks for more than a limit the server's configuration sets (SQLSTATE
    /// 53400); the message names the setting to raise.
    #[error("{0}")]
    LimitExceeded(String),
    /// A view or sink reads a view whose job is not running (SQLSTATE 55000).
    #[error("materialized view {view} that this view reads is not running ({state})")]
    InputNotRunning { view: String, state: String },
    /// FLUSH waits until writes are visible in every view, and this one has failed (it
    /// restarts from its latest checkpoint) (SQLSTATE 55000).
    #[error("materialized view {view} has failed, so FLUSH cannot make writes visible in it: {reason}")]
    ViewFailed { view: String, reason: String },
    /// The job of a view being created failed before its first epoch committed; `sqlstate`
    /// is the code of the error that failed it (a `22012` division by zero in its query),
    /// when it has one.
    #[error("the view's job failed: {reason}")]
    JobFailed { reason: String, sqlstate: Option<&'static str> },
    /// Likely a bug in Weir.
    #[error("internal error: {0}")]
    Internal(String),
    #[error("operator {operator} (epoch {epoch}): {source}")]
    InOperator { operator: String, epoch: u64, source: Box<ExecError> },
}

pub type ExecResult<T> = Result<T, ExecError>;

impl ExecError {
    /// The SQLSTATE a client gets for this error; for wrapped errors of other libraries
    /// (Arrow, DataFusion) the code their variant says ([`arrow_sqlstate`]), `None` when the
    /// variant does not tell (DataFusion's errors that are bare strings, which the server
    /// reads further).
    pub fn sqlstate(&self) -> Option<&'static str> {
        match self {
            ExecError::Arrow(e) => arrow_sqlstate(e),
            ExecError::DataFusion(e) => datafusion_sqlstate(e),
            ExecError::InputNotRunning { .. } | ExecError::ViewFailed { .. } => Some("55000"),
            ExecError::JobFailed { sqlstate, .. } => Some(sqlstate.unwrap_or("XX000")),
            ExecError::Storage(e) => Some(e.sqlstate()),
            ExecError::Plan(_)
            | ExecError::InvalidGraph(_)
            | ExecError::Internal(_)
            | ExecError::ChannelClosed(_)
            | ExecError::Fenced(_) => Some("XX000"),
            ExecError::Connector(_) | ExecError::InvalidParameter(_) => Some("22023"),
            ExecError::PermissionDenied(_) => Some("42501"),
            ExecError::NotEnoughSlots { .. } => Some("53000"),
            ExecError::DatetimeOverflow(_) => Some("22008"),
            ExecError::InvalidDatetimeFormat(_) => Some("22007"),
            ExecError::InvalidText(_) => Some("22P02"),
            ExecError::TimeZoneDisplacement(_) => Some("22009"),
            ExecError::Unsupported(_) => Some("0A000"),
            ExecError::LimitExceeded(_) => Some("53400"),
            ExecError::InOperator { source, .. } => source.sqlstate(),
        }
    }

    pub fn in_operator(self, operator: &str, epoch: u64) -> Self {
        ExecError::InOperator { operator: operator.to_string(), epoch, source: Box::new(self) }
    }
}

/// The SQLSTATE of an Arrow error, by its variant: bad input data is a `22xxx` data
/// exception, I/O is `58030`; `None` for a boxed error of unknown type and for variants
/// that mean a bug (`XX000`).
pub fn arrow_sqlstate(e: &ArrowError) -> Option<&'static str> {
    match e {
        ArrowError::DivideByZero => Some("22012"),
        ArrowError::ArithmeticOverflow(_) => Some("22003"),
        ArrowError::ComputeError(m) | ArrowError::InvalidArgumentError(m) | ArrowError::CastError(m)
            if out_of_range_message(m).is_some() =>
        {
            Some("22003")
        }
        ArrowError::CastError(_) | ArrowError::ParseError(_) => Some("22P02"),
        ArrowError::CsvError(_) | ArrowError::JsonError(_) => Some("22P04"),
        ArrowError::MemoryError(_) => Some("53200"),
        ArrowError::IoError(..) => Some("58030"),
        ArrowError::NotYetImplemented(_) => Some("0A000"),
        ArrowError::ComputeError(_) | ArrowError::InvalidArgumentError(_) => Some("22000"),
        ArrowError::ExternalError(inner) => external_sqlstate(inner.as_ref()),
        _ => None,
    }
}

/// Postgres' message for an overflow Arrow reports without a variant of its own, by its
/// words: `abs()` of the smallest integer ("Int64Array overflow on abs(...)") and a number
/// cast to an integer type too narrow for it ("Can't cast value 6000000000 to type Int32",
/// "value of 513 is out of range Int16") are `integer out of range` (`smallint`, `bigint`),
/// a value too wide for a decimal's precision ("... is too large to store in a Decimal128
/// of precision 10", "Cannot cast to Decimal128(10, 3). Overflowing on ...") is `numeric
/// field overflow`. `None` for any other message.
pub fn out_of_range_message(m: &str) -> Option<&'static str> {
    let integer = |type_name: &str| match type_name.trim() {
        t if t.starts_with("Int16") => Some("smallint out of range"),
        t if t.starts_with("Int32") => Some("integer out of range"),
        t if t.starts_with("Int64") => Some("bigint out of range"),
        _ => None,
    };
    if let Some(at) = m.find("Array overflow on ") {
        return integer(&m[..at].rsplit(' ').next().unwrap_or_default().replace("Array", ""))
            .or(Some("bigint out of range"));
    }
    if m.contains("Can't cast value ") {
        return m.rsplit("to type ").next().and_then(integer);
    }
    if let Some(at) = m.find(" is out of range ") {
        return integer(&m[at + " is out of range ".len()..]);
    }
    let decimal = m.contains("to store in a Decimal")
        && (m.contains("is too large") || m.contains("is too small"))
        || m.contains("Cannot cast to Decimal") && m.contains("Overflowing on");
    decimal.then_some("numeric field overflow")
}

/// The SQLSTATE of a DataFusion error that wraps an Arrow or Weir error; `None` for
/// DataFusion's own errors, which carry only a message.
pub fn datafusion_sqlstate(e: &DataFusionError) -> Option<&'static str> {
    match e {
        DataFusionError::Context(_, inner) | DataFusionError::Diagnostic(_, inner) => {
            datafusion_sqlstate(inner)
        }
        DataFusionError::Shared(inner) => datafusion_sqlstate(inner),
        DataFusionError::ArrowError(inner, _) => arrow_sqlstate(inner),
        DataFusionError::External(inner) => external_sqlstate(inner.as_ref()),
        DataFusionError::ResourcesExhausted(_) => Some("53200"),
        DataFusionError::IoError(_) => Some("58030"),
        _ => None,
    }
}

fn external_sqlstate(inner: &(dyn std::error::Error + Send + Sync + 'static)) -> Option<&'static str> {
    if let Some(e) = inner.downcast_ref::<ExecError>() {
        return e.sqlstate();
    }
    if let Some(e) = inner.downcast_ref::<DataFusionError>() {
        return datafusion_sqlstate(e);
    }
    if let Some(e) = inner.downcast_ref::<ArrowError>() {
        return arrow_sqlstate(e);
    }
    if let Some(e) = inner.downcast_ref::<weir_storage::StorageError>() {
        return Some(e.sqlstate());
    }
    None
}

/// Every SQLSTATE [`ExecError::sqlstate`] can return, so that a code received as text (a
/// task's failure reported by another process) maps back to it.
const SQLSTATES: &[&str] = &[
    "0A000", "22000", "22001", "22003", "22007", "22008", "22009", "22011", "22012", "22023", "22P02",
    "22P04", "23502", "23505", "42501", "42P01", "42P07", "53000", "53100", "53200", "53400", "55000",
    "58030", "XX000", "XX001",
];

/// `code` as one of the SQLSTATEs the runtime reports; `None` for any other text.
pub fn known_sqlstate(code: &str) -> Option<&'static str> {
    SQLSTATES.iter().find(|known| **known == code).copied()
}
