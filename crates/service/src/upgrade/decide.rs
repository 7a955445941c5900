//! The upgrade gate, pure: whether the cluster may move to `spec.version`
//! from what it runs. What it runs is every version in sight: the one the
//! StatefulSet's template carries (the spec last applied), each member's own
//! report, and etcd's cluster version. A change in the middle of an upgrade
//! is judged against all of them, so it can neither skip ahead of the slowest
//! member nor go back behind the fastest.

use etcd_operator_api::{
    Condition,
    cluster::CONDITION_UPGRADING,
    version::{
        EtcdVersion,
        upgrade::{StepRefusal, allowed_between, check_step},
    },
};
use etcd_operator_common::Violations;

use crate::observe::{EtcdView, PodState};

/// What the gate judges a target version against.
#[derive(Clone, Debug, Default)]
pub struct GateInputs<'a> {
    /// `spec.version`.
    pub target: &'a str,
    /// The version the StatefulSet's pod template runs, when it exists.
    pub applied: Option<&'a str>,
    /// Each member's name and the server version it reported.
    pub members: Vec<(&'a str, &'a str)>,
    /// etcd's cluster version (`3.4.0`: only major and minor count).
    pub cluster_version: Option<&'a str>,
    /// etcd's authentication is asked for.
    pub auth: bool,
}

/// Where a version in sight came from, for the refusal.
fn origin(v: EtcdVersion, i: &GateInputs<'_>) -> String {
    let is = |s: &str| EtcdVersion::parse(s).ok() == Some(v);
    match i.members.iter().find(|(_, version)| is(version)) {
        Some((member, _)) => format!("{member} runs"),
        None => "the StatefulSet runs".into(),
    }
}

/// Refuses a target that etcd cannot move to from every version the cluster runs; the violation
/// names `spec.version`, the rule and the versions allowed next.
pub fn gate(i: &GateInputs<'_>) -> Result<(), Violations> {
    // A malformed or unrunnable target is validate_spec's to name.
    let Ok(target) = EtcdVersion::parse(i.target) else { return Ok(()) };
    let mut running: Vec<EtcdVersion> = i
        .applied
        .iter()
        .chain(i.members.iter().map(|(_, v)| v))
        .filter_map(|s| EtcdVersion::parse(s).ok())
        .collect();
    // The lowest first: the refusal names the member furthest behind.
    running.sort();
    let (Some(lowest), Some(highest)) = (running.first().copied(), running.last().copied()) else {
        return Ok(());
    };
    let refusal = running
        .iter()
        .find_map(|from| check_step(*from, target, i.auth).err())
        .map(|r| (format!("{} {}", origin(r.from(), i), r.from()), r))
        .or_else(|| cluster_refusal(i.cluster_version, target));
    match refusal {
        None => Ok(()),
        Some((why, r)) => {
            let mut v = Violations::default();
            let allowed = allowed_between(lowest, highest, i.auth);
            v.push("spec.version", format!("{r} ({why}); allowed next: {allowed}"));
            Err(v)
        }
    }
}

/// etcd's cluster version moves only once every member runs the new minor: it bounds the minor
/// alone, never down and at most one up.
fn cluster_refusal(cluster: Option<&str>, target: EtcdVersion) -> Option<(String, StepRefusal)> {
    let cluster = EtcdVersion::parse(cluster?).ok()?;
    let from = EtcdVersion { patch: 0, ..cluster };
    let why = format!("etcd's cluster version is {}.{}", cluster.major, cluster.minor);
    if target.minor < cluster.minor {
        Some((why, StepRefusal::Downgrade { from, to: target }))
    } else if target.minor > cluster.minor + 1 {
        Some((why, StepRefusal::SkipsMinor { from, to: target }))
    } else {
        None
    }
}

/// What the Upgrading condition is computed from.
pub struct ProgressInputs<'a> {
    /// The version the StatefulSet's pod template runs (what the roll moves members to).
    pub target: &'a str,
    /// `spec.version` when the spec check passed (a refused one moves nothing), and why the
    /// rollout waits, if it does: a wanted version not in the template yet is pending.
    pub wanted: Option<(&'a str, Option<&'a str>)>,
    /// The member pods (each knows the version its spec was made for).
    pub pods: &'a [PodState],
    /// What etcd said.
    pub view: &'a EtcdView,
    /// The member the roll recorded as restarting, if any.
    pub restarting: Option<&'a str>,
}

/// The Upgrading condition: True while a member pod runs another version than the spec, or etcd's
/// cluster version is still the old minor; the message says how far, who is next, and which
/// member stopped the roll and why. `None` when it cannot be told (no cluster version yet with
/// every member moved): the condition as recorded stays.
pub fn upgrading(i: &ProgressInputs<'_>) -> Option<Condition> {
    if let Some((wanted, waits)) = i.wanted.filter(|(wanted, _)| *wanted != i.target) {
        // Not up to date on the old version: the status is of a spec that wants another one.
        let why = waits.map(|w| format!("; the roll waits: {w}")).unwrap_or_default();
        let message = format!("spec.version {wanted} is not rolled out yet (members run {}){why}", i.target);
        return Some(Condition::new(CONDITION_UPGRADING, true, "Pending", message));
    }
    let target = EtcdVersion::parse(i.target).ok()?;
    let live: Vec<&PodState> = i.pods.iter().filter(|p| !p.terminating).collect();
    let moved: Vec<&str> =
        live.iter().filter(|p| p.version.as_deref() == Some(i.target)).map(|p| p.name.as_str()).collect();
    let cluster = i.view.cluster_version.as_deref().and_then(|v| EtcdVersion::parse(v).ok());
    let progress = format!("{}/{} members run {}", moved.len(), live.len(), i.target);
    // A pod going (or gone) still counts as not moved: its successor is not there yet.
    let behind =
        i.pods.iter().any(|p| p.version.as_deref() != Some(i.target)) || live.len() < i.view.members.len();
    if behind {
        // A member on the new version that does not come back healthy stops the roll.
        let stuck =
            live.iter().filter(|p| moved.contains(&p.name.as_str())).find_map(|p| unhealthy(p, i.view));
        let (reason, detail) = match (stuck, i.restarting) {
            (Some(why), _) => ("MemberUnhealthy", format!("stopped: {why}; the roll waits for it")),
            (None, Some(member)) => ("RollingMembers", format!("restarting {member}")),
            (None, None) => ("RollingMembers", "next: followers first, the leader last".to_owned()),
        };
        return Some(Condition::new(CONDITION_UPGRADING, true, reason, format!("{progress}; {detail}")));
    }
    let cluster = cluster?;
    if (cluster.major, cluster.minor) < (target.major, target.minor) {
        let message = format!(
            "{progress}; waiting for etcd to report cluster version {}.{} (now {}.{})",
            target.major, target.minor, cluster.major, cluster.minor
        );
        return Some(Condition::new(CONDITION_UPGRADING, true, "AwaitingClusterVersion", message));
    }
    let message = format!("{progress}; etcd's cluster version is {}.{}", cluster.major, cluster.minor);
    Some(Condition::new(CONDITION_UPGRADING, false, "UpToDate", message))
}

/// Why a member pod is not a healthy member, if it is not.
fn unhealthy(pod: &PodState, view: &EtcdView) -> Option<String> {
    let member = view.members.iter().find(|m| m.name() == pod.name);
    match member.map(|m| &m.status) {
        None => Some(format!("{} is not a member yet", pod.name)),
        Some(Err(e)) => Some(format!("{} does not answer ({e})", pod.name)),
        Some(Ok(s)) if !s.errors.is_empty() => Some(format!("{} reports {}", pod.name, s.errors.join(", "))),
        Some(Ok(_)) if !pod.ready => Some(format!("{}'s pod is not ready", pod.name)),
        Some(Ok(_)) => None,
    }
}
