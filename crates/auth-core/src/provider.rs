//! [`TokenProvider`]: the one trait every grant implements and every consumer calls.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;

use crate::error::AuthError;
use crate::resource::TokenRequest;
use crate::token::AccessToken;

/// Something that gets access tokens: a grant (client credentials, password, device
/// code, ...) or a wrapper around one, such as [`TokenCache`](crate::TokenCache).
///
/// Grants implement [`request_token`](TokenProvider::request_token) and do not cache:
/// wrap them in a [`TokenCache`](crate::TokenCache) for that. The trait is object safe;
/// consumers such as the Web API client hold an `Arc<dyn TokenProvider>`.
///
/// # Examples
///
/// A provider that hands out a token from somewhere else (a sidecar, a test):
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use d365_auth_core::{async_trait, AccessToken, AuthError, Grant, TokenProvider, TokenRequest};
///
/// #[derive(Debug)]
/// struct FromSidecar;
///
/// #[async_trait]
/// impl TokenProvider for FromSidecar {
///     async fn request_token(&self, request: &TokenRequest) -> Result<AccessToken, AuthError> {
///         let expires = SystemTime::now() + Duration::from_secs(300);
///         let token = AccessToken::builder("token-from-sidecar".into(), expires, request.resource().clone());
///         token.build().map_err(|problem| AuthError::credential(format!("the sidecar's token {problem}"), None))
///     }
///
///     fn grant(&self) -> Grant {
///         Grant::new("sidecar")
///     }
///
///     fn cache_key(&self) -> String {
///         "sidecar".to_owned()
///     }
/// }
/// ```
#[async_trait]
pub trait TokenProvider: Send + Sync + fmt::Debug {
    /// Asks the identity provider for a new token for `request`.
    ///
    /// # Errors
    ///
    /// [`AuthError`]: a configuration mistake, a refusal from the identity provider, or a
    /// transport failure.
    async fn request_token(&self, request: &TokenRequest) -> Result<AccessToken, AuthError>;

    /// Asks for a token to replace `previous`, which is expired, due for refresh, or was
    /// rejected by the resource. Grants that hold a refresh token use it here (the token
    /// carries it: [`AccessToken::refresh_token`]); the default asks for a new token.
    ///
    /// # Errors
    ///
    /// As for [`request_token`](TokenProvider::request_token).
    async fn renew_token(
        &self,
        request: &TokenRequest,
        previous: &AccessToken,
    ) -> Result<AccessToken, AuthError> {
        let _ = previous;
        self.request_token(request).await
    }

    /// The grant this provider uses, for logs and comparisons.
    fn grant(&self) -> Grant;

    /// Whose tokens this provider returns, and got with which credential: authority,
    /// tenant, client id, for delegated grants the user, and a
    /// [`credential_fingerprint`](crate::grant::credential_fingerprint) of the application's
    /// credential (a secret's digest, a certificate's thumbprint). Providers with equal keys
    /// are interchangeable, so a shared [`TokenStore`](crate::store::TokenStore) may hand one's
    /// token to the other: with the fingerprint in the key, a token obtained with a
    /// rotated or wrong secret is never served. Never include a secret itself.
    fn cache_key(&self) -> String;
}

/// An OAuth 2.0 grant, by its `grant_type` (`client_credentials`, `password`,
/// `urn:ietf:params:oauth:grant-type:device_code`, ...) or another name for flows that are
/// not a token-endpoint grant. auth-core names no grant but the refresh token every grant
/// shares: each grant crate says its own.
///
/// # Examples
///
/// ```
/// use d365_auth_core::Grant;
///
/// const MY_GRANT: Grant = Grant::new("urn:example:my-grant");
/// assert_eq!(MY_GRANT.to_string(), "urn:example:my-grant");
/// assert_ne!(MY_GRANT, Grant::REFRESH_TOKEN);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Grant(&'static str);

impl Grant {
    /// `refresh_token` (RFC 6749 §6).
    pub const REFRESH_TOKEN: Self = Self("refresh_token");

    /// The grant called `name`: its `grant_type` on the wire, or a name of its own.
    #[must_use]
    pub const fn new(name: &'static str) -> Self {
        Self(name)
    }

    /// Its name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        self.0
    }
}

impl fmt::Display for Grant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

#[async_trait]
impl<P: TokenProvider + ?Sized> TokenProvider for Arc<P> {
    async fn request_token(&self, request: &TokenRequest) -> Result<AccessToken, AuthError> {
        (**self).request_token(request).await
    }

    async fn renew_token(
        &self,
        request: &TokenRequest,
        previous: &AccessToken,
    ) -> Result<AccessToken, AuthError> {
        (**self).renew_token(request, previous).await
    }

    fn grant(&self) -> Grant {
        (**self).grant()
    }

    fn cache_key(&self) -> String {
        (**self).cache_key()
    }
}

#[async_trait]
impl<P: TokenProvider + ?Sized> TokenProvider for Box<P> {
    async fn request_token(&self, request: &TokenRequest) -> Result<AccessToken, AuthError> {
        (**self).request_token(request).await
    }

    async fn renew_token(
        &self,
        request: &TokenRequest,
        previous: &AccessToken,
    ) -> Result<AccessToken, AuthError> {
        (**self).renew_token(request, previous).await
    }

    fn grant(&self) -> Grant {
        (**self).grant()
    }

    fn cache_key(&self) -> String {
        (**self).cache_key()
    }
}
