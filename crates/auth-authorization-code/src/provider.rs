//! [`AuthorizationCode`]: the browser sign-in as a [`TokenProvider`], which signs a person
//! in once (through [`flow`](crate::flow)) and then renews with the refresh token it
//! received.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use d365_auth_core::grant::{
    ClientCredential, ClientKind, RefreshTokenRenewal, TokenEndpointClient,
};
use d365_auth_core::{
    AccessToken, AuthError, Authority, Grant, TokenEndpoint, TokenProvider, TokenRequest,
    async_trait,
};
use secrecy::SecretString;
use url::Url;

use crate::authorize::Prompt;
use crate::browser::OnSignInUrl;
use crate::builder::AuthorizationCodeBuilder;
use crate::flow;

/// The OAuth 2.0 authorization code grant with PKCE (RFC 6749 §4.1, RFC 7636) for people:
/// they sign in in the system browser — with MFA, Conditional Access, a federated account —
/// and the program gets a Dataverse token acting as them.
///
/// [`request_token`](TokenProvider::request_token) listens on a loopback port
/// (`http://localhost:{port}/`, RFC 8252), opens the system browser on the authorize
/// endpoint with an S256 code challenge, a random `state` and `nonce`, and waits (5 minutes
/// unless set) for the browser to come back with the code; the page there tells the person
/// they are done. The code is redeemed with the verifier; the ID token's nonce must match.
/// Where no browser can open (an SSH session), the program's
/// [`on_sign_in_url`](AuthorizationCodeBuilder::on_sign_in_url) callback shows the address
/// instead.
///
/// It asks for `{org}/.default` with `offline_access openid profile` (Entra ID v2), or the
/// `resource` (AD FS 2019, v1), keeps the refresh token, and
/// [`renew_token`](TokenProvider::renew_token) redeems it: the browser opens again only
/// when the refresh token is refused.
///
/// # Examples
///
/// ```no_run
/// use d365_auth_authorization_code::AuthorizationCode;
/// use d365_auth_core::{TokenCache, TokenRequest};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let grant = AuthorizationCode::builder()
///     .tenant("contoso.onmicrosoft.com")
///     .client_id("04b07795-8ddb-461a-bbee-02f9e1bf7b46")
///     .on_sign_in_url(|sign_in| eprintln!("{sign_in}"))
///     .build()?;
/// let token = TokenCache::new(grant)
///     .get(&TokenRequest::for_url("https://contoso.crm.dynamics.com")?)
///     .await?;
/// # let _ = token;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct AuthorizationCode {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) authority: Option<Authority>,
    pub(crate) endpoint: TokenEndpoint,
    pub(crate) authorize_endpoint: Url,
    pub(crate) client_id: String,
    pub(crate) client_secret: Option<SecretString>,
    pub(crate) redirect_port: u16,
    pub(crate) redirect_path: String,
    pub(crate) login_hint: Option<String>,
    pub(crate) domain_hint: Option<String>,
    pub(crate) prompt: Option<Prompt>,
    /// Scopes beyond the organization's and the OpenID Connect ones.
    pub(crate) scopes: Vec<String>,
    pub(crate) open_browser: bool,
    pub(crate) on_sign_in_url: Option<OnSignInUrl>,
    pub(crate) sign_in_timeout: Duration,
    pub(crate) cache_partition: Option<String>,
    pub(crate) http: TokenEndpointClient,
}

impl Inner {
    pub(crate) fn credential(&self) -> ClientCredential<'_> {
        match &self.client_secret {
            Some(secret) => ClientCredential::SecretPost(secret),
            None => ClientCredential::None,
        }
    }
}

impl AuthorizationCode {
    /// Configures the grant; see [`AuthorizationCodeBuilder`].
    pub fn builder() -> AuthorizationCodeBuilder {
        AuthorizationCodeBuilder::default()
    }

    pub(crate) fn from_inner(inner: Inner) -> Self {
        Self {
            inner: Arc::new(inner),
        }
    }

    /// The authority tokens come from (`None` when only a token endpoint was given).
    #[must_use]
    pub fn authority(&self) -> Option<&Authority> {
        self.inner.authority.as_ref()
    }

    /// The token endpoint the code is redeemed at.
    #[must_use]
    pub fn token_endpoint(&self) -> &TokenEndpoint {
        &self.inner.endpoint
    }

    /// The authorize endpoint the browser opens.
    #[must_use]
    pub fn authorize_endpoint(&self) -> &Url {
        &self.inner.authorize_endpoint
    }

    /// The application (client) id.
    #[must_use]
    pub fn client_id(&self) -> &str {
        &self.inner.client_id
    }

    /// How this grant redeems its refresh tokens: with the scope form it signed in with.
    fn renewal(&self) -> RefreshTokenRenewal<'_> {
        let inner = &*self.inner;
        RefreshTokenRenewal::new(&inner.http, &inner.endpoint, &inner.client_id)
            .credential(inner.credential())
            .client_kind(ClientKind::Confidential)
            .scopes(&inner.scopes)
    }
}

#[async_trait]
impl TokenProvider for AuthorizationCode {
    /// Signs the person in in the browser.
    async fn request_token(&self, request: &TokenRequest) -> Result<AccessToken, AuthError> {
        flow::sign_in(&self.inner, request).await
    }

    /// Redeems the refresh token `previous` carries; opens the browser again only if there
    /// is none or it is refused.
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

    /// Endpoint, client, and the person expected (the login hint, or the cache
    /// partition): without either, every browser sign-in of one application and authority
    /// shares a key, and a shared store hands each the token of whoever signed in last.
    fn cache_key(&self) -> String {
        let inner = &*self.inner;
        let mut key = format!(
            "{}|{}|{}",
            flow::GRANT_TYPE,
            inner.endpoint.url(),
            inner.client_id
        );
        if let Some(person) = inner.cache_partition.as_ref().or(inner.login_hint.as_ref()) {
            key.push('|');
            key.push_str(&person.to_lowercase());
        }
        key
    }
}

impl fmt::Debug for AuthorizationCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = &*self.inner;
        f.debug_struct("AuthorizationCode")
            .field("authorize_endpoint", &inner.authorize_endpoint.as_str())
            .field("token_endpoint", &inner.endpoint.url().as_str())
            .field("client_id", &inner.client_id)
            .field(
                "client_secret",
                &inner.client_secret.as_ref().map(|_| "[redacted]"),
            )
            .field("redirect_port", &inner.redirect_port)
            .field("redirect_path", &inner.redirect_path)
            .field("login_hint", &inner.login_hint)
            .field("prompt", &inner.prompt)
            .field("scopes", &inner.scopes)
            .field("open_browser", &inner.open_browser)
            .field("sign_in_timeout", &inner.sign_in_timeout)
            .finish_non_exhaustive()
    }
}
