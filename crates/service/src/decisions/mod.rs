//! Pure decisions: functions of observed state, no I/O.

pub mod maintenance;
pub mod plan;
pub mod status;

#[cfg(test)]
mod tests;
