//! Matching tests over hand-built claims and volumes.

use super::*;
use serde_json::json;

fn pv(
    name: &str,
    size: &str,
    modes: &[&str],
    class: &str,
    labels: serde_json::Value,
) -> Arc<PersistentVolume> {
    Arc::new(
        serde_json::from_value(json!({
            "metadata": {"name": name, "labels": labels},
            "spec": {"capacity": {"storage": size}, "accessModes": modes,
                     "storageClassName": class, "hostPath": {"path": "/tmp"}},
            "status": {"phase": "Available"},
        }))
        .unwrap_or_else(|e| panic!("pv: {e}")),
    )
}

fn pvc(
    size: &str,
    modes: &[&str],
    class: Option<&str>,
    selector: Option<serde_json::Value>,
) -> PersistentVolumeClaim {
    let mut spec = json!({"accessModes": modes, "resources": {"requests": {"storage": size}}});
    if let Some(c) = class {
        spec["storageClassName"] = json!(c);
    }
    if let Some(s) = selector {
        spec["selector"] = s;
    }
    serde_json::from_value(json!({
        "metadata": {"name": "data", "namespace": "default", "uid": "u-1"},
        "spec": spec,
    }))
    .unwrap_or_else(|e| panic!("pvc: {e}"))
}

fn picked(claim: &PersistentVolumeClaim, volumes: &[Arc<PersistentVolume>]) -> Option<String> {
    best_match(claim, volumes).and_then(|pv| pv.metadata.name.clone())
}

#[test]
fn the_smallest_fitting_volume_is_chosen() {
    let volumes = vec![
        pv("big", "10Gi", &["ReadWriteOnce"], "", json!({})),
        pv("small", "1Gi", &["ReadWriteOnce"], "", json!({})),
        pv("tiny", "100Mi", &["ReadWriteOnce"], "", json!({})),
        pv(
            "mid",
            "2Gi",
            &["ReadWriteOnce", "ReadOnlyMany"],
            "",
            json!({}),
        ),
    ];
    let claim = pvc("500Mi", &["ReadWriteOnce"], None, None);
    assert_eq!(picked(&claim, &volumes).as_deref(), Some("small"));
    let many = pvc("500Mi", &["ReadOnlyMany"], None, None);
    assert_eq!(picked(&many, &volumes).as_deref(), Some("mid"));
    let huge = pvc("20Gi", &["ReadWriteOnce"], None, None);
    assert_eq!(picked(&huge, &volumes), None);
}

#[test]
fn class_selector_and_mode_must_match() {
    let volumes = vec![
        pv(
            "fast",
            "1Gi",
            &["ReadWriteOnce"],
            "fast",
            json!({"tier": "gold"}),
        ),
        pv(
            "plain",
            "1Gi",
            &["ReadWriteOnce"],
            "",
            json!({"tier": "bronze"}),
        ),
    ];
    let fast = pvc("1Gi", &["ReadWriteOnce"], Some("fast"), None);
    assert_eq!(picked(&fast, &volumes).as_deref(), Some("fast"));
    let none = pvc("1Gi", &["ReadWriteOnce"], None, None);
    assert_eq!(picked(&none, &volumes).as_deref(), Some("plain"));
    let gold = pvc(
        "1Gi",
        &["ReadWriteOnce"],
        None,
        Some(json!({"matchLabels": {"tier": "gold"}})),
    );
    assert_eq!(
        picked(&gold, &volumes),
        None,
        "class \"\" has no gold volume"
    );
    let mut block = pvc("1Gi", &["ReadWriteOnce"], None, None);
    if let Some(s) = block.spec.as_mut() {
        s.volume_mode = Some("Block".into());
    }
    assert_eq!(picked(&block, &volumes), None);
    assert_eq!(
        mismatch(&block, &volumes[1]),
        Some("incompatible volumeMode")
    );
    assert_eq!(
        mismatch(&fast, &volumes[1]),
        Some("storageClassName does not match")
    );
    let rwx = pvc("1Gi", &["ReadWriteMany"], None, None);
    assert_eq!(mismatch(&rwx, &volumes[1]), Some("incompatible accessMode"));
    let big = pvc("2Gi", &["ReadWriteOnce"], None, None);
    assert_eq!(
        mismatch(&big, &volumes[1]),
        Some("requested PV is too small")
    );
}

#[test]
fn a_volume_pre_bound_to_the_claim_wins_and_others_are_skipped() {
    let mut pre = (*pv("pre", "5Gi", &["ReadWriteOnce"], "", json!({}))).clone();
    if let Some(s) = pre.spec.as_mut() {
        s.claim_ref = Some(ObjectReference {
            name: Some("data".into()),
            namespace: Some("default".into()),
            ..Default::default()
        });
    }
    let mut taken = (*pv("taken", "1Gi", &["ReadWriteOnce"], "", json!({}))).clone();
    if let Some(s) = taken.spec.as_mut() {
        s.claim_ref = Some(ObjectReference {
            name: Some("other".into()),
            namespace: Some("default".into()),
            uid: Some("u-2".into()),
            ..Default::default()
        });
    }
    let claim = pvc("1Gi", &["ReadWriteOnce"], None, None);
    let volumes = vec![Arc::new(taken.clone()), Arc::new(pre)];
    assert_eq!(picked(&claim, &volumes).as_deref(), Some("pre"));
    assert_eq!(picked(&claim, &[Arc::new(taken)]), None);
}
