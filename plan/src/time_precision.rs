//! What a declared fractional-seconds precision (`timestamp(0)`, `time(2)`, `interval(3)`)
//! means for a value: the value rounded to that many digits after the second, as Postgres
//! rounds it (`AdjustTimestampForTypmod`, `AdjustTimeForTypmod`, `AdjustIntervalForTypmod`).
//!
//! One definition here, because every layer needs the same answer: the cast to
//! `timestamp(0)`/`timestamp(3)` in expressions (the executor), and a value stored in a
//! column declared with a precision (storage, on every way in: INSERT, UPDATE, COPY,
//! ALTER COLUMN TYPE). Weir keeps every such value in microseconds, like Postgres.

/// The largest precision Postgres accepts; a larger one is reduced to it with a warning.
pub const MAX_TIME_PRECISION: u8 = 6;

/// Microseconds from 1970-01-01 (Arrow's epoch) to 2000-01-01 (Postgres' epoch): Postgres
/// rounds a timestamp's half unit away from *its* epoch.
const POSTGRES_EPOCH_MICROS: i64 = 946_684_800_000_000;

/// Microseconds in one unit of the last digit `precision` keeps (1 for 6 or more).
pub fn unit_micros(precision: u8) -> i64 {
    10_i64.pow(u32::from(MAX_TIME_PRECISION.saturating_sub(precision)))
}

/// A timestamp (microseconds since 1970) in units of `unit` microseconds, as Postgres
/// rounds to a coarser precision: half a unit away from 2000-01-01 (`2020-01-01
/// 12:00:00.5` is `12:00:01`, `1969-12-31 23:59:58.5` is `23:59:58`).
pub fn timestamp_in_units(micros: i64, unit: i64) -> i64 {
    let since = i128::from(micros) - i128::from(POSTGRES_EPOCH_MICROS);
    let units = away_from_zero(since, i128::from(unit));
    clamp(units + i128::from(POSTGRES_EPOCH_MICROS / unit))
}

/// A timestamp (microseconds since 1970) rounded to `precision` digits, still in
/// microseconds.
pub fn round_timestamp(micros: i64, precision: u8) -> i64 {
    let unit = unit_micros(precision);
    if unit == 1 {
        return micros;
    }
    let since = i128::from(micros) - i128::from(POSTGRES_EPOCH_MICROS);
    clamp(away_from_zero(since, i128::from(unit)) * i128::from(unit) + i128::from(POSTGRES_EPOCH_MICROS))
}

/// A time of day (microseconds since midnight) rounded to `precision` digits: half a unit
/// up, so `23:59:59.995` as `time(2)` is `24:00:00`, as in Postgres.
pub fn round_time(micros: i64, precision: u8) -> i64 {
    let unit = i128::from(unit_micros(precision));
    clamp(away_from_zero(i128::from(micros), unit) * unit)
}

/// The time part of an interval (microseconds) rounded to `precision` digits: half a unit
/// away from zero (`-00:00:00.15` as `interval(1)` is `-00:00:00.2`).
pub fn round_interval_micros(micros: i64, precision: u8) -> i64 {
    round_time(micros, precision)
}

/// `value / unit` rounded half away from zero.
fn away_from_zero(value: i128, unit: i128) -> i128 {
    let half = unit / 2;
    match value >= 0 {
        true => (value + half) / unit,
        false => -((-value + half) / unit),
    }
}

fn clamp(value: i128) -> i64 {
    value.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2020-01-01 12:00:00 in microseconds since 1970.
    const NOON_2020: i64 = 1_577_880_000_000_000;

    #[test]
    fn timestamps_round_half_away_from_2000() {
        // Expected values are PostgreSQL 15's (`timestamp(0)`, `timestamptz(3)`).
        assert_eq!(round_timestamp(NOON_2020 + 500_000, 0), NOON_2020 + 1_000_000);
        assert_eq!(round_timestamp(NOON_2020 + 499_999, 0), NOON_2020);
        assert_eq!(round_timestamp(NOON_2020 + 123_450, 3), NOON_2020 + 123_000);
        // 1969-12-31 23:59:58.5 is 23:59:58: before 2000 the half goes down.
        assert_eq!(round_timestamp(-1_500_000, 0), -2_000_000);
        // 1999-12-31 23:59:59.9995 is .999, 2000-01-01 00:00:00.0005 is .001.
        assert_eq!(round_timestamp(POSTGRES_EPOCH_MICROS - 500, 3), POSTGRES_EPOCH_MICROS - 1_000);
        assert_eq!(round_timestamp(POSTGRES_EPOCH_MICROS + 500, 3), POSTGRES_EPOCH_MICROS + 1_000);
        assert_eq!(round_timestamp(NOON_2020 + 123_456, 6), NOON_2020 + 123_456);
        assert_eq!(round_timestamp(i64::MIN, 0), i64::MIN);
    }

    #[test]
    fn units_are_what_casts_to_coarser_arrow_units_use() {
        assert_eq!(timestamp_in_units(NOON_2020 + 500_000, 1_000_000), 1_577_880_001);
        assert_eq!(timestamp_in_units(-1_500_000, 1_000_000), -2);
        assert_eq!(timestamp_in_units(NOON_2020 + 500, 1000), 1_577_880_000_001);
        assert_eq!(unit_micros(0), 1_000_000);
        assert_eq!(unit_micros(2), 10_000);
        assert_eq!(unit_micros(6), 1);
    }

    #[test]
    fn times_and_intervals_round_half_away_from_zero() {
        // `23:59:59.995` as time(2) is `24:00:00`; `12:00:00.125` is `12:00:00.13`.
        assert_eq!(round_time(86_399_995_000, 2), 86_400_000_000);
        assert_eq!(round_time(43_200_125_000, 2), 43_200_130_000);
        assert_eq!(round_interval_micros(-150_000, 1), -200_000);
        assert_eq!(round_interval_micros(-50_000, 1), -100_000);
        assert_eq!(round_interval_micros(1_125_000, 2), 1_130_000);
    }
}
