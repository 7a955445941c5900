//! The namespace controller: a terminating namespace is emptied, then removed.
//! And the service account controller: every active namespace has a `default`
//! ServiceAccount (recreated when deleted), the account pods run as when they
//! name none.

use serde_json::json;

use crate::{
    objects::{self, Propagation},
    registry::Registry,
    store::Txn,
};

/// Creates the `default` ServiceAccount of every active namespace that lacks one.
pub fn ensure_default_accounts(registry: &Registry, txn: &mut Txn<'_>) {
    let Some(rt) = registry.find("", "v1", "serviceaccounts") else { return };
    let active: Vec<String> = txn
        .list("/namespaces", None)
        .into_iter()
        .filter(|ns| ns["metadata"].get("deletionTimestamp").is_none())
        .filter_map(|ns| ns["metadata"]["name"].as_str().map(String::from))
        .collect();
    for ns in active {
        let key = objects::key(&rt, &ns, "default");
        if txn.get(&key).is_none() {
            let account = json!({"apiVersion": "v1", "kind": "ServiceAccount",
                                 "metadata": {"name": "default", "namespace": ns}});
            txn.put(key, objects::on_create(&rt, account));
        }
    }
}

/// Advances every terminating namespace.
pub fn reconcile_all(txn: &mut Txn<'_>) {
    let terminating: Vec<String> = txn
        .list("/namespaces", None)
        .into_iter()
        .filter(|ns| ns["metadata"].get("deletionTimestamp").is_some())
        .filter_map(|ns| ns["metadata"]["name"].as_str().map(String::from))
        .collect();
    for name in terminating {
        let content = txn.keys_where(|k, _| k.1 == name);
        if content.is_empty() {
            txn.remove(&("/namespaces".into(), String::new(), name));
            continue;
        }
        for key in content {
            let marked = txn.get(&key).is_some_and(|o| o["metadata"].get("deletionTimestamp").is_some());
            if !marked {
                objects::delete(txn, &key, Propagation::Background);
            }
        }
    }
}
