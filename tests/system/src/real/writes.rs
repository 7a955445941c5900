//! The tests' own keys in the cluster: written, written under load until told
//! to stop, and counted back (every acknowledged one must be there).

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use super::RealCluster;

impl RealCluster {
    /// Writes `count` keys under `prefix`.
    pub async fn write(&self, prefix: &str, count: usize) {
        let mut etcd = self.etcd().await;
        for i in 0..count {
            etcd.put(format!("{prefix}/{i:04}"), i.to_string(), None).await.expect("put");
        }
    }

    /// Writes keys under `prefix` until `stop`, retrying each until acknowledged; the task returns
    /// how many were acknowledged (each one must be there afterwards).
    pub async fn write_until(
        &self,
        prefix: &'static str,
        stop: Arc<AtomicBool>,
    ) -> tokio::task::JoinHandle<usize> {
        let mut etcd = self.etcd().await;
        tokio::spawn(async move {
            let mut i = 0usize;
            while !stop.load(Ordering::SeqCst) {
                let put = etcd.put(format!("{prefix}/{i:05}"), "v", None);
                if let Ok(Ok(_)) = tokio::time::timeout(Duration::from_secs(2), put).await {
                    i += 1;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            i
        })
    }

    /// Number of keys under `prefix`, read through a quorum read.
    pub async fn count(&self, prefix: &str) -> usize {
        let mut etcd = self.etcd().await;
        let resp = etcd
            .get(format!("{prefix}/"), Some(etcd_client::GetOptions::new().with_prefix().with_count_only()))
            .await
            .expect("get");
        resp.count() as usize
    }

    /// Asserts that every write [`Self::write_until`] acknowledged (`written`) is under `prefix`.
    /// The key it was still retrying when told to stop may be there too: a put that timed out
    /// may have been applied, as etcd promises nothing either way. Nothing beyond it may be.
    pub async fn assert_acknowledged_kept(&self, prefix: &str, written: usize, at: &str) {
        let mut etcd = self.etcd().await;
        let options = etcd_client::GetOptions::new().with_prefix().with_keys_only();
        let resp = etcd.get(format!("{prefix}/"), Some(options)).await.expect("get");
        let indices: std::collections::BTreeSet<usize> =
            resp.kvs().iter().filter_map(|kv| kv.key_str().ok()?.rsplit('/').next()?.parse().ok()).collect();
        let missing: Vec<usize> = (0..written).filter(|i| !indices.contains(i)).collect();
        assert!(missing.is_empty(), "acknowledged writes lost ({at}): {missing:?}");
        let unwritten: Vec<&usize> = indices.iter().filter(|i| **i > written).collect();
        assert!(unwritten.is_empty(), "keys the writer never sent ({at}): {unwritten:?}");
    }
}
