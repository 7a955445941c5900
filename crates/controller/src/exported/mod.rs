//! Per-cluster metrics: exported by the health controller's leader (clusters, from the status
//! the probes record) and the backup controller's leader (schedules), read from their watch
//! caches at each scrape (a copy of every object was a second cache at a thousand clusters).
//! One exporter per object, as the cluster-service runs as stateless replicas; the series of an
//! object go with it (deleted, or no longer led: a new leader exports them).

pub mod samples;

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
};

use etcd_operator_api::{EtcdBackup, EtcdBackupSchedule, EtcdCluster};
use kube::{
    ResourceExt,
    runtime::{reflector::Store, watcher::Event},
};
use prometheus_client::{
    collector::Collector,
    encoding::{DescriptorEncoder, EncodeMetric},
    metrics::{counter::Counter, family::Family, gauge::Gauge},
};

use samples::{Kind, Metric, Sample};

type Key = (String, String);

/// The leader last seen of a cluster, and the changes seen of it.
#[derive(Debug)]
struct Leader {
    name: Option<String>,
    changes: u64,
}

/// What is exported: the controllers' own watch caches (no copy of their objects), and the
/// leader changes counted from the clusters' watch events.
#[derive(Default)]
struct State {
    clusters: Option<Store<EtcdCluster>>,
    schedules: Option<Store<EtcdBackupSchedule>>,
    backups: Option<Store<EtcdBackup>>,
    leaders: BTreeMap<Key, Leader>,
    /// Clusters seen since the watch restarted its list (Init): what is not seen again is gone.
    relisting: Option<Vec<Key>>,
}

/// The objects whose metrics this process exports, while it leads.
#[derive(Clone, Default)]
pub struct Exported(Arc<Mutex<State>>);

impl std::fmt::Debug for Exported {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Exported").field("leaders", &self.state().leaders.len()).finish()
    }
}

fn key<K: ResourceExt>(o: &K) -> Key {
    (o.namespace().unwrap_or_default(), o.name_any())
}

/// What `store` holds, in namespace and name order (a scrape is stable).
fn sorted<K: kube::Resource<DynamicType = ()> + Clone>(store: Option<&Store<K>>) -> Vec<Arc<K>> {
    let mut all = store.map(Store::state).unwrap_or_default();
    all.sort_by_key(|o| key(o.as_ref()));
    all
}

impl Exported {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Exports the clusters of the health controller's watch cache.
    pub fn export_clusters(&self, clusters: Store<EtcdCluster>) {
        self.state().clusters = Some(clusters);
    }

    /// Exports the schedules and backups of the backup controller's watch caches.
    pub fn export_backups(&self, schedules: Store<EtcdBackupSchedule>, backups: Store<EtcdBackup>) {
        let mut s = self.state();
        s.schedules = Some(schedules);
        s.backups = Some(backups);
    }

    /// Notes a watch event of the EtcdClusters (the health controller's): leader changes.
    pub fn saw_cluster(&self, event: &Result<Event<EtcdCluster>, kube::runtime::watcher::Error>) {
        let Ok(event) = event else { return };
        let mut s = self.state();
        match event {
            Event::Apply(c) | Event::InitApply(c) => {
                let k = key(c);
                if let Some(seen) = s.relisting.as_mut() {
                    seen.push(k.clone());
                }
                let now = samples::leader(c);
                let known = s.leaders.entry(k).or_insert_with(|| Leader { name: now.clone(), changes: 0 });
                // A leader that moved to another member; losing one is has_leader's to tell.
                if now.is_some() && known.name.is_some() && now != known.name {
                    known.changes += 1;
                }
                if now.is_some() {
                    known.name = now;
                }
            }
            Event::Delete(c) => drop(s.leaders.remove(&key(c))),
            Event::Init => s.relisting = Some(Vec::new()),
            Event::InitDone => {
                if let Some(seen) = s.relisting.take() {
                    s.leaders.retain(|k, _| seen.contains(k));
                }
            }
        }
    }

    /// Forgets everything: leadership is lost, and the next leader exports.
    pub fn clear(&self) {
        *self.state() = State::default();
    }

    /// Every sample to export now, and whether any cluster, and any schedule or backup, is
    /// exported.
    pub fn samples(&self) -> (Vec<Sample>, bool, bool) {
        let s = self.state();
        let clusters = sorted(s.clusters.as_ref());
        let schedules = sorted(s.schedules.as_ref());
        let backups = sorted(s.backups.as_ref());
        let changes = |c: &EtcdCluster| s.leaders.get(&key(c)).map_or(0, |l| l.changes);
        let mut all: Vec<Sample> = clusters.iter().flat_map(|c| samples::cluster(c, changes(c))).collect();
        all.extend(schedules.iter().flat_map(|o| samples::schedule(o)));
        all.extend(samples::last_backups(backups.iter().map(|b| b.as_ref())));
        let any_backups = !schedules.is_empty() || !backups.is_empty();
        (all, !clusters.is_empty(), any_backups)
    }
}

impl Collector for Exported {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let (all, clusters, backups) = self.samples();
        for metric in samples::ALL {
            // Every metric of what this process exports is declared (HELP, TYPE), with or
            // without series now (no operation in progress, no TLS): dashboards may rely on it.
            let exported = if samples::of_backups(metric) { backups } else { clusters };
            if !exported {
                continue;
            }
            let mine: Vec<&Sample> = all.iter().filter(|s| s.metric == metric).collect();
            match metric.kind {
                Kind::Gauge => {
                    let family =
                        Family::<samples::Labels, Gauge<f64, std::sync::atomic::AtomicU64>>::default();
                    for s in mine {
                        family.get_or_create(&s.labels).set(s.value);
                    }
                    described(&mut encoder, metric, &family)?;
                }
                Kind::Counter => {
                    let family = Family::<samples::Labels, Counter>::default();
                    for s in mine {
                        family.get_or_create(&s.labels).inc_by(s.value as u64);
                    }
                    described(&mut encoder, metric, &family)?;
                }
            }
        }
        Ok(())
    }
}

/// Writes `family` under the name and help of `metric`.
fn described(
    encoder: &mut DescriptorEncoder,
    metric: Metric,
    family: &impl EncodeMetric,
) -> std::fmt::Result {
    family.encode(encoder.encode_descriptor(metric.name, metric.help, None, family.metric_type())?)
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
