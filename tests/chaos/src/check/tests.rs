//! The checker is proven on planted anomalies: each check must catch what it is for, and pass
//! a clean history of the same shape.

use std::{collections::BTreeSet, time::Duration};

use super::*;
use crate::{
    history::{History, Record, WatchEvent, WatchLog},
    model::KvOp,
};

const K: &str = "chaos/reg/0";

fn rec(
    client: u32,
    call: i64,
    ret: Option<i64>,
    op: KvOp,
    revision: i64,
    mod_revision: Option<i64>,
) -> Record {
    Record { client, member: format!("m{client}"), call, ret, op, revision: Some(revision), mod_revision }
}

fn put(v: &str) -> KvOp {
    KvOp::Put { key: K.into(), value: v.into() }
}

fn get(v: Option<&str>) -> KvOp {
    KvOp::Get { key: K.into(), value: v.map(Into::into) }
}

/// Two puts and reads that see each in turn, with a watcher that saw both.
fn clean() -> History {
    History {
        records: vec![
            rec(0, 0, Some(10), put("a"), 5, None),
            rec(1, 20, Some(30), get(Some("a")), 5, Some(5)),
            rec(0, 40, Some(50), put("b"), 6, None),
            rec(1, 60, Some(70), get(Some("b")), 6, Some(6)),
        ],
        acked: vec!["chaos/ack/0".into()],
        watches: vec![WatchLog {
            start: 5,
            end: 6,
            events: vec![
                WatchEvent { revision: 5, key: K.into(), value: Some("a".into()) },
                WatchEvent { revision: 6, key: K.into(), value: Some("b".into()) },
            ],
            compacted: vec![],
            resumed: 0,
        }],
        end: 6,
    }
}

fn found(h: &History) -> Vec<Anomaly> {
    history(h, Duration::from_secs(10), None)
}

#[test]
fn a_clean_history_passes_every_check() {
    assert_eq!(found(&clean()), vec![]);
    let present: BTreeSet<String> = ["chaos/ack/0".to_owned()].into();
    assert_eq!(lost_writes(&clean().acked, &present), vec![]);
}

#[test]
fn a_stale_read_is_caught_by_porcupine_and_by_the_revisions() {
    let mut h = clean();
    // Called after put("b") returned, served at the revision before it.
    h.records[3] = rec(1, 60, Some(70), get(Some("a")), 5, Some(5));
    let f = found(&h);
    assert!(f.contains(&Anomaly::StaleRead { client: 1, key: K.into(), revision: 5, newer: 6 }), "{f:?}");
    assert!(f.contains(&Anomaly::NotLinearizable { keys: vec![K.into()] }), "{f:?}");
    // A stale read whose header revision was bumped by an unrelated key is still caught: it
    // missed the acknowledged change of its own key.
    h.records[3] = rec(1, 60, Some(70), get(Some("a")), 9, Some(5));
    let f = register::check(&h.records);
    assert_eq!(f, vec![Anomaly::StaleRead { client: 1, key: K.into(), revision: 9, newer: 6 }]);
}

#[test]
fn a_lost_acknowledged_write_is_caught() {
    let present = BTreeSet::new();
    assert_eq!(lost_writes(&clean().acked, &present), vec![Anomaly::LostWrite { key: "chaos/ack/0".into() }]);
}

#[test]
fn a_read_of_a_value_never_written_is_caught() {
    let mut h = clean();
    h.records[3] = rec(1, 60, Some(70), get(Some("z")), 6, Some(6));
    let f = found(&h);
    assert!(f.contains(&Anomaly::NeverWritten { client: 1, key: K.into(), value: "z".into() }), "{f:?}");
    assert!(f.contains(&Anomaly::WrongValue { client: 1, key: K.into(), revision: 6 }), "{f:?}");
    assert!(f.contains(&Anomaly::NotLinearizable { keys: vec![K.into()] }), "{f:?}");
}

#[test]
fn a_watch_gap_is_caught_unless_the_range_was_compacted() {
    let mut h = clean();
    h.watches[0].events.remove(0);
    assert_eq!(found(&h), vec![Anomaly::WatchGap { watcher: 0, revision: 5, key: K.into() }]);
    // A member said revision 5 was compacted when the watch resumed: nothing to judge there.
    h.watches[0].compacted.push((5, 5));
    assert_eq!(found(&h), vec![]);
}

#[test]
fn a_watch_out_of_order_or_showing_a_write_never_made_is_caught() {
    let mut h = clean();
    h.watches[0].events.swap(0, 1);
    assert_eq!(found(&h), vec![Anomaly::WatchOutOfOrder { watcher: 0, after: 6, got: 5 }]);
    let mut h = clean();
    h.watches[0].end = 7;
    h.watches[0].events.push(WatchEvent { revision: 7, key: K.into(), value: Some("ghost".into()) });
    assert_eq!(found(&h), vec![Anomaly::WatchPhantom { watcher: 0, revision: 7, key: K.into() }]);
}

#[test]
fn an_unanswered_write_may_land_late_or_never() {
    let mut h = clean();
    // Sent, never answered, seen later by a read: it took effect after it was sent.
    h.records.insert(0, Record { ret: None, revision: None, ..rec(2, 1, None, put("late"), 0, None) });
    h.records.push(rec(1, 80, Some(90), get(Some("late")), 7, Some(7)));
    h.watches[0].end = 7;
    h.watches[0].events.push(WatchEvent { revision: 7, key: K.into(), value: Some("late".into()) });
    assert_eq!(found(&h), vec![]);
    // Never seen by anyone and the watch saw everything: it never happened, and it is dropped.
    let mut h = clean();
    h.records.insert(0, Record { ret: None, revision: None, ..rec(2, 1, None, put("never"), 0, None) });
    assert_eq!(h.operations().len(), 4);
    assert_eq!(found(&h), vec![]);
    // Unless the watch stopped short of the end: then it may still land, and it stays.
    h.end = 9;
    assert_eq!(h.operations().len(), 5);
}
