//! [`AccessToken`]: a token with its expiry and what it was issued for, cheap to clone
//! and never shown by `Debug`. A token that no HTTP header can carry is refused when it is
//! built ([`UnsendableToken`]), so [`AccessToken::authorization_header`] cannot fail.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use secrecy::{ExposeSecret, SecretString};

use crate::resource::Resource;

/// An access token with the facts a cache and a caller need about it.
///
/// Cloning is an `Arc` clone: the token cache hands out clones on every hit. `Debug`
/// shows everything but the token and the refresh token.
///
/// # Examples
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use d365_auth_core::{AccessToken, Resource};
///
/// let token = AccessToken::builder(
///     "eyJ0eXAi...".into(),
///     SystemTime::now() + Duration::from_secs(3600),
///     Resource::parse("https://contoso.crm.dynamics.com")?,
/// )
/// .build()?;
/// assert!(!format!("{token:?}").contains("eyJ0eXAi"));
/// assert_eq!(token.token_type(), "Bearer");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct AccessToken {
    inner: Arc<Inner>,
}

struct Inner {
    secret: SecretString,
    /// `{token_type} {secret}`, checked and built once, marked sensitive.
    header: http::HeaderValue,
    token_type: String,
    expires_on: SystemTime,
    refresh_on: Option<SystemTime>,
    resource: Resource,
    scope: Option<String>,
    refresh_token: Option<SecretString>,
}

impl AccessToken {
    /// Starts a token from its value, its expiry and the resource it was issued for.
    pub fn builder(
        secret: SecretString,
        expires_on: SystemTime,
        resource: Resource,
    ) -> AccessTokenBuilder {
        AccessTokenBuilder {
            secret,
            token_type: "Bearer".to_owned(),
            expires_on,
            refresh_on: None,
            resource,
            scope: None,
            refresh_token: None,
        }
    }

    /// The token itself. Expose it only to put it on the wire.
    #[must_use]
    pub fn secret(&self) -> &SecretString {
        &self.inner.secret
    }

    /// The token type, normally `Bearer`.
    #[must_use]
    pub fn token_type(&self) -> &str {
        &self.inner.token_type
    }

    /// When the token stops being accepted.
    #[must_use]
    pub fn expires_on(&self) -> SystemTime {
        self.inner.expires_on
    }

    /// When the identity provider asked clients to renew it (Entra's `refresh_in`).
    #[must_use]
    pub fn refresh_on(&self) -> Option<SystemTime> {
        self.inner.refresh_on
    }

    /// The resource the token was issued for.
    #[must_use]
    pub fn resource(&self) -> &Resource {
        &self.inner.resource
    }

    /// The scopes granted, when the identity provider listed them.
    #[must_use]
    pub fn scope(&self) -> Option<&str> {
        self.inner.scope.as_deref()
    }

    /// The refresh token that came with it, if the grant issues them.
    #[must_use]
    pub fn refresh_token(&self) -> Option<&SecretString> {
        self.inner.refresh_token.as_ref()
    }

    /// Whether the token has expired at `now`.
    #[must_use]
    pub fn is_expired_at(&self, now: SystemTime) -> bool {
        now >= self.inner.expires_on
    }

    /// How long the token remains valid after `now` (zero once expired).
    #[must_use]
    pub fn remaining_at(&self, now: SystemTime) -> Duration {
        self.inner
            .expires_on
            .duration_since(now)
            .unwrap_or_default()
    }

    /// The `Authorization` header value (`Bearer …`), marked sensitive so that `http` and
    /// `reqwest` keep it out of their `Debug` output. Checked when the token was built:
    /// this never fails.
    #[must_use]
    pub fn authorization_header(&self) -> http::HeaderValue {
        self.inner.header.clone()
    }

    /// Whether two values hold the same token (the same secret).
    #[must_use]
    pub fn same_token(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
            || self.inner.secret.expose_secret() == other.inner.secret.expose_secret()
    }
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessToken")
            .field("token", &"[redacted]")
            .field("token_type", &self.inner.token_type)
            .field("expires_on", &self.inner.expires_on)
            .field("refresh_on", &self.inner.refresh_on)
            .field("resource", &self.inner.resource)
            .field("scope", &self.inner.scope)
            .field(
                "refresh_token",
                &self.inner.refresh_token.as_ref().map(|_| "[redacted]"),
            )
            .finish()
    }
}

/// Builds an [`AccessToken`]; see [`AccessToken::builder`].
#[must_use]
pub struct AccessTokenBuilder {
    secret: SecretString,
    token_type: String,
    expires_on: SystemTime,
    refresh_on: Option<SystemTime>,
    resource: Resource,
    scope: Option<String>,
    refresh_token: Option<SecretString>,
}

impl AccessTokenBuilder {
    /// The token type (`Bearer` unless set).
    pub fn token_type(mut self, token_type: impl Into<String>) -> Self {
        self.token_type = token_type.into();
        self
    }

    /// When to renew the token ahead of its expiry.
    pub fn refresh_on(mut self, refresh_on: SystemTime) -> Self {
        self.refresh_on = Some(refresh_on);
        self
    }

    /// The scopes granted.
    pub fn scope(mut self, scope: impl Into<String>) -> Self {
        self.scope = Some(scope.into());
        self
    }

    /// The refresh token issued with it.
    pub fn refresh_token(mut self, refresh_token: SecretString) -> Self {
        self.refresh_token = Some(refresh_token);
        self
    }

    /// The token, with its `Authorization` header checked and built.
    ///
    /// # Errors
    ///
    /// [`UnsendableToken`] when the token or its type is empty or holds anything but
    /// visible ASCII (a line break, a space, a control character, a non-ASCII byte): no
    /// HTTP header can carry it, and a bearer token never holds one. Callers name where
    /// the token came from (a token endpoint, a callback, a store) in their own error.
    pub fn build(self) -> Result<AccessToken, UnsendableToken> {
        check_header_text(&self.token_type, "token type")?;
        check_header_text(self.secret.expose_secret(), "token")?;
        let mut header = http::HeaderValue::try_from(format!(
            "{} {}",
            self.token_type,
            self.secret.expose_secret()
        ))
        .map_err(|_| UnsendableToken {
            what: "a byte a header refuses",
            position: 0,
        })?;
        header.set_sensitive(true);
        Ok(AccessToken {
            inner: Arc::new(Inner {
                secret: self.secret,
                header,
                token_type: self.token_type,
                expires_on: self.expires_on,
                refresh_on: self.refresh_on,
                resource: self.resource,
                scope: self.scope,
                refresh_token: self.refresh_token,
            }),
        })
    }
}

/// Why a token cannot be sent in an `Authorization` header. Its `Display` completes "an
/// access token that …" and never shows the token.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("holds {what} at byte {position}, which no HTTP header can carry")]
pub struct UnsendableToken {
    what: &'static str,
    position: usize,
}

/// Refuses empty text and anything but visible ASCII, saying what was found and where.
fn check_header_text(text: &str, part: &'static str) -> Result<(), UnsendableToken> {
    if text.is_empty() {
        return Err(UnsendableToken {
            what: if part == "token" {
                "nothing (an empty token)"
            } else {
                "nothing (an empty token type)"
            },
            position: 0,
        });
    }
    match text.bytes().position(|byte| !byte.is_ascii_graphic()) {
        None => Ok(()),
        Some(position) => Err(UnsendableToken {
            what: match text.as_bytes()[position] {
                b'\n' | b'\r' => "a line break",
                b' ' | b'\t' => "white space",
                byte if byte.is_ascii_control() => "a control character",
                _ => "a non-ASCII character",
            },
            position,
        }),
    }
}

impl fmt::Debug for AccessTokenBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessTokenBuilder").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(secret: &str) -> AccessToken {
        AccessToken::builder(
            secret.into(),
            SystemTime::now() + Duration::from_secs(60),
            Resource::parse("https://contoso.crm.dynamics.com").unwrap(),
        )
        .refresh_token("refresh-secret".into())
        .build()
        .unwrap()
    }

    #[test]
    fn debug_hides_both_tokens() {
        let text = format!("{:?}", token("access-secret"));
        assert!(
            !text.contains("access-secret") && !text.contains("refresh-secret"),
            "{text}"
        );
        assert!(text.contains("[redacted]"));
    }

    #[test]
    fn authorization_header_is_sensitive() {
        let header = token("abc").authorization_header();
        assert!(header.is_sensitive());
        assert_eq!(header.to_str().unwrap(), "Bearer abc");
        assert!(!format!("{header:?}").contains("abc"));
    }

    #[test]
    fn tokens_no_header_can_carry_are_refused_when_built() {
        let build = |secret: &str| {
            AccessToken::builder(
                secret.into(),
                SystemTime::now(),
                Resource::parse("https://contoso.crm.dynamics.com").unwrap(),
            )
            .build()
        };
        for (secret, what) in [
            ("eyJ0.eyJ1.sig\n", "a line break at byte 13"),
            ("abc\r\nX-Injected: 1", "a line break at byte 3"),
            ("two words", "white space at byte 3"),
            ("tab\there", "white space"),
            ("nul\0", "a control character"),
            ("caf\u{e9}", "a non-ASCII character"),
            ("", "an empty token"),
        ] {
            let error = build(secret).unwrap_err().to_string();
            assert!(error.contains(what), "{secret:?}: {error}");
            assert!(secret.is_empty() || !error.contains(secret), "{error}");
        }
        assert!(build("eyJ0eXAi.eyJhdWQi.c2ln-_~+/=").is_ok());
    }

    #[test]
    fn same_token_compares_values() {
        assert!(token("a").same_token(&token("a")));
        assert!(!token("a").same_token(&token("b")));
    }
}
