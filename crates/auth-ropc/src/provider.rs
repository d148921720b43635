//! [`UsernamePassword`]: the password grant as a [`TokenProvider`], which signs in with the
//! password once and then renews with the refresh token it received.

use std::fmt;
use std::sync::Arc;

use d365_auth_core::grant::{
    ClientCredential, ClientKind, OFFLINE_ACCESS, RefreshTokenRenewal, TokenEndpointClient,
    TokenForm, credential_fingerprint,
};
use d365_auth_core::{
    AccessToken, AuthError, Authority, Grant, TokenEndpoint, TokenProvider, TokenRequest,
    async_trait,
};
use secrecy::{ExposeSecret as _, SecretString};

use crate::builder::UsernamePasswordBuilder;
use crate::realm::RealmCheck;

/// The grant on the wire (RFC 6749 §4.3).
const GRANT_TYPE: &str = "password";

/// The resource owner password credentials grant (`grant_type=password`): a user's name
/// and password exchanged for a token, by a public client or a confidential one (with its
/// client secret).
///
/// The password crosses the wire once per refresh-token lifetime, not once per access
/// token: tokens carry the refresh token Entra ID returns, and
/// [`renew_token`](TokenProvider::renew_token) (which [`TokenCache`](d365_auth_core::TokenCache)
/// calls when a token is due) redeems it, falling back to the password only when the
/// refresh token is refused.
///
/// Microsoft recommends against this grant: it fails for users with multi-factor
/// authentication, federated users and personal accounts. Prefer the client credentials
/// grant for unattended jobs and the device code grant for people.
///
/// Cloning is cheap; clones share the HTTP client and the user realm answer. `Debug`
/// shows neither the password nor the client secret.
///
/// # Examples
///
/// ```no_run
/// use d365_auth_core::{TokenCache, TokenRequest};
/// use d365_auth_ropc::UsernamePassword;
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let grant = UsernamePassword::builder()
///     .tenant("contoso.onmicrosoft.com")
///     .client_id("51f81489-12ee-4a9e-aaae-a2591f45987d")
///     .username("ana@contoso.com")
///     .password(std::env::var("D365_PASSWORD")?.into())
///     .build()?;
/// let cache = TokenCache::new(grant);
/// let token = cache.get(&TokenRequest::for_url("https://contoso.crm.dynamics.com")?).await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct UsernamePassword {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    /// `None` when the grant was given a bare token endpoint.
    pub(crate) authority: Option<Authority>,
    pub(crate) endpoint: TokenEndpoint,
    pub(crate) client_id: String,
    pub(crate) client_secret: Option<SecretString>,
    pub(crate) username: String,
    pub(crate) password: SecretString,
    pub(crate) realm: Option<RealmCheck>,
    pub(crate) http: TokenEndpointClient,
}

impl UsernamePassword {
    /// Configures the grant; see [`UsernamePasswordBuilder`].
    pub fn builder() -> UsernamePasswordBuilder {
        UsernamePasswordBuilder::default()
    }

    pub(crate) fn from_inner(inner: Inner) -> Self {
        Self {
            inner: Arc::new(inner),
        }
    }

    /// The authority tokens come from (`None` when built with a bare token endpoint).
    #[must_use]
    pub fn authority(&self) -> Option<&Authority> {
        self.inner.authority.as_ref()
    }

    /// The token endpoint requests go to.
    #[must_use]
    pub fn token_endpoint(&self) -> &TokenEndpoint {
        &self.inner.endpoint
    }

    /// The application (client) id.
    #[must_use]
    pub fn client_id(&self) -> &str {
        &self.inner.client_id
    }

    /// The user name (UPN) that signs in.
    #[must_use]
    pub fn username(&self) -> &str {
        &self.inner.username
    }

    /// Public without a client secret, confidential with one. It decides the v2 scope:
    /// `{org}/user_impersonation` for a public client, `{org}/.default` for a confidential one.
    #[must_use]
    pub fn client_kind(&self) -> ClientKind {
        if self.inner.client_secret.is_some() {
            ClientKind::Confidential
        } else {
            ClientKind::Public
        }
    }

    /// Whether the user realm is checked before the password is sent.
    #[must_use]
    pub fn checks_user_realm(&self) -> bool {
        self.inner.realm.is_some()
    }

    fn credential(&self) -> ClientCredential<'_> {
        match &self.inner.client_secret {
            Some(secret) => ClientCredential::SecretPost(secret),
            None => ClientCredential::None,
        }
    }

    /// How this grant redeems its refresh tokens.
    fn renewal(&self) -> RefreshTokenRenewal<'_> {
        let inner = &*self.inner;
        RefreshTokenRenewal::new(&inner.http, &inner.endpoint, &inner.client_id)
            .credential(self.credential())
    }
}

#[async_trait]
impl TokenProvider for UsernamePassword {
    /// Signs in with the password (after the user realm check, if on).
    async fn request_token(&self, request: &TokenRequest) -> Result<AccessToken, AuthError> {
        let inner = &*self.inner;
        if let Some(realm) = &inner.realm {
            realm.check(&inner.username).await?;
        }
        tracing::debug!(
            username = %inner.username,
            client_id = %inner.client_id,
            resource = %request.resource(),
            "signing in with the user's password"
        );
        let form = TokenForm::new(GRANT_TYPE, &inner.client_id)
            .param("username", inner.username.as_str())
            .secret_param("password", &inner.password)
            .credential(self.credential())
            .target(request, self.client_kind(), &inner.endpoint)
            .scope(OFFLINE_ACCESS);
        inner
            .http
            .send(&inner.endpoint, &form)
            .await?
            .into_access_token(request)
    }

    /// Redeems the refresh token `previous` carries; signs in with the password only if
    /// there is none or it is refused.
    async fn renew_token(
        &self,
        request: &TokenRequest,
        previous: &AccessToken,
    ) -> Result<AccessToken, AuthError> {
        self.renewal()
            .renew(request, previous, || self.request_token(request))
            .await
    }

    fn grant(&self) -> Grant {
        Grant::new(GRANT_TYPE)
    }

    /// Endpoint, client and user: tokens of different users never share a key.
    fn cache_key(&self) -> String {
        // The user name says whose tokens these are. The password is deliberately not
        // fingerprinted: a fast hash of a person's password in a token file or a Redis key
        // would invite offline guessing. A confidential client's secret is, so a rotated
        // secret never gets the old token.
        let mut key = format!(
            "{GRANT_TYPE}|{}|{}|{}",
            self.inner.endpoint.url(),
            self.inner.client_id,
            self.inner.username.to_lowercase()
        );
        if let Some(secret) = &self.inner.client_secret {
            key.push('|');
            key.push_str(&credential_fingerprint(
                "client_secret",
                secret.expose_secret().as_bytes(),
            ));
        }
        key
    }
}

impl fmt::Debug for UsernamePassword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = &*self.inner;
        f.debug_struct("UsernamePassword")
            .field("endpoint", &inner.endpoint.url().as_str())
            .field("client_id", &inner.client_id)
            .field(
                "client_secret",
                &inner.client_secret.as_ref().map(|_| "[redacted]"),
            )
            .field("username", &inner.username)
            .field("password", &"[redacted]")
            .field("user_realm_check", &inner.realm)
            .field("http", &inner.http)
            .finish()
    }
}

/// Whether `error` is the refusal of a user federated to another identity provider,
/// found by the user realm check before the password was sent (a configuration error: the
/// grant, or the check, is what to change).
///
/// ```
/// use d365_auth_core::{AuthError, ConfigError};
///
/// let other = AuthError::Config(ConfigError::Missing { setting: "username", fix: String::new() });
/// assert!(!d365_auth_ropc::is_federated_user(&other));
/// ```
#[must_use]
pub fn is_federated_user(error: &AuthError) -> bool {
    matches!(
        error,
        AuthError::Config(d365_auth_core::ConfigError::Invalid { setting, .. })
            if *setting == crate::realm::REALM_SETTING
    )
}
