//! What each user was allowed to do: every authorized request, and every
//! SubjectAccessReview answered "allowed" for a user (a server such as the
//! operator's cluster-service authorizing its own callers). Tests compare it
//! with the roles they granted, to find grants nobody uses.

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::Mutex,
};

/// (API group, resource or `resource/subresource`, verb).
pub type Use = (String, String, String);

/// Uses by user name.
#[derive(Default)]
pub struct Audit {
    uses: Mutex<BTreeMap<String, BTreeSet<Use>>>,
}

impl Audit {
    /// Records that `user` was allowed `verb` on `resource` of `group`.
    pub fn record(&self, user: &str, group: &str, resource: &str, verb: &str) {
        let mut uses = self.uses.lock().unwrap_or_else(|e| e.into_inner());
        uses.entry(user.to_owned()).or_default().insert((
            group.to_owned(),
            resource.to_owned(),
            verb.to_owned(),
        ));
    }

    /// Every use so far, by user.
    pub fn uses(&self) -> BTreeMap<String, BTreeSet<Use>> {
        self.uses.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}
