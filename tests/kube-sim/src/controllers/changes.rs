//! What changed since a controller pass, as kube-controller-manager's informers would deliver it:
//! the passes reconcile only the objects an event touched (their own or their pods'), instead of
//! every object every tick (a thousand StatefulSets took a whole core that way).

use std::collections::BTreeSet;

use serde_json::Value;

use crate::store::{Event, EventType, Txn};

/// A namespace and a name.
pub type Name = (String, String);

/// The objects a pass must look at.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Changes {
    /// Everything (the first pass, or events were dropped from the history).
    pub everything: bool,
    /// Something changed at all.
    pub any: bool,
    /// StatefulSets that changed, or whose pods did.
    pub statefulsets: BTreeSet<Name>,
    /// Deployments that changed, or whose pods did.
    pub deployments: BTreeSet<Name>,
    /// Namespaces where a claim was removed: their StatefulSets recreate missing claims of pending
    /// pods. (Claims the StatefulSets create, or that change, wake nobody: at a thousand sets in
    /// one namespace, each new claim made a pass look at every set.)
    pub claim_namespaces: BTreeSet<String>,
}

impl Changes {
    /// Everything must be looked at.
    pub fn everything() -> Self {
        Self { everything: true, any: true, ..Self::default() }
    }

    /// The changes committed after resourceVersion `since` (everything when they are not all kept).
    pub fn since(txn: &Txn<'_>, since: u64) -> Self {
        let Some(events) = txn.changes_since(since) else { return Self::everything() };
        let mut out = Self::default();
        for e in events {
            out.add(e);
        }
        out
    }

    fn add(&mut self, e: &Event) {
        self.any = true;
        let name =
            |o: &Value| (e.namespace.clone(), o["metadata"]["name"].as_str().unwrap_or_default().to_owned());
        match e.resource.as_str() {
            "apps/statefulsets" => {
                self.statefulsets.insert(name(&e.object));
            }
            "apps/deployments" => {
                self.deployments.insert(name(&e.object));
            }
            "/persistentvolumeclaims" if e.kind == EventType::Deleted => {
                self.claim_namespaces.insert(e.namespace.clone());
            }
            "/pods" => {
                // Before and after: an owner reference may have been added or removed.
                for pod in std::iter::once(&e.object).chain(e.prev.as_deref()) {
                    for (kind, owner) in owners(pod) {
                        let set = match kind {
                            "StatefulSet" => &mut self.statefulsets,
                            "Deployment" => &mut self.deployments,
                            _ => continue,
                        };
                        set.insert((e.namespace.clone(), owner.to_owned()));
                    }
                }
            }
            _ => {}
        }
    }
}

/// An object's owners, as (kind, name).
fn owners(object: &Value) -> impl Iterator<Item = (&str, &str)> {
    object["metadata"]["ownerReferences"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| Some((r["kind"].as_str()?, r["name"].as_str()?)))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::store::Store;

    fn key(resource: &str, name: &str) -> crate::store::Key {
        (resource.into(), "ns".into(), name.into())
    }

    #[test]
    fn a_pass_sees_only_what_changed_after_it_and_everything_after_a_gap() {
        let store = Store::default();
        store.keep_history(3);
        let owned = |owner: &str| json!([{"kind": "StatefulSet", "name": owner, "apiVersion": "apps/v1"}]);
        let start = store.read(|t| t.rv());
        store
            .transact(|t| {
                t.put(key("apps/statefulsets", "a"), json!({"metadata": {"name": "a"}}));
                t.put(
                    key("/pods", "b-0"),
                    json!({"metadata": {"name": "b-0", "ownerReferences": owned("b")}}),
                );
                Ok(())
            })
            .unwrap();
        let seen = store.read(|t| Changes::since(t, start));
        let names = |v: &[&str]| v.iter().map(|n| ("ns".to_owned(), n.to_string())).collect::<BTreeSet<_>>();
        assert_eq!(seen.statefulsets, names(&["a", "b"]), "the set, and the owner of the pod");
        assert!(seen.any && !seen.everything && seen.deployments.is_empty());

        let after = store.read(|t| t.rv());
        assert_eq!(store.read(|t| Changes::since(t, after)), Changes::default(), "nothing new");
        // A pod that loses its owner reference still wakes the set it left.
        store
            .transact(|t| {
                t.put(key("/pods", "b-0"), json!({"metadata": {"name": "b-0"}}));
                t.put(key("/persistentvolumeclaims", "data-b-0"), json!({"metadata": {"name": "data-b-0"}}));
                Ok(())
            })
            .unwrap();
        let seen = store.read(|t| Changes::since(t, after));
        assert_eq!(seen.statefulsets, names(&["b"]));
        assert!(seen.claim_namespaces.is_empty(), "a new claim wakes no set");
        let before_removal = store.read(|t| t.rv());
        store
            .transact(|t| {
                t.remove(&key("/persistentvolumeclaims", "data-b-0"));
                Ok(())
            })
            .unwrap();
        let seen = store.read(|t| Changes::since(t, before_removal));
        assert_eq!(
            seen.claim_namespaces,
            BTreeSet::from(["ns".to_owned()]),
            "a removed claim wakes its namespace"
        );
        // Five events, three kept: the first pass's start is gone, so everything is looked at.
        assert!(store.read(|t| Changes::since(t, start)).everything);
    }
}
