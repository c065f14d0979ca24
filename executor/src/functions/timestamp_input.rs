//! Postgres' input of `timestamp`, `timestamp with time zone` and `date` text, the one
//! reader for every place text becomes a date or time: casts and `TIMESTAMP '…'` literals
//! (see `text_to_timestamp`), strings assigned to such columns by `INSERT`, `COPY` fields
//! and text parameters of the extended protocol.
//!
//! Arrow's parser, used before, wanted the seconds (`'2020-01-01 12:00'` was an error), cut
//! a seventh fractional digit instead of rounding, refused years of more than four digits,
//! and applied a UTC offset to a `timestamp` without time zone, which Postgres ignores.
//!
//! The forms read are Postgres' ISO 8601 ones: a date `Y-M-D` (a year of one or two digits
//! is 1970–2069, as Postgres reads it; three or more digits as written) or its digits
//! alone (`YYYYMMDD`, `YYMMDD`, more digits for a longer year);
//! optionally a time after `T` or blanks, `H:M`, `H:M:S` or `H:M:S.fraction` (the fraction
//! rounded to microseconds as Postgres rounds it, `24:00:00` and a leap second `:60` carry
//! into the next minute or day); optionally a zone (`Z`, `UTC`, `GMT`, `+HH`, `+HH:MM`,
//! `+HHMM`, `+HH:MM:SS`, an abbreviation of Postgres' default set with a fixed offset such
//! as `PST` ([`super::zone_abbreviations`]), or a tz database name such as `Europe/Paris`,
//! each in any case), and `BC`/`AD`. A
//! `date` reads the same text and keeps the date. `epoch` is 1970-01-01 00:00:00.
//!
//! Errors are Postgres': `22P02` for text that is not a date or time, `22008` for a field
//! out of range (`2021-02-29`, `25:00`) and a value outside the type's range (Postgres'
//! range, less where Weir's microseconds since 1970 end, in the year 294247), `22009` for
//! an offset beyond ±15:59:59, `22023` for an unknown zone name. `infinity`, `now`,
//! `today`, `tomorrow` and `yesterday` are `0A000`: Weir's timestamps hold no infinities,
//! and the words that name the current time would be frozen in a view's definition.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::OnceLock;

use arrow::array::timezone::Tz;
use chrono::{Offset, TimeZone};

use super::zone_abbreviations::fixed_offset;
use crate::error::ExecError;

const MICROS_PER_SECOND: i64 = 1_000_000;
const MICROS_PER_DAY: i64 = 86_400 * MICROS_PER_SECOND;

/// The first day Postgres' `timestamp` and `date` have: 4714-11-24 BC (Julian day 0).
const FIRST_DAY: i64 = -2_440_588;
/// The day after the last `timestamp` in Postgres: 294277-01-01.
const TIMESTAMP_END_DAY: i64 = 106_762_940;
/// The day after the last `date` in Postgres: 5874898-01-01.
const DATE_END_DAY: i64 = 2_145_042_906;

/// What text read as a date or time says.
#[derive(Debug, PartialEq)]
enum Reading {
    /// Days since 1970-01-01, the time of day in microseconds (up to a whole day, for
    /// `24:00:00` and a leap second) and the zone written, if any.
    Moment {
        days: i64,
        micros: i64,
        zone: Option<Zone>,
    },
    Epoch,
}

#[derive(Debug, PartialEq)]
enum Zone {
    /// Seconds east of UTC.
    Offset(i64),
    /// A tz database name, as written.
    Named(String),
}

/// Why text does not read: each is one of Postgres' errors.
#[derive(Debug, PartialEq)]
enum Fault {
    Syntax,
    FieldRange,
    Displacement,
    UnknownZone(String),
    Unsupported(&'static str),
}

/// `text` as a `timestamp` (`with_zone` false: a zone written is ignored, as Postgres
/// ignores it) or a `timestamp with time zone` (converted to UTC), in microseconds since
/// 1970-01-01 00:00:00.
pub fn parse_timestamp(text: &str, with_zone: bool) -> Result<i64, ExecError> {
    if let Some((days, micros)) = common_form(text.as_bytes()) {
        return Ok(days * MICROS_PER_DAY + micros);
    }
    let type_name = if with_zone { "timestamp with time zone" } else { "timestamp" };
    let (days, micros, zone) = match read(text).map_err(|f| fault_error(f, type_name, text))? {
        Reading::Epoch => return Ok(0),
        Reading::Moment { days, micros, zone } => (days, micros, zone),
    };
    let out_of_range = || ExecError::DatetimeOverflow(format!("timestamp out of range: \"{text}\""));
    // Postgres checks the date before the time carries into it.
    if !(FIRST_DAY..TIMESTAMP_END_DAY).contains(&days) {
        return Err(out_of_range());
    }
    let local = i128::from(days) * i128::from(MICROS_PER_DAY) + i128::from(micros);
    let offset_seconds = match (with_zone, zone) {
        (false, Some(Zone::Named(name))) => {
            // Ignored, but it must be a zone, as in Postgres.
            zone_named(&name)
                .ok_or_else(|| fault_error(Fault::UnknownZone(name.clone()), type_name, text))?;
            0
        }
        (false, _) | (true, None) => 0,
        (true, Some(Zone::Offset(seconds))) => seconds,
        (true, Some(Zone::Named(name))) => {
            named_zone_offset(&name, local).map_err(|f| fault_error(f, type_name, text))?
        }
    };
    let utc = local - i128::from(offset_seconds) * i128::from(MICROS_PER_SECOND);
    let first = i128::from(FIRST_DAY) * i128::from(MICROS_PER_DAY);
    let end = i128::from(TIMESTAMP_END_DAY) * i128::from(MICROS_PER_DAY);
    match (first..end).contains(&utc) {
        true => i64::try_from(utc).map_err(|_| out_of_range()),
        false => Err(out_of_range()),
    }
}

/// `text` as a `date`, in days since 1970-01-01; a time and zone written are ignored.
pub fn parse_date(text: &str) -> Result<i32, ExecError> {
    if let Some((days, _)) = common_form(text.as_bytes()) {
        // Four-digit years: always a date.
        return Ok(days as i32);
    }
    let days = match read(text).map_err(|f| fault_error(f, "date", text))? {
        Reading::Epoch => 0,
        Reading::Moment { days, .. } => days,
    };
    let out_of_range = || ExecError::DatetimeOverflow(format!("date out of range: \"{text}\""));
    match (FIRST_DAY..DATE_END_DAY).contains(&days) {
        true => i32::try_from(days).map_err(|_| out_of_range()),
        false => Err(out_of_range()),
    }
}

/// The form nearly every file and client writes, `YYYY-MM-DD`, `YYYY-MM-DD HH:MM:SS` or
/// `YYYY-MM-DDTHH:MM:SS.ffffff` (up to six fractional digits, no zone, a year after 0),
/// read in one pass as days since 1970 and microseconds into the day: the `file` source
/// reads a million of them per second of a core this way. `None` for any other text,
/// which the general reader reads (or refuses); the two agree where both read.
fn common_form(b: &[u8]) -> Option<(i64, i64)> {
    if !(b.len() == 10 || ((19..=26).contains(&b.len()) && b.len() != 20)) {
        return None;
    }
    let mut digits = [0i64; 26];
    for (i, &c) in b.iter().enumerate() {
        let d = c.wrapping_sub(b'0');
        let separator = match i {
            4 | 7 => c == b'-',
            10 => c == b' ' || c == b'T',
            13 | 16 => c == b':',
            19 => c == b'.',
            _ => {
                if d > 9 {
                    return None;
                }
                digits[i] = i64::from(d);
                true
            }
        };
        if !separator {
            return None;
        }
    }
    let two = |i: usize| digits[i] * 10 + digits[i + 1];
    let year = two(0) * 100 + two(2);
    if year == 0 {
        return None;
    }
    let days = days_from_civil(year, two(5), two(8))?;
    if b.len() == 10 {
        return Some((days, 0));
    }
    let (hour, minute, second) = (two(11), two(14), two(17));
    // 24:00:00 and leap seconds carry into the next day or minute: the general reader.
    if hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let fraction = digits[20..26].iter().fold(0, |n, d| n * 10 + d);
    Some((days, ((hour * 60 + minute) * 60 + second) * MICROS_PER_SECOND + fraction))
}

fn fault_error(fault: Fault, type_name: &str, text: &str) -> ExecError {
    match fault {
        Fault::Syntax => {
            ExecError::InvalidText(format!("invalid input syntax for type {type_name}: \"{text}\""))
        }
        Fault::FieldRange => {
            ExecError::DatetimeOverflow(format!("date/time field value out of range: \"{text}\""))
        }
        Fault::Displacement => {
            ExecError::TimeZoneDisplacement(format!("time zone displacement out of range: \"{text}\""))
        }
        Fault::UnknownZone(name) => {
            ExecError::InvalidParameter(format!("time zone \"{}\" not recognized", name.to_lowercase()))
        }
        Fault::Unsupported(what) => ExecError::Unsupported(format!(
            "\"{}\" as a {type_name} is not supported in Weir ({what})",
            text.trim()
        )),
    }
}

/// The UTC offset of the tz database zone `name` at the local time `local` (microseconds
/// since 1970 on the wall clock). A time skipped by a change to summer time takes the
/// offset before the change and a time repeated by the change back the one after it, as
/// in Postgres.
fn named_zone_offset(name: &str, local: i128) -> Result<i64, Fault> {
    let unknown = || Fault::UnknownZone(name.to_string());
    let tz = zone_named(name).ok_or_else(unknown)?;
    let wall = |micros: i128| {
        i64::try_from(micros)
            .ok()
            .and_then(chrono::DateTime::from_timestamp_micros)
            .map(|t| t.naive_utc())
            .ok_or(Fault::FieldRange)
    };
    let offset = |naive| match tz.offset_from_local_datetime(&naive) {
        chrono::LocalResult::Single(o) => Some(o.fix().local_minus_utc()),
        chrono::LocalResult::Ambiguous(_, later) => Some(later.fix().local_minus_utc()),
        chrono::LocalResult::None => None,
    };
    let seconds = match offset(wall(local)?) {
        Some(seconds) => seconds,
        // In a gap: the offset three hours before, ahead of the change.
        None => offset(wall(local - 3 * 3600 * i128::from(MICROS_PER_SECOND))?).ok_or(Fault::FieldRange)?,
    };
    Ok(i64::from(seconds))
}

/// The tz database zone `name` (`Europe/Paris`), in any case as Postgres reads it
/// (`europe/paris`, `EST5EDT`, `est5edt`).
fn zone_named(name: &str) -> Option<Tz> {
    static LOWER_CASE: OnceLock<HashMap<String, &'static str>> = OnceLock::new();
    Tz::from_str(name).ok().or_else(|| {
        let names = LOWER_CASE.get_or_init(|| {
            chrono_tz::TZ_VARIANTS.iter().map(|tz| (tz.name().to_ascii_lowercase(), tz.name())).collect()
        });
        names.get(&name.to_ascii_lowercase()).and_then(|canonical| Tz::from_str(canonical).ok())
    })
}

/// A cursor over the text's bytes.
struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }
    fn eat(&mut self, b: u8) -> bool {
        let found = self.peek() == Some(b);
        self.at += usize::from(found);
        found
    }
    fn digits(&mut self) -> &'a [u8] {
        let start = self.at;
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.at += 1;
        }
        &self.bytes[start..self.at]
    }
    fn blanks(&mut self) -> bool {
        let start = self.at;
        while self.peek().is_some_and(|b| b.is_ascii_whitespace()) {
            self.at += 1;
        }
        self.at > start
    }
    /// A word of letters and the characters of tz database names.
    fn word(&mut self) -> &'a [u8] {
        let start = self.at;
        while self.peek().is_some_and(|b| b.is_ascii_alphanumeric() || b"/_-+".contains(&b)) {
            self.at += 1;
        }
        &self.bytes[start..self.at]
    }
}

/// A field's digits as a number; `None` for no digits, `FieldRange` past any date.
fn number(digits: &[u8]) -> Result<i64, Fault> {
    if digits.is_empty() {
        return Err(Fault::Syntax);
    }
    if digits.len() > 10 {
        return Err(Fault::FieldRange);
    }
    Ok(digits.iter().fold(0, |n, d| n * 10 + i64::from(d - b'0')))
}

fn read(text: &str) -> Result<Reading, Fault> {
    let trimmed = text.trim();
    // The special words (a date starts with a digit: no lowercase copy for it).
    let word = trimmed.bytes().next().is_some_and(|b| !b.is_ascii_digit());
    match if word { trimmed.to_ascii_lowercase() } else { String::new() }.as_str() {
        "epoch" => return Ok(Reading::Epoch),
        "infinity" | "+infinity" | "-infinity" => {
            return Err(Fault::Unsupported("Weir's dates and timestamps hold no infinities"));
        }
        "now" | "today" | "tomorrow" | "yesterday" => {
            return Err(Fault::Unsupported("use now() or current_date"));
        }
        _ => {}
    }
    let mut c = Cursor { bytes: trimmed.as_bytes(), at: 0 };
    // The date.
    let first = c.digits();
    let (year_digits, month, day) = if c.eat(b'-') {
        let month = c.digits();
        if !c.eat(b'-') {
            return Err(Fault::Syntax);
        }
        let day = c.digits();
        if month.len() > 2 || day.len() > 2 {
            return Err(Fault::Syntax);
        }
        (first, number(month)?, number(day)?)
    } else if first.len() >= 6 {
        // Digits alone: the last two the day, two before them the month, the rest the
        // year (`20200101`, `200101`, `202000101`), as Postgres reads them.
        let n = first.len();
        (&first[..n - 4], number(&first[n - 4..n - 2])?, number(&first[n - 2..])?)
    } else {
        return Err(Fault::Syntax);
    };
    let mut year = number(year_digits)?;
    // The time.
    let mut micros = 0;
    let mut time_seen = false;
    if c.eat(b'T') || c.eat(b't') {
        micros = read_time(&mut c)?;
        time_seen = true;
    }
    // Blanks, then a time (if none yet), a zone, BC or AD, each once.
    let mut zone = None;
    let mut era_seen = false;
    let mut bc = false;
    loop {
        let blank = c.blanks();
        let Some(next) = c.peek() else { break };
        if next.is_ascii_digit() && blank && !time_seen {
            micros = read_time(&mut c)?;
            time_seen = true;
        } else if (next == b'+' || next == b'-') && zone.is_none() && (time_seen || blank) {
            c.at += 1;
            let seconds = read_offset(&mut c)?;
            zone = Some(Zone::Offset(if next == b'-' { -seconds } else { seconds }));
        } else if next.is_ascii_alphabetic() && (blank || time_seen) {
            let word = String::from_utf8_lossy(c.word()).to_string();
            match word.to_ascii_lowercase().as_str() {
                "bc" | "ad" if !era_seen => {
                    era_seen = true;
                    bc = word.eq_ignore_ascii_case("bc");
                }
                "zulu" if zone.is_none() => zone = Some(Zone::Offset(0)),
                _ if zone.is_none() && fixed_offset(&word).is_some() => {
                    zone = fixed_offset(&word).map(Zone::Offset)
                }
                _ if zone.is_none()
                    && word.len() > 1
                    && word.contains(|ch: char| ch.is_ascii_alphabetic()) =>
                {
                    zone = Some(Zone::Named(word))
                }
                _ => return Err(Fault::Syntax),
            }
        } else {
            return Err(Fault::Syntax);
        }
    }
    // Years as Postgres reads them: two digits are 1970–2069, BC years count back from 1.
    if bc {
        if year == 0 {
            return Err(Fault::FieldRange);
        }
        year = 1 - year;
    } else if year_digits.len() <= 2 {
        year += if year < 70 { 2000 } else { 1900 };
    } else if year == 0 {
        return Err(Fault::FieldRange);
    }
    let days = days_from_civil(year, month, day).ok_or(Fault::FieldRange)?;
    Ok(Reading::Moment { days, micros, zone })
}

/// `H:M`, `H:M:S` or `H:M:S.fraction` as microseconds after midnight.
fn read_time(c: &mut Cursor) -> Result<i64, Fault> {
    let hour = c.digits();
    if hour.len() > 2 || !c.eat(b':') {
        return Err(Fault::Syntax);
    }
    let minute = c.digits();
    if minute.len() > 2 {
        return Err(Fault::Syntax);
    }
    let (hour, minute) = (number(hour)?, number(minute)?);
    let (mut second, mut fraction) = (0, 0);
    if c.eat(b':') {
        let digits = c.digits();
        if digits.len() > 2 {
            return Err(Fault::Syntax);
        }
        second = number(digits)?;
        if c.eat(b'.') {
            fraction = fraction_micros(c.digits());
        }
    }
    // 24:00:00 is the next midnight; a leap second is the next minute's first.
    let valid = minute <= 59
        && (hour <= 23 && (second <= 59 || second == 60 && fraction == 0)
            || hour == 24 && minute == 0 && second == 0 && fraction == 0);
    if !valid {
        return Err(Fault::FieldRange);
    }
    Ok(((hour * 60 + minute) * 60 + second) * MICROS_PER_SECOND + fraction)
}

/// A fraction of a second in microseconds, rounded as Postgres rounds it: the fraction read
/// as a double, times a million, rounded half to even (`rint`). Up to a whole second.
fn fraction_micros(digits: &[u8]) -> i64 {
    let text = format!("0.{}", String::from_utf8_lossy(digits));
    let fraction: f64 = text.parse().unwrap_or(0.0);
    (fraction * 1e6).round_ties_even() as i64
}

/// The digits of a UTC offset after its sign, as seconds: `HH`, `HH:MM`, `HH:MM:SS`,
/// `HHMM` or `HHMMSS`; `Displacement` beyond 15:59:59.
fn read_offset(c: &mut Cursor) -> Result<i64, Fault> {
    let first = c.digits();
    let (hours, mut minutes, mut seconds) = match first.len() {
        1 | 2 => (number(first)?, 0, 0),
        4 => (number(&first[..2])?, number(&first[2..])?, 0),
        6 => (number(&first[..2])?, number(&first[2..4])?, number(&first[4..])?),
        _ => return Err(Fault::Syntax),
    };
    if first.len() <= 2 && c.eat(b':') {
        let digits = c.digits();
        if digits.len() != 2 {
            return Err(Fault::Syntax);
        }
        minutes = number(digits)?;
        if c.eat(b':') {
            let digits = c.digits();
            if digits.len() != 2 {
                return Err(Fault::Syntax);
            }
            seconds = number(digits)?;
        }
    }
    if minutes > 59 || seconds > 59 {
        return Err(Fault::FieldRange);
    }
    if hours > 15 {
        return Err(Fault::Displacement);
    }
    Ok((hours * 60 + minutes) * 60 + seconds)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (year 0 is 1 BC); `None` for a
/// month or day that does not exist.
pub(crate) fn days_from_civil(year: i64, month: i64, day: i64) -> Option<i64> {
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    // Howard Hinnant's days_from_civil.
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400;
    let month_from_march = (month + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    Some(era * 146_097 + day_of_era - 719_468)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// chrono's reading of a date, for the tests' expected values.
#[cfg(test)]
fn chrono_days(year: i32, month: u32, day: u32) -> i64 {
    use chrono::NaiveDate;
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).expect("epoch");
    (NaiveDate::from_ymd_opt(year, month, day).expect("date") - epoch).num_days()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(text: &str) -> Result<i64, String> {
        parse_timestamp(text, false).map_err(|e| format!("{} {e}", e.sqlstate().unwrap_or("?")))
    }
    fn tstz(text: &str) -> Result<i64, String> {
        parse_timestamp(text, true).map_err(|e| format!("{} {e}", e.sqlstate().unwrap_or("?")))
    }
    fn at(year: i32, month: u32, day: u32, h: i64, m: i64, s: i64, micros: i64) -> i64 {
        chrono_days(year, month, day) * MICROS_PER_DAY + ((h * 60 + m) * 60 + s) * MICROS_PER_SECOND + micros
    }

    #[test]
    fn reads_the_iso_forms_postgres_reads() {
        assert_eq!(ts("2020-01-01 12:00"), Ok(at(2020, 1, 1, 12, 0, 0, 0)));
        assert_eq!(ts("2020-01-01T12:00:01"), Ok(at(2020, 1, 1, 12, 0, 1, 0)));
        assert_eq!(ts("2020-01-01"), Ok(at(2020, 1, 1, 0, 0, 0, 0)));
        assert_eq!(ts("  2020-1-2   3:4:5  "), Ok(at(2020, 1, 2, 3, 4, 5, 0)));
        assert_eq!(ts("20200101 12:00"), Ok(at(2020, 1, 1, 12, 0, 0, 0)));
        assert_eq!(ts("200101"), Ok(at(2020, 1, 1, 0, 0, 0, 0)));
        assert_eq!(ts("157260217 10:42"), Ok(at(15726, 2, 17, 10, 42, 0, 0)));
        assert_eq!(ts("2020-01-01 1:2:3."), Ok(at(2020, 1, 1, 1, 2, 3, 0)));
        assert_eq!(ts("1-1-1"), Ok(at(2001, 1, 1, 0, 0, 0, 0)));
        assert_eq!(ts("99-1-1"), Ok(at(1999, 1, 1, 0, 0, 0, 0)));
        assert_eq!(ts("020-01-01"), Ok(at(20, 1, 1, 0, 0, 0, 0)));
        assert_eq!(ts("20200-01-01 12:00"), Ok(at(20200, 1, 1, 12, 0, 0, 0)));
        assert_eq!(ts("epoch"), Ok(0));
        assert_eq!(ts("2020-01-01 24:00:00"), Ok(at(2020, 1, 2, 0, 0, 0, 0)));
        assert_eq!(ts("2020-01-01 23:59:60"), Ok(at(2020, 1, 2, 0, 0, 0, 0)));
        assert_eq!(ts("0001-01-01 BC"), Ok(at(0, 1, 1, 0, 0, 0, 0)));
        assert_eq!(ts("2020-01-01 12:00:00 bc"), Ok(at(-2019, 1, 1, 12, 0, 0, 0)));
    }

    #[test]
    fn rounds_fractions_as_postgres_does() {
        let base = at(2000, 1, 1, 0, 0, 0, 0);
        assert_eq!(ts("2000-01-01 00:00:00.1234567"), Ok(base + 123_457));
        assert_eq!(ts("2000-01-01 00:00:00.1234565"), Ok(base + 123_456));
        assert_eq!(ts("2000-01-01 00:00:00.1234575"), Ok(base + 123_458));
        assert_eq!(ts("2000-01-01 00:00:00.000000500"), Ok(base));
        assert_eq!(ts("1999-12-31 23:59:59.9999996"), Ok(base));
    }

    #[test]
    fn zones_count_for_timestamptz_only() {
        assert_eq!(ts("2020-01-01 12:00+02"), Ok(at(2020, 1, 1, 12, 0, 0, 0)));
        assert_eq!(tstz("2020-01-01 12:00+02"), Ok(at(2020, 1, 1, 10, 0, 0, 0)));
        assert_eq!(tstz("2020-01-01 12:00:00-0530"), Ok(at(2020, 1, 1, 17, 30, 0, 0)));
        assert_eq!(tstz("2020-01-01 12:00:00+02:30:15"), Ok(at(2020, 1, 1, 9, 29, 45, 0)));
        assert_eq!(tstz("2020-01-01 12:00 +2"), Ok(at(2020, 1, 1, 10, 0, 0, 0)));
        assert_eq!(tstz("2020-01-01T12:00Z"), Ok(at(2020, 1, 1, 12, 0, 0, 0)));
        assert_eq!(tstz("2020-01-01 12:00:00 z"), Ok(at(2020, 1, 1, 12, 0, 0, 0)));
        assert_eq!(tstz("2020-01-01 12:00 UTC"), Ok(at(2020, 1, 1, 12, 0, 0, 0)));
        assert_eq!(tstz("2020-01-01 12:00 America/New_York"), Ok(at(2020, 1, 1, 17, 0, 0, 0)));
        assert_eq!(tstz("2020-07-01 12:00 Europe/Paris"), Ok(at(2020, 7, 1, 10, 0, 0, 0)));
    }

    #[test]
    fn the_common_form_reads_as_the_general_reader_does() {
        for text in [
            "2020-01-01",
            "2020-02-29 23:59:59",
            "1999-12-31T00:00:00.5",
            "2024-01-02 03:04:05.000001",
            "0001-01-01 00:00:00.123456",
            "9999-12-31 23:59:59.999999",
            "1969-12-31 23:59:59.9",
        ] {
            let (days, micros) = common_form(text.as_bytes()).expect(text);
            let general = match read(text) {
                Ok(Reading::Moment { days, micros, zone: None }) => (days, micros),
                other => panic!("{text}: {other:?}"),
            };
            assert_eq!((days, micros), general, "{text}");
        }
        // Left to the general reader: it reads or refuses them.
        for text in [
            "2021-02-29 00:00:00",
            "0000-01-01",
            "2020-01-01 24:00:00",
            "2020-01-01 23:59:60",
            "2020-01-01 12:00:00.1234567",
            "2020-01-01 12:00",
            "2020-01-01 12:00:00Z",
            "2020-01-01 12:00:00.",
            " 2020-01-01",
            "2020/01/01",
        ] {
            assert_eq!(common_form(text.as_bytes()), None, "{text}");
        }
    }

    #[test]
    fn abbreviations_and_zone_names_read_in_any_case() {
        // Values from PostgreSQL 15.
        assert_eq!(tstz("2020-01-01 12:00 pst"), Ok(at(2020, 1, 1, 20, 0, 0, 0)));
        assert_eq!(tstz("2020-07-01 12:00 PST"), Ok(at(2020, 7, 1, 20, 0, 0, 0)));
        assert_eq!(tstz("2020-07-01 12:00 PDT"), Ok(at(2020, 7, 1, 19, 0, 0, 0)));
        assert_eq!(tstz("2020-07-01 12:00 est5edt"), Ok(at(2020, 7, 1, 16, 0, 0, 0)));
        assert_eq!(tstz("2020-01-01 12:00 europe/paris"), Ok(at(2020, 1, 1, 11, 0, 0, 0)));
        assert_eq!(tstz("2020-01-01 12:00 utc"), Ok(at(2020, 1, 1, 12, 0, 0, 0)));
        assert_eq!(ts("2020-07-01 12:00 pst"), Ok(at(2020, 7, 1, 12, 0, 0, 0)));
    }

    #[test]
    fn dates_keep_the_day() {
        assert_eq!(parse_date("2020-01-01 12:00").ok(), Some(chrono_days(2020, 1, 1) as i32));
        assert_eq!(parse_date("2020-01-01T23:59:59+02").ok(), Some(chrono_days(2020, 1, 1) as i32));
        assert_eq!(parse_date("5874897-12-31").ok(), Some(DATE_END_DAY as i32 - 1));
        assert_eq!(parse_date("4714-11-24 BC").ok(), Some(FIRST_DAY as i32));
        assert!(parse_date("4714-11-23 BC").is_err_and(|e| e.to_string().starts_with("date out of range")));
        assert!(parse_date("5874898-01-01").is_err_and(|e| e.to_string().starts_with("date out of range")));
    }

    #[test]
    fn errors_are_postgres_ones() {
        for bad in ["abc", "2020-01-01 12", "2020-01-01T", "2020-001-01", "2020-01-01 12:00 x", "", "12:00"] {
            let e = ts(bad).expect_err(bad);
            assert!(e.starts_with("22P02 invalid input syntax for type timestamp"), "{bad}: {e}");
        }
        for bad in [
            "2020-02-30",
            "2021-02-29",
            "2020-01-01 25:00",
            "2020-01-01 12:60",
            "2020-13-01",
            "2020-01-01 23:59:60.5",
            "2020-01-01 24:00:01",
            "0000-01-01",
        ] {
            let e = ts(bad).expect_err(bad);
            assert!(e.starts_with("22008 date/time field value out of range"), "{bad}: {e}");
        }
        for bad in ["294277-01-01", "4714-11-23 23:59:59 BC", "294248-01-01"] {
            let e = ts(bad).expect_err(bad);
            assert_eq!(e, format!("22008 timestamp out of range: \"{bad}\""));
        }
        assert!(tstz("2020-01-01 12:00+16").is_err_and(|e| e.starts_with("22009 time zone displacement")));
        assert_eq!(
            tstz("2020-01-01 12:00 Foo/Bar"),
            Err("22023 time zone \"foo/bar\" not recognized".into())
        );
        assert!(ts("infinity").is_err_and(|e| e.starts_with("0A000")));
        assert!(ts("today").is_err_and(|e| e.starts_with("0A000")));
    }
}
