//! The `datagen` connector: synthetic rows for demos, tests and benchmarks, without any
//! external system (in the spirit of Flink's and RisingWave's `datagen`).
//!
//! Why: a streaming pipeline needs an input before it needs Kafka. `datagen` produces an
//! endless (or, with a sequence `end`, bounded) stream at a chosen rate, every column
//! following a simple rule given in the `WITH` options.
//!
//! How: every value is a pure function of the options, the column and the row's *global*
//! number `g`, so a reader needs no state besides the count of rows it has produced (that
//! count is its offset). Split `i` of `N` produces the global rows `i, i + N, i + 2N, ...`,
//! so splits interleave and together produce every global row exactly once.
//!
//! * `sequence` columns hold `start + g * step` (stopping after `end` when one is given).
//! * `random` columns draw from a small counter-based generator (SplitMix64) seeded with
//!   `(datagen.seed, column name, g)`: no generator state to save or replay, and the values
//!   do not depend on the number of splits.
//! * `now` columns read the wall clock once per batch; they (and `random` timestamps without
//!   a `base`) are the only values that differ between runs.
//!
//! Rate limiting: split `i` gets `datagen.rows.per.second / N` rows per second. Its row `k`
//! (counted since the reader was opened or last sought) is due `k / rate` seconds after its
//! first call; a call returns at most the rows already due, and [`ReadOutcome::Wait`] until
//! the next one is due when none is.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use arrow::array::{
    ArrayRef, BooleanArray, Date32Array, Decimal128Array, Float32Array, Float64Array, Int16Array, Int32Array,
    Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use arrow::compute::kernels::cast_utils::parse_decimal;
use arrow::datatypes::{DataType, Decimal128Type, Field, SchemaRef, TimeUnit};
use serde_json::json;

use super::options::{
    check_known_options, invalid_value, must_be, parse_duration_micros, parse_in_range, MICROS_PER_DAY,
    MICROS_PER_SECOND,
};
use super::prng::{mix64, SplitMix64, GOLDEN_GAMMA};
use super::type_names::datagen_type_name;
use super::{Connector, ConnectorOptions, OptionError, ReadOutcome, SplitReader, DEFAULT_BATCH_ROWS};
use crate::error::{ExecError, ExecResult};

const CONNECTOR: &str = "datagen";
const OPT_ROWS_PER_SECOND: &str = "datagen.rows.per.second";
const OPT_SPLIT_NUM: &str = "datagen.split.num";
const OPT_SEED: &str = "datagen.seed";
const GLOBAL_OPTIONS: &[&str] = &[OPT_ROWS_PER_SECOND, OPT_SPLIT_NUM, OPT_SEED];

const DEFAULT_ROWS_PER_SECOND: f64 = 10.0;
/// The seed used when `datagen.seed` is not given (the bytes of "WEIRDATA").
const DEFAULT_SEED: u64 = 0x5745_4952_4441_5441;
const DEFAULT_STRING_LENGTH: usize = 10;
/// Longest random string a column may ask for.
const MAX_STRING_LENGTH: usize = 1 << 20;
const MAX_SPLITS: usize = 1024;
const DEFAULT_FLOAT_MAX: f64 = 1000.0;
const DEFAULT_DECIMAL_MAX: i128 = 1000;
/// 2000-01-01 and 2029-12-31 as days since the epoch: the default range of random dates.
const DEFAULT_DATE_MIN: i32 = 10_957;
const DEFAULT_DATE_MAX: i32 = 21_914;
const DEFAULT_MAX_PAST_MICROS: i64 = 3_600 * MICROS_PER_SECOND;
const ALPHANUMERIC: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// A configured `datagen` source. Cheap to share: readers hold an `Arc` of the configuration.
pub struct DatagenConnector {
    config: Arc<Config>,
}

struct Config {
    schema: SchemaRef,
    columns: Vec<ColumnGen>,
    splits: usize,
    /// Rows per second for one split.
    split_rate: f64,
    seed: u64,
    /// Global rows of a bounded source (the shortest sequence with an `end`).
    total_rows: Option<u64>,
}

struct ColumnGen {
    name: String,
    /// Mixed into the random generator so columns with the same rule differ.
    salt: u64,
    rule: Rule,
}

/// How one column's values are made. Numbers are in the column's native unit: integers,
/// unscaled decimals (for `Random`; a decimal `Sequence` counts whole numbers), days for
/// dates, microseconds for timestamps.
#[derive(Debug, Clone, PartialEq)]
enum Rule {
    Sequence {
        start: i128,
        step: i128,
    },
    RandomInt {
        min: i128,
        max: i128,
    },
    RandomFloat {
        min: f64,
        max: f64,
    },
    RandomBool,
    RandomString {
        length: usize,
    },
    /// `base` (or the wall clock) minus a random amount in `0..=max_past`.
    RandomTimestamp {
        max_past: i64,
        base: Option<i64>,
    },
    Now,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Sequence,
    Random,
    Now,
}

impl DatagenConnector {
    /// Validates `options` against `schema`; every mistake is reported here, before a reader
    /// is ever opened.
    pub fn new(options: &ConnectorOptions, schema: SchemaRef) -> Result<Self, OptionError> {
        let mut per_column: BTreeMap<usize, BTreeMap<String, String>> = BTreeMap::new();
        let mut global = ConnectorOptions::new();
        for (key, value) in options {
            match key.strip_prefix("fields.") {
                Some(rest) => {
                    let (column, attr) = rest.rsplit_once('.').ok_or_else(|| {
                        OptionError(format!(
                            "option '{key}' should look like 'fields.<column>.<attribute>', e.g. \
                             'fields.id.kind'"
                        ))
                    })?;
                    let index = schema
                        .fields()
                        .iter()
                        .position(|f| f.name().eq_ignore_ascii_case(column))
                        .ok_or_else(|| {
                            let names: Vec<&str> =
                                schema.fields().iter().map(|f| f.name().as_str()).collect();
                            OptionError(format!(
                                "option '{key}' names column '{column}', which the source does not \
                                 declare; its columns are: {}",
                                names.join(", ")
                            ))
                        })?;
                    per_column.entry(index).or_default().insert(attr.to_string(), value.clone());
                }
                None => {
                    global.insert(key.clone(), value.clone());
                }
            }
        }
        let mut known: Vec<&str> = GLOBAL_OPTIONS.to_vec();
        known.push("fields.<column>.<attribute>");
        check_known_options(CONNECTOR, &global, &known)?;

        let rows_per_second = match global.get(OPT_ROWS_PER_SECOND) {
            None => DEFAULT_ROWS_PER_SECOND,
            Some(v) => match v.trim().parse::<f64>() {
                Ok(r) if r.is_finite() && r > 0.0 => r,
                _ => {
                    return Err(invalid_value(OPT_ROWS_PER_SECOND, "a positive number of rows per second", v))
                }
            },
        };
        let splits = match global.get(OPT_SPLIT_NUM) {
            None => 1,
            Some(v) => parse_in_range(v.trim(), 1..=MAX_SPLITS).ok_or_else(|| {
                invalid_value(OPT_SPLIT_NUM, &format!("a whole number from 1 to {MAX_SPLITS}"), v)
            })?,
        };
        let seed = match global.get(OPT_SEED) {
            None => DEFAULT_SEED,
            Some(v) => {
                let v = v.trim();
                v.parse::<u64>()
                    .or_else(|_| v.parse::<i64>().map(|s| s as u64))
                    .map_err(|_| invalid_value(OPT_SEED, "a whole number", v))?
            }
        };

        let empty = BTreeMap::new();
        let mut columns = Vec::with_capacity(schema.fields().len());
        let mut total_rows: Option<u64> = None;
        for (index, field) in schema.fields().iter().enumerate() {
            let attrs = per_column.get(&index).unwrap_or(&empty);
            let (rule, count) = column_rule(field, attrs)?;
            if let Some(count) = count {
                total_rows = Some(total_rows.map_or(count, |t| t.min(count)));
            }
            let name = field.name().to_ascii_lowercase();
            columns.push(ColumnGen { salt: fnv1a(name.as_bytes()), name, rule });
        }
        Ok(DatagenConnector {
            config: Arc::new(Config {
                schema,
                columns,
                splits,
                split_rate: rows_per_second / splits as f64,
                seed,
                total_rows,
            }),
        })
    }
}

impl Connector for DatagenConnector {
    fn splits(&self) -> usize {
        self.config.splits
    }

    fn open(&self, split: usize) -> ExecResult<Box<dyn SplitReader>> {
        if split >= self.config.splits {
            return Err(ExecError::Internal(format!(
                "datagen split {split} opened, but the source has {} splits",
                self.config.splits
            )));
        }
        let n = self.config.splits as u64;
        let i = split as u64;
        // Split i produces the global rows i, i + n, ... below the total.
        let split_total = self.config.total_rows.map(|t| if t > i { (t - i).div_ceil(n) } else { 0 });
        Ok(Box::new(DatagenReader {
            config: Arc::clone(&self.config),
            split: i,
            rows: 0,
            split_total,
            limiter: None,
        }))
    }

    fn bounded(&self) -> bool {
        self.config.total_rows.is_some()
    }
}

/// Reader of one split; its whole position is `rows`.
struct DatagenReader {
    config: Arc<Config>,
    split: u64,
    /// Rows this split has produced (including those before a `seek`).
    rows: u64,
    /// Rows this split produces in all, when the source is bounded.
    split_total: Option<u64>,
    /// When the rate limiter started and how many rows it has let through since.
    limiter: Option<(Instant, u64)>,
}

impl SplitReader for DatagenReader {
    fn next_batch(&mut self) -> ExecResult<ReadOutcome> {
        let remaining = match self.split_total {
            Some(total) => total.saturating_sub(self.rows),
            None => u64::MAX,
        };
        if remaining == 0 {
            return Ok(ReadOutcome::Finished);
        }
        let now = Instant::now();
        let (started, emitted) = *self.limiter.get_or_insert((now, 0));
        let elapsed = now.saturating_duration_since(started);
        let rate = self.config.split_rate;
        // Row k is due k / rate seconds after the start, so rows 0..=floor(elapsed * rate)
        // are due now (`as` saturates on huge values).
        let due_total = ((elapsed.as_secs_f64() * rate).floor() as u64).saturating_add(1);
        let due = due_total.saturating_sub(emitted);
        if due == 0 {
            let next_at = Duration::try_from_secs_f64(emitted as f64 / rate).unwrap_or(Duration::MAX);
            let wait = next_at.saturating_sub(elapsed).max(Duration::from_micros(1));
            return Ok(ReadOutcome::Wait(wait));
        }
        let n = due.min(remaining).min(DEFAULT_BATCH_ROWS as u64);
        let batch = self.build(n as usize)?;
        self.rows += n;
        self.limiter = Some((started, emitted + n));
        Ok(ReadOutcome::Batch(batch))
    }

    fn offset(&self) -> serde_json::Value {
        json!({ "rows": self.rows })
    }

    fn seek(&mut self, offset: &serde_json::Value) -> ExecResult<()> {
        let rows = offset.get("rows").and_then(|r| r.as_u64()).ok_or_else(|| {
            ExecError::Connector(format!("datagen offset must look like {{\"rows\": <count>}}, not {offset}"))
        })?;
        if let Some(total) = self.split_total {
            if rows > total {
                return Err(ExecError::Connector(format!(
                    "datagen offset {rows} is past the end of split {} ({total} rows); \
                     the source's options changed since the checkpoint",
                    self.split
                )));
            }
        }
        self.rows = rows;
        self.limiter = None;
        Ok(())
    }
}

impl DatagenReader {
    /// The next `n` rows of this split.
    fn build(&self, n: usize) -> ExecResult<RecordBatch> {
        let stride = self.config.splits as u64;
        let globals: Vec<u64> = (0..n as u64)
            .map(|k| {
                (self.rows + k)
                    .checked_mul(stride)
                    .and_then(|r| r.checked_add(self.split))
                    .ok_or_else(|| ExecError::Connector("datagen row number overflowed".into()))
            })
            .collect::<ExecResult<_>>()?;
        let now_micros = wall_clock_micros();
        let arrays = self
            .config
            .columns
            .iter()
            .zip(self.config.schema.fields().iter())
            .map(|(column, field)| self.column_array(column, field.data_type(), &globals, now_micros))
            .collect::<ExecResult<Vec<_>>>()?;
        Ok(RecordBatch::try_new(Arc::clone(&self.config.schema), arrays)?)
    }

    fn column_array(
        &self,
        column: &ColumnGen,
        data_type: &DataType,
        globals: &[u64],
        now_micros: i64,
    ) -> ExecResult<ArrayRef> {
        let seed = self.config.seed;
        let rng = |g: u64| cell_rng(seed, column.salt, g);
        match &column.rule {
            Rule::Sequence { start, step } => {
                let values = globals
                    .iter()
                    .map(|&g| {
                        (g as i128)
                            .checked_mul(*step)
                            .and_then(|d| d.checked_add(*start))
                            .ok_or_else(|| sequence_overflow(&column.name, data_type))
                    })
                    .collect::<ExecResult<Vec<i128>>>()?;
                sequence_array(&column.name, data_type, values)
            }
            Rule::RandomInt { min, max } => {
                let values = globals.iter().map(|&g| rng(g).int_between(*min, *max));
                Ok(match data_type {
                    // Validation keeps min..=max inside the column type, so the casts are exact.
                    DataType::Int16 => Arc::new(values.map(|v| v as i16).collect::<Int16Array>()),
                    DataType::Int32 => Arc::new(values.map(|v| v as i32).collect::<Int32Array>()),
                    DataType::Int64 => Arc::new(values.map(|v| v as i64).collect::<Int64Array>()),
                    DataType::Date32 => {
                        Arc::new(Date32Array::from(values.map(|v| v as i32).collect::<Vec<_>>()))
                    }
                    DataType::Decimal128(p, s) => {
                        Arc::new(values.collect::<Decimal128Array>().with_precision_and_scale(*p, *s)?)
                    }
                    other => return Err(rule_type_mismatch(&column.name, other)),
                })
            }
            Rule::RandomFloat { min, max } => {
                let values = globals.iter().map(|&g| rng(g).float_between(*min, *max));
                Ok(match data_type {
                    DataType::Float32 => Arc::new(values.map(|v| v as f32).collect::<Float32Array>()),
                    DataType::Float64 => Arc::new(values.collect::<Float64Array>()),
                    other => return Err(rule_type_mismatch(&column.name, other)),
                })
            }
            Rule::RandomBool => Ok(Arc::new(
                globals.iter().map(|&g| Some(rng(g).next_u64() & 1 == 1)).collect::<BooleanArray>(),
            )),
            Rule::RandomString { length } => {
                let values: Vec<String> = globals
                    .iter()
                    .map(|&g| {
                        let mut r = rng(g);
                        (0..*length)
                            .map(|_| {
                                ALPHANUMERIC[(r.next_u64() % ALPHANUMERIC.len() as u64) as usize] as char
                            })
                            .collect()
                    })
                    .collect();
                Ok(Arc::new(StringArray::from(values)))
            }
            Rule::RandomTimestamp { max_past, base } => {
                let base = base.unwrap_or(now_micros);
                let values: Vec<i64> = globals
                    .iter()
                    .map(|&g| base.saturating_sub(rng(g).int_between(0, *max_past as i128) as i64))
                    .collect();
                timestamp_array(&column.name, data_type, values)
            }
            Rule::Now => timestamp_array(&column.name, data_type, vec![now_micros; globals.len()]),
        }
    }
}

fn sequence_overflow(column: &str, data_type: &DataType) -> ExecError {
    ExecError::Connector(format!(
        "datagen sequence column '{column}' ran past the largest {}; declare a wider type or set \
         fields.{column}.end",
        datagen_type_name(data_type)
    ))
}

fn rule_type_mismatch(column: &str, data_type: &DataType) -> ExecError {
    ExecError::Internal(format!("datagen column '{column}': rule does not fit type {data_type}"))
}

fn sequence_array(column: &str, data_type: &DataType, values: Vec<i128>) -> ExecResult<ArrayRef> {
    let overflow = || sequence_overflow(column, data_type);
    Ok(match data_type {
        DataType::Int16 => Arc::new(
            values
                .into_iter()
                .map(|v| i16::try_from(v).map_err(|_| overflow()))
                .collect::<ExecResult<Int16Array>>()?,
        ),
        DataType::Int32 => Arc::new(
            values
                .into_iter()
                .map(|v| i32::try_from(v).map_err(|_| overflow()))
                .collect::<ExecResult<Int32Array>>()?,
        ),
        DataType::Int64 => Arc::new(
            values
                .into_iter()
                .map(|v| i64::try_from(v).map_err(|_| overflow()))
                .collect::<ExecResult<Int64Array>>()?,
        ),
        DataType::Date32 => Arc::new(Date32Array::from(
            values
                .into_iter()
                .map(|v| i32::try_from(v).map_err(|_| overflow()))
                .collect::<ExecResult<Vec<_>>>()?,
        )),
        DataType::Float32 => Arc::new(values.into_iter().map(|v| v as f32).collect::<Float32Array>()),
        DataType::Float64 => Arc::new(values.into_iter().map(|v| v as f64).collect::<Float64Array>()),
        DataType::Utf8 => Arc::new(values.into_iter().map(|v| Some(v.to_string())).collect::<StringArray>()),
        DataType::Decimal128(p, s) => {
            let unscaled = values
                .into_iter()
                .map(|v| scale_whole_number(v, *p, *s).ok_or_else(overflow))
                .collect::<ExecResult<Decimal128Array>>()?;
            Arc::new(unscaled.with_precision_and_scale(*p, *s)?)
        }
        DataType::Timestamp(..) => {
            let micros = values
                .into_iter()
                .map(|v| i64::try_from(v).map_err(|_| overflow()))
                .collect::<ExecResult<Vec<_>>>()?;
            timestamp_array(column, data_type, micros)?
        }
        other => return Err(rule_type_mismatch(column, other)),
    })
}

fn timestamp_array(column: &str, data_type: &DataType, micros: Vec<i64>) -> ExecResult<ArrayRef> {
    match data_type {
        DataType::Timestamp(TimeUnit::Microsecond, tz) => {
            Ok(Arc::new(TimestampMicrosecondArray::from(micros).with_timezone_opt(tz.clone())))
        }
        other => Err(rule_type_mismatch(column, other)),
    }
}

/// `n` as an unscaled decimal of precision `p` and scale `s`, if it fits.
fn scale_whole_number(n: i128, p: u8, s: i8) -> Option<i128> {
    let unscaled = n.checked_mul(10i128.checked_pow(u32::try_from(s).ok()?)?)?;
    (unscaled.unsigned_abs() < 10u128.checked_pow(u32::from(p))?).then_some(unscaled)
}

fn wall_clock_micros() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_micros() as i64).unwrap_or(0)
}

// ---------------------------------------------------------------------------------------
// Per-column options

/// The rule for `field` from its `fields.<col>.*` attributes, and the number of rows the
/// column allows (a sequence with an `end`).
fn column_rule(field: &Field, attrs: &BTreeMap<String, String>) -> Result<(Rule, Option<u64>), OptionError> {
    let col = field.name().as_str();
    let data_type = field.data_type();
    let supported = matches!(
        data_type,
        DataType::Int16
            | DataType::Int32
            | DataType::Int64
            | DataType::Float32
            | DataType::Float64
            | DataType::Boolean
            | DataType::Utf8
            | DataType::Date32
    ) || matches!(data_type, DataType::Decimal128(_, s) if *s >= 0)
        || matches!(data_type, DataType::Timestamp(TimeUnit::Microsecond, None))
        || matches!(data_type, DataType::Timestamp(TimeUnit::Microsecond, Some(tz)) if tz.as_ref() == "+00:00");
    if !supported {
        return Err(OptionError(format!(
            "column '{col}' has type {}, which the datagen connector cannot generate; it generates \
             smallint, integer, bigint, real, double precision, numeric, boolean, text, date, \
             timestamp and timestamptz",
            datagen_type_name(data_type)
        )));
    }
    let is_timestamp = matches!(data_type, DataType::Timestamp(..));
    let kind = match attrs.get("kind").map(|k| k.trim().to_ascii_lowercase()) {
        None if is_timestamp => Kind::Now,
        None => Kind::Random,
        Some(k) => match k.as_str() {
            "sequence" => Kind::Sequence,
            "random" => Kind::Random,
            "now" if is_timestamp => Kind::Now,
            "now" => {
                return Err(OptionError(format!(
                    "fields.{col}.kind = 'now' needs a timestamp column; '{col}' is {}",
                    datagen_type_name(data_type)
                )))
            }
            _ => {
                let kinds =
                    if is_timestamp { "'sequence', 'random' or 'now'" } else { "'sequence' or 'random'" };
                return Err(OptionError(format!("fields.{col}.kind must be {kinds}, not '{k}'")));
            }
        },
    };
    let allowed: &[&str] = match (kind, data_type) {
        (Kind::Sequence, DataType::Boolean) => {
            return Err(OptionError(format!(
                "fields.{col}.kind = 'sequence' needs a number, text, date or timestamp column; '{col}' is \
                 boolean"
            )))
        }
        (Kind::Sequence, _) => &["kind", "start", "end", "step"],
        (Kind::Now, _) | (Kind::Random, DataType::Boolean) => &["kind"],
        (Kind::Random, DataType::Utf8) => &["kind", "length"],
        (Kind::Random, DataType::Timestamp(..)) => &["kind", "max_past", "base"],
        (Kind::Random, _) => &["kind", "min", "max"],
    };
    if let Some(bad) = attrs.keys().find(|a| !allowed.contains(&a.as_str())) {
        let accepted: Vec<String> = allowed.iter().map(|a| format!("fields.{col}.{a}")).collect();
        return Err(OptionError(format!(
            "option 'fields.{col}.{bad}' does not apply to column '{col}' ({} of kind '{}'); it accepts: {}",
            datagen_type_name(data_type),
            kind_name(kind),
            accepted.join(", ")
        )));
    }
    let get = |attr: &str| attrs.get(attr).map(|v| v.trim());
    match kind {
        Kind::Now => Ok((Rule::Now, None)),
        Kind::Sequence => sequence_rule(col, data_type, get("start"), get("end"), get("step")),
        Kind::Random => random_rule(col, data_type, attrs).map(|r| (r, None)),
    }
}

fn sequence_rule(
    col: &str,
    data_type: &DataType,
    start: Option<&str>,
    end: Option<&str>,
    step: Option<&str>,
) -> Result<(Rule, Option<u64>), OptionError> {
    let (start, end, step) = match data_type {
        DataType::Timestamp(..) => {
            let start = start.ok_or_else(|| {
                OptionError(format!(
                    "fields.{col}.start is required for a timestamp sequence, e.g. '2024-01-01 00:00:00'"
                ))
            })?;
            let step = match step {
                None => MICROS_PER_SECOND,
                Some(s) => parse_duration_micros(s, 1_000).ok_or_else(|| {
                    bad_value(
                        col,
                        "step",
                        s,
                        "an interval such as '1 second' or '100 milliseconds', or a number of milliseconds",
                    )
                })?,
            };
            let end = end.map(|e| parse_timestamp_micros(col, "end", e)).transpose()?;
            (parse_timestamp_micros(col, "start", start)? as i128, end.map(i128::from), step as i128)
        }
        DataType::Date32 => {
            let start = start.ok_or_else(|| {
                OptionError(format!("fields.{col}.start is required for a date sequence, e.g. '2024-01-01'"))
            })?;
            let step = match step {
                None => 1,
                Some(s) => match s.parse::<i64>() {
                    Ok(days) => days,
                    Err(_) => parse_duration_micros(s, MICROS_PER_DAY)
                        .filter(|m| m % MICROS_PER_DAY == 0)
                        .map(|m| m / MICROS_PER_DAY)
                        .ok_or_else(|| {
                            bad_value(col, "step", s, "a whole number of days, e.g. '1' or '7 days'")
                        })?,
                },
            };
            let end = end.map(|e| parse_date(col, "end", e)).transpose()?;
            (i128::from(parse_date(col, "start", start)?), end.map(i128::from), i128::from(step))
        }
        _ => {
            let int = |attr: &str, v: &str| {
                v.parse::<i128>().map_err(|_| bad_value(col, attr, v, "a whole number"))
            };
            let start = start.map(|s| int("start", s)).transpose()?.unwrap_or(0);
            let end = end.map(|e| int("end", e)).transpose()?;
            let step = step.map(|s| int("step", s)).transpose()?.unwrap_or(1);
            for (attr, value) in [("start", Some(start)), ("end", end)] {
                if let Some(v) = value {
                    if !whole_number_fits(v, data_type) {
                        return Err(OptionError(format!(
                            "fields.{col}.{attr} = {v} does not fit column '{col}' of type {}",
                            datagen_type_name(data_type)
                        )));
                    }
                }
            }
            (start, end, step)
        }
    };
    if step == 0 {
        return Err(OptionError(format!("fields.{col}.step must not be zero")));
    }
    let count = match end {
        None => None,
        Some(end) => {
            if (step > 0 && end < start) || (step < 0 && end > start) {
                return Err(OptionError(format!(
                    "fields.{col}.end is {} fields.{col}.start, so a sequence with this step never reaches it",
                    if step > 0 { "before" } else { "after" }
                )));
            }
            // At most 2^66 or so; more rows than a u64 counts is the same as unbounded.
            Some(u64::try_from((end - start) / step + 1).unwrap_or(u64::MAX))
        }
    };
    Ok((Rule::Sequence { start, step }, count))
}

fn random_rule(
    col: &str,
    data_type: &DataType,
    attrs: &BTreeMap<String, String>,
) -> Result<Rule, OptionError> {
    let get = |attr: &str| attrs.get(attr).map(|v| v.trim());
    let check_order = |min_ok: bool| {
        if min_ok {
            Ok(())
        } else {
            Err(OptionError(format!("fields.{col}.min must not be greater than fields.{col}.max")))
        }
    };
    match data_type {
        DataType::Int16 | DataType::Int32 | DataType::Int64 => {
            let (lo, hi) = int_range(data_type);
            let int = |attr: &str, default: i128| -> Result<i128, OptionError> {
                match get(attr) {
                    None => Ok(default),
                    Some(v) => parse_in_range(v, lo..=hi).ok_or_else(|| {
                        bad_value(
                            col,
                            attr,
                            v,
                            &format!("a whole number from {lo} to {hi} ({})", datagen_type_name(data_type)),
                        )
                    }),
                }
            };
            let (min, max) = (int("min", 0)?, int("max", hi)?);
            check_order(min <= max)?;
            Ok(Rule::RandomInt { min, max })
        }
        DataType::Decimal128(p, s) => {
            let dec = |attr: &str| -> Result<Option<i128>, OptionError> {
                get(attr)
                    .map(|v| {
                        parse_decimal::<Decimal128Type>(v, *p, *s).map_err(|_| {
                            bad_value(col, attr, v, &format!("a number that fits numeric({p},{s})"))
                        })
                    })
                    .transpose()
            };
            let type_max = 10i128.checked_pow(u32::from(*p)).map_or(i128::MAX, |m| m - 1);
            let default_max = scale_whole_number(DEFAULT_DECIMAL_MAX, *p, *s).unwrap_or(type_max);
            let min = dec("min")?.unwrap_or(0);
            let max = dec("max")?.unwrap_or(default_max);
            check_order(min <= max)?;
            Ok(Rule::RandomInt { min, max })
        }
        DataType::Float32 | DataType::Float64 => {
            let float = |attr: &str, default: f64| -> Result<f64, OptionError> {
                match get(attr) {
                    None => Ok(default),
                    Some(v) => match v.parse::<f64>() {
                        Ok(f) if f.is_finite() => Ok(f),
                        _ => Err(bad_value(col, attr, v, "a finite number")),
                    },
                }
            };
            let (min, max) = (float("min", 0.0)?, float("max", DEFAULT_FLOAT_MAX)?);
            check_order(min <= max)?;
            if !(max - min).is_finite() {
                return Err(OptionError(format!("fields.{col}.min .. fields.{col}.max is too wide a range")));
            }
            Ok(Rule::RandomFloat { min, max })
        }
        DataType::Date32 => {
            let date = |attr: &str, default: i32| get(attr).map_or(Ok(default), |v| parse_date(col, attr, v));
            let (min, max) = (date("min", DEFAULT_DATE_MIN)?, date("max", DEFAULT_DATE_MAX)?);
            check_order(min <= max)?;
            Ok(Rule::RandomInt { min: i128::from(min), max: i128::from(max) })
        }
        DataType::Boolean => Ok(Rule::RandomBool),
        DataType::Utf8 => {
            let length = match get("length") {
                None => DEFAULT_STRING_LENGTH,
                Some(v) => parse_in_range(v, 0..=MAX_STRING_LENGTH).ok_or_else(|| {
                    bad_value(
                        col,
                        "length",
                        v,
                        &format!("a whole number of characters from 0 to {MAX_STRING_LENGTH}"),
                    )
                })?,
            };
            Ok(Rule::RandomString { length })
        }
        DataType::Timestamp(..) => {
            let max_past = match get("max_past") {
                None => DEFAULT_MAX_PAST_MICROS,
                Some(v) => parse_duration_micros(v, 1_000).filter(|m| *m >= 0).ok_or_else(|| {
                    bad_value(
                        col,
                        "max_past",
                        v,
                        "a non-negative interval such as '1 hour', or a number of milliseconds",
                    )
                })?,
            };
            let base = get("base").map(|v| parse_timestamp_micros(col, "base", v)).transpose()?;
            Ok(Rule::RandomTimestamp { max_past, base })
        }
        other => Err(OptionError(format!(
            "column '{col}' has type {}, which the datagen connector cannot generate",
            datagen_type_name(other)
        ))),
    }
}

fn bad_value(col: &str, attr: &str, value: &str, expected: &str) -> OptionError {
    must_be(&format!("fields.{col}.{attr}"), expected, value)
}

/// A timestamp option as SQL reads timestamp text (a zone written is applied; none is UTC).
fn parse_timestamp_micros(col: &str, attr: &str, value: &str) -> Result<i64, OptionError> {
    crate::functions::timestamp_input::parse_timestamp(value, true)
        .map_err(|_| bad_value(col, attr, value, "a timestamp like '2024-01-01 00:00:00'"))
}

fn parse_date(col: &str, attr: &str, value: &str) -> Result<i32, OptionError> {
    crate::functions::timestamp_input::parse_date(value)
        .map_err(|_| bad_value(col, attr, value, "a date like '2024-01-01'"))
}

fn int_range(data_type: &DataType) -> (i128, i128) {
    match data_type {
        DataType::Int16 => (i16::MIN.into(), i16::MAX.into()),
        DataType::Int32 => (i32::MIN.into(), i32::MAX.into()),
        _ => (i64::MIN.into(), i64::MAX.into()),
    }
}

/// Whether whole number `v` (a sequence's start or end) can be stored in the column.
fn whole_number_fits(v: i128, data_type: &DataType) -> bool {
    match data_type {
        DataType::Int16 | DataType::Int32 | DataType::Int64 => {
            let (lo, hi) = int_range(data_type);
            (lo..=hi).contains(&v)
        }
        DataType::Decimal128(p, s) => scale_whole_number(v, *p, *s).is_some(),
        _ => true,
    }
}

fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Sequence => "sequence",
        Kind::Random => "random",
        Kind::Now => "now",
    }
}

// ---------------------------------------------------------------------------------------
// Randomness

/// The generator of one cell, from (seed, column, global row), so any row can be generated
/// without generating the ones before it.
fn cell_rng(seed: u64, salt: u64, row: u64) -> SplitMix64 {
    SplitMix64::new(mix64(mix64(seed.wrapping_add(GOLDEN_GAMMA) ^ salt).wrapping_add(GOLDEN_GAMMA) ^ row))
}

/// FNV-1a, to turn a column name into a salt that does not depend on the column's position.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes
        .iter()
        .fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3))
}

#[cfg(test)]
mod tests {
    use arrow::array::{Array, AsArray};
    use arrow::compute::concat_batches;
    use arrow::compute::kernels::cast_utils::{string_to_timestamp_nanos, Parser};
    use arrow::datatypes::Date32Type;
    use arrow::datatypes::{
        Date32Type as D32, Decimal128Type as Dec, Float64Type, Int32Type, Int64Type, Schema,
        TimestampMicrosecondType,
    };

    use super::*;

    fn schema(cols: &[(&str, DataType)]) -> SchemaRef {
        Arc::new(Schema::new(cols.iter().map(|(n, t)| Field::new(*n, t.clone(), true)).collect::<Vec<_>>()))
    }

    fn options(pairs: &[(&str, &str)]) -> ConnectorOptions {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn connector(cols: &[(&str, DataType)], pairs: &[(&str, &str)]) -> DatagenConnector {
        match DatagenConnector::new(&options(pairs), schema(cols)) {
            Ok(c) => c,
            Err(e) => panic!("options rejected: {e}"),
        }
    }

    fn error(cols: &[(&str, DataType)], pairs: &[(&str, &str)]) -> String {
        match DatagenConnector::new(&options(pairs), schema(cols)) {
            Ok(_) => panic!("options {pairs:?} accepted"),
            Err(e) => e.0,
        }
    }

    /// Reads until `Finished` or at least `limit` rows, sleeping through waits.
    fn read(reader: &mut dyn SplitReader, limit: usize) -> (Vec<RecordBatch>, bool) {
        let mut batches = Vec::new();
        let mut rows = 0;
        for _ in 0..1_000_000 {
            if rows >= limit {
                return (batches, false);
            }
            match reader.next_batch().expect("next_batch") {
                ReadOutcome::Batch(b) => {
                    assert!(b.num_rows() > 0 && b.num_rows() <= DEFAULT_BATCH_ROWS);
                    rows += b.num_rows();
                    batches.push(b);
                }
                ReadOutcome::Wait(d) => std::thread::sleep(d.min(Duration::from_millis(5))),
                ReadOutcome::Finished => return (batches, true),
            }
        }
        panic!("reader neither finished nor reached {limit} rows");
    }

    fn concat(schema: &SchemaRef, batches: &[RecordBatch]) -> RecordBatch {
        concat_batches(schema, batches).expect("concat")
    }

    const FAST: (&str, &str) = (OPT_ROWS_PER_SECOND, "1000000000");

    #[test]
    fn sequence_splits_interleave_and_cover_the_range_once() {
        let cols = [("id", DataType::Int64), ("label", DataType::Utf8), ("n", DataType::Int32)];
        let c = connector(
            &cols,
            &[
                FAST,
                (OPT_SPLIT_NUM, "3"),
                ("fields.id.kind", "sequence"),
                ("fields.id.start", "5"),
                ("fields.id.end", "104"),
                ("fields.label.kind", "sequence"),
                ("fields.label.start", "-10"),
                ("fields.label.step", "-2"),
                ("fields.n.kind", "sequence"),
            ],
        );
        assert!(c.bounded());
        assert_eq!(c.splits(), 3);
        let mut ids = Vec::new();
        for split in 0..3 {
            let mut r = c.open(split).expect("open");
            let (batches, finished) = read(r.as_mut(), usize::MAX);
            assert!(finished);
            assert!(matches!(r.next_batch().expect("again"), ReadOutcome::Finished));
            let all = concat(&c.config.schema, &batches);
            let id = all.column(0).as_primitive::<Int64Type>();
            let label = all.column(1).as_string::<i32>();
            let n = all.column(2).as_primitive::<Int32Type>();
            for k in 0..all.num_rows() {
                let g = (split + 3 * k) as i64;
                assert_eq!(id.value(k), 5 + g, "split {split} row {k}");
                assert_eq!(label.value(k), (-10 - 2 * g).to_string());
                assert_eq!(n.value(k), g as i32);
            }
            assert_eq!(r.offset(), json!({ "rows": all.num_rows() }));
            ids.extend(id.values().iter().copied());
        }
        ids.sort_unstable();
        assert_eq!(ids, (5..=104).collect::<Vec<i64>>());
    }

    #[test]
    fn shortest_bounded_sequence_ends_the_source_and_decimal_sequences_scale() {
        let cols = [("a", DataType::Int16), ("b", DataType::Decimal128(6, 2))];
        let c = connector(
            &cols,
            &[
                FAST,
                ("fields.a.kind", "sequence"),
                ("fields.a.end", "9"),
                ("fields.b.kind", "sequence"),
                ("fields.b.start", "100"),
                ("fields.b.end", "103"),
            ],
        );
        let mut r = c.open(0).expect("open");
        let (batches, finished) = read(r.as_mut(), usize::MAX);
        assert!(finished);
        let all = concat(&c.config.schema, &batches);
        assert_eq!(all.num_rows(), 4);
        let b = all.column(1).as_primitive::<Dec>();
        assert_eq!(b.values().to_vec(), vec![10000, 10100, 10200, 10300]);
        assert_eq!(b.value_as_string(3), "103.00");
    }

    #[test]
    fn unbounded_sequence_past_the_type_fails_the_read() {
        let cols = [("a", DataType::Int16)];
        let c = connector(&cols, &[FAST, ("fields.a.kind", "sequence"), ("fields.a.start", "32760")]);
        assert!(!c.bounded());
        let mut r = c.open(0).expect("open");
        let mut failed = None;
        for _ in 0..100_000 {
            match r.next_batch() {
                Ok(ReadOutcome::Wait(d)) => std::thread::sleep(d.min(Duration::from_millis(5))),
                Ok(_) => {}
                Err(e) => {
                    failed = Some(e.to_string());
                    break;
                }
            }
        }
        let msg = failed.expect("overflow reported");
        assert!(msg.contains("smallint") && msg.contains("fields.a.end"), "{msg}");
    }

    fn random_columns() -> Vec<(&'static str, DataType)> {
        vec![
            ("i", DataType::Int32),
            ("f", DataType::Float64),
            ("d", DataType::Decimal128(6, 2)),
            ("s", DataType::Utf8),
            ("b", DataType::Boolean),
            ("day", DataType::Date32),
            ("ts", DataType::Timestamp(TimeUnit::Microsecond, Some("+00:00".into()))),
            ("big", DataType::Int64),
        ]
    }

    fn random_options(seed: &'static str) -> Vec<(&'static str, &'static str)> {
        vec![
            FAST,
            (OPT_SEED, seed),
            ("fields.i.min", "-5"),
            ("fields.i.max", "5"),
            ("fields.f.min", "1.5"),
            ("fields.f.max", "2.5"),
            ("fields.d.min", "1.25"),
            ("fields.d.max", "3.5"),
            ("fields.s.length", "7"),
            ("fields.day.min", "2024-02-01"),
            ("fields.day.max", "2024-02-03"),
            ("fields.ts.kind", "random"),
            ("fields.ts.base", "2024-01-01 00:00:00"),
            ("fields.ts.max_past", "10 seconds"),
        ]
    }

    fn first_rows(c: &DatagenConnector, n: usize) -> RecordBatch {
        let mut r = c.open(0).expect("open");
        let (batches, finished) = read(r.as_mut(), n);
        assert!(!finished);
        concat(&c.config.schema, &batches).slice(0, n)
    }

    #[test]
    fn random_values_stay_in_bounds_and_repeat_for_a_seed() {
        let cols = random_columns();
        let c = connector(&cols, &random_options("42"));
        assert!(!c.bounded());
        let rows = first_rows(&c, 3000);
        let i = rows.column(0).as_primitive::<Int32Type>();
        assert!(i.values().iter().all(|v| (-5..=5).contains(v)));
        assert!(i.values().contains(&-5) && i.values().contains(&5), "both ends drawn");
        let f = rows.column(1).as_primitive::<Float64Type>();
        assert!(f.values().iter().all(|v| (1.5..=2.5).contains(v)));
        let d = rows.column(2).as_primitive::<Dec>();
        assert!(d.values().iter().all(|v| (125..=350).contains(v)));
        assert_eq!((d.precision(), d.scale()), (6, 2));
        let s = rows.column(3).as_string::<i32>();
        assert!(s
            .iter()
            .all(|v| v.is_some_and(|v| v.len() == 7 && v.chars().all(|c| c.is_ascii_alphanumeric()))));
        let b = rows.column(4).as_boolean();
        assert!(b.true_count() > 1000 && b.false_count() > 1000);
        let day = rows.column(5).as_primitive::<D32>();
        let feb1 = Date32Type::parse("2024-02-01").expect("date");
        assert!(day.values().iter().all(|v| (feb1..=feb1 + 2).contains(v)));
        let ts = rows.column(6).as_primitive::<TimestampMicrosecondType>();
        assert_eq!(ts.timezone(), Some("+00:00"));
        let base = string_to_timestamp_nanos("2024-01-01 00:00:00").expect("ts") / 1000;
        assert!(ts.values().iter().all(|v| (base - 10_000_000..=base).contains(v)));
        let big = rows.column(7).as_primitive::<Int64Type>();
        assert!(big.values().iter().all(|v| *v >= 0), "default integer range is 0..=max");
        assert_eq!(rows.null_count_total(), 0);

        assert_eq!(first_rows(&connector(&cols, &random_options("42")), 3000), rows, "same seed, same rows");
        let other = first_rows(&connector(&cols, &random_options("43")), 3000);
        assert_ne!(other.column(0), rows.column(0), "another seed, other rows");

        // Values depend on the global row, not on how rows are split.
        let mut split_opts = random_options("42");
        split_opts.push((OPT_SPLIT_NUM, "2"));
        let split = connector(&cols, &split_opts);
        let mut r1 = split.open(1).expect("open");
        let (batches, _) = read(r1.as_mut(), 10);
        let second = concat(&split.config.schema, &batches);
        assert_eq!(second.column(3).as_string::<i32>().value(0), s.value(1));
    }

    /// The generated data of a seed never changes: checkpoints record offsets, not rows.
    #[test]
    fn random_values_are_pinned() {
        let cols = random_columns();
        let rows = first_rows(&connector(&cols, &random_options("42")), 2000);
        // Every column, `ts` included: its `base` is fixed, so no value reads the clock.
        let got: Vec<u64> = (0..rows.num_columns())
            .map(|c| {
                let column = rows.column(c);
                (0..column.len()).fold(0xcbf2_9ce4_8422_2325u64, |h, i| {
                    let value = arrow::util::display::array_value_to_string(column, i).expect("display");
                    value
                        .bytes()
                        .chain([0xff])
                        .fold(h, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3))
                })
            })
            .collect();
        assert_eq!(
            got,
            [
                5_218_081_225_395_117_321,
                16_787_392_889_228_410_727,
                8_923_489_892_851_302_383,
                10_025_932_836_624_951_094,
                4_146_161_993_873_617_767,
                1_969_215_529_602_045_349,
                4_846_393_557_295_622_975,
                5_504_121_568_823_347_093
            ]
        );
    }

    trait NullCount {
        fn null_count_total(&self) -> usize;
    }

    impl NullCount for RecordBatch {
        fn null_count_total(&self) -> usize {
            self.columns().iter().map(|c| c.null_count()).sum()
        }
    }

    #[test]
    fn rate_limit_returns_wait_when_ahead() {
        let c = connector(&[("id", DataType::Int64)], &[(OPT_ROWS_PER_SECOND, "2")]);
        let mut r = c.open(0).expect("open");
        match r.next_batch().expect("first") {
            ReadOutcome::Batch(b) => assert_eq!(b.num_rows(), 1, "only the first row is due at once"),
            other => panic!("expected a batch, got {other:?}"),
        }
        match r.next_batch().expect("second") {
            ReadOutcome::Wait(d) => assert!(d > Duration::ZERO && d <= Duration::from_millis(500), "{d:?}"),
            other => panic!("expected a wait, got {other:?}"),
        }
        // The total rate is shared: 10 rows/s over 2 splits is one row per 200 ms per split.
        let c = connector(&[("id", DataType::Int64)], &[(OPT_ROWS_PER_SECOND, "10"), (OPT_SPLIT_NUM, "2")]);
        let mut r = c.open(1).expect("open");
        assert!(matches!(r.next_batch().expect("first"), ReadOutcome::Batch(_)));
        match r.next_batch().expect("second") {
            ReadOutcome::Wait(d) => assert!(d <= Duration::from_millis(200), "{d:?}"),
            other => panic!("expected a wait, got {other:?}"),
        }
        // A seek restarts the limiter: the next row is due at once.
        r.seek(&json!({ "rows": 7 })).expect("seek");
        assert!(matches!(r.next_batch().expect("after seek"), ReadOutcome::Batch(_)));
        assert_eq!(r.offset(), json!({ "rows": 8 }));
    }

    #[test]
    fn seek_continues_exactly_where_the_offset_was_taken() {
        let cols = [
            ("id", DataType::Int64),
            ("v", DataType::Utf8),
            ("x", DataType::Float32),
            ("at", DataType::Timestamp(TimeUnit::Microsecond, None)),
        ];
        let opts = [FAST, (OPT_SPLIT_NUM, "2"), ("fields.id.kind", "sequence"), ("fields.id.end", "19999")];
        let c = connector(&cols, &opts);
        let mut a = c.open(1).expect("open");
        let (head, _) = read(a.as_mut(), 1500);
        let offset = a.offset();
        let taken = head.iter().map(|b| b.num_rows()).sum::<usize>();
        assert_eq!(offset, json!({ "rows": taken }));
        let (tail_a, finished) = read(a.as_mut(), usize::MAX);
        assert!(finished);

        let mut b = c.open(1).expect("open");
        b.seek(&offset).expect("seek");
        let (tail_b, finished) = read(b.as_mut(), usize::MAX);
        assert!(finished);
        let (ta, tb) = (concat(&c.config.schema, &tail_a), concat(&c.config.schema, &tail_b));
        assert_eq!(ta.num_rows(), 10_000 - taken);
        assert_eq!(ta.project(&[0, 1, 2]).expect("project"), tb.project(&[0, 1, 2]).expect("project"));
        // `now` (the default kind of a timestamp) is the wall clock.
        let at = tb.column(3).as_primitive::<TimestampMicrosecondType>();
        let now = wall_clock_micros();
        assert!(at.values().iter().all(|v| (now - 60_000_000..=now).contains(v)));

        assert!(b.seek(&json!({ "rows": 10_001 })).is_err(), "past the end");
        assert!(b.seek(&json!({ "position": 1 })).is_err(), "malformed");
        assert!(c.open(2).is_err());
    }

    #[test]
    fn timestamp_sequences_step_by_intervals() {
        let ts = DataType::Timestamp(TimeUnit::Microsecond, None);
        let cols = [("t", ts.clone()), ("u", ts), ("d", DataType::Date32)];
        let c = connector(
            &cols,
            &[
                FAST,
                ("fields.t.kind", "sequence"),
                ("fields.t.start", "2024-01-01 00:00:00"),
                ("fields.t.end", "2024-01-01 00:00:01"),
                ("fields.t.step", "100 milliseconds"),
                ("fields.u.kind", "sequence"),
                ("fields.u.start", "2024-01-01 12:00:00"),
                ("fields.u.step", "1500"),
                ("fields.d.kind", "sequence"),
                ("fields.d.start", "2024-02-28"),
                ("fields.d.step", "1 day"),
            ],
        );
        assert!(c.bounded());
        let mut r = c.open(0).expect("open");
        let (batches, finished) = read(r.as_mut(), usize::MAX);
        assert!(finished);
        let all = concat(&c.config.schema, &batches);
        assert_eq!(all.num_rows(), 11);
        let start = string_to_timestamp_nanos("2024-01-01 00:00:00").expect("ts") / 1000;
        let t = all.column(0).as_primitive::<TimestampMicrosecondType>();
        assert_eq!(t.values().to_vec(), (0..11).map(|k| start + k * 100_000).collect::<Vec<_>>());
        let u = all.column(1).as_primitive::<TimestampMicrosecondType>();
        assert_eq!(u.value(2) - u.value(0), 3_000_000, "a bare step counts milliseconds");
        let d = all.column(2).as_primitive::<D32>();
        assert_eq!(d.value_as_date(2).map(|d| d.to_string()), Some("2024-03-01".into()));
    }

    /// Declared columns, options, and a piece of the expected error message.
    type Case<'a> = (&'a [(&'a str, DataType)], Vec<(&'a str, &'a str)>, &'a str);

    #[test]
    fn option_mistakes_are_reported() {
        let int = [("id", DataType::Int32)];
        let ts = [("t", DataType::Timestamp(TimeUnit::Microsecond, None))];
        let cases: Vec<Case> = vec![
            (&int, vec![("datagen.rows", "5")], "it accepts: datagen.rows.per.second"),
            (&int, vec![("fields.nosuch.kind", "random")], "columns are: id"),
            (&int, vec![("fields.id.kind", "bogus")], "must be 'sequence' or 'random', not 'bogus'"),
            (&int, vec![("fields.id.min", "abc")], "fields.id.min must be a whole number"),
            (&int, vec![("fields.id.max", "3000000000")], "fields.id.max must be a whole number"),
            (&int, vec![("fields.id.min", "9"), ("fields.id.max", "1")], "must not be greater"),
            (
                &int,
                vec![("fields.id.length", "9")],
                "it accepts: fields.id.kind, fields.id.min, fields.id.max",
            ),
            (&int, vec![("fields.id.kind", "now")], "needs a timestamp column"),
            (&int, vec![("fields.id.kind", "sequence"), ("fields.id.step", "0")], "must not be zero"),
            (&int, vec![("fields.id.kind", "sequence"), ("fields.id.start", "x")], "fields.id.start must be"),
            (
                &int,
                vec![("fields.id.kind", "sequence"), ("fields.id.start", "5"), ("fields.id.end", "1")],
                "before",
            ),
            (&int, vec![(OPT_ROWS_PER_SECOND, "0")], "positive number"),
            (&int, vec![(OPT_SPLIT_NUM, "two")], "whole number from 1"),
            (&int, vec![(OPT_SEED, "1.5")], "datagen.seed"),
            (&int, vec![("fields.id", "1")], "fields.<column>.<attribute>"),
            (&ts, vec![("fields.t.kind", "sequence")], "start is required"),
            (&ts, vec![("fields.t.kind", "sequence"), ("fields.t.start", "yesterday")], "a timestamp like"),
            (&ts, vec![("fields.t.kind", "random"), ("fields.t.max_past", "a while")], "max_past must be"),
            (&[("flag", DataType::Boolean)], vec![("fields.flag.kind", "sequence")], "boolean"),
            (&[("raw", DataType::Binary)], vec![], "column 'raw' has type Binary"),
            (&[("t", DataType::Timestamp(TimeUnit::Millisecond, None))], vec![], "column 't' has type"),
        ];
        for (cols, pairs, expected) in cases {
            let msg = error(cols, &pairs);
            assert!(msg.contains(expected), "{pairs:?}: {msg}");
        }
        // Column names match case-insensitively; an unmentioned column is random.
        let c =
            connector(&[("UserId", DataType::Int32), ("x", DataType::Int16)], &[("fields.userid.max", "3")]);
        assert_eq!(c.config.columns[0].rule, Rule::RandomInt { min: 0, max: 3 });
        assert_eq!(c.config.columns[1].rule, Rule::RandomInt { min: 0, max: i16::MAX.into() });
    }
}
