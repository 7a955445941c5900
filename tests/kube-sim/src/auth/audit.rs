//! What each user was allowed to do, and what each was refused: every
//! request, and every SubjectAccessReview asked about a user (a server such as
//! the operator's cluster-service authorizing its own callers). Tests compare
//! it with the roles they granted, to find grants nobody uses and uses nobody
//! granted.

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
    denials: Mutex<BTreeMap<String, BTreeSet<Use>>>,
}

impl Audit {
    /// Records that `user` was allowed `verb` on `resource` of `group`.
    pub fn record(&self, user: &str, group: &str, resource: &str, verb: &str) {
        insert(&self.uses, user, group, resource, verb);
    }

    /// Records that `user` was refused `verb` on `resource` of `group`.
    pub fn deny(&self, user: &str, group: &str, resource: &str, verb: &str) {
        insert(&self.denials, user, group, resource, verb);
    }

    /// Every use so far, by user.
    pub fn uses(&self) -> BTreeMap<String, BTreeSet<Use>> {
        self.uses.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Every refusal so far, by user.
    pub fn denials(&self) -> BTreeMap<String, BTreeSet<Use>> {
        self.denials.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

fn insert(map: &Mutex<BTreeMap<String, BTreeSet<Use>>>, user: &str, group: &str, resource: &str, verb: &str) {
    let mut map = map.lock().unwrap_or_else(|e| e.into_inner());
    map.entry(user.to_owned()).or_default().insert((group.to_owned(), resource.to_owned(), verb.to_owned()));
}
