//! Following a change through the status the controllers record: a progress bar on a
//! terminal, one line per step otherwise, and Ctrl-C leaves the operation running.

use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

use crate::{cli::Wait, error::CliError, view::ClusterView};

/// How often the recorded status is read (it costs the server no etcd call).
const POLL: Duration = Duration::from_secs(1);

/// Ctrl-C, caught from this call on. `tokio::signal::ctrl_c()` installs its handler only when
/// first polled, so a Ctrl-C between the first line printed and the first wait killed the
/// process (no exit code) instead of ending the follow or watch as documented.
pub fn interrupts() -> Result<tokio::signal::unix::Signal, CliError> {
    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
        .map_err(|e| CliError::Config(format!("cannot catch Ctrl-C: {e}")))
}

/// Where a change stands, read from one status.
pub enum Progress {
    /// Not there yet: steps done of the whole.
    At(u64),
    /// There.
    Done,
    /// It cannot get there; why.
    Stuck(String),
}

/// What to follow, and how to say where it stands.
pub struct Follow<'a> {
    /// Such as "scale default/demo to 5".
    pub what: String,
    /// Steps the change takes in all (members added or removed, members restarted).
    pub steps: u64,
    /// How to follow it again after Ctrl-C.
    pub again: String,
    /// Where a status says the change stands.
    pub progress: &'a dyn Fn(&ClusterView) -> Progress,
}

/// Reads the status until `f` says done, stuck, the wait is over, or Ctrl-C.
pub async fn follow<F, Fut>(f: &Follow<'_>, wait: &Wait, mut status: F) -> Result<ClusterView, CliError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<ClusterView, CliError>>,
{
    let bar = ProgressBar::new(f.steps.max(1));
    bar.set_style(
        ProgressStyle::with_template("{spinner} {prefix} [{bar:30}] {pos}/{len} {wide_msg} ({elapsed})")
            .expect("a valid template")
            .progress_chars("=> "),
    );
    bar.set_prefix(f.what.clone());
    bar.enable_steady_tick(Duration::from_millis(200));
    let deadline = Instant::now() + Duration::from_secs(wait.wait_timeout);
    let mut said = String::new();
    let mut interrupted = interrupts()?;
    loop {
        let view = status().await?;
        let step = step_line(&view);
        if step != said {
            // Without a terminal the bar is hidden: each step is one line for logs and scripts.
            if bar.is_hidden() {
                eprintln!("{}: {step}", f.what);
            }
            bar.set_message(step.clone());
            said = step;
        }
        match (f.progress)(&view) {
            Progress::Done => {
                bar.set_position(f.steps.max(1));
                bar.finish_and_clear();
                return Ok(view);
            }
            Progress::Stuck(why) => {
                bar.abandon();
                return Err(CliError::Failed(format!("{}: {why}", f.what)));
            }
            Progress::At(done) => bar.set_position(done.min(f.steps)),
        }
        if Instant::now() >= deadline {
            bar.abandon();
            return Err(CliError::Failed(format!(
                "{}: not there after {} s; it goes on in the operator. Follow it with: {}",
                f.what, wait.wait_timeout, f.again
            )));
        }
        tokio::select! {
            _ = interrupted.recv() => {
                bar.abandon();
                return Err(CliError::Interrupted(format!(
                    "stopped following {}; it goes on in the operator. Follow it again with: {}",
                    f.what, f.again
                )));
            }
            () = tokio::time::sleep(POLL) => {}
        }
    }
}

/// `Updating: ScaleUp AddingLearner demo-3 (3/4 ready)`.
fn step_line(v: &ClusterView) -> String {
    let op = v.operation.as_ref().map(|o| format!(" {}", o.line())).unwrap_or_default();
    format!("{}:{op} ({}/{} ready)", v.phase, v.ready_members, v.desired_size)
}

/// The goal of a size change: `size` members, all ready, nothing in progress.
pub fn sized(from: i32, size: i32) -> impl Fn(&ClusterView) -> Progress {
    move |v| {
        let settled = v.operation.is_none() && v.ready_members == size && v.current_size == size;
        match v.phase.as_str() {
            "Stopped" if size == 0 && v.operation.is_none() => Progress::Done,
            "Running" if settled => Progress::Done,
            "Invalid" => Progress::Stuck(invalid(v)),
            _ => Progress::At(
                u64::from((v.current_size - from).unsigned_abs())
                    .min(u64::from((size - from).unsigned_abs())),
            ),
        }
    }
}

/// The goal of an upgrade, as the operator judges it: the status and its Upgrading condition are
/// of the spec naming the new version (observedGeneration), nothing is in progress, and that
/// condition says up to date (every member pod on the version, etcd's cluster version on its
/// minor). Members'
/// reported server versions only show progress: an image's tag is what the operator rolls to.
pub fn upgraded(version: &str) -> impl Fn(&ClusterView) -> Progress {
    move |v| {
        let on = v.members.iter().filter(|m| m.version == version).count() as u64;
        // The verdict on this spec: a writer that did not look at the pods keeps the condition
        // as it was, with the generation it was computed from.
        let up_to_date = upgrading(v).is_some_and(|c| {
            c.observed_generation >= v.generation && c.status == "False" && c.reason == "UpToDate"
        });
        match v.phase.as_str() {
            "Invalid" => Progress::Stuck(invalid(v)),
            "Running" if v.observed_generation >= v.generation && v.operation.is_none() && up_to_date => {
                Progress::Done
            }
            _ => Progress::At(on),
        }
    }
}

/// The Upgrading condition, if recorded.
pub fn upgrading(v: &ClusterView) -> Option<&crate::view::ConditionView> {
    v.conditions.iter().find(|c| c.type_ == "Upgrading")
}

/// The message of a failing condition, for "why it is stuck".
pub fn invalid(v: &ClusterView) -> String {
    let failing = v.conditions.iter().find(|c| c.status == "False" && !c.message.is_empty());
    match failing {
        Some(c) => format!("the spec is invalid: {}", c.message),
        None => "the spec is invalid (see `status`)".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::view::ConditionView;

    /// Generations: the spec's, the status's and the Upgrading condition's.
    fn view(phase: &str, generations: (i64, i64, i64), upgrading: Option<(&str, &str)>) -> ClusterView {
        let conditions = upgrading.into_iter().map(|(status, reason)| ConditionView {
            type_: "Upgrading".into(),
            status: status.into(),
            reason: reason.into(),
            message: String::new(),
            last_transition_time: String::new(),
            observed_generation: generations.2,
        });
        ClusterView {
            namespace: "default".into(),
            name: "demo".into(),
            phase: phase.into(),
            ready_members: 3,
            current_size: 3,
            desired_size: 3,
            generation: generations.0,
            observed_generation: generations.1,
            version: "3.4.23".into(),
            cluster_id: String::new(),
            operation: None,
            members: Vec::new(),
            conditions: conditions.collect(),
        }
    }

    #[test]
    fn an_upgrade_is_done_only_on_the_operators_verdict_for_the_new_spec() {
        let goal = upgraded("3.5.7");
        let done = |v: &ClusterView| matches!(goal(v), Progress::Done);
        // The status of the spec before the patch said up to date (with the old version).
        assert!(!done(&view("Running", (2, 1, 1), Some(("False", "UpToDate")))));
        // A writer that did not look at the pods recorded the new generation, kept the condition.
        assert!(!done(&view("Running", (2, 2, 1), Some(("False", "UpToDate")))));
        assert!(!done(&view("Updating", (2, 2, 2), Some(("True", "RollingMembers")))));
        assert!(!done(&view("Running", (2, 2, 2), Some(("True", "AwaitingClusterVersion")))));
        assert!(!done(&view("Running", (2, 2, 2), None)));
        assert!(done(&view("Running", (2, 2, 2), Some(("False", "UpToDate")))));
        assert!(matches!(goal(&view("Invalid", (2, 2, 2), None)), Progress::Stuck(_)));
    }
}
