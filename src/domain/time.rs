//! The clock and every date format sdm-watch reads or writes: the API's dates (any number
//! of fraction digits), its filters, the store's microseconds and milliseconds, alert
//! timestamps, and the short forms operators read in tables and status lines.

pub use time::OffsetDateTime;
use time::UtcOffset;
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;

/// The longest duration sdm-watch takes, from the config or the command line: long enough
/// for any real use ("keep for 99 years"), short enough that adding it to any date or
/// instant the daemon keeps cannot overflow.
pub const MAX_DURATION: std::time::Duration = std::time::Duration::from_secs(100 * 365 * 86_400);

/// Why a text is not a duration sdm-watch takes.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error("{text:?} is not a duration ({reason}); write e.g. \"30s\", \"5m\", \"7d\"")]
    NotADuration { text: String, reason: String },
    #[error("{text:?} is longer than 100 years, the longest duration sdm-watch takes")]
    TooLong { text: String },
}

/// A humantime duration (`"30s"`, `"7d"`) of at most [`MAX_DURATION`].
pub fn parse_duration(text: &str) -> Result<std::time::Duration, DurationError> {
    let duration =
        humantime::parse_duration(text.trim()).map_err(|e| DurationError::NotADuration {
            text: text.to_owned(),
            reason: e.to_string(),
        })?;
    if duration > MAX_DURATION {
        return Err(DurationError::TooLong {
            text: text.to_owned(),
        });
    }
    Ok(duration)
}

/// Milliseconds since the Unix epoch, now: the store's clock.
pub fn now_ms() -> i64 {
    millis(OffsetDateTime::now_utc())
}

/// Milliseconds since the Unix epoch: how the store keeps its times. Every date the time
/// crate holds fits (years -9999 to 9999 are under 2^49 ms).
pub fn millis(at: OffsetDateTime) -> i64 {
    (at.unix_timestamp_nanos() / 1_000_000) as i64
}

/// `wait` after `ms` (store milliseconds), saturating instead of wrapping, whatever the
/// wait (a receiver's `Retry-After` may be anything).
pub fn after_ms(ms: i64, wait: std::time::Duration) -> i64 {
    ms.saturating_add(i64::try_from(wait.as_millis()).unwrap_or(i64::MAX))
}

/// Microseconds since the Unix epoch: how the store keeps creation dates.
pub fn micros(at: OffsetDateTime) -> i64 {
    (at.unix_timestamp_nanos() / 1_000) as i64
}

pub fn from_micros(us: i64) -> Option<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(us) * 1_000).ok()
}

pub fn from_millis(ms: i64) -> Option<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).ok()
}

/// Reads the API's ISO 8601 dates: any number of fraction digits (`.12Z`, `.109159Z`,
/// none), `Z` or an offset; a date without an offset is taken as UTC.
/// The result is in UTC; a date whose UTC falls past year 9999 (`9999-12-31T23:00-05:00`)
/// is unknown, as the rest of the code could not place it.
pub fn parse_api_time(text: &str) -> Option<OffsetDateTime> {
    let text = text.trim();
    let at = OffsetDateTime::parse(text, &Rfc3339)
        // No offset: RFC 3339 insists on one, so read it as UTC.
        .or_else(|_| OffsetDateTime::parse(&format!("{text}Z"), &Rfc3339))
        .ok()?;
    at.checked_to_offset(UtcOffset::UTC)
}

/// `at` in UTC; a time from this module always is, so the fallback never shows.
fn utc(at: OffsetDateTime) -> OffsetDateTime {
    at.checked_to_offset(UtcOffset::UTC).unwrap_or(at)
}

/// A time the way the API's filters take it, with microseconds like the API's own dates.
pub fn format_api_time(at: OffsetDateTime) -> String {
    let at = utc(at);
    at.format(format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z"
    ))
    .unwrap_or_else(|_| at.unix_timestamp().to_string())
}

/// RFC 3339 in UTC to the second, as alert timestamps are written.
pub fn rfc3339_seconds(at: OffsetDateTime) -> String {
    utc(at)
        .format(format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second]Z"
        ))
        .unwrap_or_default()
}

/// `2026-11-28 10:01:00Z`, for reports.
pub fn short(at: OffsetDateTime) -> String {
    format!("{}Z", table(at))
}

/// `2026-11-28 10:01:00` in UTC, for the columns of a table.
pub fn table(at: OffsetDateTime) -> String {
    utc(at)
        .format(format_description!(
            "[year]-[month]-[day] [hour]:[minute]:[second]"
        ))
        .unwrap_or_default()
}

/// [`short`] of a store time in milliseconds; the number itself if it is out of range.
pub fn short_ms(ms: i64) -> String {
    from_millis(ms).map_or_else(|| ms.to_string(), short)
}

/// `10:01:00Z`, for one-line status messages.
pub fn clock(at: OffsetDateTime) -> String {
    utc(at)
        .format(format_description!("[hour]:[minute]:[second]Z"))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_with_zero_to_nine_fraction_digits_parse() {
        let base = parse_api_time("2022-04-14T08:48:37Z").unwrap();
        for (text, nanos) in [
            ("2022-04-14T08:48:37Z", 0),
            ("2022-04-14T08:48:37.1Z", 100_000_000),
            ("2022-04-14T08:48:37.12Z", 120_000_000),
            ("2022-04-14T08:48:37.109159Z", 109_159_000),
            ("2022-04-14T08:48:37.123456789Z", 123_456_789),
            ("2022-04-14T08:48:37.5", 500_000_000),
            ("2022-04-14T10:48:37.5+02:00", 500_000_000),
        ] {
            let at = parse_api_time(text).unwrap_or_else(|| panic!("{text} did not parse"));
            assert_eq!((at - base).whole_nanoseconds(), nanos, "{text}");
        }
        assert_eq!(parse_api_time("yesterday"), None);
        assert_eq!(
            parse_api_time("9999-12-31T23:00:00-05:00"),
            None,
            "year 10000 in UTC"
        );
        assert!(
            parse_api_time("0001-01-01T01:00:00+05:00").is_some(),
            "year 0 is a date"
        );
    }

    #[test]
    fn formatted_times_read_back_exactly_to_the_microsecond() {
        let at = parse_api_time("2022-04-14T08:48:37.109159Z").unwrap();
        assert_eq!(format_api_time(at), "2022-04-14T08:48:37.109159Z");
        assert_eq!(parse_api_time(&format_api_time(at)), Some(at));
        assert_eq!(from_micros(micros(at)), Some(at));
    }

    #[test]
    fn a_wait_after_a_time_saturates() {
        let wait = std::time::Duration::from_secs(u64::MAX);
        assert_eq!(after_ms(5, std::time::Duration::from_millis(7)), 12);
        assert_eq!(after_ms(5, wait), i64::MAX);
        assert_eq!(
            after_ms(i64::MAX - 1, std::time::Duration::from_secs(1)),
            i64::MAX
        );
    }

    #[test]
    fn durations_are_read_up_to_a_century() {
        assert_eq!(
            parse_duration("90s"),
            Ok(std::time::Duration::from_secs(90))
        );
        assert_eq!(parse_duration("36500d"), Ok(MAX_DURATION));
        assert!(matches!(
            parse_duration("36501d"),
            Err(DurationError::TooLong { .. })
        ));
        assert!(parse_duration("20000y").is_err());
        assert!(parse_duration("600000000y").is_err());
        assert!(
            parse_duration("soon")
                .unwrap_err()
                .to_string()
                .contains("not a duration")
        );
    }

    #[test]
    fn short_forms() {
        let at = parse_api_time("2026-11-28T10:01:00.5+01:00").unwrap();
        assert_eq!(rfc3339_seconds(at), "2026-11-28T09:01:00Z");
        assert_eq!(short(at), "2026-11-28 09:01:00Z");
        assert_eq!(table(at), "2026-11-28 09:01:00");
        assert_eq!(clock(at), "09:01:00Z");
        assert_eq!(short_ms(0), "1970-01-01 00:00:00Z");
    }
}
