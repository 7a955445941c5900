//! What an UpdateCluster changes in the spec: all of it, or only the fields named.

use etcd_operator_api::EtcdClusterSpec;

/// A change of an EtcdCluster's spec.
#[derive(Clone, Debug, PartialEq)]
pub enum SpecUpdate {
    /// The whole spec, replaced.
    Replace(Box<EtcdClusterSpec>),
    /// Only the fields set (the rest as the object has them): tooling changes one field without
    /// sending, and so without overwriting, the others. Written only onto the resourceVersion it
    /// was merged with.
    Patch(SpecPatch),
}

/// The fields a patch may set alone.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SpecPatch {
    /// `spec.size`.
    pub size: Option<i32>,
    /// `spec.paused`.
    pub paused: Option<bool>,
    /// `spec.version`.
    pub version: Option<String>,
    /// `spec.image` (`Some(None)` clears it).
    pub image: Option<Option<String>>,
}

impl SpecUpdate {
    /// The spec after this change of `current`.
    pub fn applied_to(self, current: &EtcdClusterSpec) -> EtcdClusterSpec {
        match self {
            Self::Replace(spec) => *spec,
            Self::Patch(p) => {
                let mut spec = current.clone();
                if let Some(size) = p.size {
                    spec.size = size;
                }
                if let Some(paused) = p.paused {
                    spec.paused = paused;
                }
                if let Some(version) = p.version {
                    spec.version = version;
                }
                if let Some(image) = p.image {
                    spec.image = image;
                }
                spec
            }
        }
    }

    /// Whether the write must land on the resourceVersion the change was merged with.
    pub fn merged(&self) -> bool {
        matches!(self, Self::Patch(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> EtcdClusterSpec {
        serde_json::from_value(serde_json::json!({
            "size": 3, "version": "3.5.1", "image": "etcd:x", "storage": {"size": "2Gi"}
        }))
        .unwrap()
    }

    #[test]
    fn a_patch_changes_the_fields_it_sets_and_keeps_the_rest() {
        let current = spec();
        let resized =
            SpecUpdate::Patch(SpecPatch { size: Some(5), ..Default::default() }).applied_to(&current);
        assert_eq!(resized, EtcdClusterSpec { size: 5, ..current.clone() });
        let patch =
            SpecPatch { version: Some("3.5.2".into()), image: Some(None), paused: Some(true), size: None };
        let changed = SpecUpdate::Patch(patch).applied_to(&current);
        assert_eq!((changed.version.as_str(), changed.image, changed.paused), ("3.5.2", None, true));
        assert_eq!((changed.size, changed.storage), (3, current.storage.clone()));
        // A replacement is the spec given, whatever was there.
        let other = EtcdClusterSpec { size: 1, ..current.clone() };
        assert_eq!(SpecUpdate::Replace(Box::new(other.clone())).applied_to(&current), other);
        assert!(
            SpecUpdate::Patch(SpecPatch::default()).merged()
                && !SpecUpdate::Replace(Box::new(other)).merged()
        );
    }
}
