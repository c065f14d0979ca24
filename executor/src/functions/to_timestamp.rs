//! Postgres' `to_timestamp(text, format)` and `to_date(text, format)`: text read with the
//! template patterns `to_char` writes (`YYYY-MM-DD HH24:MI:SS`, `DD Month YYYY`, …).
//! DataFusion's read chrono's `%`-formats, so a Postgres pattern failed with "input
//! contains invalid characters". The one-argument forms (`to_timestamp(epoch)`,
//! `to_date(text)`) stay DataFusion's.
//!
//! Reading follows Postgres' rules: spaces before a field are skipped; a separator in the
//! template matches one separator of the input or none; a number reads up to the next
//! non-digit, or exactly its pattern's width when the next item is another field
//! (`YYYYMMDD`); `MS`/`US` are fractions (`.5` is 500 ms); two- and three-digit years are
//! taken nearest to 2020; names of months and days match in any case; input left after
//! the template is ignored, and fields the input does not reach keep their defaults
//! (`to_date('2021', 'YYYY-MM-DD')` is 2021-01-01). Bad text is `22007`, a value out of
//! range `22008`; patterns Weir does not read (ISO weeks, Julian days, time zones, …) are
//! `0A000`, never a guess.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Date32Builder, TimestampNanosecondBuilder};
use arrow::datatypes::DataType;
use chrono::{NaiveDate, NaiveDateTime, NaiveTime};
use datafusion::common::config::ConfigOptions;
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature};

use super::to_char::{template, Item, DAYS, MONTHS};
use crate::error::ExecError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Target {
    Timestamp,
    Date,
}

/// `to_timestamp`/`to_date`: Postgres' templates for two text arguments, DataFusion's
/// function otherwise.
#[derive(Debug)]
struct TemplateParse {
    target: Target,
    inner: Arc<dyn ScalarUDFImpl>,
}

udf_identity!(TemplateParse, |function| function.target);

pub fn to_timestamp() -> ScalarUDF {
    let inner = Arc::clone(datafusion::functions::datetime::to_timestamp(&ConfigOptions::default()).inner());
    ScalarUDF::new_from_impl(TemplateParse { target: Target::Timestamp, inner })
}

pub fn to_date() -> ScalarUDF {
    let inner = Arc::clone(datafusion::functions::datetime::to_date().inner());
    ScalarUDF::new_from_impl(TemplateParse { target: Target::Date, inner })
}

fn is_text(t: &DataType) -> bool {
    matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Null)
}

impl ScalarUDFImpl for TemplateParse {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn signature(&self) -> &Signature {
        self.inner.signature()
    }
    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        self.inner.return_type(args)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let [text, format] = args.args.as_slice() else { return self.inner.invoke_with_args(args) };
        if !is_text(&text.data_type()) || !is_text(&format.data_type()) {
            return self.inner.invoke_with_args(args);
        }
        let scalar = matches!((text, format), (ColumnarValue::Scalar(_), ColumnarValue::Scalar(_)));
        let rows = if scalar { 1 } else { args.number_rows };
        let texts = arrow::compute::cast(&text.to_array(rows)?, &DataType::Utf8)?;
        let formats = arrow::compute::cast(&format.to_array(rows)?, &DataType::Utf8)?;
        let (texts, formats) = (texts.as_string::<i32>(), formats.as_string::<i32>());
        let parsed = |i: usize| -> Result<Option<NaiveDateTime>> {
            match texts.is_valid(i) && formats.is_valid(i) {
                true => parse(texts.value(i), formats.value(i)).map(Some).map_err(DataFusionError::from),
                false => Ok(None),
            }
        };
        let out: ArrayRef = match self.target {
            Target::Timestamp => {
                let mut out = TimestampNanosecondBuilder::with_capacity(rows);
                for i in 0..rows {
                    let nanos = parsed(i)?
                        .map(|t| {
                            t.and_utc().timestamp_nanos_opt().ok_or_else(|| {
                                ExecError::DatetimeOverflow(format!(
                                    "timestamp out of range: \"{}\"",
                                    texts.value(i)
                                ))
                            })
                        })
                        .transpose()
                        .map_err(DataFusionError::from)?;
                    out.append_option(nanos);
                }
                let DataType::Timestamp(_, zone) = args.return_field.data_type() else {
                    return Err(DataFusionError::Internal("to_timestamp returns a timestamp".into()));
                };
                Arc::new(out.finish().with_timezone_opt(zone.clone()))
            }
            Target::Date => {
                let mut out = Date32Builder::with_capacity(rows);
                for i in 0..rows {
                    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default();
                    let days = parsed(i)?.map(|t| (t.date() - epoch).num_days());
                    let days = days
                        .map(|d| {
                            i32::try_from(d).map_err(|_| {
                                ExecError::DatetimeOverflow(format!(
                                    "date out of range: \"{}\"",
                                    texts.value(i)
                                ))
                            })
                        })
                        .transpose()
                        .map_err(DataFusionError::from)?;
                    out.append_option(days);
                }
                Arc::new(out.finish())
            }
        };
        super::columnar(out, scalar)
    }
}

impl From<ExecError> for DataFusionError {
    fn from(e: ExecError) -> Self {
        DataFusionError::External(Box::new(e))
    }
}

/// `22007`: the input does not read as the template says.
fn bad_value(found: &str, pattern: &str, detail: &str) -> ExecError {
    ExecError::InvalidDatetimeFormat(format!("invalid value \"{found}\" for \"{pattern}\": {detail}"))
}

/// `22008`: a field read fine but is out of range.
fn out_of_range(input: &str) -> ExecError {
    ExecError::DatetimeOverflow(format!("date/time field value out of range: \"{input}\""))
}

/// The fields read so far; unread ones keep Postgres' defaults.
#[derive(Default)]
struct Fields {
    year: Option<i32>,
    month: Option<u32>,
    day: Option<u32>,
    day_of_year: Option<u32>,
    hour: u32,
    twelve_hour: bool,
    pm: Option<bool>,
    minute: u32,
    second: u32,
    nanos: u32,
}

/// Reads `input` with `format`.
fn parse(input: &str, format: &str) -> Result<NaiveDateTime, ExecError> {
    let items = template(format);
    let chars: Vec<char> = input.chars().collect();
    let mut at = 0;
    let mut fields = Fields::default();
    for (n, item) in items.iter().enumerate() {
        match item {
            // A separator (a space or punctuation) matches a run of spaces or one other
            // separator of the input, or nothing.
            Item::Char(c) if !c.is_alphanumeric() => {
                if chars.get(at).is_some_and(|c| c.is_whitespace()) {
                    while chars.get(at).is_some_and(|c| c.is_whitespace()) {
                        at += 1;
                    }
                } else if chars.get(at).is_some_and(|c| !c.is_alphanumeric()) {
                    at += 1;
                }
            }
            // Other text in the template skips as many characters of the input.
            Item::Char(_) => at = (at + 1).min(chars.len()),
            Item::Quoted(text) => at = (at + text.chars().count()).min(chars.len()),
            Item::Field { pattern, fill_mode, .. } => {
                while chars.get(at).is_some_and(|c| c.is_whitespace()) {
                    at += 1;
                }
                if at >= chars.len() {
                    break;
                }
                let fixed_width = !fill_mode && matches!(items.get(n + 1), Some(Item::Field { .. }));
                at = read_field(&chars, at, pattern, fixed_width, &mut fields, input)?;
            }
        }
    }
    fields.into_timestamp(input)
}

/// A pattern's digits when the next field follows without a separator.
fn width(pattern: &str) -> usize {
    match pattern {
        "YYYY" => 4,
        "YYY" | "DDD" | "MS" => 3,
        "US" => 6,
        "Y" => 1,
        _ => 2,
    }
}

/// Reads one field at `at`, returning where the input goes on.
fn read_field(
    chars: &[char],
    at: usize,
    pattern: &'static str,
    fixed_width: bool,
    fields: &mut Fields,
    input: &str,
) -> Result<usize, ExecError> {
    let rest: String = chars[at..].iter().collect();
    let lower = rest.to_lowercase();
    match pattern.to_uppercase().as_str() {
        "MONTH" | "MON" => {
            let full = MONTHS.iter().position(|m| lower.starts_with(&m.to_lowercase()));
            let (month, len) = match full {
                Some(m) if pattern.len() > 3 => (m, MONTHS[m].len()),
                _ => MONTHS
                    .iter()
                    .position(|m| lower.starts_with(&m[..3].to_lowercase()))
                    .map(|m| (m, 3))
                    .ok_or_else(|| {
                        bad_value(&rest.chars().take(9).collect::<String>(), pattern, "not a month name")
                    })?,
            };
            fields.month = Some(month as u32 + 1);
            Ok(at + len)
        }
        "DAY" | "DY" => {
            // Read and checked, not used: the date comes from the other fields.
            let full = DAYS.iter().find(|d| lower.starts_with(&d.to_lowercase()));
            let len = match full {
                Some(d) if pattern.len() > 2 => d.len(),
                _ => DAYS.iter().find(|d| lower.starts_with(&d[..3].to_lowercase())).map(|_| 3).ok_or_else(
                    || bad_value(&rest.chars().take(9).collect::<String>(), pattern, "not a day name"),
                )?,
            };
            Ok(at + len)
        }
        "AM" | "PM" | "A.M." | "P.M." => {
            let dotted = pattern.contains('.');
            let (am, pm) = if dotted { ("a.m.", "p.m.") } else { ("am", "pm") };
            let pm_now = if lower.starts_with(pm) {
                true
            } else if lower.starts_with(am) {
                false
            } else {
                return Err(bad_value(&rest.chars().take(4).collect::<String>(), pattern, "not AM or PM"));
            };
            fields.pm = Some(pm_now);
            Ok(at + am.len())
        }
        "YYYY" | "YYY" | "YY" | "Y" | "MM" | "DD" | "DDD" | "HH" | "HH12" | "HH24" | "MI" | "SS" | "MS"
        | "US" => {
            let limit = if fixed_width { width(pattern) } else { 9 };
            let digits: String = chars[at..].iter().take(limit).take_while(|c| c.is_ascii_digit()).collect();
            if digits.is_empty() {
                let shown: String = chars[at..].iter().take(width(pattern)).collect();
                return Err(bad_value(&shown, pattern, "the value must be an integer"));
            }
            let value: u32 = digits.parse().map_err(|_| out_of_range(input))?;
            let len = digits.len();
            match pattern {
                "YYYY" | "YYY" | "YY" | "Y" => {
                    let year = i32::try_from(value).map_err(|_| out_of_range(input))?;
                    fields.year = Some(if len < 4 { nearest_to_2020(year) } else { year });
                }
                "MM" => fields.month = Some(value),
                "DD" => fields.day = Some(value),
                "DDD" => fields.day_of_year = Some(value),
                "HH" | "HH12" => {
                    if !(1..=12).contains(&value) {
                        return Err(ExecError::DatetimeOverflow(format!(
                            "hour \"{value}\" is invalid for the 12-hour clock: use the 24-hour clock, or give an hour between 1 and 12"
                        )));
                    }
                    fields.hour = value;
                    fields.twelve_hour = true;
                }
                "HH24" => fields.hour = value,
                "MI" => fields.minute = value,
                "SS" => fields.second = value,
                // Fractions: `.5` read as MS is 500 milliseconds.
                "MS" | "US" => {
                    let places = if pattern == "MS" { 3 } else { 6 };
                    if len > places {
                        return Err(out_of_range(input));
                    }
                    let scaled = value * 10u32.pow((places - len) as u32);
                    fields.nanos = scaled * if places == 3 { 1_000_000 } else { 1_000 };
                }
                _ => {}
            }
            Ok(at + len)
        }
        _ => Err(ExecError::Unsupported(format!(
            "the pattern \"{pattern}\" is not supported in to_timestamp and to_date by Weir; \
             use YYYY, YY, MM, Mon, Month, DD, DDD, Dy, Day, HH24, HH12, AM, MI, SS, MS and US"
        ))),
    }
}

/// A year written with fewer than four digits, taken nearest to 2020 as Postgres does.
fn nearest_to_2020(year: i32) -> i32 {
    match year {
        y if y < 70 => y + 2000,
        y if y < 100 => y + 1900,
        y if y < 520 => y + 2000,
        y if y < 1000 => y + 1000,
        y => y,
    }
}

impl Fields {
    fn into_timestamp(self, input: &str) -> Result<NaiveDateTime, ExecError> {
        // Postgres' default year is 1 BC (year 0 here), its month and day 1.
        let year = self.year.unwrap_or(0);
        let date = match (self.day_of_year, self.month, self.day) {
            (Some(ordinal), None, None) => NaiveDate::from_yo_opt(year, ordinal),
            _ => NaiveDate::from_ymd_opt(year, self.month.unwrap_or(1), self.day.unwrap_or(1)),
        }
        .ok_or_else(|| out_of_range(input))?;
        let hour = match (self.twelve_hour || self.pm.is_some(), self.pm) {
            (true, Some(true)) if self.hour < 12 => self.hour + 12,
            (true, Some(false)) if self.hour == 12 => 0,
            _ => self.hour,
        };
        let time = NaiveTime::from_hms_nano_opt(hour, self.minute, self.second, self.nanos)
            .ok_or_else(|| out_of_range(input))?;
        Ok(date.and_time(time))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(input: &str, format: &str) -> String {
        match parse(input, format) {
            Ok(t) => t.format("%Y-%m-%d %H:%M:%S%.f").to_string(),
            Err(e) => format!("{} {e}", e.sqlstate().unwrap_or("?")),
        }
    }

    /// Expected values are PostgreSQL 15's.
    #[test]
    fn templates_read_as_in_postgres() {
        assert_eq!(read("2020-01-02xyz", "YYYY-MM-DD"), "2020-01-02 00:00:00");
        assert_eq!(read("20200102", "YYYYMMDD"), "2020-01-02 00:00:00");
        assert_eq!(read("2020/1/2", "YYYY-MM-DD"), "2020-01-02 00:00:00");
        assert_eq!(read("2020 Jan 2", "YYYY Mon DD"), "2020-01-02 00:00:00");
        assert_eq!(read("  2020-01-02", "YYYY-MM-DD"), "2020-01-02 00:00:00");
        assert_eq!(read("2020-01-02 3:04:05 PM", "YYYY-MM-DD HH:MI:SS AM"), "2020-01-02 15:04:05");
        assert_eq!(read("2020-01-02 12:04 am", "YYYY-MM-DD HH12:MI pm"), "2020-01-02 00:04:00");
        assert_eq!(
            read("2020-01-02 10:11:12.345678", "YYYY-MM-DD HH24:MI:SS.US"),
            "2020-01-02 10:11:12.345678"
        );
        assert_eq!(read("2020-01-02 10:11:12.5", "YYYY-MM-DD HH24:MI:SS.MS"), "2020-01-02 10:11:12.500");
        assert_eq!(read("05 March 2021", "DD Month YYYY"), "2021-03-05 00:00:00");
        assert_eq!(read("2021-060", "YYYY-DDD"), "2021-03-01 00:00:00");
        assert_eq!(read("Tue 2021-03-02", "Dy YYYY-MM-DD"), "2021-03-02 00:00:00");
        assert_eq!(read("2021", "YYYY-MM-DD"), "2021-01-01 00:00:00");
        assert_eq!(read("21-03-02", "YY-MM-DD"), "2021-03-02 00:00:00");
        assert_eq!(read("2020-01-02", "YYYY\"T\"MM"), "2020-01-01 00:00:00");
        assert_eq!(read("2020-1-2", "YYYY-FMMM-FMDD"), "2020-01-02 00:00:00");
        assert_eq!(read("2020.01.02", "YYYY-MM-DD"), "2020-01-02 00:00:00");
        assert_eq!(read("2020-01-02", "YYYY MM DD"), "2020-01-02 00:00:00");
    }

    #[test]
    fn bad_input_is_an_error_never_a_guess() {
        assert!(read("x2021", "YYYY").starts_with("22007"));
        assert!(read("2020-13-02", "YYYY-MM-DD").starts_with("22008"));
        assert!(read("2020-02-30", "YYYY-MM-DD").starts_with("22008"));
        assert!(read("2020-01-02 25:00", "YYYY-MM-DD HH24:MI").starts_with("22008"));
        assert!(read("2020-01-02 13", "YYYY-MM-DD HH12").starts_with("22008"));
        assert!(read("2020-01-02", "IYYY-MM-DD").starts_with("0A000"));
        assert!(read("2020 Foo 02", "YYYY Mon DD").starts_with("22007"));
    }
}
