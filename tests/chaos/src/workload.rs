//! The campaign's workload: register clients that put, get, delete and compare-and-swap a few
//! keys, each moving over every member; an append-only writer whose acknowledged keys must all
//! survive; and watchers of the whole prefix that resume on another member whenever their stream
//! breaks. Every client dials from the node's clients' address, so a cut of the operator's path
//! to the members leaves the workload running, as it leaves real applications.

use std::{
    collections::HashMap,
    net::IpAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicI64, Ordering},
    },
    time::{Duration, Instant},
};

use etcd_client::{Compare, CompareOp, ConnectOptions, EventType, Txn, TxnOp, WatchOptions};
use rand::{Rng, SeedableRng, rngs::StdRng};

use crate::{
    check::watch::REGISTERS,
    history::{History, Record, WatchEvent, WatchLog},
    model::KvOp,
};

pub use e2e_tests::workload::Endpoints;

/// Registers the clients share (few, so that they contend).
const KEYS: u64 = 6;
/// A register client moves to the next member after this many operations.
const OPS_PER_MEMBER: u64 = 20;
/// An operation not answered in this long has an unknown outcome.
const TIMEOUT: Duration = Duration::from_secs(2);
/// A watcher that hears nothing this long resumes on another member.
const WATCH_IDLE: Duration = Duration::from_secs(4);
/// The prefix every watcher watches.
pub const PREFIX: &str = "chaos/";
/// The appender's prefix.
pub const APPENDS: &str = "chaos/ack/";

/// A client of one member, dialled from `from`; `None` when it cannot be reached now.
pub async fn connect(endpoint: &str, from: IpAddr) -> Option<etcd_client::Client> {
    let channel = tonic::transport::Endpoint::from_shared(endpoint.to_owned())
        .ok()?
        .local_address(Some(from))
        .connect_timeout(Duration::from_secs(1))
        .tcp_nodelay(true);
    let channel = tokio::time::timeout(TIMEOUT, channel.connect()).await.ok()?.ok()?;
    // A member without a leader refuses at once instead of hanging (and ends watches).
    let options = ConnectOptions::new().with_require_leader(true);
    etcd_client::Client::from_channel(etcd_client::Channel::Tonic(channel), Some(options)).await.ok()
}

struct Shared {
    stop: AtomicBool,
    /// Watchers stop once they have seen this revision (set after the clients stopped).
    watch_until: AtomicI64,
    records: Mutex<Vec<Record>>,
    acked: Mutex<Vec<String>>,
    watches: Mutex<Vec<WatchLog>>,
    epoch: Instant,
    from: IpAddr,
    endpoints: Endpoints,
}

impl Shared {
    fn now(&self) -> i64 {
        self.epoch.elapsed().as_nanos() as i64
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    /// The member for a client's `round`-th connection.
    fn member(&self, round: usize) -> Option<String> {
        let all = (self.endpoints)();
        (!all.is_empty()).then(|| all[round % all.len()].clone())
    }
}

/// The running workload.
pub struct Workload {
    shared: Arc<Shared>,
    clients: Vec<tokio::task::JoinHandle<()>>,
    watchers: Vec<tokio::task::JoinHandle<()>>,
}

impl Workload {
    /// Starts `clients` register clients (their choices drawn from `seed`), the appender and
    /// `watchers` watchers from revision `start`.
    pub fn start(
        endpoints: Endpoints,
        from: IpAddr,
        seed: u64,
        clients: u32,
        watchers: usize,
        start: i64,
    ) -> Self {
        let shared = Arc::new(Shared {
            stop: AtomicBool::new(false),
            watch_until: AtomicI64::new(i64::MAX),
            records: Mutex::default(),
            acked: Mutex::default(),
            watches: Mutex::new(vec![WatchLog { start, end: start - 1, ..Default::default() }; watchers]),
            epoch: Instant::now(),
            from,
            endpoints,
        });
        let mut tasks: Vec<_> = (0..clients)
            .map(|c| {
                tokio::spawn(register_client(shared.clone(), c, StdRng::seed_from_u64(seed ^ u64::from(c))))
            })
            .collect();
        tasks.push(tokio::spawn(appender(shared.clone())));
        let watchers = (0..watchers).map(|w| tokio::spawn(watcher(shared.clone(), w))).collect();
        Self { shared, clients: tasks, watchers }
    }

    /// Stops the register clients and the appender.
    pub async fn stop_clients(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        for t in self.clients.drain(..) {
            let _ = t.await;
        }
    }

    /// Lets the watchers catch up to revision `until` (at most `limit`), and returns everything seen.
    pub async fn finish(self, until: i64, limit: Duration) -> History {
        self.shared.watch_until.store(until, Ordering::SeqCst);
        for t in self.watchers {
            let abort = t.abort_handle();
            if tokio::time::timeout(limit, t).await.is_err() {
                // Its log ends where it got to: the checks judge only what it covered.
                abort.abort();
            }
        }
        History {
            records: self.shared.records.lock().unwrap().clone(),
            acked: self.shared.acked.lock().unwrap().clone(),
            watches: self.shared.watches.lock().unwrap().clone(),
            end: until,
        }
    }
}

async fn register_client(s: Arc<Shared>, client: u32, mut rng: StdRng) {
    let (mut n, mut round) = (0u64, client as usize);
    // What this client last knew each key to hold: its transactions expect it.
    let mut known: HashMap<String, Option<String>> = HashMap::new();
    while !s.stopped() {
        round += 1;
        let Some(member) = s.member(round) else {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        };
        let Some(etcd) = connect(&member, s.from).await else {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        };
        for _ in 0..OPS_PER_MEMBER {
            if s.stopped() {
                return;
            }
            n += 1;
            let key = format!("{REGISTERS}{}", rng.random_range(0..KEYS));
            let value = format!("c{client}-{n}");
            let op = match rng.random_range(0..100) {
                0..40 => KvOp::Put { key, value },
                40..70 => KvOp::Get { key, value: None },
                70..80 => KvOp::Delete { key, deleted: None },
                _ => KvOp::Cas { expected: known.get(&key).cloned().flatten(), key, value, succeeded: None },
            };
            let call = s.now();
            let answer =
                tokio::time::timeout(TIMEOUT, execute(etcd.clone(), &op)).await.ok().and_then(Result::ok);
            let ok = answer.is_some();
            if let Some(record) = record(client, &member, call, s.now(), op, answer) {
                if let KvOp::Get { key, value } = &record.op {
                    known.insert(key.clone(), value.clone());
                }
                s.records.lock().unwrap().push(record);
            }
            if !ok {
                tokio::time::sleep(Duration::from_millis(100)).await;
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// What etcd answered: the op with its result, the header revision, a get's `mod_revision`.
type Answer = (KvOp, i64, Option<i64>);

async fn execute(mut etcd: etcd_client::Client, op: &KvOp) -> Result<Answer, etcd_client::Error> {
    let rev = |h: Option<&etcd_client::ResponseHeader>| h.map_or(0, |h| h.revision());
    Ok(match op.clone() {
        KvOp::Put { key, value } => {
            let r = etcd.put(key.clone(), value.clone(), None).await?;
            (KvOp::Put { key, value }, rev(r.header()), None)
        }
        KvOp::Get { key, .. } => {
            let r = etcd.get(key.clone(), None).await?;
            let kv = r.kvs().first();
            let value = kv.map(|kv| kv.value_str().unwrap_or_default().to_owned());
            (KvOp::Get { key, value }, rev(r.header()), kv.map(|kv| kv.mod_revision()))
        }
        KvOp::Delete { key, .. } => {
            let r = etcd.delete(key.clone(), None).await?;
            (KvOp::Delete { key, deleted: Some(r.deleted() > 0) }, rev(r.header()), None)
        }
        KvOp::Cas { key, expected, value, .. } => {
            let when = match &expected {
                Some(v) => Compare::value(key.clone(), CompareOp::Equal, v.clone()),
                None => Compare::version(key.clone(), CompareOp::Equal, 0),
            };
            let txn = Txn::new().when([when]).and_then([TxnOp::put(key.clone(), value.clone(), None)]);
            let r = etcd.txn(txn).await?;
            (KvOp::Cas { key, expected, value, succeeded: Some(r.succeeded()) }, rev(r.header()), None)
        }
    })
}

/// The record of one operation; a read without an answer says nothing and is dropped.
fn record(
    client: u32,
    member: &str,
    call: i64,
    now: i64,
    op: KvOp,
    answer: Option<Answer>,
) -> Option<Record> {
    let member = member.to_owned();
    match answer {
        Some((op, revision, mod_revision)) => {
            Some(Record { client, member, call, ret: Some(now), op, revision: Some(revision), mod_revision })
        }
        None if op.is_write() => {
            Some(Record { client, member, call, ret: None, op, revision: None, mod_revision: None })
        }
        None => None,
    }
}

async fn appender(s: Arc<Shared>) {
    let (mut i, mut round) = (0u64, 0usize);
    while !s.stopped() {
        round += 1;
        let Some(etcd) = (match s.member(round) {
            Some(m) => connect(&m, s.from).await,
            None => None,
        }) else {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        };
        for _ in 0..OPS_PER_MEMBER {
            if s.stopped() {
                return;
            }
            let key = format!("{APPENDS}{i:06}");
            match tokio::time::timeout(TIMEOUT, etcd.kv_client().put(key.clone(), "x", None)).await {
                Ok(Ok(_)) => s.acked.lock().unwrap().push(key),
                _ => break,
            }
            i += 1;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

async fn watcher(s: Arc<Shared>, w: usize) {
    let mut round = w;
    loop {
        let next = s.watches.lock().unwrap()[w].end + 1;
        if next > s.watch_until.load(Ordering::SeqCst) {
            return;
        }
        round += 1;
        let Some(member) = s.member(round) else {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        };
        if let Some(etcd) = connect(&member, s.from).await {
            follow(&s, w, etcd, next).await;
        }
        s.watches.lock().unwrap()[w].resumed += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Follows one watch stream from `next` until it breaks, idles or is cancelled.
async fn follow(s: &Shared, w: usize, mut etcd: etcd_client::Client, next: i64) {
    let options = WatchOptions::new().with_prefix().with_start_revision(next);
    let Ok(Ok(mut stream)) = tokio::time::timeout(TIMEOUT, etcd.watch(PREFIX, Some(options))).await else {
        return;
    };
    loop {
        let Ok(Ok(Some(resp))) = tokio::time::timeout(WATCH_IDLE, stream.message()).await else { return };
        let mut log = s.watches.lock().unwrap();
        let log = &mut log[w];
        if resp.compact_revision() > 0 {
            // What it asked for is compacted: note the range and resume after it.
            let from = log.end + 1;
            log.compacted.push((from, resp.compact_revision() - 1));
            log.end = resp.compact_revision() - 1;
            return;
        }
        for e in resp.events() {
            let Some(kv) = e.kv() else { continue };
            let value =
                (e.event_type() == EventType::Put).then(|| kv.value_str().unwrap_or_default().to_owned());
            let key = kv.key_str().unwrap_or_default().to_owned();
            log.events.push(WatchEvent { revision: kv.mod_revision(), key, value });
            log.end = log.end.max(kv.mod_revision());
        }
        if resp.canceled() || log.end >= s.watch_until.load(Ordering::SeqCst) {
            return;
        }
    }
}
