//! A run's verdict, and a campaign's summary as RELIABILITY.md records it.

use std::{collections::BTreeMap, path::Path, time::Duration};

use serde::Serialize;

use crate::check::{Anomaly, Counts};

/// What one run did and found.
#[derive(Clone, Debug, Serialize)]
pub struct RunReport {
    /// Its seed (the run again: `cargo run -p chaos -- --seed <it>`).
    pub seed: u64,
    /// Wall time of the whole run, and of its checks.
    pub secs: f64,
    pub check_secs: f64,
    /// Faults applied, by kind.
    pub faults: BTreeMap<String, usize>,
    /// Operations checked.
    pub counts: Counts,
    /// What the checks found (none: passed).
    pub anomalies: Vec<Anomaly>,
    /// Where its seed, history and logs were kept.
    pub artifacts: Option<String>,
}

impl RunReport {
    /// A report of a run that took `took`, `checking` of it in the checks.
    pub fn new(
        seed: u64,
        (took, checking): (Duration, Duration),
        faults: BTreeMap<String, usize>,
        counts: Counts,
        anomalies: Vec<Anomaly>,
    ) -> Self {
        let (secs, check_secs) = (took.as_secs_f64(), checking.as_secs_f64());
        Self { seed, secs, check_secs, faults, counts, anomalies, artifacts: None }
    }

    /// Whether it found nothing.
    pub fn passed(&self) -> bool {
        self.anomalies.is_empty()
    }

    /// The same, naming where its artifacts are.
    pub fn with_artifacts(mut self, dir: &Path) -> Self {
        self.artifacts = Some(dir.display().to_string());
        self
    }

    /// One line for the terminal.
    pub fn line(&self) -> String {
        let c = &self.counts;
        let verdict =
            if self.passed() { "passed".to_owned() } else { format!("FAILED: {:?}", self.anomalies) };
        format!(
            "seed {}: {verdict} — {} faults, {} reads, {} writes ({} unanswered), {} appends, {} watch events, {} members, {:.0} s",
            self.seed,
            self.faults.values().sum::<usize>(),
            c.reads,
            c.writes,
            c.unanswered,
            c.appends,
            c.watch_events,
            c.members,
            self.secs
        )
    }
}

/// The summary of a campaign, as a section of RELIABILITY.md.
pub fn markdown(title: &str, reports: &[RunReport]) -> String {
    let mut faults: BTreeMap<&str, usize> = BTreeMap::new();
    for r in reports {
        for (k, n) in &r.faults {
            *faults.entry(k).or_insert(0) += n;
        }
    }
    let sum = |f: fn(&Counts) -> usize| reports.iter().map(|r| f(&r.counts)).sum::<usize>();
    let failed: Vec<_> = reports.iter().filter(|r| !r.passed()).collect();
    let secs: Vec<f64> = reports.iter().map(|r| r.secs).collect();
    let mean = secs.iter().sum::<f64>() / secs.len().max(1) as f64;
    let max = secs.iter().copied().fold(0.0, f64::max);
    let seeds: Vec<String> = reports.iter().map(|r| r.seed.to_string()).collect();
    let mut out = format!("## {title}\n\n");
    out += &format!(
        "- runs: {} ({} passed, {} failed)\n",
        reports.len(),
        reports.len() - failed.len(),
        failed.len()
    );
    out += &format!("- seeds: {}\n", seeds.join(", "));
    out += &format!(
        "- operations checked: {} reads, {} answered writes, {} unanswered writes, {} acknowledged appends, {} watch events\n",
        sum(|c| c.reads),
        sum(|c| c.writes),
        sum(|c| c.unanswered),
        sum(|c| c.appends),
        sum(|c| c.watch_events)
    );
    out += &format!("- time per run: mean {mean:.0} s, max {max:.0} s\n");
    out += &format!("- anomalies: {}\n", failed.iter().map(|r| r.anomalies.len()).sum::<usize>());
    for r in &failed {
        out += &format!("  - seed {}: {:?}\n", r.seed, r.anomalies);
    }
    out += "\n| fault | applied |\n| --- | --- |\n";
    for (k, n) in faults {
        out += &format!("| {k} | {n} |\n");
    }
    out
}
