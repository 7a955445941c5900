//! Member replacement benchmark: demo-2 of a 3-member cluster holding 1000
//! keys replaced through the RecoveryService (ReplaceMember: recorded steps,
//! quorum checks, the per-cluster lock), against the same change done bare
//! in the same run — etcd's member remove, a learner added under the same
//! peer URL, its claim and pod deleted so it starts empty, promote retried
//! until in sync — on the same kube-sim node with real etcd pods. Prints a
//! table of medians and the ratio; `cargo bench -p system-tests --bench replacement`.

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim, Pod};
use kube::{
    Api,
    api::{DeleteParams, Patch, PatchParams},
};
use system_tests::{median, real::RealCluster};

const ROUNDS: usize = 5;
const LIMIT: Duration = Duration::from_secs(120);
const PEER: &str = "http://demo-2.demo.default.svc.cluster.local:2380";

/// One etcd call with a deadline: a call whose answer is lost must not stall the run (seen once:
/// a member remove that etcd applied but never answered).
async fn within<T>(call: impl Future<Output = Result<T, etcd_client::Error>>) -> Result<T, String> {
    match tokio::time::timeout(Duration::from_secs(5), call).await {
        Ok(answer) => answer.map_err(|e| e.to_string()),
        Err(_) => Err("no answer within 5 s".into()),
    }
}

/// The ID of the member with peer URL [`PEER`], if etcd lists one (asked until it answers).
async fn listed(etcd: &mut etcd_client::Client) -> Option<u64> {
    let started = Instant::now();
    loop {
        match within(etcd.member_list()).await {
            Ok(list) => {
                return list
                    .members()
                    .iter()
                    .find(|m| m.peer_urls().iter().any(|u| u == PEER))
                    .map(|m| m.id());
            }
            Err(e) => assert!(started.elapsed() < LIMIT, "member list never answered: {e}"),
        }
    }
}

/// Remove → learner add → empty volume → promote (retried until in sync); no records, no checks.
async fn bare_replace(c: &RealCluster) -> Duration {
    let started = Instant::now();
    let mut etcd = c.etcd_of("demo", 2).await;
    let id = c.members().await.iter().find(|m| m.name == "demo-2").expect("demo-2").id;
    // Retried (etcd refuses changes until members have been connected a while), as any client must;
    // an attempt without an answer may have been applied, so membership says when it is done.
    while listed(&mut etcd).await == Some(id) {
        if let Err(e) = within(etcd.member_remove(id)).await {
            assert!(started.elapsed() < LIMIT, "bare remove never succeeded: {e}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let new_id = loop {
        if let Some(new_id) = listed(&mut etcd).await {
            break new_id;
        }
        let learner = Some(etcd_client::MemberAddOptions::new().with_is_learner());
        if let Err(e) = within(etcd.member_add([PEER], learner)).await {
            assert!(started.elapsed() < LIMIT, "bare add never succeeded: {e}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    // The pod joins the members listed in the ConfigMap: write it as the operator would.
    let cms: Api<ConfigMap> = Api::namespaced(c.client.clone(), "default");
    let patch = serde_json::json!({"data": {"ETCD_INITIAL_CLUSTER_STATE": "existing"}});
    cms.patch("demo-config", &PatchParams::default(), &Patch::Merge(&patch)).await.expect("config");
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(c.client.clone(), "default");
    claims.delete("data-demo-2", &DeleteParams::default()).await.expect("claim");
    Api::<Pod>::namespaced(c.client.clone(), "default")
        .delete("demo-2", &DeleteParams::default())
        .await
        .expect("pod");
    while within(etcd.member_promote(new_id)).await.is_err() {
        assert!(started.elapsed() < LIMIT, "bare promote never succeeded");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    started.elapsed()
}

/// Untimed: every member answers and etcd lists three voters before the next replacement, and
/// both sides start from a cluster at rest: etcd rejects a removal that "breaks active quorum"
/// until a member promoted has been active for 5 s, which otherwise lands on whichever side runs
/// right after a promotion (seen: 5 s of the operator's 6).
async fn settle(c: &RealCluster) {
    c.converge("the cluster settled", LIMIT, || c.services.lifecycle.get_cluster_status(&c.r)).await;
    c.assert_settled(3).await;
    tokio::time::sleep(Duration::from_secs(6)).await;
}

fn main() {
    let rt =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    rt.block_on(Box::pin(async {
        let c = RealCluster::start(3, Duration::from_secs(30)).await;
        c.write("bench", 1000).await;
        tokio::time::sleep(Duration::from_secs(5)).await;
        let (mut bare, mut operator) = (vec![], vec![]);
        for round in 0..ROUNDS {
            bare.push(bare_replace(&c).await);
            settle(&c).await;
            let t = Instant::now();
            c.converge("operator replacement", LIMIT, || {
                c.services.recovery.replace_member(&c.r, Some("demo-2"))
            })
            .await;
            operator.push(t.elapsed());
            settle(&c).await;
            eprintln!("round {round} done");
        }
        assert_eq!(c.count("bench").await, 1000);
        let (b, o) = (median(bare), median(operator));
        println!("\nmember replacement of demo-2 (3 members, 1000 keys), median of {ROUNDS} rounds\n");
        println!("| change                       | bare etcd    | operator     | ratio |");
        println!("| ---------------------------- | ------------ | ------------ | ----- |");
        println!(
            "| replace one member (empty)   | {:>9.0} ms | {:>9.0} ms | {:>5.2} |",
            b.as_secs_f64() * 1000.0,
            o.as_secs_f64() * 1000.0,
            o.as_secs_f64() / b.as_secs_f64()
        );
    }));
}
