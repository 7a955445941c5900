//! The faults a run applies and the schedule it draws from its seed. Drawing is pure (tested
//! here); [`apply`] carries the faults out against the stack.

pub mod apply;

use std::time::Duration;

use rand::{Rng, SeedableRng, rngs::StdRng, seq::SliceRandom};
use serde::{Deserialize, Serialize};

/// The controllers, each with its own leader election.
pub const CONTROLLERS: [&str; 5] = ["lifecycle", "scaling", "health", "recovery", "backup"];

/// One kind of fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Fault {
    /// SIGKILL of an etcd member's process (the kubelet restarts it).
    KillMember,
    /// SIGKILL of the member that leads.
    KillLeader,
    /// One member cut off from every other pod, the host and the kubelet.
    PartitionMember,
    /// A minority of the members cut off, each on its own.
    PartitionMinority,
    /// The operator's path to the members cut (refused or dropped) while clients and the
    /// kubelet still reach them.
    CutOperator,
    /// A member's pod deleted.
    DeletePod,
    /// A member's claim loses its data and its pod goes: the member must be replaced.
    LosePvc,
    /// SIGKILL of the cluster-service while a scale or replacement step is in progress.
    KillClusterServiceMidStep,
    /// SIGKILL of the leading replica of one controller (`CONTROLLERS[i]`).
    KillControllerLeader(usize),
    /// spec.size changed (3 ↔ 5) without waiting for it.
    Scale,
    /// An EtcdBackup created now.
    Backup,
    /// The cluster-service's wall clock stepped by this many seconds (negative: back).
    ClockStep(i64),
}

impl Fault {
    /// Its kind's name in reports (a controller's and a clock step's detail included).
    pub fn name(&self) -> String {
        match self {
            Self::KillControllerLeader(i) => format!("kill-controller-leader:{}", CONTROLLERS[*i]),
            Self::ClockStep(_) => "clock-step".to_owned(),
            other => {
                let debug = format!("{other:?}");
                let mut name = String::new();
                for (i, c) in debug.chars().enumerate() {
                    if c.is_uppercase() && i > 0 {
                        name.push('-');
                    }
                    name.push(c.to_ascii_lowercase());
                }
                name
            }
        }
    }

    /// Every kind once (a clock step of an hour).
    pub fn every() -> Vec<Self> {
        let mut every = vec![
            Self::KillMember,
            Self::KillLeader,
            Self::PartitionMember,
            Self::PartitionMinority,
            Self::CutOperator,
            Self::DeletePod,
            Self::LosePvc,
            Self::KillClusterServiceMidStep,
            Self::Scale,
            Self::Backup,
            Self::ClockStep(3600),
        ];
        every.extend((0..CONTROLLERS.len()).map(Self::KillControllerLeader));
        every
    }

    /// Every kind once, shuffled, as a deck to deal from.
    fn deck(rng: &mut StdRng) -> Vec<Self> {
        let step = rng.random_range(300..7200) * if rng.random_bool(0.5) { 1 } else { -1 };
        let mut deck: Vec<Self> = Self::every()
            .into_iter()
            .map(|f| if matches!(f, Self::ClockStep(_)) { Self::ClockStep(step) } else { f })
            .collect();
        deck.shuffle(rng);
        deck
    }

    /// Whether it lasts until healed (the others are done at once).
    pub fn held(&self) -> bool {
        matches!(
            self,
            Self::PartitionMember | Self::PartitionMinority | Self::CutOperator | Self::ClockStep(_)
        )
    }
}

/// One step of a schedule.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    /// When it starts, from the start of the faults.
    pub at: Duration,
    /// What.
    pub fault: Fault,
    /// How long a held fault lasts (a crashed process stays down this long).
    pub hold: Duration,
}

/// The faults of the run with `seed`, within `budget`: kinds dealt from shuffled decks of every
/// kind (so each kind comes once before any comes twice), one after another with pauses, each
/// held for a few seconds.
pub fn schedule(seed: u64, budget: Duration) -> Vec<Step> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut steps = Vec::new();
    let mut at = Duration::from_secs(rng.random_range(2..5));
    let mut deck = Vec::new();
    while at < budget {
        if deck.is_empty() {
            deck = Fault::deck(&mut rng);
        }
        let fault = deck.pop().expect("a dealt deck");
        let hold = Duration::from_millis(rng.random_range(2_000..9_000));
        steps.push(Step { at, fault, hold });
        // The next starts after this one is healed (or, for one done at once, a little later).
        let pause = Duration::from_millis(rng.random_range(1_000..4_000));
        at += if fault.held() { hold + pause } else { pause + Duration::from_secs(2) };
    }
    steps
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_gives_one_schedule_and_every_kind_comes_before_any_repeats() {
        let budget = Duration::from_secs(90);
        assert_eq!(schedule(7, budget), schedule(7, budget));
        assert_ne!(schedule(7, budget), schedule(8, budget));
        let long = schedule(7, Duration::from_secs(3600));
        let kinds = |steps: &[Step]| {
            steps.iter().map(|s| s.fault.name()).collect::<std::collections::BTreeSet<_>>().len()
        };
        assert_eq!(kinds(&long[..16]), 16, "{:?}", &long[..16]);
        assert!(long.windows(2).all(|w| w[0].at < w[1].at));
        assert!(schedule(7, budget).last().is_some_and(|s| s.at < budget));
    }

    #[test]
    fn names_are_kebab_case() {
        assert_eq!(Fault::KillClusterServiceMidStep.name(), "kill-cluster-service-mid-step");
        assert_eq!(Fault::KillControllerLeader(1).name(), "kill-controller-leader:scaling");
        assert_eq!(Fault::ClockStep(-60).name(), "clock-step");
    }
}
