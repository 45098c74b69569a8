//! Bearer-token authentication.
//!
//! Each kind of token (the server token, service-account tokens in
//! `serviceaccount.rs`; node tokens later) is a [`TokenAuthenticator`]; a
//! request's bearer token is tried against each in turn.
//!
//! Following k3s, the server token is a bootstrap credential for joining
//! nodes, not an admin credential: it authenticates as the user
//! `system:skiff:server-token` in the group `system:bootstrappers`.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

use super::UserInfo;

/// The user the server token authenticates as.
pub const SERVER_TOKEN_USER: &str = "system:skiff:server-token";
/// The group of bootstrap credentials.
pub const BOOTSTRAPPERS: &str = "system:bootstrappers";

/// Maps a bearer token to a user, or `None` when the token is not its kind
/// or not valid. Async, as checking a token may need a lookup.
#[async_trait::async_trait]
pub trait TokenAuthenticator: Send + Sync {
    async fn authenticate(&self, token: &str) -> Option<UserInfo>;
}

/// Accepts the server token, as the bare secret or in its full `K10` form.
pub struct ServerTokenAuthenticator {
    secret_digest: [u8; 32],
    full_digest: [u8; 32],
}

impl ServerTokenAuthenticator {
    pub fn new(token: &crate::pki::ServerToken) -> Self {
        ServerTokenAuthenticator {
            secret_digest: digest(&token.secret),
            full_digest: digest(&token.full()),
        }
    }
}

fn digest(s: &str) -> [u8; 32] {
    Sha256::digest(s.as_bytes()).into()
}

/// Compares digests in time independent of where they differ, so response
/// times say nothing about the secret.
fn same(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[async_trait::async_trait]
impl TokenAuthenticator for ServerTokenAuthenticator {
    async fn authenticate(&self, token: &str) -> Option<UserInfo> {
        let presented = digest(token);
        let secret_ok = same(&presented, &self.secret_digest);
        let full_ok = same(&presented, &self.full_digest);
        (secret_ok | full_ok).then(|| UserInfo {
            username: SERVER_TOKEN_USER.to_string(),
            uid: String::new(),
            groups: vec![
                BOOTSTRAPPERS.to_string(),
                "system:authenticated".to_string(),
            ],
            extra: BTreeMap::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pki::ServerToken;

    #[tokio::test]
    async fn server_token_is_a_bootstrapper() {
        let token = ServerToken {
            ca_hash: "a".repeat(64),
            secret: "s3cret".into(),
        };
        let auth = ServerTokenAuthenticator::new(&token);
        let user = auth.authenticate("s3cret").await.expect("secret accepted");
        assert_eq!(user.username, SERVER_TOKEN_USER);
        assert!(user.groups.contains(&BOOTSTRAPPERS.to_string()));
        assert!(!user.groups.contains(&"system:masters".to_string()));
        assert!(auth.authenticate(&token.full()).await.is_some());
        assert!(auth.authenticate("wrong").await.is_none());
    }
}
