//! The recovery's plan once a source is chosen: the operation to record and
//! the message that tells the user what is done and what is lost. Pure.

use etcd_operator_api::cluster::OperationStatus;

use super::{SourceChoice, step};
use crate::operation::OperationType;

/// What the plan is written from.
pub struct PlanInputs<'a> {
    /// The chosen source.
    pub choice: SourceChoice,
    /// When the member that broke the majority stopped answering.
    pub since: &'a str,
    /// The members that are down.
    pub down: &'a [String],
    /// `spec.recovery.quorumLossGracePeriod`.
    pub grace: &'a str,
    /// What corroborated the loss.
    pub evidence: &'a str,
    /// The newest verified backup's revision and when it was taken, if there is one.
    pub backup: Option<(Option<i64>, Option<&'a str>)>,
    /// Members to recreate.
    pub target: i32,
    /// Now, RFC 3339.
    pub now: &'a str,
}

/// The operation to record and the Event's message, or the refusal (nothing is changed).
pub fn plan(i: PlanInputs<'_>) -> Result<(OperationStatus, String), String> {
    let head = format!(
        "quorum lost since {} ({} down, longer than spec.recovery.quorumLossGracePeriod {}; {})",
        i.since,
        i.down.join(", "),
        i.grace,
        i.evidence
    );
    let mut op = OperationStatus {
        target: Some(i.target),
        ..OperationStatus::at_step(OperationType::RecoverQuorum, step::STOPPING_MEMBERS, None, i.now)
    };
    let msg = match i.choice {
        SourceChoice::Survivor { member, revision } => {
            op.step = step::SAVING_SURVIVOR.into();
            op.member = Some(member.clone());
            format!(
                "{head}: saving the data of {member} (revision {revision}, the most advanced member that answers), \
                 then recreating the cluster from it; writes only the members that are down held are lost"
            )
        }
        SourceChoice::Backup { name, save } => {
            let (revision, taken_at) =
                i.backup.ok_or_else(|| "the chosen backup is not verified".to_owned())?;
            if let Some(member) = &save {
                op.step = step::SAVING_SURVIVOR.into();
                op.member = Some(member.clone());
            }
            op.backup_name = Some(name.clone());
            // Chosen only when no member that answers is as new as it: what is lost is every
            // write after its revision that only the members that are down held.
            format!(
                "{head}: recreating the cluster from EtcdBackup {name} (revision {}, taken {}, sha256 verified), \
                 as accepted by annotation{}; writes after it are lost",
                revision.map_or_else(|| "unknown".into(), |v| v.to_string()),
                taken_at.unwrap_or("at an unknown time"),
                save.map_or_else(String::new, |m| format!(" (the data of {m} is saved first)")),
            )
        }
        SourceChoice::NeedsAcceptance(why) | SourceChoice::Refuse(why) => {
            return Err(format!(
                "{head} and spec.recovery.restoreOnQuorumLoss is on, but {why}; nothing was changed"
            ));
        }
    };
    Ok((op, msg))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs(choice: SourceChoice) -> PlanInputs<'static> {
        static DOWN: std::sync::LazyLock<Vec<String>> =
            std::sync::LazyLock::new(|| vec!["demo-1".into(), "demo-2".into()]);
        PlanInputs {
            choice,
            since: "2026-11-29T10:00:00Z",
            down: &DOWN,
            grace: "10m",
            evidence: "2 of 3 pods not ready",
            backup: Some((Some(40), Some("2026-11-29T09:00:00Z"))),
            target: 3,
            now: "2026-11-29T10:11:00Z",
        }
    }

    #[test]
    fn the_message_says_what_is_done_and_what_is_lost() {
        let survivor = SourceChoice::Survivor { member: "demo-0".into(), revision: 42 };
        let (op, msg) = plan(inputs(survivor)).unwrap();
        assert_eq!(
            (op.step.as_str(), op.member.as_deref(), op.target),
            (step::SAVING_SURVIVOR, Some("demo-0"), Some(3))
        );
        assert!(msg.starts_with("quorum lost since 2026-11-29T10:00:00Z (demo-1, demo-2 down"), "{msg}");
        assert!(
            msg.contains("revision 42")
                && msg.contains("writes only the members that are down held are lost"),
            "{msg}"
        );

        let backup = SourceChoice::Backup { name: "nightly".into(), save: None };
        let (op, msg) = plan(inputs(backup)).unwrap();
        assert_eq!((op.step.as_str(), op.backup_name.as_deref()), (step::STOPPING_MEMBERS, Some("nightly")));
        assert!(msg.contains("EtcdBackup nightly (revision 40, taken 2026-11-29T09:00:00Z"), "{msg}");
        assert!(msg.ends_with("writes after it are lost"), "{msg}");

        let refused = plan(inputs(SourceChoice::NeedsAcceptance("run: kubectl annotate ...".into())));
        assert!(
            matches!(refused, Err(m) if m.contains("kubectl annotate") && m.ends_with("nothing was changed"))
        );
    }
}
