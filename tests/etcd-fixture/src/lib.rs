//! Real etcd members on loopback for tests.
//!
//! The binary is `$ETCD_BIN`, else Debian's `/usr/bin/etcd`, else `etcd` on
//! `PATH`. Every process is killed and every data directory removed when the
//! [`EtcdCluster`] is dropped, also when a test panics.

use std::{
    net::TcpListener,
    path::{Path, PathBuf},
    process::Stdio,
    time::{Duration, Instant},
};

use tokio::{
    net::TcpStream,
    process::{Child, Command},
};

/// Path of the etcd binary the fixture runs.
pub fn etcd_binary() -> PathBuf {
    if let Some(bin) = std::env::var_os("ETCD_BIN") {
        return bin.into();
    }
    let debian = Path::new("/usr/bin/etcd");
    if debian.exists() { debian.to_path_buf() } else { PathBuf::from("etcd") }
}

/// One etcd member process and its addresses.
#[derive(Debug)]
pub struct Member {
    /// Member name (`m0`, `m1`, ...).
    pub name: String,
    /// Client URL, `http://127.0.0.1:<port>`.
    pub client_url: String,
    /// Peer URL, `http://127.0.0.1:<port>`.
    pub peer_url: String,
    data_dir: PathBuf,
    child: Option<Child>,
}

impl Member {
    /// The member's data directory (kept when it is killed, removed with the cluster).
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Whether the process is running.
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// Client endpoint without the scheme (`127.0.0.1:port`).
    pub fn client_addr(&self) -> &str {
        self.client_url.trim_start_matches("http://")
    }
}

/// A set of etcd members sharing one temporary directory.
#[derive(Debug)]
pub struct EtcdCluster {
    members: Vec<Member>,
    dir: tempfile::TempDir,
    token: String,
    /// The etcd binary and the flags added to every member's.
    binary: PathBuf,
    extra_args: Vec<String>,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port")
}

impl EtcdCluster {
    /// Starts `size` members (`m0`, `m1`, ...) as a new cluster and waits until every client port accepts connections.
    pub async fn start(size: usize) -> Self {
        let names: Vec<String> = (0..size).map(|i| format!("m{i}")).collect();
        Self::start_named(&names).await
    }

    /// Starts members with the given names as a new cluster.
    ///
    /// Ports are picked free and then handed to etcd, so a parallel test can take one in
    /// between: a new cluster that lost that race starts again on other ports.
    pub async fn start_named(names: &[String]) -> Self {
        Self::start_with(&etcd_binary(), names, &[]).await
    }

    /// Starts members with the given names as a new cluster of `binary`, each with `extra_args`.
    pub async fn start_with(binary: &Path, names: &[String], extra_args: &[&str]) -> Self {
        for _ in 0..4 {
            match Self::try_start_named(binary, names, extra_args).await {
                Ok(cluster) => return cluster,
                Err(log) => eprintln!("a port was taken before etcd bound it; starting again: {log}"),
            }
        }
        panic!("etcd members could not bind free ports in 4 attempts");
    }

    /// One attempt: `Err` (a member's log) when a member could not bind its ports.
    async fn try_start_named(binary: &Path, names: &[String], extra_args: &[&str]) -> Result<Self, String> {
        let size = names.len();
        let dir = tempfile::tempdir().expect("temp dir");
        let token = format!("fixture-{}", dir.path().file_name().unwrap().to_string_lossy());
        let members: Vec<Member> = (0..size)
            .map(|i| Member {
                name: names[i].clone(),
                client_url: format!("http://127.0.0.1:{}", free_port()),
                peer_url: format!("http://127.0.0.1:{}", free_port()),
                data_dir: dir.path().join(format!("m{i}")),
                child: None,
            })
            .collect();
        let (binary, extra_args) = (binary.to_owned(), extra_args.iter().map(|a| a.to_string()).collect());
        let mut cluster = Self { members, dir, token, binary, extra_args };
        let initial = cluster.initial_cluster(&cluster.members.iter().collect::<Vec<_>>());
        for i in 0..size {
            cluster.spawn(i, &initial, "new");
        }
        for i in 0..size {
            if !cluster.listening_or_bind_failure(i).await {
                return Err(cluster.log(i));
            }
        }
        Ok(cluster)
    }

    fn initial_cluster(&self, members: &[&Member]) -> String {
        members.iter().map(|m| format!("{}={}", m.name, m.peer_url)).collect::<Vec<_>>().join(",")
    }

    fn spawn(&mut self, i: usize, initial_cluster: &str, state: &str) {
        let token = self.token.clone();
        let log = std::fs::File::create(self.dir.path().join(format!("m{i}.log"))).expect("log file");
        let m = &mut self.members[i];
        let child = Command::new(&self.binary)
            .arg(format!("--name={}", m.name))
            .arg(format!("--data-dir={}", m.data_dir.display()))
            .arg(format!("--listen-client-urls={}", m.client_url))
            .arg(format!("--advertise-client-urls={}", m.client_url))
            .arg(format!("--listen-peer-urls={}", m.peer_url))
            .arg(format!("--initial-advertise-peer-urls={}", m.peer_url))
            .arg(format!("--initial-cluster={initial_cluster}"))
            .arg(format!("--initial-cluster-state={state}"))
            .arg(format!("--initial-cluster-token={token}"))
            .arg("--heartbeat-interval=50")
            .arg("--election-timeout=500")
            .args(&self.extra_args)
            .stdout(Stdio::null())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", self.binary.display()));
        m.child = Some(child);
    }

    async fn wait_listening(&self, i: usize) {
        let listening = self.listening_or_bind_failure(i).await;
        assert!(listening, "etcd member {i} could not bind its ports; log: {}", self.log(i));
    }

    /// Waits until member `i` accepts connections (true) or says it cannot bind (false).
    async fn listening_or_bind_failure(&self, i: usize) -> bool {
        let deadline = Instant::now() + Duration::from_secs(20);
        let addr = self.members[i].client_addr().to_owned();
        while TcpStream::connect(&addr).await.is_err() {
            if self.log(i).contains("address already in use") {
                return false;
            }
            assert!(
                Instant::now() < deadline,
                "etcd member {i} did not listen on {addr}; log: {}",
                self.log(i)
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        true
    }

    /// The members, in start order.
    pub fn members(&self) -> &[Member] {
        &self.members
    }

    /// Client URLs of the running members.
    pub fn client_urls(&self) -> Vec<String> {
        self.members.iter().filter(|m| m.is_running()).map(|m| m.client_url.clone()).collect()
    }

    /// Waits until every running member reports the same leader, i.e. the cluster can serve.
    pub async fn wait_healthy(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        for m in self.members.iter().filter(|m| m.is_running()) {
            let url = format!("{}/health", m.client_url);
            loop {
                if http_get(m.client_addr(), "/health")
                    .await
                    .is_some_and(|body| body.contains("\"health\":\"true\""))
                {
                    break;
                }
                assert!(Instant::now() < deadline, "{url} never became healthy");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }

    /// The stderr log of member `i` (for assertion messages).
    pub fn log(&self, i: usize) -> String {
        std::fs::read_to_string(self.dir.path().join(format!("m{i}.log"))).unwrap_or_default()
    }

    /// Allocates addresses for a new member that will join an existing cluster.
    ///
    /// Returns its index; add it to etcd (e.g. as a learner) with its
    /// `peer_url`, then call [`EtcdCluster::start_joining`].
    pub fn prepare_member(&mut self) -> usize {
        let i = self.members.len();
        self.members.push(Member {
            name: format!("m{i}"),
            client_url: format!("http://127.0.0.1:{}", free_port()),
            peer_url: format!("http://127.0.0.1:{}", free_port()),
            data_dir: self.dir.path().join(format!("m{i}")),
            child: None,
        });
        i
    }

    /// Starts a prepared member with `--initial-cluster-state=existing`.
    ///
    /// `members` are the indices of every member etcd knows, including this one.
    pub async fn start_joining(&mut self, i: usize, members: &[usize]) {
        let initial = self.initial_cluster(&members.iter().map(|&j| &self.members[j]).collect::<Vec<_>>());
        self.spawn(i, &initial, "existing");
        self.wait_listening(i).await;
    }

    /// Kills member `i` (SIGKILL), keeping its data directory.
    pub async fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.members[i].child.take() {
            let _ = child.kill().await;
        }
    }

    /// Restarts a killed member from its data directory.
    pub async fn restart(&mut self, i: usize) {
        assert!(!self.members[i].is_running(), "member {i} is running");
        let all: Vec<&Member> = self.members.iter().collect();
        let initial = self.initial_cluster(&all);
        self.spawn(i, &initial, "existing");
        self.wait_listening(i).await;
    }
}

/// A minimal HTTP/1.0 GET, enough for etcd's `/health`.
async fn http_get(addr: &str, path: &str) -> Option<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = TcpStream::connect(addr).await.ok()?;
    stream.write_all(format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes()).await.ok()?;
    let mut body = String::new();
    tokio::time::timeout(Duration::from_secs(2), stream.read_to_string(&mut body)).await.ok()?.ok()?;
    Some(body)
}

impl Drop for EtcdCluster {
    fn drop(&mut self) {
        for m in &mut self.members {
            if let Some(child) = m.child.as_mut() {
                let _ = child.start_kill();
            }
        }
    }
}
