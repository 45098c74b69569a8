//! In-process API clients.
//!
//! The scheduler, the controllers and the local kubelet talk to the API server
//! through the same Kubernetes API as remote clients, but without a socket or
//! TLS: a [`kube::Client`] whose transport is the API router itself. Each
//! client carries the identity of its component (e.g. `system:kube-scheduler`),
//! stamped on every request as the [`UserInfo`] the TLS listener would have
//! produced, so in-process calls pass the same authorization as remote ones.

use axum::Router;
use tower::ServiceBuilder;

use crate::auth::UserInfo;

/// A Kubernetes client that calls `router` directly as `user`.
pub fn in_process(router: Router, user: UserInfo) -> kube::Client {
    let service = ServiceBuilder::new()
        .map_request(move |request: http::Request<kube::client::Body>| {
            let mut request = request.map(axum::body::Body::new);
            request.extensions_mut().insert(user.clone());
            request
        })
        .service(router);
    kube::Client::new(service, "default")
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
    use kube::api::{Api, ListParams, PostParams};

    use super::*;
    use crate::api::{ApiConfig, ApiServer};

    fn config() -> ApiConfig {
        ApiConfig {
            cluster_cidr: "10.42.0.0/16".parse().expect("cidr"),
            service_cidr: "10.43.0.0/16".parse().expect("cidr"),
            cluster_dns: "10.43.0.10".parse().expect("ip"),
            cluster_domain: "cluster.local".to_string(),
            service_node_port_range: (30000, 32767),
            // Documentation address (RFC 5737): only data here, never contacted.
            advertise_address: "192.0.2.10".parse().expect("ip"),
            https_port: 6443,
        }
    }

    #[tokio::test]
    async fn an_in_process_client_reads_and_writes_through_the_router() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = crate::store::open(None, dir.path()).await.expect("store");
        let api = ApiServer::new(store, config()).await.expect("api server");
        let client = in_process(api.router(), UserInfo::component("system:kube-scheduler"));

        let namespaces: Api<Namespace> = Api::all(client.clone());
        let names: Vec<String> = namespaces
            .list(&ListParams::default())
            .await
            .expect("list namespaces")
            .items
            .into_iter()
            .filter_map(|ns| ns.metadata.name)
            .collect();
        for expected in ["default", "kube-system", "kube-public", "kube-node-lease"] {
            assert!(
                names.iter().any(|n| n == expected),
                "{expected} missing from {names:?}"
            );
        }

        let mut cm = ConfigMap::default();
        cm.metadata.name = Some("in-process".to_string());
        cm.data = Some([("k".to_string(), "v".to_string())].into());
        // The scheduler's role does not cover configmaps: the same
        // authorization as remote clients applies.
        let as_scheduler: Api<ConfigMap> = Api::namespaced(client, "default");
        match as_scheduler.create(&PostParams::default(), &cm).await {
            Err(kube::Error::Api(e)) => assert_eq!(e.code, 403, "{e:?}"),
            other => panic!("the scheduler created a configmap: {other:?}"),
        }

        let admin = UserInfo {
            username: "system:admin".into(),
            groups: vec!["system:masters".into(), "system:authenticated".into()],
            ..UserInfo::default()
        };
        let configmaps: Api<ConfigMap> =
            Api::namespaced(in_process(api.router(), admin), "default");
        let created = configmaps
            .create(&PostParams::default(), &cm)
            .await
            .expect("create a configmap");
        assert!(created.metadata.uid.is_some());
        let read = configmaps.get("in-process").await.expect("get it back");
        assert_eq!(read.data, cm.data);
    }
}
