//! The stable identity of a StatefulSet's pods: the name `<set>-<ordinal>`,
//! the `statefulset.kubernetes.io/pod-name`, `apps.kubernetes.io/pod-index`
//! and `controller-revision-hash` labels, hostname and subdomain (the
//! governing service), and the claims `<template>-<set>-<ordinal>` made from
//! `volumeClaimTemplates` and mounted in place of same-named volumes.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{
    PersistentVolumeClaim, PersistentVolumeClaimVolumeSource, Pod, PodTemplateSpec, Volume,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;

use super::super::history::POD_REVISION_LABEL;
use super::super::owner_reference;

/// The label naming a set's pod.
pub const POD_NAME_LABEL: &str = "statefulset.kubernetes.io/pod-name";
/// The label holding a pod's ordinal.
pub const POD_INDEX_LABEL: &str = "apps.kubernetes.io/pod-index";

/// The ordinal of a pod named `<set>-<ordinal>`, if it is one of the set's.
pub fn ordinal_of(set_name: &str, pod_name: &str) -> Option<i32> {
    let rest = pod_name.strip_prefix(set_name)?.strip_prefix('-')?;
    if rest.is_empty() || !rest.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if rest.len() > 1 && rest.starts_with('0') {
        return None;
    }
    rest.parse().ok()
}

/// The identity labels `pod` lacks or has wrong for `ordinal`, if any
/// (an adopted or edited pod), as a label map to merge into it.
pub fn missing_labels(pod: &Pod, ordinal: i32) -> Option<BTreeMap<String, String>> {
    let name = pod.metadata.name.clone().unwrap_or_default();
    let wanted = BTreeMap::from([
        (POD_NAME_LABEL.to_string(), name),
        (POD_INDEX_LABEL.to_string(), ordinal.to_string()),
    ]);
    let labels = pod.metadata.labels.clone().unwrap_or_default();
    let missing: BTreeMap<String, String> = wanted
        .into_iter()
        .filter(|(k, v)| labels.get(k) != Some(v))
        .collect();
    (!missing.is_empty()).then_some(missing)
}

/// The claim name for template `claim` and `ordinal`.
pub fn claim_name(claim: &str, set_name: &str, ordinal: i32) -> String {
    format!("{claim}-{set_name}-{ordinal}")
}

fn set_name(set: &StatefulSet) -> &str {
    set.metadata.name.as_deref().unwrap_or_default()
}

/// The set's claims for `ordinal`, as they should be created.
pub fn claims(set: &StatefulSet, ordinal: i32) -> Vec<PersistentVolumeClaim> {
    let Some(spec) = set.spec.as_ref() else {
        return Vec::new();
    };
    let selector_labels = spec.selector.match_labels.clone().unwrap_or_default();
    spec.volume_claim_templates
        .iter()
        .flatten()
        .map(|template| {
            let mut claim = template.clone();
            let template_name = template.metadata.name.clone().unwrap_or_default();
            claim.metadata.name = Some(claim_name(&template_name, set_name(set), ordinal));
            claim.metadata.namespace = set.metadata.namespace.clone();
            let labels = claim.metadata.labels.get_or_insert_with(BTreeMap::new);
            labels.extend(selector_labels.clone());
            claim.status = None;
            claim
        })
        .collect()
}

/// The pod of `ordinal` made from `template` (a revision's template) and
/// labelled with `revision`.
pub fn new_pod(set: &StatefulSet, template: &PodTemplateSpec, ordinal: i32, revision: &str) -> Pod {
    let name = format!("{}-{ordinal}", set_name(set));
    let mut meta = template.metadata.clone().unwrap_or_default();
    meta.name = Some(name.clone());
    meta.generate_name = None;
    meta.namespace = set.metadata.namespace.clone();
    meta.owner_references = Some(vec![owner_reference(
        "apps/v1",
        "StatefulSet",
        set_name(set),
        set.metadata.uid.as_deref().unwrap_or_default(),
    )]);
    let labels = meta.labels.get_or_insert_with(BTreeMap::new);
    labels.insert(POD_NAME_LABEL.into(), name.clone());
    labels.insert(POD_INDEX_LABEL.into(), ordinal.to_string());
    labels.insert(POD_REVISION_LABEL.into(), revision.into());
    let mut spec = template.spec.clone().unwrap_or_default();
    spec.hostname = Some(name);
    let service = set
        .spec
        .as_ref()
        .and_then(|s| s.service_name.clone())
        .filter(|s| !s.is_empty());
    if service.is_some() {
        spec.subdomain = service;
    }
    let mut volumes: Vec<Volume> = spec.volumes.take().unwrap_or_default();
    for claim in set
        .spec
        .as_ref()
        .and_then(|s| s.volume_claim_templates.as_ref())
        .into_iter()
        .flatten()
    {
        let template_name = claim.metadata.name.clone().unwrap_or_default();
        volumes.retain(|v| v.name != template_name);
        volumes.push(Volume {
            name: template_name.clone(),
            persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                claim_name: claim_name(&template_name, set_name(set), ordinal),
                read_only: None,
            }),
            ..Default::default()
        });
    }
    if !volumes.is_empty() {
        spec.volumes = Some(volumes);
    }
    Pod {
        metadata: meta,
        spec: Some(spec),
        status: None,
    }
}

/// A plain (non-controller) owner reference, as upstream puts on claims the
/// retention policy lets go with their set or pod.
pub fn plain_owner(api_version: &str, kind: &str, name: &str, uid: &str) -> OwnerReference {
    OwnerReference {
        controller: None,
        ..owner_reference(api_version, kind, name, uid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn set() -> StatefulSet {
        serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "ns", "uid": "u1"},
            "spec": {
                "serviceName": "nginx",
                "selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "c", "image": "i"}],
                             "volumes": [{"name": "www", "emptyDir": {}}]}},
                "volumeClaimTemplates": [{"metadata": {"name": "www"},
                    "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}],
            },
        }))
        .expect("set")
    }

    #[test]
    fn ordinals_parse_only_the_sets_own_names() {
        assert_eq!(ordinal_of("web", "web-0"), Some(0));
        assert_eq!(ordinal_of("web", "web-12"), Some(12));
        assert_eq!(ordinal_of("web", "web-01"), None);
        assert_eq!(ordinal_of("web", "web-x"), None);
        assert_eq!(ordinal_of("web", "web-"), None);
        assert_eq!(ordinal_of("web", "webby-1"), None);
        assert_eq!(ordinal_of("web", "web-a-1"), None);
    }

    #[test]
    fn pods_carry_their_identity_and_claims() {
        let s = set();
        let template = s
            .spec
            .as_ref()
            .map(|s| s.template.clone())
            .unwrap_or_default();
        let pod = new_pod(&s, &template, 2, "web-abc");
        assert_eq!(pod.metadata.name.as_deref(), Some("web-2"));
        let labels = pod.metadata.labels.clone().unwrap_or_default();
        assert_eq!(labels[POD_NAME_LABEL], "web-2");
        assert_eq!(labels[POD_INDEX_LABEL], "2");
        assert_eq!(labels[POD_REVISION_LABEL], "web-abc");
        assert_eq!(labels["app"], "web");
        let spec = pod.spec.clone().unwrap_or_default();
        assert_eq!(spec.hostname.as_deref(), Some("web-2"));
        assert_eq!(spec.subdomain.as_deref(), Some("nginx"));
        let volumes = spec.volumes.unwrap_or_default();
        assert_eq!(volumes.len(), 1, "the template volume is replaced");
        let source = volumes[0]
            .persistent_volume_claim
            .clone()
            .unwrap_or_default();
        assert_eq!(source.claim_name, "www-web-2");
        let owner = pod.metadata.owner_references.clone().unwrap_or_default();
        assert_eq!(owner[0].uid, "u1");
        assert_eq!(owner[0].controller, Some(true));

        assert_eq!(missing_labels(&pod, 2), None);
        let mut edited = pod.clone();
        edited.metadata.labels = Some(BTreeMap::from([("app".into(), "web".into())]));
        let missing = missing_labels(&edited, 2).unwrap_or_default();
        assert_eq!(missing[POD_NAME_LABEL], "web-2");
        assert_eq!(missing[POD_INDEX_LABEL], "2");

        let claims = claims(&s, 2);
        assert_eq!(claims.len(), 1);
        assert_eq!(claims[0].metadata.name.as_deref(), Some("www-web-2"));
        assert_eq!(claims[0].metadata.namespace.as_deref(), Some("ns"));
        assert_eq!(
            claims[0].metadata.labels.clone().unwrap_or_default()["app"],
            "web"
        );
    }
}
