//! Ciphers, without any key management (that is `keys.rs`):
//! - [`seal`]/[`open`]: AES-256-GCM with a random 96-bit nonce and associated data;
//! - the field envelope: `version(1) ‖ key id(12) ‖ nonce(12) ‖ ciphertext+tag`, base64, so a
//!   stored value names the data key that sealed it;
//! - [`legacy_decrypt`]: OIH's `crypto.createCipher('aes-256-cbc', password)` values, for import.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use cbc::cipher::{BlockModeDecrypt, KeyIvInit, block_padding::Pkcs7};
use md5::{Digest, Md5};
use oih_core::ObjectId;

/// A 256-bit key. `Debug` never prints it.
#[derive(Clone, PartialEq, Eq)]
pub struct Key(pub(crate) [u8; 32]);

impl Key {
    pub fn random() -> Self {
        Self(rand::random())
    }
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Key(<redacted>)")
    }
}

/// Why something could not be decrypted. Never carries plaintext or key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    #[error("ciphertext is malformed")]
    Malformed,
    #[error("ciphertext uses unknown envelope version {0}")]
    UnknownVersion(u8),
    /// Wrong key, or the ciphertext (or its associated data) was tampered with.
    #[error("ciphertext does not authenticate under this key")]
    Authentication,
    #[error("decrypted value is not UTF-8")]
    NotUtf8,
}

const NONCE_LEN: usize = 12;
const ENVELOPE_V1: u8 = 1;
const KEY_ID_LEN: usize = 12;

/// `nonce ‖ ciphertext+tag`.
pub fn seal(key: &Key, plaintext: &[u8], aad: &[u8]) -> Vec<u8> {
    let nonce_bytes: [u8; NONCE_LEN] = rand::random();
    let cipher = Aes256Gcm::new(&key.0.into());
    let nonce = Nonce::from(nonce_bytes);
    let sealed = cipher
        .encrypt(
            &nonce,
            Payload {
                msg: plaintext,
                aad,
            },
        )
        // Only fails for inputs beyond GCM's 64 GiB limit, far above any request body.
        .unwrap_or_default();
    let mut out = Vec::with_capacity(NONCE_LEN + sealed.len());
    out.extend_from_slice(&nonce_bytes);
    out.extend_from_slice(&sealed);
    out
}

/// Inverse of [`seal`].
pub fn open(key: &Key, sealed: &[u8], aad: &[u8]) -> Result<Vec<u8>, CryptoError> {
    if sealed.len() < NONCE_LEN + 16 {
        return Err(CryptoError::Malformed);
    }
    let (nonce, body) = sealed.split_at(NONCE_LEN);
    let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| CryptoError::Malformed)?;
    Aes256Gcm::new(&key.0.into())
        .decrypt(&Nonce::from(nonce), Payload { msg: body, aad })
        .map_err(|_| CryptoError::Authentication)
}

/// Seals a field value under the data key `key_id`, as the base64 envelope stored in
/// `value.<field>`.
pub fn seal_field(key_id: ObjectId, key: &Key, plaintext: &str, aad: &[u8]) -> String {
    let mut out = Vec::with_capacity(1 + KEY_ID_LEN + NONCE_LEN + plaintext.len() + 16);
    out.push(ENVELOPE_V1);
    out.extend_from_slice(&key_id.bytes());
    out.extend_from_slice(&seal(key, plaintext.as_bytes(), aad));
    B64.encode(out)
}

/// A parsed field envelope: which data key sealed it, and the sealed bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    pub key_id: ObjectId,
    pub sealed: Vec<u8>,
}

impl Envelope {
    pub fn parse(text: &str) -> Result<Self, CryptoError> {
        let bytes = B64.decode(text).map_err(|_| CryptoError::Malformed)?;
        let (&version, rest) = bytes.split_first().ok_or(CryptoError::Malformed)?;
        if version != ENVELOPE_V1 {
            return Err(CryptoError::UnknownVersion(version));
        }
        if rest.len() < KEY_ID_LEN {
            return Err(CryptoError::Malformed);
        }
        let (id, sealed) = rest.split_at(KEY_ID_LEN);
        let id: [u8; KEY_ID_LEN] = id.try_into().map_err(|_| CryptoError::Malformed)?;
        Ok(Self {
            key_id: ObjectId::from_bytes(id),
            sealed: sealed.to_vec(),
        })
    }

    pub fn open(&self, key: &Key, aad: &[u8]) -> Result<String, CryptoError> {
        String::from_utf8(open(key, &self.sealed, aad)?).map_err(|_| CryptoError::NotUtf8)
    }
}

/// OpenSSL's `EVP_BytesToKey` with MD5, one round and no salt, as Node's `createCipher` uses
/// it: `D1 = MD5(password)`, `Dn = MD5(Dn-1 ‖ password)`, key = first 32 bytes, IV = next 16.
fn evp_bytes_to_key(password: &[u8]) -> ([u8; 32], [u8; 16]) {
    let mut material = Vec::with_capacity(48);
    let mut previous: Vec<u8> = Vec::new();
    while material.len() < 48 {
        let mut md5 = Md5::new();
        md5.update(&previous);
        md5.update(password);
        previous = md5.finalize().to_vec();
        material.extend_from_slice(&previous);
    }
    let mut key = [0u8; 32];
    let mut iv = [0u8; 16];
    key.copy_from_slice(&material[..32]);
    iv.copy_from_slice(&material[32..48]);
    (key, iv)
}

/// Decrypts a value OIH's secret-service stored: AES-256-CBC with key and IV from
/// [`evp_bytes_to_key`], the ciphertext kept as a latin1 string (one char per byte).
pub fn legacy_decrypt(latin1: &str, password: &str) -> Result<String, CryptoError> {
    let bytes = latin1
        .chars()
        .map(|c| u8::try_from(u32::from(c)).map_err(|_| CryptoError::Malformed))
        .collect::<Result<Vec<u8>, _>>()?;
    if bytes.is_empty() || bytes.len() % 16 != 0 {
        return Err(CryptoError::Malformed);
    }
    let (key, iv) = evp_bytes_to_key(password.as_bytes());
    let plain = cbc::Decryptor::<aes::Aes256>::new(&key.into(), &iv.into())
        .decrypt_padded_vec::<Pkcs7>(&bytes)
        .map_err(|_| CryptoError::Authentication)?;
    String::from_utf8(plain).map_err(|_| CryptoError::NotUtf8)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Produced with Node 20 (see `tests/it/legacy.rs` for the command): `createCipher(
    /// 'aes-256-cbc', 'oih-crypto-key')` of `hunter2`, latin1 output, shown here as hex.
    const HUNTER2_HEX: &str = "4e9e8dd74f6b026d1736086bcf35f361";

    fn latin1(hex: &str) -> String {
        (0..hex.len())
            .step_by(2)
            .map(|i| char::from(u8::from_str_radix(&hex[i..i + 2], 16).expect("hex")))
            .collect()
    }

    #[test]
    fn legacy_vector_from_node() {
        assert_eq!(
            legacy_decrypt(&latin1(HUNTER2_HEX), "oih-crypto-key").as_deref(),
            Ok("hunter2")
        );
        assert!(legacy_decrypt(&latin1(HUNTER2_HEX), "other-key").is_err());
        assert_eq!(
            legacy_decrypt("short", "oih-crypto-key"),
            Err(CryptoError::Malformed)
        );
    }

    #[test]
    fn envelope_round_trip_and_binding() {
        let key = Key::random();
        let id = ObjectId::new();
        let text = seal_field(id, &key, "s3cret", b"a/b");
        let env = Envelope::parse(&text).expect("parse");
        assert_eq!(env.key_id, id);
        assert_eq!(env.open(&key, b"a/b").as_deref(), Ok("s3cret"));
        assert_eq!(env.open(&key, b"a/c"), Err(CryptoError::Authentication));
        assert_eq!(
            env.open(&Key::random(), b"a/b"),
            Err(CryptoError::Authentication)
        );
        assert!(!text.contains("s3cret"));
        // Two seals of one value differ (random nonce).
        assert_ne!(text, seal_field(id, &key, "s3cret", b"a/b"));
        assert_eq!(Envelope::parse("AAAA"), Err(CryptoError::UnknownVersion(0)));
        assert_eq!(Envelope::parse("%%%"), Err(CryptoError::Malformed));
    }
}
