//! The server token, in k3s's `K10<ca-hash>::server:<secret>` form.
//!
//! The secret is what a joining node proves it knows; the CA hash (hex
//! SHA-256 of the CA certificate file's bytes) lets the node pin the CA it
//! fetched from `/cacerts` before trusting anything the server says.

use std::path::Path;

use sha2::{Digest, Sha256};

use super::{PkiError, files};

/// The server's join token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerToken {
    /// Hex SHA-256 of the CA certificate file.
    pub ca_hash: String,
    pub secret: String,
}

impl ServerToken {
    /// The full form written to `<data-dir>/server/token`.
    pub fn full(&self) -> String {
        format!("K10{}::server:{}", self.ca_hash, self.secret)
    }
}

/// Hex SHA-256 of the CA certificate file's bytes.
pub fn ca_hash(ca_pem: &str) -> String {
    hex::encode(Sha256::digest(ca_pem.as_bytes()))
}

/// A join token as a node is given it: the CA hash it pins (absent for a
/// bare secret) and the credentials after `::`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinToken<'a> {
    pub ca_hash: Option<&'a str>,
    pub credentials: &'a str,
}

/// Parses a token a node joins with: `K10<hash>::server:<secret>` (the
/// server token), `K10<hash>::<id>.<secret>` (a bootstrap token) or a bare
/// secret (no CA pinning).
pub fn parse_join(token: &str) -> Result<JoinToken<'_>, PkiError> {
    let Some(rest) = token.strip_prefix("K10") else {
        return Ok(JoinToken {
            ca_hash: None,
            credentials: token,
        });
    };
    let bad = || {
        PkiError::BadToken(
            "a full token looks like K10<64 hex digits>::server:<secret> or K10<64 hex digits>::<id>.<secret>".into(),
        )
    };
    let (hash, credentials) = rest.split_once("::").ok_or_else(bad)?;
    if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) || credentials.is_empty() {
        return Err(bad());
    }
    Ok(JoinToken {
        ca_hash: Some(hash),
        credentials,
    })
}

/// Splits a token into (CA hash, secret). A bare secret has no hash; the
/// full form is `K10<hash>::<user>:<secret>`.
fn parse(token: &str) -> Result<(Option<&str>, &str), PkiError> {
    let Some(rest) = token.strip_prefix("K10") else {
        return Ok((None, token));
    };
    let bad =
        || PkiError::BadToken("a full token looks like K10<64 hex digits>::server:<secret>".into());
    let (hash, credentials) = rest.split_once("::").ok_or_else(bad)?;
    let (_user, secret) = credentials.split_once(':').ok_or_else(bad)?;
    if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) || secret.is_empty() {
        return Err(bad());
    }
    Ok((Some(hash), secret))
}

/// Settles the server token: the given one (checked against the CA when it
/// carries a hash), else the one stored at `path`, else a new random one.
/// Writes the full form to `path` (mode 0600).
pub fn ensure(path: &Path, given: Option<&str>, ca_pem: &str) -> Result<ServerToken, PkiError> {
    let hash = ca_hash(ca_pem);
    let secret = match given {
        Some(token) => {
            let (given_hash, secret) = parse(token)?;
            if let Some(given_hash) = given_hash
                && !given_hash.eq_ignore_ascii_case(&hash)
            {
                return Err(PkiError::BadToken(format!(
                    "its CA hash {given_hash} does not match this server's CA (hash {hash}); give the bare secret or the token this server wrote to {}",
                    path.display()
                )));
            }
            secret.to_string()
        }
        None => match files::read_optional(path)? {
            Some(stored) => parse(stored.trim())
                .map_err(|_| PkiError::bad_file(path, "not a K10 token"))?
                .1
                .to_string(),
            None => hex::encode(rand::random::<[u8; 16]>()),
        },
    };
    let token = ServerToken {
        ca_hash: hash,
        secret,
    };
    let full = token.full();
    if files::read_optional(path)?.as_deref().map(str::trim) != Some(full.as_str()) {
        files::write(path, format!("{full}\n").as_bytes(), files::PRIVATE)?;
    }
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_and_full_tokens_parse() {
        assert_eq!(parse("s3cret").expect("bare"), (None, "s3cret"));
        let full = format!("K10{}::server:s3cret", "a".repeat(64));
        let (hash, secret) = parse(&full).expect("full");
        assert_eq!(hash, Some("a".repeat(64).as_str()));
        assert_eq!(secret, "s3cret");
        assert!(parse("K10abc::server:x").is_err());
    }

    #[test]
    fn join_tokens_parse() {
        let hash = "c".repeat(64);
        let server = format!("K10{hash}::server:s3cret");
        let parsed = parse_join(&server).expect("server token");
        assert_eq!(parsed.ca_hash, Some(hash.as_str()));
        assert_eq!(parsed.credentials, "server:s3cret");
        let bootstrap = format!("K10{hash}::abcdef.0123456789abcdef");
        assert_eq!(
            parse_join(&bootstrap).expect("bootstrap").credentials,
            "abcdef.0123456789abcdef"
        );
        let bare = parse_join("s3cret").expect("bare");
        assert_eq!(bare.ca_hash, None);
        for bad in [
            "K10abc::x",
            "K10",
            &format!("K10{hash}::"),
            &format!("K10{hash}"),
        ] {
            assert!(parse_join(bad).is_err(), "{bad}");
        }
        assert_eq!(ca_hash("x").len(), 64);
    }

    #[test]
    fn a_token_for_another_ca_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("token");
        let other = format!("K10{}::server:s3cret", "b".repeat(64));
        let err = ensure(&path, Some(&other), "CA PEM").unwrap_err();
        assert!(err.to_string().contains("does not match"), "{err}");
        let token = ensure(&path, Some("s3cret"), "CA PEM").expect("bare secret");
        assert_eq!(
            ensure(&path, Some(&token.full()), "CA PEM").expect("full"),
            token
        );
        assert_eq!(ensure(&path, None, "CA PEM").expect("stored"), token);
    }
}
