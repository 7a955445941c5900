//! Work that outlives the call that starts it (a backup streaming, a stored
//! copy being verified, a snapshot being saved): one task per key in this
//! replica, joined by later calls, its progress and outcome published on a
//! `watch` channel. A call waits for the outcome only while its caller's
//! deadline allows ([`crate::call_budget`]); the table forgets a task when it
//! ends, however it ends, so the next call starts afresh.

use std::{
    collections::{HashMap, VecDeque},
    hash::Hash,
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use etcd_operator_client::transfer::{Progress, Transferred, forward};
use tokio::sync::watch;
use tracing::Instrument;

use crate::{ServiceError, call_budget, transfer::REPORT_EVERY};

/// What a task has published: how far it is, and its outcome once it ended.
#[derive(Clone, Debug)]
pub(crate) struct TaskState<T> {
    pub progress: Transferred,
    pub done: Option<Result<T, ServiceError>>,
}

impl<T> Default for TaskState<T> {
    fn default() -> Self {
        Self { progress: Transferred::default(), done: None }
    }
}

/// This replica's tasks of one kind, by key.
pub(crate) struct Tasks<T>(Arc<Mutex<Table<T>>>);

type Table<T> = HashMap<String, watch::Receiver<TaskState<T>>>;

impl<T> Clone for Tasks<T> {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

impl<T> Default for Tasks<T> {
    fn default() -> Self {
        Self(Arc::default())
    }
}

impl<T: Clone + Send + Sync + 'static> Tasks<T> {
    /// The task `key`: the one running, or a new one made by `run` (given where to publish its
    /// progress) and spawned in the current span.
    pub fn start_or_join<F>(
        &self,
        key: &str,
        run: impl FnOnce(Progress) -> F,
    ) -> watch::Receiver<TaskState<T>>
    where
        F: Future<Output = Result<T, ServiceError>> + Send + 'static,
    {
        let mut table = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(rx) = table.get(key) {
            return rx.clone();
        }
        let (tx, rx) = watch::channel(TaskState::default());
        table.insert(key.to_owned(), rx.clone());
        let (progress, seen) = watch::channel(Transferred::default());
        let work = run(progress);
        let forget = Forget(self.0.clone(), key.to_owned());
        let task = async move {
            // Dropped last, also on a panic: the next call starts afresh.
            let _forget = forget;
            let result = forward(work, seen, |p| tx.send_modify(|s| s.progress = p)).await;
            tx.send_modify(|s| s.done = Some(result));
        };
        tokio::spawn(task.instrument(tracing::Span::current()));
        rx
    }
}

/// How long a call waits for a task at most, when its caller's deadline allows.
const LONGEST_WAIT: Duration = Duration::from_secs(20);

/// The state of a task once it ended, or after what the call may wait (what is left of its
/// caller's deadline less a margin, at most [`LONGEST_WAIT`]).
pub(crate) async fn wait<T: Clone>(mut task: watch::Receiver<TaskState<T>>) -> TaskState<T> {
    let wait = call_budget::wait_for_task(LONGEST_WAIT);
    let _ = tokio::time::timeout(wait, task.wait_for(|s| s.done.is_some())).await;
    task.borrow().clone()
}

/// Runs `work`, which publishes on `progress`, handing the latest progress to `report` at once
/// and then every [`REPORT_EVERY`] until it ends: how a task records in status how far it is.
pub(crate) async fn reporting<T, R>(
    work: impl Future<Output = T>,
    progress: &Progress,
    mut report: impl FnMut(Transferred) -> R,
) -> T
where
    R: Future<Output = ()>,
{
    tokio::pin!(work);
    let mut every = tokio::time::interval(REPORT_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            out = &mut work => return out,
            _ = every.tick() => {
                // Copied out first: the borrow must not live across the await.
                let now = *progress.borrow();
                report(now).await;
            }
        }
    }
}

struct Forget<T>(Arc<Mutex<Table<T>>>, String);

impl<T> Drop for Forget<T> {
    fn drop(&mut self) {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).remove(&self.1);
    }
}

/// Outcomes kept by key, the oldest dropped beyond a bound.
pub(crate) struct BoundedCache<K, V>(Arc<Mutex<Kept<K, V>>>, usize);

/// The entries, and their keys oldest first.
type Kept<K, V> = (HashMap<K, V>, VecDeque<K>);

impl<K, V> Clone for BoundedCache<K, V> {
    fn clone(&self) -> Self {
        Self(self.0.clone(), self.1)
    }
}

impl<K: Eq + Hash + Clone, V: Clone> BoundedCache<K, V> {
    /// A cache of at most `entries`.
    pub fn new(entries: usize) -> Self {
        Self(Arc::default(), entries)
    }

    pub fn get(&self, key: &K) -> Option<V> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).0.get(key).cloned()
    }

    pub fn insert(&self, key: K, value: V) {
        let mut guard = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let (map, order) = &mut *guard;
        if map.insert(key.clone(), value).is_none() {
            order.push_back(key);
        }
        while order.len() > self.1 {
            if let Some(oldest) = order.pop_front() {
                map.remove(&oldest);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// [`wait`] bounded by a deadline of `limit`, as a call scoped by the gRPC layer would be.
    async fn wait_at_most(task: watch::Receiver<TaskState<u32>>, limit: Duration) -> TaskState<u32> {
        // The margin is a third, at least 700 ms: leave room for it on top.
        let deadline = std::time::Instant::now() + limit * 3 / 2 + Duration::from_millis(700);
        call_budget::within(Some(deadline), wait(task)).await
    }

    #[tokio::test]
    async fn a_task_is_joined_while_it_runs_and_forgotten_when_it_ends() {
        let tasks = Tasks::<u32>::default();
        let (go, gate) = tokio::sync::oneshot::channel::<()>();
        let first = tasks.start_or_join("k", |progress| async move {
            progress.send_replace(Transferred { bytes: 5, total: Some(10) });
            let _ = gate.await;
            Ok(7)
        });
        let joined = tasks.start_or_join("k", |_| async { Ok(0) });
        let early = wait_at_most(joined, Duration::from_millis(50)).await;
        assert_eq!((early.progress.bytes, early.done.is_none()), (5, true));
        go.send(()).unwrap();
        let done = wait_at_most(first, Duration::from_secs(5)).await;
        assert!(matches!(done.done, Some(Ok(7))));
        tokio::task::yield_now().await;
        let again = wait_at_most(tasks.start_or_join("k", |_| async { Ok(9) }), Duration::from_secs(5)).await;
        assert!(matches!(again.done, Some(Ok(9))), "a new task once the first ended");
    }

    #[test]
    fn the_cache_drops_the_oldest_beyond_its_bound() {
        let cache = BoundedCache::new(2);
        cache.insert(1, "a");
        cache.insert(2, "b");
        cache.insert(1, "a2");
        cache.insert(3, "c");
        assert_eq!((cache.get(&1), cache.get(&2), cache.get(&3)), (None, Some("b"), Some("c")));
    }
}
