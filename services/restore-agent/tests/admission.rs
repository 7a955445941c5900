//! The agent against real etcd members: a member that ran before and lost its
//! data is refused, one not yet added waits until it is added as a learner,
//! and with nobody answering a bootstrapping member starts while a member of a
//! formed cluster waits.

use std::{
    path::Path,
    process::Stdio,
    time::{Duration, Instant},
};

use etcd_fixture::EtcdCluster;
use tokio::process::{Child, Command};

/// The agent for `member` on an empty data directory, no restore running.
fn agent(dir: &Path, member: &str, initial_cluster: &str, state: &str) -> Child {
    Command::new(env!("CARGO_BIN_EXE_restore-agent"))
        .args(["--endpoint=http://127.0.0.1:1", "--namespace=default", "--cluster=demo"])
        .arg(format!("--member={member}"))
        .arg(format!("--data-dir={}", dir.join(member).display()))
        .args(["--etcd-version=3.5.17", "--admission-poll-ms=200", "--log-format=json"])
        .env("ETCD_INITIAL_CLUSTER", initial_cluster)
        .env("ETCD_INITIAL_CLUSTER_STATE", state)
        .env("ETCD_INITIAL_CLUSTER_TOKEN", "demo-token")
        .env_remove("RESTORE_TOKEN")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("restore-agent")
}

/// Waits for the agent to exit: its success and everything it logged.
async fn finished(child: Child, limit: Duration) -> (bool, String) {
    let out = tokio::time::timeout(limit, child.wait_with_output())
        .await
        .expect("the agent did not exit in time")
        .expect("agent output");
    let log = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), log)
}

/// Asserts the agent is still waiting after `for_`, then stops it.
async fn still_waiting(mut child: Child, for_: Duration) {
    tokio::time::sleep(for_).await;
    assert!(child.try_wait().unwrap().is_none(), "the agent should still be waiting");
    child.kill().await.unwrap();
}

fn initial(cluster: &EtcdCluster, upto: usize) -> String {
    cluster.members()[..upto]
        .iter()
        .map(|m| format!("{}={}", m.name, m.peer_url))
        .collect::<Vec<_>>()
        .join(",")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_member_starts_only_when_etcds_membership_says_it_never_ran() {
    let mut cluster = EtcdCluster::start(2).await;
    cluster.wait_healthy().await;
    let dir = tempfile::tempdir().unwrap();

    // m1 ran (it published its client URL): on an empty disk it is refused, whatever the state says.
    for state in ["existing", "new"] {
        let (ok, log) =
            finished(agent(dir.path(), "m1", &initial(&cluster, 2), state), Duration::from_secs(20)).await;
        assert!(!ok && log.contains("its data is lost") && log.contains("replaced"), "{log}");
    }

    // m2 is not a member yet: it waits, and starts as soon as it is added as a learner.
    let m2 = cluster.prepare_member();
    let peer = cluster.members()[m2].peer_url.clone();
    let waiting = agent(dir.path(), "m2", &initial(&cluster, 3), "existing");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut etcd = etcd_client::Client::connect(cluster.client_urls(), None).await.unwrap();
    // etcd refuses membership changes ("unhealthy cluster") until its members have been connected a while.
    let deadline = Instant::now() + Duration::from_secs(15);
    while let Err(e) =
        etcd.member_add([peer.clone()], Some(etcd_client::MemberAddOptions::new().with_is_learner())).await
    {
        assert!(Instant::now() < deadline, "adding the learner: {e}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let added = Instant::now();
    let (ok, log) = finished(waiting, Duration::from_secs(20)).await;
    assert!(
        ok && log.contains("m2 is not a member") && log.contains("m2 is a learner that has not run yet"),
        "{log}"
    );
    eprintln!("started {:?} after the learner was added", added.elapsed());

    // Nobody answers: a formed cluster's member waits, a bootstrapping one starts.
    cluster.kill(0).await;
    cluster.kill(1).await;
    still_waiting(agent(dir.path(), "m1", &initial(&cluster, 2), "existing"), Duration::from_secs(3)).await;
    let (ok, log) =
        finished(agent(dir.path(), "m1", &initial(&cluster, 2), "new"), Duration::from_secs(20)).await;
    assert!(ok && log.contains("the cluster is bootstrapping"), "{log}");

    // A member with data starts on it without asking anyone.
    std::fs::create_dir_all(dir.path().join("m0/member")).unwrap();
    let (ok, log) =
        finished(agent(dir.path(), "m0", &initial(&cluster, 2), "existing"), Duration::from_secs(5)).await;
    assert!(ok && log.contains("holds data"), "{log}");
}
