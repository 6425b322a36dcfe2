//! Calendars: time windows (`[[time_window]]`: weekdays and times of day in an IANA time
//! zone) read as wall-clock time, so that "08:00-18:00 in Europe/Paris" follows daylight
//! saving. The time zone database is the one built into the binary (jiff's bundled
//! tzdb), so a minimal container needs none.
//!
//! A span `08:00-18:00` is open on each listed day from 08:00 to 18:00 local time; a span
//! whose end is not after its start (`22:00-06:00`) runs overnight, from the listed day
//! into the next; `00:00-24:00` is the whole day. A local time that a spring-forward
//! change skips opens at the first valid time after it; in the hour a fall-back change
//! repeats, the window follows the wall clock both times.

use jiff::Timestamp;
use jiff::civil::{Date, Weekday};
use jiff::tz::TimeZone;

/// Minutes in a day: a span's end may be `24:00`.
const DAY: u16 = 24 * 60;

/// One `HH:MM-HH:MM` of a window, in minutes since local midnight.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Span {
    start: u16,
    end: u16,
}

impl Span {
    fn overnight(self) -> bool {
        self.end <= self.start
    }
}

/// A time window: when, in its time zone, it is open.
#[derive(Clone, Debug)]
pub struct Window {
    /// Open on these days, Monday first.
    days: [bool; 7],
    spans: Vec<Span>,
    tz: TimeZone,
}

pub(super) fn day_index(weekday: Weekday) -> usize {
    usize::try_from(weekday.to_monday_zero_offset()).unwrap_or(0)
}

/// `mon`, `monday`, `Mon`: the day, Monday zero.
fn weekday(text: &str) -> Option<usize> {
    let text = text.trim().to_ascii_lowercase();
    const NAMES: [&str; 7] = [
        "monday",
        "tuesday",
        "wednesday",
        "thursday",
        "friday",
        "saturday",
        "sunday",
    ];
    NAMES
        .iter()
        .position(|name| text.len() >= 3 && name.starts_with(&text))
}

/// Why a time window's (or a report schedule's) days, times or zone cannot be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CalendarError {
    #[error("is empty: name at least one day (\"mon-fri\", \"sat\", ...)")]
    NoDays,
    #[error("{0:?} is not a day or a range of days like \"mon-fri\"")]
    NotADay(String),
    #[error("is empty: give at least one span like \"08:00-18:00\"")]
    NoSpans,
    #[error("{0:?} is not a span of times like \"08:00-18:00\"")]
    NotASpan(String),
    #[error("{0:?} starts at 24:00: start it at 00:00")]
    StartsAt24(String),
    #[error("{0:?} starts where it ends: write \"00:00-24:00\" for a whole day")]
    StartsWhereItEnds(String),
    #[error("{0:?} is not a time zone of the IANA database (e.g. \"Europe/Paris\", \"UTC\")")]
    NotATimezone(String),
}

/// `["mon-fri", "sun"]` as days, Monday first; a range may wrap (`fri-mon`).
pub fn parse_weekdays(items: &[String]) -> Result<[bool; 7], CalendarError> {
    let mut days = [false; 7];
    if items.is_empty() {
        return Err(CalendarError::NoDays);
    }
    for item in items {
        let bad = || CalendarError::NotADay(item.clone());
        let (first, last) = match item.split_once('-') {
            Some((a, b)) => (weekday(a).ok_or_else(bad)?, weekday(b).ok_or_else(bad)?),
            None => {
                let day = weekday(item).ok_or_else(bad)?;
                (day, day)
            }
        };
        let mut day = first;
        loop {
            days[day] = true;
            if day == last {
                break;
            }
            day = (day + 1) % 7;
        }
    }
    Ok(days)
}

/// `HH:MM` (00:00 to 24:00) in minutes.
pub(super) fn minutes(text: &str) -> Option<u16> {
    let (h, m) = text.trim().split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
    let total = h.checked_mul(60)?.checked_add(m)?;
    (m < 60 && total <= DAY).then_some(total)
}

fn parse_spans(items: &[String]) -> Result<Vec<Span>, CalendarError> {
    if items.is_empty() {
        return Err(CalendarError::NoSpans);
    }
    items
        .iter()
        .map(|item| {
            let bad = || CalendarError::NotASpan(item.clone());
            let (a, b) = item.split_once('-').ok_or_else(bad)?;
            let (start, end) = (minutes(a).ok_or_else(bad)?, minutes(b).ok_or_else(bad)?);
            if start == DAY {
                return Err(CalendarError::StartsAt24(item.clone()));
            }
            if start == end || (start == 0 && end == 0) {
                return Err(CalendarError::StartsWhereItEnds(item.clone()));
            }
            Ok(Span {
                start,
                end: if end == 0 { DAY } else { end },
            })
        })
        .collect()
}

/// The IANA time zone named (`Europe/Paris`, `UTC`), from the database in the binary.
pub fn parse_timezone(name: &str) -> Result<TimeZone, CalendarError> {
    TimeZone::get(name.trim()).map_err(|_| CalendarError::NotATimezone(name.to_owned()))
}

/// Which key of a window a parse error is about.
#[derive(Debug, PartialEq, Eq)]
pub enum WindowError {
    Weekdays(CalendarError),
    Times(CalendarError),
    Timezone(CalendarError),
}

impl Window {
    pub fn parse(
        weekdays: &[String],
        times: &[String],
        timezone: &str,
    ) -> Result<Window, WindowError> {
        Ok(Window {
            days: parse_weekdays(weekdays).map_err(WindowError::Weekdays)?,
            spans: parse_spans(times).map_err(WindowError::Times)?,
            tz: parse_timezone(timezone).map_err(WindowError::Timezone)?,
        })
    }

    /// Whether the window is open at `ms` (Unix milliseconds).
    pub fn contains(&self, ms: i64) -> bool {
        let Ok(at) = Timestamp::from_millisecond(ms) else {
            return false;
        };
        let local = at.to_zoned_datetime(self.tz.clone());
        let today = day_index(local.weekday());
        let yesterday = (today + 6) % 7;
        let time = local.time();
        let now =
            u16::try_from(i32::from(time.hour()) * 60 + i32::from(time.minute())).unwrap_or(0);
        self.spans.iter().any(|span| {
            if span.overnight() {
                (self.days[today] && now >= span.start) || (self.days[yesterday] && now < span.end)
            } else {
                self.days[today] && span.start <= now && now < span.end
            }
        })
    }

    /// The first moment at or after `ms` when the window is open (Unix milliseconds); `None`
    /// only past the calendar's end.
    pub fn next_open(&self, ms: i64) -> Option<i64> {
        if self.contains(ms) {
            return Some(ms);
        }
        let at = Timestamp::from_millisecond(ms).ok()?;
        let mut day: Date = at.to_zoned_datetime(self.tz.clone()).date();
        // Every listed day comes within a week; one more covers a start a gap skipped.
        for _ in 0..9 {
            if self.days[day_index(day.weekday())] {
                let opens = self
                    .spans
                    .iter()
                    .filter_map(|span| self.instant(day, span.start))
                    .filter(|opens| *opens >= ms)
                    .min();
                if opens.is_some() {
                    return opens;
                }
            }
            day = day.tomorrow().ok()?;
        }
        None
    }

    fn instant(&self, day: Date, minute: u16) -> Option<i64> {
        local_instant(&self.tz, day, minute)
    }
}

/// `day` at `minute` past midnight in `tz`, as Unix milliseconds: a time a spring-forward
/// change skips is read with the offset before it (02:30 becomes 03:30), a repeated one
/// is its first occurrence (RFC 5545's reading).
pub(super) fn local_instant(tz: &TimeZone, day: Date, minute: u16) -> Option<i64> {
    let hour = i8::try_from(minute / 60).ok()?;
    let minute = i8::try_from(minute % 60).ok()?;
    let local = day
        .at(hour, minute, 0, 0)
        .to_zoned_datetime(tz.clone())
        .ok()?;
    Some(local.timestamp().as_millisecond())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    fn window(days: &[&str], times: &[&str], tz: &str) -> Window {
        Window::parse(&strings(days), &strings(times), tz).unwrap()
    }

    fn ms(rfc3339: &str) -> i64 {
        rfc3339.parse::<Timestamp>().unwrap().as_millisecond()
    }

    #[test]
    fn weekdays_and_times_read_as_people_write_them() {
        assert_eq!(
            parse_weekdays(&strings(&["mon-fri"])).unwrap(),
            [true, true, true, true, true, false, false]
        );
        assert_eq!(
            parse_weekdays(&strings(&["Fri-Mon", "wednesday"])).unwrap(),
            [true, false, true, false, true, true, true]
        );
        for bad in ["mo", "funday", "mon-", "mon-fri-sat", ""] {
            assert!(parse_weekdays(&strings(&[bad])).is_err(), "{bad:?}");
        }
        assert!(parse_weekdays(&[]).is_err(), "a window that never opens");
        for bad in [
            "8:00-18:00",
            "08:00",
            "08:60-09:00",
            "25:00-26:00",
            "09:00-09:00",
            "24:00-02:00",
            "00:00-00:00",
        ] {
            assert!(parse_spans(&strings(&[bad])).is_err(), "{bad:?}");
        }
        assert!(parse_spans(&[]).is_err());
        assert!(parse_timezone("Europe/Pariss").is_err());
        assert!(parse_timezone("America/New_York").is_ok());
    }

    #[test]
    fn office_hours_in_paris_follow_daylight_saving() {
        let office = window(&["mon-fri"], &["08:00-18:00"], "Europe/Paris");
        // Winter (UTC+1): 08:00 Paris is 07:00 UTC.
        assert!(!office.contains(ms("2026-01-05T06:59:59Z")));
        assert!(office.contains(ms("2026-01-05T07:00:00Z")));
        assert!(!office.contains(ms("2026-01-05T17:00:00Z")));
        // Summer (UTC+2): 08:00 Paris is 06:00 UTC.
        assert!(office.contains(ms("2026-07-06T06:00:00Z")));
        assert!(!office.contains(ms("2026-07-06T16:00:00Z")));
        // The weekend is closed; Friday evening waits for Monday morning.
        assert!(!office.contains(ms("2026-07-04T10:00:00Z")));
        assert_eq!(
            office.next_open(ms("2026-07-03T16:30:00Z")),
            Some(ms("2026-07-06T06:00:00Z"))
        );
        // The Monday after the spring change (29 March 2026) opens at 06:00 UTC.
        assert_eq!(
            office.next_open(ms("2026-03-27T17:00:00Z")),
            Some(ms("2026-03-30T06:00:00Z"))
        );
    }

    #[test]
    fn a_start_the_clock_skips_opens_at_the_next_valid_time() {
        // 02:30 does not exist in Paris on 29 March 2026 (02:00 -> 03:00) nor in New York
        // on 8 March 2026: the window opens at 03:30 local (02:30 read with the offset
        // before the change, as calendars do), and only once.
        let paris = window(&["sun"], &["02:30-04:00"], "Europe/Paris");
        assert_eq!(
            paris.next_open(ms("2026-03-28T12:00:00Z")),
            Some(ms("2026-03-29T01:30:00Z")) // 03:30 CEST: 02:30 CET moved by the gap
        );
        let new_york = window(&["sun"], &["02:30-04:00"], "America/New_York");
        let opens = new_york.next_open(ms("2026-03-07T12:00:00Z")).unwrap();
        assert_eq!(opens, ms("2026-03-08T07:30:00Z")); // 03:30 EDT
        assert!(new_york.contains(opens));
        // On the fall-back day (1 November 2026) 01:00-02:00 happens twice; a window
        // over it is open both times.
        let night = window(&["sun"], &["01:00-02:00"], "America/New_York");
        assert!(night.contains(ms("2026-11-01T05:30:00Z"))); // 01:30 EDT
        assert!(night.contains(ms("2026-11-01T06:30:00Z"))); // 01:30 EST
        assert!(!night.contains(ms("2026-11-01T07:30:00Z"))); // 02:30 EST
    }

    #[test]
    fn overnight_spans_run_into_the_next_day() {
        let nights = window(&["fri"], &["22:00-06:00"], "UTC");
        assert!(nights.contains(ms("2026-07-03T23:00:00Z"))); // Friday night
        assert!(nights.contains(ms("2026-07-04T05:59:00Z"))); // Saturday morning
        assert!(!nights.contains(ms("2026-07-04T06:00:00Z")));
        assert!(!nights.contains(ms("2026-07-03T05:00:00Z"))); // Friday morning: Thursday's
        let always = window(&["mon-sun"], &["00:00-24:00"], "UTC");
        assert!(always.contains(ms("2026-07-03T00:00:00Z")));
        assert!(always.contains(ms("2026-07-03T23:59:59Z")));
    }
}
