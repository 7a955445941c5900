//! What a checked workload does to etcd and the sequential specification it must match: a
//! register per key, read, written, deleted and compared-and-swapped (the end-to-end tests'
//! workload puts and gets; the fault campaign's does all four).

use std::collections::BTreeSet;

use porcupine_rs::{Model, Operation};
use serde::{Deserialize, Serialize};

/// One key-value operation and, where the client learnt it, its result.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum KvOp {
    /// A put of `value` (every value is written once in a run).
    Put { key: String, value: String },
    /// A linearizable get and what it returned.
    Get { key: String, value: Option<String> },
    /// A delete; `deleted` says whether a key was there (`None`: no answer).
    Delete { key: String, deleted: Option<bool> },
    /// A transaction: if the key holds `expected` (`None`: the key is absent) put `value`;
    /// `succeeded` is which branch ran (`None`: no answer).
    Cas { key: String, expected: Option<String>, value: String, succeeded: Option<bool> },
}

impl KvOp {
    /// The key it touches.
    pub fn key(&self) -> &str {
        match self {
            Self::Put { key, .. }
            | Self::Get { key, .. }
            | Self::Delete { key, .. }
            | Self::Cas { key, .. } => key,
        }
    }

    /// The value it may have written.
    pub fn written(&self) -> Option<&str> {
        match self {
            Self::Put { value, .. } | Self::Cas { value, succeeded: Some(true) | None, .. } => Some(value),
            _ => None,
        }
    }

    /// Whether it may change the store.
    pub fn is_write(&self) -> bool {
        !matches!(self, Self::Get { .. })
    }
}

/// A register per key: porcupine checks each key's operations on their own.
#[derive(Clone, Debug)]
pub struct KvModel;

impl Model for KvModel {
    type State = Option<String>;
    type Op = KvOp;
    type Metadata = ();

    fn partition_operations(history: &[Operation<Self>]) -> Vec<Vec<Operation<Self>>> {
        let keys: BTreeSet<&str> = history.iter().map(|o| o.op.key()).collect();
        keys.into_iter().map(|k| history.iter().filter(|o| o.op.key() == k).cloned().collect()).collect()
    }

    fn init() -> Self::State {
        None
    }

    fn step(state: &Self::State, op: &Self::Op) -> (bool, Self::State) {
        match op {
            KvOp::Put { value, .. } => (true, Some(value.clone())),
            KvOp::Get { value, .. } => (value == state, state.clone()),
            KvOp::Delete { deleted: Some(d), .. } => (*d == state.is_some(), None),
            KvOp::Delete { deleted: None, .. } => (true, None),
            KvOp::Cas { expected, value, succeeded, .. } => {
                let holds = expected == state;
                let next = if holds { Some(value.clone()) } else { state.clone() };
                (succeeded.is_none_or(|s| s == holds), next)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cas(expected: Option<&str>, succeeded: Option<bool>) -> KvOp {
        KvOp::Cas { key: "k".into(), expected: expected.map(Into::into), value: "n".into(), succeeded }
    }

    #[test]
    fn a_transaction_takes_the_branch_the_state_decides_and_an_unanswered_one_either() {
        let a = Some("a".to_owned());
        assert_eq!(KvModel::step(&a, &cas(Some("a"), Some(true))), (true, Some("n".into())));
        assert!(!KvModel::step(&a, &cas(Some("a"), Some(false))).0);
        assert_eq!(KvModel::step(&a, &cas(Some("b"), Some(false))), (true, a.clone()));
        assert!(!KvModel::step(&a, &cas(None, Some(true))).0);
        assert_eq!(KvModel::step(&None, &cas(None, None)), (true, Some("n".into())));
        assert_eq!(KvModel::step(&a, &cas(None, None)), (true, a.clone()));
    }

    #[test]
    fn a_delete_reports_whether_the_key_was_there() {
        let delete = |deleted| KvOp::Delete { key: "k".into(), deleted };
        assert_eq!(KvModel::step(&Some("a".into()), &delete(Some(true))), (true, None));
        assert!(!KvModel::step(&None, &delete(Some(true))).0);
        assert!(!KvModel::step(&Some("a".into()), &delete(Some(false))).0);
        assert_eq!(KvModel::step(&Some("a".into()), &delete(None)), (true, None));
    }
}
