//! Postgres' text of a `date`, a `timestamp` and a `time` (`DateStyle = ISO`), the one writer for the
//! wire protocol and casts to text: a year of at least four digits without a sign
//! (`20200-01-01`, where chrono's `%Y` wrote `+20200`), and a year before 1 AD counted back
//! from 1 with `BC` after the value (`0001-01-01 BC` is chrono's year 0).

use chrono::{DateTime, Datelike, NaiveDate};

/// `YYYY-MM-DD` and whether the date is BC.
fn ymd(date: NaiveDate) -> (String, bool) {
    let year = date.year();
    let bc = year <= 0;
    let shown = if bc { 1 - i64::from(year) } else { i64::from(year) };
    (format!("{shown:04}-{:02}-{:02}", date.month(), date.day()), bc)
}

fn era(text: String, bc: bool) -> String {
    match bc {
        true => format!("{text} BC"),
        false => text,
    }
}

/// A `date` (days since 1970-01-01) as Postgres prints it; `None` beyond chrono's range.
pub fn date_text(days: i32) -> Option<String> {
    let date = NaiveDate::from_num_days_from_ce_opt(days.checked_add(719_163)?)?;
    let (text, bc) = ymd(date);
    Some(era(text, bc))
}

/// A timestamp (microseconds since 1970-01-01 00:00:00) as Postgres prints it: the
/// fraction without trailing zeros, `+00` for a `timestamp with time zone` (UTC is Weir's
/// only time zone).
pub fn timestamp_text(micros: i64, with_zone: bool) -> Option<String> {
    let time = DateTime::from_timestamp_micros(micros)?.naive_utc();
    let (mut text, bc) = ymd(time.date());
    text.push_str(&time.format(" %H:%M:%S").to_string());
    let fraction = micros.rem_euclid(1_000_000);
    if fraction != 0 {
        text.push_str(format!(".{fraction:06}").trim_end_matches('0'));
    }
    if with_zone {
        text.push_str("+00");
    }
    Some(era(text, bc))
}

/// A `time` (microseconds since midnight, `24:00:00` included) as Postgres prints it: the
/// fraction without trailing zeros. `None` outside a day.
pub fn time_text(micros: i64) -> Option<String> {
    if !(0..=86_400_000_000).contains(&micros) {
        return None;
    }
    let secs = micros / 1_000_000;
    let mut text = format!("{:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60);
    let fraction = micros % 1_000_000;
    if fraction != 0 {
        text.push_str(format!(".{fraction:06}").trim_end_matches('0'));
    }
    Some(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn years_print_as_postgres_prints_them() {
        let day = |y, m, d| {
            let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).expect("epoch");
            (NaiveDate::from_ymd_opt(y, m, d).expect("date") - epoch).num_days() as i32
        };
        assert_eq!(date_text(day(2020, 1, 2)).as_deref(), Some("2020-01-02"));
        assert_eq!(date_text(day(20200, 1, 2)).as_deref(), Some("20200-01-02"));
        assert_eq!(date_text(day(20, 1, 2)).as_deref(), Some("0020-01-02"));
        assert_eq!(date_text(day(0, 1, 1)).as_deref(), Some("0001-01-01 BC"));
        let micros = i64::from(day(-4713, 11, 24)) * 86_400_000_000 + 500_000;
        assert_eq!(timestamp_text(micros, true).as_deref(), Some("4714-11-24 00:00:00.5+00 BC"));
        assert_eq!(timestamp_text(-1, false).as_deref(), Some("1969-12-31 23:59:59.999999"));
    }

    #[test]
    fn times_print_as_postgres_prints_them() {
        assert_eq!(time_text(43_200_130_000).as_deref(), Some("12:00:00.13"));
        assert_eq!(time_text(0).as_deref(), Some("00:00:00"));
        assert_eq!(time_text(86_399_999_999).as_deref(), Some("23:59:59.999999"));
        assert_eq!(time_text(86_400_000_000).as_deref(), Some("24:00:00"));
        assert_eq!(time_text(86_400_000_001), None);
        assert_eq!(time_text(-1), None);
    }
}
