//! A client workload for end-to-end tests: concurrent clients put and get a
//! few keys through etcd, every operation recorded with its call and return
//! time, and the history checked for linearizability with porcupine; plus an
//! append-only writer whose acknowledged keys must all survive.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use porcupine_rs::{CheckResult, Operation};

pub use crate::model::{KvModel, KvOp};

/// The running workload.
pub struct Workload {
    stop: Arc<AtomicBool>,
    history: Arc<Mutex<Vec<Operation<KvModel>>>>,
    acked: Arc<Mutex<Vec<String>>>,
    served: Arc<Mutex<std::collections::BTreeMap<String, usize>>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// What the workload saw.
pub struct Outcome {
    /// Every operation with its times.
    pub history: Vec<Operation<KvModel>>,
    /// Keys the append-only writer had acknowledged.
    pub acked: Vec<String>,
    /// Successful register operations by the member that served them.
    pub served: std::collections::BTreeMap<String, usize>,
}

const KEYS: usize = 4;
const TIMEOUT: Duration = Duration::from_secs(3);

/// The members' client URLs right now (members come and go while a cluster scales).
pub type Endpoints = Arc<dyn Fn() -> Vec<String> + Send + Sync>;

/// Every member of `cluster` in `namespace` that has a pod IP now, by ordinal up to `max`.
pub fn members(node: Arc<kube_sim::node::Node>, namespace: &str, cluster: &str, max: i32) -> Endpoints {
    let (namespace, cluster) = (namespace.to_owned(), cluster.to_owned());
    Arc::new(move || {
        (0..max)
            .filter_map(|i| node.pod_ip(&namespace, &format!("{cluster}-{i}")).ok())
            .map(|ip| format!("http://{ip}:2379"))
            .collect()
    })
}

/// A register client moves to the next member after this many operations.
const OPS_PER_MEMBER: u64 = 25;

impl Workload {
    /// Starts `clients` register clients, each moving over every member `endpoints` names (so
    /// reads are served by followers too), and one append-only writer through all of them.
    pub fn start(endpoints: Endpoints, clients: u32) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let history = Arc::new(Mutex::new(Vec::new()));
        let acked = Arc::new(Mutex::new(Vec::new()));
        let served = Arc::new(Mutex::new(std::collections::BTreeMap::new()));
        let epoch = Instant::now();
        let mut tasks = Vec::new();
        for client in 0..clients {
            let (stop, history, endpoints, served) =
                (stop.clone(), history.clone(), endpoints.clone(), served.clone());
            tasks.push(tokio::spawn(async move {
                let mut n = 0u64;
                let mut round = client as usize;
                while !stop.load(Ordering::SeqCst) {
                    let all = endpoints();
                    let Some(endpoint) = (!all.is_empty()).then(|| all[round % all.len()].clone()) else {
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        continue;
                    };
                    round += 1;
                    let Ok(mut etcd) = etcd_client::Client::connect([endpoint.clone()], None).await else {
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        continue;
                    };
                    let mut here = 0u64;
                    while !stop.load(Ordering::SeqCst) && here < OPS_PER_MEMBER {
                        here += 1;
                        n += 1;
                        let key = format!("reg/{}", (n as usize + client as usize) % KEYS);
                        let call = epoch.elapsed().as_nanos() as i64;
                        let op = if n.is_multiple_of(2) {
                            let value = format!("c{client}-{n}");
                            let put =
                                tokio::time::timeout(TIMEOUT, etcd.put(key.clone(), value.clone(), None))
                                    .await;
                            // An unanswered put may still take effect at any later time.
                            let ret = if matches!(put, Ok(Ok(_))) {
                                epoch.elapsed().as_nanos() as i64
                            } else {
                                i64::MAX
                            };
                            Some((KvOp::Put { key, value }, ret))
                        } else {
                            match tokio::time::timeout(TIMEOUT, etcd.get(key.clone(), None)).await {
                                Ok(Ok(resp)) => {
                                    let value = resp
                                        .kvs()
                                        .first()
                                        .map(|kv| kv.value_str().unwrap_or_default().to_owned());
                                    Some((KvOp::Get { key, value }, epoch.elapsed().as_nanos() as i64))
                                }
                                // A failed read says nothing.
                                _ => None,
                            }
                        };
                        let failed = op.as_ref().is_none_or(|(_, ret)| *ret == i64::MAX);
                        if !failed {
                            *served.lock().unwrap().entry(endpoint.clone()).or_insert(0usize) += 1;
                        }
                        if let Some((op, return_time)) = op {
                            history.lock().unwrap().push(Operation {
                                client_id: Some(client),
                                call_time: call,
                                return_time,
                                op,
                                metadata: None,
                            });
                        }
                        if failed {
                            tokio::time::sleep(Duration::from_millis(100)).await;
                            break;
                        }
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
            }));
        }
        let (stop2, acked2) = (stop.clone(), acked.clone());
        tasks.push(tokio::spawn(async move {
            let mut i = 0u64;
            while !stop2.load(Ordering::SeqCst) {
                let Ok(mut etcd) = etcd_client::Client::connect(endpoints(), None).await else {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                };
                while !stop2.load(Ordering::SeqCst) {
                    let key = format!("ack/{i:06}");
                    match tokio::time::timeout(TIMEOUT, etcd.put(key.clone(), "x", None)).await {
                        Ok(Ok(_)) => acked2.lock().unwrap().push(key),
                        _ => break,
                    }
                    i += 1;
                    tokio::time::sleep(Duration::from_millis(30)).await;
                }
            }
        }));
        Self { stop, history, acked, served, tasks }
    }

    /// Stops every client and returns what they saw.
    pub async fn stop(self) -> Outcome {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.tasks {
            let _ = t.await;
        }
        let history = self.history.lock().unwrap().clone();
        let acked = self.acked.lock().unwrap().clone();
        let served = self.served.lock().unwrap().clone();
        Outcome { history, acked, served }
    }
}

impl Outcome {
    /// Acknowledged appends that are not in the cluster behind `endpoint` (must be empty).
    pub async fn lost_writes(&self, endpoint: &str) -> Vec<String> {
        let mut etcd = etcd_client::Client::connect([endpoint], None).await.expect("etcd connects");
        let options = etcd_client::GetOptions::new().with_prefix().with_keys_only();
        let acked = etcd.get("ack/", Some(options)).await.expect("read acknowledged keys");
        let present: std::collections::BTreeSet<String> =
            acked.kvs().iter().map(|kv| kv.key_str().unwrap_or_default().to_owned()).collect();
        self.acked.iter().filter(|k| !present.contains(*k)).cloned().collect()
    }

    /// Asserts the history can tell something: at least `min` acknowledged writes and `min`
    /// successful reads of the registers, served by at least `members` distinct members (a
    /// linearizability check of an empty or one-member history proves nothing).
    pub fn assert_substantial(&self, min: usize, members: usize) {
        let reads = self.history.iter().filter(|o| matches!(o.op, KvOp::Get { .. })).count();
        let writes = self
            .history
            .iter()
            .filter(|o| matches!(o.op, KvOp::Put { .. }) && o.return_time != i64::MAX)
            .count();
        assert!(reads >= min && writes >= min, "only {reads} reads and {writes} acknowledged writes");
        assert!(self.acked.len() >= min, "the writer made only {} writes", self.acked.len());
        assert!(self.served.len() >= members, "clients reached only {:?}", self.served);
    }

    /// Whether the history is linearizable (`Unknown` when the checker ran out of time).
    pub fn check(&self, limit: Duration) -> CheckResult {
        porcupine_rs::check_operations_timeout::<KvModel>(&self.history, limit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(call: i64, ret: i64, op: KvOp) -> Operation<KvModel> {
        Operation { client_id: Some(0), call_time: call, return_time: ret, op, metadata: None }
    }

    fn put(v: &str) -> KvOp {
        KvOp::Put { key: "k".into(), value: v.into() }
    }

    fn get(v: Option<&str>) -> KvOp {
        KvOp::Get { key: "k".into(), value: v.map(String::from) }
    }

    #[test]
    fn the_checker_tells_a_stale_read_from_a_concurrent_one() {
        // A read that overlaps the put may see either value.
        let ok = vec![op(0, 10, put("a")), op(5, 15, get(None)), op(20, 30, get(Some("a")))];
        assert_eq!(
            porcupine_rs::check_operations_timeout::<KvModel>(&ok, Duration::from_secs(5)),
            CheckResult::Ok
        );
        // A read that starts after the put returned must see it.
        let stale = vec![op(0, 10, put("a")), op(20, 30, get(None))];
        assert_eq!(
            porcupine_rs::check_operations_timeout::<KvModel>(&stale, Duration::from_secs(5)),
            CheckResult::Illegal
        );
        // An unanswered put may take effect late.
        let late = vec![op(0, i64::MAX, put("a")), op(20, 30, get(None)), op(40, 50, get(Some("a")))];
        assert_eq!(
            porcupine_rs::check_operations_timeout::<KvModel>(&late, Duration::from_secs(5)),
            CheckResult::Ok
        );
    }
}
