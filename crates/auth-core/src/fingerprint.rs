//! [`credential_fingerprint`]: a one-way digest of a credential for a provider's
//! [`cache_key`](crate::TokenProvider::cache_key), so that a token obtained with one
//! credential is never served to a provider holding another — after a secret is rotated, or
//! when the one configured is simply wrong.

use sha2::{Digest as _, Sha256};

/// Hex characters kept of the SHA-256 digest: 128 bits, far beyond any accidental
/// collision, and short enough for a store key.
const KEPT_HEX_CHARS: usize = 32;

/// A fingerprint of a credential, safe to put in a cache key and a store key: the first
/// 128 bits of SHA-256 over a domain-separated encoding of `kind` (what the credential is,
/// such as `"client_secret"`) and `credential` (its bytes), in hex.
///
/// It is one-way, but it is a fast hash: use it for high-entropy credentials (client
/// secrets, certificate digests, key material), never for a person's password, whose
/// fingerprint in a token file would invite an offline guessing attack. Delegated grants
/// key their tokens by the user name instead.
///
/// # Examples
///
/// ```
/// use d365_auth_core::grant::credential_fingerprint;
///
/// let old = credential_fingerprint("client_secret", b"first secret");
/// let new = credential_fingerprint("client_secret", b"rotated secret");
/// assert_ne!(old, new);
/// assert_eq!(old.len(), 32);
/// assert!(!old.contains("first"));
/// ```
#[must_use]
pub fn credential_fingerprint(kind: &str, credential: &[u8]) -> String {
    let mut digest = Sha256::new();
    digest.update(b"d365 credential fingerprint v1\0");
    digest.update((kind.len() as u64).to_be_bytes());
    digest.update(kind.as_bytes());
    digest.update((credential.len() as u64).to_be_bytes());
    digest.update(credential);
    digest
        .finalize()
        .iter()
        .flat_map(|byte| [byte >> 4, byte & 0x0f])
        .take(KEPT_HEX_CHARS)
        .map(|nibble| char::from_digit(u32::from(nibble), 16).unwrap_or('0'))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_separate_kinds_and_values_and_never_show_the_value() {
        let a = credential_fingerprint("client_secret", b"abc");
        assert_eq!(a, credential_fingerprint("client_secret", b"abc"));
        assert_ne!(a, credential_fingerprint("client_secret", b"abd"));
        assert_ne!(a, credential_fingerprint("certificate", b"abc"));
        // The length prefix keeps ("ab", "c") and ("a", "bc") apart.
        assert_ne!(
            credential_fingerprint("ab", b"c"),
            credential_fingerprint("a", b"bc")
        );
        assert!(a.bytes().all(|b| b.is_ascii_hexdigit()));
        assert!(!a.contains("abc"));
    }
}
