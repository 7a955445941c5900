//! A real S3-compatible server for tests: `moto_server` (PyPI `moto[server]`,
//! installed by `scripts/setup.sh`) on a free loopback port, killed on drop.

use std::time::{Duration, Instant};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
    process::{Child, Command},
};

/// Access key the server accepts (moto accepts any; these are conventional).
pub const ACCESS_KEY_ID: &str = "test-access-key";
/// Secret key to go with [`ACCESS_KEY_ID`].
pub const SECRET_ACCESS_KEY: &str = "test-secret-key";

/// A running moto server.
pub struct S3Server {
    child: Child,
    /// `http://127.0.0.1:<port>`.
    pub endpoint: String,
    addr: String,
    _dir: tempfile::TempDir,
}

impl S3Server {
    /// Starts a server and waits until it answers; panics with a hint when moto is missing.
    pub async fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        let dir = tempfile::tempdir().expect("temp dir");
        let binary = std::env::var("MOTO_SERVER").unwrap_or_else(|_| "moto_server".into());
        let log = std::fs::File::create(dir.path().join("moto.log")).expect("log file");
        let child = Command::new(&binary)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("{binary}: {e}; install it with scripts/setup.sh (PyPI moto[server])")
            });
        let addr = format!("127.0.0.1:{port}");
        let server = Self { child, endpoint: format!("http://{addr}"), addr, _dir: dir };
        let deadline = Instant::now() + Duration::from_secs(30);
        while server.request("GET", "/").await.is_none() {
            assert!(Instant::now() < deadline, "moto_server did not answer on {}", server.addr);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        server
    }

    /// Creates a bucket (moto does not check signatures, so a plain PUT does).
    pub async fn create_bucket(&self, bucket: &str) {
        let status = self.request("PUT", &format!("/{bucket}")).await.expect("moto answers");
        assert_eq!(status, 200, "creating bucket {bucket}");
    }

    /// One HTTP/1.1 request; the status code, or `None` when the server does not answer.
    async fn request(&self, method: &str, path: &str) -> Option<u16> {
        let mut stream = TcpStream::connect(&self.addr).await.ok()?;
        let req = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            self.addr
        );
        stream.write_all(req.as_bytes()).await.ok()?;
        let mut response = Vec::new();
        tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut response)).await.ok()?.ok()?;
        let text = String::from_utf8_lossy(&response);
        text.split_whitespace().nth(1)?.parse().ok()
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}
