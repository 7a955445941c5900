use super::*;

fn v(s: &str) -> EtcdVersion {
    EtcdVersion::parse(s).unwrap()
}

fn step(from: &str, to: &str) -> Result<(), StepRefusal> {
    check_step(v(from), v(to), false)
}

#[test]
fn a_patch_change_up_or_the_same_version_is_allowed() {
    assert_eq!(step("3.4.23", "3.4.23"), Ok(()));
    assert_eq!(step("3.4.23", "3.4.37"), Ok(()));
    assert_eq!(step("3.5.6", "3.5.17"), Ok(()));
}

#[test]
fn the_next_minor_needs_the_steps_minimum_patch() {
    assert_eq!(step("3.4.22", "3.5.7"), Ok(()));
    assert_eq!(step("3.4.23", "3.5.3"), Ok(()));
    assert_eq!(
        step("3.4.21", "3.5.7"),
        Err(StepRefusal::BelowMinimum { from: v("3.4.21"), to: v("3.5.7"), min: v("3.4.22") })
    );
    assert!(matches!(step("3.5.31", "3.6.5"), Err(StepRefusal::BelowMinimum { .. })));
    assert_eq!(step("3.5.32", "3.6.5"), Ok(()));
}

#[test]
fn downgrades_and_skipped_minors_are_refused() {
    assert!(matches!(step("3.4.23", "3.4.22"), Err(StepRefusal::Downgrade { .. })));
    assert!(matches!(step("3.5.17", "3.4.23"), Err(StepRefusal::Downgrade { .. })));
    assert!(matches!(step("3.6.5", "3.5.40"), Err(StepRefusal::Downgrade { .. })));
    assert!(matches!(step("3.4.23", "3.6.5"), Err(StepRefusal::SkipsMinor { .. })));
    // No step is known from 3.6: the next minor is as good as skipped.
    assert!(matches!(step("3.6.5", "3.7.0"), Err(StepRefusal::SkipsMinor { .. })));
}

#[test]
fn auth_blocks_the_steps_that_do_not_support_it() {
    assert!(matches!(check_step(v("3.4.23"), v("3.5.7"), true), Err(StepRefusal::WithAuth { .. })));
    assert_eq!(check_step(v("3.4.23"), v("3.4.30"), true), Ok(()));
    assert_eq!(check_step(v("3.5.32"), v("3.6.0"), true), Ok(()));
}

#[test]
fn refusals_name_the_versions_allowed_next() {
    assert_eq!(allowed_next(v("3.4.23"), false), "3.4.23 or a later 3.4 patch, or 3.5.3 or later");
    assert_eq!(allowed_next(v("3.4.10"), false), "3.4.10 or a later 3.4 patch (3.4.22 or later before 3.5)");
    assert_eq!(allowed_next(v("3.4.23"), true), "3.4.23 or a later 3.4 patch (3.5 only with spec.auth off)");
    assert_eq!(allowed_next(v("3.5.32"), false), "3.5.32 or a later 3.5 patch, or 3.6.0 or later");
    assert_eq!(allowed_next(v("3.6.5"), false), "3.6.5 or a later 3.6 patch");
    let refusal = step("3.4.21", "3.5.7").unwrap_err();
    assert_eq!(
        refusal.to_string(),
        "3.4.21 → 3.5.7 needs 3.4.22 or later first (older 3.4 patches can fail the upgrade)"
    );
}

#[test]
fn every_step_has_a_source() {
    for s in MINOR_STEPS {
        assert!(s.source.contains("etcd.io") && s.source.contains("read 20"), "{s:?}");
    }
}
