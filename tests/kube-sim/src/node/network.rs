//! Pod networking: one Linux bridge per kube-sim instance, a network
//! namespace per pod with a veth pair into the bridge, and the hosts files
//! that stand in for cluster DNS.
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
    used: Mutex<BTreeSet<u8>>,
    closed: std::sync::atomic::AtomicBool,
}

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
            let net = Self { instance, _lock: lock, used: Mutex::default(), closed: Default::default() };
            let bridge = net.bridge();
            ip(&["link", "add", &bridge, "type", "bridge"])?;
            ip(&["addr", "add", &format!("{}/24", net.gateway()), "dev", &bridge])?;
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

    /// Creates a namespace with an address for a pod, reusing `previous` when it is free
    /// (a pod restarted with its node keeps its IP, which spares stale DNS answers).
    pub fn create_sandbox(&self, previous: Option<Ipv4Addr>) -> Result<Sandbox, String> {
        let host = {
            let mut used = self.used.lock().unwrap();
            let own = previous
                .filter(|ip| ip.octets()[..3] == self.gateway().octets()[..3])
                .map(|ip| ip.octets()[3])
                .filter(|h| (2..=254).contains(h) && !used.contains(h));
            let free = own
                .or_else(|| (2..=254u8).find(|h| !used.contains(h)))
                .ok_or("the pod subnet is full (253 pods)")?;
            used.insert(free);
            free
        };
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
        self.used.lock().unwrap().remove(&sandbox.ip.octets()[3]);
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

/// Removes every namespace and the bridge of an instance.
fn cleanup_instance(instance: u32) {
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
