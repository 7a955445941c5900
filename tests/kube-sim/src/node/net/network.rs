//! Pod networking: one Linux bridge per kube-sim instance, a network
//! namespace per pod with a veth pair into the bridge, and the hosts files
//! that stand in for cluster DNS.
//!
//! The host reaches pods from three addresses on the bridge: the gateway
//! (`.1`, what every host process uses, the operator included), the
//! kubelet's own (`.254`, its probes only) and one for the applications'
//! clients (`.253`, what a test's client binds to, standing in for client
//! pods elsewhere), so that a fault can cut the first off while the kubelet
//! and the applications still see the pods, as when an operator loses its
//! network path to the members but their node and their clients do not.
//!
//! Needs root (network namespaces, bind mounts) and iproute2. An instance
//! holds a lock on `/run/kube-sim/<n>.lock` and owns the subnet
//! `10.244.<n>.0/24`; the lock dies with its process, and the next claimant
//! of a number removes what a crashed owner left behind.

use std::{
    collections::BTreeSet,
    net::Ipv4Addr,
    path::{Path, PathBuf},
    process::Command,
    sync::Mutex,
};

use super::addresses::Addresses;

const STATE_ROOT: &str = "/run/kube-sim";
const NETNS_ETC: &str = "/etc/netns";

/// Runs `ip` with `args`; the error names the command and what it printed.
pub fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip").args(args).output().map_err(|e| format!("ip {}: {e}", args.join(" ")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("ip {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim()))
    }
}

/// Whether this process may create network namespaces.
pub fn can_use_namespaces() -> Result<(), String> {
    let uid = rustix::process::geteuid().as_raw();
    if uid != 0 {
        return Err(format!(
            "the kube-sim node runs pods in network namespaces and needs root (running as uid {uid})"
        ));
    }
    Command::new("ip")
        .arg("-V")
        .output()
        .map_err(|e| format!("the kube-sim node needs iproute2 (`ip`): {e}"))?;
    Ok(())
}

/// The bridge and address range of one kube-sim instance.
pub struct Network {
    instance: u32,
    /// Held for the instance's life: ownership of the instance number.
    _lock: std::fs::File,
    addresses: Mutex<Addresses>,
    /// Pod namespaces that exist (a cut of the host path must reach pods created later too).
    sandboxes: Mutex<BTreeSet<String>>,
    /// The host's path to the pods is cut this way, if at all.
    host_cut: Mutex<Option<HostCut>>,
    closed: std::sync::atomic::AtomicBool,
}

/// How the host's own traffic to the pods (the kubelet's probes excepted) fails.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HostCut {
    /// Every connection attempt fails at once ("no route to host"); open connections break.
    Refuse,
    /// Packets vanish: connections hang until their callers' timeouts.
    Drop,
}

/// Last host octet of the kubelet's address.
const KUBELET_HOST: u8 = 254;
/// Last host octet of the applications' clients' address.
const CLIENTS_HOST: u8 = 253;
/// One pod's network namespace.
#[derive(Clone, Debug)]
pub struct Sandbox {
    /// Namespace name (`ip netns` name).
    pub netns: String,
    /// Host side of the veth pair.
    pub host_veth: String,
    /// The pod's IP.
    pub ip: Ipv4Addr,
}

impl Network {
    /// Claims a free instance number and creates its bridge.
    ///
    /// An instance is owned by whoever holds the lock on `/run/kube-sim/<n>.lock`; the kernel
    /// releases it when the owner exits, however it exits, so a crashed owner's leftovers are
    /// found by the next claimant, which removes them before reusing the number.
    pub fn create() -> Result<Self, String> {
        can_use_namespaces()?;
        std::fs::create_dir_all(STATE_ROOT).map_err(|e| format!("{STATE_ROOT}: {e}"))?;
        for instance in 0..250u32 {
            let path = Path::new(STATE_ROOT).join(format!("{instance}.lock"));
            let lock = std::fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&path)
                .map_err(|e| format!("{}: {e}", path.display()))?;
            if lock.try_lock().is_err() {
                continue;
            }
            cleanup_instance(instance);
            let net = Self {
                instance,
                _lock: lock,
                addresses: Mutex::default(),
                sandboxes: Mutex::default(),
                host_cut: Mutex::default(),
                closed: Default::default(),
            };
            let bridge = net.bridge();
            // A fixed MAC: by default a bridge takes the lowest MAC of its ports and changes it
            // when that port goes, leaving pods' ARP entries for the gateway pointing nowhere
            // (their answers to the host vanish until the entry expires).
            let mac = format!("02:6b:73:00:{:02x}:01", instance);
            ip(&["link", "add", &bridge, "address", &mac, "type", "bridge"])?;
            ip(&["addr", "add", &format!("{}/24", net.gateway()), "dev", &bridge])?;
            ip(&["addr", "add", &format!("{}/32", net.kubelet_address()), "dev", &bridge])?;
            ip(&["addr", "add", &format!("{}/32", net.clients_address()), "dev", &bridge])?;
            ip(&["link", "set", &bridge, "up"])?;
            return Ok(net);
        }
        Err("no free kube-sim network instance (0..250 all held by live processes)".into())
    }

    fn bridge(&self) -> String {
        format!("ksb{}", self.instance)
    }

    /// The host's address on the bridge (pods' default gateway).
    pub fn gateway(&self) -> Ipv4Addr {
        Ipv4Addr::new(10, 244, self.instance as u8, 1)
    }

    /// The address the kubelet's probes come from.
    pub fn kubelet_address(&self) -> Ipv4Addr {
        Ipv4Addr::new(10, 244, self.instance as u8, KUBELET_HOST)
    }

    /// The address applications' clients on the host bind to: a cut of the host path
    /// ([`Network::cut_host_path`]) leaves it alone, as it leaves client pods on other nodes.
    pub fn clients_address(&self) -> Ipv4Addr {
        Ipv4Addr::new(10, 244, self.instance as u8, CLIENTS_HOST)
    }

    fn subnet(&self) -> String {
        format!("10.244.{}.0/24", self.instance)
    }

    /// Cuts the host's path to every pod (now and later), leaving pod-to-pod traffic, the
    /// kubelet's probes and the applications' clients alone; `None` restores it.
    ///
    /// `Refuse`: policy rules on the host, two sending the kubelet's and the clients' addresses
    /// to the main table and one answering "unreachable" for everything else bound for the pod
    /// subnet.
    /// `Drop`: in every pod, a blackhole route back to the gateway address, so the pods' answers
    /// to the host vanish and the host's connections hang.
    pub fn cut_host_path(&self, cut: Option<HostCut>) -> Result<(), String> {
        let mut current = self.host_cut.lock().unwrap();
        match *current {
            Some(HostCut::Refuse) => remove_host_rules(self.instance),
            Some(HostCut::Drop) => {
                for ns in self.sandboxes.lock().unwrap().iter() {
                    let _ = ip(&["-n", ns, "route", "del", "blackhole", &format!("{}/32", self.gateway())]);
                }
            }
            None => {}
        }
        *current = None;
        match cut {
            Some(HostCut::Refuse) => {
                let (kept, to_pods) = rule_prefs(self.instance);
                let subnet = self.subnet();
                for from in [self.kubelet_address(), self.clients_address()] {
                    let from = from.to_string();
                    ip(&["rule", "add", "pref", &kept, "from", &from, "to", &subnet, "lookup", "main"])?;
                }
                ip(&["rule", "add", "pref", &to_pods, "to", &subnet, "unreachable"])?;
            }
            Some(HostCut::Drop) => {
                for ns in self.sandboxes.lock().unwrap().iter() {
                    self.blackhole_gateway(ns)?;
                }
            }
            None => {}
        }
        *current = cut;
        Ok(())
    }

    fn blackhole_gateway(&self, netns: &str) -> Result<(), String> {
        ip(&["-n", netns, "route", "add", "blackhole", &format!("{}/32", self.gateway())])
    }

    /// Creates a namespace with an address for a pod, reusing `previous` when it is free
    /// (a pod restarted with its node keeps its IP, which spares stale DNS answers).
    pub fn create_sandbox(&self, previous: Option<Ipv4Addr>) -> Result<Sandbox, String> {
        let own =
            previous.filter(|ip| ip.octets()[..3] == self.gateway().octets()[..3]).map(|ip| ip.octets()[3]);
        let host = self.addresses.lock().unwrap().take(own).ok_or("the pod subnet is full (251 pods)")?;
        let sandbox = Sandbox {
            netns: format!("ks{}-{host}", self.instance),
            host_veth: format!("ks{}v{host}", self.instance),
            ip: Ipv4Addr::new(10, 244, self.instance as u8, host),
        };
        let result = (|| {
            // Leftovers of an earlier owner go first (the kernel removes a deleted namespace's links lazily).
            let _ = ip(&["link", "del", &sandbox.host_veth]);
            let _ = ip(&["netns", "del", &sandbox.netns]);
            ip(&["netns", "add", &sandbox.netns])?;
            ip(&[
                "link",
                "add",
                &sandbox.host_veth,
                "type",
                "veth",
                "peer",
                "name",
                "eth0",
                "netns",
                &sandbox.netns,
            ])?;
            ip(&["link", "set", &sandbox.host_veth, "master", &self.bridge(), "up"])?;
            let n = ["-n", sandbox.netns.as_str()];
            ip(&[&n[..], &["addr", "add", &format!("{}/24", sandbox.ip), "dev", "eth0"]].concat())?;
            ip(&[&n[..], &["link", "set", "eth0", "up"]].concat())?;
            ip(&[&n[..], &["link", "set", "lo", "up"]].concat())?;
            ip(&[&n[..], &["route", "add", "default", "via", &self.gateway().to_string()]].concat())?;
            std::fs::create_dir_all(Path::new(NETNS_ETC).join(&sandbox.netns))
                .map_err(|e| format!("{NETNS_ETC}/{}: {e}", sandbox.netns))?;
            let cut = self.host_cut.lock().unwrap();
            self.sandboxes.lock().unwrap().insert(sandbox.netns.clone());
            if *cut == Some(HostCut::Drop) {
                self.blackhole_gateway(&sandbox.netns)?;
            }
            Ok::<_, String>(())
        })();
        match result {
            Ok(()) => Ok(sandbox),
            Err(e) => {
                self.delete_sandbox(&sandbox);
                Err(e)
            }
        }
    }

    /// Kills whatever still runs in a pod's namespace and removes it.
    pub fn delete_sandbox(&self, sandbox: &Sandbox) {
        kill_netns_processes(&sandbox.netns);
        // Deleting the link removes both ends now; a namespace's own cleanup is deferred.
        let _ = ip(&["link", "del", &sandbox.host_veth]);
        let _ = ip(&["netns", "del", &sandbox.netns]);
        let _ = std::fs::remove_dir_all(Path::new(NETNS_ETC).join(&sandbox.netns));
        self.sandboxes.lock().unwrap().remove(&sandbox.netns);
        self.addresses.lock().unwrap().free(sandbox.ip.octets()[3]);
    }

    /// Cuts a pod off the network (its link goes down) or reconnects it.
    pub fn set_connected(&self, sandbox: &Sandbox, connected: bool) -> Result<(), String> {
        ip(&["link", "set", &sandbox.host_veth, if connected { "up" } else { "down" }])
    }

    /// The hosts file the pod's processes see as `/etc/hosts`.
    pub fn hosts_path(sandbox: &Sandbox) -> PathBuf {
        Path::new(NETNS_ETC).join(&sandbox.netns).join("hosts")
    }

    /// The file the pod's processes see as `/etc/resolv.conf`.
    pub fn resolv_conf_path(sandbox: &Sandbox) -> PathBuf {
        Path::new(NETNS_ETC).join(&sandbox.netns).join("resolv.conf")
    }
}

impl Network {
    /// Removes every namespace, the bridge and the claim (idempotent).
    pub fn shutdown(&self) {
        if self.closed.swap(true, std::sync::atomic::Ordering::SeqCst) {
            return;
        }
        cleanup_instance(self.instance);
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn kill_netns_processes(netns: &str) {
    if let Ok(out) = Command::new("ip").args(["netns", "pids", netns]).output() {
        for pid in
            String::from_utf8_lossy(&out.stdout).split_whitespace().filter_map(|p| p.parse::<i32>().ok())
        {
            if let Some(pid) = rustix::process::Pid::from_raw(pid) {
                let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
            }
        }
    }
}

/// Preferences of an instance's host policy rules: the kept paths, the cut (see [`Network::cut_host_path`]).
fn rule_prefs(instance: u32) -> (String, String) {
    ((20000 + 2 * instance).to_string(), (20001 + 2 * instance).to_string())
}

fn remove_host_rules(instance: u32) {
    let (kubelet, to_pods) = rule_prefs(instance);
    for pref in [kubelet, to_pods] {
        // `ip rule del pref` removes one rule per call; stop when none is left.
        for _ in 0..4 {
            if ip(&["rule", "del", "pref", &pref]).is_err() {
                break;
            }
        }
    }
}

/// Removes every namespace, the bridge and the host rules of an instance.
fn cleanup_instance(instance: u32) {
    remove_host_rules(instance);
    let prefix = format!("ks{instance}-");
    if let Ok(entries) = std::fs::read_dir("/run/netns") {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with(&prefix) {
                kill_netns_processes(&name);
                let _ = ip(&["netns", "del", &name]);
                let _ = std::fs::remove_dir_all(Path::new(NETNS_ETC).join(&name));
            }
        }
    }
    let veth = format!("ks{instance}v");
    if let Ok(out) = Command::new("ip").args(["-o", "link", "show"]).output() {
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            let name = line.split(':').nth(1).map(|n| n.trim().split('@').next().unwrap_or_default());
            if let Some(name) = name.filter(|n| n.starts_with(&veth)) {
                let _ = ip(&["link", "del", name]);
            }
        }
    }
    let _ = ip(&["link", "del", &format!("ksb{instance}")]);
}
