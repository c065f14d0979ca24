//! Reading connector options: the checks and messages every connector's `WITH (...)` shares.
//!
//! Why here: options are validated at `CREATE SOURCE`, and what a user sees when one is wrong
//! should read the same whichever connector rejected it. The connectors used to parse and
//! word these on their own; what they share is kept once here. What they accept still
//! differs where users already rely on it, and the differences are spelled out at the call
//! (e.g. [`BoolWords`]) rather than hidden in copies: `nexmark`'s options follow the Flink
//! Nexmark generator's (`_` in numbers, `on`/`yes`/`1` as true, `got '...'` in messages).

use std::ops::RangeInclusive;
use std::str::FromStr;

use super::{ConnectorOptions, OptionError};

/// Rejects options a connector does not know, naming the ones it does.
pub fn check_known_options(
    connector: &str,
    options: &ConnectorOptions,
    known: &[&str],
) -> Result<(), OptionError> {
    for key in options.keys() {
        if !known.contains(&key.as_str()) {
            return Err(OptionError(format!(
                "unknown option '{key}' for connector '{connector}'; it accepts: {}",
                known.join(", ")
            )));
        }
    }
    Ok(())
}

/// `SUBJECT must be EXPECTED, not 'VALUE'`: the message for a value a connector cannot use.
/// `subject` names what was set: `option 'batch.size'`, or `fields.id.min`.
pub fn must_be(subject: &str, expected: &str, value: &str) -> OptionError {
    OptionError(format!("{subject} must be {expected}, not '{value}'"))
}

/// [`must_be`] for option `key`: `option 'KEY' must be EXPECTED, not 'VALUE'`.
pub fn invalid_value(key: &str, expected: &str, value: &str) -> OptionError {
    must_be(&format!("option '{key}'"), expected, value)
}

/// [`invalid_value`] in the `nexmark` connector's wording: `option 'KEY' must be EXPECTED,
/// got 'VALUE'`.
pub fn invalid_value_got(key: &str, expected: &str, value: &str) -> OptionError {
    OptionError(format!("option '{key}' must be {expected}, got '{value}'"))
}

/// `text` as a number within `range` (no trimming: callers decide what they strip).
pub fn parse_in_range<T: FromStr + PartialOrd>(text: &str, range: RangeInclusive<T>) -> Option<T> {
    text.parse::<T>().ok().filter(|v| range.contains(v))
}

/// Which words a boolean option accepts (case-insensitive, around whitespace).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BoolWords {
    /// `true` and `false`.
    TrueFalse,
    /// Also `on`/`off`, `yes`/`no` and `1`/`0`.
    Lenient,
}

/// `raw` as a boolean, `None` when it is none of `words`.
pub fn parse_bool(raw: &str, words: BoolWords) -> Option<bool> {
    match (raw.trim().to_ascii_lowercase().as_str(), words) {
        ("true", _) => Some(true),
        ("false", _) => Some(false),
        ("on" | "1" | "yes", BoolWords::Lenient) => Some(true),
        ("off" | "0" | "no", BoolWords::Lenient) => Some(false),
        _ => None,
    }
}

pub const MICROS_PER_SECOND: i64 = 1_000_000;

/// Microseconds in a day, the longest unit [`parse_duration_micros`] knows.
pub const MICROS_PER_DAY: i64 = 86_400 * MICROS_PER_SECOND;

/// Parses a duration such as `'1 second'`, `'100 milliseconds'`, `'1 minute 30 seconds'` or
/// `'-2 hours'` into microseconds; a bare number counts `bare_unit` microseconds. `None` when
/// malformed or out of range.
pub fn parse_duration_micros(value: &str, bare_unit: i64) -> Option<i64> {
    let value = value.trim();
    if let Ok(n) = value.parse::<i64>() {
        return n.checked_mul(bare_unit);
    }
    let words: Vec<&str> = value.split_whitespace().collect();
    if words.is_empty() || !words.len().is_multiple_of(2) {
        return None;
    }
    let mut total: i64 = 0;
    for pair in words.chunks(2) {
        let amount: i64 = pair[0].parse().ok()?;
        let unit = match pair[1].to_ascii_lowercase().as_str() {
            "us" | "microsecond" | "microseconds" => 1,
            "ms" | "millisecond" | "milliseconds" => 1_000,
            "s" | "sec" | "secs" | "second" | "seconds" => MICROS_PER_SECOND,
            "m" | "min" | "mins" | "minute" | "minutes" => 60 * MICROS_PER_SECOND,
            "h" | "hour" | "hours" => 3_600 * MICROS_PER_SECOND,
            "d" | "day" | "days" => MICROS_PER_DAY,
            _ => return None,
        };
        total = total.checked_add(amount.checked_mul(unit)?)?;
    }
    Some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages() {
        assert_eq!(
            invalid_value("batch.size", "a number", "x").0,
            "option 'batch.size' must be a number, not 'x'"
        );
        assert_eq!(must_be("fields.id.min", "a number", "x").0, "fields.id.min must be a number, not 'x'");
        assert_eq!(invalid_value_got("k", "an integer", "x").0, "option 'k' must be an integer, got 'x'");
        let options: ConnectorOptions = [("b".to_string(), String::new())].into();
        let e = check_known_options("c", &options, &["a"]).unwrap_err();
        assert_eq!(e.0, "unknown option 'b' for connector 'c'; it accepts: a");
    }

    #[test]
    fn numbers_and_booleans() {
        assert_eq!(parse_in_range("5", 1..=5), Some(5));
        assert_eq!(parse_in_range("6", 1..=5), None);
        assert_eq!(parse_in_range(" 5", 1..=5), None);
        assert_eq!(parse_bool(" TRUE ", BoolWords::TrueFalse), Some(true));
        assert_eq!(parse_bool("yes", BoolWords::TrueFalse), None);
        assert_eq!(parse_bool("Off", BoolWords::Lenient), Some(false));
        assert_eq!(parse_bool("maybe", BoolWords::Lenient), None);
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration_micros("1 minute 30 seconds", 1), Some(90_000_000));
        assert_eq!(parse_duration_micros("250 ms", 1), Some(250_000));
        assert_eq!(parse_duration_micros(" 7 ", 1_000), Some(7_000));
        assert_eq!(parse_duration_micros("-2 hours", 1), Some(-7_200_000_000));
        assert_eq!(parse_duration_micros("2 fortnights", 1), None);
        assert_eq!(parse_duration_micros("1 second 5", 1), None);
    }
}
