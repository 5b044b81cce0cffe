//! Timers of scheduled actions: ON EVERY n UNIT, ON EVERY <day> AT, ON TIMESTAMP (daily / once)
//! and ON CRON (spec §4). One tokio task per scheduled action, cancelled through its own
//! [`CancellationToken`] when the action is replaced or removed, or the engine shuts down.
//!
//! A tick does not run the action: it calls `fire`, which queues a job for the engine's worker,
//! so a slow action delays its own next run, never the timer or the publish path.
//!
//! Clocks: ON EVERY n UNIT counts on tokio's clock from deployment (the first run one period
//! after it; paused tokio time drives it in tests). The wall-clock triggers compute the next
//! local instant with chrono ([`next_at`], [`next_cron`], pure and unit-tested) and sleep until
//! then; the next instant is always computed strictly after the previous one, so an early wake
//! can never fire twice. A local time that does not exist (the hour skipped by a DST change) is
//! skipped that day; an ambiguous one fires at its first occurrence. Must not touch: LOT
//! evaluation, the broker.

use std::time::Duration;

use chrono::{DateTime, Datelike, Days as ChronoDays, Local, NaiveDateTime, TimeZone, Weekday};
use tokio::runtime::Handle;
use tokio_util::sync::CancellationToken;

use crate::lot::ast::{CronSchedule, Days, TimeOfDay, TriggerKind};

/// Starts the timer of `trigger` on `handle`; returns false for a trigger that has no timer
/// (topic, start, connect triggers) or a one-time ON TIMESTAMP already in the past.
pub(crate) fn spawn(
    handle: &Handle,
    trigger: &TriggerKind,
    cancel: CancellationToken,
    fire: impl Fn() + Send + 'static,
) -> bool {
    match trigger {
        TriggerKind::Every { count, unit } => {
            let period = Duration::from_secs(count.saturating_mul(unit.seconds()).max(1));
            handle.spawn(async move {
                let start = tokio::time::Instant::now() + period;
                let mut ticks = tokio::time::interval_at(start, period);
                // A tick missed while the hub was busy is not made up for in a burst.
                ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tokio::select! {
                        _ = cancel.cancelled() => return,
                        _ = ticks.tick() => fire(),
                    }
                }
            });
        }
        TriggerKind::EveryAt { days, at } => {
            let (days, at) = (*days, *at);
            spawn_wall(handle, cancel, fire, move |after| next_at(after, days, at));
        }
        TriggerKind::Daily(at) => {
            let at = *at;
            spawn_wall(handle, cancel, fire, move |after| {
                next_at(after, Days::Day, at)
            });
        }
        TriggerKind::Once(when) => {
            let Some(when) = once_at(&Local, when) else {
                return false;
            };
            if when <= Local::now() {
                return false;
            }
            let mut done = false;
            spawn_wall(handle, cancel, fire, move |_| {
                // Fires once: the second call ends the task.
                let next = (!done).then_some(when);
                done = true;
                next
            });
        }
        TriggerKind::Cron(schedule) => {
            let schedule = schedule.clone();
            spawn_wall(handle, cancel, fire, move |after| {
                next_cron(&schedule, after)
            });
        }
        TriggerKind::Topic(_)
        | TriggerKind::Change(_)
        | TriggerKind::Start
        | TriggerKind::Connect
        | TriggerKind::Disconnect => return false,
    }
    true
}

/// A wall-clock timer: sleeps until `next(after)` (local time), fires, repeats; ends when `next`
/// gives None or `cancel` fires.
fn spawn_wall(
    handle: &Handle,
    cancel: CancellationToken,
    fire: impl Fn() + Send + 'static,
    mut next: impl FnMut(&DateTime<Local>) -> Option<DateTime<Local>> + Send + 'static,
) {
    handle.spawn(async move {
        let mut after = Local::now();
        while let Some(when) = next(&after) {
            let wait = (when - Local::now()).to_std().unwrap_or(Duration::ZERO);
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep(wait) => fire(),
            }
            after = when.max(Local::now());
        }
    });
}

/// The first instant strictly after `after` that falls on `days` at local time `at`.
pub(crate) fn next_at<Tz: TimeZone>(
    after: &DateTime<Tz>,
    days: Days,
    at: TimeOfDay,
) -> Option<DateTime<Tz>> {
    let tz = after.timezone();
    let today = after.date_naive();
    // Eight days always reach the next matching weekday, even when today's time has passed.
    for offset in 0..=8 {
        let date = today.checked_add_days(ChronoDays::new(offset))?;
        if !day_matches(days, date.weekday()) {
            continue;
        }
        let naive = date.and_hms_opt(at.hour.into(), at.minute.into(), at.second.into())?;
        if let Some(when) = tz.from_local_datetime(&naive).earliest()
            && when > *after
        {
            return Some(when);
        }
    }
    None
}

fn day_matches(days: Days, day: Weekday) -> bool {
    use Weekday::*;
    match days {
        Days::Day => true,
        Days::Weekday => !matches!(day, Sat | Sun),
        Days::Weekend => matches!(day, Sat | Sun),
        Days::Monday => day == Mon,
        Days::Tuesday => day == Tue,
        Days::Wednesday => day == Wed,
        Days::Thursday => day == Thu,
        Days::Friday => day == Fri,
        Days::Saturday => day == Sat,
        Days::Sunday => day == Sun,
    }
}

/// The local instant of a one-time ON TIMESTAMP.
pub(crate) fn once_at<Tz: TimeZone>(tz: &Tz, when: &NaiveDateTime) -> Option<DateTime<Tz>> {
    tz.from_local_datetime(when).earliest()
}

/// The next instant of a cron schedule strictly after `after`.
pub(crate) fn next_cron<Tz: TimeZone>(
    schedule: &CronSchedule,
    after: &DateTime<Tz>,
) -> Option<DateTime<Tz>> {
    schedule.schedule.after(after).next()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{NaiveDate, Utc};
    use std::str::FromStr;
    use std::sync::Arc;

    fn utc(y: i32, m: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
        Utc.from_utc_datetime(
            &NaiveDate::from_ymd_opt(y, m, d)
                .unwrap()
                .and_hms_opt(h, mi, s)
                .unwrap(),
        )
    }

    const NINE: TimeOfDay = TimeOfDay {
        hour: 9,
        minute: 0,
        second: 0,
    };

    #[test]
    fn next_weekday_time() {
        // 2025-03-17 is a Monday.
        let mon_8 = utc(2025, 3, 17, 8, 0, 0);
        assert_eq!(
            next_at(&mon_8, Days::Day, NINE),
            Some(utc(2025, 3, 17, 9, 0, 0))
        );
        let mon_9 = utc(2025, 3, 17, 9, 0, 0);
        assert_eq!(
            next_at(&mon_9, Days::Day, NINE),
            Some(utc(2025, 3, 18, 9, 0, 0)),
            "strictly after"
        );
        assert_eq!(
            next_at(&mon_9, Days::Monday, NINE),
            Some(utc(2025, 3, 24, 9, 0, 0))
        );
        let fri_10 = utc(2025, 3, 21, 10, 0, 0);
        assert_eq!(
            next_at(&fri_10, Days::Weekday, NINE),
            Some(utc(2025, 3, 24, 9, 0, 0))
        );
        assert_eq!(
            next_at(&fri_10, Days::Weekend, NINE),
            Some(utc(2025, 3, 22, 9, 0, 0))
        );
        assert_eq!(
            next_at(&mon_8, Days::Sunday, NINE),
            Some(utc(2025, 3, 23, 9, 0, 0))
        );
    }

    #[test]
    fn cron_and_once() {
        let schedule = CronSchedule {
            source: "0 30 9 * * Mon-Fri".into(),
            schedule: Arc::new(cron::Schedule::from_str("0 30 9 * * Mon-Fri").unwrap()),
        };
        let sat = utc(2025, 3, 22, 12, 0, 0);
        assert_eq!(next_cron(&schedule, &sat), Some(utc(2025, 3, 24, 9, 30, 0)));
        let naive = NaiveDate::from_ymd_opt(2030, 1, 2)
            .unwrap()
            .and_hms_opt(3, 4, 5)
            .unwrap();
        assert_eq!(once_at(&Utc, &naive), Some(utc(2030, 1, 2, 3, 4, 5)));
    }
}
