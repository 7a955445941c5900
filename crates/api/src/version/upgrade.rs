//! Which version changes etcd supports on a running cluster, as data: the
//! minimum patch each minor must reach before the next minor, each with its
//! source. The admission rules (CEL) and the service's gate are both built
//! from this table, so they cannot disagree.
//!
//! etcd supports a patch change, and a move up by one minor from a recent
//! enough patch; never a skipped minor. A downgrade is refused: etcd before
//! 3.6 has none, and 3.6's online downgrade (`etcdctl downgrade enable`) is
//! not offered.

use std::fmt;

use kube::core::{Message, Rule};

use super::EtcdVersion;

/// The step from one minor to the next and what it needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MinorStep {
    /// The minor being left (3.`from_minor`).
    pub from_minor: u64,
    /// The lowest patch of that minor that may move to the next minor.
    pub min_patch: u64,
    /// Whether a cluster with etcd's authentication on may take the step as a rolling upgrade.
    pub with_auth: bool,
    /// Where the rule comes from, and when it was read.
    pub source: &'static str,
}

/// Every supported minor step.
pub const MINOR_STEPS: &[MinorStep] = &[
    MinorStep {
        from_minor: 4,
        // etcd names no 3.4 patch for this step beyond "the most recent patch"; 3.4.22 is the
        // oldest 3.4 it recommends for production (data inconsistency fixes).
        min_patch: 22,
        // 3.5 changed the WAL format of auth entries: "rolling upgrade from 3.4 or older version
        // isn't supported" with auth on.
        with_auth: false,
        source: "etcd.io/docs/v3.5/upgrades/upgrade_3_5 and CHANGELOG/README.md (production minimum \
                 3.4.22+), read 2026-11-30",
    },
    MinorStep {
        from_minor: 5,
        // 3.5.1-3.5.19 can turn voters into learners on the way to 3.6 (etcd-io/etcd#19557, fixed
        // in 3.5.20, blog 2025-03-27); 3.5.24-3.5.26 fix further upgrade blockers (guide, read
        // 2026-11-30); k3s-io/k3s#14908 quotes the current guide asking 3.5.32.
        min_patch: 32,
        with_auth: true,
        source: "etcd.io/docs/latest/upgrades/upgrade_3_6 (3.5.26+, read 2026-11-30), \
                 etcd.io/blog/2025/upgrade_from_3.5_to_3.6_issue (3.5.20+), k3s-io/k3s#14908 (3.5.32+)",
    },
];

/// Why a version change is refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StepRefusal {
    /// To a lower version.
    Downgrade { from: EtcdVersion, to: EtcdVersion },
    /// Over a minor.
    SkipsMinor { from: EtcdVersion, to: EtcdVersion },
    /// To the next minor from a patch below the step's minimum.
    BelowMinimum { from: EtcdVersion, to: EtcdVersion, min: EtcdVersion },
    /// To the next minor with etcd's authentication on, which the step does not support.
    WithAuth { from: EtcdVersion, to: EtcdVersion },
}

impl StepRefusal {
    /// The version the refused change starts from.
    pub fn from(&self) -> EtcdVersion {
        match self {
            Self::Downgrade { from, .. }
            | Self::SkipsMinor { from, .. }
            | Self::BelowMinimum { from, .. }
            | Self::WithAuth { from, .. } => *from,
        }
    }
}

impl fmt::Display for StepRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Downgrade { from, to } => write!(f, "{from} → {to} is a downgrade, which is refused"),
            Self::SkipsMinor { from, to } => {
                write!(f, "{from} → {to} skips a minor version; etcd upgrades one minor at a time")
            }
            Self::BelowMinimum { from, to, min } => write!(
                f,
                "{from} → {to} needs {min} or later first (older {}.{} patches can fail the upgrade)",
                from.major, from.minor
            ),
            Self::WithAuth { from, to } => write!(
                f,
                "{from} → {to} is not supported as a rolling upgrade with etcd's authentication on \
                 (the auth records' format changed)"
            ),
        }
    }
}

/// The step from `from`'s minor, if etcd supports one.
pub fn minor_step(from_minor: u64) -> Option<&'static MinorStep> {
    MINOR_STEPS.iter().find(|s| s.from_minor == from_minor)
}

/// Whether a running `from` may move to `to` (`auth`: etcd's authentication is on).
pub fn check_step(from: EtcdVersion, to: EtcdVersion, auth: bool) -> Result<(), StepRefusal> {
    if to < from {
        return Err(StepRefusal::Downgrade { from, to });
    }
    if to.major != from.major || to.minor > from.minor + 1 {
        return Err(StepRefusal::SkipsMinor { from, to });
    }
    if to.minor == from.minor + 1 {
        let Some(step) = minor_step(from.minor) else {
            return Err(StepRefusal::SkipsMinor { from, to });
        };
        if from.patch < step.min_patch {
            let min = EtcdVersion { patch: step.min_patch, ..from };
            return Err(StepRefusal::BelowMinimum { from, to, min });
        }
        if auth && !step.with_auth {
            return Err(StepRefusal::WithAuth { from, to });
        }
    }
    Ok(())
}

/// The versions `from` may move to, in words: `3.4.23 or a later 3.4 patch, or 3.5.3 or later`.
pub fn allowed_next(from: EtcdVersion, auth: bool) -> String {
    allowed_between(from, from, auth)
}

/// The versions a cluster whose members run `lowest` to `highest` may move to: no lower than the
/// highest, and the next minor only when every member may take that step.
pub fn allowed_between(lowest: EtcdVersion, highest: EtcdVersion, auth: bool) -> String {
    let same = format!("{highest} or a later {}.{} patch", highest.major, highest.minor);
    if lowest.minor != highest.minor {
        return format!(
            "{same} (members still run {lowest}: the upgrade to {}.{} finishes first)",
            highest.major, highest.minor
        );
    }
    let next = EtcdVersion { minor: highest.minor + 1, patch: 0, ..highest };
    match minor_step(lowest.minor) {
        Some(step) if lowest.patch < step.min_patch => format!(
            "{same} ({}.{}.{} or later before {}.{})",
            lowest.major, lowest.minor, step.min_patch, next.major, next.minor
        ),
        Some(step) if auth && !step.with_auth => {
            format!("{same} ({}.{} only with spec.auth off)", next.major, next.minor)
        }
        Some(_) => {
            // The first patch of the next minor that may run at all.
            let first = (0..)
                .map(|patch| EtcdVersion { patch, ..next })
                .find(|v| !v.is_data_loss_release())
                .unwrap_or(next);
            format!("{same}, or {first} or later")
        }
        None => same,
    }
}

/// CEL over `self`/`oldSelf` (version strings the pattern admitted): the minor and patch.
fn part(side: &str, i: usize) -> String {
    format!("int({side}.split('.')[{i}])")
}

/// The rule's guard: either side malformed is left to the pattern rule.
fn well_formed() -> String {
    let p = super::VERSION_PATTERN.replace('\\', "\\\\");
    format!("!self.matches('{p}') || !oldSelf.matches('{p}')")
}

/// `'spec.version: <old> → <new> '` in CEL.
const CHANGE: &str = "'spec.version: ' + oldSelf + ' → ' + self + ' '";

/// Admission rules on `spec.version` (transition rules: they compare with the stored spec; the
/// service also compares with what the members run).
pub fn version_rules() -> Vec<Rule> {
    let (m, om, p, op) = (part("self", 1), part("oldSelf", 1), part("self", 2), part("oldSelf", 2));
    let guard = well_formed();
    let downgrade = Rule::new(format!("{guard} || {m} > {om} || ({m} == {om} && {p} >= {op})")).message(
        Message::Expression(format!(
            "{CHANGE} + 'is a downgrade, which is refused; allowed next: ' + oldSelf + ' or a later patch, or the next minor'"
        )),
    );
    let skip = Rule::new(format!("{guard} || {m} <= {om} + 1")).message(Message::Expression(format!(
        "{CHANGE} + 'skips a minor version; etcd upgrades one minor at a time: move to 3.' + string({om} + 1) + ' first'"
    )));
    let minimums: Vec<String> = MINOR_STEPS
        .iter()
        .map(|s| format!("({om} == {} && {op} >= {})", s.from_minor, s.min_patch))
        .collect();
    let table: Vec<String> =
        MINOR_STEPS.iter().map(|s| format!("{}: {}", s.from_minor, s.min_patch)).collect();
    let minimum = Rule::new(format!("{guard} || {m} != {om} + 1 || {}", minimums.join(" || "))).message(
        Message::Expression(format!(
            "{CHANGE} + ({om} in {{{table}}} ? 'needs 3.' + string({om}) + '.' + string({{{table}}}[{om}]) + ' or later first; move to that patch, then to ' + self : 'is not a supported step')",
            table = table.join(", ")
        )),
    );
    vec![downgrade, skip, minimum]
}

/// Admission rule over the spec: no minor step that does not support auth while it is on.
pub fn auth_rule() -> Rule {
    let refused: Vec<&MinorStep> = MINOR_STEPS.iter().filter(|s| !s.with_auth).collect();
    let changes: Vec<String> = refused
        .iter()
        .map(|s| {
            let (from, to) = (s.from_minor, s.from_minor + 1);
            format!("(oldSelf.version.startsWith('3.{from}.') && self.version.startsWith('3.{to}.'))")
        })
        .collect();
    let rule = match changes.is_empty() {
        true => "true".to_owned(),
        false => format!("!has(self.auth) || !self.auth.enabled || !({})", changes.join(" || ")),
    };
    let steps: Vec<String> =
        refused.iter().map(|s| format!("3.{} → 3.{}", s.from_minor, s.from_minor + 1)).collect();
    let message = format!(
        "spec.version: {} is not supported as a rolling upgrade with spec.auth.enabled (etcd changed \
         the format of its auth records); turn auth off, upgrade, then turn it on",
        steps.join(", ")
    );
    Rule::new(rule).message(message.as_str()).field_path(".version")
}

#[cfg(test)]
mod tests;
