//! Status conditions in the Kubernetes convention: a list keyed by `type`,
//! where `lastTransitionTime` only moves when `status` changes.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Tri-state status of a condition.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum ConditionStatus {
    /// The condition holds.
    True,
    /// The condition does not hold.
    False,
    /// The condition could not be determined.
    Unknown,
}

impl From<bool> for ConditionStatus {
    /// A condition that was determined: it holds or it does not.
    fn from(holds: bool) -> Self {
        if holds { Self::True } else { Self::False }
    }
}

/// One observation about a resource, as in `metav1.Condition`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// Kind of condition (for example `Available`); the list key.
    #[serde(rename = "type")]
    pub type_: String,
    /// Whether the condition holds.
    pub status: ConditionStatus,
    /// Machine-readable CamelCase reason for the last transition.
    pub reason: String,
    /// Human-readable details.
    #[serde(default)]
    pub message: String,
    /// Generation of the spec this condition was computed from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// When `status` last changed (RFC 3339).
    pub last_transition_time: String,
}

impl Condition {
    /// A condition observed now; the transition time is fixed by [`merge_conditions`]. `status`
    /// is a [`ConditionStatus`], or a `bool` for one that was determined.
    pub fn new(
        type_: &str,
        status: impl Into<ConditionStatus>,
        reason: &str,
        message: impl Into<String>,
    ) -> Self {
        Self {
            type_: type_.to_owned(),
            status: status.into(),
            reason: reason.to_owned(),
            message: message.into(),
            observed_generation: None,
            last_transition_time: String::new(),
        }
    }

    /// Whether the condition holds.
    pub fn is_true(&self) -> bool {
        self.status == ConditionStatus::True
    }
}

/// Merges freshly computed conditions into the previous list.
///
/// Conditions of other types are kept (another component owns them); a
/// condition whose status is unchanged keeps its `lastTransitionTime`.
pub fn merge_conditions(previous: &[Condition], fresh: Vec<Condition>, now: &str) -> Vec<Condition> {
    let mut out: Vec<Condition> =
        previous.iter().filter(|old| !fresh.iter().any(|new| new.type_ == old.type_)).cloned().collect();
    for mut new in fresh {
        new.last_transition_time = match previous.iter().find(|old| old.type_ == new.type_) {
            Some(old) if old.status == new.status && !old.last_transition_time.is_empty() => {
                old.last_transition_time.clone()
            }
            _ => now.to_owned(),
        };
        out.push(new);
    }
    out.sort_by(|a, b| a.type_.cmp(&b.type_));
    out
}

/// Finds a condition by type.
pub fn find<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unchanged_status_keeps_transition_time() {
        let old = vec![Condition {
            last_transition_time: "2026-01-01T00:00:00Z".into(),
            ..Condition::new("Available", ConditionStatus::True, "QuorumHealthy", "")
        }];
        let fresh = vec![Condition::new("Available", ConditionStatus::True, "QuorumHealthy", "3/3")];
        let merged = merge_conditions(&old, fresh, "2026-02-02T00:00:00Z");
        assert_eq!(merged[0].last_transition_time, "2026-01-01T00:00:00Z");
        assert_eq!(merged[0].message, "3/3");
    }

    #[test]
    fn changed_status_moves_transition_time_and_others_are_kept() {
        let old = vec![
            Condition {
                last_transition_time: "2026-01-01T00:00:00Z".into(),
                ..Condition::new("Available", ConditionStatus::True, "QuorumHealthy", "")
            },
            Condition {
                last_transition_time: "2026-01-01T00:00:00Z".into(),
                ..Condition::new("BackupReady", ConditionStatus::True, "Done", "")
            },
        ];
        let fresh = vec![Condition::new("Available", ConditionStatus::False, "QuorumLost", "")];
        let merged = merge_conditions(&old, fresh, "2026-02-02T00:00:00Z");
        assert_eq!(merged.len(), 2);
        assert_eq!(find(&merged, "Available").unwrap().last_transition_time, "2026-02-02T00:00:00Z");
        assert!(find(&merged, "BackupReady").unwrap().is_true());
    }
}
