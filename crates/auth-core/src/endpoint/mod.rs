//! The token-endpoint client every grant shares: it posts a [`TokenForm`] (any
//! `grant_type`, with its client authentication and target), never follows a redirect,
//! applies a timeout and a size cap, and reads the answer into a [`TokenResponse`] or a
//! typed [`AuthError`].

mod form;
mod response;
mod transport;

use std::fmt;
use std::time::{Duration, Instant};

use base64::Engine as _;
use secrecy::ExposeSecret;
use tracing::Instrument as _;

pub use form::{ClientCredential, TokenForm};
pub use response::{TokenResponse, classify_error_response};

use crate::authority::TokenEndpoint;
use crate::error::AuthError;
use response::parse_success;
use transport::Transport;

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// Posts token requests for any grant and reads the answers.
///
/// Cheap to clone (it holds a `reqwest::Client`). The default HTTP client follows no
/// redirects (a token request carries credentials: it must reach the endpoint named),
/// uses rustls, and every request has a timeout (30 seconds unless set).
///
/// # Examples
///
/// ```no_run
/// use d365_auth_core::grant::{ClientCredential, ClientKind, TokenEndpointClient, TokenForm};
/// use d365_auth_core::{Authority, EndpointVersion, Tenant, TokenRequest};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let client = TokenEndpointClient::new();
/// let endpoint = Authority::public_cloud(Tenant::parse("contoso.onmicrosoft.com")?).token_endpoint(EndpointVersion::V2);
/// let request = TokenRequest::for_url("https://contoso.crm.dynamics.com")?;
/// let secret = std::env::var("CLIENT_SECRET")?.into();
/// let form = TokenForm::new("client_credentials", "00000000-0000-0000-0000-000000000001")
///     .credential(ClientCredential::SecretPost(&secret))
///     .target(&request, ClientKind::Confidential, &endpoint);
/// let token = client.send(&endpoint, &form).await?.into_access_token(&request)?;
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
            let outcome = match token_request(endpoint, form) {
                Ok(request) => match transport.receive(request).await {
                    Ok(received) => parse_success(endpoint.url(), &received.body, received.at),
                    Err(error) => Err(error),
                },
                Err(error) => Err(error),
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
    /// use d365_auth_core::{Authority, Tenant};
    /// use d365_auth_core::grant::{TokenEndpointClient};
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
}

impl TokenEndpointClient {
    /// GETs a token from an identity endpoint that issues one on a GET — a managed identity
    /// endpoint (`…/metadata/identity/oauth2/token?api-version=…&resource=…`), a local token
    /// service — sending `headers` (mark a secret one with
    /// [`HeaderValue::set_sensitive`](http::HeaderValue::set_sensitive): it is then never
    /// shown). The rules of [`send`](Self::send) apply: no redirect is followed, the
    /// timeout holds, the answer is capped, and every answer but a 200 token response is a
    /// typed [`AuthError`] — read the status of an identity error with
    /// [`IdentityError::status`](crate::grant::IdentityError::status) to decide on a retry.
    ///
    /// # Errors
    ///
    /// As for [`send`](Self::send).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use d365_auth_core::grant::TokenEndpointClient;
    /// use http::{HeaderName, HeaderValue};
    ///
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// let url = url::Url::parse(
    ///     "http://127.0.0.1:50342/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://contoso.crm.dynamics.com/",
    /// )?;
    /// let answer = TokenEndpointClient::new()
    ///     .get_token(&url, &[(HeaderName::from_static("metadata"), HeaderValue::from_static("true"))])
    ///     .await?;
    /// println!("valid until {:?}", answer.expiry());
    /// # Ok(()) }
    /// ```
    pub async fn get_token(
        &self,
        url: &url::Url,
        headers: &[(http::HeaderName, http::HeaderValue)],
    ) -> Result<TokenResponse, AuthError> {
        let started = Instant::now();
        let span = tracing::debug_span!(
            "identity_token_request",
            endpoint = %url.as_str().split('?').next().unwrap_or_default()
        );
        async {
            let mut request = http::Request::builder()
                .method(http::Method::GET)
                .uri(url.as_str())
                .header(http::header::ACCEPT, "application/json");
            for (name, value) in headers {
                request = request.header(name, value.clone());
            }
            let transport = Transport {
                http: &self.http,
                endpoint: url,
                timeout: self.timeout,
            };
            let outcome = match request.body(Vec::new()) {
                Ok(request) => match transport.receive(request).await {
                    Ok(received) => parse_success(url, &received.body, received.at),
                    Err(error) => Err(error),
                },
                Err(_) => Err(bad_form("the token request could not be built")),
            };
            let elapsed_ms = started.elapsed().as_millis();
            match &outcome {
                Ok(_) => tracing::debug!(elapsed_ms, "identity endpoint answered with a token"),
                Err(error) => tracing::debug!(elapsed_ms, %error, "identity endpoint refused"),
            }
            outcome
        }
        .instrument(span)
        .await
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

/// The token request for `form`, built outside any `async` block (the serializer is not
/// `Send`): `grant_type`, the client's authentication (RFC 6749 §2.3.1, RFC 7523), the
/// scopes or `resource`, then the grant's parameters.
fn token_request(
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
/// user agent naming d365; the platform's root certificates are read on the first TLS
/// handshake (see [`http_client_builder`](crate::grant::http_client_builder)).
///
/// # Errors
///
/// When the HTTP client cannot be built.
pub fn default_http_client() -> Result<reqwest::Client, AuthError> {
    crate::tls::http_client_builder()
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
