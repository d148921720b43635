//! Encryption at rest for persistent token stores: AES-256-GCM with a key the user (or the
//! OS keyring) supplies, a random 96-bit nonce per write, and the store key as associated
//! data, so that a value copied under another key does not decrypt.
//!
//! A sealed value is `d365:aes-256-gcm:v1:` ‖ nonce (12 bytes) ‖ ciphertext and tag.
//! Plain records are JSON objects, so the prefix tells the two apart.

use std::fmt;

use aes_gcm::aead::{Aead, Generate, KeyInit, Nonce, Payload};
use aes_gcm::{Aes256Gcm, Key};
use base64::Engine as _;
use secrecy::SecretString;

use crate::store::StoreError;

/// Marks an encrypted value.
const SEALED_PREFIX: &[u8] = b"d365:aes-256-gcm:v1:";
const NONCE_LEN: usize = 12;

/// A 256-bit key for AES-256-GCM encryption of the tokens a store writes (the file store,
/// the Redis store).
///
/// Every process that shares the tokens needs the same key. `Debug` never shows it.
/// Generate one with [`generate`](Self::generate), or with `openssl rand -base64 32`.
///
/// # Examples
///
/// ```
/// use d365_auth_core::store::EncryptionKey;
///
/// let key = EncryptionKey::from_base64("MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=")?;
/// assert_eq!(format!("{key:?}"), "EncryptionKey([redacted])");
/// assert!(EncryptionKey::from_base64("dG9vIHNob3J0").is_err()); // 9 bytes
/// let sealed = key.seal("entry", b"the record")?;
/// assert_eq!(key.open("entry", &sealed).as_deref(), Some(&b"the record"[..]));
/// assert!(EncryptionKey::is_sealed(&sealed));
/// # Ok::<(), d365_auth_core::store::StoreError>(())
/// ```
#[derive(Clone)]
pub struct EncryptionKey {
    cipher: Aes256Gcm,
    bytes: [u8; 32],
}

impl EncryptionKey {
    /// A key from its 32 bytes.
    ///
    /// # Examples
    ///
    /// ```
    /// let key = d365_auth_core::store::EncryptionKey::from_bytes([7; 32]);
    /// ```
    #[must_use]
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        let key = Key::<Aes256Gcm>::from(bytes);
        Self {
            cipher: Aes256Gcm::new(&key),
            bytes,
        }
    }

    /// A new random key from the operating system.
    ///
    /// # Errors
    ///
    /// [`StoreError`] when the operating system gives no random bytes.
    pub fn generate() -> Result<Self, StoreError> {
        let key = Key::<Aes256Gcm>::try_generate().map_err(|_| {
            StoreError::new(
                "the operating system's random number generator failed",
                None,
            )
        })?;
        let bytes: [u8; 32] = key.into();
        Ok(Self::from_bytes(bytes))
    }

    /// The key in standard base64, to keep it somewhere safe (an OS keyring, a secret
    /// manager). A secret: never show it.
    #[must_use]
    pub fn to_base64(&self) -> SecretString {
        SecretString::from(base64::engine::general_purpose::STANDARD.encode(self.bytes))
    }

    /// A key from 32 bytes in base64 (standard or URL-safe alphabet, padded or not),
    /// surrounding whitespace ignored.
    ///
    /// # Errors
    ///
    /// [`StoreError`] when the text is not base64 or does not decode to 32 bytes. The
    /// message does not quote the text.
    pub fn from_base64(encoded: &str) -> Result<Self, StoreError> {
        use base64::engine::general_purpose::{
            STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD,
        };
        let encoded = encoded.trim();
        let decoded = [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD]
            .iter()
            .find_map(|engine| engine.decode(encoded).ok())
            .ok_or_else(|| StoreError::new("invalid encryption key: it is not base64", None))?;
        let bytes: [u8; 32] = decoded.as_slice().try_into().map_err(|_| {
            StoreError::new(
                "invalid encryption key: it must be 32 bytes (44 base64 characters)",
                None,
            )
        })?;
        Ok(Self::from_bytes(bytes))
    }

    /// Encrypts `plain` for the store key `key` (it must be opened with the same one).
    ///
    /// # Errors
    ///
    /// [`StoreError`] when the operating system gives no random nonce.
    pub fn seal(&self, key: &str, plain: &[u8]) -> Result<Vec<u8>, StoreError> {
        let failed = |what: &str| StoreError::new(format!("cannot encrypt a token: {what}"), None);
        let nonce = Nonce::<Aes256Gcm>::try_generate()
            .map_err(|_| failed("the operating system's random number generator failed"))?;
        let sealed = self
            .cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: plain,
                    aad: key.as_bytes(),
                },
            )
            .map_err(|_| failed("encryption failed"))?;
        let mut out = Vec::with_capacity(SEALED_PREFIX.len() + NONCE_LEN + sealed.len());
        out.extend_from_slice(SEALED_PREFIX);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    /// Whether `value` is sealed (rather than a plain record).
    #[must_use]
    pub fn is_sealed(value: &[u8]) -> bool {
        value.starts_with(SEALED_PREFIX)
    }

    /// Decrypts a value [`seal`](Self::seal) wrote for `key`: `None` when it was written
    /// with another encryption key, for another store key, or was altered.
    #[must_use]
    pub fn open(&self, key: &str, value: &[u8]) -> Option<Vec<u8>> {
        let rest = value.strip_prefix(SEALED_PREFIX)?;
        if rest.len() < NONCE_LEN {
            return None;
        }
        let (nonce, sealed) = rest.split_at(NONCE_LEN);
        let nonce = Nonce::<Aes256Gcm>::try_from(nonce).ok()?;
        self.cipher
            .decrypt(
                &nonce,
                Payload {
                    msg: sealed,
                    aad: key.as_bytes(),
                },
            )
            .ok()
    }
}

impl fmt::Debug for EncryptionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("EncryptionKey([redacted])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_only_with_the_same_key_for_the_same_redis_key() {
        let key = EncryptionKey::from_bytes([1; 32]);
        let sealed = key.seal("d365:token:a", b"{\"secret\":1}").unwrap();
        assert!(EncryptionKey::is_sealed(&sealed));
        assert!(!sealed.windows(6).any(|w| w == b"secret"));
        assert_eq!(
            key.open("d365:token:a", &sealed).as_deref(),
            Some(&b"{\"secret\":1}"[..])
        );
        assert_eq!(key.open("d365:token:b", &sealed), None, "another Redis key");
        let other = EncryptionKey::from_bytes([2; 32]);
        assert_eq!(other.open("d365:token:a", &sealed), None, "another key");
        let mut altered = sealed.clone();
        *altered.last_mut().unwrap() ^= 1;
        assert_eq!(key.open("d365:token:a", &altered), None, "altered");
        assert_eq!(key.open("d365:token:a", b"{}"), None, "not sealed");
        assert_eq!(key.open("d365:token:a", SEALED_PREFIX), None, "truncated");
    }

    #[test]
    fn every_write_has_its_own_nonce() {
        let key = EncryptionKey::from_bytes([1; 32]);
        assert_ne!(
            key.seal("k", b"same").unwrap(),
            key.seal("k", b"same").unwrap()
        );
    }

    #[test]
    fn generated_keys_round_trip_through_base64() {
        use secrecy::ExposeSecret as _;
        let key = EncryptionKey::generate().unwrap();
        let again = EncryptionKey::from_base64(key.to_base64().expose_secret()).unwrap();
        let sealed = key.seal("k", b"x").unwrap();
        assert_eq!(again.open("k", &sealed).as_deref(), Some(&b"x"[..]));
        assert_ne!(
            EncryptionKey::generate()
                .unwrap()
                .to_base64()
                .expose_secret(),
            key.to_base64().expose_secret()
        );
    }

    #[test]
    fn base64_keys_in_either_alphabet_with_or_without_padding() {
        let bytes = [0xfb_u8; 32];
        let key = EncryptionKey::from_bytes(bytes);
        let sealed = key.seal("k", b"x").unwrap();
        use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
        for text in [
            STANDARD.encode(bytes),
            URL_SAFE_NO_PAD.encode(bytes),
            format!("  {}\n", STANDARD.encode(bytes)),
        ] {
            let again = EncryptionKey::from_base64(&text).unwrap();
            assert_eq!(
                again.open("k", &sealed).as_deref(),
                Some(&b"x"[..]),
                "{text}"
            );
        }
        for bad in ["", "not base64!", &STANDARD.encode([1_u8; 16])] {
            let error = EncryptionKey::from_base64(bad).unwrap_err().to_string();
            assert!(bad.is_empty() || !error.contains(bad), "{error}");
        }
    }
}
