//! Whether a quorum loss seen from the operator is real. The operator's own
//! status calls travel one network path; when that path is cut (a
//! NetworkPolicy, DNS, the operator's node) every member looks down while the
//! cluster serves its clients. A destructive recovery therefore needs
//! corroboration that does not travel that path: the kubelet's view of the
//! member pods, and what the members that do answer say about a leader. Pure.

use etcd_operator_api::cluster::MemberStatus;

use crate::observe::{EtcdState, Observation, PodState};

/// What the corroboration looks at.
pub struct Evidence<'a> {
    /// Names of the voting members.
    pub voters: &'a [String],
    /// The member pods as their kubelet reports them; `None` when they could not be listed.
    pub pods: Option<&'a [PodState]>,
    /// Members that answered and named a leader: (member, leader ID in hex).
    pub leaders_reported: &'a [(String, String)],
}

/// `Ok(evidence)` when everything agrees that a majority is gone; `Err(why not)` naming what
/// contradicts it.
pub fn corroborate(e: &Evidence<'_>) -> Result<String, String> {
    if let Some((member, leader)) = e.leaders_reported.first() {
        return Err(format!(
            "{member} reports leader {leader}: the cluster has a leader, and what the operator cannot reach is \
             its own path to the other members; nothing is changed"
        ));
    }
    let Some(pods) = e.pods else {
        return Err(
            "the member pods could not be listed: the kubelet's view is unknown, and a loss seen only \
             by the operator is not acted on; nothing is changed"
                .into(),
        );
    };
    let pod = |name: &str| pods.iter().find(|p| p.name == name);
    let ready: Vec<&str> =
        e.voters.iter().map(String::as_str).filter(|v| pod(v).is_some_and(|p| p.ready)).collect();
    let quorum = e.voters.len() / 2 + 1;
    if !e.voters.is_empty() && ready.len() >= quorum {
        return Err(format!(
            "the members cannot be reached from the operator, but the kubelet reports {} of {} member pods \
             Ready ({}): their readiness probe needs a leader, so the cluster serves and the operator's path to \
             it is cut; nothing is changed",
            ready.len(),
            e.voters.len(),
            ready.join(", ")
        ));
    }
    let states: Vec<String> = e
        .voters
        .iter()
        .map(|v| match pod(v) {
            None => format!("{v}: no pod"),
            Some(p) if p.ready => format!("{v}: Ready"),
            Some(p) => format!(
                "{v}: not Ready, etcd {}, {} restarts",
                if p.running { "running" } else { "not running" },
                p.restarts
            ),
        })
        .collect();
    Ok(format!("the kubelet agrees ({}) and no member that answers reports a leader", states.join("; ")))
}

/// Corroborates a loss from one observation and the members derived from it.
pub fn corroborate_observation(
    observation: &Observation,
    members: &[MemberStatus],
) -> Result<String, String> {
    let voters: Vec<String> = members.iter().filter(|m| !m.is_learner).map(|m| m.name.clone()).collect();
    let leaders_reported: Vec<(String, String)> = match &observation.etcd {
        EtcdState::Reached(view) => view
            .members
            .iter()
            .filter_map(|m| m.status.as_ref().ok().filter(|s| s.leader != 0).map(|s| (m.name(), s.leader)))
            .map(|(name, leader)| (name, format!("{leader:x}")))
            .collect(),
        _ => Vec::new(),
    };
    corroborate(&Evidence {
        voters: &voters,
        pods: observation.pods.as_deref(),
        leaders_reported: &leaders_reported,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(name: &str, ready: bool, running: bool) -> PodState {
        PodState { name: name.into(), ready, running, restarts: 2, ..PodState::default() }
    }

    fn voters() -> Vec<String> {
        ["demo-0", "demo-1", "demo-2"].map(String::from).to_vec()
    }

    #[test]
    fn a_majority_of_ready_pods_contradicts_a_loss_seen_only_by_the_operator() {
        let pods = [pod("demo-0", true, true), pod("demo-1", true, true), pod("demo-2", false, true)];
        let why = corroborate(&Evidence { voters: &voters(), pods: Some(&pods), leaders_reported: &[] })
            .unwrap_err();
        assert!(why.contains("2 of 3 member pods Ready (demo-0, demo-1)"), "{why}");
        assert!(why.contains("cannot be reached from the operator"), "{why}");
    }

    #[test]
    fn a_member_naming_a_leader_contradicts_a_loss() {
        let pods = [pod("demo-0", false, true)];
        let leaders = [("demo-0".to_owned(), "8e9e05c52164694d".to_owned())];
        let why = corroborate(&Evidence { voters: &voters(), pods: Some(&pods), leaders_reported: &leaders })
            .unwrap_err();
        assert!(why.contains("demo-0 reports leader 8e9e05c52164694d"), "{why}");
    }

    #[test]
    fn a_real_loss_is_corroborated_naming_each_pod() {
        let pods = [pod("demo-0", true, true), pod("demo-1", false, false)];
        let ok =
            corroborate(&Evidence { voters: &voters(), pods: Some(&pods), leaders_reported: &[] }).unwrap();
        assert!(
            ok.contains("demo-0: Ready; demo-1: not Ready, etcd not running, 2 restarts; demo-2: no pod"),
            "{ok}"
        );
    }

    #[test]
    fn pods_that_could_not_be_listed_corroborate_nothing_and_no_pods_at_all_do() {
        let why =
            corroborate(&Evidence { voters: &voters(), pods: None, leaders_reported: &[] }).unwrap_err();
        assert!(why.contains("could not be listed"), "{why}");
        assert!(corroborate(&Evidence { voters: &voters(), pods: Some(&[]), leaders_reported: &[] }).is_ok());
    }
}
