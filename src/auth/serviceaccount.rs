//! Service-account tokens: issuing them (for `serviceaccounts/token`) and
//! authenticating requests that carry them, as upstream's
//! `pkg/serviceaccount` does.
//!
//! A token is an ES256 JWT with upstream's claims: `iss`, `sub`
//! (`system:serviceaccount:<ns>:<name>`), `aud`, `exp`, `iat`, `nbf`, `jti`
//! and `kubernetes.io` (namespace, the service account's name and uid, and
//! the pod, secret or node it is bound to). A token authenticates while it
//! is within its lifetime (with upstream's one-minute leeway), names one of
//! the API audiences, and everything it names still exists with the same
//! uid. Objects are looked up in the watch cache; only a miss or a uid that
//! differs is checked again with a consistent read, so a valid token costs
//! no store read.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::UserInfo;
use super::jwt::{self, JwtError, SigningKey, VerifyingKey};
use super::token::TokenAuthenticator;

/// The username prefix of service accounts.
pub const USERNAME_PREFIX: &str = "system:serviceaccount:";
/// The group of every service account.
pub const ALL_SERVICE_ACCOUNTS: &str = "system:serviceaccounts";
/// Clock skew tolerated on `exp`, `nbf` and `iat`, and how long a deleted
/// object keeps its tokens valid, as upstream's `jwt.DefaultLeeway`.
pub const LEEWAY_SECONDS: i64 = 60;
/// The extra keys upstream puts on a service account's user info.
pub const EXTRA_POD_NAME: &str = "authentication.kubernetes.io/pod-name";
pub const EXTRA_POD_UID: &str = "authentication.kubernetes.io/pod-uid";
pub const EXTRA_NODE_NAME: &str = "authentication.kubernetes.io/node-name";
pub const EXTRA_NODE_UID: &str = "authentication.kubernetes.io/node-uid";
pub const EXTRA_CREDENTIAL_ID: &str = "authentication.kubernetes.io/credential-id";

/// `system:serviceaccount:<namespace>:<name>`.
pub fn username(namespace: &str, name: &str) -> String {
    format!("{USERNAME_PREFIX}{namespace}:{name}")
}

/// The groups of the service accounts of `namespace`.
pub fn groups(namespace: &str) -> Vec<String> {
    vec![
        ALL_SERVICE_ACCOUNTS.to_string(),
        format!("{ALL_SERVICE_ACCOUNTS}:{namespace}"),
    ]
}

/// The name and uid of an object a token names.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectRef {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub uid: String,
}

impl ObjectRef {
    /// The name and uid of a stored object.
    pub fn of(obj: &Value) -> Self {
        let meta = &obj["metadata"];
        ObjectRef {
            name: meta["name"].as_str().unwrap_or("").to_string(),
            uid: meta["uid"].as_str().unwrap_or("").to_string(),
        }
    }
}

/// The `kubernetes.io` claim.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KubernetesClaims {
    pub namespace: String,
    pub serviceaccount: ObjectRef,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<ObjectRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<ObjectRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<ObjectRef>,
    /// After this time (Unix seconds) the token counts as stale, though it
    /// stays valid until `exp` (upstream's safe rollout of bound tokens).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warnafter: Option<i64>,
}

/// All claims of a service-account token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub sub: String,
    #[serde(deserialize_with = "audience")]
    pub aud: Vec<String>,
    pub exp: i64,
    pub iat: i64,
    pub nbf: i64,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub jti: String,
    #[serde(rename = "kubernetes.io")]
    pub kubernetes: KubernetesClaims,
}

/// `aud` is a string or a list of strings (RFC 7519).
fn audience<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Aud {
        One(String),
        Many(Vec<String>),
    }
    Ok(match Aud::deserialize(d)? {
        Aud::One(a) => vec![a],
        Aud::Many(a) => a,
    })
}

/// What a token is for.
#[derive(Debug, Clone, Default)]
pub struct TokenSpec {
    pub namespace: String,
    pub service_account: ObjectRef,
    pub pod: Option<ObjectRef>,
    pub secret: Option<ObjectRef>,
    pub node: Option<ObjectRef>,
    pub audiences: Vec<String>,
    pub expiration_seconds: i64,
    /// Seconds after which the token counts as stale (`warnafter`).
    pub warn_after_seconds: Option<i64>,
}

/// Signs service-account tokens for this cluster.
#[derive(Debug)]
pub struct TokenIssuer {
    key: SigningKey,
    issuer: String,
    audiences: Vec<String>,
}

/// The issuer URL of a cluster with this DNS domain, as k3s sets it.
pub fn issuer_for(cluster_domain: &str) -> String {
    format!("https://kubernetes.default.svc.{cluster_domain}")
}

impl TokenIssuer {
    /// An issuer signing with `key_pem`; the API audiences default to the
    /// issuer URL, as k3s configures them.
    pub fn new(key_pem: &str, issuer: String) -> Result<Self, JwtError> {
        Ok(TokenIssuer {
            key: SigningKey::from_pem(key_pem)?,
            audiences: vec![issuer.clone()],
            issuer,
        })
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The audiences of tokens meant for this API server.
    pub fn audiences(&self) -> &[String] {
        &self.audiences
    }

    /// The claims of a token for `spec` issued at `now` (Unix seconds).
    pub fn claims(&self, spec: &TokenSpec, now: i64) -> Claims {
        Claims {
            iss: self.issuer.clone(),
            sub: username(&spec.namespace, &spec.service_account.name),
            aud: spec.audiences.clone(),
            exp: now.saturating_add(spec.expiration_seconds),
            iat: now,
            nbf: now,
            jti: uuid::Uuid::new_v4().to_string(),
            kubernetes: KubernetesClaims {
                namespace: spec.namespace.clone(),
                serviceaccount: spec.service_account.clone(),
                pod: spec.pod.clone(),
                secret: spec.secret.clone(),
                node: spec.node.clone(),
                warnafter: spec.warn_after_seconds.map(|w| now.saturating_add(w)),
            },
        }
    }

    /// A signed token for `spec` issued at `now`.
    pub fn issue(&self, spec: &TokenSpec, now: i64) -> Result<String, JwtError> {
        let claims = serde_json::to_value(self.claims(spec, now)).map_err(|_| JwtError::Sign)?;
        self.key.sign(&claims)
    }

    /// The authenticator of the tokens this issuer signs.
    pub fn authenticator(&self, objects: Arc<dyn ObjectLookup>) -> ServiceAccountAuthenticator {
        ServiceAccountAuthenticator {
            key: self.key.verifying_key(),
            issuer: self.issuer.clone(),
            audiences: self.audiences.clone(),
            objects,
        }
    }
}

/// Where the authenticator finds the objects a token names. `resource` is
/// the plural (`serviceaccounts`, `pods`, `secrets`, `nodes`); `namespace`
/// is empty for nodes.
#[async_trait::async_trait]
pub trait ObjectLookup: Send + Sync {
    /// From a cache, which may lag a little behind writes.
    fn cached(&self, resource: &str, namespace: &str, name: &str) -> Option<Arc<Value>>;
    /// A consistent read (`None` when missing or unreadable).
    async fn fresh(&self, resource: &str, namespace: &str, name: &str) -> Option<Value>;
}

/// Authenticates the service-account tokens of one issuer.
pub struct ServiceAccountAuthenticator {
    key: VerifyingKey,
    issuer: String,
    audiences: Vec<String>,
    objects: Arc<dyn ObjectLookup>,
}

/// Why a token of ours was refused (logged, never shown to the client).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejected {
    #[error(transparent)]
    Jwt(#[from] JwtError),
    #[error("malformed claims")]
    Claims,
    #[error("Token has expired.")]
    Expired,
    #[error("token not valid yet")]
    NotYetValid,
    #[error("token audiences {token:?} is invalid for the target audiences {api:?}")]
    Audience {
        token: Vec<String>,
        api: Vec<String>,
    },
    #[error("{kind} {namespace}/{name} not found")]
    Missing {
        kind: &'static str,
        namespace: String,
        name: String,
    },
    #[error("{kind} {namespace}/{name} has been deleted")]
    Deleted {
        kind: &'static str,
        namespace: String,
        name: String,
    },
    #[error("{kind} UID ({actual}) does not match claim ({claimed})")]
    Uid {
        kind: &'static str,
        actual: String,
        claimed: String,
    },
}

impl ServiceAccountAuthenticator {
    /// Whether `token` claims to come from this issuer (checked before the
    /// signature, so other bearer tokens pass on to other authenticators).
    fn is_ours(&self, token: &str) -> bool {
        jwt::peek_claims(token).is_some_and(|c| c["iss"] == self.issuer.as_str())
    }

    /// The user `token` authenticates as at `now` (Unix seconds).
    pub async fn validate(&self, token: &str, now: i64) -> Result<UserInfo, Rejected> {
        let claims = self.key.verify(token)?;
        let claims: Claims = serde_json::from_value(claims).map_err(|_| Rejected::Claims)?;
        if now > claims.exp.saturating_add(LEEWAY_SECONDS) {
            return Err(Rejected::Expired);
        }
        if now < claims.nbf.saturating_sub(LEEWAY_SECONDS)
            || now < claims.iat.saturating_sub(LEEWAY_SECONDS)
        {
            return Err(Rejected::NotYetValid);
        }
        if !claims.aud.iter().any(|a| self.audiences.contains(a)) {
            return Err(Rejected::Audience {
                token: claims.aud,
                api: self.audiences.clone(),
            });
        }
        let k = &claims.kubernetes;
        let ns = k.namespace.as_str();
        if k.serviceaccount.name.is_empty() || claims.sub != username(ns, &k.serviceaccount.name) {
            return Err(Rejected::Claims);
        }
        let deleted_before = now - LEEWAY_SECONDS;
        self.check("serviceaccounts", ns, &k.serviceaccount, deleted_before)
            .await?;
        if let Some(secret) = &k.secret {
            self.check("secrets", ns, secret, deleted_before).await?;
        }
        if let Some(pod) = &k.pod {
            self.check("pods", ns, pod, deleted_before).await?;
        }
        let mut extra = BTreeMap::new();
        match (&k.pod, &k.node) {
            (Some(pod), node) => {
                extra.insert(EXTRA_POD_NAME.to_string(), vec![pod.name.clone()]);
                extra.insert(EXTRA_POD_UID.to_string(), vec![pod.uid.clone()]);
                // The node of a pod-bound token is information only.
                if let Some(node) = node {
                    node_extra(&mut extra, node);
                }
            }
            (None, Some(node)) => {
                self.check("nodes", "", node, deleted_before).await?;
                node_extra(&mut extra, node);
            }
            (None, None) => {}
        }
        if !claims.jti.is_empty() {
            extra.insert(
                EXTRA_CREDENTIAL_ID.to_string(),
                vec![format!("JTI={}", claims.jti)],
            );
        }
        let mut groups = groups(ns);
        groups.push("system:authenticated".to_string());
        Ok(UserInfo {
            username: claims.sub,
            uid: k.serviceaccount.uid.clone(),
            groups,
            extra,
        })
    }

    /// Fails unless the object `claimed` names exists with its uid and was
    /// not deleted before `deleted_before`.
    async fn check(
        &self,
        resource: &'static str,
        namespace: &str,
        claimed: &ObjectRef,
        deleted_before: i64,
    ) -> Result<(), Rejected> {
        let kind = match resource {
            "serviceaccounts" => "ServiceAccount",
            "secrets" => "Secret",
            "pods" => "Pod",
            _ => "Node",
        };
        let uid_of = |obj: &Value| obj["metadata"]["uid"].as_str().unwrap_or("").to_string();
        let cached = self.objects.cached(resource, namespace, &claimed.name);
        let obj = match cached {
            Some(obj) if uid_of(&obj) == claimed.uid => (*obj).clone(),
            // A miss or another uid may be the cache lagging behind a
            // create: ask the store before refusing.
            _ => self
                .objects
                .fresh(resource, namespace, &claimed.name)
                .await
                .ok_or_else(|| Rejected::Missing {
                    kind,
                    namespace: namespace.to_string(),
                    name: claimed.name.clone(),
                })?,
        };
        let deleted = obj["metadata"]["deletionTimestamp"]
            .as_str()
            .and_then(|t| t.parse::<jiff::Timestamp>().ok())
            .is_some_and(|t| t.as_second() < deleted_before);
        if deleted {
            return Err(Rejected::Deleted {
                kind,
                namespace: namespace.to_string(),
                name: claimed.name.clone(),
            });
        }
        let actual = uid_of(&obj);
        if actual != claimed.uid {
            return Err(Rejected::Uid {
                kind,
                actual,
                claimed: claimed.uid.clone(),
            });
        }
        Ok(())
    }
}

fn node_extra(extra: &mut BTreeMap<String, Vec<String>>, node: &ObjectRef) {
    extra.insert(EXTRA_NODE_NAME.to_string(), vec![node.name.clone()]);
    if !node.uid.is_empty() {
        extra.insert(EXTRA_NODE_UID.to_string(), vec![node.uid.clone()]);
    }
}

#[async_trait::async_trait]
impl TokenAuthenticator for ServiceAccountAuthenticator {
    async fn authenticate(&self, token: &str) -> Option<UserInfo> {
        if !self.is_ours(token) {
            return None;
        }
        match self
            .validate(token, jiff::Timestamp::now().as_second())
            .await
        {
            Ok(user) => Some(user),
            Err(e) => {
                tracing::debug!(reason = %e, "service-account token rejected");
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use serde_json::json;

    use super::*;

    /// Objects by (resource, namespace, name); `stale` is what the cache
    /// still shows.
    #[derive(Default)]
    struct Objects {
        current: Mutex<BTreeMap<(String, String, String), Value>>,
        stale: Mutex<BTreeMap<(String, String, String), Value>>,
    }

    impl Objects {
        fn put(&self, resource: &str, ns: &str, name: &str, uid: &str) {
            let obj = json!({"metadata": {"name": name, "namespace": ns, "uid": uid}});
            let key = (resource.to_string(), ns.to_string(), name.to_string());
            self.current
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(key, obj);
        }

        fn remove(&self, resource: &str, ns: &str, name: &str) {
            let key = (resource.to_string(), ns.to_string(), name.to_string());
            self.current
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&key);
        }
    }

    #[async_trait::async_trait]
    impl ObjectLookup for Objects {
        fn cached(&self, resource: &str, namespace: &str, name: &str) -> Option<Arc<Value>> {
            let key = (
                resource.to_string(),
                namespace.to_string(),
                name.to_string(),
            );
            let stale = self.stale.lock().unwrap_or_else(|e| e.into_inner());
            stale.get(&key).cloned().map(Arc::new)
        }

        async fn fresh(&self, resource: &str, namespace: &str, name: &str) -> Option<Value> {
            let key = (
                resource.to_string(),
                namespace.to_string(),
                name.to_string(),
            );
            let current = self.current.lock().unwrap_or_else(|e| e.into_inner());
            current.get(&key).cloned()
        }
    }

    const NOW: i64 = 1_800_000_000;

    fn setup() -> (TokenIssuer, Arc<Objects>, ServiceAccountAuthenticator) {
        let pem = rcgen::KeyPair::generate().expect("key").serialize_pem();
        let issuer = TokenIssuer::new(&pem, issuer_for("cluster.local")).expect("issuer");
        let objects = Arc::new(Objects::default());
        objects.put("serviceaccounts", "ns", "robot", "sa-uid");
        let auth = issuer.authenticator(objects.clone());
        (issuer, objects, auth)
    }

    fn spec(issuer: &TokenIssuer, seconds: i64) -> TokenSpec {
        TokenSpec {
            namespace: "ns".into(),
            service_account: ObjectRef {
                name: "robot".into(),
                uid: "sa-uid".into(),
            },
            audiences: issuer.audiences().to_vec(),
            expiration_seconds: seconds,
            ..TokenSpec::default()
        }
    }

    #[test]
    fn claims_follow_upstream() {
        let (issuer, _, _) = setup();
        let mut s = spec(&issuer, 600);
        s.pod = Some(ObjectRef {
            name: "p".into(),
            uid: "pod-uid".into(),
        });
        let claims = serde_json::to_value(issuer.claims(&s, NOW)).expect("json");
        assert_eq!(
            claims["iss"],
            "https://kubernetes.default.svc.cluster.local"
        );
        assert_eq!(claims["sub"], "system:serviceaccount:ns:robot");
        assert_eq!(
            claims["aud"],
            json!(["https://kubernetes.default.svc.cluster.local"])
        );
        assert_eq!(claims["iat"], NOW);
        assert_eq!(claims["nbf"], NOW);
        assert_eq!(claims["exp"], NOW + 600);
        assert_eq!(claims["jti"].as_str().map(str::len), Some(36));
        assert_eq!(
            claims["kubernetes.io"],
            json!({"namespace": "ns", "serviceaccount": {"name": "robot", "uid": "sa-uid"}, "pod": {"name": "p", "uid": "pod-uid"}})
        );
    }

    #[tokio::test]
    async fn a_valid_token_is_the_service_account() {
        let (issuer, _, auth) = setup();
        let token = issuer.issue(&spec(&issuer, 600), NOW).expect("issue");
        let user = auth.validate(&token, NOW + 1).await.expect("valid");
        assert_eq!(user.username, "system:serviceaccount:ns:robot");
        assert_eq!(user.uid, "sa-uid");
        assert_eq!(
            user.groups,
            [
                "system:serviceaccounts",
                "system:serviceaccounts:ns",
                "system:authenticated"
            ]
        );
        let jti = user.extra[EXTRA_CREDENTIAL_ID][0].clone();
        assert!(jti.starts_with("JTI=") && jti.len() == 40, "{jti}");
        assert!(!user.extra.contains_key(EXTRA_POD_NAME));
    }

    #[tokio::test]
    async fn tokens_expire_and_are_not_valid_before_their_time() {
        let (issuer, _, auth) = setup();
        let token = issuer.issue(&spec(&issuer, 10), NOW).expect("issue");
        assert!(auth.validate(&token, NOW + 10).await.is_ok());
        // Upstream tolerates a minute of clock skew past exp.
        assert!(
            auth.validate(&token, NOW + 10 + LEEWAY_SECONDS)
                .await
                .is_ok()
        );
        assert_eq!(
            auth.validate(&token, NOW + 11 + LEEWAY_SECONDS).await,
            Err(Rejected::Expired)
        );
        assert_eq!(
            auth.validate(&token, NOW - LEEWAY_SECONDS - 1).await,
            Err(Rejected::NotYetValid)
        );
    }

    #[tokio::test]
    async fn other_audiences_are_refused() {
        let (issuer, _, auth) = setup();
        let mut s = spec(&issuer, 600);
        s.audiences = vec!["vault".into()];
        let token = issuer.issue(&s, NOW).expect("issue");
        assert!(matches!(
            auth.validate(&token, NOW).await,
            Err(Rejected::Audience { .. })
        ));
        s.audiences = vec!["vault".into(), issuer.issuer().to_string()];
        let token = issuer.issue(&s, NOW).expect("issue");
        assert!(auth.validate(&token, NOW).await.is_ok());
    }

    #[tokio::test]
    async fn a_deleted_or_recreated_service_account_ends_its_tokens() {
        let (issuer, objects, auth) = setup();
        let token = issuer.issue(&spec(&issuer, 600), NOW).expect("issue");
        objects.put("serviceaccounts", "ns", "robot", "new-uid");
        assert!(matches!(
            auth.validate(&token, NOW).await,
            Err(Rejected::Uid { .. })
        ));
        objects.remove("serviceaccounts", "ns", "robot");
        assert!(matches!(
            auth.validate(&token, NOW).await,
            Err(Rejected::Missing { .. })
        ));
    }

    #[tokio::test]
    async fn the_cache_answers_valid_tokens_and_the_store_the_rest() {
        let (issuer, objects, auth) = setup();
        let token = issuer.issue(&spec(&issuer, 600), NOW).expect("issue");
        // The cache still has the account, the store no longer does: a
        // cache hit with the right uid is trusted (upstream's informer lag).
        let key = ("serviceaccounts".into(), "ns".into(), "robot".into());
        let obj = json!({"metadata": {"name": "robot", "uid": "sa-uid"}});
        objects
            .stale
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key, obj);
        objects.remove("serviceaccounts", "ns", "robot");
        assert!(auth.validate(&token, NOW).await.is_ok());
    }

    #[tokio::test]
    async fn a_bound_object_must_still_exist() {
        let (issuer, objects, auth) = setup();
        objects.put("pods", "ns", "p", "pod-uid");
        let mut s = spec(&issuer, 600);
        s.pod = Some(ObjectRef {
            name: "p".into(),
            uid: "pod-uid".into(),
        });
        s.node = Some(ObjectRef {
            name: "n1".into(),
            uid: "node-uid".into(),
        });
        let token = issuer.issue(&s, NOW).expect("issue");
        let user = auth.validate(&token, NOW).await.expect("valid");
        assert_eq!(user.extra[EXTRA_POD_NAME], ["p"]);
        assert_eq!(user.extra[EXTRA_POD_UID], ["pod-uid"]);
        assert_eq!(user.extra[EXTRA_NODE_NAME], ["n1"]);
        assert_eq!(user.extra[EXTRA_NODE_UID], ["node-uid"]);
        objects.remove("pods", "ns", "p");
        assert!(matches!(
            auth.validate(&token, NOW).await,
            Err(Rejected::Missing { kind: "Pod", .. })
        ));

        // A node-bound token checks the node.
        let mut s = spec(&issuer, 600);
        s.node = Some(ObjectRef {
            name: "n1".into(),
            uid: "node-uid".into(),
        });
        let token = issuer.issue(&s, NOW).expect("issue");
        assert!(auth.validate(&token, NOW).await.is_err());
        objects.put("nodes", "", "n1", "node-uid");
        assert!(auth.validate(&token, NOW).await.is_ok());
    }

    #[tokio::test]
    async fn tokens_of_other_issuers_are_left_to_other_authenticators() {
        let (_, objects, auth) = setup();
        let other_pem = rcgen::KeyPair::generate().expect("key").serialize_pem();
        let other = TokenIssuer::new(&other_pem, "https://elsewhere".into()).expect("issuer");
        let token = other.issue(&spec(&other, 600), NOW).expect("issue");
        assert!(!auth.is_ours(&token));
        assert!(auth.authenticate(&token).await.is_none());
        assert!(auth.authenticate("not-a-jwt").await.is_none());
        drop(objects);
    }
}
