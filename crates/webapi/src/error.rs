//! [`WebApiError`]: what can go wrong calling Dataverse — no token, a refusal with
//! Dataverse's error code (and a hint for the common ones), throttling, a transport
//! failure, or a request that may have been applied before the connection broke.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use d365_auth_core::AuthError;
use http::{Method, StatusCode};

/// The kind of failure, to branch on (and for the CLI's exit codes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// No token could be obtained ([`WebApiError::Auth`]).
    Authentication,
    /// Dataverse refused the token (401), even after a fresh one.
    Unauthorized,
    /// The identity has no (enabled) user in this environment (0x80072560).
    NotAMember,
    /// The caller lacks a privilege or access right (403).
    Forbidden,
    /// The record, entity set, function or action does not exist (404).
    NotFound,
    /// A precondition failed: ETag mismatch, record exists on create-only, duplicate key (412).
    PreconditionFailed,
    /// Service protection limits (429) outlasted the retries.
    Throttled,
    /// The request is malformed or a business rule refused it (400).
    BadRequest,
    /// Dataverse failed (5xx) after the retries.
    ServerError,
    /// The connection failed before the request was sent, after the retries.
    Network,
    /// No answer within the timeout, after the retries.
    Timeout,
    /// The connection broke after the request was sent: it may have been applied, so it
    /// was not replayed.
    MaybeApplied,
    /// The arguments cannot make a valid request.
    InvalidInput,
    /// The answer is not what the Web API sends.
    UnexpectedResponse,
    /// The answer could not be read into the requested type.
    Decode,
    /// A URL (an argument, or a link in a server's answer) points outside the
    /// organization: the token was not sent there.
    ForeignUrl,
    /// A bound was reached: the page cap, a paging loop, the response size cap.
    LimitExceeded,
}

/// An error from the Web API client.
#[derive(Clone, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WebApiError {
    /// No token could be obtained, or (Windows sign-in) the connection could not be
    /// signed in.
    #[error("could not sign in to Dataverse: {0}")]
    Auth(#[from] AuthError),
    /// Dataverse answered with an error status.
    #[error(transparent)]
    Service(Box<ServiceError>),
    /// The connection broke after the request was sent; it was not replayed because it
    /// may have been applied.
    #[error(
        "{method} {url}: the connection failed after the request was sent, so it may have been applied and was not retried ({source}); check the record before trying again"
    )]
    MaybeApplied {
        /// The request method.
        method: Method,
        /// The request URL.
        url: String,
        /// The transport error.
        source: Arc<dyn std::error::Error + Send + Sync>,
    },
    /// The connection failed before the request was sent (after the retries).
    #[error(
        "could not reach Dataverse at {}: {source}; check the organization URL, DNS, a proxy (HTTPS_PROXY) and the firewall",
        host_of(url)
    )]
    Network {
        /// The request URL.
        url: String,
        /// The transport error.
        source: Arc<dyn std::error::Error + Send + Sync>,
    },
    /// No answer in time: an attempt's timeout, or the operation's deadline.
    #[error(
        "{method} {url}: no answer within {}{}; raise the timeout (`--timeout`) or narrow the request",
        describe_wait(Some(*after)),
        if *method == Method::GET { "" } else { " (a write may have been applied: check before repeating it)" }
    )]
    Timeout {
        /// The request method.
        method: Method,
        /// The request URL.
        url: String,
        /// The timeout.
        after: Duration,
    },
    /// The arguments cannot make a valid request.
    #[error("{0}")]
    InvalidInput(String),
    /// The answer is not what the Web API sends.
    #[error("{method} {url}: unexpected answer (HTTP {status}): {detail}")]
    UnexpectedResponse {
        /// The request method.
        method: Method,
        /// The request URL.
        url: String,
        /// The HTTP status.
        status: StatusCode,
        /// What was wrong.
        detail: String,
    },
    /// The body could not be read into the requested type.
    #[error("the response could not be read as the requested type: {0}")]
    Decode(String),
    /// A URL outside the organization: the request was not sent, so the token did not
    /// leave. Raised before any request is made, for arguments and for links in answers
    /// (`@odata.nextLink`, `OData-EntityId`) alike.
    #[error(
        "refused to send the organization's token to {found}: it is not the organization {organization} (scheme, host and port must all match); a link in the server's answer or an argument pointed elsewhere"
    )]
    ForeignUrl {
        /// The other origin, as `scheme://host[:port]`.
        found: String,
        /// The organization's origin.
        organization: String,
    },
    /// Paging did not end: the server repeated an earlier link or paging cookie, so
    /// following it would never stop.
    #[error(
        "paging stopped after {pages} pages: the server's next page link or paging cookie repeats an earlier one, so the query would never end"
    )]
    PagingLoop {
        /// Pages read before the repeat.
        pages: u32,
    },
    /// Paging reached the page cap ([`ClientBuilder::max_pages`](crate::ClientBuilder::max_pages)).
    #[error(
        "paging stopped at the cap of {max_pages} pages; raise it (`ClientBuilder::max_pages`, `d365 get --max-pages`) if the result really is this large, or narrow the query"
    )]
    TooManyPages {
        /// The cap.
        max_pages: u32,
    },
    /// Dataverse asked to wait (`Retry-After`) longer than the operation has left of its
    /// deadline, so it failed at once instead of waiting.
    #[error(
        "{source}. Dataverse asked to wait {}, longer than the {} left before this operation's deadline ({}): try again later, or allow more time (`RetrySettings::deadline`, `d365 --timeout`)",
        describe_wait(*asked), describe_wait(Some(*left)), describe_wait(Some(*deadline))
    )]
    WaitTooLong {
        /// How long Dataverse asked to wait; `None` when the value is beyond any clock.
        asked: Option<Duration>,
        /// What was left of the deadline.
        left: Duration,
        /// The operation's deadline.
        deadline: Duration,
        /// Dataverse's refusal.
        source: Box<ServiceError>,
    },
    /// The answer is larger than the client accepts
    /// ([`ClientBuilder::max_response_size`](crate::ClientBuilder::max_response_size)).
    #[error(
        "{method} {url}: the answer is larger than {limit} bytes, the most this client reads; narrow the query (fewer columns, a smaller page) or raise the cap"
    )]
    ResponseTooLarge {
        /// The request method.
        method: Method,
        /// The request URL.
        url: String,
        /// The cap in bytes.
        limit: usize,
    },
    /// A `$batch` of more than [`MAX_BATCH_OPERATIONS`](crate::MAX_BATCH_OPERATIONS)
    /// operations was sent as several batches, and one after the first failed as a whole
    /// (the network, a token, throttling beyond the retries): the operations answered
    /// before it were applied and their answers are kept here; none after it was sent.
    #[error(
        "the $batch of {total} operations was sent as batches of at most 1000 operations, and batch {failed_batch} failed after {} operations had been answered (and applied where they succeeded); nothing after it was sent: {source}",
        answered.len()
    )]
    BatchInterrupted {
        /// The answers of the batches sent before the failure, in order.
        answered: Vec<crate::BatchResponse>,
        /// How many operations the whole batch held.
        total: usize,
        /// The 1-based number of the batch that failed.
        failed_batch: usize,
        /// Why it failed.
        source: Box<WebApiError>,
    },
    /// The server speaks a Web API version older than a feature needs (an on-premises
    /// server).
    #[error(
        "{feature} needs Web API {needs} or later, and this organization speaks {speaks}; upgrade the server, or do without it"
    )]
    VersionTooOld {
        /// What was asked for.
        feature: &'static str,
        /// The version it needs (`v9.0`).
        needs: String,
        /// The version the client speaks (`v8.2`).
        speaks: String,
    },
}

/// `host[:port] (url)` for a message about reaching a host.
fn host_of(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(parsed) => match (parsed.host_str(), parsed.port()) {
            (Some(host), Some(port)) => format!("{host}:{port} ({url})"),
            (Some(host), None) => format!("{host} ({url})"),
            _ => url.to_owned(),
        },
        Err(_) => url.to_owned(),
    }
}

/// `1.5 s`, `3 min 20 s`, or "forever" for a wait no clock can hold.
fn describe_wait(wait: Option<Duration>) -> String {
    let Some(wait) = wait else {
        return "longer than any clock can count".to_owned();
    };
    let seconds = wait.as_secs();
    if seconds >= 3600 * 24 * 365 {
        format!("{} years", seconds / (3600 * 24 * 365))
    } else if seconds >= 120 {
        format!("{} min {} s", seconds / 60, seconds % 60)
    } else {
        format!("{:.1} s", wait.as_secs_f64())
    }
}

impl WebApiError {
    /// The kind of failure.
    #[must_use]
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Auth(_) => ErrorKind::Authentication,
            Self::Service(error) => error.kind(),
            Self::MaybeApplied { .. } => ErrorKind::MaybeApplied,
            Self::Network { .. } => ErrorKind::Network,
            Self::Timeout { .. } => ErrorKind::Timeout,
            Self::InvalidInput(_) | Self::VersionTooOld { .. } => ErrorKind::InvalidInput,
            Self::UnexpectedResponse { .. } => ErrorKind::UnexpectedResponse,
            Self::Decode(_) => ErrorKind::Decode,
            Self::ForeignUrl { .. } => ErrorKind::ForeignUrl,
            Self::PagingLoop { .. } | Self::TooManyPages { .. } | Self::ResponseTooLarge { .. } => {
                ErrorKind::LimitExceeded
            }
            Self::WaitTooLong { source, .. } => source.kind(),
            Self::BatchInterrupted { source, .. } => source.kind(),
        }
    }

    /// Dataverse's error, if it answered with one.
    #[must_use]
    pub fn service(&self) -> Option<&ServiceError> {
        match self {
            Self::Service(error) | Self::WaitTooLong { source: error, .. } => Some(error),
            Self::BatchInterrupted { source, .. } => source.service(),
            _ => None,
        }
    }

    /// How to fix it, when known.
    #[must_use]
    pub fn hint(&self) -> Option<&'static str> {
        match self {
            Self::Auth(error) => error.hint(),
            Self::Service(error) | Self::WaitTooLong { source: error, .. } => error.hint(),
            Self::BatchInterrupted { source, .. } => source.hint(),
            _ => None,
        }
    }
}

impl From<ServiceError> for WebApiError {
    fn from(error: ServiceError) -> Self {
        Self::Service(Box::new(error))
    }
}

/// Dataverse's answer to a failed request: `{"error":{"code":"0x…","message":"…"}}` with
/// the HTTP status and request ids.
#[derive(Clone, PartialEq, Eq)]
pub struct ServiceError {
    pub(crate) method: Method,
    pub(crate) url: String,
    pub(crate) status: StatusCode,
    pub(crate) code: String,
    pub(crate) message: String,
    pub(crate) request_id: Option<String>,
    pub(crate) client_request_id: String,
    pub(crate) retry_after: Option<Duration>,
}

/// Error codes of the service protection limits, hex (Web API) and decimal (SDK).
const THROTTLE_CODES: &[(&str, &str)] = &[
    ("0x80072322", "-2147015902"),
    ("0x80072321", "-2147015903"),
    ("0x80072326", "-2147015898"),
];

/// Whether `code` is a service protection code, in either notation.
pub(crate) fn is_throttle_code(code: &str) -> bool {
    let code = code.trim();
    THROTTLE_CODES
        .iter()
        .any(|(hex, decimal)| code.eq_ignore_ascii_case(hex) || code == *decimal)
}

/// (code, hint) for the Dataverse codes users meet most.
const HINTS: &[(&str, &str)] = &[
    (
        "0x8006088a",
        "the entity set, function or action name is wrong (names are case-sensitive; entity sets are plural, e.g. `accounts`): check the service document GET /api/data/v9.2/",
    ),
    (
        "0x80060888",
        "the URL or query is not valid here (an unknown segment, or $expand with /$ref on a collection)",
    ),
    (
        "0x0",
        "a property name is wrong: names are case-sensitive logical names such as `name`, and lookups are set with `field@odata.bind`",
    ),
    (
        "0x80048d19",
        "the body names an undeclared property: use the navigation property (e.g. `parentcustomerid_account@odata.bind`)",
    ),
    ("0x80040217", "no record with this id or key exists"),
    (
        "0x80040220",
        "the caller's security roles lack this privilege: add a role that grants it (Power Platform admin center > Users / Application users > Manage roles)",
    ),
    (
        "0x80048306",
        "the caller lacks access to this record: share or assign it, or widen the role's access level",
    ),
    ("0x80040237", "a record with the same key already exists"),
    (
        "0x80072560",
        "the caller is not a user of this environment: create an application user for the app (Power Platform admin center > Settings > Application users) and give it a security role",
    ),
    (
        "0x80095ffc",
        "an administrator restricted Dataverse API access to allowed applications: ask them to allow this application id",
    ),
    (
        "0x80044331",
        "a value failed validation (too long, out of range); the message names the column",
    ),
    (
        "0x80040265",
        "a plug-in refused the operation; its message explains why (request the TraceText annotation for more)",
    ),
    (
        "0x80072322",
        "too many requests in the 5-minute window: lower the request rate or spread work across users",
    ),
    (
        "0x80072321",
        "the combined execution time in the 5-minute window is exhausted: make requests cheaper (fewer columns, smaller pages)",
    ),
    (
        "0x80072326",
        "too many concurrent requests: lower the parallelism (see the x-ms-dop-hint header)",
    ),
];

impl ServiceError {
    /// The HTTP status.
    #[must_use]
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// Dataverse's error code as sent (`0x80040217`, often empty or `0x0`).
    #[must_use]
    pub fn code(&self) -> &str {
        &self.code
    }

    /// Dataverse's message.
    #[must_use]
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The server's request id (`REQ_ID` / `x-ms-service-request-id`), for support.
    #[must_use]
    pub fn request_id(&self) -> Option<&str> {
        self.request_id.as_deref()
    }

    /// The `x-ms-client-request-id` d365 sent.
    #[must_use]
    pub fn client_request_id(&self) -> &str {
        &self.client_request_id
    }

    /// How long Dataverse asked to wait (`Retry-After`).
    #[must_use]
    pub fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }

    /// The kind of failure.
    #[must_use]
    pub fn kind(&self) -> ErrorKind {
        if self.code.eq_ignore_ascii_case("0x80072560") {
            return ErrorKind::NotAMember;
        }
        if is_throttle_code(&self.code) {
            return ErrorKind::Throttled;
        }
        match self.status.as_u16() {
            401 => ErrorKind::Unauthorized,
            403 => ErrorKind::Forbidden,
            404 => ErrorKind::NotFound,
            409 | 412 => ErrorKind::PreconditionFailed,
            429 => ErrorKind::Throttled,
            500..=599 => ErrorKind::ServerError,
            _ => ErrorKind::BadRequest,
        }
    }

    /// How to fix it, when known.
    #[must_use]
    pub fn hint(&self) -> Option<&'static str> {
        if let Some((_, hint)) = HINTS
            .iter()
            .find(|(code, _)| self.code.eq_ignore_ascii_case(code))
        {
            return Some(hint);
        }
        match self.status.as_u16() {
            401 => Some(
                "Dataverse refused the token: check that it was issued for this organization URL (the token's audience) and that the tenant is the environment's",
            ),
            404 if self.code.is_empty() && self.message.contains("No HTTP resource") => {
                Some("wrong HTTP method: functions are called with GET, actions with POST")
            }
            412 => Some(
                "the record changed since it was read (ETag), or it exists and the request forbade an update",
            ),
            _ => None,
        }
    }
}

impl fmt::Display for ServiceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}: HTTP {}",
            self.method,
            self.url,
            self.status.as_u16()
        )?;
        if !self.code.is_empty() {
            write!(f, " {}", self.code)?;
        }
        write!(f, ": {}", self.message)?;
        if let Some(hint) = self.hint() {
            write!(f, ". Hint: {hint}")?;
        }
        match &self.request_id {
            Some(id) => write!(
                f,
                " [request id {id}, client request id {}]",
                self.client_request_id
            ),
            None => write!(f, " [client request id {}]", self.client_request_id),
        }
    }
}

impl fmt::Debug for ServiceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceError")
            .field("method", &self.method)
            .field("url", &self.url)
            .field("status", &self.status.as_u16())
            .field("code", &self.code)
            .field("message", &self.message)
            .field("request_id", &self.request_id)
            .field("client_request_id", &self.client_request_id)
            .field("retry_after", &self.retry_after)
            .finish()
    }
}

impl std::error::Error for ServiceError {}

/// Reads Dataverse's error body; any body that is not its JSON shape becomes the message.
pub(crate) fn parse_error_body(body: &[u8]) -> (String, String) {
    #[derive(serde::Deserialize)]
    struct Envelope {
        error: Inner,
    }
    #[derive(serde::Deserialize)]
    struct Inner {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
    }
    match serde_json::from_slice::<Envelope>(body) {
        Ok(envelope) => (envelope.error.code, envelope.error.message),
        Err(_) => {
            let text = String::from_utf8_lossy(body);
            let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
            let short: String = text.chars().take(200).collect();
            (
                String::new(),
                if short.is_empty() {
                    "(no body)".to_owned()
                } else {
                    short
                },
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(status: u16, code: &str, message: &str) -> ServiceError {
        ServiceError {
            method: Method::GET,
            url: "https://contoso.crm.dynamics.com/api/data/v9.2/accounts".into(),
            status: StatusCode::from_u16(status).unwrap(),
            code: code.into(),
            message: message.into(),
            request_id: Some("req-1".into()),
            client_request_id: "client-1".into(),
            retry_after: None,
        }
    }

    #[test]
    fn kinds_follow_codes_then_statuses() {
        let cases = [
            (403, "0x80072560", ErrorKind::NotAMember),
            (429, "0x80072322", ErrorKind::Throttled),
            (400, "-2147015902", ErrorKind::Throttled),
            (403, "0x80040220", ErrorKind::Forbidden),
            (404, "0x80040217", ErrorKind::NotFound),
            (412, "", ErrorKind::PreconditionFailed),
            (401, "", ErrorKind::Unauthorized),
            (503, "", ErrorKind::ServerError),
            (400, "0x0", ErrorKind::BadRequest),
        ];
        for (status, code, kind) in cases {
            assert_eq!(error(status, code, "m").kind(), kind, "{status} {code}");
        }
    }

    #[test]
    fn throttle_codes_match_in_hex_and_decimal() {
        for code in [
            "0x80072322",
            "0X80072321",
            "0x80072326",
            "-2147015902",
            "-2147015903",
            "-2147015898",
        ] {
            assert!(is_throttle_code(code), "{code}");
        }
        assert!(!is_throttle_code("0x80040217"));
    }

    #[test]
    fn error_bodies_parse_or_become_the_message() {
        assert_eq!(
            parse_error_body(br#"{"error":{"code":"0x80040217","message":"account With Id = x Does Not Exist"}}"#),
            ("0x80040217".into(), "account With Id = x Does Not Exist".into())
        );
        assert_eq!(
            parse_error_body(b"<html>Bad\n gateway</html>"),
            (String::new(), "<html>Bad gateway</html>".into())
        );
        assert_eq!(parse_error_body(b""), (String::new(), "(no body)".into()));
    }

    #[test]
    fn display_has_code_message_hint_and_ids() {
        let text = error(
            403,
            "0x80072560",
            "The user is not a member of the organization.",
        )
        .to_string();
        assert!(
            text.contains("HTTP 403 0x80072560: The user is not a member"),
            "{text}"
        );
        assert!(
            text.contains("Hint: the caller is not a user of this environment"),
            "{text}"
        );
        assert!(
            text.contains("request id req-1, client request id client-1"),
            "{text}"
        );
    }
}
