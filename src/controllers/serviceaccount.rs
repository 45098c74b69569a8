//! The service-account controller: every active namespace has a ServiceAccount
//! named `default`, created when the namespace appears and again whenever it
//! is deleted, as upstream's `serviceaccount-controller`.

use std::sync::Arc;

use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use kube::api::PostParams;
use kube::{Api, Client};

use super::Shared;
use super::per_namespace::{self, is_active, namespace_gone};

/// The service account every namespace gets.
pub const DEFAULT: &str = "default";

/// Starts the controller: it writes as `client` and watches service
/// accounts through `reader` (the controller manager's shared identity, as
/// upstream's controllers read through shared informers).
pub fn start(client: Client, reader: Client, namespaces: Shared<Namespace>) {
    let informer = Arc::clone(&namespaces);
    let sync_client = client.clone();
    let sync_reader = reader.clone();
    per_namespace::run(
        "serviceaccount",
        namespaces,
        Api::<ServiceAccount>::all(reader),
        DEFAULT,
        move |ns| {
            let client = sync_client.clone();
            let reader = sync_reader.clone();
            let informer = Arc::clone(&informer);
            async move { sync(client, reader, &informer, &ns).await }
        },
    );
}

async fn sync(
    client: Client,
    reader: Client,
    namespaces: &Shared<Namespace>,
    ns: &str,
) -> Result<(), kube::Error> {
    match namespaces.get("", ns) {
        Some(n) if is_active(&n) => {}
        _ => return Ok(()),
    }
    let api: Api<ServiceAccount> = Api::namespaced(client, ns);
    if Api::<ServiceAccount>::namespaced(reader, ns)
        .get_opt(DEFAULT)
        .await?
        .is_some()
    {
        return Ok(());
    }
    let mut sa = ServiceAccount::default();
    sa.metadata.name = Some(DEFAULT.to_string());
    match api.create(&PostParams::default(), &sa).await {
        Ok(_) => {
            tracing::debug!(namespace = ns, "created the default service account");
            Ok(())
        }
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(()),
        Err(e) if namespace_gone(&e) => Ok(()),
        Err(e) => Err(e),
    }
}
