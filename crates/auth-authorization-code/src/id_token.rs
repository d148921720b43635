//! The OpenID Connect ID token that comes back with the access token: its `nonce` must be
//! this sign-in's, so an ID token from another sign-in cannot be slipped in. It is read
//! without verifying the signature: it came straight from the token endpoint over TLS, and
//! nothing here trusts its other claims.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use d365_auth_core::AuthError;
use secrecy::{ExposeSecret as _, SecretString};

/// The most an ID token may take: real ones are a few KiB.
const MAX_LEN: usize = 64 * 1024;

/// Checks the `nonce` claim of `id_token` against `expected`. A token without one is
/// accepted (AD FS and older servers do not always echo it), with a debug log.
pub(crate) fn check_nonce(id_token: &SecretString, expected: &str) -> Result<(), AuthError> {
    let claims = claims(id_token)?;
    match claims.get("nonce").and_then(serde_json::Value::as_str) {
        Some(nonce) if nonce == expected => Ok(()),
        Some(_) => Err(AuthError::credential(
            "the ID token that came back belongs to another sign-in (its nonce does not match); sign in again",
            None,
        )),
        None => {
            tracing::debug!("the ID token has no nonce claim; the server did not echo it");
            Ok(())
        }
    }
}

/// The claims of a JWT, unverified.
fn claims(token: &SecretString) -> Result<serde_json::Map<String, serde_json::Value>, AuthError> {
    let unreadable =
        || AuthError::credential("the ID token that came back is not a readable JWT", None);
    let text = token.expose_secret();
    if text.len() > MAX_LEN {
        return Err(unreadable());
    }
    let payload = text.split('.').nth(1).ok_or_else(unreadable)?;
    let bytes = URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .map_err(|_| unreadable())?;
    serde_json::from_slice(&bytes).map_err(|_| unreadable())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(claims: &str) -> SecretString {
        SecretString::from(format!(
            "eyJhbGciOiJub25lIn0.{}.sig",
            URL_SAFE_NO_PAD.encode(claims)
        ))
    }

    #[test]
    fn the_nonce_must_be_this_sign_ins() {
        assert!(check_nonce(&jwt(r#"{"nonce":"n1"}"#), "n1").is_ok());
        assert!(check_nonce(&jwt(r#"{"nonce":"n2"}"#), "n1").is_err());
        assert!(check_nonce(&jwt(r#"{"sub":"x"}"#), "n1").is_ok());
        assert!(check_nonce(&SecretString::from("not a jwt"), "n1").is_err());
    }
}
