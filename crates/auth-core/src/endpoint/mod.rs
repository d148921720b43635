//! The token-endpoint client every grant shares: it posts a [`TokenForm`] (through the
//! `oauth2` crate for the grants it knows), never follows a redirect, applies a timeout,
//! and reads the answer into a [`TokenResponse`] or a typed [`AuthError`].

mod form;
mod response;
mod transport;

use std::fmt;
use std::time::{Duration, Instant};

use base64::Engine as _;
use oauth2::{AuthType, ClientId, ClientSecret, EndpointNotSet, EndpointSet, Scope, TokenUrl};
use secrecy::ExposeSecret;
use tracing::Instrument as _;

pub use form::{ClientCredential, TokenForm};
pub use response::{TokenResponse, classify_error_response};

use crate::authority::TokenEndpoint;
use crate::error::AuthError;
use form::FormGrant;
use response::{WireTokenResponse, parse_success, unreadable_token};
use transport::{Transport, TransportError};

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

type OAuthClient = oauth2::Client<
    oauth2::basic::BasicErrorResponse,
    WireTokenResponse,
    oauth2::basic::BasicTokenIntrospectionResponse,
    oauth2::StandardRevocableToken,
    oauth2::basic::BasicRevocationErrorResponse,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointSet,
>;

/// Adds scopes, `resource`, the assertion and extra parameters to any `oauth2` request type.
macro_rules! with_extras {
    ($request:expr, $endpoint:expr, $form:expr) => {{
        let mut request = $request;
        for scope in $form.scopes_for($endpoint) {
            request = request.add_scope(Scope::new(scope.clone()));
        }
        if let Some(resource) = &$form.resource {
            request = request.add_extra_param("resource", resource.as_str());
        }
        if let ClientCredential::Assertion(assertion) = $form.credential {
            request = request
                .add_extra_param("client_assertion_type", JWT_BEARER)
                .add_extra_param("client_assertion", assertion.expose_secret());
        }
        for (name, value) in &$form.params {
            request = request.add_extra_param(*name, value.as_ref());
        }
        for (name, value) in &$form.secret_params {
            request = request.add_extra_param(*name, value.expose_secret());
        }
        request
    }};
}

/// Posts token requests for any grant and reads the answers.
///
/// Cheap to clone (it holds a `reqwest::Client`). The default HTTP client follows no
/// redirects (a token request carries credentials: it must reach the endpoint named),
/// uses rustls, and every request has a timeout (30 seconds unless set).
///
/// # Examples
///
/// ```no_run
/// use d365_auth_core::{Authority, ClientCredential, ClientKind, EndpointVersion, Tenant, TokenEndpointClient, TokenForm, TokenRequest};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let client = TokenEndpointClient::new();
/// let endpoint = Authority::public_cloud(Tenant::parse("contoso.onmicrosoft.com")?).token_endpoint(EndpointVersion::V2);
/// let request = TokenRequest::for_url("https://contoso.crm.dynamics.com")?;
/// let secret = std::env::var("CLIENT_SECRET")?.into();
/// let form = TokenForm::client_credentials("00000000-0000-0000-0000-000000000001")
///     .credential(ClientCredential::SecretPost(&secret))
///     .target(&request, ClientKind::Confidential, &endpoint);
/// let token = client.send(&endpoint, &form).await?.into_access_token(&request);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct TokenEndpointClient {
    http: reqwest::Client,
    timeout: Duration,
}

impl TokenEndpointClient {
    /// A client with the default HTTP client and timeout.
    ///
    /// # Panics
    ///
    /// If the TLS backend cannot be initialized (no usable system configuration), as
    /// `reqwest::Client::new` does.
    #[must_use]
    pub fn new() -> Self {
        Self::builder().build()
    }

    /// Configures a client.
    pub fn builder() -> TokenEndpointClientBuilder {
        TokenEndpointClientBuilder {
            http: None,
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// The timeout applied to each request.
    #[must_use]
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Sends `form` to `endpoint` and reads the token response.
    ///
    /// # Errors
    ///
    /// [`AuthError::Identity`] when the identity provider refuses, with its AADSTS code
    /// and a hint; [`AuthError::Throttled`], [`AuthError::Redirected`],
    /// [`AuthError::UnexpectedResponse`], [`AuthError::Timeout`] or
    /// [`AuthError::Network`] otherwise.
    pub async fn send(
        &self,
        endpoint: &TokenEndpoint,
        form: &TokenForm<'_>,
    ) -> Result<TokenResponse, AuthError> {
        let started = Instant::now();
        let span = tracing::debug_span!(
            "token_request",
            endpoint = %endpoint,
            grant_type = form.grant_type(),
            client_id = form.client_id,
            client_auth = form.credential.method(),
        );
        async {
            let transport = Transport {
                http: &self.http,
                endpoint: endpoint.url(),
                timeout: self.timeout,
            };
            let outcome = match form.grant {
                FormGrant::Other(_) => Self::send_other(&transport, endpoint, form).await,
                _ => Self::send_standard(&transport, endpoint, form).await,
            };
            let elapsed_ms = started.elapsed().as_millis();
            match &outcome {
                Ok(_) => tracing::debug!(elapsed_ms, "token endpoint answered with a token"),
                Err(error) => tracing::debug!(elapsed_ms, aadsts = error.aadsts(), %error, "token endpoint refused"),
            }
            outcome
        }
        .instrument(span)
        .await
    }

    /// Posts `form` to another endpoint of the identity provider than the token endpoint,
    /// such as a device authorization endpoint (`…/oauth2/v2.0/devicecode`), with the rules
    /// of [`send`](Self::send): no redirect is followed, the timeout applies, and every
    /// answer but a 200 with a JSON body becomes a typed [`AuthError`] (an Entra error with
    /// its AADSTS code and hint, throttling, an HTML page, ...). Returns the JSON body.
    ///
    /// The form's values are sent as they are and may appear in `Debug` of the request, so
    /// they must not be secrets: secrets go to the token endpoint in a [`TokenForm`]. The
    /// body of the answer may hold one (a device code): it is never logged, and never
    /// quoted in an error.
    ///
    /// # Errors
    ///
    /// As for [`send`](Self::send); [`AuthError::UnexpectedResponse`] when the 200 body is
    /// not JSON.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use d365_auth_core::{Authority, Tenant, TokenEndpointClient};
    ///
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// let authority = Authority::public_cloud(Tenant::Organizations);
    /// let url = authority.tenant_endpoint("oauth2/v2.0/devicecode").expect("Entra has one");
    /// let answer = TokenEndpointClient::new()
    ///     .post_form(&url, &[
    ///         ("client_id", "51f81489-12ee-4a9e-aaae-a2591f45987d"),
    ///         ("scope", "https://contoso.crm.dynamics.com/user_impersonation offline_access"),
    ///     ])
    ///     .await?;
    /// println!("{}", answer["message"]);
    /// # Ok(()) }
    /// ```
    pub async fn post_form(
        &self,
        url: &url::Url,
        form: &[(&str, &str)],
    ) -> Result<serde_json::Value, AuthError> {
        let started = Instant::now();
        let span = tracing::debug_span!("identity_request", endpoint = %url);
        async {
            let request = form_request(url, form)?;
            let transport = Transport {
                http: &self.http,
                endpoint: url,
                timeout: self.timeout,
            };
            let outcome = transport.receive(request).await.and_then(|received| {
                serde_json::from_slice::<serde_json::Value>(&received.body).map_err(|error| {
                    AuthError::UnexpectedResponse {
                        endpoint: url.clone(),
                        status: http::StatusCode::OK,
                        detail: if error.is_eof() {
                            "a truncated JSON body".to_owned()
                        } else {
                            "a body that is not valid JSON".to_owned()
                        },
                    }
                })
            });
            let elapsed_ms = started.elapsed().as_millis();
            match &outcome {
                Ok(_) => tracing::debug!(elapsed_ms, "identity provider answered"),
                Err(error) => tracing::debug!(elapsed_ms, aadsts = error.aadsts(), %error, "identity provider refused"),
            }
            outcome
        }
        .instrument(span)
        .await
    }

    /// The grants `oauth2` knows: it builds the request, we read the answer.
    async fn send_standard(
        transport: &Transport<'_>,
        endpoint: &TokenEndpoint,
        form: &TokenForm<'_>,
    ) -> Result<TokenResponse, AuthError> {
        let client = oauth_client(endpoint, form);
        let received_at = std::time::SystemTime::now();
        let wire = match form.grant {
            FormGrant::ClientCredentials => {
                let request = client.exchange_client_credentials();
                let request = with_extras!(request, endpoint, form);
                request.request_async(transport).await
            }
            FormGrant::Password { username, password } => {
                let username = oauth2::ResourceOwnerUsername::new(username.to_owned());
                let password =
                    oauth2::ResourceOwnerPassword::new(password.expose_secret().to_owned());
                let request = client.exchange_password(&username, &password);
                let request = with_extras!(request, endpoint, form);
                request.request_async(transport).await
            }
            FormGrant::RefreshToken(refresh_token) => {
                let refresh_token =
                    oauth2::RefreshToken::new(refresh_token.expose_secret().to_owned());
                let request = client.exchange_refresh_token(&refresh_token);
                let request = with_extras!(request, endpoint, form);
                request.request_async(transport).await
            }
            FormGrant::Other(_) => unreachable!("other grants are sent by send_other"),
        };
        wire.map(|wire| TokenResponse::from_wire(wire, received_at))
            .map_err(|error| from_oauth_error(endpoint, error))
    }

    /// Grants `oauth2` has no request type for (device code, on-behalf-of, ...): the same
    /// form rules, built here.
    async fn send_other(
        transport: &Transport<'_>,
        endpoint: &TokenEndpoint,
        form: &TokenForm<'_>,
    ) -> Result<TokenResponse, AuthError> {
        let request = other_grant_request(endpoint, form)?;
        let received = transport.receive(request).await?;
        parse_success(endpoint.url(), &received.body, received.at)
    }
}

/// A form POST asking for JSON, built outside any `async` block: the serializer is not
/// `Send`, and the futures of this client must be.
fn form_request(
    url: &url::Url,
    form: &[(&str, &str)],
) -> Result<http::Request<Vec<u8>>, AuthError> {
    let mut body = url::form_urlencoded::Serializer::new(String::new());
    for (name, value) in form {
        body.append_pair(name, value);
    }
    http::Request::builder()
        .method(http::Method::POST)
        .uri(url.as_str())
        .header(http::header::ACCEPT, "application/json")
        .header(
            http::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        )
        .body(body.finish().into_bytes())
        .map_err(|_| bad_form("the request could not be built"))
}

/// Builds the request for a grant `oauth2` does not know, with the same rules it applies.
fn other_grant_request(
    endpoint: &TokenEndpoint,
    form: &TokenForm<'_>,
) -> Result<http::Request<Vec<u8>>, AuthError> {
    let mut body = url::form_urlencoded::Serializer::new(String::new());
    body.append_pair("grant_type", form.grant_type());
    let mut request = http::Request::builder()
        .method(http::Method::POST)
        .uri(endpoint.url().as_str())
        .header(http::header::ACCEPT, "application/json")
        .header(
            http::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        );
    match form.credential {
        ClientCredential::SecretBasic(secret) => {
            let encode = |text: &str| {
                url::form_urlencoded::byte_serialize(text.as_bytes()).collect::<String>()
            };
            let pair = format!(
                "{}:{}",
                encode(form.client_id),
                encode(secret.expose_secret())
            );
            let mut value = http::HeaderValue::try_from(format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(pair)
            ))
            .map_err(|_| bad_form("the client id or secret cannot be sent in a header"))?;
            value.set_sensitive(true);
            request = request.header(http::header::AUTHORIZATION, value);
        }
        ClientCredential::SecretPost(secret) => {
            body.append_pair("client_id", form.client_id);
            body.append_pair("client_secret", secret.expose_secret());
        }
        ClientCredential::Assertion(assertion) => {
            body.append_pair("client_id", form.client_id);
            body.append_pair("client_assertion_type", JWT_BEARER);
            body.append_pair("client_assertion", assertion.expose_secret());
        }
        ClientCredential::None => {
            body.append_pair("client_id", form.client_id);
        }
    }
    let scopes = form.scopes_for(endpoint);
    if !scopes.is_empty() {
        body.append_pair("scope", &scopes.join(" "));
    }
    if let Some(resource) = &form.resource {
        body.append_pair("resource", resource);
    }
    for (name, value) in &form.params {
        body.append_pair(name, value);
    }
    for (name, value) in &form.secret_params {
        body.append_pair(name, value.expose_secret());
    }
    request
        .body(body.finish().into_bytes())
        .map_err(|_| bad_form("the token request could not be built"))
}

fn oauth_client(endpoint: &TokenEndpoint, form: &TokenForm<'_>) -> OAuthClient {
    let mut client = oauth2::Client::new(ClientId::new(form.client_id.to_owned()));
    match form.credential {
        ClientCredential::SecretPost(secret) => {
            client = client
                .set_client_secret(ClientSecret::new(secret.expose_secret().to_owned()))
                .set_auth_type(AuthType::RequestBody);
        }
        ClientCredential::SecretBasic(secret) => {
            client = client
                .set_client_secret(ClientSecret::new(secret.expose_secret().to_owned()))
                .set_auth_type(AuthType::BasicAuth);
        }
        ClientCredential::Assertion(_) | ClientCredential::None => {
            client = client.set_auth_type(AuthType::RequestBody);
        }
    }
    client.set_token_uri(TokenUrl::from_url(endpoint.url().clone()))
}

fn from_oauth_error(
    endpoint: &TokenEndpoint,
    error: oauth2::RequestTokenError<TransportError, oauth2::basic::BasicErrorResponse>,
) -> AuthError {
    let url = endpoint.url();
    match error {
        oauth2::RequestTokenError::Request(TransportError(error)) => error,
        oauth2::RequestTokenError::Parse(error, _body) => {
            let field = error.path().to_string();
            unreadable_token(url, error.inner(), Some(&field))
        }
        // The transport hands oauth2 only 200 responses, so these two mean a JSON body
        // oauth2 would not accept; neither message quotes the body.
        oauth2::RequestTokenError::ServerResponse(_) | oauth2::RequestTokenError::Other(_) => {
            AuthError::UnexpectedResponse {
                endpoint: url.clone(),
                status: http::StatusCode::OK,
                detail: "a response the OAuth client could not read".to_owned(),
            }
        }
    }
}

fn bad_form(message: &str) -> AuthError {
    AuthError::credential(message, None)
}

impl Default for TokenEndpointClient {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for TokenEndpointClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenEndpointClient")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// Configures a [`TokenEndpointClient`]; see [`TokenEndpointClient::builder`].
#[derive(Debug)]
#[must_use]
pub struct TokenEndpointClientBuilder {
    http: Option<reqwest::Client>,
    timeout: Duration,
}

impl TokenEndpointClientBuilder {
    /// Uses your HTTP client (for a proxy, extra root certificates, ...). Build it with
    /// `redirect(reqwest::redirect::Policy::none())`: a client that follows redirects
    /// would send credentials on to the new location before d365 could refuse the answer.
    pub fn http_client(mut self, http: reqwest::Client) -> Self {
        self.http = Some(http);
        self
    }

    /// The timeout for each request (default 30 seconds).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The client.
    ///
    /// # Panics
    ///
    /// If no HTTP client was given and the default one cannot be built (the TLS backend
    /// failed to initialize).
    pub fn build(self) -> TokenEndpointClient {
        let http = self.http.unwrap_or_else(|| {
            default_http_client()
                .expect("the default HTTP client (rustls) could not be initialized")
        });
        TokenEndpointClient {
            http,
            timeout: self.timeout,
        }
    }
}

/// The HTTP client token requests use by default: no redirects, a connect timeout, and a
/// user agent naming d365.
///
/// # Errors
///
/// When the TLS backend cannot be initialized.
pub fn default_http_client() -> Result<reqwest::Client, AuthError> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(10))
        .user_agent(concat!("d365/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|error| {
            AuthError::Config(crate::error::ConfigError::Invalid {
                setting: "HTTP client",
                problem: format!("the default client could not be built: {error}"),
                fix: "pass your own reqwest::Client to the builder".to_owned(),
            })
        })
}
