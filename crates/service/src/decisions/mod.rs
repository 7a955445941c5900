//! Pure decisions: functions of observed state, no I/O.

pub mod maintenance;
pub mod plan;
pub mod scaling;
pub mod status;
pub mod stop;

#[cfg(test)]
mod scaling_tests;
#[cfg(test)]
mod stop_tests;
#[cfg(test)]
mod tests;
