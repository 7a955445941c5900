//! Resources served in two API groups over one store, converted as kube-apiserver converts them.
//! Events: `events.k8s.io/v1` is a view of the core/v1 Events (stored in the core form), so an
//! Event written through either API is read, listed and watched through both (`kubectl get
//! events` and `kubectl describe` show what a controller recorded with `events.k8s.io/v1`).

use std::borrow::Cow;

use serde_json::{Map, Value};

use crate::registry::ResourceType;

/// Fields of `events.k8s.io/v1` and the core/v1 fields they are stored as.
const EVENT_FIELDS: [(&str, &str); 14] = [
    ("regarding", "involvedObject"),
    ("related", "related"),
    ("note", "message"),
    ("reason", "reason"),
    ("type", "type"),
    ("action", "action"),
    ("reportingController", "reportingComponent"),
    ("reportingInstance", "reportingInstance"),
    ("eventTime", "eventTime"),
    ("series", "series"),
    ("deprecatedSource", "source"),
    ("deprecatedFirstTimestamp", "firstTimestamp"),
    ("deprecatedLastTimestamp", "lastTimestamp"),
    ("deprecatedCount", "count"),
];

/// Whether `rt` is served as a view of another resource's storage.
pub fn is_view(rt: &ResourceType) -> bool {
    rt.viewed().is_some()
}

/// A stored object as `rt` serves it.
pub fn served<'v>(rt: &ResourceType, stored: &'v Value) -> Cow<'v, Value> {
    if !is_view(rt) {
        return Cow::Borrowed(stored);
    }
    Cow::Owned(renamed(stored, rt, EVENT_FIELDS.iter().map(|(v1, core)| (*core, *v1))))
}

/// [`served`], taking the stored object.
pub fn into_served(rt: &ResourceType, stored: Value) -> Value {
    if is_view(rt) { served(rt, &stored).into_owned() } else { stored }
}

/// An object written through `rt` in the form it is stored in.
pub fn stored(rt: &ResourceType, served: Value) -> Value {
    if !is_view(rt) {
        return served;
    }
    let core = ResourceType { group: String::new(), ..rt.clone() };
    renamed(&served, &core, EVENT_FIELDS.iter().map(|(v1, core)| (*v1, *core)))
}

/// `object` with its top-level fields renamed `from → to` (others dropped, as a conversion
/// drops what the other form cannot hold) and the apiVersion and kind of `rt`.
fn renamed<'a>(object: &Value, rt: &ResourceType, pairs: impl Iterator<Item = (&'a str, &'a str)>) -> Value {
    let mut out = Map::new();
    out.insert("apiVersion".into(), Value::String(rt.api_version()));
    out.insert("kind".into(), Value::String(rt.kind.clone()));
    out.insert("metadata".into(), object["metadata"].clone());
    for (from, to) in pairs {
        if let Some(v) = object.get(from).filter(|v| !v.is_null()) {
            out.insert(to.into(), v.clone());
        }
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn an_event_round_trips_between_the_two_forms() {
        let rt = |group: &str| ResourceType {
            group: group.into(),
            ..crate::registry::Registry::default().find("", "v1", "events").unwrap()
        };
        let v1 = json!({
            "apiVersion": "events.k8s.io/v1", "kind": "Event",
            "metadata": {"name": "demo.1", "namespace": "default"},
            "regarding": {"kind": "EtcdCluster", "name": "demo"}, "note": "scaled to 3",
            "reason": "Scaled", "type": "Normal", "action": "Scale",
            "reportingController": "etcd-operator/scaling", "reportingInstance": "scaling-0",
            "eventTime": "2026-12-01T07:00:00.000000Z", "series": {"count": 2, "lastObservedTime": "2026-12-01T07:01:00.000000Z"},
        });
        let core = stored(&rt("events.k8s.io"), v1.clone());
        assert_eq!(core["apiVersion"], "v1");
        assert_eq!(core["involvedObject"]["name"], "demo");
        assert_eq!(core["message"], "scaled to 3");
        assert_eq!(core["reportingComponent"], "etcd-operator/scaling");
        assert_eq!(core.get("note"), None);
        assert_eq!(served(&rt("events.k8s.io"), &core).into_owned(), v1);
        assert!(matches!(served(&rt(""), &core), Cow::Borrowed(_)), "the core form is served as stored");
    }
}
