//! The wall clock, for what runs on processing time: a source's processing-time column and
//! state time-to-live.

/// Microseconds since the Unix epoch (0 if the clock is before it).
pub fn wall_clock_us() -> i64 {
    let since_epoch = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    i64::try_from(since_epoch.as_micros()).unwrap_or(i64::MAX)
}
