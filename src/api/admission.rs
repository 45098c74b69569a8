//! Admission: changes and checks that need more than the object itself,
//! run on create before the kind's strategy (upstream's admission chain,
//! for the plugins skiff has).
//!
//! * `serviceaccount`: pods run as a service account that exists, and get
//!   its token mounted.

pub mod serviceaccount;

use serde_json::Value;

use crate::api::handlers::Core;
use crate::api::registry::KindInfo;
use crate::api::status::ApiStatus;

/// Admits (and may change) `obj`, a new object of `kind` in `namespace`.
pub async fn admit_create(
    core: &Core,
    kind: &'static KindInfo,
    namespace: Option<&str>,
    obj: &mut Value,
) -> Result<(), ApiStatus> {
    if (kind.group, kind.kind) == ("", "Pod") {
        serviceaccount::admit_pod(core, kind, namespace.unwrap_or(""), obj).await?;
    }
    Ok(())
}
