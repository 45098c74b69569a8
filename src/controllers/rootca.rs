//! The root CA publisher: every active namespace has a ConfigMap
//! `kube-root-ca.crt` whose `ca.crt` is the cluster CA (PEM), so pods can
//! verify the API server; it is recreated when deleted and restored when
//! edited, as upstream's `root-ca-cert-publisher`.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::PostParams;
use kube::{Api, Client};

use super::Shared;
use super::per_namespace::{self, is_active, namespace_gone};

/// The ConfigMap's name.
pub const NAME: &str = "kube-root-ca.crt";
/// The annotation upstream describes the ConfigMap with.
pub const DESCRIPTION_ANNOTATION: &str = "kubernetes.io/description";
pub const DESCRIPTION: &str = "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes clusters.";

/// Starts the publisher of `ca_pem`: it writes as `client` and reads
/// ConfigMaps through `reader` (the controller manager's shared identity).
pub fn start(client: Client, reader: Client, namespaces: Shared<Namespace>, ca_pem: String) {
    let informer = Arc::clone(&namespaces);
    let sync_client = client.clone();
    let sync_reader = reader.clone();
    let ca_pem = Arc::new(ca_pem);
    per_namespace::run(
        "root-ca-cert-publisher",
        namespaces,
        Api::<ConfigMap>::all(reader),
        NAME,
        move |ns| {
            let client = sync_client.clone();
            let reader = sync_reader.clone();
            let informer = Arc::clone(&informer);
            let ca_pem = Arc::clone(&ca_pem);
            async move { sync(client, reader, &informer, &ns, &ca_pem).await }
        },
    );
}

/// What the ConfigMap holds.
fn data(ca_pem: &str) -> BTreeMap<String, String> {
    BTreeMap::from([("ca.crt".to_string(), ca_pem.to_string())])
}

/// The ConfigMap with the right data and description, or `None` when
/// `current` already is right. Other metadata is kept.
pub fn desired(current: &ConfigMap, ca_pem: &str) -> Option<ConfigMap> {
    let data = data(ca_pem);
    let described = current
        .metadata
        .annotations
        .as_ref()
        .is_some_and(|a| a.get(DESCRIPTION_ANNOTATION).is_some_and(|d| !d.is_empty()));
    if current.data.as_ref() == Some(&data) && described {
        return None;
    }
    let mut next = current.clone();
    next.data = Some(data);
    next.metadata
        .annotations
        .get_or_insert_with(BTreeMap::new)
        .entry(DESCRIPTION_ANNOTATION.to_string())
        .or_insert_with(|| DESCRIPTION.to_string());
    Some(next)
}

async fn sync(
    client: Client,
    reader: Client,
    namespaces: &Shared<Namespace>,
    ns: &str,
    ca_pem: &str,
) -> Result<(), kube::Error> {
    match namespaces.get("", ns) {
        Some(n) if is_active(&n) => {}
        _ => return Ok(()),
    }
    let api: Api<ConfigMap> = Api::namespaced(client, ns);
    let result = match Api::<ConfigMap>::namespaced(reader, ns)
        .get_opt(NAME)
        .await?
    {
        Some(current) => match desired(&current, ca_pem) {
            Some(next) => api.replace(NAME, &PostParams::default(), &next).await,
            None => return Ok(()),
        },
        None => {
            let mut cm = ConfigMap::default();
            cm.metadata.name = Some(NAME.to_string());
            cm.metadata.annotations = Some(BTreeMap::from([(
                DESCRIPTION_ANNOTATION.to_string(),
                DESCRIPTION.to_string(),
            )]));
            cm.data = Some(data(ca_pem));
            api.create(&PostParams::default(), &cm).await
        }
    };
    match result {
        Ok(_) => Ok(()),
        Err(e) if namespace_gone(&e) => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edits_are_undone_and_a_right_configmap_is_left_alone() {
        let mut cm = ConfigMap::default();
        cm.metadata.name = Some(NAME.into());
        cm.metadata.labels = Some(BTreeMap::from([("keep".into(), "me".into())]));
        cm.data = Some(BTreeMap::from([("ca.crt".into(), "edited".into())]));
        let fixed = desired(&cm, "PEM").expect("edited data is restored");
        assert_eq!(fixed.data, Some(data("PEM")));
        assert_eq!(fixed.metadata.labels, cm.metadata.labels);
        assert_eq!(
            fixed
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(DESCRIPTION_ANNOTATION)),
            Some(&DESCRIPTION.to_string())
        );
        assert!(desired(&fixed, "PEM").is_none());

        // An extra key is removed too.
        let mut extra = fixed.clone();
        if let Some(d) = extra.data.as_mut() {
            d.insert("x".into(), "y".into());
        }
        assert_eq!(
            desired(&extra, "PEM").and_then(|c| c.data),
            Some(data("PEM"))
        );
    }
}
