//! Compact JSON Web Tokens signed with ES256 (ECDSA P-256, SHA-256), the
//! format of service-account tokens.
//!
//! Only what service-account tokens need: a header `{"alg":"ES256",
//! "kid":...}`, a JSON claims object, and the 64-byte `r || s` signature
//! JWS prescribes. Verification accepts ES256 only (never `none` or an
//! algorithm the header picks) and checks the signature before a claim is
//! looked at; the claims' meaning is the caller's business.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use rcgen::PublicKeyData as _;
use ring::rand::SystemRandom;
use ring::signature::{
    ECDSA_P256_SHA256_FIXED, ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _,
    UnparsedPublicKey,
};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// Why a key could not be used or a token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    #[error("the signing key is not an ECDSA P-256 private key: {0}")]
    BadKey(String),
    #[error("signing failed")]
    Sign,
    #[error("not a JWT")]
    Malformed,
    #[error("unsupported JWT algorithm {0:?}")]
    Algorithm(String),
    #[error("the token was signed by another key")]
    OtherKey,
    #[error("bad signature")]
    Signature,
}

/// The private key that signs tokens.
pub struct SigningKey {
    pair: EcdsaKeyPair,
    rng: SystemRandom,
    key_id: String,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// The key in a PKCS#8 PEM file.
    pub fn from_pem(pem: &str) -> Result<Self, JwtError> {
        let parsed = rcgen::KeyPair::from_pem(pem).map_err(|e| JwtError::BadKey(e.to_string()))?;
        if parsed.algorithm() != &rcgen::PKCS_ECDSA_P256_SHA256 {
            return Err(JwtError::BadKey(
                "another algorithm than ECDSA P-256".into(),
            ));
        }
        let rng = SystemRandom::new();
        let pair = EcdsaKeyPair::from_pkcs8(
            &ECDSA_P256_SHA256_FIXED_SIGNING,
            &parsed.serialize_der(),
            &rng,
        )
        .map_err(|e| JwtError::BadKey(e.to_string()))?;
        Ok(SigningKey {
            key_id: key_id(&parsed.subject_public_key_info()),
            pair,
            rng,
        })
    }

    /// The key id in every token's header: upstream's, the unpadded
    /// base64url SHA-256 of the public key's DER (PKIX) form.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// The public half, to verify tokens with.
    pub fn verifying_key(&self) -> VerifyingKey {
        VerifyingKey {
            public: self.pair.public_key().as_ref().to_vec(),
            key_id: self.key_id.clone(),
        }
    }

    /// A signed token carrying `claims`.
    pub fn sign(&self, claims: &Value) -> Result<String, JwtError> {
        let header = json!({"alg": "ES256", "kid": self.key_id});
        let signing_input = format!(
            "{}.{}",
            B64URL.encode(header.to_string()),
            B64URL.encode(claims.to_string())
        );
        let signature = self
            .pair
            .sign(&self.rng, signing_input.as_bytes())
            .map_err(|_| JwtError::Sign)?;
        Ok(format!(
            "{signing_input}.{}",
            B64URL.encode(signature.as_ref())
        ))
    }
}

fn key_id(spki_der: &[u8]) -> String {
    B64URL.encode(Sha256::digest(spki_der))
}

/// The public key that checks tokens.
#[derive(Debug, Clone)]
pub struct VerifyingKey {
    /// The uncompressed curve point.
    public: Vec<u8>,
    key_id: String,
}

/// The claims of a token, read without checking its signature: only to
/// decide whether a token is one of ours (its issuer) before verifying it.
pub fn peek_claims(token: &str) -> Option<Value> {
    let mut parts = token.split('.');
    let (_, payload) = (parts.next()?, parts.next()?);
    let bytes = B64URL.decode(payload).ok()?;
    serde_json::from_slice(&bytes).ok()
}

impl VerifyingKey {
    /// The claims of `token` once its signature checks out.
    pub fn verify(&self, token: &str) -> Result<Value, JwtError> {
        let mut parts = token.split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(JwtError::Malformed);
        };
        let header: Value = B64URL
            .decode(header)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or(JwtError::Malformed)?;
        match header.get("alg").and_then(Value::as_str) {
            Some("ES256") => {}
            other => return Err(JwtError::Algorithm(other.unwrap_or("").to_string())),
        }
        if let Some(kid) = header.get("kid").and_then(Value::as_str) {
            if kid != self.key_id {
                return Err(JwtError::OtherKey);
            }
        }
        let signature = B64URL.decode(signature).map_err(|_| JwtError::Malformed)?;
        let signed_len = header_len(token).ok_or(JwtError::Malformed)?;
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &self.public)
            .verify(&token.as_bytes()[..signed_len], &signature)
            .map_err(|_| JwtError::Signature)?;
        let claims = B64URL.decode(payload).map_err(|_| JwtError::Malformed)?;
        let claims: Value = serde_json::from_slice(&claims).map_err(|_| JwtError::Malformed)?;
        if !claims.is_object() {
            return Err(JwtError::Malformed);
        }
        Ok(claims)
    }
}

/// The length of `header.payload`, the part the signature covers.
fn header_len(token: &str) -> Option<usize> {
    token.rfind('.')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> SigningKey {
        let pem = rcgen::KeyPair::generate()
            .expect("generate")
            .serialize_pem();
        SigningKey::from_pem(&pem).expect("load")
    }

    #[test]
    fn a_signed_token_verifies_and_carries_its_claims() {
        let key = key();
        let claims = json!({"sub": "system:serviceaccount:default:default", "n": 1});
        let token = key.sign(&claims).expect("sign");
        assert_eq!(token.split('.').count(), 3);
        let header: Value = serde_json::from_slice(
            &B64URL
                .decode(token.split('.').next().expect("header"))
                .expect("b64"),
        )
        .expect("json");
        assert_eq!(header["alg"], "ES256");
        assert_eq!(header["kid"], key.key_id());
        assert_eq!(key.verifying_key().verify(&token), Ok(claims.clone()));
        assert_eq!(peek_claims(&token), Some(claims));
    }

    #[test]
    fn tampering_and_foreign_keys_are_refused() {
        let key = key();
        let token = key.sign(&json!({"sub": "a"})).expect("sign");
        let verifier = key.verifying_key();

        // Another payload under the same signature.
        let mut parts: Vec<&str> = token.split('.').collect();
        let forged = B64URL.encode(json!({"sub": "admin"}).to_string());
        parts[1] = &forged;
        assert_eq!(verifier.verify(&parts.join(".")), Err(JwtError::Signature));

        // A token from another key with the same key id is still refused.
        let other = key_with_id(key.key_id());
        let foreign = other.sign(&json!({"sub": "a"})).expect("sign");
        assert_eq!(verifier.verify(&foreign), Err(JwtError::Signature));
        // ... and one naming another key id is not ours at all.
        let foreign = self::key().sign(&json!({"sub": "a"})).expect("sign");
        assert_eq!(verifier.verify(&foreign), Err(JwtError::OtherKey));
    }

    fn key_with_id(id: &str) -> SigningKey {
        let mut k = key();
        k.key_id = id.to_string();
        k
    }

    #[test]
    fn unsigned_and_malformed_tokens_are_refused() {
        let verifier = key().verifying_key();
        let none_header = B64URL.encode(r#"{"alg":"none"}"#);
        let payload = B64URL.encode(r#"{"sub":"a"}"#);
        assert_eq!(
            verifier.verify(&format!("{none_header}.{payload}.")),
            Err(JwtError::Algorithm("none".into()))
        );
        for bad in ["", "a", "a.b", "a.b.c.d", "!!.!!.!!", "e30.e30.AAAA"] {
            assert!(verifier.verify(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn keys_of_other_algorithms_are_refused() {
        let pem = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519)
            .expect("generate")
            .serialize_pem();
        assert!(matches!(
            SigningKey::from_pem(&pem),
            Err(JwtError::BadKey(_))
        ));
        assert!(SigningKey::from_pem("not pem").is_err());
    }
}
