//! The agent (the real binary) against a gRPC server that sends the snapshot
//! header and then nothing, as a cluster-service whose connection stalls
//! would: the agent gives up after `--read-idle-timeout` with a clear reason
//! instead of holding the member's start forever, and leaves no data behind.

use std::{pin::Pin, process::Stdio, time::Duration};

use etcd_operator_proto::v1alpha1::{
    self as pb,
    backup_service_server::{BackupService, BackupServiceServer},
};
use tokio_stream::Stream;
use tonic::{Request, Response, Status};

/// Sends the header, then holds the stream open without a byte more.
struct Stalls;

type Chunks = Pin<Box<dyn Stream<Item = Result<pb::SnapshotChunk, Status>> + Send>>;

#[tonic::async_trait]
impl BackupService for Stalls {
    type FetchRestoreSnapshotStream = Chunks;

    async fn run_backup(
        &self,
        _: Request<pb::RunBackupRequest>,
    ) -> Result<Response<pb::RunBackupResponse>, Status> {
        Err(Status::unimplemented("not served here"))
    }

    async fn reconcile_schedule(
        &self,
        _: Request<pb::ReconcileScheduleRequest>,
    ) -> Result<Response<pb::ReconcileScheduleResponse>, Status> {
        Err(Status::unimplemented("not served here"))
    }

    async fn prune_backups(
        &self,
        _: Request<pb::PruneBackupsRequest>,
    ) -> Result<Response<pb::PruneBackupsResponse>, Status> {
        Err(Status::unimplemented("not served here"))
    }

    async fn create_backup(
        &self,
        _: Request<pb::CreateBackupRequest>,
    ) -> Result<Response<pb::Backup>, Status> {
        Err(Status::unimplemented("not served here"))
    }

    async fn get_backup(&self, _: Request<pb::GetBackupRequest>) -> Result<Response<pb::Backup>, Status> {
        Err(Status::unimplemented("not served here"))
    }

    async fn list_backups(
        &self,
        _: Request<pb::ListBackupsRequest>,
    ) -> Result<Response<pb::ListBackupsResponse>, Status> {
        Err(Status::unimplemented("not served here"))
    }

    async fn fetch_restore_snapshot(
        &self,
        _: Request<pb::FetchRestoreSnapshotRequest>,
    ) -> Result<Response<Chunks>, Status> {
        let header = pb::SnapshotChunk {
            header: Some(pb::SnapshotHeader {
                sha256: "00".repeat(32),
                size_bytes: 1 << 20,
                ..Default::default()
            }),
            data: Vec::new(),
        };
        let stalled = tokio_stream::StreamExt::chain(tokio_stream::once(Ok(header)), tokio_stream::pending());
        Ok(Response::new(Box::pin(stalled)))
    }
}

#[tokio::test]
async fn a_stalled_snapshot_stream_ends_the_agent_with_the_reason() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(BackupServiceServer::new(Stalls))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("demo-0");
    let started = std::time::Instant::now();
    let run = tokio::process::Command::new(env!("CARGO_BIN_EXE_restore-agent"))
        .arg(format!("--endpoint=http://127.0.0.1:{port}"))
        .args(["--namespace=default", "--cluster=demo", "--member=demo-0", "--etcd-version=3.5.17"])
        .arg(format!("--data-dir={}", data.display()))
        .args(["--read-idle-timeout=1s", "--log-format=json"])
        .env("RESTORE_TOKEN", "t0ken")
        .env("ETCD_INITIAL_CLUSTER", "demo-0=http://127.0.0.1:1")
        .env("ETCD_INITIAL_CLUSTER_TOKEN", "demo-token")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .output();
    let out =
        tokio::time::timeout(Duration::from_secs(30), run).await.expect("the agent never gave up").unwrap();
    let log = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(!out.status.success(), "{log}");
    assert!(log.contains("stalled: nothing arrived for 1s (--read-idle-timeout)"), "{log}");
    assert!(started.elapsed() < Duration::from_secs(15), "gave up after {:?}", started.elapsed());
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().flatten().map(|e| e.file_name()).collect();
    assert!(
        !data.exists() || std::fs::read_dir(&data).unwrap().next().is_none(),
        "no partial data directory: {left:?}"
    );
}
