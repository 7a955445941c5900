//! Service account tokens and the review APIs: TokenRequest issues signed
//! tokens with audiences and an expiry, TokenReview tells who a token is for
//! an audience (and refuses forged, foreign-audience and orphaned tokens),
//! SubjectAccessReview answers from RBAC for users, groups and service
//! accounts, bad tokens get 401 and no token is anonymous, and pods get
//! projected tokens for the audience they ask for.

mod support;

use k8s_openapi::api::{
    authentication::v1::{TokenReview, TokenReviewSpec},
    authorization::v1::{ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec},
    core::v1::{ConfigMap, Pod, ServiceAccount},
};
use kube::{
    Api, Client,
    api::{DeleteParams, ListParams, PostParams},
};
use serde_json::json;

async fn review(
    client: &Client,
    token: &str,
    audiences: &[&str],
) -> k8s_openapi::api::authentication::v1::TokenReviewStatus {
    let spec = TokenReviewSpec {
        token: Some(token.to_owned()),
        audiences: Some(audiences.iter().map(|a| (*a).to_owned()).collect()),
    };
    let r = TokenReview { spec, ..Default::default() };
    Api::<TokenReview>::all(client.clone()).create(&PostParams::default(), &r).await.unwrap().status.unwrap()
}

#[tokio::test]
async fn tokens_are_reviewed_for_their_audiences_and_their_account() {
    let s = support::start().await;
    let token = s.token_for("default", "tooling", &["etcd-operator"]).await;
    let status = review(&s.client, &token, &["etcd-operator"]).await;
    assert_eq!(status.authenticated, Some(true), "{status:?}");
    let user = status.user.unwrap();
    assert_eq!(user.username.as_deref(), Some("system:serviceaccount:default:tooling"));
    let groups = user.groups.unwrap();
    for g in ["system:serviceaccounts", "system:serviceaccounts:default", "system:authenticated"] {
        assert!(groups.iter().any(|x| x == g), "{g} in {groups:?}");
    }
    assert_eq!(status.audiences.unwrap(), ["etcd-operator"]);

    // Meant for another audience (the API server's): refused, and names why.
    let status = review(&s.client, &token, &[]).await;
    assert_eq!(status.authenticated, Some(false));
    assert!(status.error.unwrap().contains("audiences"));
    // A token not signed by the API server.
    let forged = "kube-sim:serviceaccount:default:tooling";
    assert_eq!(review(&s.client, forged, &["etcd-operator"]).await.authenticated, Some(false));
    // The admin's static token is for the API server only.
    assert_eq!(review(&s.client, "kube-sim", &["etcd-operator"]).await.authenticated, Some(false));

    // The account goes: its tokens stop working.
    let accounts: Api<ServiceAccount> = Api::namespaced(s.client.clone(), "default");
    accounts.delete("tooling", &DeleteParams::default()).await.unwrap();
    let status = review(&s.client, &token, &["etcd-operator"]).await;
    assert_eq!(status.authenticated, Some(false));
    assert!(status.error.unwrap().contains("no longer exists"));
}

#[tokio::test]
async fn api_requests_with_a_bad_token_get_401_and_without_one_are_anonymous() {
    let s = support::start().await;
    let cms = |c: Client| Api::<ConfigMap>::namespaced(c, "default");
    let bad = s.client_with_token("not-a-token").await;
    match cms(bad).list(&ListParams::default()).await {
        Err(kube::Error::Api(e)) => assert_eq!((e.code, e.reason.as_str()), (401, "Unauthorized")),
        other => panic!("expected 401, got {other:?}"),
    }
    // A token for another audience does not reach the API.
    let foreign = s.token_for("default", "tooling", &["etcd-operator"]).await;
    assert!(cms(s.client_with_token(&foreign).await).list(&ListParams::default()).await.is_err());
    // The TokenRequest default audience is the API server's: RBAC decides (nothing bound: 403).
    let own = s.client_as("default", "tooling").await;
    match cms(own).list(&ListParams::default()).await {
        Err(kube::Error::Api(e)) => assert_eq!(e.code, 403, "{e:?}"),
        other => panic!("expected 403, got {other:?}"),
    }
    // Too short a lifetime is refused with the rule.
    let request: k8s_openapi::api::authentication::v1::TokenRequest =
        serde_json::from_value(json!({"spec": {"audiences": ["x"], "expirationSeconds": 60}})).unwrap();
    let accounts: Api<ServiceAccount> = Api::namespaced(s.client.clone(), "default");
    let e = accounts.create_token_request("tooling", &PostParams::default(), &request).await.unwrap_err();
    assert!(e.to_string().contains("less than 10 minutes"), "{e}");
    let e = accounts.create_token_request("missing", &PostParams::default(), &request).await.unwrap_err();
    assert!(matches!(e, kube::Error::Api(ref s) if s.code == 404), "{e}");
}

async fn can(
    client: &Client,
    user: &str,
    groups: &[&str],
    verb: &str,
    ns: &str,
    resource: &str,
    sub: Option<&str>,
) -> (bool, String) {
    let spec = SubjectAccessReviewSpec {
        user: Some(user.to_owned()),
        groups: Some(groups.iter().map(|g| (*g).to_owned()).collect()),
        resource_attributes: Some(ResourceAttributes {
            namespace: Some(ns.to_owned()),
            verb: Some(verb.to_owned()),
            group: Some("etcd.operator.dev".to_owned()),
            resource: Some(resource.to_owned()),
            subresource: sub.map(String::from),
            name: Some("demo".to_owned()),
            ..Default::default()
        }),
        ..Default::default()
    };
    let r = SubjectAccessReview { spec, ..Default::default() };
    let status = Api::<SubjectAccessReview>::all(client.clone())
        .create(&PostParams::default(), &r)
        .await
        .unwrap()
        .status
        .unwrap();
    (status.allowed, status.reason.unwrap_or_default())
}

#[tokio::test]
async fn access_reviews_answer_from_rbac_for_users_groups_and_service_accounts() {
    let s = support::start().await;
    s.sim
        .apply_yaml(
            r#"
apiVersion: v1
kind: Namespace
metadata: {name: team-a}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: scaler, namespace: team-a}
rules:
  - {apiGroups: [etcd.operator.dev], resources: [etcdclusters/scale], verbs: [update]}
  - {apiGroups: [etcd.operator.dev], resources: [etcdclusters], verbs: [get]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: scalers, namespace: team-a}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: scaler}
subjects:
  - {kind: User, name: alice}
  - {kind: Group, name: oncall}
  - {kind: ServiceAccount, name: tooling, namespace: ops}
"#,
        )
        .unwrap();
    let c = &s.client;
    assert!(can(c, "alice", &[], "update", "team-a", "etcdclusters", Some("scale")).await.0);
    assert!(can(c, "bob", &["oncall"], "update", "team-a", "etcdclusters", Some("scale")).await.0);
    let sa = "system:serviceaccount:ops:tooling";
    assert!(can(c, sa, &["system:serviceaccounts"], "get", "team-a", "etcdclusters", None).await.0);
    // Not the verb, not the namespace, not the subresource, not the user.
    let (allowed, reason) = can(c, "alice", &[], "delete", "team-a", "etcdclusters", None).await;
    assert!(!allowed);
    assert_eq!(
        reason,
        "etcdclusters \"demo\" is forbidden: User \"alice\" cannot delete resource \"etcdclusters\" in API group \"etcd.operator.dev\" in the namespace \"team-a\""
    );
    assert!(!can(c, "alice", &[], "update", "team-b", "etcdclusters", Some("scale")).await.0);
    assert!(!can(c, "alice", &[], "update", "team-a", "etcdclusters", Some("members")).await.0);
    assert!(!can(c, "bob", &["others"], "get", "team-a", "etcdclusters", None).await.0);
    // Asking needs the right to ask.
    let nobody = s.client_as("default", "nobody").await;
    let r = SubjectAccessReview {
        spec: SubjectAccessReviewSpec { user: Some("alice".into()), ..Default::default() },
        ..Default::default()
    };
    let e = Api::<SubjectAccessReview>::all(nobody).create(&PostParams::default(), &r).await.unwrap_err();
    assert!(matches!(e, kube::Error::Api(ref s) if s.code == 403), "{e}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pod_gets_a_projected_token_for_its_audience_bound_to_it() {
    let s = support::start_with_node().await;
    let node = s.sim.node().unwrap().clone();
    let accounts: Api<ServiceAccount> = Api::namespaced(s.client.clone(), "default");
    accounts
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "agent"}})).unwrap(),
        )
        .await
        .unwrap();
    let pod = json!({
        "metadata": {"name": "p"},
        "spec": {
            "serviceAccountName": "agent",
            "containers": [{"name": "main", "image": "busybox:1.36", "command": ["sh", "-c", "exec sleep 1000"],
                            "volumeMounts": [{"name": "id", "mountPath": "/id"}]}],
            "volumes": [{"name": "id", "projected": {"sources": [
                {"serviceAccountToken": {"audience": "etcd-operator", "expirationSeconds": 600, "path": "token"}},
                {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"fieldPath": "metadata.namespace"}}]}},
            ]}}],
        }
    });
    let pods: Api<Pod> = Api::namespaced(s.client.clone(), "default");
    pods.create(&PostParams::default(), &serde_json::from_value(pod).unwrap()).await.unwrap();
    let mut token = String::new();
    for _ in 0..200 {
        match node.exec("default", "p", "main", &["cat", "/id/token"]).await {
            Ok(out) if out.status.success() => {
                token = String::from_utf8_lossy(&out.stdout).into_owned();
                break;
            }
            _ => tokio::time::sleep(std::time::Duration::from_millis(100)).await,
        }
    }
    assert!(!token.is_empty(), "the projected token never appeared");
    let out = node.exec("default", "p", "main", &["cat", "/id/namespace"]).await.unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "default");
    let status = review(&s.client, &token, &["etcd-operator"]).await;
    assert_eq!(status.user.and_then(|u| u.username).as_deref(), Some("system:serviceaccount:default:agent"));
    // Bound to the pod: it dies with it.
    pods.delete("p", &DeleteParams::default().grace_period(0)).await.unwrap();
    support::eventually("the pod gone", 20, || {
        let pods = pods.clone();
        async move { pods.get_opt("p").await.unwrap().is_none() }
    })
    .await;
    assert_eq!(review(&s.client, &token, &["etcd-operator"]).await.authenticated, Some(false));
}
