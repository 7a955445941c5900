//! The object store: every object, one global resourceVersion counter, and the
//! event history watches resume from. (Field ownership lives in each object's
//! `metadata.managedFields`.)

use std::{
    collections::{BTreeMap, BTreeSet, HashMap, VecDeque},
    sync::{Arc, Mutex},
};

use serde_json::Value;
use tokio::sync::broadcast;

use crate::error::ApiError;

/// Events kept by default for watches that resume from an older resourceVersion.
pub const HISTORY: usize = 20_000;

/// Kind of watch event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventType {
    /// Created.
    Added,
    /// Changed.
    Modified,
    /// Removed.
    Deleted,
}

impl EventType {
    /// The name used on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Added => "ADDED",
            Self::Modified => "MODIFIED",
            Self::Deleted => "DELETED",
        }
    }
}

/// One change, as watches see it.
#[derive(Clone, Debug)]
pub struct Event {
    /// resourceVersion of the change.
    pub rv: u64,
    /// Storage key of the resource (`group/plural`).
    pub resource: String,
    /// Namespace (empty for cluster-scoped).
    pub namespace: String,
    /// What happened.
    pub kind: EventType,
    /// The object after the change (before it, for deletions, with the deletion's resourceVersion).
    pub object: Value,
    /// The object before a change (none for a creation or a deletion): a watch with a selector
    /// needs it to tell an object leaving the selection (DELETED) from one entering it (ADDED).
    pub prev: Option<Arc<Value>>,
}

/// The events a watch missed, and the receiver of those to come.
pub type Watch = (Vec<Arc<Event>>, broadcast::Receiver<Arc<Event>>);

/// Identity of a stored object.
pub type Key = (String, String, String);

#[derive(Default)]
struct Inner {
    rv: u64,
    objects: BTreeMap<Key, Value>,
    /// Owner UID → the objects whose ownerReferences name it: the garbage collector's
    /// dependency graph, so a deletion finds its dependents without walking every object.
    dependents: HashMap<String, BTreeSet<Key>>,
    /// Shared with the watchers they are sent to: one copy of each event, however many watch.
    history: VecDeque<Arc<Event>>,
    /// Watches may resume from this resourceVersion or later.
    oldest: u64,
}

/// The UIDs an object's ownerReferences name.
fn owner_uids(object: &Value) -> impl Iterator<Item = &str> {
    object["metadata"]["ownerReferences"].as_array().into_iter().flatten().filter_map(|r| r["uid"].as_str())
}

impl Inner {
    /// Stores an object, keeping the owner index; returns what it replaced.
    fn insert(&mut self, key: Key, object: Value) -> Option<Value> {
        for uid in owner_uids(&object) {
            self.dependents.entry(uid.to_owned()).or_default().insert(key.clone());
        }
        let old = self.objects.insert(key.clone(), object);
        if let Some(old) = &old {
            self.unindex(&key, old);
        }
        old
    }

    /// Removes an object, keeping the owner index.
    fn take(&mut self, key: &Key) -> Option<Value> {
        let old = self.objects.remove(key)?;
        self.unindex(key, &old);
        Some(old)
    }

    /// Drops `key` from the index entries of `old`'s owners it no longer names.
    fn unindex(&mut self, key: &Key, old: &Value) {
        let current = self.objects.get(key);
        for uid in owner_uids(old) {
            if current.is_some_and(|c| owner_uids(c).any(|u| u == uid)) {
                continue;
            }
            if let Some(set) = self.dependents.get_mut(uid) {
                set.remove(key);
                if set.is_empty() {
                    self.dependents.remove(uid);
                }
            }
        }
    }
}

/// The store.
pub struct Store {
    inner: Mutex<Inner>,
    tx: broadcast::Sender<Arc<Event>>,
    /// Events kept (kube-apiserver's watch cache size, `--watch-cache-sizes`).
    history: std::sync::atomic::AtomicUsize,
}

impl Default for Store {
    fn default() -> Self {
        Self { inner: Mutex::default(), tx: broadcast::channel(8192).0, history: HISTORY.into() }
    }
}

/// Changes made under the store lock; events are published when it ends.
pub struct Txn<'a> {
    inner: &'a mut Inner,
    events: Vec<Event>,
    /// For a dry run: what each change replaced, to be put back when it ends.
    undo: Option<Undo>,
}

/// What a dry run's changes replaced, in order.
#[derive(Default)]
struct Undo {
    objects: Vec<(Key, Option<Value>)>,
}

impl Undo {
    /// Puts back everything the changes replaced, newest first.
    fn roll_back(self, inner: &mut Inner) {
        for (key, old) in self.objects.into_iter().rev() {
            match old {
                Some(v) => inner.insert(key, v),
                None => inner.take(&key),
            };
        }
    }
}

impl Txn<'_> {
    /// Reads an object.
    pub fn get(&self, key: &Key) -> Option<&Value> {
        self.inner.objects.get(key)
    }

    /// Objects of a resource, in one namespace or all, ordered by namespace and name.
    pub fn list(&self, resource: &str, namespace: Option<&str>) -> Vec<Value> {
        self.scan(resource, namespace).cloned().collect()
    }

    /// [`Txn::list`] without copies: the keys of a resource (and namespace) are contiguous, so
    /// only they are visited (controllers scan every tick; a full walk of the store, copying
    /// every pod per StatefulSet, made a thousand StatefulSets quadratic).
    pub fn scan<'t>(
        &'t self,
        resource: &'t str,
        namespace: Option<&'t str>,
    ) -> impl Iterator<Item = &'t Value> {
        let start: Key = (resource.to_owned(), namespace.unwrap_or_default().to_owned(), String::new());
        self.inner
            .objects
            .range(start..)
            .take_while(move |((r, ns, _), _)| r == resource && namespace.is_none_or(|n| n == ns))
            .map(|(_, v)| v)
    }

    /// [`Txn::scan`] of the objects of one namespace whose names start with `prefix` (a
    /// StatefulSet's pods: `<set>-<ordinal>`), visiting only them: a scan of the whole namespace
    /// per StatefulSet made a thousand of them quadratic again.
    pub fn scan_named<'t, 'a>(
        &'t self,
        resource: &'a str,
        namespace: &'a str,
        prefix: &'a str,
    ) -> impl Iterator<Item = &'t Value> + use<'t, 'a> {
        let start: Key = (resource.to_owned(), namespace.to_owned(), prefix.to_owned());
        self.inner
            .objects
            .range(start..)
            .take_while(move |((r, ns, name), _)| {
                r == resource && ns == namespace && name.starts_with(prefix)
            })
            .map(|(_, v)| v)
    }

    /// The keys of the objects `pick` chooses, of every resource, without copying any object
    /// (garbage collection and namespace deletion look at everything).
    pub fn keys_where(&self, mut pick: impl FnMut(&Key, &Value) -> bool) -> Vec<Key> {
        self.inner.objects.iter().filter(|(k, v)| pick(k, v)).map(|(k, _)| k.clone()).collect()
    }

    /// The keys of the objects whose ownerReferences name `uid`, from the owner index.
    pub fn dependents(&self, uid: &str) -> Vec<Key> {
        self.inner.dependents.get(uid).map(|set| set.iter().cloned().collect()).unwrap_or_default()
    }

    /// The changes committed after resourceVersion `since`, oldest first, as built-in
    /// controllers' informers would deliver them; `None` when some are no longer kept (the
    /// caller must then look at everything, as after a relist).
    pub fn changes_since(&self, since: u64) -> Option<impl Iterator<Item = &Event>> {
        let history = &self.inner.history;
        (since >= self.inner.oldest)
            .then(|| history.range(history.partition_point(|e| e.rv <= since)..).map(|e| &**e))
    }

    /// Writes an object with a new resourceVersion; returns it as stored. In a dry run nothing is
    /// stored, so the object keeps the resourceVersion it had (none, if it is new), as
    /// kube-apiserver answers a dry run.
    pub fn put(&mut self, key: Key, mut object: Value) -> Value {
        if let Some(undo) = &mut self.undo {
            let old = self.inner.objects.get(&key).cloned();
            let meta = &mut object["metadata"];
            match old.as_ref().and_then(|o| o["metadata"].get("resourceVersion")) {
                Some(rv) => meta["resourceVersion"] = rv.clone(),
                None => {
                    if let Some(m) = meta.as_object_mut() {
                        m.remove("resourceVersion");
                    }
                }
            }
            undo.objects.push((key.clone(), old));
            self.inner.insert(key, object.clone());
            return object;
        }
        self.inner.rv += 1;
        let rv = self.inner.rv;
        object["metadata"]["resourceVersion"] = Value::String(rv.to_string());
        let prev = self.inner.insert(key.clone(), object.clone()).map(Arc::new);
        let kind = if prev.is_some() { EventType::Modified } else { EventType::Added };
        self.events.push(Event { rv, resource: key.0, namespace: key.1, kind, object: object.clone(), prev });
        object
    }

    /// Removes an object; returns it with the deletion's resourceVersion (in a dry run, as it was).
    pub fn remove(&mut self, key: &Key) -> Option<Value> {
        let mut object = self.inner.take(key)?;
        if let Some(undo) = &mut self.undo {
            undo.objects.push((key.clone(), Some(object.clone())));
            return Some(object);
        }
        self.inner.rv += 1;
        let rv = self.inner.rv;
        object["metadata"]["resourceVersion"] = Value::String(rv.to_string());
        self.events.push(Event {
            rv,
            resource: key.0.clone(),
            namespace: key.1.clone(),
            kind: EventType::Deleted,
            object: object.clone(),
            prev: None,
        });
        Some(object)
    }

    /// The current resourceVersion.
    pub fn rv(&self) -> u64 {
        self.inner.rv
    }
}

impl Store {
    /// Keeps the last `events` events for resuming watches (default [`HISTORY`]): a benchmark
    /// of thousands of objects would otherwise measure relists after 410 Gone.
    pub fn keep_history(&self, events: usize) {
        self.history.store(events, std::sync::atomic::Ordering::Relaxed);
    }

    /// Runs `f` under the store lock, then publishes the events it caused.
    pub fn transact<T>(&self, f: impl FnOnce(&mut Txn<'_>) -> Result<T, ApiError>) -> Result<T, ApiError> {
        let mut inner = self.inner.lock().unwrap();
        let mut txn = Txn { inner: &mut inner, events: Vec::new(), undo: None };
        let result = f(&mut txn);
        let events: Vec<Arc<Event>> = std::mem::take(&mut txn.events).into_iter().map(Arc::new).collect();
        for e in &events {
            inner.history.push_back(e.clone());
        }
        let keep = self.history.load(std::sync::atomic::Ordering::Relaxed);
        while inner.history.len() > keep {
            let dropped = inner.history.pop_front().expect("non-empty");
            inner.oldest = dropped.rv;
        }
        for e in events {
            let _ = self.tx.send(e);
        }
        result
    }

    /// Runs `f` as [`Store::transact`] would, then takes every change back (`dryRun=All`): its
    /// answer is what the write would have stored, no resourceVersion is spent, nobody sees an
    /// event, and nothing is kept.
    pub fn dry_run<T>(&self, f: impl FnOnce(&mut Txn<'_>) -> Result<T, ApiError>) -> Result<T, ApiError> {
        let mut inner = self.inner.lock().unwrap();
        let mut txn = Txn { inner: &mut inner, events: Vec::new(), undo: Some(Undo::default()) };
        let result = f(&mut txn);
        let undo = txn.undo.take().expect("a dry run keeps its undo");
        undo.roll_back(&mut inner);
        result
    }

    /// Reads without changing anything.
    pub fn read<T>(&self, f: impl FnOnce(&Txn<'_>) -> T) -> T {
        let mut inner = self.inner.lock().unwrap();
        let txn = Txn { inner: &mut inner, events: Vec::new(), undo: None };
        f(&txn)
    }

    /// Starts a watch after resourceVersion `since`: the missed events, then a live receiver.
    ///
    /// Fails with 410 Gone when `since` is older than the kept history.
    pub fn watch_from(&self, since: u64) -> Result<Watch, ApiError> {
        let inner = self.inner.lock().unwrap();
        if since < inner.oldest {
            return Err(ApiError::gone(format!("too old resource version: {since} ({})", inner.oldest + 1)));
        }
        let missed = inner.history.iter().filter(|e| e.rv > since).cloned().collect();
        Ok((missed, self.tx.subscribe()))
    }

    /// Drops history up to `rv` (tests of 410 Gone).
    pub fn compact(&self, rv: u64) {
        let mut inner = self.inner.lock().unwrap();
        inner.history.retain(|e| e.rv > rv);
        inner.oldest = inner.oldest.max(rv);
    }
}

#[cfg(test)]
#[path = "store_tests.rs"]
mod tests;
