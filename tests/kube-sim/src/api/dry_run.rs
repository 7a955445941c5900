//! `dryRun=All`: a write validated, defaulted and answered as kube-apiserver would, never stored.

use super::request::Query;
use crate::{error::ApiError, store::Store, store::Txn};

/// Whether a write request is carried out or only tried.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Stored, and seen by watches.
    Write,
    /// `dryRun=All`: every check runs, the answer is what would be stored, nothing is kept.
    DryRun,
}

impl Mode {
    /// The mode a request asks for; `verb` names its options kind in the refusal
    /// (`CreateOptions`, `UpdateOptions`, `PatchOptions`, `DeleteOptions`), as Kubernetes does.
    pub fn of(q: &Query, verb: &str) -> Result<Self, ApiError> {
        match q.get("dryRun") {
            None | Some("") => Ok(Self::Write),
            Some("All") => Ok(Self::DryRun),
            Some(other) => Err(ApiError::invalid(format!(
                "{verb}.meta.k8s.io \"\" is invalid: dryRun: Unsupported value: \"{other}\": supported values: \"All\""
            ))),
        }
    }

    /// Runs `f` under the store lock: kept for a write, taken back for a dry run.
    pub fn transact<T>(
        self,
        store: &Store,
        f: impl FnOnce(&mut Txn<'_>) -> Result<T, ApiError>,
    ) -> Result<T, ApiError> {
        match self {
            Self::Write => store.transact(f),
            Self::DryRun => store.dry_run(f),
        }
    }

    /// Whether side effects outside the store (serving a CRD's resources) may happen.
    pub fn writes(self) -> bool {
        self == Self::Write
    }
}
