//! JWT access tokens (issue item 2): HS256 or RS256, claims `iss`, `aud`, `sub`, `iat`, `exp`,
//! `jti` plus `username`, `tenant` and `permissions`. Keys live in `iam_keys` so that restarts
//! and replicas agree; a key signs for one rotation period and keeps verifying for one token
//! lifespan after that, then the store drops it. RS256 public keys are served as a JWKS.
//!
//! Login tokens are JWTs in this mode; each still has its `iam_tokens` document (the JWT's
//! `jti`), so IAM itself can revoke them (logout) and list them.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use aws_lc_rs::encoding::AsDer;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Utc};
use jsonwebtoken::jwk::{Jwk, JwkSet, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use oih_core::ObjectId;
use oih_store::Filter;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::Error;
use crate::config::Secret;
use crate::store::{KEYS, Repo, Stored};

/// OIH's `IAM_JWT_ALGORITHM_TYPE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
#[value(rename_all = "UPPERCASE")]
pub enum JwtAlgorithm {
    /// HS256 with a shared secret.
    Hmac,
    /// RS256 with RSA-2048 keys, public keys at `/.well-known/jwks.json`.
    Rsa,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub aud: String,
    pub sub: String,
    pub iat: i64,
    pub exp: i64,
    /// The id of the token's `iam_tokens` document.
    pub jti: String,
    pub username: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    #[serde(default)]
    pub permissions: Vec<String>,
}

/// A stored signing key: an HMAC secret or a PKCS#1 RSA private key, base64.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct KeyDoc {
    kid: String,
    alg: String,
    material: String,
    sign_until: DateTime<Utc>,
}

pub struct JwtSettings {
    pub algorithm: JwtAlgorithm,
    pub secret: Option<Secret>,
    pub issuer: String,
    pub audience: String,
    pub rotation: Duration,
    /// How long a retired key keeps verifying: the longest a token it signed can live.
    pub grace: Duration,
}

struct KeySet {
    signing: Option<(String, EncodingKey)>,
    verifier: Verifier,
    jwks: Vec<Jwk>,
}

/// Checks signature, `exp` (no leeway: expiry is the clock's), `iss` and `aud`. Used by IAM
/// and, with keys from IAM's JWKS or the shared secret, by services running alone.
pub struct Verifier {
    validation: Validation,
    keys: HashMap<String, DecodingKey>,
    /// A shared HS256 secret verifies whatever `kid` the header names.
    shared: Option<DecodingKey>,
}

impl Verifier {
    pub fn new(alg: Algorithm, issuer: &str, audience: &str) -> Self {
        let mut validation = Validation::new(alg);
        validation.leeway = 0;
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[audience]);
        validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
        Self {
            validation,
            keys: HashMap::new(),
            shared: None,
        }
    }

    pub fn with_shared_secret(mut self, secret: &[u8]) -> Result<Self, Error> {
        self.shared =
            Some(DecodingKey::from_secret(secret).map_err(|e| Error::Config(e.to_string()))?);
        Ok(self)
    }

    /// Adds the RSA keys of a JWKS (others are ignored).
    pub fn with_jwks(mut self, set: &JwkSet) -> Self {
        for jwk in &set.keys {
            if let (Some(kid), Ok(key)) = (&jwk.common.key_id, DecodingKey::from_jwk(jwk)) {
                self.keys.insert(kid.clone(), key);
            }
        }
        self
    }

    /// True when the token names a key this verifier does not have.
    pub fn lacks_key_for(&self, token: &str) -> bool {
        self.shared.is_none()
            && jsonwebtoken::decode_header(token)
                .ok()
                .and_then(|h| h.kid)
                .is_some_and(|kid| !self.keys.contains_key(&kid))
    }

    pub fn verify(&self, token: &str) -> Option<Claims> {
        let header = jsonwebtoken::decode_header(token).ok()?;
        let key = header
            .kid
            .as_deref()
            .and_then(|kid| self.keys.get(kid))
            .or(self.shared.as_ref())?;
        jsonwebtoken::decode::<Claims>(token, key, &self.validation)
            .ok()
            .map(|data| data.claims)
    }
}

/// jsonwebtoken picks its crypto backend at run time; with exactly the aws_lc_rs feature it
/// is chosen automatically, otherwise install it explicitly (once per process).
pub fn ensure_crypto_provider() {
    if jsonwebtoken::crypto::CryptoProvider::try_get_default().is_none() {
        // Losing a race with another installer is fine: a provider is installed.
        let _ = jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER.install_default();
    }
}

pub struct Jwt {
    settings: JwtSettings,
    keys: RwLock<Arc<KeySet>>,
}

impl Jwt {
    pub async fn open(settings: JwtSettings, repo: &Repo) -> Result<Self, Error> {
        ensure_crypto_provider();
        let verifier = Verifier::new(Algorithm::HS256, &settings.issuer, &settings.audience);
        let jwt = Self {
            settings,
            keys: RwLock::new(Arc::new(KeySet {
                signing: None,
                verifier,
                jwks: Vec::new(),
            })),
        };
        jwt.refresh(repo).await?;
        Ok(jwt)
    }

    fn algorithm(&self) -> Algorithm {
        match self.settings.algorithm {
            JwtAlgorithm::Hmac => Algorithm::HS256,
            JwtAlgorithm::Rsa => Algorithm::RS256,
        }
    }

    fn current(&self) -> Arc<KeySet> {
        self.keys.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Reloads the keys and makes a new signing key when the current one is due for rotation.
    /// Runs at start-up and periodically.
    pub async fn refresh(&self, repo: &Repo) -> Result<(), Error> {
        let alg = self.algorithm();
        let docs: Vec<KeyDoc> = match (&self.settings.secret, self.settings.algorithm) {
            (Some(secret), JwtAlgorithm::Hmac) => vec![KeyDoc {
                kid: "configured".into(),
                alg: "HS256".into(),
                material: STANDARD.encode(secret.expose().as_bytes()),
                sign_until: DateTime::<Utc>::MAX_UTC,
            }],
            _ => self.stored_keys(repo, alg).await?,
        };
        let mut set = KeySet {
            signing: None,
            verifier: Verifier::new(alg, &self.settings.issuer, &self.settings.audience),
            jwks: Vec::new(),
        };
        let mut newest: Option<&KeyDoc> = None;
        for doc in &docs {
            let material = STANDARD
                .decode(&doc.material)
                .map_err(|e| Error::Data(format!("key {}: {e}", doc.kid)))?;
            let (encoding, decoding) = match alg {
                Algorithm::RS256 => {
                    let encoding = EncodingKey::from_rsa_der(&material);
                    let mut jwk = Jwk::from_encoding_key(&encoding, alg)
                        .map_err(|e| Error::Data(format!("key {}: {e}", doc.kid)))?;
                    jwk.common.key_id = Some(doc.kid.clone());
                    jwk.common.public_key_use = Some(PublicKeyUse::Signature);
                    let decoding = DecodingKey::from_jwk(&jwk)
                        .map_err(|e| Error::Data(format!("key {}: {e}", doc.kid)))?;
                    set.jwks.push(jwk);
                    (encoding, decoding)
                }
                _ => {
                    let bad = |e: jsonwebtoken::errors::Error| {
                        Error::Data(format!("key {}: {e}", doc.kid))
                    };
                    (
                        EncodingKey::from_secret(&material).map_err(bad)?,
                        DecodingKey::from_secret(&material).map_err(bad)?,
                    )
                }
            };
            set.verifier.keys.insert(doc.kid.clone(), decoding);
            if newest.is_none_or(|n| doc.sign_until > n.sign_until) {
                newest = Some(doc);
                set.signing = Some((doc.kid.clone(), encoding));
            }
        }
        *self.keys.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(set);
        Ok(())
    }

    /// The stored keys of `alg`, adding a fresh one when none may sign any more.
    async fn stored_keys(&self, repo: &Repo, alg: Algorithm) -> Result<Vec<KeyDoc>, Error> {
        let name = format!("{alg:?}");
        let filter = Filter::eq("alg", name.clone());
        let mut docs: Vec<KeyDoc> = repo
            .find::<KeyDoc>(KEYS, &filter)
            .await?
            .into_iter()
            .map(|s: Stored<KeyDoc>| s.body)
            .collect();
        let now = Utc::now();
        if docs.iter().all(|d| d.sign_until <= now) {
            let material = match alg {
                Algorithm::RS256 => generate_rsa()?,
                _ => rand::random::<[u8; 32]>().to_vec(),
            };
            let sign_until = now + chrono_duration(self.settings.rotation);
            let doc = KeyDoc {
                kid: ObjectId::new().to_string(),
                alg: name,
                material: STANDARD.encode(material),
                sign_until,
            };
            let expires = sign_until + chrono_duration(self.settings.grace);
            repo.insert(KEYS, &doc, Some(expires)).await?;
            docs.push(doc);
        }
        Ok(docs)
    }

    pub fn issuer(&self) -> &str {
        &self.settings.issuer
    }

    pub fn audience(&self) -> &str {
        &self.settings.audience
    }

    /// Signs any claim set: IAM's login [`Claims`] or an OIDC ID token.
    pub fn sign<T: Serialize>(&self, claims: &T) -> Result<String, Error> {
        let keys = self.current();
        let (kid, key) = keys
            .signing
            .as_ref()
            .ok_or_else(|| Error::Data("no JWT signing key".into()))?;
        let mut header = Header::new(self.algorithm());
        header.kid = Some(kid.clone());
        jsonwebtoken::encode(&header, claims, key).map_err(|e| Error::Data(e.to_string()))
    }

    /// The claims of a token signed by one of our keys, not expired, for our issuer and
    /// audience.
    pub fn verify(&self, token: &str) -> Option<Claims> {
        self.current().verifier.verify(token)
    }

    /// The public keys (RS256 only; HMAC secrets are never published).
    pub fn jwks(&self) -> Option<Value> {
        if self.settings.algorithm != JwtAlgorithm::Rsa {
            return None;
        }
        let keys = JwkSet {
            keys: self.current().jwks.clone(),
        };
        serde_json::to_value(keys).ok()
    }
}

/// Three dot-separated parts; OIH's opaque tokens are base64url and never contain a dot.
pub fn looks_like_jwt(token: &str) -> bool {
    token.split('.').count() == 3
}

fn chrono_duration(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

/// A new RSA-2048 key as PKCS#1 DER, the form jsonwebtoken's aws-lc backend reads.
fn generate_rsa() -> Result<Vec<u8>, Error> {
    let pair = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048)
        .map_err(|_| Error::Data("RSA key generation failed".into()))?;
    let pkcs8 = pair
        .as_der()
        .map_err(|_| Error::Data("RSA key encoding failed".into()))?;
    pkcs1_from_pkcs8(pkcs8.as_ref())
        .map(<[u8]>::to_vec)
        .ok_or_else(|| Error::Data("unexpected PKCS#8 layout".into()))
}

/// PKCS#8 `PrivateKeyInfo ::= SEQUENCE { version, algorithm, privateKey OCTET STRING }`;
/// for RSA the octet string is the PKCS#1 `RSAPrivateKey`.
fn pkcs1_from_pkcs8(der: &[u8]) -> Option<&[u8]> {
    let (0x30, info, _) = tlv(der)? else {
        return None;
    };
    let (0x02, _, rest) = tlv(info)? else {
        return None;
    };
    let (0x30, _, rest) = tlv(rest)? else {
        return None;
    };
    let (0x04, key, _) = tlv(rest)? else {
        return None;
    };
    Some(key)
}

/// One DER tag-length-value: (tag, value, remaining input).
fn tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, &rest[n..])
    };
    if rest.len() < len {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn der_parsing() {
        assert_eq!(
            tlv(&[0x04, 0x02, 1, 2, 9]),
            Some((0x04, &[1u8, 2][..], &[9u8][..]))
        );
        assert_eq!(
            tlv(&[0x04, 0x81, 0x01, 7]),
            Some((0x04, &[7u8][..], &[][..]))
        );
        assert_eq!(tlv(&[0x04, 0x05, 1]), None);
        assert_eq!(pkcs1_from_pkcs8(&[0x31, 0x00]), None);
    }

    #[test]
    fn generated_rsa_keys_sign_and_verify() {
        let der = generate_rsa().expect("key");
        let encoding = EncodingKey::from_rsa_der(&der);
        let jwk = Jwk::from_encoding_key(&encoding, Algorithm::RS256).expect("jwk");
        let decoding = DecodingKey::from_jwk(&jwk).expect("decoding");
        let claims = serde_json::json!({"sub": "x", "exp": Utc::now().timestamp() + 60});
        let token =
            jsonwebtoken::encode(&Header::new(Algorithm::RS256), &claims, &encoding).expect("sign");
        let mut v = Validation::new(Algorithm::RS256);
        v.required_spec_claims.clear();
        let back = jsonwebtoken::decode::<Value>(&token, &decoding, &v).expect("verify");
        assert_eq!(back.claims["sub"], "x");
    }

    #[test]
    fn jwt_shape() {
        assert!(looks_like_jwt("a.b.c"));
        assert!(!looks_like_jwt(&crate::tokens::generate()));
    }
}
