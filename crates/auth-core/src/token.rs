//! [`AccessToken`]: a token with its expiry and what it was issued for, cheap to clone
//! and never shown by `Debug`.

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
/// .build();
/// assert!(!format!("{token:?}").contains("eyJ0eXAi"));
/// assert_eq!(token.token_type(), "Bearer");
/// # Ok::<(), d365_auth_core::ConfigError>(())
/// ```
#[derive(Clone)]
pub struct AccessToken {
    inner: Arc<Inner>,
}

struct Inner {
    secret: SecretString,
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
            inner: Inner {
                secret,
                token_type: "Bearer".to_owned(),
                expires_on,
                refresh_on: None,
                resource,
                scope: None,
                refresh_token: None,
            },
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

    /// The `Authorization` header value, marked sensitive so that `http` and `reqwest`
    /// keep it out of their `Debug` output.
    ///
    /// # Panics
    ///
    /// Never for tokens from an identity provider; a token value with bytes that are not
    /// allowed in a header panics here rather than being sent.
    #[must_use]
    pub fn authorization_header(&self) -> http::HeaderValue {
        let mut value = http::HeaderValue::try_from(format!(
            "{} {}",
            self.inner.token_type,
            self.inner.secret.expose_secret()
        ))
        .expect("an access token contains only header-safe characters");
        value.set_sensitive(true);
        value
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
    inner: Inner,
}

impl AccessTokenBuilder {
    /// The token type (`Bearer` unless set).
    pub fn token_type(mut self, token_type: impl Into<String>) -> Self {
        self.inner.token_type = token_type.into();
        self
    }

    /// When to renew the token ahead of its expiry.
    pub fn refresh_on(mut self, refresh_on: SystemTime) -> Self {
        self.inner.refresh_on = Some(refresh_on);
        self
    }

    /// The scopes granted.
    pub fn scope(mut self, scope: impl Into<String>) -> Self {
        self.inner.scope = Some(scope.into());
        self
    }

    /// The refresh token issued with it.
    pub fn refresh_token(mut self, refresh_token: SecretString) -> Self {
        self.inner.refresh_token = Some(refresh_token);
        self
    }

    /// The token.
    pub fn build(self) -> AccessToken {
        AccessToken {
            inner: Arc::new(self.inner),
        }
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
    fn same_token_compares_values() {
        assert!(token("a").same_token(&token("a")));
        assert!(!token("a").same_token(&token("b")));
    }
}
