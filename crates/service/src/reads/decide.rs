//! When a look may start from the watch cache instead of a read of the API server. Pure.
//!
//! The cache may lag the API server by a watch's latency. A look that starts from it must still
//! see (1) every write this process made or read before the look began, and (2) the generation
//! that brought the caller (a spec change its watch saw, which ours may not have yet). For (1)
//! the process remembers, per cluster, the newest version it read or wrote; resourceVersions
//! are opaque, so "newest" is known only by order: a read that began after the last one ended
//! is newer. Reads that overlap cannot be ordered, and then nothing is known until the next
//! read that overlaps none.

use std::time::Instant;

/// The newest version of a cluster this process has read or written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Known {
    /// Its resourceVersion; `None` when overlapping reads left it unknown.
    pub version: Option<String>,
    /// When the latest read or write ended.
    pub ended: Instant,
}

/// A read or write of the API server: its answer's resourceVersion, and when it began and ended.
#[derive(Clone, Copy, Debug)]
pub struct Read<'a> {
    /// The resourceVersion it answered.
    pub version: &'a str,
    /// When it was sent.
    pub began: Instant,
    /// When it was answered.
    pub ended: Instant,
}

/// What is known after `read`, given what was known before.
pub fn after(known: Option<&Known>, read: Read<'_>) -> Known {
    match known {
        // Began after the last one ended: the API server answered it later, so it is newer.
        None => Known { version: Some(read.version.into()), ended: read.ended },
        Some(k) if read.began > k.ended => Known { version: Some(read.version.into()), ended: read.ended },
        // Overlapping: either could be newer.
        Some(k) => Known { version: None, ended: k.ended.max(read.ended) },
    }
}

/// Whether the cluster as cached (`version`, `generation`) may start a look by a caller that saw
/// `seen_generation`: the cache holds the newest version this process knows, and the generation
/// the caller saw.
pub fn cache_answers(
    known: Option<&Known>,
    version: Option<&str>,
    generation: i64,
    seen_generation: i64,
) -> bool {
    let newest = matches!((known.and_then(|k| k.version.as_deref()), version), (Some(k), Some(v)) if k == v);
    newest && generation >= seen_generation
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn at(ms: u64, base: Instant) -> Instant {
        base + Duration::from_millis(ms)
    }

    #[test]
    fn a_read_after_the_last_one_ended_is_the_newest() {
        let t = Instant::now();
        let first = after(None, Read { version: "5", began: at(0, t), ended: at(10, t) });
        assert_eq!(first.version.as_deref(), Some("5"));
        let second = after(Some(&first), Read { version: "9", began: at(11, t), ended: at(20, t) });
        assert_eq!(second, Known { version: Some("9".into()), ended: at(20, t) });
    }

    #[test]
    fn overlapping_reads_leave_the_newest_unknown_until_one_overlaps_none() {
        let t = Instant::now();
        let write = after(None, Read { version: "7", began: at(0, t), ended: at(30, t) });
        // A read sent before the write was answered may have been answered before it or after.
        let read = after(Some(&write), Read { version: "6", began: at(5, t), ended: at(40, t) });
        assert_eq!(read, Known { version: None, ended: at(40, t) });
        assert!(!cache_answers(Some(&read), Some("6"), 1, 0));
        assert!(!cache_answers(Some(&read), Some("7"), 1, 0));
        let later = after(Some(&read), Read { version: "8", began: at(41, t), ended: at(50, t) });
        assert_eq!(later.version.as_deref(), Some("8"));
    }

    #[test]
    fn the_cache_answers_only_at_the_newest_known_version_and_the_callers_generation() {
        let t = Instant::now();
        let known = after(None, Read { version: "12", began: t, ended: t });
        assert!(cache_answers(Some(&known), Some("12"), 3, 3));
        assert!(cache_answers(Some(&known), Some("12"), 3, 0), "no generation seen");
        assert!(!cache_answers(Some(&known), Some("11"), 3, 3), "behind this process's own write");
        assert!(!cache_answers(Some(&known), Some("13"), 3, 3), "another writer's: read it");
        assert!(!cache_answers(Some(&known), Some("12"), 3, 4), "the caller saw a newer spec");
        assert!(!cache_answers(None, Some("12"), 3, 0), "nothing read or written here yet");
        assert!(!cache_answers(Some(&known), None, 3, 0));
    }
}
