//! An `interval` reads as Postgres prints it (`IntervalStyle = postgres`): `1 year 2 mons 3
//! days 04:05:06.5`, `24:00:00`, `-03:00:00`. The wire protocol prints intervals with
//! [`format_interval`]; a cast to text (`CAST(iv AS text)`, `iv || ''`) gives the same text
//! through `interval_text`, which `TimestampToText` plans every such cast as. Arrow's cast
//! wrote `14 mons`, `1 mons` and `24 hours` (found by `pg_table_differential.py`).

use std::sync::Arc;

use arrow::array::{AsArray, StringArray};
use arrow::datatypes::{DataType, IntervalMonthDayNano, IntervalMonthDayNanoType, IntervalUnit};
use datafusion::error::Result;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

/// Postgres' default `IntervalStyle = postgres` text, e.g. `1 year 2 mons 3 days 04:05:06`.
/// A positive part after a negative one has a `+` (`-1 mons +1 day`, `-1 years +02:00:00`),
/// as Postgres' `EncodeInterval` writes it.
pub fn format_interval(v: IntervalMonthDayNano) -> String {
    let mut parts: Vec<String> = Vec::new();
    // Whether the last part written was negative: a positive one after it gets a `+`.
    let mut after_negative = false;
    let (years, months) = (v.months / 12, v.months % 12);
    for (n, unit) in [(years, "year"), (months, "mon"), (v.days, "day")] {
        if n != 0 {
            let plus = if after_negative && n > 0 { "+" } else { "" };
            parts.push(format!("{plus}{n} {unit}{}", if n == 1 { "" } else { "s" }));
            after_negative = n < 0;
        }
    }
    let micros = v.nanoseconds / 1000;
    if micros != 0 || parts.is_empty() {
        let sign = match micros < 0 {
            true => "-",
            false if after_negative => "+",
            false => "",
        };
        let m = micros.unsigned_abs();
        let (h, rem) = (m / 3_600_000_000, m % 3_600_000_000);
        let (min, rem) = (rem / 60_000_000, rem % 60_000_000);
        let (s, us) = (rem / 1_000_000, rem % 1_000_000);
        let mut t = format!("{sign}{h:02}:{min:02}:{s:02}");
        if us != 0 {
            t.push_str(format!(".{us:06}").trim_end_matches('0'));
        }
        parts.push(t);
    }
    parts.join(" ")
}

/// `interval_text(iv)`: [`format_interval`] of each value.
#[derive(Debug, PartialEq, Eq, Hash)]
struct IntervalText {
    signature: Signature,
}

pub fn interval_text() -> ScalarUDF {
    ScalarUDF::new_from_impl(IntervalText {
        signature: Signature::exact(
            vec![DataType::Interval(IntervalUnit::MonthDayNano)],
            Volatility::Immutable,
        ),
    })
}

impl ScalarUDFImpl for IntervalText {
    fn name(&self) -> &str {
        "interval_text"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let scalar = matches!(args.args[0], ColumnarValue::Scalar(_));
        let values = args.args[0].to_array(if scalar { 1 } else { args.number_rows })?;
        let out: StringArray = values
            .as_primitive::<IntervalMonthDayNanoType>()
            .iter()
            .map(|v| v.map(format_interval))
            .collect();
        super::columnar(Arc::new(out), scalar)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iv(months: i32, days: i32, nanoseconds: i64) -> IntervalMonthDayNano {
        IntervalMonthDayNano { months, days, nanoseconds }
    }

    #[test]
    fn intervals_read_as_postgres_prints_them() {
        let hour = 3_600_000_000_000;
        assert_eq!(format_interval(iv(14, 3, 14_706_000_000_000)), "1 year 2 mons 3 days 04:05:06");
        assert_eq!(format_interval(iv(1, 0, 0)), "1 mon");
        assert_eq!(format_interval(iv(0, 0, 24 * hour)), "24:00:00");
        assert_eq!(format_interval(iv(0, 1, -3 * hour)), "1 day -03:00:00");
        assert_eq!(format_interval(iv(-14, 0, 0)), "-1 years -2 mons");
        assert_eq!(format_interval(iv(0, 0, 500_000_000)), "00:00:00.5");
        assert_eq!(format_interval(iv(0, 0, 0)), "00:00:00");
        // A positive part after a negative one has a plus sign.
        assert_eq!(format_interval(iv(-1, 1, 0)), "-1 mons +1 day");
        assert_eq!(format_interval(iv(-14, 0, 2 * hour)), "-1 years -2 mons +02:00:00");
        assert_eq!(format_interval(iv(1, 0, -500_000_000)), "1 mon -00:00:00.5");
    }
}
