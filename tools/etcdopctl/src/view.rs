//! What the tool prints: the API's status as JSON/YAML documents and as tables.

use comfy_table::{Table, presets::NOTHING};
use etcd_operator_proto::v1alpha1 as pb;
use serde::Serialize;

use crate::cli::Output;
use crate::error::CliError;

/// One cluster as printed.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterView {
    pub namespace: String,
    pub name: String,
    pub phase: String,
    pub ready_members: i32,
    pub current_size: i32,
    pub desired_size: i32,
    /// The spec's generation, and the one the status was computed from.
    pub generation: i64,
    pub observed_generation: i64,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub version: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub cluster_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operation: Option<OperationView>,
    pub members: Vec<MemberView>,
    pub conditions: Vec<ConditionView>,
}

/// The operation in progress.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OperationView {
    #[serde(rename = "type")]
    pub type_: String,
    pub step: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub member: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<i32>,
    pub started_at: String,
}

/// One member.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MemberView {
    pub name: String,
    pub id: String,
    pub role: String,
    pub healthy: bool,
    pub db_size_bytes: i64,
    pub revision: i64,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub version: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub alarms: Vec<String>,
}

/// One condition.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConditionView {
    #[serde(rename = "type")]
    pub type_: String,
    pub status: String,
    pub reason: String,
    pub message: String,
    pub last_transition_time: String,
    /// The spec's generation it was computed from.
    pub observed_generation: i64,
}

impl From<&pb::ClusterStatus> for ClusterView {
    fn from(s: &pb::ClusterStatus) -> Self {
        let r = s.cluster.clone().unwrap_or_default();
        Self {
            namespace: r.namespace,
            name: r.name,
            phase: s.phase.clone(),
            ready_members: s.ready_members,
            current_size: s.current_size,
            desired_size: s.desired_size,
            generation: s.generation,
            observed_generation: s.observed_generation,
            version: s.current_version.clone(),
            cluster_id: s.cluster_id.clone(),
            operation: s.operation.as_ref().map(|o| OperationView {
                type_: o.r#type.clone(),
                step: o.step.clone(),
                member: o.member.clone(),
                target: o.target,
                started_at: o.started_at.clone(),
            }),
            members: s.members.iter().map(member).collect(),
            conditions: s
                .conditions
                .iter()
                .map(|c| ConditionView {
                    type_: c.r#type.clone(),
                    status: condition_status(c.status).into(),
                    reason: c.reason.clone(),
                    message: c.message.clone(),
                    last_transition_time: c.last_transition_time.clone(),
                    observed_generation: c.observed_generation,
                })
                .collect(),
        }
    }
}

fn member(m: &pb::Member) -> MemberView {
    let role = match (m.is_leader, m.is_learner) {
        (true, _) => "leader",
        (_, true) => "learner",
        _ => "follower",
    };
    MemberView {
        name: m.name.clone(),
        id: m.id.clone(),
        role: role.into(),
        healthy: m.healthy,
        db_size_bytes: m.db_size_bytes,
        revision: m.revision,
        version: m.version.clone(),
        alarms: m.alarms.clone(),
    }
}

fn condition_status(s: i32) -> &'static str {
    match pb::ConditionStatus::try_from(s) {
        Ok(pb::ConditionStatus::True) => "True",
        Ok(pb::ConditionStatus::False) => "False",
        _ => "Unknown",
    }
}

impl OperationView {
    /// `ScaleUp AddingLearner demo-3`.
    pub fn line(&self) -> String {
        let mut line = format!("{} {}", self.type_, self.step);
        if let Some(m) = &self.member {
            line = format!("{line} {m}");
        }
        line
    }
}

fn table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_preset(NOTHING).set_header(header.iter().copied());
    t
}

/// The table as text: columns two spaces apart, no margin, no trailing spaces.
pub(crate) fn rendered(t: &Table) -> String {
    let lines: Vec<String> =
        t.lines().map(|l| l.strip_prefix(' ').unwrap_or(&l).trim_end().to_owned()).collect();
    lines.join("\n") + "\n"
}

/// The table of `list`.
pub fn list_table(clusters: &[ClusterView]) -> String {
    let mut t = table(&["NAMESPACE", "NAME", "PHASE", "READY", "SIZE", "VERSION", "OPERATION"]);
    for c in clusters {
        t.add_row(vec![
            c.namespace.clone(),
            c.name.clone(),
            c.phase.clone(),
            format!("{}/{}", c.ready_members, c.desired_size),
            c.current_size.to_string(),
            c.version.clone(),
            c.operation.as_ref().map(OperationView::line).unwrap_or_default(),
        ]);
    }
    rendered(&t)
}

/// What `status` prints for one cluster.
pub fn status_text(c: &ClusterView) -> String {
    let mut out = format!(
        "Cluster:    {}/{}\nPhase:      {}\nMembers:    {} ready of {} (spec.size {})\n",
        c.namespace, c.name, c.phase, c.ready_members, c.current_size, c.desired_size
    );
    if !c.version.is_empty() {
        out += &format!("Version:    {}\n", c.version);
    }
    if let Some(op) = &c.operation {
        out += &format!("Operation:  {} (since {})\n", op.line(), op.started_at);
    }
    if !c.members.is_empty() {
        let mut t = table(&["MEMBER", "ID", "ROLE", "HEALTHY", "DB SIZE", "REVISION", "VERSION", "ALARMS"]);
        for m in &c.members {
            t.add_row(vec![
                m.name.clone(),
                m.id.clone(),
                m.role.clone(),
                if m.healthy { "yes" } else { "no" }.into(),
                bytes(m.db_size_bytes),
                m.revision.to_string(),
                m.version.clone(),
                m.alarms.join(","),
            ]);
        }
        out += &format!("\n{}", rendered(&t));
    }
    if !c.conditions.is_empty() {
        let mut t = table(&["CONDITION", "STATUS", "REASON", "MESSAGE"]);
        for k in &c.conditions {
            t.add_row(vec![k.type_.clone(), k.status.clone(), k.reason.clone(), k.message.clone()]);
        }
        out += &format!("\n{}", rendered(&t));
    }
    out
}

/// Bytes as people read them (binary units).
pub fn bytes(n: i64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 { format!("{n} B") } else { format!("{value:.1} {}", UNITS[unit]) }
}

/// `value` as JSON or YAML (`table` is the caller's).
pub fn document<T: Serialize>(value: &T, output: Output) -> Result<String, CliError> {
    match output {
        Output::Json => {
            serde_json::to_string_pretty(value).map(|s| s + "\n").map_err(|e| CliError::Output(e.to_string()))
        }
        Output::Yaml | Output::Table => {
            serde_yaml_ng::to_string(value).map_err(|e| CliError::Output(e.to_string()))
        }
    }
}

#[cfg(test)]
#[path = "view_tests.rs"]
mod tests;
