//! The PodDisruptionBudget: voluntary disruptions never take quorum away.

use k8s_openapi::{
    api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec},
    apimachinery::pkg::{apis::meta::v1::LabelSelector, util::intstr::IntOrString},
};

use super::TemplateContext;
use crate::ResourceError;

use etcd_operator_common::quorum;

/// Builds the PDB for `size` voting members (`minAvailable` = quorum).
pub fn pod_disruption_budget(
    ctx: &TemplateContext<'_>,
    size: i32,
) -> Result<PodDisruptionBudget, ResourceError> {
    Ok(PodDisruptionBudget {
        metadata: ctx.metadata(ctx.names.pdb(), "PodDisruptionBudget")?,
        spec: Some(PodDisruptionBudgetSpec {
            min_available: Some(IntOrString::Int(quorum(size))),
            selector: Some(LabelSelector {
                match_labels: Some(ctx.names.selector_labels()),
                ..LabelSelector::default()
            }),
            ..PodDisruptionBudgetSpec::default()
        }),
        ..PodDisruptionBudget::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::templates::fixtures::cluster;

    #[test]
    fn min_available_is_quorum() {
        assert_eq!([1, 2, 3, 4, 5, 7].map(quorum), [1, 2, 2, 3, 3, 4]);
        let c = cluster("size: 5\nversion: 3.5.17");
        let pdb = pod_disruption_budget(&TemplateContext::new(&c, "cluster.local"), 5).unwrap();
        assert_eq!(pdb.spec.unwrap().min_available, Some(IntOrString::Int(3)));
    }
}
