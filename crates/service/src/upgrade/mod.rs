//! Upgrades: the gate on `spec.version` ([`decide::gate`], applied wherever
//! the spec is desired, so nothing of a refused version is applied) and the
//! `Upgrading` condition. The members move by the operator's roll
//! ([`crate::roll`]): followers first, the leader last.

pub mod decide;
#[cfg(test)]
mod decide_tests;
