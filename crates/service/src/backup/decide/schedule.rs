//! When an EtcdBackupSchedule runs next. Pure.

use chrono::{DateTime, Utc};
use croner::Cron;

/// What a schedule should do now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScheduleStep {
    /// Start a backup for this scheduled time (missed runs collapse into one).
    pub run: Option<DateTime<Utc>>,
    /// The next scheduled time after now (`None` while suspended).
    pub next: Option<DateTime<Utc>>,
}

/// Parses a 5-field cron expression, naming the field in the error.
pub fn parse(expression: &str) -> Result<Cron, String> {
    if expression.split_whitespace().count() != 5 {
        return Err(format!(
            "spec.schedule {expression:?} must have 5 fields (minute hour day-of-month month day-of-week)"
        ));
    }
    expression
        .parse::<Cron>()
        .map_err(|e| format!("spec.schedule {expression:?} is not a valid cron expression: {e}"))
}

/// Decides whether a backup is due: the first occurrence after the last
/// scheduled run (or the schedule's creation) has passed, nothing is running,
/// and the schedule is not suspended. Only one backup runs at a time.
pub fn next_step(
    cron: &Cron,
    suspended: bool,
    last_run: Option<DateTime<Utc>>,
    created: DateTime<Utc>,
    running: bool,
    now: DateTime<Utc>,
) -> ScheduleStep {
    if suspended {
        return ScheduleStep { run: None, next: None };
    }
    let next_after = |t: DateTime<Utc>| cron.find_next_occurrence(&t, false).ok();
    let due = next_after(last_run.unwrap_or(created)).filter(|d| *d <= now);
    // The latest occurrence not after now: several missed runs make one backup, not a burst.
    let run = if running {
        None
    } else {
        due.map(|_| cron.find_previous_occurrence(&now, true).ok().unwrap_or(now))
    };
    let next = if due.is_some() && running {
        // Overdue, waiting for the running backup: it starts as soon as that finishes.
        due
    } else {
        next_after(now)
    };
    ScheduleStep { run, next }
}
