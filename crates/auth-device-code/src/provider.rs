//! [`DeviceCode`]: the device code grant as a [`TokenProvider`], which signs a person in
//! once (through [`flow`](crate::flow)) and then renews with the refresh token it received.

use std::fmt;
use std::sync::Arc;

use d365_auth_core::grant::{
    ClientCredential, ClientKind, RefreshTokenRenewal, TokenEndpointClient,
};
use d365_auth_core::{
    AccessToken, AuthError, Authority, Grant, TokenEndpoint, TokenProvider, TokenRequest,
    async_trait,
};
use secrecy::SecretString;
use url::Url;

use crate::builder::DeviceCodeBuilder;
use crate::cancel::CancelHandle;
use crate::flow;
use crate::message::DeviceCodeMessage;

/// The callback that shows the person where to sign in.
pub(crate) type OnMessage = Arc<dyn Fn(&DeviceCodeMessage) + Send + Sync>;

/// The OAuth 2.0 device authorization grant (RFC 8628) against Microsoft Entra ID: the
/// person signs in in a browser — on any device, with MFA and Conditional Access — and
/// the tool gets a Dataverse token acting as them.
///
/// [`request_token`](TokenProvider::request_token) asks the device authorization endpoint
/// (`{authority}/oauth2/v2.0/devicecode`) for a code, hands the page and the code to your
/// callback ([`DeviceCodeMessage`]), then polls the token endpoint: every `interval`
/// seconds (5 unless the server says otherwise), 5 seconds more after each `slow_down`,
/// on `authorization_pending` again, until the person has signed in, declined
/// ([`ErrorKind::AuthorizationDeclined`](d365_auth_core::ErrorKind::AuthorizationDeclined)),
/// the code expired ([`ErrorKind::CodeExpired`](d365_auth_core::ErrorKind::CodeExpired)),
/// or you cancelled ([`CancelHandle`], or dropping the future:
/// [`ErrorKind::Cancelled`](d365_auth_core::ErrorKind::Cancelled)). Any other answer is the
/// classified [`AuthError`].
///
/// It asks for `offline_access` and keeps the refresh token on the
/// [`AccessToken`]: [`renew_token`](TokenProvider::renew_token), which a
/// [`TokenCache`](d365_auth_core::TokenCache) calls when a token is due, redeems it, and
/// shows a new code only when the refresh token is refused.
///
/// This is the grant for people when the password grant fails on MFA (AADSTS50076) or
/// federation. Cloning is cheap; clones share the HTTP client, the callback and the cancel
/// handle. `Debug` shows neither the client secret nor any code.
///
/// # Examples
///
/// ```no_run
/// use d365_auth_core::{TokenCache, TokenRequest};
/// use d365_auth_device_code::DeviceCode;
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let grant = DeviceCode::builder()
///     .tenant("contoso.onmicrosoft.com")
///     .client_id("51f81489-12ee-4a9e-aaae-a2591f45987d")
///     .on_message(|message| eprintln!("{message}"))
///     .build()?;
/// let cache = TokenCache::new(grant);
/// let token = cache.get(&TokenRequest::for_url("https://contoso.crm.dynamics.com")?).await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct DeviceCode {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) authority: Authority,
    pub(crate) endpoint: TokenEndpoint,
    pub(crate) device_endpoint: Url,
    pub(crate) client_id: String,
    pub(crate) client_secret: Option<SecretString>,
    /// Scopes beyond the organization's and `offline_access`.
    pub(crate) scopes: Vec<String>,
    pub(crate) on_message: OnMessage,
    pub(crate) cancel: CancelHandle,
    pub(crate) cache_partition: Option<String>,
    pub(crate) http: TokenEndpointClient,
}

impl Inner {
    pub(crate) fn client_kind(&self) -> ClientKind {
        if self.client_secret.is_some() {
            ClientKind::Confidential
        } else {
            ClientKind::Public
        }
    }

    pub(crate) fn credential(&self) -> ClientCredential<'_> {
        match &self.client_secret {
            Some(secret) => ClientCredential::SecretPost(secret),
            None => ClientCredential::None,
        }
    }
}

impl DeviceCode {
    /// Configures the grant; see [`DeviceCodeBuilder`].
    pub fn builder() -> DeviceCodeBuilder {
        DeviceCodeBuilder::default()
    }

    pub(crate) fn from_inner(inner: Inner) -> Self {
        Self {
            inner: Arc::new(inner),
        }
    }

    /// The authority tokens come from.
    #[must_use]
    pub fn authority(&self) -> &Authority {
        &self.inner.authority
    }

    /// The token endpoint the grant polls (`{authority}/oauth2/v2.0/token`).
    #[must_use]
    pub fn token_endpoint(&self) -> &TokenEndpoint {
        &self.inner.endpoint
    }

    /// The device authorization endpoint (`{authority}/oauth2/v2.0/devicecode`).
    #[must_use]
    pub fn device_authorization_endpoint(&self) -> &Url {
        &self.inner.device_endpoint
    }

    /// The application (client) id.
    #[must_use]
    pub fn client_id(&self) -> &str {
        &self.inner.client_id
    }

    /// Public without a client secret, confidential with one. It decides the scope:
    /// `{org}/user_impersonation` for a public client, `{org}/.default` for a confidential one.
    #[must_use]
    pub fn client_kind(&self) -> ClientKind {
        self.inner.client_kind()
    }

    /// The handle that cancels this grant's sign-ins in progress (the one given to the
    /// builder, or the grant's own).
    #[must_use]
    pub fn cancel_handle(&self) -> CancelHandle {
        self.inner.cancel.clone()
    }

    /// How this grant redeems its refresh tokens.
    fn renewal(&self) -> RefreshTokenRenewal<'_> {
        let inner = &*self.inner;
        RefreshTokenRenewal::new(&inner.http, &inner.endpoint, &inner.client_id)
            .credential(inner.credential())
            .scopes(&inner.scopes)
    }
}

#[async_trait]
impl TokenProvider for DeviceCode {
    /// Signs the person in: a new code, the callback, polling until they finish.
    async fn request_token(&self, request: &TokenRequest) -> Result<AccessToken, AuthError> {
        flow::sign_in(&self.inner, request).await
    }

    /// Redeems the refresh token `previous` carries; shows a new code only if there is none
    /// or it is refused.
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
        Grant::new(flow::GRANT_TYPE)
    }

    /// Endpoint, client, and the cache partition if one was given. The person is known
    /// only after sign-in, so grants without a partition share their tokens through a
    /// shared store (see [`DeviceCodeBuilder::cache_partition`]).
    fn cache_key(&self) -> String {
        let inner = &*self.inner;
        let mut key = format!(
            "{}|{}|{}",
            flow::GRANT_TYPE,
            inner.endpoint.url(),
            inner.client_id
        );
        if let Some(partition) = &inner.cache_partition {
            key.push('|');
            key.push_str(partition);
        }
        key
    }
}

impl fmt::Debug for DeviceCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = &*self.inner;
        f.debug_struct("DeviceCode")
            .field(
                "device_authorization_endpoint",
                &inner.device_endpoint.as_str(),
            )
            .field("token_endpoint", &inner.endpoint.url().as_str())
            .field("client_id", &inner.client_id)
            .field(
                "client_secret",
                &inner.client_secret.as_ref().map(|_| "[redacted]"),
            )
            .field("scopes", &inner.scopes)
            .field("cache_partition", &inner.cache_partition)
            .field("http", &inner.http)
            .finish_non_exhaustive()
    }
}
