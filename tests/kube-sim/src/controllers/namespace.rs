//! The namespace controller: a terminating namespace is emptied, then removed.

use crate::{
    objects::{self, Propagation},
    store::{Key, Txn},
};

/// Advances every terminating namespace.
pub fn reconcile_all(txn: &mut Txn<'_>) {
    let terminating: Vec<String> = txn
        .list("/namespaces", None)
        .into_iter()
        .filter(|ns| ns["metadata"].get("deletionTimestamp").is_some())
        .filter_map(|ns| ns["metadata"]["name"].as_str().map(String::from))
        .collect();
    for name in terminating {
        let content: Vec<Key> = txn.all().into_iter().map(|(k, _)| k).filter(|k| k.1 == name).collect();
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
