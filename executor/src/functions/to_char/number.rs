//! Postgres' numeric template patterns for `to_char(number, format)`: `9` (a digit, or a
//! space before the number), `0` (a digit, or a zero), `.` and `D` (the decimal point),
//! `,` and `G` (a group separator, shown once digits have started), the signs `S`
//! (anchored to the number), `MI`, `PL`, `SG` (at their place), `FM` (no padding, no
//! trailing zeros in `9` places) and `TH`/`th` (ordinal). A number too wide for its
//! pattern prints `#` in every digit place. Patterns Weir does not implement (`PR`, `L`,
//! `RN`, `EEEE`, `V`) are an error, never a wrong result.

#[derive(Debug, Clone, Copy, PartialEq)]
enum Item {
    Nine,
    Zero,
    Point,
    Group,
    /// `S`: the sign, next to the digits where it stands.
    Sign,
    Minus,
    Plus,
    SignAlways,
    Ordinal(bool),
    Text(char),
}

/// A parsed numeric format.
struct Format {
    items: Vec<Item>,
    fill_mode: bool,
}

fn parse(format: &str) -> Result<Format, String> {
    let chars: Vec<char> = format.chars().collect();
    let mut items = Vec::new();
    let mut fill_mode = false;
    let mut i = 0;
    while i < chars.len() {
        let rest: String = chars[i..].iter().collect();
        let upper = rest.to_uppercase();
        let (item, len) = match chars[i] {
            '9' => (Some(Item::Nine), 1),
            '0' => (Some(Item::Zero), 1),
            '.' => (Some(Item::Point), 1),
            ',' => (Some(Item::Group), 1),
            '"' => {
                let mut j = i + 1;
                while j < chars.len() && chars[j] != '"' {
                    if chars[j] == '\\' && chars.get(j + 1) == Some(&'"') {
                        j += 1;
                    }
                    items.push(Item::Text(chars[j]));
                    j += 1;
                }
                i = j + 1;
                continue;
            }
            _ if upper.starts_with("FM") => {
                fill_mode = true;
                (None, 2)
            }
            _ if rest.starts_with("TH") => (Some(Item::Ordinal(true)), 2),
            _ if rest.starts_with("th") => (Some(Item::Ordinal(false)), 2),
            _ if upper.starts_with("MI") => (Some(Item::Minus), 2),
            _ if upper.starts_with("PL") => (Some(Item::Plus), 2),
            _ if upper.starts_with("SG") => (Some(Item::SignAlways), 2),
            'D' | 'd' => (Some(Item::Point), 1),
            'G' | 'g' => (Some(Item::Group), 1),
            'S' | 's' => (Some(Item::Sign), 1),
            _ if upper.starts_with("PR") || upper.starts_with("RN") || upper.starts_with("EEEE") => {
                return Err(format!(
                    "the to_char number pattern \"{}\" is not supported by Weir yet",
                    &rest[..2]
                ))
            }
            'L' | 'l' | 'V' | 'v' => {
                return Err(format!(
                    "the to_char number pattern \"{}\" is not supported by Weir yet",
                    chars[i]
                ))
            }
            c => (Some(Item::Text(c)), 1),
        };
        items.extend(item);
        i += len;
    }
    if items.iter().filter(|i| **i == Item::Point).count() > 1 {
        return Err("multiple decimal points".into());
    }
    Ok(Format { items, fill_mode })
}

/// Why a number could not be formatted.
#[derive(Debug, PartialEq)]
pub enum FormatError {
    /// A pattern Weir does not implement, or a malformed one (`0A000`).
    Unsupported(String),
    /// `TH` of `NaN`: Postgres' `22P02` `"NaN" is not a number`.
    NotANumber,
}

impl From<String> for FormatError {
    fn from(message: String) -> Self {
        FormatError::Unsupported(message)
    }
}

/// A value that is not a number: `numeric` or float `NaN` or an infinity.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Special {
    NaN,
    Infinity { negative: bool },
}

/// Formats a number given as its sign, its integer digits (no leading zeros, "0" for zero)
/// and enough fraction digits, rounding to the pattern's decimal places.
pub fn format(negative: bool, integer: &str, fraction: &str, format: &str) -> Result<String, FormatError> {
    let format = parse(format)?;
    let (_, post) = digit_places(&format);
    let (integer, fraction) = round(integer, fraction, post);
    let zero = integer.trim_start_matches('0').is_empty() && fraction.chars().all(|c| c == '0');
    // An integer part of zero shows no digit when there are decimal places.
    let int_digits: Vec<char> = match integer.trim_start_matches('0') {
        "" if post > 0 => vec![],
        "" => vec!['0'],
        digits => digits.chars().collect(),
    };
    Ok(render(&format, negative && !zero, &int_digits, &fraction, Shape::Number))
}

/// Formats `NaN` or an infinity as Postgres does: an infinity fills every digit place with
/// `#` (as a number too wide for the pattern), with its sign; `NaN` is printed as if its
/// three letters were integer digits, and nothing from the decimal point on is shown
/// (`to_char('NaN'::numeric, '999.99')` is ` NaN`), or `#` where three digits do not fit.
pub fn format_special(special: Special, format: &str) -> Result<String, FormatError> {
    let format = parse(format)?;
    Ok(match special {
        Special::Infinity { negative } => render(&format, negative, &[], "", Shape::Overflow),
        Special::NaN if format.items.iter().any(|i| matches!(i, Item::Ordinal(_))) => {
            return Err(FormatError::NotANumber)
        }
        Special::NaN => render(&format, false, &['N', 'a', 'N'], "", Shape::NaN),
    })
}

/// How [`render`] shows the value.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Shape {
    /// Its digits, or `#` when they do not fit.
    Number,
    /// `#` in every digit place.
    Overflow,
    /// `NaN`'s letters as integer digits, stopping at the decimal point.
    NaN,
}

/// The pattern's digit places before and after the decimal point.
fn digit_places(format: &Format) -> (usize, usize) {
    let point = format.items.iter().position(|i| *i == Item::Point);
    let is_digit = |i: &&Item| matches!(i, Item::Nine | Item::Zero);
    let pre = format.items.iter().take(point.unwrap_or(format.items.len())).filter(is_digit).count();
    let post = point.map_or(0, |p| format.items[p..].iter().filter(is_digit).count());
    (pre, post)
}

/// Lays out a value's integer digits and (rounded) fraction digits in the pattern.
fn render(format: &Format, negative: bool, int_digits: &[char], fraction: &str, shape: Shape) -> String {
    let Format { items, fill_mode } = format;
    let fill_mode = *fill_mode;
    let point = items.iter().position(|i| *i == Item::Point);
    let is_digit = |i: &Item| matches!(i, Item::Nine | Item::Zero);
    let (pre, post) = digit_places(format);
    let overflow = shape == Shape::Overflow || int_digits.len() > pre;
    let explicit_sign = items.iter().any(|i| matches!(i, Item::Sign | Item::Minus | Item::SignAlways));
    // `NaN` shows nothing from the decimal point on (unless it overflows).
    let items = match (shape, point) {
        (Shape::NaN, Some(p)) if !overflow => &items[..p],
        _ => &items[..],
    };
    let mut out: Vec<char> = Vec::new();
    // The implicit sign's place, in front of the number (an anchored '-' moves next to
    // its first digit).
    let implicit_sign = !explicit_sign;
    let mut sign_slot: Option<usize> = None;
    let (mut digit_index, mut fraction_index, mut started, mut zero_fill) = (0usize, 0usize, false, false);
    let first_digit = pre.saturating_sub(int_digits.len());
    let mut anchored_sign_at: Option<usize> = None;
    for (position, item) in items.iter().enumerate() {
        let before_point = point.is_none_or(|p| position < p);
        if implicit_sign && sign_slot.is_none() && (is_digit(item) || *item == Item::Point) {
            sign_slot = Some(out.len());
            out.push(' ');
        }
        match item {
            Item::Nine | Item::Zero if before_point => {
                if *item == Item::Zero {
                    zero_fill = true;
                }
                let c = if overflow {
                    '#'
                } else if digit_index >= first_digit {
                    int_digits[digit_index - first_digit]
                } else if zero_fill {
                    '0'
                } else {
                    ' '
                };
                if c != ' ' {
                    started = true;
                }
                out.push(c);
                digit_index += 1;
            }
            Item::Nine | Item::Zero => {
                let c = if overflow { '#' } else { fraction.chars().nth(fraction_index).unwrap_or('0') };
                out.push(c);
                fraction_index += 1;
            }
            Item::Point => {
                if post > 0 || fill_mode || overflow {
                    out.push('.');
                }
            }
            Item::Group => out.push(if started { ',' } else { ' ' }),
            // A leading `S` is anchored: it moves next to the first digit shown.
            Item::Sign if !items[..position].iter().any(is_digit) => {
                anchored_sign_at = Some(out.len());
                out.push(' ');
            }
            Item::Sign => out.push(if negative { '-' } else { '+' }),
            Item::Minus => out.push(if negative { '-' } else { ' ' }),
            Item::Plus => out.push(if negative { ' ' } else { '+' }),
            Item::SignAlways => out.push(if negative { '-' } else { '+' }),
            Item::Ordinal(upper) => {
                if !overflow && !int_digits.is_empty() {
                    let digits: String = int_digits.iter().collect();
                    let n: u64 = digits.parse().unwrap_or(0);
                    let suffix = match (n % 100, n % 10) {
                        (11..=13, _) => "th",
                        (_, 1) => "st",
                        (_, 2) => "nd",
                        (_, 3) => "rd",
                        _ => "th",
                    };
                    out.extend(if *upper { suffix.to_uppercase() } else { suffix.to_string() }.chars());
                }
            }
            Item::Text(c) => out.push(*c),
        }
    }
    // The implicit sign, or a leading `S`, goes right before the first character of the
    // number (its own place is a blank in front of it).
    let first_shown =
        |out: &[char], from: usize| out.iter().skip(from).position(|c| *c != ' ').map(|p| p + from);
    if let (Some(slot), true) = (sign_slot, negative) {
        if let Some(first) = first_shown(&out, slot + 1) {
            out[first - 1] = '-';
        }
    }
    if let Some(at) = anchored_sign_at {
        let first = first_shown(&out, at + 1).unwrap_or(out.len());
        out[first - 1] = if negative { '-' } else { '+' };
    }
    let mut text: String = out.into_iter().collect();
    if fill_mode {
        text = text.trim_start().to_string();
        // Trailing zeros of `9` places go, and the blanks the group separators left.
        if let Some(p) = point {
            let nines_after: Vec<bool> =
                items[p..].iter().filter(|i| is_digit(i)).map(|i| *i == Item::Nine).collect();
            let mut trim = 0;
            for (c, nine) in text.chars().rev().zip(nines_after.iter().rev()) {
                if *nine && c == '0' {
                    trim += 1;
                } else {
                    break;
                }
            }
            text.truncate(text.len() - trim);
        }
    }
    text
}

/// `integer.fraction` rounded half away from zero to `places` decimals.
fn round(integer: &str, fraction: &str, places: usize) -> (String, String) {
    let mut digits: Vec<u8> = integer.bytes().chain(fraction.bytes()).map(|b| b - b'0').collect();
    let keep = integer.len() + places;
    let round_up = digits.get(keep).is_some_and(|d| *d >= 5);
    digits.resize(keep, 0);
    if round_up {
        let mut i = keep;
        loop {
            if i == 0 {
                digits.insert(0, 1);
                break;
            }
            i -= 1;
            if digits[i] == 9 {
                digits[i] = 0;
            } else {
                digits[i] += 1;
                break;
            }
        }
    }
    let split = digits.len() - places;
    let text = |d: &[u8]| d.iter().map(|d| (b'0' + d) as char).collect::<String>();
    (text(&digits[..split]), text(&digits[split..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fmt(value: &str, pattern: &str) -> String {
        let negative = value.starts_with('-');
        let value = value.trim_start_matches('-');
        let (integer, fraction) = value.split_once('.').unwrap_or((value, ""));
        format(negative, integer, fraction, pattern).expect("format")
    }

    /// Expected values are PostgreSQL 15's.
    #[test]
    fn patterns_format_as_in_postgres() {
        let cases = [
            ("1234.5", "9999.99", " 1234.50"),
            ("-1234.5", "99,999.99", " -1,234.50"),
            ("1234.5", "FM9999.99", "1234.5"),
            ("42", "000", " 042"),
            ("123456", "999", " ###"),
            ("-5", "S999", "  -5"),
            ("5", "S999", "  +5"),
            ("-5.5", "999D9MI", "  5.5-"),
            ("0.5", "9.99", "  .50"),
            ("0.5", "0.99", " 0.50"),
            ("12", "FM999th", "12th"),
            ("5", "909", "  05"),
            ("5", "9099", "  005"),
            ("1234", "9,999", " 1,234"),
            ("12", "9,999", "    12"),
            ("12", "FM9,999", "12"),
            ("0", "999", "   0"),
            ("0", "9.9", "  .0"),
            ("-0.4", "9", " 0"),
            ("12.345", "99.9", " 12.3"),
            ("12.35", "FM99.99", "12.35"),
            ("12", "FM99.99", "12."),
            ("12", "99.", " 12"),
            ("-12", "FM99", "-12"),
            ("12", "PL99", "+ 12"),
            ("-12", "SG99", "-12"),
            ("12", "SG99", "+12"),
            ("12", "99S", "12+"),
            ("-12", "99MI", "12-"),
            ("3", "FM9th", "3rd"),
            ("3", "9TH", " 3RD"),
            ("-0.5", "FM0.00", "-0.50"),
            ("1.999", "9.99", " 2.00"),
            ("9.999", "9.99", " #.##"),
            ("12345678.9", "999G999G999D99", "  12,345,678.90"),
        ];
        for (value, pattern, expected) in cases {
            assert_eq!(fmt(value, pattern), expected, "to_char({value}, '{pattern}')");
        }
        assert_eq!(fmt("12345", "99."), " ##.");
        assert!(format(false, "1", "", "RN").is_err());
        assert!(format(false, "1", "", "9.9.9").is_err());
    }

    /// Expected values are PostgreSQL 15's (`to_char('NaN'::numeric, '999')`, ...).
    #[test]
    fn nan_and_infinities_format_as_in_postgres() {
        let cases = [
            ("999", " NaN", " ###", "-###"),
            ("9.99", " #.##", " #.##", "-#.##"),
            ("FM999.99", "NaN", "###.##", "-###.##"),
            ("S999", "+NaN", "+###", "-###"),
            ("9,999", "   NaN", " #,###", "-#,###"),
            ("0000", " 0NaN", " ####", "-####"),
            ("MI999", " NaN", " ###", "-###"),
            ("999MI", "NaN ", "### ", "###-"),
            ("PL999", "+ NaN", "+ ###", " -###"),
            ("99G99", "  N,aN", " ##,##", "-##,##"),
            ("999.99", " NaN", " ###.##", "-###.##"),
            ("999.99S", "NaN", "###.##+", "###.##-"),
            ("S9999.9", " +NaN", "+####.#", "-####.#"),
            ("9999D", "  NaN", " ####.", "-####."),
            ("\"x\"999", "x NaN", "x ###", "x-###"),
            ("999th", "", " ###", "-###"),
        ];
        for (pattern, nan, infinity, negative_infinity) in cases {
            if !nan.is_empty() {
                assert_eq!(format_special(Special::NaN, pattern), Ok(nan.to_string()), "NaN '{pattern}'");
            }
            let inf = |negative| format_special(Special::Infinity { negative }, pattern);
            assert_eq!(inf(false), Ok(infinity.to_string()), "Infinity '{pattern}'");
            assert_eq!(inf(true), Ok(negative_infinity.to_string()), "-Infinity '{pattern}'");
        }
        assert_eq!(format_special(Special::NaN, "999th"), Err(FormatError::NotANumber));
    }
}
