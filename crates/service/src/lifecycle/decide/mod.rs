//! The lifecycle's pure decisions: what the status says (`status`, `members`,
//! `quorum_conditions`).

pub mod members;
mod own_operation;
pub(crate) mod quorum_conditions;
pub mod status;
#[cfg(test)]
mod tests;
