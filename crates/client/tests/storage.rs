//! Backup storage against a real directory and a real S3-compatible server,
//! with snapshots streamed from a real etcd.

use etcd_fixture::EtcdCluster;
use etcd_operator_client::{
    ClientError,
    etcd::{EtcdClient, EtcdOptions},
    metrics::EtcdMetrics,
    storage::{ObjectStorage, S3Settings},
};
use s3_fixture::S3Server;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

/// Streams a snapshot of a 1-member etcd into `storage` and checks every storage operation.
async fn snapshot_round_trip(storage: &ObjectStorage) {
    let etcd = EtcdCluster::start(1).await;
    let endpoints = etcd.client_urls();
    let client =
        EtcdClient::connect(&endpoints, EtcdOptions::default(), EtcdMetrics::default()).await.unwrap();
    let mut kv = etcd_client::Client::connect(&endpoints, None).await.unwrap();
    for i in 0..200 {
        kv.put(format!("key-{i}"), vec![b'x'; 4096], None).await.unwrap();
    }

    let mut writer = storage.writer("demo/snap-1/snapshot.db").unwrap();
    let info = client.snapshot(&endpoints[0], &mut writer).await.unwrap();
    assert!(storage.list("demo").await.unwrap().is_empty(), "an uncommitted upload stays invisible");
    writer.commit().await.unwrap();

    assert!(info.size_bytes > 200 * 4096, "{info:?}");
    assert!(info.revision >= 201);
    let (size, sha256) = storage.digest("demo/snap-1/snapshot.db").await.unwrap();
    assert_eq!((size, sha256.as_str()), (info.size_bytes, info.sha256.as_str()));

    storage.put("demo/snap-1/metadata.json", b"{}".to_vec()).await.unwrap();
    assert_eq!(storage.get("demo/snap-1/metadata.json").await.unwrap().unwrap(), b"{}");
    assert_eq!(storage.get("demo/missing").await.unwrap(), None);
    let keys: Vec<String> = storage.list("demo/").await.unwrap().into_iter().map(|o| o.key).collect();
    assert_eq!(keys, ["demo/snap-1/metadata.json", "demo/snap-1/snapshot.db"]);

    // An aborted upload leaves nothing behind.
    let mut aborted = storage.writer("demo/snap-2/snapshot.db").unwrap();
    aborted.write_all(&[1u8; 1024]).await.unwrap();
    aborted.abort().await;
    assert_eq!(storage.list("demo/snap-2").await.unwrap(), vec![]);

    storage.delete("demo/snap-1/snapshot.db").await.unwrap();
    storage.delete("demo/snap-1/snapshot.db").await.unwrap();
    assert!(matches!(storage.digest("demo/snap-1/snapshot.db").await, Err(ClientError::ObjectNotFound(_))));
    for bad in ["../escape", "a//b", "", "a/./b"] {
        assert!(matches!(storage.writer(bad), Err(ClientError::InvalidArgument(_))), "{bad}");
    }
}

#[tokio::test]
async fn local_directory_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let storage = ObjectStorage::local(&dir.path().join("backups")).unwrap();
    snapshot_round_trip(&storage).await;
    let bytes = std::fs::read(dir.path().join("backups/demo/snap-1/metadata.json")).unwrap();
    assert_eq!(bytes, b"{}", "objects are plain files under the root");
}

#[tokio::test]
async fn s3_round_trip_and_refusals() {
    let server = S3Server::start().await;
    server.create_bucket("etcd-backups").await;
    let settings = S3Settings {
        bucket: "etcd-backups".into(),
        prefix: "team-a/".into(),
        endpoint: Some(server.endpoint.clone()),
        region: None,
        access_key_id: s3_fixture::ACCESS_KEY_ID.into(),
        secret_access_key: s3_fixture::SECRET_ACCESS_KEY.into(),
        path_style: true,
    };
    let storage = ObjectStorage::s3(&settings).unwrap();
    assert_eq!(storage.url(), "s3://etcd-backups/team-a");
    snapshot_round_trip(&storage).await;

    // The prefix is applied: the bucket root sees the object under it.
    let root = ObjectStorage::s3(&S3Settings { prefix: String::new(), ..settings.clone() }).unwrap();
    let keys: Vec<String> = root.list("").await.unwrap().into_iter().map(|o| o.key).collect();
    assert_eq!(keys, ["team-a/demo/snap-1/metadata.json"]);

    // A bucket that does not exist is an error, never an empty success.
    let missing = ObjectStorage::s3(&S3Settings { bucket: "no-such-bucket".into(), ..settings }).unwrap();
    assert!(missing.put("k", b"x".to_vec()).await.is_err());
    assert!(!format!("{settings_dbg:?}", settings_dbg = S3Settings::default()).contains("secret_access_key"));
}

#[test]
fn sha256_of_known_bytes() {
    // Guards the hex encoding shared by status, sidecar files and restore checks.
    assert_eq!(
        hex::encode(Sha256::digest(b"abc")),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
}

#[tokio::test]
async fn small_objects_are_read_whole_only_up_to_the_cap() {
    let dir = tempfile::tempdir().unwrap();
    let storage = ObjectStorage::local(&dir.path().join("backups")).unwrap();
    let cap = etcd_operator_client::storage::SMALL_OBJECT_MAX as usize;
    storage.put("demo/ok/snapshot.db.sha256", vec![b'a'; cap]).await.unwrap();
    assert_eq!(storage.get("demo/ok/snapshot.db.sha256").await.unwrap().unwrap().len(), cap);
    // Anyone who can write to the bucket could put a huge "checksum" there: refused unread.
    storage.put("demo/big/snapshot.db.sha256", vec![b'a'; cap + 1]).await.unwrap();
    match storage.get("demo/big/snapshot.db.sha256").await {
        Err(ClientError::StorageRefused(why)) => {
            assert!(why.starts_with("demo/big/snapshot.db.sha256 is 65537 bytes"), "{why}")
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
}
