//! [`TokenForm`]: what a grant sends to the token endpoint, described once for every
//! grant: the grant and its parameters, the client and how it proves itself, and the
//! API the token is for.

use std::borrow::Cow;
use std::fmt;

use secrecy::SecretString;

use crate::authority::{TargetParameter, TokenEndpoint};
use crate::resource::{ClientKind, TokenRequest};

/// How the client authenticates to the token endpoint.
#[derive(Clone, Copy)]
#[non_exhaustive]
pub enum ClientCredential<'a> {
    /// A public client: only `client_id` is sent.
    None,
    /// `client_secret_post`: the secret in the form body (Entra's usual form).
    SecretPost(&'a SecretString),
    /// `client_secret_basic`: the id and secret, each form-encoded as RFC 6749 §2.3.1
    /// requires, in an HTTP Basic `Authorization` header.
    SecretBasic(&'a SecretString),
    /// `private_key_jwt` or a federated credential: a signed JWT as
    /// `client_assertion`, with `client_assertion_type` set to the JWT bearer type.
    Assertion(&'a SecretString),
}

impl ClientCredential<'_> {
    /// The method's name, for logs.
    #[must_use]
    pub fn method(&self) -> &'static str {
        match self {
            Self::None => "none",
            Self::SecretPost(_) => "client_secret_post",
            Self::SecretBasic(_) => "client_secret_basic",
            Self::Assertion(_) => "private_key_jwt",
        }
    }
}

impl fmt::Debug for ClientCredential<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.method())
    }
}

/// A token request as a grant describes it — its `grant_type` and parameters, the client
/// and how it proves itself, the API the token is for;
/// [`TokenEndpointClient::send`](crate::grant::TokenEndpointClient::send) puts it on the
/// wire. auth-core knows no grant: each grant names its own `grant_type` and parameters.
///
/// # Examples
///
/// ```
/// use d365_auth_core::grant::{ClientCredential, ClientKind, TokenForm};
/// use d365_auth_core::{Authority, EndpointVersion, Tenant, TokenRequest};
///
/// let endpoint = Authority::public_cloud(Tenant::Organizations).token_endpoint(EndpointVersion::V2);
/// let request = TokenRequest::for_url("https://contoso.crm.dynamics.com")?;
/// let secret = "s3cr3t".into();
/// let form = TokenForm::new("client_credentials", "00000000-0000-0000-0000-000000000001")
///     .credential(ClientCredential::SecretPost(&secret))
///     .target(&request, ClientKind::Confidential, &endpoint);
/// assert_eq!(form.grant_type(), "client_credentials");
/// assert!(!format!("{form:?}").contains("s3cr3t"));
/// # Ok::<(), d365_auth_core::ConfigError>(())
/// ```
#[must_use]
pub struct TokenForm<'a> {
    pub(crate) grant_type: &'a str,
    pub(crate) client_id: &'a str,
    pub(crate) credential: ClientCredential<'a>,
    pub(crate) scopes: Vec<String>,
    pub(crate) resource: Option<String>,
    pub(crate) params: Vec<(&'a str, Cow<'a, str>)>,
    pub(crate) secret_params: Vec<(&'a str, &'a SecretString)>,
}

impl<'a> TokenForm<'a> {
    /// A request with `grant_type` (`client_credentials`, `password`,
    /// `urn:ietf:params:oauth:grant-type:device_code`, ...) for `client_id`; add the grant's
    /// parameters with [`param`](Self::param) and [`secret_param`](Self::secret_param).
    pub fn new(grant_type: &'a str, client_id: &'a str) -> Self {
        Self {
            grant_type,
            client_id,
            credential: ClientCredential::None,
            scopes: Vec::new(),
            resource: None,
            params: Vec::new(),
            secret_params: Vec::new(),
        }
    }

    /// `grant_type=refresh_token`: redeems a refresh token (RFC 6749 §6), which every grant
    /// that issues one shares.
    pub fn refresh_token(client_id: &'a str, refresh_token: &'a SecretString) -> Self {
        Self::new("refresh_token", client_id).secret_param("refresh_token", refresh_token)
    }

    /// How the client authenticates (none, the default, for a public client).
    pub fn credential(mut self, credential: ClientCredential<'a>) -> Self {
        self.credential = credential;
        self
    }

    /// Names the API in the form `endpoint` expects: `scope={org}/.default` or
    /// `{org}/user_impersonation` (by `client`) for scope endpoints, `resource={org}/`
    /// for v1 and AD FS.
    pub fn target(
        mut self,
        request: &TokenRequest,
        client: ClientKind,
        endpoint: &TokenEndpoint,
    ) -> Self {
        match endpoint.target() {
            TargetParameter::Scope => self.scopes.insert(0, request.resource().v2_scope(client)),
            TargetParameter::Resource => self.resource = Some(request.resource().v1_resource()),
        }
        self
    }

    /// Adds a scope such as `offline_access`. Sent only to endpoints that take `scope`:
    /// v1 and AD FS have no such scopes (and issue refresh tokens to user grants anyway).
    pub fn scope(mut self, scope: impl Into<String>) -> Self {
        self.scopes.push(scope.into());
        self
    }

    /// Adds a form parameter that is not secret.
    pub fn param(mut self, name: &'a str, value: impl Into<Cow<'a, str>>) -> Self {
        self.params.push((name, value.into()));
        self
    }

    /// Adds a secret form parameter (a device code, a user assertion).
    pub fn secret_param(mut self, name: &'a str, value: &'a SecretString) -> Self {
        self.secret_params.push((name, value));
        self
    }

    /// The `grant_type` value.
    #[must_use]
    pub fn grant_type(&self) -> &str {
        self.grant_type
    }

    /// The scopes to send to `endpoint` (none for resource endpoints).
    pub(crate) fn scopes_for(&self, endpoint: &TokenEndpoint) -> &[String] {
        match endpoint.target() {
            TargetParameter::Scope => &self.scopes,
            TargetParameter::Resource => &[],
        }
    }
}

impl fmt::Debug for TokenForm<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut debug = f.debug_struct("TokenForm");
        debug
            .field("grant_type", &self.grant_type)
            .field("client_id", &self.client_id)
            .field("credential", &self.credential)
            .field("scopes", &self.scopes)
            .field("resource", &self.resource);
        debug
            .field(
                "params",
                &self
                    .params
                    .iter()
                    .map(|(name, _)| *name)
                    .collect::<Vec<_>>(),
            )
            .field(
                "secret_params",
                &self
                    .secret_params
                    .iter()
                    .map(|(name, _)| *name)
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}
