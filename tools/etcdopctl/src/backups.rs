//! `backup now|list|show` and `restore`.

use std::time::{Duration, Instant};

use etcd_operator_proto::v1alpha1 as pb;
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

use crate::{
    cli::{Output, Wait},
    commands::Target,
    connect::Connection,
    error::CliError,
    follow::{Follow, follow, sized},
    view::{bytes, document, rendered},
};

/// One backup as printed.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BackupView {
    pub namespace: String,
    pub name: String,
    pub cluster: String,
    pub phase: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub location: String,
    pub size_bytes: i64,
    pub revision: i64,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub sha256: String,
    pub created_at: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub completed_at: String,
    pub attempts: i32,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub message: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub schedule: String,
}

impl From<&pb::Backup> for BackupView {
    fn from(b: &pb::Backup) -> Self {
        let r = b.backup.clone().unwrap_or_default();
        Self {
            namespace: r.namespace,
            name: r.name,
            cluster: b.cluster_name.clone(),
            phase: b.phase.clone(),
            location: b.location.clone(),
            size_bytes: b.size_bytes,
            revision: b.revision,
            sha256: b.sha256.clone(),
            created_at: b.created_at.clone(),
            completed_at: b.completed_at.clone(),
            attempts: b.attempts,
            message: b.message.clone(),
            schedule: b.schedule.clone(),
        }
    }
}

/// The table of `backup list`.
pub fn list_table(backups: &[BackupView]) -> String {
    let mut t = comfy_table::Table::new();
    t.load_preset(comfy_table::presets::NOTHING)
        .set_header(["NAME", "CLUSTER", "PHASE", "SIZE", "REVISION", "CREATED", "SCHEDULE"]);
    for b in backups {
        let size = if b.phase == "Succeeded" { bytes(b.size_bytes) } else { String::new() };
        let revision = if b.revision > 0 { b.revision.to_string() } else { String::new() };
        t.add_row([&b.name, &b.cluster, &b.phase, &size, &revision, &b.created_at, &b.schedule]);
    }
    rendered(&t)
}

/// What `backup show` prints.
pub fn show_text(b: &BackupView) -> String {
    let mut out = format!(
        "Backup:     {}/{}\nCluster:    {}\nPhase:      {}\nCreated:    {}\nAttempts:   {}\n",
        b.namespace, b.name, b.cluster, b.phase, b.created_at, b.attempts
    );
    for (label, value) in [
        ("Completed: ", b.completed_at.clone()),
        ("Location:  ", b.location.clone()),
        (
            "Size:      ",
            if b.size_bytes > 0 {
                format!("{} ({} bytes)", bytes(b.size_bytes), b.size_bytes)
            } else {
                String::new()
            },
        ),
        ("Revision:  ", if b.revision > 0 { b.revision.to_string() } else { String::new() }),
        ("SHA-256:   ", b.sha256.clone()),
        ("Schedule:  ", b.schedule.clone()),
        ("Message:   ", b.message.clone()),
    ] {
        if !value.is_empty() {
            out += &format!("{label} {value}\n");
        }
    }
    out
}

async fn get(conn: &Connection, name: &str) -> Result<pb::Backup, CliError> {
    let req = pb::GetBackupRequest {
        backup: Some(pb::BackupRef { namespace: conn.namespace.clone(), name: name.into() }),
    };
    conn.call(|| {
        let (mut c, req) = (conn.backups(), conn.request(req.clone()));
        async move { c.get_backup(req).await }
    })
    .await
    .map_err(|s| CliError::api(format!("backup {}/{name}", conn.namespace), &s))
}

/// `backup list`.
pub async fn list(conn: &Connection, cluster: Option<&str>, output: Output) -> Result<String, CliError> {
    let req = pb::ListBackupsRequest {
        namespace: conn.namespace.clone(),
        cluster_name: cluster.unwrap_or_default().into(),
    };
    let answer = conn
        .call(|| {
            let (mut c, req) = (conn.backups(), conn.request(req.clone()));
            async move { c.list_backups(req).await }
        })
        .await
        .map_err(|s| CliError::api(format!("list backups in {}", conn.namespace), &s))?;
    let views: Vec<BackupView> = answer.backups.iter().map(BackupView::from).collect();
    match output {
        Output::Table if views.is_empty() => Ok(format!("no backups in {}\n", conn.namespace)),
        Output::Table => Ok(list_table(&views)),
        other => document(&views, other),
    }
}

/// `backup show`.
pub async fn show(conn: &Connection, name: &str, output: Output) -> Result<String, CliError> {
    let view = BackupView::from(&get(conn, name).await?);
    match output {
        Output::Table => Ok(show_text(&view)),
        other => document(&view, other),
    }
}

/// What `backup now` is asked.
pub struct Now<'a> {
    pub cluster: &'a str,
    pub name: Option<String>,
    pub claim: Option<String>,
    pub path: Option<String>,
    pub storage_json: Option<String>,
}

/// `backup now`: creates the EtcdBackup, then follows it (bytes and ETA while it streams).
pub async fn now(conn: &Connection, n: Now<'_>, wait: &Wait) -> Result<String, CliError> {
    let name =
        n.name.unwrap_or_else(|| format!("{}-{}", n.cluster, chrono::Utc::now().format("%Y%m%d%H%M%S")));
    let storage_json = match (n.storage_json, n.claim) {
        (Some(json), _) => json,
        (None, Some(claim)) => serde_json::json!({"volume": {"claimName": claim, "path": n.path.unwrap_or_else(|| n.cluster.to_owned())}}).to_string(),
        (None, None) => return Err(CliError::Config("--claim or --storage-json says where the backup goes".into())),
    };
    let what = format!("backup {}/{name} of {}", conn.namespace, n.cluster);
    let req = pb::CreateBackupRequest {
        backup: Some(pb::BackupRef { namespace: conn.namespace.clone(), name: name.clone() }),
        cluster_name: n.cluster.to_owned(),
        storage_json,
    };
    conn.call(|| {
        let (mut c, req) = (conn.backups(), conn.request(req.clone()));
        async move { c.create_backup(req).await }
    })
    .await
    .map_err(|s| CliError::api(what.clone(), &s))?;
    let again = format!("etcdopctl backup show {name} -n {}", conn.namespace);
    if wait.no_wait {
        return Ok(format!("{what}: created; see it with: {again}\n"));
    }
    let done = follow_backup(conn, &name, &what, &again, wait).await?;
    Ok(format!("{what}: {} at revision {}, {}\n", done.phase, done.revision, bytes(done.size_bytes)))
}

/// Reads the backup until it succeeded or failed; a byte bar with ETA while it streams.
async fn follow_backup(
    conn: &Connection,
    name: &str,
    what: &str,
    again: &str,
    wait: &Wait,
) -> Result<pb::Backup, CliError> {
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{spinner} {prefix} [{bar:30}] {bytes}/{total_bytes} {msg} (ETA {eta})")
            .expect("a valid template")
            .progress_chars("=> "),
    );
    bar.set_prefix(what.to_owned());
    bar.enable_steady_tick(Duration::from_millis(200));
    let deadline = Instant::now() + Duration::from_secs(wait.wait_timeout);
    let mut interrupted = crate::follow::interrupts()?;
    let mut said = String::new();
    loop {
        let b = get(conn, name).await?;
        if b.progress_total_bytes > 0 {
            bar.set_length(b.progress_total_bytes as u64);
            bar.set_position(b.progress_bytes as u64);
        }
        if b.phase != said {
            if bar.is_hidden() {
                eprintln!("{what}: {}", b.phase);
            }
            bar.set_message(b.phase.clone());
            said = b.phase.clone();
        }
        match b.phase.as_str() {
            "Succeeded" => {
                bar.finish_and_clear();
                return Ok(b);
            }
            "Failed" => {
                bar.abandon();
                return Err(CliError::Failed(format!(
                    "{what}: failed after {} attempts: {}",
                    b.attempts, b.message
                )));
            }
            _ => {}
        }
        if Instant::now() >= deadline {
            bar.abandon();
            return Err(CliError::Failed(format!(
                "{what}: not done after {} s; it goes on. See it with: {again}",
                wait.wait_timeout
            )));
        }
        tokio::select! {
            _ = interrupted.recv() => {
                bar.abandon();
                return Err(CliError::Interrupted(format!("stopped following {what}; it goes on. See it with: {again}")));
            }
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}

/// What `restore` is asked.
pub struct Restore<'a> {
    pub from_backup: &'a str,
    pub size: i32,
    pub etcd_version: &'a str,
    pub storage_size: &'a str,
}

/// `restore`: creates the new cluster with spec.restore, then follows it until it runs.
pub async fn restore(t: &Target<'_>, r: Restore<'_>, wait: &Wait) -> Result<String, CliError> {
    let what = format!("restore {} from backup {}", t.label(), r.from_backup);
    let spec = pb::ClusterSpec {
        size: r.size,
        version: r.etcd_version.to_owned(),
        storage_size: r.storage_size.to_owned(),
        restore_backup_name: Some(r.from_backup.to_owned()),
        ..Default::default()
    };
    let req = pb::CreateClusterRequest { cluster: Some(t.cluster_ref()), spec: Some(spec) };
    t.conn
        .call(|| {
            let (mut c, req) = (t.conn.clusters(), t.conn.request(req.clone()));
            async move { c.create_cluster(req).await }
        })
        .await
        .map_err(|s| CliError::api(what.clone(), &s))?;
    if wait.no_wait {
        return Ok(format!("{what}: created; follow it with: {}\n", t.again()));
    }
    let goal = sized(0, r.size);
    let f = Follow {
        what: what.clone(),
        steps: u64::from(r.size.unsigned_abs()),
        again: t.again(),
        progress: &goal,
    };
    let view = follow(&f, wait, move || t.status(false)).await?;
    Ok(format!("{what}: {} of {} members ready\n", view.ready_members, view.current_size))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backup(name: &str, phase: &str, schedule: &str) -> BackupView {
        BackupView::from(&pb::Backup {
            backup: Some(pb::BackupRef { namespace: "default".into(), name: name.into() }),
            cluster_name: "demo".into(),
            phase: phase.into(),
            location: "file:///backups/demo/demo-now.db".into(),
            size_bytes: 2_359_296,
            sha256: "9f".repeat(32),
            revision: 1204,
            created_at: "2026-12-01T10:00:00Z".into(),
            completed_at: "2026-12-01T10:00:04Z".into(),
            attempts: 1,
            progress_bytes: 0,
            progress_total_bytes: 0,
            message: String::new(),
            schedule: schedule.into(),
        })
    }

    #[test]
    fn the_backup_table_and_details() {
        let list = [
            backup("demo-now", "Succeeded", ""),
            backup("demo-every-minute-202612011001", "Running", "demo-every-minute"),
        ];
        insta::assert_snapshot!(list_table(&list));
        insta::assert_snapshot!(show_text(&backup("demo-now", "Succeeded", "")));
    }
}
