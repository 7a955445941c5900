//! etcd's own restore tool: etcdutl (3.5+) or etcdctl (3.4), found on the
//! image, with the revision bump where the tool supports it.

use etcd_operator_api::version::EtcdVersion;
use std::{
    fmt,
    path::{Path, PathBuf},
    process::Command,
};

/// How far revisions jump after a restore, so clients' caches and watches see a newer revision
/// than any they saw before (the value Kubernetes' etcd restore guide uses).
const BUMP_REVISION: &str = "1000000000";

/// The peer URL of `member` in an `--initial-cluster` value.
pub fn peer_url(initial_cluster: &str, member: &str) -> Result<String, String> {
    initial_cluster
        .split(',')
        .filter_map(|entry| entry.split_once('='))
        .find(|(name, _)| *name == member)
        .map(|(_, url)| url.to_owned())
        .ok_or_else(|| format!("member {member} is not in ETCD_INITIAL_CLUSTER {initial_cluster:?}"))
}

/// A restore tool and what it supports.
pub struct RestoreTool {
    path: PathBuf,
    /// `etcdctl` of 3.4 needs `ETCDCTL_API=3`.
    etcdctl: bool,
    bump: bool,
}

impl fmt::Display for RestoreTool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.path.display(), if self.bump { " (revision bumped, compacted)" } else { "" })
    }
}

/// Whether `version` (`3.<minor>.<patch>`, the member's target on a mixed-version roll) restores
/// with etcdutl.
fn has_etcdutl(version: &str) -> bool {
    EtcdVersion::parse(version).is_ok_and(|v| v.restores_with_etcdutl())
}

impl RestoreTool {
    /// `explicit`, else etcdutl (3.5+) or etcdctl (3.4) in the usual places, else on PATH.
    pub fn find(explicit: Option<&Path>, version: &str) -> Result<Self, String> {
        let name = if has_etcdutl(version) { "etcdutl" } else { "etcdctl" };
        let path = match explicit {
            Some(p) => p.to_path_buf(),
            None => ["/usr/local/bin", "/usr/bin", "/bin"]
                .iter()
                .map(|d| Path::new(d).join(name))
                .find(|p| p.is_file())
                .unwrap_or_else(|| PathBuf::from(name)),
        };
        let etcdctl = path.file_name().is_some_and(|n| n.to_string_lossy().starts_with("etcdctl"));
        let mut tool = Self { path, etcdctl, bump: false };
        let help =
            tool.command(&["snapshot", "restore", "--help"]).output().map_err(|e| format!("{tool}: {e}"))?;
        let text = String::from_utf8_lossy(&help.stdout) + String::from_utf8_lossy(&help.stderr);
        tool.bump = text.contains("--bump-revision") && text.contains("--mark-compacted");
        Ok(tool)
    }

    /// The tool's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.path);
        cmd.args(args);
        if self.etcdctl {
            cmd.env("ETCDCTL_API", "3");
        }
        cmd
    }

    /// The arguments of the restore.
    pub fn restore_args(&self, t: &Restore<'_>) -> Vec<String> {
        let mut args = vec![
            "snapshot".into(),
            "restore".into(),
            t.snapshot.display().to_string(),
            format!("--name={}", t.member),
            format!("--data-dir={}", t.data_dir.display()),
            format!("--initial-cluster={}", t.initial_cluster),
            format!("--initial-cluster-token={}", t.cluster_token),
            format!("--initial-advertise-peer-urls={}", t.peer_url),
        ];
        if self.bump {
            args.push(format!("--bump-revision={BUMP_REVISION}"));
            args.push("--mark-compacted".into());
        }
        args
    }

    /// Restores the snapshot into the data directory (which must not exist).
    pub fn restore(&self, t: &Restore<'_>) -> Result<(), String> {
        let args = self.restore_args(t);
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = self.command(&refs).output().map_err(|e| format!("{self}: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "{self} snapshot restore failed ({}): {}{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Ok(())
    }
}

/// One member's restore: from which snapshot, into which directory, as which member of which cluster.
pub struct Restore<'a> {
    /// The verified snapshot file.
    pub snapshot: &'a Path,
    /// Directory to create.
    pub data_dir: &'a Path,
    /// Member name.
    pub member: &'a str,
    /// Its peer URL.
    pub peer_url: &'a str,
    /// Every member, `name=peerURL,...`.
    pub initial_cluster: &'a str,
    /// Cluster token of the restored cluster.
    pub cluster_token: &'a str,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn restore<'a>(snapshot: &'a Path, data_dir: &'a Path) -> Restore<'a> {
        Restore {
            snapshot,
            data_dir,
            member: "m",
            peer_url: "http://m:2380",
            initial_cluster: "m=http://m:2380",
            cluster_token: "t",
        }
    }

    #[test]
    fn peer_url_comes_from_the_initial_cluster() {
        let ic = "demo-0=http://demo-0.demo.ns.svc.cluster.local:2380,demo-1=http://demo-1.demo.ns.svc.cluster.local:2380";
        assert_eq!(peer_url(ic, "demo-1").unwrap(), "http://demo-1.demo.ns.svc.cluster.local:2380");
        assert!(peer_url(ic, "demo-2").unwrap_err().contains("demo-2 is not in"));
    }

    #[test]
    fn the_tool_follows_the_version_and_bumps_only_when_supported() {
        assert!(!has_etcdutl("3.4.23"));
        assert!(has_etcdutl("3.5.17") && has_etcdutl("3.6.0"));
        let mut tool = RestoreTool { path: "/usr/bin/etcdutl".into(), etcdctl: false, bump: false };
        let args = tool.restore_args(&restore(Path::new("/s.db"), Path::new("/d")));
        assert!(!args.iter().any(|a| a.starts_with("--bump-revision")));
        tool.bump = true;
        let args = tool.restore_args(&restore(Path::new("/s.db"), Path::new("/d")));
        assert!(
            args.contains(&"--bump-revision=1000000000".to_string())
                && args.contains(&"--mark-compacted".to_string())
        );
        assert!(args.contains(&"--initial-cluster-token=t".to_string()));
    }

    #[test]
    fn a_real_etcdctl_restores_a_snapshot_it_did_not_write() {
        // Finds the machine's etcd tool as the agent would in the image, and reports its support.
        let tool = RestoreTool::find(None, "3.4.23").expect("etcdctl installed by scripts/setup.sh");
        assert!(tool.etcdctl);
        let dir = std::env::temp_dir().join(format!("restore-agent-{}", std::process::id()));
        let (snapshot, data) = (dir.join("missing.db"), dir.join("data"));
        let err = tool.restore(&restore(&snapshot, &data)).unwrap_err();
        assert!(err.contains("snapshot restore failed"), "{err}");
    }
}
