//! Password hashing: argon2id for every new hash; OIH's passport-local-mongoose PBKDF2 hashes
//! (SHA-256, 25000 rounds, 512-byte key, hex; the hex salt string's bytes are the salt) still
//! verify, and the caller re-hashes them after a successful login (iam-ils.md §8).

use argon2::{Algorithm, Argon2, Params, PasswordHasher, PasswordVerifier, Version};
use sha2::Sha256;

const LEGACY_ROUNDS: u32 = 25_000;
const LEGACY_KEY_LEN: usize = 512;

#[derive(Debug, thiserror::Error)]
#[error("password hashing failed: {0}")]
pub struct HashError(String);

/// Hashes new passwords with the configured argon2id cost.
#[derive(Clone)]
pub struct Hasher {
    params: Params,
}

/// Outcome of checking a password against a stored hash.
#[derive(Debug, PartialEq, Eq)]
pub enum Verified {
    No,
    Yes,
    /// Correct, but stored in the legacy format: store a fresh argon2id hash.
    YesRehash,
}

impl Hasher {
    pub fn new(memory_kib: u32, iterations: u32) -> Result<Self, HashError> {
        let params = Params::new(memory_kib, iterations, 1, None)
            .map_err(|e| HashError(format!("invalid argon2 parameters: {e}")))?;
        Ok(Self { params })
    }

    fn argon2(&self) -> Argon2<'static> {
        Argon2::new(Algorithm::Argon2id, Version::V0x13, self.params.clone())
    }

    /// A PHC string (`$argon2id$v=19$m=…`), which records its own parameters.
    pub fn hash(&self, password: &str) -> Result<String, HashError> {
        let salt: [u8; 16] = rand::random();
        self.argon2()
            .hash_password_with_salt(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| HashError(e.to_string()))
    }

    /// `hash` alone is an argon2 PHC string; `hash` with `salt` is OIH's PBKDF2 format.
    pub fn verify(&self, password: &str, hash: &str, salt: Option<&str>) -> Verified {
        match salt {
            Some(salt) => {
                if verify_legacy(password, hash, salt) {
                    Verified::YesRehash
                } else {
                    Verified::No
                }
            }
            // Verification reads the cost from the PHC string, so old hashes keep working
            // after the configured cost changes.
            None => match self.argon2().verify_password(password.as_bytes(), hash) {
                Ok(()) => Verified::Yes,
                Err(_) => Verified::No,
            },
        }
    }
}

fn verify_legacy(password: &str, hash_hex: &str, salt: &str) -> bool {
    let mut derived = vec![0u8; LEGACY_KEY_LEN];
    pbkdf2::pbkdf2_hmac::<Sha256>(
        password.as_bytes(),
        salt.as_bytes(),
        LEGACY_ROUNDS,
        &mut derived,
    );
    let expected = to_hex(&derived);
    constant_time_eq(
        expected.as_bytes(),
        hash_hex.to_ascii_lowercase().as_bytes(),
    )
}

pub(crate) fn to_hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
pub(crate) fn legacy_hash(password: &str, salt: &str) -> String {
    let mut derived = vec![0u8; LEGACY_KEY_LEN];
    pbkdf2::pbkdf2_hmac::<Sha256>(
        password.as_bytes(),
        salt.as_bytes(),
        LEGACY_ROUNDS,
        &mut derived,
    );
    to_hex(&derived)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cheap() -> Hasher {
        Hasher::new(64, 1).expect("params")
    }

    #[test]
    fn argon2id_round_trip() {
        let h = cheap();
        let hash = h.hash("s3cret").expect("hash");
        assert!(hash.starts_with("$argon2id$v=19$m=64,t=1,p=1$"));
        assert_eq!(h.verify("s3cret", &hash, None), Verified::Yes);
        assert_eq!(h.verify("wrong", &hash, None), Verified::No);
        assert_eq!(h.verify("s3cret", "garbage", None), Verified::No);
    }

    #[test]
    fn legacy_pbkdf2_verifies_and_asks_for_rehash() {
        let salt = "a".repeat(64);
        let hash = legacy_hash("password", &salt);
        assert_eq!(hash.len(), 1024);
        let h = cheap();
        assert_eq!(
            h.verify("password", &hash, Some(&salt)),
            Verified::YesRehash
        );
        assert_eq!(h.verify("passw0rd", &hash, Some(&salt)), Verified::No);
    }

    #[test]
    fn legacy_matches_a_known_vector() {
        // PBKDF2-HMAC-SHA256("passwd", "salt", 1 round) from RFC 7914 §11, to pin the
        // primitive; the 25000-round format is then only a parameter change.
        let mut out = [0u8; 64];
        pbkdf2::pbkdf2_hmac::<Sha256>(b"passwd", b"salt", 1, &mut out);
        assert_eq!(&to_hex(&out)[..32], "55ac046e56e3089fec1691c22544b605");
    }
}
