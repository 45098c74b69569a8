//! The token cleaner, as upstream's `tokencleaner` controller: deletes
//! bootstrap token Secrets (`kube-system`, type
//! `bootstrap.kubernetes.io/token`) once their `expiration` has passed.
//! A token that is not yet due is looked at again when it expires. It acts
//! as `system:serviceaccount:kube-system:token-cleaner`, which the
//! bootstrap policy binds to the `system:controller:token-cleaner` Role.

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{DeleteParams, Preconditions};
use kube::{Api, Client};

use super::Shared;
use crate::auth::bootstrap::{self, NAMESPACE, SECRET_TYPE};
use crate::informer::Change;
use crate::workqueue::{self, WorkQueue};

/// Starts the controller on an informer of kube-system's Secrets.
pub fn start(client: Client, secrets: Shared<Secret>) {
    let queue = Arc::new(WorkQueue::new());
    let feed = queue.clone();
    let watched = secrets.clone();
    tokio::spawn(async move {
        let mut changes = watched.subscribe();
        let enqueue_all = || {
            for secret in watched.store().state() {
                if is_token(&secret) {
                    feed.add(key_of(&secret));
                }
            }
        };
        enqueue_all();
        while let Some(change) = changes.next().await {
            match change {
                Change::Applied(secret) if is_token(&secret) => feed.add(key_of(&secret)),
                Change::Applied(_) | Change::Deleted(_) => {}
                Change::Resync => enqueue_all(),
            }
        }
    });
    tokio::spawn(async move {
        queue
            .process("token-cleaner", |key| {
                let (client, secrets, queue) = (client.clone(), secrets.clone(), queue.clone());
                async move { sync(&client, &secrets, &queue, &key).await }
            })
            .await;
    });
}

fn is_token(secret: &Secret) -> bool {
    secret.type_.as_deref() == Some(SECRET_TYPE)
        && secret.metadata.namespace.as_deref() == Some(NAMESPACE)
}

fn key_of(secret: &Secret) -> String {
    workqueue::key(
        secret.metadata.namespace.as_deref().unwrap_or_default(),
        secret.metadata.name.as_deref().unwrap_or_default(),
    )
}

/// Seconds until the token Secret expires (`None`: it never does; zero or
/// less: it has). An unreadable expiration counts as expired, as upstream.
pub fn seconds_left(secret: &Secret, now: Timestamp) -> Option<i64> {
    let value = serde_json::to_value(secret).ok()?;
    let data = bootstrap::secret_data(&value);
    match bootstrap::expiration(&data) {
        Ok(None) => None,
        Ok(Some(at)) => Some(at.as_second() - now.as_second()),
        Err(_) => Some(0),
    }
}

async fn sync(
    client: &Client,
    secrets: &Shared<Secret>,
    queue: &WorkQueue,
    key: &str,
) -> Result<(), kube::Error> {
    let (namespace, name) = workqueue::split(key);
    let Some(secret) = secrets.get(namespace, name) else {
        return Ok(());
    };
    if !is_token(&secret) || secret.metadata.deletion_timestamp.is_some() {
        return Ok(());
    }
    let Some(left) = seconds_left(&secret, Timestamp::now()) else {
        return Ok(());
    };
    if left > 0 {
        queue.add_after(key.to_string(), Duration::from_secs(left.unsigned_abs()));
        return Ok(());
    }
    let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let params = DeleteParams {
        preconditions: Some(Preconditions {
            uid: secret.metadata.uid.clone(),
            resource_version: None,
        }),
        ..DeleteParams::default()
    };
    tracing::info!(secret = %key, "deleting the expired bootstrap token");
    match api.delete(name, &params).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn token(expiration: Option<&str>) -> Secret {
        let mut data = BTreeMap::from([("token-id".to_string(), "abcdef".to_string())]);
        if let Some(e) = expiration {
            data.insert("expiration".into(), e.into());
        }
        Secret {
            metadata: kube::api::ObjectMeta {
                name: Some("bootstrap-token-abcdef".into()),
                namespace: Some(NAMESPACE.into()),
                ..Default::default()
            },
            type_: Some(SECRET_TYPE.into()),
            string_data: Some(data),
            ..Default::default()
        }
    }

    #[test]
    fn expiry_is_read_from_the_secret() {
        let now: Timestamp = "2026-06-01T00:00:00Z".parse().expect("ts");
        assert_eq!(seconds_left(&token(None), now), None);
        assert_eq!(
            seconds_left(&token(Some("2026-06-01T00:01:00Z")), now),
            Some(60)
        );
        assert_eq!(
            seconds_left(&token(Some("2026-05-31T00:00:00Z")), now),
            Some(-86400)
        );
        assert_eq!(seconds_left(&token(Some("soon")), now), Some(0));
        let mut opaque = token(None);
        opaque.type_ = Some("Opaque".into());
        assert!(!is_token(&opaque));
        assert!(is_token(&token(None)));
    }
}
