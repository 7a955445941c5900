//! The store: scans, dry runs and the owner index.

use super::*;

#[test]
fn a_scan_sees_its_resource_and_namespace_only_in_order() {
    let store = Store::default();
    let key = |r: &str, ns: &str, n: &str| (r.to_owned(), ns.to_owned(), n.to_owned());
    store
        .transact(|txn| {
            for (r, ns, n) in [
                ("/pods", "a", "x"),
                ("/pods", "ab", "y"),
                ("/pods", "a", "w"),
                ("/podtemplates", "a", "z"),
                ("/persistentvolumeclaims", "a", "v"),
                ("/pods", "", "cluster-scoped"),
            ] {
                txn.put(key(r, ns, n), serde_json::json!({"metadata": {"name": n}}));
            }
            let names = |ns: Option<&str>| -> Vec<String> {
                txn.scan("/pods", ns).map(|v| v["metadata"]["name"].as_str().unwrap().to_owned()).collect()
            };
            assert_eq!(names(Some("a")), ["w", "x"]);
            assert_eq!(names(Some("ab")), ["y"]);
            assert_eq!(names(None), ["cluster-scoped", "w", "x", "y"]);
            assert_eq!(txn.list("/pods", Some("a")).len(), 2);
            for n in ["web-0", "web-1", "web-x", "webb-0", "wea"] {
                txn.put(key("/pods", "a", n), serde_json::json!({"metadata": {"name": n}}));
            }
            txn.put(key("/pods", "ab", "web-2"), serde_json::json!({"metadata": {"name": "web-2"}}));
            let named: Vec<&str> = txn
                .scan_named("/pods", "a", "web-")
                .map(|v| v["metadata"]["name"].as_str().unwrap())
                .collect();
            assert_eq!(named, ["web-0", "web-1", "web-x"]);
            Ok(())
        })
        .unwrap();
}

#[test]
fn a_dry_run_answers_what_would_be_stored_and_keeps_nothing() {
    let store = Store::default();
    let key = |n: &str| ("/configmaps".to_owned(), "a".to_owned(), n.to_owned());
    store
        .transact(|txn| {
            txn.put(key("kept"), serde_json::json!({"metadata": {"name": "kept"}, "data": 1}));
            Ok(())
        })
        .unwrap();
    let (rv, mut events) = store.watch_from(0).map(|(_, rx)| (store.read(|t| t.rv()), rx)).unwrap();
    let answers = store
        .dry_run(|txn| {
            let new = txn.put(key("new"), serde_json::json!({"metadata": {"name": "new"}}));
            let changed = txn.put(key("kept"), serde_json::json!({"metadata": {"name": "kept"}, "data": 2}));
            txn.remove(&key("kept"));
            Ok((new, changed))
        })
        .unwrap();
    assert_eq!(answers.0["metadata"].get("resourceVersion"), None, "a new object has none yet");
    assert_eq!(answers.1["metadata"]["resourceVersion"], rv.to_string(), "a changed one keeps its own");
    store.read(|txn| {
        assert_eq!(txn.rv(), rv);
        assert_eq!(txn.get(&key("new")), None);
        assert_eq!(txn.get(&key("kept")).unwrap()["data"], 1);
    });
    assert!(events.try_recv().is_err(), "nobody saw an event");
}

#[test]
fn the_owner_index_follows_every_change_including_a_dry_run() {
    let store = Store::default();
    let key = |n: &str| ("/pods".to_owned(), "a".to_owned(), n.to_owned());
    let owned = |n: &str, owners: &[&str]| {
        let refs: Vec<_> = owners.iter().map(|u| serde_json::json!({"uid": u})).collect();
        serde_json::json!({"metadata": {"name": n, "ownerReferences": refs}})
    };
    let names = |store: &Store, uid: &str| -> Vec<String> {
        store.read(|t| t.dependents(uid).into_iter().map(|k| k.2).collect())
    };
    store
        .transact(|txn| {
            txn.put(key("p"), owned("p", &["u1", "u2"]));
            txn.put(key("q"), owned("q", &["u1"]));
            txn.put(key("p"), owned("p", &["u2", "u3"]));
            Ok(())
        })
        .unwrap();
    assert_eq!(names(&store, "u1"), ["q"], "p no longer names u1");
    assert_eq!(names(&store, "u2"), ["p"]);
    assert_eq!(names(&store, "u3"), ["p"]);
    store
        .dry_run(|txn| {
            txn.remove(&key("q"));
            txn.put(key("p"), owned("p", &[]));
            txn.put(key("r"), owned("r", &["u1"]));
            assert_eq!(txn.dependents("u1"), [key("r")]);
            Ok(())
        })
        .unwrap();
    assert_eq!(names(&store, "u1"), ["q"], "a dry run's changes are taken back");
    assert_eq!(names(&store, "u3"), ["p"]);
    store.transact(|txn| Ok(txn.remove(&key("p")))).unwrap();
    assert!(names(&store, "u2").is_empty() && names(&store, "u3").is_empty());
}
