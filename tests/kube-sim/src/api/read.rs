//! Reads shared by every verb: one object, and the objects a query selects.

use serde_json::Value;

use super::{
    ApiState,
    request::{Query, Target},
};
use crate::{
    convert::served,
    error::ApiError,
    objects,
    selectors::{FieldSelector, LabelSelector},
    store::Txn,
};

/// Reads one object, as the target's API serves it.
pub fn get(state: &ApiState, t: &Target, name: &str) -> Result<Value, ApiError> {
    let key = objects::key(&t.rt, &t.namespace, name);
    state
        .store
        .read(|txn| txn.get(&key).map(|o| served(&t.rt, o).into_owned()))
        .ok_or_else(|| not_found(t, name))
}

pub fn not_found(t: &Target, name: &str) -> ApiError {
    let group = if t.rt.group.is_empty() { String::new() } else { format!(".{}", t.rt.group) };
    ApiError::not_found(format!("{}{group} \"{name}\"", t.rt.plural))
}

/// Objects of the target matching the query's selectors (judged as the target's API serves them).
pub fn matching(txn: &Txn<'_>, t: &Target, q: &Query) -> Result<Vec<Value>, ApiError> {
    let labels = LabelSelector::parse(q.get("labelSelector").unwrap_or_default())?;
    let fields = FieldSelector::parse(q.get("fieldSelector").unwrap_or_default())?;
    let ns = (t.rt.namespaced && !t.namespace.is_empty()).then_some(t.namespace.as_str());
    let key = t.rt.key();
    Ok(txn
        .scan(&key, ns)
        .map(|o| served(&t.rt, o))
        .filter(|o| labels.matches(o) && fields.matches(o))
        .map(std::borrow::Cow::into_owned)
        .collect())
}
