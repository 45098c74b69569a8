//! Bootstrap tokens, as upstream's `bootstrap.kubernetes.io/token` Secrets
//! and its bootstrap-token authenticator.
//!
//! A token is `<token-id>.<token-secret>` (6 and 16 characters of
//! `[a-z0-9]`), stored in the Secret `kube-system/bootstrap-token-<id>`.
//! Joining nodes present it in k3s's full form
//! `K10<ca-hash>::<id>.<secret>`; both forms authenticate. A valid token
//! authenticates as `system:bootstrap:<id>` in `system:bootstrappers` (and
//! its `auth-extra-groups`), while its Secret exists, is not being deleted,
//! has `usage-bootstrap-authentication: "true"` and has not expired.
//! Secrets are read from the API server's watch cache (a miss is read
//! again from the store, so a token works right after it is created).

use std::collections::BTreeMap;
use std::sync::Arc;

use base64::Engine;
use jiff::Timestamp;
use serde_json::Value;

use super::UserInfo;
use super::serviceaccount::ObjectLookup;
use super::token::{BOOTSTRAPPERS, TokenAuthenticator};

/// The namespace of bootstrap token Secrets.
pub const NAMESPACE: &str = "kube-system";
/// The Secret type of bootstrap tokens.
pub const SECRET_TYPE: &str = "bootstrap.kubernetes.io/token";
/// Secret names are this prefix and the token id.
pub const SECRET_PREFIX: &str = "bootstrap-token-";
/// The username prefix of bootstrap tokens.
pub const USER_PREFIX: &str = "system:bootstrap:";
/// The Secret's data keys.
pub const KEY_ID: &str = "token-id";
pub const KEY_SECRET: &str = "token-secret";
pub const KEY_EXPIRATION: &str = "expiration";
pub const KEY_DESCRIPTION: &str = "description";
pub const KEY_EXTRA_GROUPS: &str = "auth-extra-groups";
pub const USAGE_AUTHENTICATION: &str = "usage-bootstrap-authentication";
pub const USAGE_SIGNING: &str = "usage-bootstrap-signing";
/// The usages `kubeadm token list` shows, in its order.
pub const USAGES: &[&str] = &["authentication", "signing"];

const ID_LEN: usize = 6;
const SECRET_LEN: usize = 16;

/// A token's two halves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootstrapToken {
    pub id: String,
    pub secret: String,
}

impl BootstrapToken {
    /// A new random token.
    pub fn generate() -> Self {
        BootstrapToken {
            id: random_chars(ID_LEN),
            secret: random_chars(SECRET_LEN),
        }
    }

    /// `<id>.<secret>`, or the full join token `K10<ca-hash>::<id>.<secret>`
    /// (the hash as [`crate::pki::token::ca_hash`] computes it).
    pub fn parse(token: &str) -> Option<Self> {
        let bare = match token.strip_prefix("K10") {
            Some(rest) => {
                let (hash, credentials) = rest.split_once("::")?;
                if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return None;
                }
                credentials
            }
            None => token,
        };
        let (id, secret) = bare.split_once('.')?;
        (is_id(id) && valid_chars(secret, SECRET_LEN)).then(|| BootstrapToken {
            id: id.to_string(),
            secret: secret.to_string(),
        })
    }

    /// `<id>.<secret>`.
    pub fn bare(&self) -> String {
        format!("{}.{}", self.id, self.secret)
    }

    /// The join token a node is given: `K10<ca-hash>::<id>.<secret>`.
    pub fn full(&self, ca_hash: &str) -> String {
        format!("K10{ca_hash}::{}", self.bare())
    }

    /// The name of the token's Secret.
    pub fn secret_name(&self) -> String {
        format!("{SECRET_PREFIX}{}", self.id)
    }
}

/// Whether `id` is a token id (6 characters of `[a-z0-9]`).
pub fn is_id(id: &str) -> bool {
    valid_chars(id, ID_LEN)
}

fn valid_chars(s: &str, len: usize) -> bool {
    s.len() == len
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

/// `n` characters of `[a-z0-9]`, uniformly (bytes above the last whole
/// multiple of 36 are drawn again).
fn random_chars(n: usize) -> String {
    const ALPHABET: &[u8; 36] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut out = String::with_capacity(n);
    while out.len() < n {
        for b in rand::random::<[u8; 32]>() {
            if b < 252 && out.len() < n {
                out.push(ALPHABET[usize::from(b % 36)] as char);
            }
        }
    }
    out
}

/// Whether `group` may be an extra group of a bootstrap token, as
/// upstream's `^system:bootstrappers:[a-z0-9:-]{0,255}[a-z0-9]$`.
pub fn valid_extra_group(group: &str) -> bool {
    let Some(rest) = group.strip_prefix("system:bootstrappers:") else {
        return false;
    };
    !rest.is_empty()
        && rest.len() <= 256
        && rest
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b':' || b == b'-')
        && rest
            .bytes()
            .last()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

/// The decoded string data of a Secret (`data` base64, `stringData` as
/// given); undecodable values are left out.
pub fn secret_data(secret: &Value) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    if let Some(data) = secret["data"].as_object() {
        for (k, v) in data {
            let decoded = v
                .as_str()
                .and_then(|s| base64::engine::general_purpose::STANDARD.decode(s).ok())
                .and_then(|b| String::from_utf8(b).ok());
            if let Some(s) = decoded {
                out.insert(k.clone(), s);
            }
        }
    }
    if let Some(data) = secret["stringData"].as_object() {
        for (k, v) in data {
            if let Some(s) = v.as_str() {
                out.insert(k.clone(), s.to_string());
            }
        }
    }
    out
}

/// The expiration of a token Secret's data: `Ok(None)` when it has none,
/// `Err` when it cannot be read (such a token counts as expired, as
/// upstream treats it).
pub fn expiration(data: &BTreeMap<String, String>) -> Result<Option<Timestamp>, String> {
    match data.get(KEY_EXPIRATION) {
        None => Ok(None),
        Some(s) if s.is_empty() => Ok(None),
        Some(s) => s
            .parse::<Timestamp>()
            .map(Some)
            .map_err(|e| format!("expiration {s:?} is not RFC 3339: {e}")),
    }
}

/// Whether a token Secret's data says it has expired at `now`.
pub fn is_expired(data: &BTreeMap<String, String>, now: Timestamp) -> bool {
    match expiration(data) {
        Ok(Some(at)) => at <= now,
        Ok(None) => false,
        Err(_) => true,
    }
}

/// Why a bootstrap token was refused (logged, never shown to clients).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejected {
    #[error("no secret {0}")]
    NoSecret(String),
    #[error("secret {0} is not of type {SECRET_TYPE}")]
    WrongType(String),
    #[error("secret {0} is being deleted")]
    Deleting(String),
    #[error("the token does not match secret {0}")]
    Mismatch(String),
    #[error("the token of secret {0} has expired")]
    Expired(String),
    #[error("secret {0} does not allow usage-bootstrap-authentication")]
    NotForAuthentication(String),
    #[error("secret {0} has an invalid extra group {1:?}")]
    BadGroup(String, String),
}

/// Checks `token` against its Secret at `now`: the user it authenticates
/// as, or why not.
pub fn check(
    token: &BootstrapToken,
    secret: Option<&Value>,
    now: Timestamp,
) -> Result<UserInfo, Rejected> {
    let name = token.secret_name();
    let secret = secret.ok_or_else(|| Rejected::NoSecret(name.clone()))?;
    if secret["type"].as_str() != Some(SECRET_TYPE) {
        return Err(Rejected::WrongType(name));
    }
    if secret["metadata"]["deletionTimestamp"].is_string() {
        return Err(Rejected::Deleting(name));
    }
    let data = secret_data(secret);
    let stored_id = data.get(KEY_ID).map(String::as_str).unwrap_or_default();
    let stored_secret = data.get(KEY_SECRET).map(String::as_str).unwrap_or_default();
    let id_ok = constant_time_eq(stored_id.as_bytes(), token.id.as_bytes());
    let secret_ok = constant_time_eq(stored_secret.as_bytes(), token.secret.as_bytes());
    if !(id_ok & secret_ok) {
        return Err(Rejected::Mismatch(name));
    }
    if is_expired(&data, now) {
        return Err(Rejected::Expired(name));
    }
    if data.get(USAGE_AUTHENTICATION).map(String::as_str) != Some("true") {
        return Err(Rejected::NotForAuthentication(name));
    }
    let mut groups = vec![BOOTSTRAPPERS.to_string()];
    for group in data
        .get(KEY_EXTRA_GROUPS)
        .map(String::as_str)
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|g| !g.is_empty())
    {
        if !valid_extra_group(group) {
            return Err(Rejected::BadGroup(name, group.to_string()));
        }
        if !groups.iter().any(|g| g == group) {
            groups.push(group.to_string());
        }
    }
    groups.push("system:authenticated".to_string());
    Ok(UserInfo {
        username: format!("{USER_PREFIX}{}", token.id),
        uid: String::new(),
        groups,
        extra: BTreeMap::new(),
    })
}

/// Equality in time independent of where the inputs differ.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The bootstrap-token authenticator.
pub struct BootstrapTokenAuthenticator {
    objects: Arc<dyn ObjectLookup>,
}

impl BootstrapTokenAuthenticator {
    pub fn new(objects: Arc<dyn ObjectLookup>) -> Self {
        BootstrapTokenAuthenticator { objects }
    }
}

#[async_trait::async_trait]
impl TokenAuthenticator for BootstrapTokenAuthenticator {
    async fn authenticate(&self, presented: &str) -> Option<UserInfo> {
        let token = BootstrapToken::parse(presented)?;
        let name = token.secret_name();
        let now = Timestamp::now();
        let cached = self.objects.cached("secrets", NAMESPACE, &name);
        let outcome = match check(&token, cached.as_deref(), now) {
            Ok(user) => Ok(user),
            // The cache may lag a token created a moment ago (only a miss
            // costs a store read, so wrong secrets cannot load the store).
            Err(Rejected::NoSecret(_)) => {
                let fresh = self.objects.fresh("secrets", NAMESPACE, &name).await;
                check(&token, fresh.as_ref(), now)
            }
            Err(e) => Err(e),
        };
        match outcome {
            Ok(user) => Some(user),
            Err(e) => {
                tracing::debug!(token_id = %token.id, reason = %e, "bootstrap token rejected");
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn b64(s: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    fn secret(expiration: Option<&str>, usage: &str, groups: &str) -> Value {
        let mut data = json!({
            KEY_ID: b64("abcdef"),
            KEY_SECRET: b64("0123456789abcdef"),
            USAGE_AUTHENTICATION: b64(usage),
            KEY_EXTRA_GROUPS: b64(groups),
        });
        if let Some(e) = expiration {
            data[KEY_EXPIRATION] = json!(b64(e));
        }
        json!({
            "metadata": {"name": "bootstrap-token-abcdef", "namespace": "kube-system"},
            "type": SECRET_TYPE,
            "data": data,
        })
    }

    fn now() -> Timestamp {
        "2026-06-01T00:00:00Z".parse().expect("timestamp")
    }

    #[test]
    fn bare_and_full_forms_parse() {
        let bare = BootstrapToken::parse("abcdef.0123456789abcdef").expect("bare");
        assert_eq!(bare.id, "abcdef");
        assert_eq!(bare.secret, "0123456789abcdef");
        let full = bare.full(&"a".repeat(64));
        assert_eq!(BootstrapToken::parse(&full), Some(bare.clone()));
        assert_eq!(bare.secret_name(), "bootstrap-token-abcdef");
        for bad in [
            "abcdef.0123456789abcde",
            "ABCDEF.0123456789abcdef",
            "abcdef0123456789abcdef",
            "abcde.0123456789abcdefg",
            "K10abc::abcdef.0123456789abcdef",
            "K10aaaa::server:secret",
            "",
        ] {
            assert_eq!(BootstrapToken::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn generated_tokens_are_well_formed_and_differ() {
        let a = BootstrapToken::generate();
        let b = BootstrapToken::generate();
        assert_eq!(BootstrapToken::parse(&a.bare()), Some(a.clone()));
        assert_ne!(a, b);
    }

    #[test]
    fn a_valid_token_is_a_bootstrapper_with_its_extra_groups() {
        let token = BootstrapToken::parse("abcdef.0123456789abcdef").expect("token");
        let s = secret(
            Some("2026-06-02T00:00:00Z"),
            "true",
            "system:bootstrappers:worker,system:bootstrappers:edge-1",
        );
        let user = check(&token, Some(&s), now()).expect("valid");
        assert_eq!(user.username, "system:bootstrap:abcdef");
        assert_eq!(
            user.groups,
            [
                "system:bootstrappers",
                "system:bootstrappers:worker",
                "system:bootstrappers:edge-1",
                "system:authenticated"
            ]
        );
        // No expiration: valid forever.
        assert!(check(&token, Some(&secret(None, "true", "")), now()).is_ok());
    }

    #[test]
    fn expired_unusable_and_mismatched_tokens_are_refused() {
        let token = BootstrapToken::parse("abcdef.0123456789abcdef").expect("token");
        let expired = secret(Some("2026-05-31T23:59:59Z"), "true", "");
        assert!(matches!(
            check(&token, Some(&expired), now()),
            Err(Rejected::Expired(_))
        ));
        let garbled = secret(Some("tomorrow"), "true", "");
        assert!(matches!(
            check(&token, Some(&garbled), now()),
            Err(Rejected::Expired(_))
        ));
        let signing_only = secret(None, "false", "");
        assert!(matches!(
            check(&token, Some(&signing_only), now()),
            Err(Rejected::NotForAuthentication(_))
        ));
        let wrong = BootstrapToken::parse("abcdef.0123456789abcdee").expect("token");
        assert!(matches!(
            check(&wrong, Some(&secret(None, "true", "")), now()),
            Err(Rejected::Mismatch(_))
        ));
        let bad_group = secret(None, "true", "system:masters");
        assert!(matches!(
            check(&token, Some(&bad_group), now()),
            Err(Rejected::BadGroup(..))
        ));
        let mut opaque = secret(None, "true", "");
        opaque["type"] = json!("Opaque");
        assert!(matches!(
            check(&token, Some(&opaque), now()),
            Err(Rejected::WrongType(_))
        ));
        assert!(matches!(
            check(&token, None, now()),
            Err(Rejected::NoSecret(_))
        ));
    }

    #[test]
    fn extra_groups_follow_upstreams_pattern() {
        assert!(valid_extra_group(
            "system:bootstrappers:kubeadm:default-node-token"
        ));
        assert!(!valid_extra_group("system:bootstrappers:"));
        assert!(!valid_extra_group("system:bootstrappers:x-"));
        assert!(!valid_extra_group("system:nodes"));
        assert!(!valid_extra_group("system:bootstrappers:Upper"));
    }
}
