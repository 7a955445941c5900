//! The project's own register check, from the revisions in etcd's answers. It needs no search,
//! so it judges every history porcupine may time out on, and it names the operation at fault.
//!
//! - every value read was written by some client;
//! - an operation called after another had returned is served at the same or a later revision
//!   (etcd's revision is its linearization order);
//! - a read sees the latest acknowledged change of its key at the revision it was served at,
//!   and its value is the one written at its `mod_revision`.

use std::collections::{BTreeMap, BTreeSet};

use super::Anomaly;
use crate::{history::Record, model::KvOp};

/// Anomalies of the register clients' records.
pub fn check(records: &[Record]) -> Vec<Anomaly> {
    let mut found = never_written(records);
    found.extend(real_time_order(records));
    found.extend(reads_match_writes(records));
    found
}

fn never_written(records: &[Record]) -> Vec<Anomaly> {
    let written: BTreeSet<&str> = records.iter().filter_map(|r| r.op.written()).collect();
    records
        .iter()
        .filter_map(|r| match &r.op {
            KvOp::Get { key, value: Some(v) } if !written.contains(v.as_str()) => {
                Some(Anomaly::NeverWritten { client: r.client, key: key.clone(), value: v.clone() })
            }
            _ => None,
        })
        .collect()
}

/// No operation is served at a revision older than one that returned before it was called.
fn real_time_order(records: &[Record]) -> Vec<Anomaly> {
    let mut done: Vec<(i64, i64)> =
        records.iter().filter_map(|r| Some((r.ret?, r.revision?))).collect::<Vec<_>>();
    done.sort_unstable();
    let mut calls: Vec<&Record> =
        records.iter().filter(|r| r.ret.is_some() && r.revision.is_some()).collect();
    calls.sort_by_key(|r| r.call);
    let (mut next, mut newest) = (0, i64::MIN);
    let mut found = Vec::new();
    for r in calls {
        while next < done.len() && done[next].0 < r.call {
            newest = newest.max(done[next].1);
            next += 1;
        }
        let revision = r.revision.unwrap_or_default();
        if revision < newest {
            found.push(Anomaly::StaleRead {
                client: r.client,
                key: r.op.key().to_owned(),
                revision,
                newer: newest,
            });
        }
    }
    found
}

/// What acknowledged changes did to one key: revision → the value put (`None`: deleted).
type Changes<'a> = BTreeMap<i64, Option<&'a str>>;

fn reads_match_writes(records: &[Record]) -> Vec<Anomaly> {
    let mut by_key: BTreeMap<&str, Changes<'_>> = BTreeMap::new();
    for r in records.iter().filter(|r| r.changed_store()) {
        let Some(revision) = r.revision else { continue };
        by_key.entry(r.op.key()).or_default().insert(revision, r.op.written());
    }
    // A delete without an answer may have happened at any revision after it was sent.
    let maybe_deleted: BTreeSet<&str> = records
        .iter()
        .filter(|r| r.ret.is_none() && matches!(r.op, KvOp::Delete { .. }))
        .map(|r| r.op.key())
        .collect();
    let mut found = Vec::new();
    for r in records {
        let (KvOp::Get { key, value }, Some(at)) = (&r.op, r.revision) else { continue };
        let changes = by_key.get(key.as_str());
        let latest = changes.and_then(|c| c.range(..=at).next_back());
        let stale =
            |newer: i64| Anomaly::StaleRead { client: r.client, key: key.clone(), revision: at, newer };
        match (value, r.mod_revision, latest) {
            // Read a value: no acknowledged change of the key after it, up to where it was served.
            (Some(v), Some(m), latest) => {
                if let Some((&newer, _)) = latest.filter(|(rev, _)| **rev > m) {
                    found.push(stale(newer));
                }
                let at_m = changes.and_then(|c| c.get(&m));
                if at_m.is_some_and(|w| *w != Some(v.as_str())) {
                    found.push(Anomaly::WrongValue { client: r.client, key: key.clone(), revision: m });
                }
            }
            // Read nothing: the latest acknowledged change, if any, deleted it (or one unanswered might have).
            (None, _, Some((&newer, Some(_)))) if !maybe_deleted.contains(key.as_str()) => {
                found.push(stale(newer))
            }
            _ => {}
        }
    }
    found
}
