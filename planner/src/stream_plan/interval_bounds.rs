//! Interval-join bounds: what in a join's condition limits how long a row can find matches.
//!
//! A condition such as `l.t BETWEEN r.t - INTERVAL '10' SECOND AND r.t` over event-time
//! columns (columns the watermark bounds) on both sides says that a left row of time `t`
//! only matches right rows with `r.t <= t + 10 s`, and a right row only left rows with
//! `l.t <= r.t`. Once the watermark passes those times no on-time row can match, so the
//! join drops the row from its state: a regular join whose state the watermark bounds.
//! Each conjunct `a.t + x <= b.t + y` (also spelled with `<`, `>`, `>=` or `BETWEEN`)
//! between a column of each side gives the side of `b` the bound `b.t + (y - x)` on the
//! other side's time, and makes the other side's rows late on `a.t`. `a` counts if no
//! change below the watermark can still come for it: a watermarked column of an
//! append-only input (sources, tables with a watermark, `EMIT ON WINDOW CLOSE`
//! aggregates), or the `window_end` of a window aggregate that emits on update (it sends a
//! closing window's last changes before the watermark that closes it); other columns of a
//! retracting input may still change after the watermark passed them. `b` only needs to be
//! a timestamp if its side is append-only (Nexmark q9's `A.expires`): a row that will
//! never be retracted can be dropped on any of its own values.

use datafusion::common::{DFSchema, ScalarValue};
use datafusion::logical_expr::utils::split_conjunction;
use datafusion::logical_expr::{Between, BinaryExpr, Expr, Operator};
use weir_plan::job_graph::{JoinLateness, StreamProperties, TimeBound};

/// What bounds each side of a join: when its rows expire, and which of its columns makes a
/// row late.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(super) struct JoinBounds {
    pub left: Option<TimeBound>,
    pub right: Option<TimeBound>,
    pub lateness: JoinLateness,
}

/// The bounds for the left side's rows and the right side's, from `filter` over `combined`
/// (the left input's columns, then the right's).
///
/// A conjunct `a.t + x <= b.t + y` with `a` on one side and `b` on the other lets `b`'s
/// side drop a row once the watermark passes its `b.t + (y - x)`, provided
/// - `a` bounds every change of its side (see [`bounds_every_change`]), so that its rows
///   older than the watermark can be dropped as late: every row that could still match has
///   `a.t` at or past the watermark;
/// - and `b` is a timestamp of an append-only side (a dropped row is never retracted later),
///   or bounds every change of its side. It need not carry a watermark: Nexmark q9's
///   auctions expire on `expires`, their bids are late on `date_time`.
pub(super) fn interval_bounds(
    filter: Option<&Expr>,
    combined: &DFSchema,
    left_width: usize,
    left: &StreamProperties,
    right: &StreamProperties,
) -> JoinBounds {
    let mut bounds = JoinBounds::default();
    let Some(filter) = filter else { return bounds };
    let mut comparisons = Vec::new();
    for conjunct in split_conjunction(filter) {
        match conjunct {
            Expr::Between(Between { expr, negated: false, low, high }) => {
                comparisons.push((low.as_ref(), expr.as_ref()));
                comparisons.push((expr.as_ref(), high.as_ref()));
            }
            Expr::BinaryExpr(BinaryExpr { left, op, right }) => match op {
                Operator::Lt | Operator::LtEq => comparisons.push((left.as_ref(), right.as_ref())),
                Operator::Gt | Operator::GtEq => comparisons.push((right.as_ref(), left.as_ref())),
                _ => {}
            },
            _ => {}
        }
    }
    let side = |index: usize| match index < left_width {
        true => (left, index),
        false => (right, index - left_width),
    };
    let timestamp = |e: &Expr| -> Option<(usize, i64)> {
        let (index, offset) = term(e, combined)?;
        matches!(combined.field(index).data_type(), arrow::datatypes::DataType::Timestamp(_, _))
            .then_some((index, offset))
    };
    for (smaller, larger) in comparisons {
        let (Some((a, x)), Some((b, y))) = (timestamp(smaller), timestamp(larger)) else { continue };
        if (a < left_width) == (b < left_width) {
            continue;
        }
        let ((a_side, a_column), (b_side, b_column)) = (side(a), side(b));
        if !bounds_every_change(a_side, a_column)
            || !(b_side.append_only || bounds_every_change(b_side, b_column))
        {
            continue;
        }
        let Some(offset_us) = y.checked_sub(x) else { continue };
        // a.t <= b.t + offset: a row of b's side only matches rows of a's side up to its
        // own time plus the offset.
        let bound = TimeBound { column: b_column, offset_us };
        let (expiry, late) = match b < left_width {
            true => (&mut bounds.left, &mut bounds.lateness.right),
            false => (&mut bounds.right, &mut bounds.lateness.left),
        };
        if expiry.is_none_or(|current| offset_us < current.offset_us) {
            *expiry = Some(bound);
            *late = Some(a_column);
        }
    }
    bounds
}

/// `column`, `column + interval` or `column - interval`: the column's index and the
/// offset in microseconds.
fn term(expr: &Expr, schema: &DFSchema) -> Option<(usize, i64)> {
    match expr {
        Expr::Column(column) => Some((schema.index_of_column(column).ok()?, 0)),
        Expr::BinaryExpr(BinaryExpr { left, op, right }) => {
            let (index, base) = term(left, schema)?;
            let Expr::Literal(value, _) = right.as_ref() else { return None };
            let micros = interval_micros(value)?;
            let offset = match op {
                Operator::Plus => base.checked_add(micros)?,
                Operator::Minus => base.checked_sub(micros)?,
                _ => return None,
            };
            Some((index, offset))
        }
        _ => None,
    }
}

/// An interval of fixed length in microseconds (not one with months, whose length varies).
fn interval_micros(value: &ScalarValue) -> Option<i64> {
    match value {
        ScalarValue::IntervalMonthDayNano(Some(v)) if v.months == 0 => {
            i64::from(v.days).checked_mul(86_400_000_000)?.checked_add(v.nanoseconds / 1000)
        }
        ScalarValue::IntervalDayTime(Some(v)) => {
            i64::from(v.days).checked_mul(86_400_000_000)?.checked_add(i64::from(v.milliseconds) * 1000)
        }
        _ => None,
    }
}

/// How EXPLAIN says what bounds a side's state.
pub(super) fn describe(bound: Option<TimeBound>, ttl_ms: Option<u64>) -> Option<String> {
    match (bound, ttl_ms) {
        (Some(b), _) => Some(format!(
            "dropped once the watermark passes _c{} {} {}",
            b.column,
            if b.offset_us < 0 { "-" } else { "+" },
            micros_text(b.offset_us.unsigned_abs())
        )),
        (None, Some(ms)) => Some(format!("state_ttl {}", micros_text(ms.saturating_mul(1000)))),
        (None, None) => None,
    }
}

fn micros_text(us: u64) -> String {
    match us {
        us if us % 3_600_000_000 == 0 && us > 0 => format!("{} h", us / 3_600_000_000),
        us if us % 60_000_000 == 0 && us > 0 => format!("{} min", us / 60_000_000),
        us if us % 1_000_000 == 0 => format!("{} s", us / 1_000_000),
        us if us % 1000 == 0 => format!("{} ms", us / 1000),
        us => format!("{us} us"),
    }
}

/// Whether no change with a value of `column` below the watermark can still come: every
/// watermarked column of an append-only input; of a retracting one, only a window's end (a
/// window aggregate that emits on update sends a window's last changes before the
/// watermark that closes it, but a retracting input may change other rows at any time).
fn bounds_every_change(input: &StreamProperties, column: usize) -> bool {
    match input.append_only {
        true => input.watermark_columns.contains(&column),
        false => input.window_end_columns.contains(&column),
    }
}

/// Window-join bounds: a key equality between a `window_end` of each side (as in Nexmark
/// q8) means a row only matches rows of its own window. Once the watermark passes a
/// window's end, neither side sends a change for it any more: a window aggregate emits a
/// closing window's last changes before the watermark that closes it, even when it emits
/// on update. So each side's rows are dropped once the watermark passes their
/// `window_end`, retracting inputs included.
pub(super) fn window_bounds(
    left_keys: &[usize],
    right_keys: &[usize],
    left: &StreamProperties,
    right: &StreamProperties,
) -> Option<(TimeBound, TimeBound)> {
    left_keys
        .iter()
        .zip(right_keys)
        .find(|(l, r)| left.window_end_columns.contains(l) && right.window_end_columns.contains(r))
        .map(|(&l, &r)| (TimeBound { column: l, offset_us: 0 }, TimeBound { column: r, offset_us: 0 }))
}
