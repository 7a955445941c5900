//! The objects the lifecycle desires, from small fixtures: bootstrap, rollout
//! safety, and the refusals of a spec (its rules, and what a StatefulSet
//! cannot change).

use etcd_operator_resource::templates::{
    BootstrapConfig, InitialClusterState, TemplateContext, config_map, statefulset,
};

use crate::fixtures::{cluster, names, pod, sts, view};
use crate::observe::{EtcdState, Observation};
use crate::plan::{
    ApplyPlan, DesireInputs, Desired, RolloutDecision, decide_rollout, desire, plan_apply, template_changed,
};
use crate::refusal::Refusable;

fn observed(healthy: &[bool]) -> Observation {
    let ready = healthy.iter().filter(|h| **h).count() as i32;
    let statefulset = Some(sts(healthy.len() as i32, ready));
    Observation {
        statefulset,
        etcd: EtcdState::Reached(view(healthy).build()),
        pods: None,
        ..Observation::default()
    }
}

fn desired_of(
    c: &etcd_operator_api::EtcdCluster,
    existing: Option<&Desired>,
    o: &Observation,
) -> Refusable<Desired, etcd_operator_common::Violations> {
    let ctx = TemplateContext::new(c, "cluster.local");
    let existing = existing.map(|d| (&d.statefulset, &d.config_map));
    desire(&DesireInputs {
        ctx: &ctx,
        cluster: c,
        existing: (existing.map(|e| e.0), existing.map(|e| e.1)),
        observation: o,
        fixed: None,
    })
    .unwrap()
}

#[test]
fn a_new_cluster_desires_every_object_and_a_pdb_only_with_members() {
    let c = cluster("size: 3\nversion: 3.5.17");
    let nothing =
        Observation { statefulset: None, etcd: EtcdState::NotExpected, pods: None, ..Observation::default() };
    let Refusable::Usable(d) = desired_of(&c, None, &nothing) else { panic!("a valid spec") };
    assert_eq!(d.plan.replicas, 3);
    assert_eq!(d.plan.bootstrap.initial_members.len(), 3);
    assert_eq!(d.statefulset.spec.as_ref().and_then(|s| s.replicas), Some(3));
    let names: Vec<_> = d.services.iter().filter_map(|s| s.metadata.name.clone()).collect();
    assert_eq!(names, ["demo", "demo-client", "demo-metrics"]);
    assert!(d.pdb.is_some());
    assert_eq!(d.rollout, RolloutDecision::Proceed);
    let stopped = cluster("size: 0\nversion: 3.5.17");
    let Refusable::Usable(d) = desired_of(&stopped, None, &nothing) else { panic!("size 0 is valid") };
    assert!(d.pdb.is_none(), "no members, nothing to protect");
    let retention = d.statefulset.spec.and_then(|s| s.persistent_volume_claim_retention_policy);
    assert_eq!(retention.and_then(|p| p.when_scaled).as_deref(), Some("Retain"), "a stop keeps the data");
}

#[test]
fn a_spec_is_refused_for_its_rules_and_for_what_a_statefulset_cannot_change() {
    let nothing =
        Observation { statefulset: None, etcd: EtcdState::NotExpected, pods: None, ..Observation::default() };
    let bad = cluster("size: 3\nversion: 3.5.17\netcd:\n  snapshotCount: -1");
    assert!(
        matches!(desired_of(&bad, None, &nothing), Refusable::Refused(v) if v.to_string().contains("snapshotCount"))
    );
    let c = cluster("size: 3\nversion: 3.5.17");
    let Refusable::Usable(running) = desired_of(&c, None, &nothing) else { panic!("a valid spec") };
    let bigger = cluster("size: 3\nversion: 3.5.17\nstorage:\n  size: 2Gi");
    let refused = desired_of(&bigger, Some(&running), &observed(&[true; 3]));
    assert!(
        matches!(refused, Refusable::Refused(v) if v.to_string().contains("storage")),
        "claims cannot grow here"
    );
}

#[test]
fn a_new_version_rolls_out_only_onto_healthy_voters_and_a_restore_fixes_the_shape() {
    let old = cluster("size: 3\nversion: 3.5.16");
    let mut formed = cluster("size: 3\nversion: 3.5.17");
    formed.status =
        Some(etcd_operator_api::EtcdClusterStatus { cluster_id: Some("abc".into()), ..Default::default() });
    let nothing =
        Observation { statefulset: None, etcd: EtcdState::NotExpected, pods: None, ..Observation::default() };
    let Refusable::Usable(running) = desired_of(&old, None, &nothing) else { panic!("a valid spec") };
    let Refusable::Usable(healthy) = desired_of(&formed, Some(&running), &observed(&[true; 3])) else {
        panic!()
    };
    assert_eq!(healthy.rollout, RolloutDecision::Proceed);
    let Refusable::Usable(degraded) = desired_of(&formed, Some(&running), &observed(&[true, true, false]))
    else {
        panic!()
    };
    assert!(matches!(degraded.rollout, RolloutDecision::Wait(why) if why.contains("demo-2")));
    // A restore starts as a new cluster with no member running yet, whatever the StatefulSet says.
    let ctx = TemplateContext::new(&formed, "cluster.local");
    let bootstrap = BootstrapConfig::new_cluster(&names(), 3);
    let fixed = desire(&DesireInputs {
        ctx: &ctx,
        cluster: &formed,
        existing: (Some(&running.statefulset), Some(&running.config_map)),
        observation: &nothing,
        fixed: Some(ApplyPlan { replicas: 0, bootstrap: bootstrap.clone() }),
    })
    .unwrap();
    let Refusable::Usable(fixed) = fixed else { panic!("a valid spec") };
    assert_eq!((fixed.plan.replicas, fixed.plan.bootstrap), (0, bootstrap));
    assert!(fixed.pdb.is_none());
}

#[test]
fn a_version_the_running_cluster_cannot_move_to_is_refused_whole() {
    let nothing =
        Observation { statefulset: None, etcd: EtcdState::NotExpected, pods: None, ..Observation::default() };
    let Refusable::Usable(running) = desired_of(&cluster("size: 3\nversion: 3.5.17"), None, &nothing) else {
        panic!("a valid spec")
    };
    let refusal = |version: &str, o: &Observation| match desired_of(
        &cluster(&format!("size: 3\nversion: {version}")),
        Some(&running),
        o,
    ) {
        Refusable::Refused(v) => v.to_string(),
        Refusable::Usable(_) => panic!("{version} was accepted"),
    };
    // Against the StatefulSet alone (etcd not reached).
    let down = refusal("3.5.16", &nothing);
    assert!(down.starts_with("spec.version: 3.5.17 → 3.5.16 is a downgrade"), "{down}");
    assert!(down.contains("the StatefulSet runs 3.5.17"), "{down}");
    // Against what a member reports: demo-1 still runs 3.4.23, so 3.6 would skip 3.5.
    let mut o = observed(&[true; 3]);
    if let EtcdState::Reached(v) = &mut o.etcd {
        for (i, m) in v.members.iter_mut().enumerate() {
            m.status.as_mut().unwrap().version = if i == 1 { "3.4.23" } else { "3.5.17" }.into();
        }
        v.cluster_version = Some("3.4.0".into());
    }
    let skip = refusal("3.6.0", &o);
    assert!(
        skip.contains("3.4.23 → 3.6.0 skips a minor version") && skip.contains("demo-1 runs 3.4.23"),
        "{skip}"
    );
    assert!(matches!(
        desired_of(&cluster("size: 3\nversion: 3.5.18"), Some(&running), &o),
        Refusable::Usable(_)
    ));
}

#[test]
fn a_new_cluster_bootstraps_every_member_and_an_existing_one_keeps_its_membership() {
    let c = cluster("size: 5\nversion: 3.5.17");
    let plan = plan_apply(&names(), 5, false, None, None);
    assert_eq!(plan.replicas, 5);
    assert_eq!(plan.bootstrap.initial_members.len(), 5);

    let ctx = TemplateContext::new(&c, "cluster.local");
    let three = BootstrapConfig::new_cluster(&names(), 3);
    let existing_sts = statefulset(&ctx, 3, &three).unwrap();
    let existing_cm =
        config_map(&ctx, &BootstrapConfig { state: InitialClusterState::Existing, ..three.clone() }).unwrap();
    let plan = plan_apply(&names(), 5, true, Some(&existing_sts), Some(&existing_cm));
    assert_eq!(plan.replicas, 3, "size changes are the scaling service's job");
    assert_eq!(plan.bootstrap.state, InitialClusterState::Existing);
    assert_eq!(plan.bootstrap.initial_members, three.initial_members);
}

#[test]
fn a_formed_cluster_never_lets_a_member_bootstrap_again() {
    let c = cluster("size: 3\nversion: 3.5.17");
    let ctx = TemplateContext::new(&c, "cluster.local");
    let three = BootstrapConfig::new_cluster(&names(), 3);
    let sts = statefulset(&ctx, 3, &three).unwrap();
    let cm = config_map(&ctx, &three).unwrap();
    // Still bootstrapping: members that have not started yet bootstrap with the others.
    let forming = plan_apply(&names(), 3, false, Some(&sts), Some(&cm));
    assert_eq!(forming.bootstrap, three);
    // Formed: a member starting on an empty volume must join, never bootstrap anew.
    let formed = plan_apply(&names(), 3, true, Some(&sts), Some(&cm));
    assert_eq!(formed.bootstrap.state, InitialClusterState::Existing);
    assert_eq!(formed.bootstrap.initial_members, three.initial_members);
    // Recording it restarts no member: etcd reads ETCD_INITIAL_* only on an empty data directory.
    let after = statefulset(&ctx, 3, &formed.bootstrap).unwrap();
    assert!(!template_changed(&sts, &after));
}

#[test]
fn rollouts_wait_for_every_member_to_be_healthy() {
    let old = cluster("size: 3\nversion: 3.5.16");
    let new = cluster("size: 3\nversion: 3.5.17");
    let b = BootstrapConfig::new_cluster(&names(), 3);
    let existing = statefulset(&TemplateContext::new(&old, "cluster.local"), 3, &b).unwrap();
    let desired = statefulset(&TemplateContext::new(&new, "cluster.local"), 3, &b).unwrap();
    assert!(template_changed(&existing, &desired));
    assert!(!template_changed(&existing, &existing));

    let healthy = Observation {
        statefulset: Some(sts(3, 3)),
        etcd: EtcdState::Reached(view(&[true; 3]).build()),
        pods: None,
        ..Observation::default()
    };
    assert_eq!(decide_rollout(true, true, &healthy), RolloutDecision::Proceed);
    let degraded = Observation {
        statefulset: Some(sts(3, 2)),
        etcd: EtcdState::Reached(view(&[true, true, false]).build()),
        pods: None,
        ..Observation::default()
    };
    assert!(
        matches!(decide_rollout(true, true, &degraded), RolloutDecision::Wait(why) if why.contains("demo-2"))
    );
    assert_eq!(
        decide_rollout(false, true, &degraded),
        RolloutDecision::Proceed,
        "no change, nothing to wait for"
    );
    // demo-2 went down on the newest template while the others still run the older one (a roll
    // onto a broken template): a new template may mend it. The same member down with no roll
    // under way still waits.
    let mut r2 = sts(3, 2);
    r2.update_revision = "r2".into();
    let broken_roll = Observation {
        statefulset: Some(r2),
        pods: Some(vec![pod(0, "r1", true), pod(1, "r1", true), pod(2, "r2", false)]),
        ..degraded.clone()
    };
    assert_eq!(decide_rollout(true, true, &broken_roll), RolloutDecision::Proceed);
    let down_alone = Observation {
        pods: Some(vec![pod(0, "r1", true), pod(1, "r1", true), pod(2, "r1", false)]),
        ..degraded
    };
    assert!(matches!(decide_rollout(true, true, &down_alone), RolloutDecision::Wait(_)));
    let unreachable = Observation {
        statefulset: Some(sts(3, 0)),
        etcd: EtcdState::Unreachable("x".into()),
        pods: None,
        ..Observation::default()
    };
    assert!(matches!(decide_rollout(true, true, &unreachable), RolloutDecision::Wait(_)));
    assert_eq!(
        decide_rollout(true, false, &unreachable),
        RolloutDecision::Proceed,
        "a cluster that never formed can always take a fixed spec"
    );
}
