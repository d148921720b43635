//! The per-sign-in secrets of the grant: the PKCE verifier and its S256 challenge
//! (RFC 7636), and the random `state` and `nonce` that tie the browser's answer and the ID
//! token to this sign-in.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use d365_auth_core::AuthError;
#[cfg(test)]
use secrecy::ExposeSecret as _;
use secrecy::SecretString;
use sha2::{Digest as _, Sha256};

/// 32 random bytes: a 43-character verifier, the shortest RFC 7636 allows and what MSAL
/// sends; 256 bits is beyond guessing.
const VERIFIER_BYTES: usize = 32;

/// 16 random bytes for `state` and `nonce`.
const NONCE_BYTES: usize = 16;

/// The proof key of one sign-in: the verifier stays here until the code is redeemed; only
/// its challenge travels through the browser.
pub(crate) struct Pkce {
    pub(crate) verifier: SecretString,
    pub(crate) challenge: String,
}

impl Pkce {
    /// A fresh verifier and its S256 challenge.
    pub(crate) fn new() -> Result<Self, AuthError> {
        let verifier = random_text(VERIFIER_BYTES)?;
        let challenge = challenge_of(&verifier);
        Ok(Self {
            verifier: SecretString::from(verifier),
            challenge,
        })
    }
}

impl fmt::Debug for Pkce {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pkce")
            .field("verifier", &"[redacted]")
            .field("challenge", &self.challenge)
            .finish()
    }
}

/// The S256 challenge of `verifier`: base64url without padding of its SHA-256.
pub(crate) fn challenge_of(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// A random `state` or `nonce`.
pub(crate) fn random_nonce() -> Result<String, AuthError> {
    random_text(NONCE_BYTES)
}

/// `bytes` random bytes from the operating system, as base64url text.
fn random_text(bytes: usize) -> Result<String, AuthError> {
    let mut buffer = vec![0_u8; bytes];
    getrandom::fill(&mut buffer).map_err(|error| {
        AuthError::credential(
            format!("the operating system gave no random bytes for the sign-in ({error})"),
            None,
        )
    })?;
    Ok(URL_SAFE_NO_PAD.encode(buffer))
}

/// Whether `verifier` is one RFC 7636 allows: 43 to 128 of `[A-Za-z0-9-._~]`.
#[cfg(test)]
fn is_valid_verifier(verifier: &SecretString) -> bool {
    let text = verifier.expose_secret();
    (43..=128).contains(&text.len())
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_challenge_is_rfc_7636s_s256_of_the_verifier() {
        // RFC 7636 appendix B.
        assert_eq!(
            challenge_of("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn verifiers_are_valid_and_fresh() {
        let first = Pkce::new().unwrap();
        let second = Pkce::new().unwrap();
        assert!(is_valid_verifier(&first.verifier));
        assert_ne!(
            first.verifier.expose_secret(),
            second.verifier.expose_secret()
        );
        assert_eq!(
            first.challenge,
            challenge_of(first.verifier.expose_secret())
        );
        assert!(!format!("{first:?}").contains(first.verifier.expose_secret()));
        assert_ne!(random_nonce().unwrap(), random_nonce().unwrap());
    }
}
