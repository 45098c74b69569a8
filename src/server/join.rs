//! The supervisor endpoint a joining node gets its credentials from:
//! `POST /v1-skiff/node-credentials` (k3s serves the same from its
//! `/v1-k3s/...` paths).
//!
//! The caller authenticates with a join token (the server token, or a
//! bootstrap token), which puts it in `system:bootstrappers`. It names its
//! node and proves it is the machine that first joined under that name with
//! its node password: the first join stores a salted hash of the password in
//! the Secret `kube-system/<node>.node-password.skiff`, and a later join
//! with another password is refused, so another machine cannot take over a
//! node name. The answer carries the node's client certificate
//! (`system:node:<name>` in `system:nodes`), its kubelet serving
//! certificate, the CA and the cluster settings the node needs.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use http::Request;
use ipnet::IpNet;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, PostParams};
use serde::{Deserialize, Serialize};

use crate::api::status::ApiStatus;
use crate::auth::UserInfo;
use crate::auth::token::BOOTSTRAPPERS;
use crate::pki::{ca, certs, kubelet};

/// The path of the endpoint.
pub const NODE_CREDENTIALS_PATH: &str = "/v1-skiff/node-credentials";
/// The type of node-identity Secrets.
pub const NODE_PASSWORD_TYPE: &str = "skiff.io/node-password";
/// Where node-identity Secrets live.
const NODE_PASSWORD_NAMESPACE: &str = "kube-system";
/// The largest request body accepted.
const MAX_BODY: usize = 64 * 1024;
/// PBKDF2 rounds for node password hashes.
const HASH_ROUNDS: u32 = 10_000;

/// What a joining node asks for.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CredentialsRequest {
    pub node_name: String,
    pub node_password: String,
    #[serde(default, rename = "nodeIPs")]
    pub node_ips: Vec<IpAddr>,
    #[serde(default)]
    pub hostname: String,
}

/// What the server answers: the node's certificates (PEM) and the cluster
/// settings it runs with.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeCredentials {
    pub ca_cert: String,
    pub client_cert: String,
    pub client_key: String,
    pub serving_cert: String,
    pub serving_key: String,
    pub config: ClusterConfig,
}

/// The cluster settings a node needs from its server.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterConfig {
    #[serde(rename = "clusterCIDR", with = "as_text")]
    pub cluster_cidr: IpNet,
    #[serde(rename = "serviceCIDR", with = "as_text")]
    pub service_cidr: IpNet,
    #[serde(rename = "clusterDNS")]
    pub cluster_dns: IpAddr,
    pub cluster_domain: String,
    /// The API server's URL as the server advertises it.
    pub server: String,
    /// The overlay backend every node uses (`--flannel-backend` on the
    /// server, as k3s): `vxlan`, `host-gw` or `none`.
    #[serde(default = "default_backend")]
    pub flannel_backend: String,
}

fn default_backend() -> String {
    crate::net::overlay::Backend::Vxlan.as_str().to_string()
}

/// A value (de)serialized through its text form (ipnet has no serde here).
mod as_text {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<T: std::fmt::Display, S: Serializer>(v: &T, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(v)
    }

    pub fn deserialize<'de, T, D>(d: D) -> Result<T, D::Error>
    where
        T: std::str::FromStr,
        T::Err: std::fmt::Display,
        D: Deserializer<'de>,
    {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// Issues node credentials; shared by every request.
#[derive(Clone)]
pub struct Supervisor {
    inner: Arc<Inner>,
}

struct Inner {
    ca: ca::Ca,
    config: ClusterConfig,
    secrets: Api<Secret>,
}

impl Supervisor {
    /// `client` writes the node-identity Secrets.
    pub fn new(ca: ca::Ca, config: ClusterConfig, client: kube::Client) -> Self {
        Supervisor {
            inner: Arc::new(Inner {
                ca,
                config,
                secrets: Api::namespaced(client, NODE_PASSWORD_NAMESPACE),
            }),
        }
    }

    /// Serves `POST /v1-skiff/node-credentials` for the authenticated `user`.
    pub async fn handle(&self, req: Request<Body>, user: &UserInfo) -> Response {
        match self.credentials(req, user).await {
            Ok(creds) => crate::api::response::json(
                http::StatusCode::OK,
                &serde_json::to_value(&creds).unwrap_or_default(),
            ),
            Err(status) => status.into_response(),
        }
    }

    async fn credentials(
        &self,
        req: Request<Body>,
        user: &UserInfo,
    ) -> Result<NodeCredentials, ApiStatus> {
        if req.method() != http::Method::POST {
            return Err(ApiStatus::method_not_allowed(
                req.method(),
                NODE_CREDENTIALS_PATH,
            ));
        }
        if !user.groups.iter().any(|g| g == BOOTSTRAPPERS) {
            return Err(ApiStatus::new(
                403,
                "Forbidden",
                format!(
                    "user \"{}\" cannot get node credentials: only join tokens (group {BOOTSTRAPPERS}) may",
                    user.username
                ),
            ));
        }
        let body = axum::body::to_bytes(req.into_body(), MAX_BODY)
            .await
            .map_err(|_| ApiStatus::too_large())?;
        let ask = parse_request(&body)?;
        self.check_password(&ask.node_name, &ask.node_password)
            .await?;
        self.issue(&ask).map_err(ApiStatus::internal)
    }

    /// Accepts the first password given for a node and, afterwards, only it.
    async fn check_password(&self, node: &str, password: &str) -> Result<(), ApiStatus> {
        let name = secret_name(node);
        let secrets = &self.inner.secrets;
        for _ in 0..3 {
            match secrets.get_opt(&name).await {
                Ok(Some(secret)) => {
                    let stored = secret
                        .data
                        .as_ref()
                        .and_then(|d| d.get("hash"))
                        .map(|h| String::from_utf8_lossy(&h.0).into_owned())
                        .unwrap_or_default();
                    return if verify_password(&stored, password) {
                        Ok(())
                    } else {
                        tracing::warn!(node, "refused a join: the node password does not match");
                        Err(password_rejected(node))
                    };
                }
                Ok(None) => {
                    let secret = Secret {
                        metadata: kube::api::ObjectMeta {
                            name: Some(name.clone()),
                            namespace: Some(NODE_PASSWORD_NAMESPACE.to_string()),
                            ..Default::default()
                        },
                        type_: Some(NODE_PASSWORD_TYPE.to_string()),
                        data: Some(BTreeMap::from([(
                            "hash".to_string(),
                            ByteString(hash_password(password).into_bytes()),
                        )])),
                        ..Default::default()
                    };
                    match secrets.create(&PostParams::default(), &secret).await {
                        Ok(_) => {
                            tracing::info!(node, "stored the node password of a new node");
                            return Ok(());
                        }
                        // Another join of this name raced us: check against
                        // what it stored.
                        Err(kube::Error::Api(e)) if e.code == 409 => continue,
                        Err(e) => return Err(ApiStatus::internal(e)),
                    }
                }
                Err(e) => return Err(ApiStatus::internal(e)),
            }
        }
        Err(ApiStatus::internal(
            "the node password secret keeps changing",
        ))
    }

    fn issue(&self, ask: &CredentialsRequest) -> Result<NodeCredentials, crate::pki::PkiError> {
        let ca = &self.inner.ca;
        let user = format!("system:node:{}", ask.node_name);
        let (client_cert, client_key) = ca.issue(&ca::LeafSpec {
            common_name: &user,
            organizations: &["system:nodes"],
            sans: &[],
            usage: ca::Usage::Client,
            days: certs::LEAF_DAYS,
        })?;
        let hostname = if ask.hostname.is_empty() {
            ask.node_name.as_str()
        } else {
            ask.hostname.as_str()
        };
        let sans = kubelet::serving_sans(&ask.node_name, hostname, &ask.node_ips);
        let (serving_cert, serving_key) = ca.issue(&ca::LeafSpec {
            common_name: &ask.node_name,
            organizations: &[],
            sans: &sans,
            usage: ca::Usage::Server,
            days: certs::LEAF_DAYS,
        })?;
        tracing::info!(node = %ask.node_name, ips = ?ask.node_ips, "issued node credentials");
        Ok(NodeCredentials {
            ca_cert: ca.cert_pem.clone(),
            client_cert,
            client_key,
            serving_cert,
            serving_key,
            config: self.inner.config.clone(),
        })
    }
}

/// The name of the node-identity Secret of `node`.
pub fn secret_name(node: &str) -> String {
    format!("{node}.node-password.skiff")
}

fn password_rejected(node: &str) -> ApiStatus {
    ApiStatus::new(
        403,
        "Forbidden",
        format!(
            "node password rejected: node {node:?} already joined from another machine (duplicate hostname, or the agent's node-password file changed); give this machine a unique --node-name, or delete the secret kube-system/{} to let a new machine take the name",
            secret_name(node)
        ),
    )
}

/// Parses and checks a request body; a bad one is a 400.
fn parse_request(body: &[u8]) -> Result<CredentialsRequest, ApiStatus> {
    let ask: CredentialsRequest = serde_json::from_slice(body).map_err(|e| {
        ApiStatus::bad_request(format!(
            "the body must be JSON such as {{\"nodeName\": \"n1\", \"nodePassword\": \"...\", \"nodeIPs\": [\"10.0.0.5\"]}}: {e}"
        ))
    })?;
    if !is_dns_subdomain(&ask.node_name) {
        return Err(ApiStatus::bad_request(format!(
            "nodeName {:?} is not a valid node name: lower-case letters, digits, '-' and '.', at most 253 characters, starting and ending with a letter or digit",
            ask.node_name
        )));
    }
    if ask.node_password.trim().is_empty() {
        return Err(ApiStatus::bad_request("nodePassword must not be empty"));
    }
    if !ask.hostname.is_empty() && !is_dns_subdomain(&ask.hostname.to_ascii_lowercase()) {
        return Err(ApiStatus::bad_request(format!(
            "hostname {:?} is not a valid host name",
            ask.hostname
        )));
    }
    Ok(ask)
}

fn is_dns_subdomain(name: &str) -> bool {
    let edge_ok = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    !name.is_empty()
        && name.len() <= 253
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
        && edge_ok(name.chars().next())
        && edge_ok(name.chars().last())
}

/// `pbkdf2-sha256$<rounds>$<salt hex>$<hash hex>`.
fn hash_password(password: &str) -> String {
    let salt: [u8; 16] = rand::random();
    let mut out = [0u8; 32];
    let rounds = NonZeroU32::new(HASH_ROUNDS).unwrap_or(NonZeroU32::MIN);
    ring::pbkdf2::derive(
        ring::pbkdf2::PBKDF2_HMAC_SHA256,
        rounds,
        &salt,
        password.as_bytes(),
        &mut out,
    );
    format!(
        "pbkdf2-sha256${HASH_ROUNDS}${}${}",
        hex::encode(salt),
        hex::encode(out)
    )
}

/// Whether `password` matches a [`hash_password`] string (in constant time).
fn verify_password(stored: &str, password: &str) -> bool {
    let mut parts = stored.split('$');
    let (Some("pbkdf2-sha256"), Some(rounds), Some(salt), Some(hash), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return false;
    };
    let (Some(rounds), Ok(salt), Ok(hash)) = (
        rounds.parse::<u32>().ok().and_then(NonZeroU32::new),
        hex::decode(salt),
        hex::decode(hash),
    ) else {
        return false;
    };
    ring::pbkdf2::verify(
        ring::pbkdf2::PBKDF2_HMAC_SHA256,
        rounds,
        &salt,
        password.as_bytes(),
        &hash,
    )
    .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_hashes_are_salted_and_verify() {
        let a = hash_password("s3cret");
        let b = hash_password("s3cret");
        assert_ne!(a, b, "a fresh salt each time");
        assert!(verify_password(&a, "s3cret"));
        assert!(verify_password(&b, "s3cret"));
        assert!(!verify_password(&a, "other"));
        assert!(!verify_password("garbage", "s3cret"));
        assert!(!verify_password("pbkdf2-sha256$0$00$00", "s3cret"));
    }

    #[test]
    fn requests_are_checked() {
        let good =
            br#"{"nodeName":"n1","nodePassword":"p","nodeIPs":["10.0.0.5"],"hostname":"N1"}"#;
        let ask = parse_request(good).expect("valid");
        assert_eq!(ask.node_name, "n1");
        assert_eq!(
            ask.node_ips,
            vec!["10.0.0.5".parse::<IpAddr>().expect("ip")]
        );
        for bad in [
            &b"not json"[..],
            br#"{"nodeName":"N_1","nodePassword":"p"}"#,
            br#"{"nodeName":"n1","nodePassword":" "}"#,
            br#"{"nodeName":"n1","nodePassword":"p","nodeIPs":["x"]}"#,
            br#"{"nodePassword":"p"}"#,
        ] {
            let err = parse_request(bad).expect_err("invalid");
            assert_eq!(err.code, 400, "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn the_answer_round_trips_as_json() {
        let config = ClusterConfig {
            cluster_cidr: "10.42.0.0/16".parse().expect("cidr"),
            service_cidr: "10.43.0.0/16".parse().expect("cidr"),
            cluster_dns: "10.43.0.10".parse().expect("ip"),
            cluster_domain: "cluster.local".into(),
            flannel_backend: "host-gw".into(),
            server: "https://10.0.0.1:6443".into(),
        };
        let json = serde_json::to_value(&config).expect("json");
        assert_eq!(json["clusterCIDR"], "10.42.0.0/16");
        assert_eq!(json["clusterDNS"], "10.43.0.10");
        let back: ClusterConfig = serde_json::from_value(json).expect("parse");
        assert_eq!(back, config);
    }
}
