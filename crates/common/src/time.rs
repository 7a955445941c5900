//! The operator's wall clock, and time stamps in the Kubernetes format.
//!
//! Every decision that compares wall-clock times (grace periods, schedules, certificate
//! lifetimes) reads [`now`], so a fault campaign can step one process's clock: with
//! `ETCD_OPERATOR_CLOCK_OFFSET_FILE` set, the signed number of seconds in that file is added
//! to the system clock on every read (a missing or empty file is no offset). etcd is a Go
//! binary that fake-time preloads do not reach, and the campaign steps only the operator's
//! processes, so the offset lives here rather than in the environment of the host.

use std::sync::OnceLock;

use chrono::{DateTime, TimeDelta, Utc};

/// The environment variable naming the offset file.
pub const CLOCK_OFFSET_FILE_ENV: &str = "ETCD_OPERATOR_CLOCK_OFFSET_FILE";

fn offset_file() -> Option<&'static std::path::Path> {
    static FILE: OnceLock<Option<std::path::PathBuf>> = OnceLock::new();
    FILE.get_or_init(|| std::env::var_os(CLOCK_OFFSET_FILE_ENV).map(Into::into)).as_deref()
}

/// The offset written in `text` (signed whole seconds); anything else is no offset.
pub fn parse_offset(text: &str) -> TimeDelta {
    text.trim().parse::<i64>().ok().and_then(TimeDelta::try_seconds).unwrap_or_default()
}

/// The current offset (zero unless a campaign set one).
pub fn offset() -> TimeDelta {
    offset_file().map(|f| parse_offset(&std::fs::read_to_string(f).unwrap_or_default())).unwrap_or_default()
}

/// Now, as the operator's decisions see it: the system clock plus [`offset`].
pub fn now() -> DateTime<Utc> {
    Utc::now() + offset()
}

/// Now, as RFC 3339 with second precision in UTC (`2026-11-25T21:39:55Z`).
pub fn now_rfc3339() -> String {
    now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_offset_is_signed_whole_seconds_and_anything_else_is_none() {
        assert_eq!(parse_offset("3600\n"), TimeDelta::hours(1));
        assert_eq!(parse_offset("-90"), TimeDelta::seconds(-90));
        for none in ["", "soon", "1.5", "99999999999999999999"] {
            assert_eq!(parse_offset(none), TimeDelta::zero(), "{none:?}");
        }
    }
}
