//! A second real client: the Python `kubernetes` package (installed by `scripts/setup.sh`) runs
//! create, list, patch and watch (resumed, and through a 410), server-side apply (a conflict,
//! then forced), strict field validation and a dry run against kube-sim.

mod support;

use std::process::Command;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_client_creates_lists_patches_and_watches_through_a_410() {
    let s = support::start().await;
    // Five kept events: the script's ten changes compact the history it listed at.
    s.sim.store().keep_history(5);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python_client.py");
    let kubeconfig = s.sim.kubeconfig.clone();
    let out = tokio::task::spawn_blocking(move || {
        Command::new("python3").arg(script).arg(kubeconfig).output().expect("python3 runs")
    })
    .await
    .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(
        !text.contains("No module named 'kubernetes'"),
        "the Python kubernetes client is missing: run scripts/setup.sh\n{text}"
    );
    assert!(out.status.success() && text.trim_end().ends_with("ok"), "{text}");
}
