//! The README's first command, `scripts/run.sh`, run as a new user runs it, and then every
//! command it prints, exactly as printed (`walkthrough.sh`: a `--watch` stopped after a while,
//! a read run again until the state it reads exists). This is the demo a user sees first.

use std::{
    io::{BufRead, BufReader, Write},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::mpsc,
    time::Duration,
};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("repository root")
}

/// What `scripts/run.sh` leaves in the repository.
const LEFT: &[&str] = &[".kube-sim", ".backups", ".snapshots", ".tokens", "api-ca.crt"];

fn clean(root: &Path) {
    for left in LEFT {
        let path = root.join(left);
        let _ = std::fs::remove_dir_all(&path).or_else(|_| std::fs::remove_file(&path));
    }
}

/// `scripts/run.sh`, stopped (its process group, as Ctrl-C would) when dropped.
struct RunSh(Child);

impl Drop for RunSh {
    fn drop(&mut self) {
        let group = format!("-{}", self.0.id());
        let _ = Command::new("kill").args(["-INT", "--", &group]).status();
        std::thread::sleep(Duration::from_secs(3));
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.0.wait();
        clean(&repo());
    }
}

/// A new user's shell: no KUBECONFIG, and none of what cargo and nextest set for this test.
/// Cargo compares variables that build scripts watch (ring's: CARGO_MANIFEST_DIR, CARGO_PKG_NAME,
/// OUT_DIR) with the environment it last built in: with them, run.sh's `cargo build` built again
/// from ring up, and so did CI's next cargo call after this test (minutes each on CI).
trait AsAUser {
    fn envs_of_a_user(&mut self) -> &mut Self;
}

impl AsAUser for Command {
    fn envs_of_a_user(&mut self) -> &mut Self {
        const SET_FOR_TESTS: &[&str] = &[
            "CARGO_MANIFEST_DIR",
            "CARGO_MANIFEST_PATH",
            "CARGO_MANIFEST_LINKS",
            "CARGO_CRATE_NAME",
            "CARGO_PRIMARY_PACKAGE",
            "CARGO_TARGET_TMPDIR",
            "CARGO_RUSTC_CURRENT_DIR",
            "OUT_DIR",
        ];
        for (key, _) in std::env::vars_os() {
            let k = key.to_string_lossy();
            let prefixed = ["CARGO_PKG_", "CARGO_BIN_", "NEXTEST"].iter().any(|p| k.starts_with(p));
            if prefixed || SET_FOR_TESTS.contains(&&*k) {
                self.env_remove(&key);
            }
        }
        self.env_remove("KUBECONFIG")
    }
}

#[test]
fn every_command_run_sh_prints_works_as_printed() {
    assert!(is_root(), "run.sh's node runs pods in network namespaces: run as root");
    let root = repo();
    clean(&root);
    let mut child = Command::new("setsid")
        .args(["bash", "scripts/run.sh"])
        .current_dir(&root)
        .envs_of_a_user()
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("bash runs");
    let stdout = child.stdout.take().expect("piped");
    let run_sh = RunSh(child);
    // The banner: the lines after "Watch it:" up to "Pod logs:".
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut printed = Vec::new();
        let mut inside = false;
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if inside && line.starts_with("Pod logs:") {
                let _ = tx.send(std::mem::take(&mut printed));
                inside = false;
            } else if inside && line.starts_with("  ") {
                // The processes share run.sh's output: their log lines are not indented.
                printed.push(line);
            } else if line.ends_with("Watch it:") {
                inside = true;
            }
            // Read on to the end: the processes block once the pipe is full.
        }
    });
    let printed = rx.recv_timeout(Duration::from_secs(900)).expect("run.sh printed its commands");
    assert!(printed.len() > 20, "{printed:?}");
    let mut walk = Command::new("bash")
        .arg(root.join("tests/e2e/tests/walkthrough.sh"))
        .current_dir(&root)
        .envs_of_a_user()
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("bash runs");
    // One command a line, the last one ended too (`read` drops an unterminated last line).
    let script: String = printed.iter().map(|l| format!("{l}\n")).collect();
    walk.stdin.take().expect("piped").write_all(script.as_bytes()).expect("commands written");
    let out = walk.wait_with_output().expect("walkthrough ran");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    if !out.status.success() {
        // The pods' logs outlive the run for whoever reads the failure.
        let kept = root.join("target/e2e-logs/walkthrough");
        let _ = std::fs::create_dir_all(&kept);
        let _ = Command::new("cp").arg("-r").arg(root.join(".kube-sim/node/logs")).arg(&kept).status();
        eprintln!("pod logs kept in {}", kept.display());
    }
    drop(run_sh);
    assert!(
        out.status.success() && text.contains(&format!("all {} commands worked", commands(&printed))),
        "{text}"
    );
}

/// How many of the printed lines are commands.
fn commands(printed: &[String]) -> usize {
    printed.iter().filter(|l| !l.split("  #").next().unwrap_or_default().trim().is_empty()).count()
}

/// Whether this runs as root (asked as run.sh asks it).
fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}
