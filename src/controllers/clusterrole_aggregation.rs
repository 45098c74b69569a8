//! The ClusterRole aggregation controller, as upstream's: a ClusterRole with
//! an `aggregationRule` gets as its `rules` the rules of every other
//! ClusterRole its `clusterRoleSelectors` select (selectors in order, roles
//! by name, duplicates dropped). Any ClusterRole change re-syncs every
//! aggregated role, so `admin`, `edit` and `view` follow the roles labelled
//! `rbac.authorization.k8s.io/aggregate-to-*`.

use std::sync::Arc;

use k8s_openapi::api::rbac::v1::ClusterRole;
use kube::api::PostParams;
use kube::{Api, Client};

use crate::auth::rbac::rules::Rule;
use crate::informer::Informer;
use crate::workqueue::WorkQueue;

/// Why a sync failed (the role is retried with backoff).
#[derive(Debug, thiserror::Error)]
pub enum AggregationError {
    #[error("updating the cluster role: {0}")]
    Update(kube::Error),
    #[error("encoding rules: {0}")]
    Encode(#[from] serde_json::Error),
}

struct Controller {
    client: Client,
    roles: Arc<Informer<ClusterRole>>,
    queue: WorkQueue,
}

/// Starts the controller with its own ClusterRole informer.
pub fn start(client: Client) {
    let roles = Informer::start(Api::<ClusterRole>::all(client.clone()));
    let c = Arc::new(Controller {
        client,
        roles,
        queue: WorkQueue::new(),
    });
    tokio::spawn(c.clone().watch());
    tokio::spawn(async move {
        let worker = c.clone();
        c.queue
            .process("clusterrole-aggregation", |key| {
                let c = worker.clone();
                async move { c.sync(&key).await }
            })
            .await;
    });
}

fn rules_of(role: &ClusterRole) -> Vec<Rule> {
    serde_json::to_value(&role.rules)
        .ok()
        .and_then(|v| serde_json::from_value(v).ok())
        .unwrap_or_default()
}

/// The rules an aggregated role should have, given every cluster role.
pub fn aggregate(target: &ClusterRole, all: &[Arc<ClusterRole>]) -> Option<Vec<Rule>> {
    let selectors = target
        .aggregation_rule
        .as_ref()?
        .cluster_role_selectors
        .as_ref()?;
    let name = target.metadata.name.as_deref().unwrap_or_default();
    let mut sorted: Vec<&Arc<ClusterRole>> = all.iter().collect();
    sorted.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    let mut rules: Vec<Rule> = Vec::new();
    for selector in selectors {
        let Ok(selector) = serde_json::to_value(selector) else {
            continue;
        };
        for role in &sorted {
            if role.metadata.name.as_deref() == Some(name) {
                continue;
            }
            let labels = serde_json::to_value(&role.metadata.labels).ok();
            if !crate::api::kinds::labelselector::matches(&selector, labels.as_ref()) {
                continue;
            }
            for rule in rules_of(role) {
                if !rules.contains(&rule) {
                    rules.push(rule);
                }
            }
        }
    }
    Some(rules)
}

impl Controller {
    async fn watch(self: Arc<Self>) {
        let mut changes = self.roles.subscribe();
        // The first list may have come and gone before this subscription.
        self.enqueue_aggregated();
        while changes.next().await.is_some() {
            self.enqueue_aggregated();
        }
    }

    fn enqueue_aggregated(&self) {
        for role in self.roles.store().state() {
            if role.aggregation_rule.is_some()
                && let Some(name) = role.metadata.name.clone()
            {
                self.queue.add(name);
            }
        }
    }

    async fn sync(&self, name: &str) -> Result<(), AggregationError> {
        let Some(role) = self.roles.get("", name) else {
            return Ok(());
        };
        let all = self.roles.store().state();
        let Some(rules) = aggregate(&role, &all) else {
            return Ok(());
        };
        if rules == rules_of(&role) {
            return Ok(());
        }
        let mut updated = (*role).clone();
        updated.rules = Some(serde_json::from_value(serde_json::to_value(&rules)?)?);
        let api: Api<ClusterRole> = Api::all(self.client.clone());
        match api.replace(name, &PostParams::default(), &updated).await {
            Ok(_) => {
                tracing::info!(
                    clusterrole = name,
                    rules = rules.len(),
                    "aggregated cluster role"
                );
                Ok(())
            }
            Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
            Err(e) => Err(AggregationError::Update(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn role(v: serde_json::Value) -> Arc<ClusterRole> {
        Arc::new(serde_json::from_value(v).unwrap_or_else(|e| panic!("role: {e}")))
    }

    #[test]
    fn selected_roles_contribute_their_rules_once_in_name_order() {
        let view = role(serde_json::json!({
            "metadata": {"name": "view"},
            "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {"agg": "true"}}]},
        }));
        let rule =
            |r: &str| serde_json::json!({"verbs": ["get"], "apiGroups": [""], "resources": [r]});
        let b = role(
            serde_json::json!({"metadata": {"name": "b", "labels": {"agg": "true"}}, "rules": [rule("pods"), rule("secrets")]}),
        );
        let a = role(
            serde_json::json!({"metadata": {"name": "a", "labels": {"agg": "true"}}, "rules": [rule("pods")]}),
        );
        let other = role(serde_json::json!({"metadata": {"name": "c"}, "rules": [rule("nodes")]}));
        let Some(rules) = aggregate(&view, &[b, other, a, view.clone()]) else {
            panic!("view aggregates")
        };
        let resources: Vec<&str> = rules.iter().map(|r| r.resources[0].as_str()).collect();
        assert_eq!(resources, vec!["pods", "secrets"]);
        assert!(aggregate(&role(serde_json::json!({"metadata": {"name": "x"}})), &[]).is_none());
    }
}
