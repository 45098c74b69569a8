//! `POST .../serviceaccounts/{name}/token`: an `authentication.k8s.io/v1`
//! TokenRequest in, the same with a signed token in its status out, as
//! upstream's `TokenREST`. Nothing is stored.
//!
//! `spec.audiences` defaults to the API audiences, `expirationSeconds` to
//! 3600 (at least 600, at most 2^32: 422 otherwise). `boundObjectRef` binds
//! the token to a Pod (running as this service account), a Secret or a
//! Node; the token then dies with that object, and a uid given in the
//! reference must be the object's (409 otherwise). A pod-bound token names
//! the pod's node too. As upstream with `--service-account-extend-token-
//! expiration` (k3s' default), a pod-bound token asked for with the
//! kubelet's 3607 s for the API audiences is valid for a year, with
//! `warnafter` at the requested time.

use std::sync::Arc;

use axum::response::Response;
use bytes::Bytes;
use http::StatusCode;
use serde_json::{Value, json};

use super::{Core, Ctx, store_error};
use crate::api::kinds::Cause;
use crate::api::object;
use crate::api::registry::{KindInfo, lookup};
use crate::api::response::{decode_body, json};
use crate::api::status::ApiStatus;
use crate::auth::serviceaccount::{ObjectRef, TokenSpec};

/// The default token lifetime.
pub const DEFAULT_EXPIRATION_SECONDS: i64 = 3600;
/// The shortest lifetime a client may ask for.
pub const MIN_EXPIRATION_SECONDS: i64 = 600;
/// The longest lifetime a client may ask for.
pub const MAX_EXPIRATION_SECONDS: i64 = 1 << 32;
/// What the kubelet asks for in a projected token volume admission adds.
pub const WARN_ONLY_EXPIRATION_SECONDS: i64 = 3607;
/// The lifetime such a token really gets.
pub const EXTENDED_EXPIRATION_SECONDS: i64 = 365 * 24 * 3600;

const API_VERSION: &str = "authentication.k8s.io/v1";

/// TokenRequest as a kind, for messages (it is not stored or listed).
static TOKEN_REQUEST: KindInfo = KindInfo {
    group: "authentication.k8s.io",
    version: "v1",
    kind: "TokenRequest",
    plural: "tokenrequests",
    singular: "tokenrequest",
    namespaced: true,
    short_names: &[],
    categories: &[],
    subresources: &[],
    storage: "tokenrequests",
};

fn invalid(name: &str, field: &str, value: impl std::fmt::Display, why: &str) -> ApiStatus {
    ApiStatus::invalid(
        &TOKEN_REQUEST,
        name,
        &[Cause {
            reason: "FieldValueInvalid",
            message: format!("Invalid value: {value}: {why}"),
            field: field.to_string(),
        }],
    )
}

fn undecodable(why: &str) -> ApiStatus {
    ApiStatus::bad_request(format!(
        "TokenRequest in version \"v1\" cannot be handled as a TokenRequest: {why}"
    ))
}

/// The request's spec, type-checked.
struct Requested {
    audiences: Vec<String>,
    expiration_seconds: i64,
    bound: Option<Value>,
}

fn parse(req: &Value) -> Result<Requested, ApiStatus> {
    match req.get("apiVersion").and_then(Value::as_str) {
        Some(v) if !v.is_empty() && v != API_VERSION => {
            return Err(ApiStatus::bad_request(format!(
                "the API version in the data ({v}) does not match the expected API version ({API_VERSION})"
            )));
        }
        _ => {}
    }
    match req.get("kind").and_then(Value::as_str) {
        Some(k) if !k.is_empty() && k != "TokenRequest" => {
            return Err(ApiStatus::bad_request(format!(
                "the kind in the data ({k}) does not match the expected kind (TokenRequest)"
            )));
        }
        _ => {}
    }
    let spec = &req["spec"];
    if !spec.is_null() && !spec.is_object() {
        return Err(undecodable("spec must be an object"));
    }
    let audiences = match &spec["audiences"] {
        Value::Null => Vec::new(),
        Value::Array(items) => items
            .iter()
            .map(|a| a.as_str().map(str::to_string))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| undecodable("spec.audiences must be a list of strings"))?,
        _ => return Err(undecodable("spec.audiences must be a list of strings")),
    };
    let expiration_seconds = match &spec["expirationSeconds"] {
        Value::Null => DEFAULT_EXPIRATION_SECONDS,
        v => v
            .as_i64()
            .ok_or_else(|| undecodable("spec.expirationSeconds must be an integer"))?,
    };
    let bound = match &spec["boundObjectRef"] {
        Value::Null => None,
        v @ Value::Object(_) => Some(v.clone()),
        _ => return Err(undecodable("spec.boundObjectRef must be an object")),
    };
    Ok(Requested {
        audiences,
        expiration_seconds,
        bound,
    })
}

/// Reads a core object with a consistent read.
async fn get(
    core: &Core,
    plural: &str,
    namespace: Option<&str>,
    name: &str,
) -> Result<Value, ApiStatus> {
    let kind = lookup("", "v1", plural)
        .ok_or_else(|| ApiStatus::internal(format!("{plural} missing from the kind table")))?;
    let kv = core
        .store
        .get(&kind.key(namespace, name), None)
        .await
        .map_err(store_error)?
        .ok_or_else(|| ApiStatus::not_found(kind, name))?;
    object::decode(&kv).map_err(ApiStatus::internal)
}

/// What the token is bound to: (pod, secret, node).
type Bound = (Option<ObjectRef>, Option<ObjectRef>, Option<ObjectRef>);

async fn resolve_bound(
    core: &Core,
    namespace: &str,
    sa_name: &str,
    reference: &Value,
) -> Result<Bound, ApiStatus> {
    let field = |f: &str| reference[f].as_str().unwrap_or("").to_string();
    let (api_version, kind, name, uid) = (
        field("apiVersion"),
        field("kind"),
        field("name"),
        field("uid"),
    );
    // Upstream reads the group from apiVersion; "v1" and "" are core.
    let (group, version) = api_version
        .rsplit_once('/')
        .unwrap_or(("", api_version.as_str()));
    let mut bound: Bound = (None, None, None);
    let found = match (group, kind.as_str()) {
        ("", "Pod") => {
            let pod = get(core, "pods", Some(namespace), &name).await?;
            let runs_as = pod["spec"]["serviceAccountName"].as_str().unwrap_or("");
            if runs_as != sa_name {
                return Err(ApiStatus::bad_request(format!(
                    "cannot bind token for serviceaccount \"{sa_name}\" to pod running with different serviceaccount name."
                )));
            }
            if let Some(node) = pod["spec"]["nodeName"].as_str().filter(|n| !n.is_empty()) {
                // A missing node still leaves its name in the claims.
                let node_ref = match get(core, "nodes", None, node).await {
                    Ok(n) => ObjectRef::of(&n),
                    Err(e) if e.code == 404 => ObjectRef {
                        name: node.to_string(),
                        uid: String::new(),
                    },
                    Err(e) => return Err(e),
                };
                bound.2 = Some(node_ref);
            }
            let r = ObjectRef::of(&pod);
            bound.0 = Some(r.clone());
            r
        }
        ("", "Secret") => {
            let r = ObjectRef::of(&get(core, "secrets", Some(namespace), &name).await?);
            bound.1 = Some(r.clone());
            r
        }
        ("", "Node") => {
            let r = ObjectRef::of(&get(core, "nodes", None, &name).await?);
            bound.2 = Some(r.clone());
            r
        }
        _ => {
            return Err(ApiStatus::bad_request(format!(
                "cannot bind token to object of type {group}/{version}, Kind={kind}"
            )));
        }
    };
    if !uid.is_empty() && uid != found.uid {
        let mut err = ApiStatus::new(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {kind} \"{name}\": the UID in the bound object reference ({uid}) does not match the UID in record. The object might have been deleted and then recreated"
            ),
        );
        err.details = Some(json!({"name": name, "kind": kind}));
        return Err(err);
    }
    Ok(bound)
}

pub async fn create(core: &Arc<Core>, ctx: Ctx, body: Bytes) -> Result<Response, ApiStatus> {
    let Some(issuer) = core.token_issuer.get().cloned() else {
        return Err(ApiStatus::path_not_found());
    };
    let namespace = ctx.namespace().unwrap_or("").to_string();
    let name = ctx.name().to_string();
    let req = decode_body(&ctx.headers, &body)?;
    let requested = parse(&req)?;
    crate::api::admission::noderestriction::admit(
        core,
        &ctx,
        crate::api::admission::noderestriction::Operation::Create,
        Some(&req),
        None,
    )?;
    let meta_name = object::meta_str(&req, "name").unwrap_or("");
    if !meta_name.is_empty() && meta_name != name {
        return Err(invalid(
            &name,
            "metadata.name",
            format!("{meta_name:?}"),
            "must match the service account name if specified",
        ));
    }
    let meta_ns = object::meta_str(&req, "namespace").unwrap_or("");
    if !meta_ns.is_empty() && meta_ns != namespace {
        return Err(invalid(
            &name,
            "metadata.namespace",
            format!("{meta_ns:?}"),
            "must match the service account namespace if specified",
        ));
    }
    let sa = get(core, "serviceaccounts", Some(&namespace), &name).await?;

    let audiences = if requested.audiences.is_empty() {
        issuer.audiences().to_vec()
    } else {
        requested.audiences
    };
    let seconds = requested.expiration_seconds;
    if seconds < MIN_EXPIRATION_SECONDS {
        return Err(invalid(
            "",
            "spec.expirationSeconds",
            seconds,
            "may not specify a duration less than 10 minutes",
        ));
    }
    if seconds > MAX_EXPIRATION_SECONDS {
        return Err(invalid(
            "",
            "spec.expirationSeconds",
            seconds,
            "may not specify a duration larger than 2^32 seconds",
        ));
    }
    let (pod, secret, node) = match &requested.bound {
        Some(reference) => resolve_bound(core, &namespace, &name, reference).await?,
        None => (None, None, None),
    };

    let kube_audiences = audiences
        .iter()
        .all(|a| issuer.audiences().iter().any(|b| b == a));
    let (lifetime, warn_after) =
        if pod.is_some() && seconds == WARN_ONLY_EXPIRATION_SECONDS && kube_audiences {
            (EXTENDED_EXPIRATION_SECONDS, Some(seconds))
        } else {
            (seconds, None)
        };
    let spec = TokenSpec {
        namespace: namespace.clone(),
        service_account: ObjectRef::of(&sa),
        pod,
        secret,
        node,
        audiences: audiences.clone(),
        expiration_seconds: lifetime,
        warn_after_seconds: warn_after,
    };
    let now = jiff::Timestamp::now();
    let token = issuer
        .issue(&spec, now.as_second())
        .map_err(|e| ApiStatus::internal(format!("failed to generate token: {e}")))?;
    let expires = now
        .checked_add(jiff::SignedDuration::from_secs(seconds))
        .map_err(ApiStatus::internal)?;
    let stamp = |t: jiff::Timestamp| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string();

    let mut out_spec = json!({"audiences": audiences, "expirationSeconds": seconds});
    if let Some(reference) = requested.bound {
        out_spec["boundObjectRef"] = reference;
    }
    let out = json!({
        "kind": "TokenRequest",
        "apiVersion": API_VERSION,
        "metadata": {"name": name, "namespace": namespace, "creationTimestamp": stamp(now)},
        "spec": out_spec,
        "status": {"token": token, "expirationTimestamp": stamp(expires)},
    });
    Ok(json(StatusCode::CREATED, &out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_type_checked_and_defaulted() {
        let r = parse(&json!({"spec": {}})).expect("empty spec");
        assert!(r.audiences.is_empty());
        assert_eq!(r.expiration_seconds, 3600);
        assert!(r.bound.is_none());
        let r = parse(&json!({"apiVersion": API_VERSION, "kind": "TokenRequest", "spec": {"audiences": ["a"], "expirationSeconds": 700}})).expect("full");
        assert_eq!(r.audiences, ["a"]);
        assert_eq!(r.expiration_seconds, 700);
        for bad in [
            json!({"spec": 1}),
            json!({"spec": {"audiences": "a"}}),
            json!({"spec": {"audiences": [1]}}),
            json!({"spec": {"expirationSeconds": "10m"}}),
            json!({"spec": {"boundObjectRef": []}}),
            json!({"kind": "Pod"}),
            json!({"apiVersion": "v1"}),
        ] {
            let err = parse(&bad)
                .err()
                .unwrap_or_else(|| panic!("{bad} accepted"));
            assert_eq!(err.code, 400, "{bad}");
        }
    }

    #[test]
    fn a_short_expiry_is_invalid_as_upstream_words_it() {
        let err = invalid(
            "",
            "spec.expirationSeconds",
            60,
            "may not specify a duration less than 10 minutes",
        );
        assert_eq!(err.code, 422);
        assert_eq!(
            err.message,
            "TokenRequest.authentication.k8s.io \"\" is invalid: spec.expirationSeconds: Invalid value: 60: may not specify a duration less than 10 minutes"
        );
    }
}
