//! Object lookups for code outside the request path (the service-account
//! token authenticator): from the watch cache, or a consistent store read.

use std::sync::Arc;

use serde_json::Value;

use crate::api::handlers::Core;
use crate::api::object;
use crate::api::registry::lookup;
use crate::auth::serviceaccount::ObjectLookup;

/// Core-group objects by plural, namespace and name.
pub struct CoreObjects {
    pub(crate) core: Arc<Core>,
}

fn key(resource: &str, namespace: &str, name: &str) -> Option<String> {
    let kind = lookup("", "v1", resource)?;
    let ns = (!namespace.is_empty()).then_some(namespace);
    Some(kind.key(ns, name))
}

#[async_trait::async_trait]
impl ObjectLookup for CoreObjects {
    fn cached(&self, resource: &str, namespace: &str, name: &str) -> Option<Arc<Value>> {
        let kind = lookup("", "v1", resource)?;
        let cache = self.core.cache(kind).ok()?;
        cache.get(&key(resource, namespace, name)?)
    }

    async fn fresh(&self, resource: &str, namespace: &str, name: &str) -> Option<Value> {
        let key = key(resource, namespace, name)?;
        match self.core.store.get(&key, None).await {
            Ok(kv) => object::decode(&kv?).ok(),
            Err(e) => {
                tracing::warn!(%key, error = %e, "cannot read an object a token names");
                None
            }
        }
    }
}
