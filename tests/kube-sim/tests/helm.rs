//! A third real client: Helm's engine (helm-python-sdk, installed by `scripts/setup.sh`)
//! installs, upgrades and uninstalls the project's chart against kube-sim. It needs what a
//! real API server gives it: protobuf bodies for its release Secrets, OpenAPI and field
//! validation for its manifests, server-side dry runs.

mod support;

use std::process::Command;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn helm_installs_upgrades_and_uninstalls_the_chart() {
    let s = support::start().await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/helm.py");
    let chart = concat!(env!("CARGO_MANIFEST_DIR"), "/../../helm/etcd-operator");
    let kubeconfig = s.sim.kubeconfig.clone();
    let home = tempfile::tempdir().unwrap();
    let home_path = home.path().to_path_buf();
    let out = tokio::task::spawn_blocking(move || {
        Command::new("python3")
            .args([script, kubeconfig.to_str().unwrap(), chart])
            .env("HOME", home_path)
            .output()
    })
    .await
    .unwrap()
    .expect("python3 runs");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(
        !text.contains("No module named 'helm_python'"),
        "helm-python-sdk is missing: run scripts/setup.sh\n{text}"
    );
    assert!(out.status.success() && text.trim_end().ends_with("ok"), "{text}");
}
