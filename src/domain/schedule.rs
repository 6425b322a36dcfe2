//! Schedules of reports (`[[report]] schedule`): `"mon 08:00"`, `"mon-fri 07:00"` or
//! `"daily 07:30"`, wall-clock time in an IANA time zone. A slot is one day's time: it is
//! named by its local date, so a day has one slot whatever daylight saving does to it. A
//! time that a spring-forward change skips falls at the same wall time read with the
//! offset before the change (02:30 becomes 03:30), a repeated one at its first occurrence.

use jiff::Timestamp;
use jiff::civil::Date;
use jiff::tz::TimeZone;

use super::calendar::{day_index, local_instant, minutes, parse_timezone, parse_weekdays};

/// When a report is due.
#[derive(Clone, Debug)]
pub struct Schedule {
    days: [bool; 7],
    /// Minutes after local midnight.
    minute: u16,
    tz: TimeZone,
}

/// One occurrence of a schedule: its local date (the slot's name) and its moment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Slot {
    /// `2026-12-07`.
    pub date: String,
    /// Unix milliseconds.
    pub at_ms: i64,
}

/// Which key of a report a schedule error is about.
#[derive(Debug, PartialEq, Eq)]
pub enum ScheduleError {
    Schedule(String),
    Timezone(super::calendar::CalendarError),
}

impl Schedule {
    pub fn parse(schedule: &str, timezone: &str) -> Result<Schedule, ScheduleError> {
        let bad = || {
            ScheduleError::Schedule(format!(
                "{schedule:?} is not a schedule like \"mon 08:00\", \"mon-fri 07:00\" or \"daily 07:30\""
            ))
        };
        let (days, time) = schedule.trim().split_once(' ').ok_or_else(bad)?;
        let days = match days.trim().to_ascii_lowercase().as_str() {
            "daily" => [true; 7],
            days => parse_weekdays(&[days.to_owned()]).map_err(|_| bad())?,
        };
        let minute = minutes(time).filter(|m| *m < 24 * 60).ok_or_else(bad)?;
        Ok(Schedule {
            days,
            minute,
            tz: parse_timezone(timezone).map_err(ScheduleError::Timezone)?,
        })
    }

    /// The latest slot at or before `ms`; `None` only at the calendar's edges.
    pub fn latest_slot(&self, ms: i64) -> Option<Slot> {
        let now = Timestamp::from_millisecond(ms).ok()?;
        let mut day: Date = now.to_zoned_datetime(self.tz.clone()).date();
        // The latest listed day is within a week; a day more covers a time not yet come.
        for _ in 0..9 {
            if self.days[day_index(day.weekday())]
                && let Some(at_ms) = self.instant(day)
                && at_ms <= ms
            {
                return Some(Slot {
                    date: day.to_string(),
                    at_ms,
                });
            }
            day = day.yesterday().ok()?;
        }
        None
    }

    /// The first slot after `ms`.
    pub fn next_slot(&self, ms: i64) -> Option<Slot> {
        let now = Timestamp::from_millisecond(ms).ok()?;
        let mut day: Date = now.to_zoned_datetime(self.tz.clone()).date();
        for _ in 0..9 {
            if self.days[day_index(day.weekday())]
                && let Some(at_ms) = self.instant(day)
                && at_ms > ms
            {
                return Some(Slot {
                    date: day.to_string(),
                    at_ms,
                });
            }
            day = day.tomorrow().ok()?;
        }
        None
    }

    fn instant(&self, day: Date) -> Option<i64> {
        local_instant(&self.tz, day, self.minute)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(rfc3339: &str) -> i64 {
        rfc3339.parse::<Timestamp>().unwrap().as_millisecond()
    }

    /// Every slot from `from` to `to`, walking from one to the next.
    fn slots(schedule: &Schedule, from: &str, to: &str) -> Vec<Slot> {
        let mut at = ms(from);
        let mut all = Vec::new();
        while let Some(slot) = schedule.next_slot(at) {
            if slot.at_ms > ms(to) {
                break;
            }
            at = slot.at_ms;
            all.push(slot);
        }
        all
    }

    #[test]
    fn schedules_read_as_people_write_them() {
        assert!(Schedule::parse("mon 08:00", "Europe/Paris").is_ok());
        assert!(Schedule::parse("daily 07:30", "UTC").is_ok());
        assert!(Schedule::parse("Mon-Fri 07:00", "UTC").is_ok());
        for bad in [
            "monday",
            "08:00",
            "mon 8:00",
            "mon 24:00",
            "daily at 07:30",
            "sometimes 07:00",
        ] {
            assert!(
                matches!(Schedule::parse(bad, "UTC"), Err(ScheduleError::Schedule(_))),
                "{bad:?}"
            );
        }
        assert!(matches!(
            Schedule::parse("mon 08:00", "Mars/Olympus"),
            Err(ScheduleError::Timezone(_))
        ));
    }

    #[test]
    fn a_weekly_slot_follows_the_wall_clock_across_a_change() {
        let weekly = Schedule::parse("mon 08:00", "Europe/Paris").unwrap();
        let slot = weekly.latest_slot(ms("2026-03-31T12:00:00Z")).unwrap();
        assert_eq!(slot.date, "2026-03-30");
        assert_eq!(slot.at_ms, ms("2026-03-30T06:00:00Z"), "08:00 CEST");
        let before = weekly.latest_slot(ms("2026-03-30T05:59:59Z")).unwrap();
        assert_eq!(
            before.at_ms,
            ms("2026-03-23T07:00:00Z"),
            "08:00 CET a week before"
        );
    }

    #[test]
    fn the_spring_forward_day_has_one_slot_at_the_next_valid_time() {
        for (tz, day, at) in [
            ("Europe/Paris", "2026-03-29", "2026-03-29T01:30:00Z"), // 03:30 CEST
            ("America/New_York", "2026-03-08", "2026-03-08T07:30:00Z"), // 03:30 EDT
        ] {
            let daily = Schedule::parse("daily 02:30", tz).unwrap();
            let around = slots(
                &daily,
                &format!("{day}T00:00:00Z"),
                &format!("{day}T23:59:59Z"),
            );
            let on_the_day: Vec<&Slot> = around.iter().filter(|s| s.date == day).collect();
            assert_eq!(on_the_day.len(), 1, "{tz}: {around:?}");
            assert_eq!(on_the_day[0].at_ms, ms(at), "{tz}");
        }
    }

    #[test]
    fn the_fall_back_day_has_one_slot_though_its_time_comes_twice() {
        for (tz, schedule, day, at) in [
            (
                "Europe/Paris",
                "daily 02:30",
                "2026-10-25",
                "2026-10-25T00:30:00Z",
            ), // CEST
            (
                "America/New_York",
                "daily 01:30",
                "2026-11-01",
                "2026-11-01T05:30:00Z",
            ), // EDT
        ] {
            let daily = Schedule::parse(schedule, tz).unwrap();
            let around = slots(&daily, "2026-10-20T00:00:00Z", "2026-11-05T00:00:00Z");
            let on_the_day: Vec<&Slot> = around.iter().filter(|s| s.date == day).collect();
            assert_eq!(on_the_day.len(), 1, "{tz}: {on_the_day:?}");
            assert_eq!(on_the_day[0].at_ms, ms(at), "{tz}: the first occurrence");
            // Every day of the fortnight has exactly one slot, each after the one before.
            let mut dates: Vec<&str> = around.iter().map(|s| s.date.as_str()).collect();
            dates.dedup();
            assert_eq!(dates.len(), around.len(), "{tz}: one slot a day");
            assert!(around.windows(2).all(|w| w[0].at_ms < w[1].at_ms));
        }
    }
}
