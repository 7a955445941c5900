//! Watches: newline-delimited JSON events from a resourceVersion, with
//! bookmarks, selectors, timeouts, and 410 Gone for compacted history.

use std::{borrow::Cow, sync::Arc, time::Duration};

use axum::{
    body::{Body, Bytes},
    response::Response,
};
use serde_json::{Value, json};
use tokio::sync::broadcast::error::RecvError;

use super::{
    ApiState, read,
    request::{Query, Target},
    table::{self, Include},
};
use crate::{
    convert::served,
    error::ApiError,
    selectors::{FieldSelector, LabelSelector},
    store::{Event, EventType},
};

const BOOKMARK_EVERY: Duration = Duration::from_secs(5);

fn line(kind: &str, object: &Value) -> Bytes {
    let mut s = serde_json::to_string(&json!({"type": kind, "object": object})).expect("serializes");
    s.push('\n');
    Bytes::from(s)
}

fn bookmark(t: &Target, rv: u64, initial_end: bool) -> Bytes {
    let mut meta = json!({"resourceVersion": rv.to_string()});
    if initial_end {
        meta["annotations"] = json!({"k8s.io/initial-events-end": "true"});
    }
    line("BOOKMARK", &json!({"kind": t.rt.kind, "apiVersion": t.rt.api_version(), "metadata": meta}))
}

/// How a watcher whose selector `matches` sees a change, as kube-apiserver's watch cache shows it:
/// judged on the object before and after, so an object that leaves the selection is DELETED
/// (its last matching state, at the change's resourceVersion), one that enters it is ADDED, and
/// a deletion is seen only by watchers it matched.
fn as_seen<'e>(e: &'e Event, matches: &dyn Fn(&Value) -> bool) -> Option<(&'static str, Cow<'e, Value>)> {
    let now = e.kind != EventType::Deleted && matches(&e.object);
    let before = match e.kind {
        EventType::Deleted => matches(&e.object),
        _ => e.prev.as_deref().is_some_and(matches),
    };
    match (before, now) {
        (true, true) => Some(("MODIFIED", Cow::Borrowed(&e.object))),
        (false, true) => Some(("ADDED", Cow::Borrowed(&e.object))),
        (true, false) if e.kind == EventType::Deleted => Some(("DELETED", Cow::Borrowed(&e.object))),
        (true, false) => {
            let mut last = e.prev.as_deref().cloned().unwrap_or_default();
            last["metadata"]["resourceVersion"] = e.object["metadata"]["resourceVersion"].clone();
            Some(("DELETED", Cow::Owned(last)))
        }
        (false, false) => None,
    }
}

/// What a watcher of `view` (its resource `ours`, its selectors `matches`) is sent of a change,
/// judged as the target's API serves the object: borrowed from the event (shared by every
/// watcher) unless the target serves another version of it.
fn seen_by<'e>(
    view: &crate::registry::ResourceType,
    ours: &dyn Fn(&Event) -> bool,
    matches: &dyn Fn(&Value) -> bool,
    e: &'e Event,
) -> Option<(&'static str, Cow<'e, Value>)> {
    if !ours(e) {
        return None;
    }
    match served(view, &e.object) {
        Cow::Borrowed(_) => as_seen(e, matches),
        Cow::Owned(object) => {
            let prev = e.prev.as_deref().map(|p| Arc::new(served(view, p).into_owned()));
            let (resource, namespace) = (e.resource.clone(), e.namespace.clone());
            let converted = Event { rv: e.rv, resource, namespace, kind: e.kind, object, prev };
            as_seen(&converted, matches).map(|(kind, object)| (kind, Cow::Owned(object.into_owned())))
        }
    }
}

/// Starts a watch.
pub fn stream(
    state: &ApiState,
    t: &Target,
    q: &Query,
    as_table: Option<Include>,
) -> Result<Response, ApiError> {
    let labels = LabelSelector::parse(q.get("labelSelector").unwrap_or_default())?;
    let fields = FieldSelector::parse(q.get("fieldSelector").unwrap_or_default())?;
    let bookmarks = q.flag("allowWatchBookmarks");
    let send_initial = q.flag("sendInitialEvents");
    let timeout = Duration::from_secs(q.get("timeoutSeconds").and_then(|s| s.parse().ok()).unwrap_or(1800));
    let requested = q.get("resourceVersion").unwrap_or_default();
    // Unset or "0" (or sendInitialEvents): the current state first, then changes.
    let (initial, since) = if requested.is_empty() || requested == "0" || send_initial {
        let (items, rv) = state.store.read(|txn| read::matching(txn, t, q).map(|items| (items, txn.rv())))?;
        (items, rv)
    } else {
        let rv = requested
            .parse()
            .map_err(|_| ApiError::bad_request(format!("invalid resourceVersion {requested:?}")))?;
        (Vec::new(), rv)
    };
    let (missed, mut live) = match state.store.watch_from(since) {
        Ok(w) => w,
        Err(gone) => {
            // Kubernetes answers a too-old watch with an ERROR event carrying 410.
            let body = line("ERROR", &gone.status());
            return Ok(Response::builder()
                .header("content-type", "application/json")
                .body(Body::from(body))
                .expect("response"));
        }
    };
    let t = t.clone();
    let namespace = (t.rt.namespaced && !t.namespace.is_empty()).then(|| t.namespace.clone());
    let resource = t.rt.key();
    let ours =
        move |e: &Event| e.resource == resource && namespace.as_ref().is_none_or(|ns| *ns == e.namespace);
    let matches = move |o: &Value| labels.matches(o) && fields.matches(o);
    let view = t.rt.clone();
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(256);
    // As a Table, each event carries a one-row table; only the first has the columns.
    let rt = t.rt.clone();
    let mut first = true;
    let mut render = move |kind: &str, object: &Value| match as_table {
        None => line(kind, object),
        Some(include) => {
            let meta = json!({"resourceVersion": object["metadata"]["resourceVersion"]});
            let out = line(kind, &table::table(&rt, std::slice::from_ref(object), include, meta, first));
            first = false;
            out
        }
    };
    tokio::spawn(async move {
        let mut last = since;
        for object in &initial {
            if tx.send(Ok(render("ADDED", object))).await.is_err() {
                return;
            }
        }
        if send_initial && bookmarks {
            let _ = tx.send(Ok(bookmark(&t, since, true))).await;
        }
        for e in &missed {
            last = e.rv;
            if let Some((kind, object)) = seen_by(&view, &ours, &matches, e)
                && tx.send(Ok(render(kind, &object))).await.is_err()
            {
                return;
            }
        }
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);
        let mut ticker = tokio::time::interval(BOOKMARK_EVERY);
        loop {
            tokio::select! {
                _ = &mut deadline => return,
                _ = ticker.tick(), if bookmarks => {
                    if tx.send(Ok(bookmark(&t, last, false))).await.is_err() { return; }
                }
                event = live.recv() => match event {
                    Ok(e) if e.rv > last => {
                        last = e.rv;
                        if let Some((kind, object)) = seen_by(&view, &ours, &matches, &e)
                            && tx.send(Ok(render(kind, &object))).await.is_err()
                        {
                            return;
                        }
                    }
                    Ok(_) => {}
                    // A watcher that fell behind is closed; the client resumes or relists.
                    Err(RecvError::Lagged(_) | RecvError::Closed) => return,
                },
            }
        }
    });
    let stream = tokio_stream::wrappers::ReceiverStream::new(rx);
    Ok(Response::builder()
        .header("content-type", "application/json")
        .body(Body::from_stream(stream))
        .expect("response"))
}
