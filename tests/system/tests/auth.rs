//! etcd's authentication on real etcd pods: root by the Secret's password, the operator by its
//! certificate, and a restore that keeps the root Secret consistent with the restored data.

use std::time::Duration;

use etcd_operator_common::ClusterRef;
use system_tests::{
    real::{RealCluster, tls_spec},
    secure::{etcdctl, key, operator_certs, secret},
};

async fn root_password(c: &RealCluster, cluster: &str) -> String {
    let s = secret(&c.client, &format!("{cluster}-etcd-root")).await.expect("root Secret");
    assert_eq!(s.type_.as_deref(), Some("kubernetes.io/basic-auth"));
    assert_eq!(key(&s, "username"), b"root");
    String::from_utf8(key(&s, "password")).unwrap()
}

#[tokio::test]
async fn auth_admits_root_by_the_secrets_password_and_a_restore_keeps_secret_and_data_consistent() {
    let mut s = tls_spec(1, serde_json::json!({"operatorManaged": {}}));
    s.auth = Some(etcd_operator_api::cluster::AuthSpec { enabled: true });
    let c = RealCluster::start_with(s.clone(), Duration::from_secs(10)).await;
    let password = root_password(&c, "demo").await;
    assert_eq!(password.len(), 48, "24 random bytes");
    let dir = tempfile::tempdir().unwrap();
    operator_certs(&c.client, "demo", dir.path()).await;
    let as_root =
        etcdctl(&c.sim, "demo-0", "demo", dir.path(), Some(&format!("root:{password}")), &["user", "list"]);
    let users = String::from_utf8_lossy(&as_root.stdout).into_owned();
    assert!(as_root.status.success(), "{}", String::from_utf8_lossy(&as_root.stderr));
    assert_eq!(users.split_whitespace().collect::<Vec<_>>(), ["etcd-operator", "root"]);
    let wrong =
        etcdctl(&c.sim, "demo-0", "demo", dir.path(), Some("root:not-the-password"), &["user", "list"]);
    assert!(
        !wrong.status.success() && String::from_utf8_lossy(&wrong.stderr).contains("authentication failed")
    );
    // An application user without a role is refused what root may do: authentication is really on.
    let add = etcdctl(
        &c.sim,
        "demo-0",
        "demo",
        dir.path(),
        Some(&format!("root:{password}")),
        &["user", "add", "app:app-pw"],
    );
    assert!(add.status.success(), "{}", String::from_utf8_lossy(&add.stderr));
    let app = etcdctl(&c.sim, "demo-0", "demo", dir.path(), Some("app:app-pw"), &["put", "k", "v"]);
    assert!(String::from_utf8_lossy(&app.stderr).contains("permission denied"), "{app:?}");
    c.write("auth", 5).await;

    // A restore brings back the source's users and root password; the restored cluster's Secret
    // is made anew, and the operator sets root's password in the data to it.
    c.backup("with-auth").await;
    let restored = ClusterRef { namespace: "default".into(), name: "restored".into() };
    let mut spec = serde_json::to_value(&s).unwrap();
    spec["restore"] = serde_json::json!({"backupName": "with-auth"});
    let spec = serde_json::from_value(spec).unwrap();
    Box::pin(c.services.lifecycle.create_cluster(&restored, Some(spec))).await.unwrap();
    c.converge("the restored cluster running", Duration::from_secs(120), || {
        c.services.lifecycle.update_cluster(&restored, None)
    })
    .await;
    c.wait_for_auth(&restored).await;
    let restored_password = root_password(&c, "restored").await;
    assert_ne!(restored_password, password);
    let rdir = tempfile::tempdir().unwrap();
    operator_certs(&c.client, "restored", rdir.path()).await;
    let now = etcdctl(
        &c.sim,
        "restored-0",
        "restored",
        rdir.path(),
        Some(&format!("root:{restored_password}")),
        &["user", "list"],
    );
    assert!(now.status.success(), "the Secret's password works: {}", String::from_utf8_lossy(&now.stderr));
    assert!(String::from_utf8_lossy(&now.stdout).contains("app"), "the source's users came back");
    let old = etcdctl(
        &c.sim,
        "restored-0",
        "restored",
        rdir.path(),
        Some(&format!("root:{password}")),
        &["user", "list"],
    );
    assert!(!old.status.success(), "the source's root password no longer works");
    let got = etcdctl(
        &c.sim,
        "restored-0",
        "restored",
        rdir.path(),
        None,
        &["get", "auth/", "--prefix", "--keys-only"],
    );
    let keys = String::from_utf8_lossy(&got.stdout).lines().filter(|l| !l.is_empty()).count();
    assert_eq!(keys, 5, "{got:?}");
}
