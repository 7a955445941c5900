//! Core REST semantics with an unmodified kube-rs client over HTTPS.

mod support;

use std::collections::BTreeMap;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::{apps::v1::StatefulSet, core::v1::ConfigMap};
use kube::{
    Api, ResourceExt,
    api::{DeleteParams, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams},
    discovery::Discovery,
};
use serde_json::json;

fn cm(name: &str, labels: &[(&str, &str)]) -> ConfigMap {
    serde_json::from_value(json!({
        "metadata": {"name": name, "labels": labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<BTreeMap<_, _>>()},
        "data": {"k": "v"}
    }))
    .unwrap()
}

#[tokio::test]
async fn discovery_lists_the_served_resources() {
    let s = support::start().await;
    let discovery = Discovery::new(s.client.clone()).run().await.unwrap();
    let mut kinds = Vec::new();
    for group in discovery.groups() {
        for (ar, _) in group.recommended_resources() {
            kinds.push(format!("{}/{}", ar.group, ar.kind));
        }
    }
    for k in [
        "/ConfigMap",
        "/Namespace",
        "apps/StatefulSet",
        "coordination.k8s.io/Lease",
        "policy/PodDisruptionBudget",
    ] {
        assert!(kinds.contains(&k.to_string()), "{k} missing from {kinds:?}");
    }
    let version = s.client.apiserver_version().await.unwrap();
    assert_eq!(version.major, "1");
}

#[tokio::test]
async fn create_get_list_update_and_conflicts() {
    let s = support::start().await;
    let api: Api<ConfigMap> = Api::namespaced(s.client.clone(), "default");
    let created = api.create(&PostParams::default(), &cm("a", &[("app", "x")])).await.unwrap();
    assert!(created.metadata.uid.is_some() && created.metadata.creation_timestamp.is_some());
    let rv1 = created.resource_version().unwrap();
    api.create(&PostParams::default(), &cm("b", &[("app", "y")])).await.unwrap();

    let err = api.create(&PostParams::default(), &cm("a", &[])).await.unwrap_err();
    assert!(
        matches!(err, kube::Error::Api(ref s) if s.code == 409 && s.reason == "AlreadyExists"),
        "{err:?}"
    );

    let listed = api.list(&ListParams::default().labels("app=x")).await.unwrap();
    assert_eq!(listed.items.iter().map(|c| c.name_any()).collect::<Vec<_>>(), ["a"]);
    assert!(listed.metadata.resource_version.is_some());
    let paged = api.list(&ListParams::default().limit(1)).await.unwrap();
    assert_eq!(paged.items.len(), 1);
    let rest = api
        .list(&ListParams::default().limit(1).continue_token(paged.metadata.continue_.as_deref().unwrap()))
        .await
        .unwrap();
    assert_eq!(rest.items[0].name_any(), "b");

    let mut changed = created.clone();
    changed.data = Some(BTreeMap::from([("k".into(), "w".into())]));
    let replaced = api.replace("a", &PostParams::default(), &changed).await.unwrap();
    assert_ne!(replaced.resource_version().unwrap(), rv1);
    // The same stale resourceVersion again: 409 Conflict.
    let err = api.replace("a", &PostParams::default(), &changed).await.unwrap_err();
    assert!(matches!(err, kube::Error::Api(ref s) if s.code == 409), "{err:?}");

    let merged = api
        .patch("a", &PatchParams::default(), &Patch::Merge(json!({"data": {"extra": "1"}})))
        .await
        .unwrap();
    assert_eq!(merged.data.unwrap().len(), 2);
    let jp: json_patch_ops::Ops = vec![json!({"op": "remove", "path": "/data/extra"})];
    let patched = api
        .patch("a", &PatchParams::default(), &Patch::<()>::Json(serde_json::from_value(json!(jp)).unwrap()))
        .await
        .unwrap();
    assert_eq!(patched.data.unwrap().len(), 1);

    api.delete("a", &DeleteParams::default()).await.unwrap();
    assert!(api.get_opt("a").await.unwrap().is_none());
    let err = Api::<ConfigMap>::namespaced(s.client.clone(), "nowhere")
        .create(&PostParams::default(), &cm("z", &[]))
        .await
        .unwrap_err();
    assert!(matches!(err, kube::Error::Api(ref s) if s.code == 404), "namespaces must exist: {err:?}");
}

mod json_patch_ops {
    pub type Ops = Vec<serde_json::Value>;
}

#[tokio::test]
async fn watch_resumes_from_a_resource_version_and_old_ones_are_gone() {
    let s = support::start().await;
    let api: Api<ConfigMap> = Api::namespaced(s.client.clone(), "default");
    let start = api.list(&ListParams::default()).await.unwrap().metadata.resource_version.unwrap();
    api.create(&PostParams::default(), &cm("w", &[("watched", "yes")])).await.unwrap();
    api.patch("w", &PatchParams::default(), &Patch::Merge(json!({"data": {"k": "2"}}))).await.unwrap();
    api.create(&PostParams::default(), &cm("other", &[])).await.unwrap();
    api.delete("w", &DeleteParams::default()).await.unwrap();

    let stream = api.watch(&WatchParams::default().labels("watched=yes").timeout(2), &start).await.unwrap();
    let events: Vec<String> = stream
        .map_ok(|e| match e {
            WatchEvent::Added(o) => format!("ADDED {}", o.name_any()),
            WatchEvent::Modified(o) => format!("MODIFIED {}", o.name_any()),
            WatchEvent::Deleted(o) => format!("DELETED {}", o.name_any()),
            WatchEvent::Bookmark(_) => "BOOKMARK".into(),
            WatchEvent::Error(e) => format!("ERROR {}", e.code),
        })
        .try_collect()
        .await
        .unwrap();
    assert!(events.contains(&"BOOKMARK".to_string()), "bookmarks were asked for: {events:?}");
    let changes: Vec<_> = events.into_iter().filter(|e| e != "BOOKMARK").collect();
    assert_eq!(changes, ["ADDED w", "MODIFIED w", "DELETED w"]);

    s.sim.store().compact(u64::MAX / 2);
    let mut stream = api.watch(&WatchParams::default().timeout(2), &start).await.unwrap().boxed();
    let first = stream.next().await.unwrap().unwrap();
    assert!(matches!(first, WatchEvent::Error(ref e) if e.code == 410), "{first:?}");
}

#[tokio::test]
async fn server_side_apply_merges_and_removes_what_a_manager_dropped() {
    let s = support::start().await;
    let api: Api<ConfigMap> = Api::namespaced(s.client.clone(), "default");
    let apply = |data: serde_json::Value| json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ssa"}, "data": data});
    let pp = PatchParams::apply("team-a").force();
    api.patch("ssa", &pp, &Patch::Apply(apply(json!({"a": "1", "b": "2"})))).await.unwrap();
    api.patch("ssa", &PatchParams::apply("team-b"), &Patch::Apply(apply(json!({"c": "3"})))).await.unwrap();
    let cm = api.patch("ssa", &pp, &Patch::Apply(apply(json!({"a": "1"})))).await.unwrap();
    assert_eq!(cm.data.unwrap(), BTreeMap::from([("a".into(), "1".into()), ("c".into(), "3".into())]));
    let err = api.patch("ssa", &PatchParams::default(), &Patch::Apply(apply(json!({})))).await.unwrap_err();
    assert!(matches!(err, kube::Error::Api(ref s) if s.code == 400), "apply needs a field manager: {err:?}");
}

#[tokio::test]
async fn an_apply_with_a_resource_version_lands_only_on_that_version() {
    let s = support::start().await;
    let api: Api<ConfigMap> = Api::namespaced(s.client.clone(), "default");
    let pp = PatchParams::apply("team-a").force();
    let apply = |rv: Option<&str>, v: &str| {
        let mut o =
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "rv"}, "data": {"a": v}});
        if let Some(rv) = rv {
            o["metadata"]["resourceVersion"] = json!(rv);
        }
        o
    };
    let read = api.patch("rv", &pp, &Patch::Apply(apply(None, "1"))).await.unwrap();
    let rv = read.metadata.resource_version.clone().unwrap();
    api.patch(
        "rv",
        &PatchParams::apply("team-b"),
        &Patch::Apply(
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "rv"}, "data": {"b": "x"}}),
        ),
    )
    .await
    .unwrap();
    // Another writer came in between: the apply computed from the old read is refused.
    let err = api.patch("rv", &pp, &Patch::Apply(apply(Some(&rv), "2"))).await.unwrap_err();
    assert!(matches!(err, kube::Error::Api(ref s) if s.code == 409), "{err:?}");
    let now = api.get("rv").await.unwrap();
    let current = now.metadata.resource_version.clone().unwrap();
    api.patch("rv", &pp, &Patch::Apply(apply(Some(&current), "2"))).await.unwrap();
    // The precondition is not a field the manager owns: a later apply without it keeps the object whole.
    let after = api.patch("rv", &pp, &Patch::Apply(apply(None, "3"))).await.unwrap();
    assert!(after.metadata.resource_version.is_some());
    assert_eq!(after.data.unwrap(), BTreeMap::from([("a".into(), "3".into()), ("b".into(), "x".into())]));
}

#[tokio::test]
async fn finalizers_hold_deletion_and_owners_collect_their_dependents() {
    let s = support::start().await;
    let api: Api<ConfigMap> = Api::namespaced(s.client.clone(), "default");
    let mut held = cm("held", &[]);
    held.metadata.finalizers = Some(vec!["example.com/wait".into()]);
    let owner = api.create(&PostParams::default(), &held).await.unwrap();
    let mut dependent = cm("dependent", &[]);
    dependent.metadata.owner_references =
        Some(vec![k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference {
            api_version: "v1".into(),
            kind: "ConfigMap".into(),
            name: "held".into(),
            uid: owner.uid().unwrap(),
            ..Default::default()
        }]);
    api.create(&PostParams::default(), &dependent).await.unwrap();

    let marked = api.delete("held", &DeleteParams::default()).await.unwrap().left().expect("still there");
    assert!(marked.metadata.deletion_timestamp.is_some());
    assert!(api.get_opt("dependent").await.unwrap().is_some(), "the owner is not gone yet");
    api.patch("held", &PatchParams::default(), &Patch::Merge(json!({"metadata": {"finalizers": null}})))
        .await
        .unwrap();
    assert!(api.get_opt("held").await.unwrap().is_none());
    assert!(api.get_opt("dependent").await.unwrap().is_none(), "garbage collected with its owner");
}

#[tokio::test]
async fn statefulset_scale_subresource_and_generation() {
    let s = support::start().await;
    let api: Api<StatefulSet> = Api::namespaced(s.client.clone(), "default");
    let sts: StatefulSet = serde_json::from_value(json!({
        "metadata": {"name": "db"},
        "spec": {"replicas": 1, "serviceName": "db", "selector": {"matchLabels": {"app": "db"}},
                 "template": {"metadata": {"labels": {"app": "db"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}}
    }))
    .unwrap();
    let created = api.create(&PostParams::default(), &sts).await.unwrap();
    assert_eq!(created.metadata.generation, Some(1));
    api.patch_scale("db", &PatchParams::default(), &Patch::Merge(json!({"spec": {"replicas": 3}})))
        .await
        .unwrap();
    let scaled = api.get("db").await.unwrap();
    assert_eq!(scaled.spec.as_ref().unwrap().replicas, Some(3));
    assert_eq!(scaled.metadata.generation, Some(2));
    let scale = api.get_scale("db").await.unwrap();
    assert_eq!(scale.spec.unwrap().replicas, Some(3));
    assert_eq!(scale.status.unwrap().selector.as_deref(), Some("app=db"));

    // Status writes go through /status only and never bump the generation.
    let st = api
        .patch_status(
            "db",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"replicas": 3, "readyReplicas": 2}})),
        )
        .await
        .unwrap();
    assert_eq!(st.metadata.generation, Some(2));
    assert_eq!(st.status.as_ref().unwrap().ready_replicas, Some(2));
    let ignored = api
        .patch("db", &PatchParams::default(), &Patch::Merge(json!({"status": {"readyReplicas": 0}})))
        .await
        .unwrap();
    assert_eq!(ignored.status.unwrap().ready_replicas, Some(2), "the main endpoint ignores status");
}

#[tokio::test]
async fn deleting_a_namespace_empties_it_first() {
    use k8s_openapi::api::core::v1::Namespace;
    let s = support::start().await;
    let namespaces: Api<Namespace> = Api::all(s.client.clone());
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": "team"}})).unwrap();
    namespaces.create(&PostParams::default(), &ns).await.unwrap();
    let api: Api<ConfigMap> = Api::namespaced(s.client.clone(), "team");
    api.create(&PostParams::default(), &cm("a", &[])).await.unwrap();
    let mut held = cm("held", &[]);
    held.metadata.finalizers = Some(vec!["example.com/wait".into()]);
    api.create(&PostParams::default(), &held).await.unwrap();

    namespaces.delete("team", &DeleteParams::default()).await.unwrap();
    let terminating = namespaces.get("team").await.unwrap();
    assert_eq!(terminating.status.unwrap().phase.as_deref(), Some("Terminating"));
    let err = api.create(&PostParams::default(), &cm("late", &[])).await.unwrap_err();
    assert!(matches!(err, kube::Error::Api(ref s) if s.code == 403), "{err:?}");

    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while api.get_opt("a").await.unwrap().is_some() {
        assert!(std::time::Instant::now() < deadline, "content not deleted");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(namespaces.get_opt("team").await.unwrap().is_some(), "waits for the finalizer of held");
    api.patch("held", &PatchParams::default(), &Patch::Merge(json!({"metadata": {"finalizers": null}})))
        .await
        .unwrap();
    while namespaces.get_opt("team").await.unwrap().is_some() {
        assert!(std::time::Instant::now() < deadline, "namespace not removed");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_start_that_cannot_bind_says_which_address_and_why() {
    let s = support::start().await;
    let dir = tempfile::tempdir().unwrap();
    let Err(err) = kube_sim::KubeSim::start(s.sim.addr, dir.path()).await else {
        panic!("a second server bound {} too", s.sim.addr)
    };
    assert!(matches!(err, kube_sim::StartError::Bind { addr, .. } if addr == s.sim.addr), "{err:?}");
    assert!(std::error::Error::source(&err).is_some(), "the system's reason is kept");
    assert!(err.to_string().contains(&s.sim.addr.to_string()), "{err}");
}
