//! Reconcilers: one per controller. Each turns an object into calls to the
//! cluster-service and an [`Action`] from the answer; nothing is decided here.

pub mod backup;
pub mod health;
pub mod lifecycle;
pub mod recovery;
pub mod scaling;

use std::{sync::Arc, time::Duration};

use etcd_operator_api::EtcdCluster;
use etcd_operator_proto::v1alpha1 as pb;
use futures::StreamExt;
use k8s_openapi::api::{
    apps::v1::StatefulSet,
    core::v1::{ConfigMap, Service},
    policy::v1::PodDisruptionBudget,
};
use kube::{
    Api, ResourceExt,
    runtime::{
        Controller, WatchStreamExt,
        controller::{self, Action},
        predicates, reflector, watcher,
    },
};

use crate::{ControllerError, runtime::Context};

/// Requeue after a converged reconcile, as a periodic resync.
pub const RESYNC: Duration = Duration::from_secs(300);

/// The action a cluster-service answer asks for.
pub fn action(requeue: Option<&pb::Requeue>, otherwise: Duration) -> Action {
    Action::requeue(asked(requeue).unwrap_or(otherwise))
}

/// The look-again an answer asks for, if any (at least 100 ms).
fn asked(requeue: Option<&pb::Requeue>) -> Option<Duration> {
    requeue.filter(|r| r.requeue).map(|r| Duration::from_millis(r.after_ms.max(100) as u64))
}

/// [`action`] for a controller that looks at every cluster at least every `every` (health,
/// recovery): a later look the answer asks for (a cluster converging for long is looked at
/// less often) does not stretch the probe interval.
pub fn at_least_every(requeue: Option<&pb::Requeue>, every: Duration) -> Action {
    Action::requeue(asked(requeue).map_or(every, |after| after.min(every)))
}

/// Backoff after a failed reconcile, by failure category.
pub fn retry_after(error: &ControllerError) -> Duration {
    match error.category() {
        "aborted" | "deleting" => Duration::from_secs(2),
        "unavailable" | "kubernetes" => Duration::from_secs(5),
        "rejected" | "invalid_object" => Duration::from_secs(60),
        _ => Duration::from_secs(15),
    }
}

/// The gRPC reference of a cluster object.
pub fn cluster_ref(cluster: &EtcdCluster) -> Result<pb::ClusterRef, ControllerError> {
    let namespace = cluster
        .namespace()
        .ok_or_else(|| ControllerError::InvalidObject("EtcdCluster without namespace".into()))?;
    Ok(pb::ClusterRef { namespace, name: cluster.name_any() })
}

/// The generation a reconcile acts on, which the cluster-service's answer must reflect.
pub fn seen_generation(cluster: &EtcdCluster) -> i64 {
    cluster.metadata.generation.unwrap_or_default()
}

fn error_policy(_cluster: Arc<EtcdCluster>, error: &ControllerError, ctx: Arc<Context>) -> Action {
    tracing::warn!(controller = ctx.name, category = error.category(), "reconcile failed: {error}");
    Action::requeue(retry_after(error))
}

/// An API handle on the watched namespace (or all).
fn scoped<K>(ctx: &Context) -> Api<K>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
{
    let ns = &ctx.config.watch_namespace;
    if ns.is_empty() { Api::all(ctx.kube.clone()) } else { Api::namespaced(ctx.kube.clone(), ns) }
}

/// Which of a cluster's objects bring it back when they change, besides the EtcdCluster's own
/// spec (generation).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Owns {
    /// None.
    Nothing,
    /// Its StatefulSet: a new template to roll out, a pod that became ready.
    StatefulSets,
    /// Every object it owns, and the EtcdCluster's finalizers: the lifecycle repairs them, and
    /// keeps its finalizer.
    All,
}

/// What of an EtcdCluster brings it back to a controller: its spec (generation, which a
/// deletion moves too), and its finalizers for the lifecycle that keeps one. Not the finalizers
/// for the others: the lifecycle adding its own to every new cluster was a second look by each of
/// them at every cluster (three calls in fifteen at 1 000 new clusters).
pub fn trigger(cluster: &EtcdCluster, finalizers: bool) -> Option<u64> {
    let generation = predicates::generation(cluster)?;
    if !finalizers {
        return Some(generation);
    }
    let mut hasher = std::hash::DefaultHasher::new();
    std::hash::Hash::hash(&(generation, predicates::finalizers(cluster)), &mut hasher);
    Some(std::hash::Hasher::finish(&hasher))
}

/// Whether a controller's leader exports the clusters it watches (the health controller's, so
/// that each cluster has one exporter).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exports {
    /// Nothing.
    Nothing,
    /// Every watched cluster's metrics (crate::exported).
    Clusters,
}

/// Runs a Controller on EtcdClusters, triggered on spec (generation) changes (and finalizer
/// changes, for the lifecycle) only, so status writes do not retrigger it, and on changes of the
/// objects it `owns`.
pub async fn run_on_clusters<R, Fut>(ctx: Arc<Context>, reconcile: R, owns: Owns, exports: Exports)
where
    R: FnMut(Arc<EtcdCluster>, Arc<Context>) -> Fut + Send + 'static,
    Fut: Future<Output = Result<Action, ControllerError>> + Send + 'static,
{
    let [listed] = InitialLists::expect(&ctx.synced);
    let (reader, writer) = reflector::store();
    let exported = (exports == Exports::Clusters).then(|| ctx.exported.clone());
    if let Some(e) = &exported {
        e.export_clusters(reader.clone());
    }
    let trigger = watcher(scoped::<EtcdCluster>(&ctx), watcher::Config::default())
        .default_backoff()
        // Managed fields are most of a cached object and nothing here reads them (at 1 000
        // clusters they were most of a controller's memory).
        .modify(|c| c.metadata.managed_fields = None)
        .reflect(writer)
        .inspect(move |event| {
            listed.saw(event);
            // Every event, status writes included: leaders are counted from the statuses.
            if let Some(e) = &exported {
                e.saw_cluster(event);
            }
        })
        .applied_objects()
        .predicate_filter(move |c: &EtcdCluster| trigger(c, owns == Owns::All), Default::default());
    let mut controller = Controller::for_stream(trigger, reader.clone())
        .with_config(
            controller::Config::default().concurrency(ctx.config.concurrency).debounce(ctx.config.debounce),
        )
        .graceful_shutdown_on(ctx.stopping());
    let owned = || watcher::Config::default().labels("app.kubernetes.io/managed-by=etcd-operator");
    if owns != Owns::Nothing {
        controller = controller.owns(scoped::<StatefulSet>(&ctx), owned());
    }
    if owns == Owns::All {
        // A change to (or deletion of) any owned object brings its cluster back for repair.
        controller = controller
            .owns(scoped::<Service>(&ctx), owned())
            .owns(scoped::<ConfigMap>(&ctx), owned())
            .owns(scoped::<PodDisruptionBudget>(&ctx), owned());
    }
    let exported = ctx.exported.clone();
    controller
        .run(reconcile, error_policy, ctx)
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::debug!("reconcile outcome: {e}");
            }
        })
        .await;
    // No longer leading (or stopping): the next leader exports.
    exported.clear();
}

/// Marks a controller synced once each of its watch streams has listed everything once.
///
/// Taken from the streams themselves (their `InitDone`), not from
/// `Store::wait_until_ready` in a task of its own: that readiness is a oneshot
/// channel that wakes only the last of several waiters, and the Controller's
/// runner waits on it too, so a second waiter could sleep forever.
pub struct InitialLists {
    pending: Arc<std::sync::atomic::AtomicUsize>,
    seen: std::sync::atomic::AtomicBool,
    synced: etcd_operator_telemetry::admin::Readiness,
}

impl InitialLists {
    /// One marker per stream; the controller is unsynced until every one has seen its list.
    pub fn expect<const N: usize>(synced: &etcd_operator_telemetry::admin::Readiness) -> [Self; N] {
        synced.set(false);
        let pending = Arc::new(std::sync::atomic::AtomicUsize::new(N));
        std::array::from_fn(|_| Self { pending: pending.clone(), seen: false.into(), synced: synced.clone() })
    }

    /// Notes a watch event: the first `InitDone` of this stream counts.
    pub fn saw<K>(&self, event: &Result<watcher::Event<K>, watcher::Error>) {
        use std::sync::atomic::Ordering::SeqCst;
        if matches!(event, Ok(watcher::Event::InitDone))
            && !self.seen.swap(true, SeqCst)
            && self.pending.fetch_sub(1, SeqCst) == 1
        {
            self.synced.set(true);
        }
    }
}

/// Wraps one reconcile of a cluster with its span and metrics.
pub async fn observed<F>(ctx: &Context, cluster: &EtcdCluster, work: F) -> Result<Action, ControllerError>
where
    F: Future<Output = Result<Action, ControllerError>>,
{
    observed_object(ctx, "EtcdCluster", cluster, work).await
}

/// Wraps one reconcile of any object with its span and metrics.
pub async fn observed_object<K, F>(
    ctx: &Context,
    kind: &str,
    object: &K,
    work: F,
) -> Result<Action, ControllerError>
where
    K: ResourceExt,
    F: Future<Output = Result<Action, ControllerError>>,
{
    use tracing::Instrument;
    let span = tracing::info_span!(
        "reconcile",
        otel.name = %format!("{}.reconcile", ctx.name),
        controller = ctx.name,
        k8s.kind = kind,
        cluster.namespace = %object.namespace().unwrap_or_default(),
        cluster.name = %object.name_any(),
        generation = object.meta().generation.unwrap_or_default(),
    );
    let started = std::time::Instant::now();
    let result = work.instrument(span).await;
    let category = result.as_ref().map_or_else(ControllerError::category, |_| "ok");
    ctx.metrics.observe(ctx.name, category, started);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finalizers_bring_a_cluster_back_to_the_lifecycle_only() {
        let cluster = |generation: i64, finalizers: &[&str], phase: &str| -> EtcdCluster {
            serde_json::from_value(serde_json::json!({
                "apiVersion": "etcd.operator.dev/v1alpha1", "kind": "EtcdCluster",
                "metadata": {"name": "demo", "namespace": "prod", "generation": generation,
                             "finalizers": finalizers},
                "spec": {"size": 3, "version": "3.5.17"},
                "status": {"phase": phase},
            }))
            .unwrap()
        };
        let new = cluster(1, &[], "Creating");
        let kept = cluster(1, &["etcd.operator.dev/cleanup"], "Creating");
        let recorded = cluster(1, &[], "Running");
        let changed = cluster(2, &[], "Creating");
        for lifecycle in [true, false] {
            assert_eq!(trigger(&new, lifecycle), trigger(&recorded, lifecycle), "a status write");
            assert_ne!(trigger(&new, lifecycle), trigger(&changed, lifecycle), "a spec change");
        }
        assert_ne!(trigger(&new, true), trigger(&kept, true), "the lifecycle sees its finalizer");
        assert_eq!(trigger(&new, false), trigger(&kept, false), "the others do not");
    }

    #[test]
    fn synced_once_every_stream_has_listed() {
        let synced = etcd_operator_telemetry::admin::Readiness::default();
        synced.set(true);
        let [a, b] = InitialLists::expect(&synced);
        assert!(!synced.get(), "unsynced from the start");
        let done: Result<watcher::Event<EtcdCluster>, watcher::Error> = Ok(watcher::Event::InitDone);
        let init: Result<watcher::Event<EtcdCluster>, watcher::Error> = Ok(watcher::Event::Init);
        a.saw(&init);
        a.saw(&done);
        a.saw(&done);
        assert!(!synced.get(), "a relist of one stream does not count for the other");
        b.saw(&done);
        assert!(synced.get());
    }

    #[test]
    fn a_probe_comes_at_least_every_interval_whatever_the_answer_asks() {
        let every = Duration::from_secs(30);
        let later = |ms| pb::Requeue { requeue: true, after_ms: ms };
        assert_eq!(at_least_every(None, every), Action::requeue(every));
        assert_eq!(at_least_every(Some(&later(5_000)), every), Action::requeue(Duration::from_secs(5)));
        assert_eq!(at_least_every(Some(&later(60_000)), every), Action::requeue(every));
        let none = pb::Requeue { requeue: false, after_ms: 1 };
        assert_eq!(at_least_every(Some(&none), every), Action::requeue(every));
    }
}
