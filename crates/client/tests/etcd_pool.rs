//! Pooled etcd connections against a real etcd: reused between observations, one per cluster,
//! closed after their idle limit or when forgotten.

use std::time::Duration;

use etcd_fixture::EtcdCluster;
use etcd_operator_client::{
    etcd::{EtcdOptions, EtcdPool},
    metrics::EtcdMetrics,
};

/// This process's established TCP connections to `port` (etcd holds some to itself, for its
/// gRPC gateway: only sockets among this process's file descriptors count).
fn connections_to(port: u16) -> usize {
    let own: Vec<String> = std::fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd")
        .filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
        .filter_map(|target| {
            let t = target.to_string_lossy().into_owned();
            Some(t.strip_prefix("socket:[")?.strip_suffix(']')?.to_owned())
        })
        .collect();
    let table = std::fs::read_to_string("/proc/net/tcp").expect("/proc/net/tcp");
    table
        .lines()
        .skip(1)
        .filter(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let remote = f[2].rsplit(':').next().and_then(|p| u16::from_str_radix(p, 16).ok());
            remote == Some(port) && f[3] == "01" && own.iter().any(|inode| inode == f[9])
        })
        .count()
}

async fn settle(port: u16, want: usize) -> usize {
    for _ in 0..50 {
        if connections_to(port) == want {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    connections_to(port)
}

/// A one-member etcd, its client URL and port.
async fn one_member() -> (EtcdCluster, String, u16) {
    let etcd = EtcdCluster::start(1).await;
    let endpoint = etcd.client_urls()[0].clone();
    let port = endpoint.rsplit(':').next().unwrap().parse().unwrap();
    (etcd, endpoint, port)
}

#[tokio::test]
async fn observations_through_the_pool_share_one_connection_per_cluster() {
    let (_etcd, endpoint, port) = one_member().await;
    let pool = EtcdPool::new(Duration::from_secs(60), EtcdMetrics::default());
    let options = EtcdOptions::default();
    let endpoints = [endpoint.clone()];

    for _ in 0..5 {
        let client = pool.get("ns-a/demo", &endpoints, &options).await.unwrap();
        client.member_list_from(&endpoint).await.unwrap();
        client.status(&endpoint).await.unwrap();
    }
    assert_eq!(settle(port, 1).await, 1, "five observations, one connection");

    // Another cluster (here: another namespace's, at the same address) never shares it.
    let other = pool.get("ns-b/demo", &endpoints, &options).await.unwrap();
    other.status(&endpoint).await.unwrap();
    assert_eq!(settle(port, 2).await, 2);
    assert_eq!(pool.len(), 2);

    // Other options (a shorter timeout) dial afresh and replace the pooled connection.
    let changed = EtcdOptions { request_timeout: Duration::from_secs(2), ..EtcdOptions::default() };
    let replaced = pool.get("ns-b/demo", &endpoints, &changed).await.unwrap();
    drop(other);
    replaced.status(&endpoint).await.unwrap();
    assert_eq!(pool.len(), 2);

    // Forgotten (the cluster did not answer, or is gone): its connection closes once unused.
    pool.forget("ns-a/demo");
    pool.forget("ns-b/demo");
    drop(replaced);
    assert!(pool.is_empty());
    assert_eq!(settle(port, 0).await, 0, "every connection closed");
}

#[tokio::test]
async fn an_idle_connection_is_closed_and_the_next_observation_dials_again() {
    let (_etcd, endpoint, port) = one_member().await;
    let pool = EtcdPool::new(Duration::from_millis(300), EtcdMetrics::default());
    let endpoints = [endpoint.clone()];
    let client = pool.get("ns/demo", &endpoints, &EtcdOptions::default()).await.unwrap();
    client.status(&endpoint).await.unwrap();
    drop(client);
    assert_eq!(settle(port, 1).await, 1);
    tokio::time::sleep(Duration::from_millis(400)).await;
    // The expired entry goes when the pool is next used; its connection with it.
    let client = pool.get("ns/other", &endpoints, &EtcdOptions::default()).await.unwrap();
    assert_eq!(pool.len(), 1, "the idle one is gone");
    client.status(&endpoint).await.unwrap();
    assert_eq!(settle(port, 1).await, 1, "only the new cluster's connection is open");
}

#[tokio::test]
async fn a_pool_without_an_idle_limit_keeps_nothing() {
    let (_etcd, endpoint, port) = one_member().await;
    let pool = EtcdPool::new(Duration::ZERO, EtcdMetrics::default());
    for _ in 0..3 {
        let client =
            pool.get("ns/demo", std::slice::from_ref(&endpoint), &EtcdOptions::default()).await.unwrap();
        client.status(&endpoint).await.unwrap();
    }
    assert!(pool.is_empty());
    assert_eq!(settle(port, 0).await, 0, "each observation's connection closed with it");
}
