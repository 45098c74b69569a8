//! Labels the server puts on its own node, as k3s's server does: a kubelet
//! may not set `node-role.kubernetes.io/` labels on its Node (NodeRestriction
//! admission), so the server marks its node `control-plane` itself, as the
//! node controller's service account (whose role may patch nodes).

use std::time::Duration;

use k8s_openapi::api::core::v1::Node;
use kube::api::{Patch, PatchParams};
use kube::{Api, Client};

/// The label of control-plane nodes.
pub const CONTROL_PLANE_LABEL: &str = "node-role.kubernetes.io/control-plane";

/// How often registration is checked for while the node is not there yet.
const RETRY: Duration = Duration::from_secs(1);

/// Waits for the Node `name` and labels it `control-plane` (once it has
/// the label, nothing is written).
pub async fn label_control_plane(client: Client, name: String) {
    let nodes: Api<Node> = Api::all(client);
    loop {
        match nodes.get_opt(&name).await {
            Ok(Some(node)) => {
                let has = node.metadata.labels.as_ref().is_some_and(|l| {
                    l.get(CONTROL_PLANE_LABEL).map(String::as_str) == Some("true")
                });
                if has {
                    return;
                }
                let patch =
                    serde_json::json!({"metadata": {"labels": {CONTROL_PLANE_LABEL: "true"}}});
                match nodes
                    .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await
                {
                    Ok(_) => {
                        tracing::info!(node = %name, "labelled the server's node control-plane");
                        return;
                    }
                    Err(e) => tracing::warn!(node = %name, error = %e, "cannot label the node"),
                }
            }
            Ok(None) => {}
            Err(e) => tracing::debug!(node = %name, error = %e, "cannot read the node"),
        }
        tokio::time::sleep(RETRY).await;
    }
}
