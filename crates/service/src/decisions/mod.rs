//! Pure decisions: functions of observed state, no I/O.

pub mod backup;
pub mod maintenance;
pub mod members;
pub mod plan;
pub mod quorum;
mod quorum_conditions;
pub mod quorum_evidence;
pub mod recovery;
pub mod restore;
pub mod retention;
pub mod scaling;
pub mod schedule;
pub mod status;
pub mod stop;
pub mod transfer;

#[cfg(test)]
mod backup_tests;
#[cfg(test)]
mod maintenance_tests;
#[cfg(test)]
mod quorum_tests;
#[cfg(test)]
mod recovery_tests;
#[cfg(test)]
mod scaling_tests;
#[cfg(test)]
mod stop_tests;
#[cfg(test)]
mod tests;
