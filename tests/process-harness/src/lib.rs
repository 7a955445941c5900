//! Start an operator binary as a real process, probe its admin endpoint
//! over HTTP, and stop it with SIGTERM.

use std::{
    net::TcpListener,
    path::Path,
    process::{ExitStatus, Stdio},
    time::{Duration, Instant},
};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
    process::{Child, Command},
};

/// The first port the kernel hands out to outgoing connections (`ip_local_port_range`).
fn ephemeral_start() -> u16 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|r| r.split_whitespace().next().and_then(|p| p.parse().ok()))
        .unwrap_or(32768)
}

/// A free port (free on every address), below the range the kernel gives outgoing connections.
///
/// A process the tests kill and start again binds the same port again, and every process here
/// shares the host's network: a port from the ephemeral range can meanwhile be the local end of
/// some connection (a campaign run once lost its restarted cluster-service that way: "Address
/// already in use"). Below that range only another explicit bind can take it.
pub fn free_port() -> u16 {
    use std::hash::{BuildHasher, RandomState};
    let top = ephemeral_start().max(10_100);
    let span = u64::from(top - 10_000);
    let seed = RandomState::new().hash_one(std::time::SystemTime::now());
    (0..span)
        .map(|i| 10_000 + ((seed.wrapping_add(i.wrapping_mul(7919))) % span) as u16)
        .find(|port| TcpListener::bind(("0.0.0.0", *port)).is_ok())
        .expect("a free port below the ephemeral range")
}

/// Writes a kubeconfig for an API server at `server` (unreachable ones are fine).
pub fn kubeconfig(dir: &Path, server: &str) -> std::path::PathBuf {
    let path = dir.join("kubeconfig");
    let body = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: {{server: \"{server}\"}}\ncontexts:\n- name: c\n  context: {{cluster: c, user: u, namespace: default}}\ncurrent-context: c\nusers:\n- name: u\n  user: {{token: test}}\n"
    );
    std::fs::write(&path, body).expect("kubeconfig written");
    path
}

/// A running binary.
pub struct Process {
    child: Child,
    /// Admin endpoint address (`127.0.0.1:port`).
    pub admin: String,
    _dir: tempfile::TempDir,
}

/// Starts `binary` with `args`, a kubeconfig for an unreachable API server, and an admin port.
pub fn start(binary: &str, args: &[&str]) -> Process {
    let dir = tempfile::tempdir().expect("temp dir");
    let kubeconfig = kubeconfig(dir.path(), "https://127.0.0.1:9");
    let admin = format!("127.0.0.1:{}", free_port());
    let child = Command::new(binary)
        .args(args)
        .arg(format!("--admin-listen={admin}"))
        .env("KUBECONFIG", kubeconfig)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {binary}: {e}"));
    Process { child, admin, _dir: dir }
}

/// `GET path` on `addr`: (status code, body), or `None` when nothing answers.
pub async fn http_get(addr: &str, path: &str) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect(addr).await.ok()?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut response = String::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_string(&mut response)).await.ok()?.ok()?;
    let code = response.split_whitespace().nth(1)?.parse().ok()?;
    let body = response.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    Some((code, body))
}

impl Process {
    /// Waits until the admin endpoint answers `/healthz`.
    pub async fn wait_healthy(&self) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some((200, body)) = http_get(&self.admin, "/healthz").await {
                return body;
            }
            assert!(Instant::now() < deadline, "no /healthz on {}", self.admin);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Sends SIGTERM and waits (at most `limit`) for the exit status.
    pub async fn terminate(mut self, limit: Duration) -> ExitStatus {
        let pid = self.child.id().expect("running") as i32;
        let status =
            Command::new("kill").arg("-TERM").arg(pid.to_string()).status().await.expect("kill runs");
        assert!(status.success());
        tokio::time::timeout(limit, self.child.wait()).await.expect("exited in time").expect("exit status")
    }
}

/// The checks every controller binary must pass: it starts without a
/// reachable API server, answers /healthz (alive) and /readyz (503: not
/// connected), publishes `leader 0`, and exits 0 on SIGTERM; it refuses a
/// plaintext endpoint without `--insecure`, and an https one without `--ca-file`.
pub async fn check_controller_process(binary: &str) {
    for (args, why) in [
        (&["--cluster-service-endpoint=http://127.0.0.1:9"][..], "--insecure"),
        (&["--cluster-service-endpoint=https://127.0.0.1:9"][..], "--ca-file"),
    ] {
        let out = std::process::Command::new(binary).args(args).output().expect("binary runs");
        let said = String::from_utf8_lossy(&out.stdout) + String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && said.contains(why), "{args:?}: {said}");
    }
    let p = start(binary, &["--cluster-service-endpoint=http://127.0.0.1:9", "--insecure"]);
    assert_eq!(p.wait_healthy().await, "ok");
    assert_eq!(http_get(&p.admin, "/readyz").await.map(|(code, _)| code), Some(503));
    let (code, metrics) = http_get(&p.admin, "/metrics").await.expect("metrics answer");
    assert_eq!(code, 200);
    assert!(metrics.contains("etcd_operator_leader 0"), "{metrics}");
    let status = p.terminate(Duration::from_secs(10)).await;
    assert!(status.success(), "{status:?}");
}

/// `--help` names every flag in `flags`.
pub fn check_help(binary: &str, flags: &[&str]) {
    let out = std::process::Command::new(binary).arg("--help").output().expect("--help runs");
    let help = String::from_utf8(out.stdout).expect("utf-8 help");
    for flag in flags {
        assert!(help.contains(flag), "{flag} missing from --help");
    }
}

/// `--help` names every controller flag, and a lease renew grace longer than the lease is refused.
pub fn check_controller_flags(binary: &str) {
    check_help(binary, CONTROLLER_FLAGS);
    let bad = std::process::Command::new(binary)
        .args(["--lease-duration=5s", "--lease-renew-grace=10s"])
        .output()
        .expect("binary runs");
    assert!(!bad.status.success(), "an inconsistent lease setting must be refused");
}

/// Flags every controller takes.
pub const CONTROLLER_FLAGS: &[&str] = &[
    "--cluster-service-endpoint",
    "--ca-file",
    "--insecure",
    "--token-file",
    "--rpc-timeout",
    "--probe-interval",
    "--lease-duration",
    "--lease-renew-grace",
    "--watch-namespace",
    "--concurrency",
    "--debounce",
    "--otlp-endpoint",
    "--log-format",
    "--admin-listen",
];
