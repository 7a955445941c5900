//! A fault campaign in the manner of etcd's robustness suite. Each run starts the whole stack on
//! kube-sim (the six processes as OS processes, real etcd pods), drives a checked workload with
//! clients on every member, applies a schedule of faults drawn from its seed, heals them, and
//! then checks the history: porcupine and the project's own register check, the watches, the
//! acknowledged appends, convergence and a floor of successful operations. A failed run keeps its
//! seed, history and every log.

pub mod check;
pub mod faults;
pub mod history;
pub mod report;
pub mod run;
pub mod workload;

/// The registers' operations and their sequential specification, shared with the end-to-end tests.
pub use e2e_tests::model;
