//! Postgres' date/time template patterns for `to_char(timestamp | date, format)`.
//!
//! A format is read left to right, longest pattern first, as Postgres does: `YYYY`, `MM`,
//! `Month`, `HH24`, `MI`, `SS`, `MS`, `US`, … (the full list is in [`PATTERNS`]), with the
//! `FM` prefix (no padding) and the `TH`/`th` suffix (ordinal). Text in double quotes is
//! copied (`\"` is a quote inside it); every other character is copied as is.

use chrono::{Datelike, NaiveDateTime, Timelike};

/// Every pattern, longest first among those sharing a prefix (the order matching tries).
const PATTERNS: &[&str] = &[
    "A.D.", "A.M.", "B.C.", "P.M.", "a.d.", "a.m.", "b.c.", "p.m.", "Y,YYY", "HH24", "HH12", "IDDD", "IYYY",
    "MONTH", "Month", "month", "SSSSS", "SSSS", "YYYY", "DAY", "Day", "day", "DDD", "FF1", "FF2", "FF3",
    "FF4", "FF5", "FF6", "IYY", "MON", "Mon", "mon", "YYY", "AD", "AM", "BC", "CC", "DD", "DY", "Dy", "dy",
    "HH", "ID", "IW", "IY", "MI", "MM", "MS", "OF", "PM", "RM", "rm", "SS", "TZ", "tz", "US", "WW", "YY",
    "ad", "am", "bc", "pm", "D", "I", "J", "Q", "W", "Y",
];

/// Patterns whose case says how to write the name they stand for; the others are matched
/// in any case.
const CASED: &[&str] = &[
    "MONTH", "Month", "month", "MON", "Mon", "mon", "DAY", "Day", "day", "DY", "Dy", "dy", "AM", "am", "PM",
    "pm", "A.M.", "a.m.", "P.M.", "p.m.", "AD", "ad", "BC", "bc", "A.D.", "a.d.", "B.C.", "b.c.", "RM", "rm",
    "TZ", "tz",
];

pub(crate) const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
pub(crate) const DAYS: [&str; 7] =
    ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"];
const ROMAN: [&str; 12] = ["I", "II", "III", "IV", "V", "VI", "VII", "VIII", "IX", "X", "XI", "XII"];

/// One piece of a template: text copied as it is, or a pattern with its modifiers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Item {
    /// A character that is not a pattern.
    Char(char),
    /// Text in double quotes (`\"` is a quote inside it).
    Quoted(String),
    Field {
        pattern: &'static str,
        /// `FM`: no padding.
        fill_mode: bool,
        /// `TH` (`Some(true)`) or `th` (`Some(false)`): an ordinal suffix.
        ordinal: Option<bool>,
    },
}

/// `format` read left to right, longest pattern first, as Postgres reads it (shared by
/// `to_char` and `to_timestamp`/`to_date`).
pub(crate) fn template(format: &str) -> Vec<Item> {
    let mut items = Vec::new();
    let chars: Vec<char> = format.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        if chars[i] == '"' {
            i += 1;
            let mut text = String::new();
            while i < chars.len() && chars[i] != '"' {
                if chars[i] == '\\' && chars.get(i + 1) == Some(&'"') {
                    i += 1;
                }
                text.push(chars[i]);
                i += 1;
            }
            i += 1;
            items.push(Item::Quoted(text));
            continue;
        }
        let rest: String = chars[i..].iter().collect();
        let skip = if rest.starts_with("FM") { 2 } else { 0 };
        let after: String = chars[i + skip..].iter().collect();
        // Names follow the pattern's case (`Month`, `MONTH`, `month`); the others match in
        // any case (`yyyy-mm-dd`), as in Postgres.
        let upper = after.to_uppercase();
        let found = PATTERNS.iter().find(|p| after.starts_with(**p)).or_else(|| {
            PATTERNS.iter().find(|p| !CASED.contains(p) && upper.starts_with(**p) && !after.starts_with("th"))
        });
        let Some(pattern) = found else {
            if skip > 0 {
                // A lone FM: nothing to apply it to.
                i += skip;
            } else {
                items.push(Item::Char(chars[i]));
                i += 1;
            }
            continue;
        };
        i += skip + pattern.chars().count();
        let suffix: String = chars[i..].iter().take(2).collect();
        let ordinal = match suffix.as_str() {
            "TH" => Some(true),
            "th" => Some(false),
            _ => None,
        };
        if ordinal.is_some() {
            i += 2;
        }
        items.push(Item::Field { pattern, fill_mode: skip > 0, ordinal });
    }
    items
}

/// Formats `t` (with `zone` the time zone's name, `None` for a timestamp without one).
pub fn format(t: &NaiveDateTime, format: &str, zone: Option<&str>) -> String {
    let mut out = String::with_capacity(format.len() + 16);
    for item in template(format) {
        match item {
            Item::Char(c) => out.push(c),
            Item::Quoted(text) => out.push_str(&text),
            Item::Field { pattern, fill_mode, ordinal } => {
                out.push_str(&field(t, pattern, fill_mode, ordinal, zone))
            }
        }
    }
    out
}

/// A number `value` at least `width` digits wide (zero-padded unless `fill_mode`), with
/// its ordinal suffix when asked.
fn number(value: i64, width: usize, fill_mode: bool, ordinal: Option<bool>) -> String {
    let mut text = match fill_mode {
        true => value.to_string(),
        false if value < 0 => format!("-{:0width$}", -value, width = width.saturating_sub(1)),
        false => format!("{value:0width$}"),
    };
    if let Some(upper) = ordinal {
        let suffix = match (value.abs() % 100, value.abs() % 10) {
            (11..=13, _) => "th",
            (_, 1) => "st",
            (_, 2) => "nd",
            (_, 3) => "rd",
            _ => "th",
        };
        text.push_str(&if upper { suffix.to_uppercase() } else { suffix.to_string() });
    }
    text
}

/// A name in the case the pattern is written in (`MONTH`, `Month`, `month`), padded to
/// `width` unless `fill_mode`.
fn name(value: &str, pattern: &str, width: usize, fill_mode: bool) -> String {
    let cased = if pattern.chars().all(|c| c.is_uppercase()) {
        value.to_uppercase()
    } else if pattern.chars().all(|c| c.is_lowercase()) {
        value.to_lowercase()
    } else {
        value.to_string()
    };
    match fill_mode {
        true => cased,
        false => format!("{cased:width$}"),
    }
}

fn field(t: &NaiveDateTime, pattern: &str, fm: bool, ordinal: Option<bool>, zone: Option<&str>) -> String {
    let year = i64::from(t.year());
    let hour12 = match t.hour() % 12 {
        0 => 12,
        h => i64::from(h),
    };
    let pm = t.hour() >= 12;
    let micros = i64::from(t.nanosecond() / 1000).min(999_999);
    let iso = t.iso_week();
    let month = t.month0() as usize;
    let weekday = t.weekday().num_days_from_sunday() as usize;
    match pattern {
        "YYYY" => number(year, 4, fm, ordinal),
        "Y,YYY" => {
            let text = format!("{:04}", year.abs());
            let (thousands, rest) = text.split_at(text.len() - 3);
            format!("{}{thousands},{rest}", if year < 0 { "-" } else { "" })
        }
        "YYY" => number(year % 1000, 3, fm, ordinal),
        "YY" => number(year % 100, 2, fm, ordinal),
        "Y" => number(year % 10, 1, fm, ordinal),
        "IYYY" => number(i64::from(iso.year()), 4, fm, ordinal),
        "IYY" => number(i64::from(iso.year()) % 1000, 3, fm, ordinal),
        "IY" => number(i64::from(iso.year()) % 100, 2, fm, ordinal),
        "I" => number(i64::from(iso.year()) % 10, 1, fm, ordinal),
        "MM" => number(i64::from(t.month()), 2, fm, ordinal),
        "MONTH" | "Month" | "month" => name(MONTHS[month], pattern, 9, fm),
        "MON" | "Mon" | "mon" => name(&MONTHS[month][..3], pattern, 3, fm),
        "RM" | "rm" => name(ROMAN[month], pattern, 4, fm),
        "DD" => number(i64::from(t.day()), 2, fm, ordinal),
        "DDD" => number(i64::from(t.ordinal()), 3, fm, ordinal),
        "IDDD" => {
            let day = (i64::from(iso.week()) - 1) * 7 + i64::from(t.weekday().number_from_monday());
            number(day, 3, fm, ordinal)
        }
        "D" => number(weekday as i64 + 1, 1, fm, ordinal),
        "ID" => number(i64::from(t.weekday().number_from_monday()), 1, fm, ordinal),
        "DAY" | "Day" | "day" => name(DAYS[weekday], pattern, 9, fm),
        "DY" | "Dy" | "dy" => name(&DAYS[weekday][..3], pattern, 3, fm),
        "W" => number((i64::from(t.day()) - 1) / 7 + 1, 1, fm, ordinal),
        "WW" => number((i64::from(t.ordinal()) - 1) / 7 + 1, 2, fm, ordinal),
        "IW" => number(i64::from(iso.week()), 2, fm, ordinal),
        "Q" => number(i64::from(t.month0() / 3 + 1), 1, fm, ordinal),
        "CC" => {
            let century = if year > 0 { (year - 1) / 100 + 1 } else { year / 100 - 1 };
            number(century, 2, fm, ordinal)
        }
        "J" => number(i64::from(t.num_days_from_ce()) + 1_721_425, 1, fm, ordinal),
        "HH" | "HH12" => number(hour12, 2, fm, ordinal),
        "HH24" => number(i64::from(t.hour()), 2, fm, ordinal),
        "MI" => number(i64::from(t.minute()), 2, fm, ordinal),
        "SS" => number(i64::from(t.second()), 2, fm, ordinal),
        "SSSS" | "SSSSS" => number(i64::from(t.num_seconds_from_midnight()), 1, fm, ordinal),
        "MS" => number(micros / 1000, 3, fm, ordinal),
        "US" => number(micros, 6, fm, ordinal),
        "FF1" | "FF2" | "FF3" | "FF4" | "FF5" | "FF6" => {
            let digits = pattern[2..].parse::<u32>().unwrap_or(6);
            number(micros / 10i64.pow(6 - digits), digits as usize, false, None)
        }
        "AM" | "PM" => (if pm { "PM" } else { "AM" }).to_string(),
        "am" | "pm" => (if pm { "pm" } else { "am" }).to_string(),
        "A.M." | "P.M." => (if pm { "P.M." } else { "A.M." }).to_string(),
        "a.m." | "p.m." => (if pm { "p.m." } else { "a.m." }).to_string(),
        "AD" | "BC" => (if year > 0 { "AD" } else { "BC" }).to_string(),
        "ad" | "bc" => (if year > 0 { "ad" } else { "bc" }).to_string(),
        "A.D." | "B.C." => (if year > 0 { "A.D." } else { "B.C." }).to_string(),
        "a.d." | "b.c." => (if year > 0 { "a.d." } else { "b.c." }).to_string(),
        "TZ" => zone.unwrap_or("").to_uppercase(),
        "tz" => zone.unwrap_or("").to_lowercase(),
        "OF" => zone.map(|_| "+00".to_string()).unwrap_or_default(),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f").expect("timestamp")
    }

    /// Expected values are PostgreSQL 15's.
    #[test]
    fn patterns_format_as_in_postgres() {
        let t = at("2024-03-05 14:07:09.123456");
        assert_eq!(format(&t, "YYYY-MM-DD HH24:MI:SS.MS US", None), "2024-03-05 14:07:09.123 123456");
        let t = at("2024-03-05 04:07:09");
        assert_eq!(
            format(&t, "YYYY-MM-DD HH:MI AM Mon MONTH month Dy DAY FMDay DDD D Q WW IW J", None),
            "2024-03-05 04:07 AM Mar MARCH     march     Tue TUESDAY   Tuesday 065 3 1 10 10 2460375"
        );
        assert_eq!(
            format(&t, "FMMonth FMDD, YYYY \"at\" HH12:MI pm DDth Mon.", None),
            "March 5, 2024 at 04:07 am 05th Mar."
        );
        assert_eq!(
            format(&at("2024-12-31 00:00:00"), "YYYY IYYY IW FMDDTH ddth", None),
            "2024 2025 01 31ST 31st"
        );
        assert_eq!(format(&t, "YYYY-MM-DD HH24:MI:SS TZ OF", Some("UTC")), "2024-03-05 04:07:09 UTC +00");
        assert_eq!(
            format(&at("2024-03-05 00:07:09"), "HH HH12 HH24 AM a.m. SSSS Y,YYY YYY YY Y CC", None),
            "12 12 00 AM a.m. 429 2,024 024 24 4 21"
        );
        assert_eq!(
            format(&at("2024-03-05 14:07:09"), "FMHH12:MI FMMM/FMDD rm RM \"quoted \\\" x\" \\Y", None),
            "2:07 3/5 iii  III  quoted \" x \\4"
        );
        assert_eq!(format(&at("0044-03-15 12:00:00"), "YYYY BC CC FF3 Y,YYY", None), "0044 AD 01 000 0,044");
    }
}
