//! Pure decisions: functions of observed state, no I/O.

pub mod maintenance;
pub mod plan;
pub mod scaling;
pub mod status;

#[cfg(test)]
mod scaling_tests;
#[cfg(test)]
mod tests;
