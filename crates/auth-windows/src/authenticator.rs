//! [`WindowsSignIn`]: sends each request on a connection of its own, answering the server's
//! `401` with the NTLM handshake on that same connection, and keeps authenticated
//! connections for the next requests (the server remembers the identity per connection).

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use d365_auth_core::{
    AuthError, ConfigError, ConnectionAuthenticator, Resource, SendLimits, async_trait,
};
use http::{HeaderValue, StatusCode};
use secrecy::SecretString;

use crate::challenge::{challenge_token, offered_scheme};
use crate::ntlm::NtlmClient;

/// Connections kept for later requests: enough for the client's parallel requests.
const MAX_IDLE_CONNECTIONS: usize = 8;
/// How many times a handshake the HTTP client split over two sockets is tried again.
const MAX_HANDSHAKES: usize = 3;

/// One HTTP/1.1 client keeping one socket, and how many sockets it has opened: a
/// handshake holds only if no socket was opened between NEGOTIATE and AUTHENTICATE.
struct Connection {
    client: reqwest::Client,
    opened: Arc<AtomicUsize>,
}

impl Connection {
    fn opened(&self) -> usize {
        self.opened.load(Ordering::SeqCst)
    }
}

/// A Windows account: the domain, the user name and the password.
pub(crate) struct Account {
    domain: Option<String>,
    user: String,
    password: SecretString,
}

impl Account {
    /// `user` may carry the domain (`CONTOSO\alice`), which wins over `domain`, or be a UPN.
    pub(crate) fn new(
        domain: Option<&str>,
        user: &str,
        password: SecretString,
    ) -> Result<Self, ConfigError> {
        let (domain, user) = match user.split_once('\\') {
            Some((domain, user)) => (Some(domain.to_owned()), user.to_owned()),
            None => (
                domain
                    .map(str::to_owned)
                    .filter(|domain| !domain.trim().is_empty()),
                user.to_owned(),
            ),
        };
        if user.is_empty() || user.contains(['\\', '/']) {
            return Err(ConfigError::Invalid {
                setting: "Username",
                problem: "it is not a Windows user name".to_owned(),
                fix: "write the user as alice with Domain=CONTOSO, as CONTOSO\\alice, or as alice@contoso.local".to_owned(),
            });
        }
        Ok(Self {
            domain,
            user,
            password,
        })
    }

    pub(crate) fn user(&self) -> &str {
        &self.user
    }

    pub(crate) fn domain(&self) -> Option<&str> {
        self.domain.as_deref()
    }

    pub(crate) fn password(&self) -> &SecretString {
        &self.password
    }

    /// `CONTOSO\alice` (or the UPN alone).
    fn shown(&self) -> String {
        match &self.domain {
            Some(domain) => format!("{domain}\\{}", self.user),
            None => self.user.clone(),
        }
    }
}

/// Windows sign-in (NTLM) to an on-premises organization, as a
/// [`ConnectionAuthenticator`]: build it with [`WindowsSignIn::builder`], hand it to
/// `d365_webapi::Client::builder_with_authenticator`.
///
/// - Each request goes on a connection of its own (one HTTP/1.1 client with one socket),
///   first as it is: a connection this authenticator already signed in is remembered by
///   the server. A `401` offering `NTLM` or `Negotiate` starts the handshake on that same
///   connection: NEGOTIATE, the server's CHALLENGE, AUTHENTICATE with the request. A
///   second `401` means the server refused the account: an error, never a loop.
/// - Credentials go to the organization's origin only; redirects are not followed.
/// - `Debug` shows the account, never the password; errors never quote it.
pub struct WindowsSignIn {
    organization: Resource,
    account: Account,
    connect_timeout: Duration,
    idle: Mutex<Vec<Connection>>,
}

impl WindowsSignIn {
    pub(crate) fn new(organization: Resource, account: Account, connect_timeout: Duration) -> Self {
        Self {
            organization,
            account,
            connect_timeout,
            idle: Mutex::new(Vec::new()),
        }
    }

    /// A connection: an idle authenticated one, or a new HTTP/1.1 client that keeps a
    /// single socket (NTLM's legs must share it) and counts the sockets it opens.
    fn checkout(&self) -> Result<Connection, AuthError> {
        if let Some(connection) = self
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop()
        {
            return Ok(connection);
        }
        self.new_connection()
    }

    /// A new client with no socket yet.
    fn new_connection(&self) -> Result<Connection, AuthError> {
        let opened = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&opened);
        let client = reqwest::Client::builder()
            .connector_layer(tower::util::MapRequestLayer::new(move |target| {
                counter.fetch_add(1, Ordering::SeqCst);
                target
            }))
            .http1_only()
            .pool_max_idle_per_host(1)
            .pool_idle_timeout(Duration::from_secs(60))
            .connect_timeout(self.connect_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|error| {
                AuthError::credential(
                    "the Windows sign-in HTTP client cannot be built",
                    Some(Box::new(error)),
                )
            })?;
        Ok(Connection { client, opened })
    }

    fn checkin(&self, connection: Connection) {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        if idle.len() < MAX_IDLE_CONNECTIONS {
            idle.push(connection);
        }
    }

    /// The request on `connection` (signed in already, if the server remembers it), and
    /// when the server asks, the handshake on a new connection — one that has opened no
    /// socket yet, so that exactly one socket carries NEGOTIATE and AUTHENTICATE, or the
    /// client noticed it did not. Returns the answer and the connection to keep.
    async fn exchange(
        &self,
        connection: Connection,
        request: &http::Request<Vec<u8>>,
        limits: SendLimits,
    ) -> Result<(http::Response<Vec<u8>>, Connection), AuthError> {
        let first = send_once(&connection.client, request, None, limits).await?;
        if first.status() != StatusCode::UNAUTHORIZED {
            return Ok((first, connection));
        }
        let Some(scheme) = offered_scheme(first.headers()) else {
            // Not a Windows challenge (a Bearer one, say): the caller reads the 401.
            return Ok((first, connection));
        };
        drop(connection);
        let host = request.uri().host().unwrap_or_default().to_owned();
        for _ in 0..MAX_HANDSHAKES {
            let connection = self.new_connection()?;
            let mut ntlm =
                NtlmClient::new(&self.account, &host).map_err(|problem| self.failure(&problem))?;
            let negotiate = ntlm.negotiate().map_err(|problem| self.failure(&problem))?;
            let challenged = send_once(
                &connection.client,
                request,
                Some(authorization(scheme, &negotiate)?),
                limits,
            )
            .await?;
            if challenged.status() != StatusCode::UNAUTHORIZED {
                return Ok((challenged, connection));
            }
            let challenge = challenge_token(challenged.headers(), scheme)
                .map_err(|problem| self.failure(&problem))?;
            let answer = ntlm
                .authenticate(&challenge)
                .map_err(|problem| self.failure(&problem))?;
            let last = send_once(
                &connection.client,
                request,
                Some(authorization(scheme, &answer)?),
                limits,
            )
            .await?;
            if last.status() != StatusCode::UNAUTHORIZED {
                return Ok((last, connection));
            }
            if connection.opened() <= 1 {
                // Both legs on the one socket: the server refused the account.
                return Err(self.refused(scheme, ""));
            }
            // The pool may have opened a second socket while the first one was being
            // checked back in (under load), even if AUTHENTICATE went on the first: give
            // its check-in a turn before the next attempt.
            tracing::debug!("the NTLM handshake may have crossed two sockets; starting it again");
            tokio::task::yield_now().await;
        }
        // Every attempt ended with the server refusing AUTHENTICATE, on what may have been a
        // second socket each time: most often it is the account that is refused.
        Err(self.refused(
            scheme,
            &format!(
                " ({MAX_HANDSHAKES} attempts; if the password is right, a proxy between here and the server may not keep connections, which NTLM needs)"
            ),
        ))
    }

    /// The server refused the account's AUTHENTICATE.
    fn refused(&self, scheme: &str, detail: &str) -> AuthError {
        AuthError::credential(
            format!(
                "the server refused the Windows sign-in of {} ({scheme}){detail}: check the password and the domain (Domain=CONTOSO;Username=alice, or CONTOSO\\alice), and that the account may use Dynamics 365",
                self.account.shown()
            ),
            None,
        )
    }

    fn failure(&self, problem: &str) -> AuthError {
        AuthError::credential(
            format!("Windows sign-in of {}: {problem}", self.account.shown()),
            None,
        )
    }
}

/// `Authorization: {scheme} {base64}`.
fn authorization(scheme: &str, token: &[u8]) -> Result<HeaderValue, AuthError> {
    HeaderValue::from_str(&format!("{scheme} {}", STANDARD.encode(token))).map_err(|error| {
        AuthError::credential("an NTLM message cannot be a header", Some(Box::new(error)))
    })
}

/// One HTTP exchange on `connection`, the body read whole up to `limits.max_body`.
async fn send_once(
    connection: &reqwest::Client,
    request: &http::Request<Vec<u8>>,
    authorization: Option<HeaderValue>,
    limits: SendLimits,
) -> Result<http::Response<Vec<u8>>, AuthError> {
    let url = request.uri().to_string();
    let endpoint = url::Url::parse(&url).map_err(|error| {
        AuthError::credential(format!("{url} is not a URL"), Some(Box::new(error)))
    })?;
    let mut headers = request.headers().clone();
    headers.remove(http::header::AUTHORIZATION);
    if let Some(value) = authorization {
        headers.insert(http::header::AUTHORIZATION, value);
    }
    let mut response = connection
        .request(request.method().clone(), endpoint.clone())
        .headers(headers)
        .body(request.body().clone())
        .timeout(limits.timeout)
        .send()
        .await
        .map_err(|error| transport(&endpoint, error, limits.timeout))?;
    let status = response.status();
    let mut answer = http::Response::builder().status(status);
    if let Some(headers) = answer.headers_mut() {
        *headers = response.headers().clone();
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|error| transport(&endpoint, error, limits.timeout))?
    {
        if body.len() + chunk.len() > limits.max_body {
            return Err(AuthError::UnexpectedResponse {
                endpoint,
                status,
                detail: format!("an answer larger than {} bytes", limits.max_body),
            });
        }
        body.extend_from_slice(&chunk);
    }
    answer
        .body(body)
        .map_err(|error| AuthError::credential("the answer cannot be read", Some(Box::new(error))))
}

/// A transport failure, by what it means for the request: `Network` only when no
/// connection was made (nothing reached the server, so the caller may send again);
/// `Timeout` for no answer in time (the caller retries only what is safe to repeat);
/// anything else failed after the request may have reached the server, and is reported,
/// never retried, so that a write is not applied twice.
fn transport(endpoint: &url::Url, error: reqwest::Error, after: Duration) -> AuthError {
    if error.is_timeout() {
        AuthError::Timeout {
            endpoint: endpoint.clone(),
            after,
        }
    } else if error.is_connect() {
        AuthError::Network {
            endpoint: endpoint.clone(),
            source: std::sync::Arc::new(error.without_url()),
        }
    } else {
        AuthError::credential(
            format!(
                "the connection to {} failed before its answer ({}); the request may have been applied: check before sending it again",
                endpoint.host_str().unwrap_or("the organization"),
                error.without_url()
            ),
            None,
        )
    }
}

#[async_trait]
impl ConnectionAuthenticator for WindowsSignIn {
    fn scheme(&self) -> &'static str {
        "NTLM"
    }

    fn identity(&self) -> String {
        self.account.shown()
    }

    async fn send(
        &self,
        request: http::Request<Vec<u8>>,
        limits: SendLimits,
    ) -> Result<http::Response<Vec<u8>>, AuthError> {
        // Windows credentials go to the organization's origin and nowhere else.
        let origin_ok = url::Url::parse(&request.uri().to_string())
            .ok()
            .and_then(|url| Resource::parse(url.origin().ascii_serialization().as_str()).ok())
            .is_some_and(|origin| origin.as_str() == self.organization.as_str());
        if !origin_ok {
            return Err(AuthError::credential(
                format!(
                    "Windows sign-in refuses to send credentials to {}, which is not the organization {}",
                    request.uri().host().unwrap_or("(no host)"),
                    self.organization.as_str()
                ),
                None,
            ));
        }
        let connection = self.checkout()?;
        let outcome =
            tokio::time::timeout(limits.timeout, self.exchange(connection, &request, limits)).await;
        match outcome {
            Ok(Ok((answer, connection))) => {
                self.checkin(connection);
                Ok(answer)
            }
            Ok(Err(error)) => Err(error),
            Err(_) => Err(AuthError::Timeout {
                endpoint: url::Url::parse(&request.uri().to_string())
                    .unwrap_or_else(|_| url::Url::parse("http://invalid/").expect("a URL")),
                after: limits.timeout,
            }),
        }
    }
}

impl fmt::Debug for WindowsSignIn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WindowsSignIn")
            .field("organization", &self.organization.as_str())
            .field("account", &self.account.shown())
            .field("password", &"[redacted]")
            .finish_non_exhaustive()
    }
}
