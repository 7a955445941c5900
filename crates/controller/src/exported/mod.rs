//! Per-cluster metrics: exported by the health controller's leader (clusters, from the status
//! the probes record) and the backup controller's leader (schedules), from their watch
//! caches. One exporter per object, as the cluster-service runs as stateless replicas; the
//! series of an object go with it (deleted, or no longer led: a new leader exports them).

pub mod samples;

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
};

use etcd_operator_api::{EtcdBackup, EtcdBackupSchedule, EtcdCluster};
use kube::{ResourceExt, runtime::watcher::Event};
use prometheus_client::{
    collector::Collector,
    encoding::{DescriptorEncoder, EncodeMetric},
    metrics::{counter::Counter, family::Family, gauge::Gauge},
};

use samples::{Kind, Metric, Sample};

type Key = (String, String);

/// A cluster as last watched, and the leader changes seen of it.
#[derive(Debug)]
struct Watched {
    cluster: Arc<EtcdCluster>,
    leader: Option<String>,
    leader_changes: u64,
}

#[derive(Debug, Default)]
struct State {
    clusters: BTreeMap<Key, Watched>,
    schedules: BTreeMap<Key, Arc<EtcdBackupSchedule>>,
    backups: BTreeMap<Key, Arc<EtcdBackup>>,
    /// Keys seen since a watch restarted its list (Init): what is not seen again is gone.
    relisting_clusters: Option<Vec<Key>>,
    relisting_schedules: Option<Vec<Key>>,
    relisting_backups: Option<Vec<Key>>,
}

/// The objects whose metrics this process exports, fed by its watches while it leads.
#[derive(Clone, Debug, Default)]
pub struct Exported(Arc<Mutex<State>>);

fn key<K: ResourceExt>(o: &K) -> Key {
    (o.namespace().unwrap_or_default(), o.name_any())
}

/// What a watch event means for a map of watched objects.
enum Change<'a, K> {
    Put(&'a K),
    Remove(&'a K),
    Relist,
    Listed,
}

fn change<K>(event: &Event<K>) -> Change<'_, K> {
    match event {
        Event::Apply(o) | Event::InitApply(o) => Change::Put(o),
        Event::Delete(o) => Change::Remove(o),
        Event::Init => Change::Relist,
        Event::InitDone => Change::Listed,
    }
}

/// Keeps `map` as the watch sees it: objects applied and deleted, and on a relist only what the
/// new list holds.
fn keep<K: ResourceExt + Clone>(
    map: &mut BTreeMap<Key, Arc<K>>,
    relisting: &mut Option<Vec<Key>>,
    event: &Event<K>,
) {
    match change(event) {
        Change::Put(o) => {
            if let Some(seen) = relisting.as_mut() {
                seen.push(key(o));
            }
            map.insert(key(o), Arc::new(o.clone()));
        }
        Change::Remove(o) => drop(map.remove(&key(o))),
        Change::Relist => *relisting = Some(Vec::new()),
        Change::Listed => {
            if let Some(seen) = relisting.take() {
                map.retain(|k, _| seen.contains(k));
            }
        }
    }
}

impl Exported {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Notes a watch event of the EtcdClusters (the health controller's).
    pub fn saw_cluster(&self, event: &Result<Event<EtcdCluster>, kube::runtime::watcher::Error>) {
        let Ok(event) = event else { return };
        let mut s = self.state();
        match change(event) {
            Change::Put(c) => {
                let k = key(c);
                if let Some(seen) = s.relisting_clusters.as_mut() {
                    seen.push(k.clone());
                }
                let leader = samples::leader(c);
                let w = s.clusters.entry(k).or_insert_with(|| Watched {
                    cluster: Arc::new(c.clone()),
                    leader: leader.clone(),
                    leader_changes: 0,
                });
                // A leader that moved to another member; losing one is has_leader's to tell.
                if leader.is_some() && w.leader.is_some() && leader != w.leader {
                    w.leader_changes += 1;
                }
                if leader.is_some() {
                    w.leader = leader;
                }
                w.cluster = Arc::new(c.clone());
            }
            Change::Remove(c) => drop(s.clusters.remove(&key(c))),
            Change::Relist => s.relisting_clusters = Some(Vec::new()),
            Change::Listed => {
                if let Some(seen) = s.relisting_clusters.take() {
                    s.clusters.retain(|k, _| seen.contains(k));
                }
            }
        }
    }

    /// Notes a watch event of the EtcdBackupSchedules (the backup controller's).
    pub fn saw_schedule(&self, event: &Result<Event<EtcdBackupSchedule>, kube::runtime::watcher::Error>) {
        let Ok(event) = event else { return };
        let mut guard = self.state();
        let s = &mut *guard;
        keep(&mut s.schedules, &mut s.relisting_schedules, event);
    }

    /// Notes a watch event of the EtcdBackups (the backup controller's).
    pub fn saw_backup(&self, event: &Result<Event<EtcdBackup>, kube::runtime::watcher::Error>) {
        let Ok(event) = event else { return };
        let mut guard = self.state();
        let s = &mut *guard;
        keep(&mut s.backups, &mut s.relisting_backups, event);
    }

    /// Forgets everything: leadership is lost, and the next leader exports.
    pub fn clear(&self) {
        *self.state() = State::default();
    }

    /// Every sample to export now, and whether any cluster, and any schedule or backup, is
    /// exported.
    pub fn samples(&self) -> (Vec<Sample>, bool, bool) {
        let s = self.state();
        let clusters = s.clusters.values().flat_map(|w| samples::cluster(&w.cluster, w.leader_changes));
        let schedules = s.schedules.values().flat_map(|o| samples::schedule(o));
        let backups = samples::last_backups(s.backups.values().map(|b| b.as_ref()));
        let any_backups = !s.schedules.is_empty() || !s.backups.is_empty();
        (clusters.chain(schedules).chain(backups).collect(), !s.clusters.is_empty(), any_backups)
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
