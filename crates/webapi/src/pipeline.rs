//! The one place requests are sent: headers every request carries, the token, the retry
//! rules (which failures are retried, for which requests, after how long), the bounds of
//! an operation (its deadline, how long an unreachable organization is retried, the
//! largest answer read), the 401 refresh, and turning answers into [`Answer`] or
//! [`WebApiError`]. Requests go only to [`OrgUrl`]s: URLs checked to be on the
//! organization.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime};

use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};

use crate::client::{Client, RetrySettings};
use crate::error::{ServiceError, WebApiError, is_throttle_code, parse_error_body};
use crate::origin::OrgUrl;

/// Whether a request may be sent again after a failure that leaves it unknown whether
/// Dataverse applied it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Replay {
    /// No side effects (GET): always safe.
    Safe,
    /// A replay of an applied request answers this status, which is then read as success:
    /// 412 for a create with a client-chosen id and `If-None-Match: *`, 404 for a delete.
    DetectsDuplicate(StatusCode),
    /// Anything else: replayed only when Dataverse said it did not apply it.
    Unsafe,
}

/// A request ready to send. Its URL is an [`OrgUrl`]: checked to be on the organization.
#[derive(Clone, Debug)]
pub(crate) struct Prepared {
    pub(crate) method: Method,
    pub(crate) url: OrgUrl,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Option<Vec<u8>>,
    pub(crate) replay: Replay,
}

impl Prepared {
    pub(crate) fn new(method: Method, url: OrgUrl, replay: Replay) -> Self {
        Self {
            method,
            url,
            headers: HeaderMap::new(),
            body: None,
            replay,
        }
    }

    pub(crate) fn json_body(mut self, body: &serde_json::Value) -> Self {
        self.headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        self.body = Some(body.to_string().into_bytes());
        self
    }

    pub(crate) fn header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.append(name, value);
        self
    }
}

/// A successful answer.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Vec<u8>,
}

impl Answer {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }

    pub(crate) fn json(&self) -> Result<serde_json::Value, WebApiError> {
        serde_json::from_slice(&self.body).map_err(|error| WebApiError::Decode(error.to_string()))
    }
}

/// What one attempt came to.
enum Attempt {
    Done(Answer),
    Failed(WebApiError),
    /// Dataverse said it did not apply the request: retry after this long (or backoff).
    RetryNotApplied(Option<Duration>, WebApiError),
    /// The connection could not be opened: nothing was sent; retried while the
    /// organization has been unreachable for less than `unreachable_after`.
    Unreachable(WebApiError),
    /// It may have been applied: retry only if the request allows it.
    RetryIfReplayable(WebApiError),
    /// The token was refused: get a new one and retry once.
    Unauthorized(WebApiError),
}

/// Where an operation stands against its bounds: the deadline, and how long the
/// organization has been unreachable.
struct Budget {
    started: Instant,
    deadline: Duration,
    unreachable_since: Option<Instant>,
    unreachable_after: Duration,
}

impl Budget {
    fn new(settings: RetrySettings) -> Self {
        Self {
            started: Instant::now(),
            deadline: settings.deadline,
            unreachable_since: None,
            unreachable_after: settings.unreachable_after,
        }
    }

    fn left(&self) -> Duration {
        self.deadline.saturating_sub(self.started.elapsed())
    }

    /// Whether waiting `delay` and trying again still ends within the bounds.
    fn allows(&self, delay: Duration, unreachable: bool) -> bool {
        if delay >= self.left() {
            return false;
        }
        match (unreachable, self.unreachable_since) {
            (true, Some(since)) => since.elapsed() + delay < self.unreachable_after,
            _ => true,
        }
    }
}

impl Client {
    /// Sends `request` with the token, the standard headers, and the retry rules, within
    /// the operation's deadline ([`RetrySettings::deadline`]).
    pub(crate) async fn execute(&self, request: Prepared) -> Result<Answer, WebApiError> {
        let deadline = self.inner.retry.deadline;
        match tokio::time::timeout(deadline, self.execute_with_retries(&request)).await {
            Ok(outcome) => outcome,
            Err(_) => Err(WebApiError::Timeout {
                method: request.method.clone(),
                url: request.url.to_string(),
                after: deadline,
            }),
        }
    }

    async fn execute_with_retries(&self, request: &Prepared) -> Result<Answer, WebApiError> {
        let client_request_id = uuid::Uuid::new_v4().to_string();
        let retry = self.inner.retry;
        let mut budget = Budget::new(retry);
        let mut retries = 0;
        let mut refreshed_after_401 = false;
        let mut maybe_applied_before = false;
        loop {
            // A connection authenticator proves the request itself: no token to get.
            let token = match &self.inner.connection_auth {
                Some(_) => None,
                None => Some(self.inner.tokens.get(&self.inner.token_request).await?),
            };
            let started = Instant::now();
            let timeout = self.inner.timeout.min(budget.left());
            let attempt = self
                .attempt(request, token.as_ref(), &client_request_id, timeout)
                .await;
            let attempt = match attempt {
                Attempt::Failed(WebApiError::Service(error))
                    if request.replay == Replay::DetectsDuplicate(error.status)
                        && maybe_applied_before =>
                {
                    tracing::info!(url = %request.url, "a replayed request found its effect: the earlier attempt was applied");
                    return Ok(Answer {
                        status: StatusCode::NO_CONTENT,
                        headers: HeaderMap::new(),
                        body: Vec::new(),
                    });
                }
                other => other,
            };
            let elapsed_ms = started.elapsed().as_millis();
            let (wait, error, unreachable) = match attempt {
                Attempt::Done(answer) => {
                    tracing::debug!(method = %request.method, url = %request.url, status = answer.status.as_u16(), elapsed_ms, "Dataverse answered");
                    return Ok(answer);
                }
                Attempt::Failed(error) => return Err(error),
                Attempt::Unauthorized(error) => {
                    // Without a token there is nothing to renew: the authenticator already
                    // answered the server's challenges, so the credential was refused.
                    let Some(token) = token.as_ref().filter(|_| !refreshed_after_401) else {
                        return Err(error);
                    };
                    refreshed_after_401 = true;
                    self.inner.tokens.invalidate(token).await;
                    tracing::debug!(url = %request.url, "Dataverse refused the token; retrying once with a new one");
                    continue;
                }
                Attempt::RetryNotApplied(retry_after, error) => (retry_after, error, false),
                Attempt::Unreachable(error) => {
                    budget.unreachable_since.get_or_insert_with(Instant::now);
                    (None, error, true)
                }
                Attempt::RetryIfReplayable(error) => {
                    if request.replay == Replay::Unsafe {
                        return Err(error);
                    }
                    maybe_applied_before = true;
                    (None, error, false)
                }
            };
            if !unreachable {
                budget.unreachable_since = None;
            }
            if retries >= retry.max_retries {
                return Err(error);
            }
            let delay = match wait {
                Some(asked) if asked >= budget.left() => {
                    return Err(wait_too_long(error, asked, &budget));
                }
                Some(asked) => asked,
                None => backoff(retry, retries),
            };
            if !budget.allows(delay, unreachable) {
                return Err(error);
            }
            retries += 1;
            tracing::warn!(
                method = %request.method,
                url = %request.url,
                attempt = retries,
                max_retries = retry.max_retries,
                delay_ms = delay.as_millis(),
                %error,
                "retrying a Dataverse request"
            );
            tokio::time::sleep(delay).await;
        }
    }

    async fn attempt(
        &self,
        request: &Prepared,
        token: Option<&d365_auth_core::AccessToken>,
        client_request_id: &str,
        timeout: Duration,
    ) -> Attempt {
        let mut builder = self
            .inner
            .http
            .request(request.method.clone(), request.url.as_url().clone())
            .timeout(timeout);
        if let Some(token) = token {
            builder = builder.header(http::header::AUTHORIZATION, token.authorization_header());
        }
        let mut builder = builder
            .header(http::header::ACCEPT, "application/json")
            .header("OData-MaxVersion", "4.0")
            .header("OData-Version", "4.0")
            .header("x-ms-client-request-id", client_request_id);
        if request.method == Method::GET
            && !request.headers.contains_key(http::header::IF_NONE_MATCH)
        {
            // Microsoft's advice: defeats cached $expand results.
            builder = builder.header(http::header::IF_NONE_MATCH, "null");
        }
        for (name, value) in &request.headers {
            builder = builder.header(name, value);
        }
        if let Some(body) = &request.body {
            builder = builder.body(body.clone());
        }
        if let Some(authenticator) = &self.inner.connection_auth {
            return self
                .attempt_on_connection(
                    authenticator.as_ref(),
                    request,
                    builder,
                    client_request_id,
                    timeout,
                )
                .await;
        }
        let response = match builder.send().await {
            Ok(response) => response,
            Err(error) => return self.transport_failure(request, error, timeout),
        };
        let status = response.status();
        let headers = response.headers().clone();
        let body = match read_body(response, self.inner.max_response_size).await {
            Ok(body) => body,
            // The status line already says the request was refused and when to come back;
            // the body would add only the message. Read as a failure of unknown effect, a
            // cut refusal would be retried at once, before its Retry-After.
            Err(_) if matches!(status.as_u16(), 429 | 503) => Vec::new(),
            Err(BodyError::TooLarge) => {
                return Attempt::Failed(WebApiError::ResponseTooLarge {
                    method: request.method.clone(),
                    url: request.url.to_string(),
                    limit: self.inner.max_response_size,
                });
            }
            Err(BodyError::Transport(error)) => {
                return self.transport_failure(request, error, timeout);
            }
        };
        self.classify(request, status, headers, body, client_request_id)
    }

    /// The request sent by a [`ConnectionAuthenticator`](d365_auth_core::ConnectionAuthenticator)
    /// on a connection it authenticates, the answer read under the same caps.
    async fn attempt_on_connection(
        &self,
        authenticator: &dyn d365_auth_core::ConnectionAuthenticator,
        request: &Prepared,
        builder: reqwest::RequestBuilder,
        client_request_id: &str,
        timeout: Duration,
    ) -> Attempt {
        let built = match builder.build() {
            Ok(built) => built,
            Err(error) => return self.transport_failure(request, error, timeout),
        };
        let mut outgoing = http::Request::new(
            built
                .body()
                .and_then(reqwest::Body::as_bytes)
                .map(<[u8]>::to_vec)
                .unwrap_or_default(),
        );
        *outgoing.method_mut() = built.method().clone();
        *outgoing.headers_mut() = built.headers().clone();
        match built.url().as_str().parse() {
            Ok(uri) => *outgoing.uri_mut() = uri,
            Err(_) => {
                return Attempt::Failed(WebApiError::InvalidInput(format!(
                    "the request URL {} is not a valid URI",
                    request.url
                )));
            }
        }
        let limits = d365_auth_core::SendLimits::new(timeout, self.inner.max_response_size);
        match authenticator.send(outgoing, limits).await {
            Ok(answer) => {
                let (parts, body) = answer.into_parts();
                self.classify(
                    request,
                    parts.status,
                    parts.headers,
                    body,
                    client_request_id,
                )
            }
            Err(error) if error.kind() == d365_auth_core::ErrorKind::Network => {
                // The cause, not the grant's wording: this was the organization, not a
                // token endpoint.
                let cause = std::error::Error::source(&error)
                    .map_or_else(|| error.to_string(), ToString::to_string);
                Attempt::Unreachable(WebApiError::Network {
                    url: request.url.to_string(),
                    source: Arc::new(std::io::Error::other(cause)),
                })
            }
            Err(error) if error.kind() == d365_auth_core::ErrorKind::Timeout => {
                Attempt::RetryIfReplayable(WebApiError::Timeout {
                    method: request.method.clone(),
                    url: request.url.to_string(),
                    after: timeout,
                })
            }
            Err(error) => Attempt::Failed(WebApiError::Auth(error)),
        }
    }

    /// What an answer means for the request: done, or which kind of failure.
    fn classify(
        &self,
        request: &Prepared,
        status: StatusCode,
        headers: HeaderMap,
        body: Vec<u8>,
        client_request_id: &str,
    ) -> Attempt {
        if let Some(hint) = headers
            .get("x-ms-dop-hint")
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.trim().parse::<usize>().ok())
        {
            self.inner.dop_hint.store(hint, Ordering::Relaxed);
        }
        let multipart = headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .is_some_and(|value| value.to_ascii_lowercase().starts_with("multipart/mixed"));
        // A $batch that failed part-way answers 400 with the parts that ran; its caller reads them.
        if status.is_success()
            || status == StatusCode::NOT_MODIFIED
            || (multipart && status == StatusCode::BAD_REQUEST)
        {
            return Attempt::Done(Answer {
                status,
                headers,
                body,
            });
        }
        let (code, message) = parse_error_body(&body);
        let retry_after = headers
            .get(http::header::RETRY_AFTER)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| parse_retry_after(value, SystemTime::now()));
        let error = WebApiError::from(ServiceError {
            method: request.method.clone(),
            url: request.url.to_string(),
            status,
            code: code.clone(),
            message,
            request_id: headers
                .get("x-ms-service-request-id")
                .or_else(|| headers.get("REQ_ID"))
                .and_then(|value| value.to_str().ok())
                .map(str::to_owned),
            client_request_id: client_request_id.to_owned(),
            retry_after,
        });
        match status.as_u16() {
            401 => Attempt::Unauthorized(error),
            429 | 503 => Attempt::RetryNotApplied(retry_after, error),
            _ if is_throttle_code(&code) => Attempt::RetryNotApplied(retry_after, error),
            502 | 504 => Attempt::RetryIfReplayable(error),
            _ => Attempt::Failed(error),
        }
    }

    fn transport_failure(
        &self,
        request: &Prepared,
        error: reqwest::Error,
        timeout: Duration,
    ) -> Attempt {
        let url = request.url.to_string();
        if error.is_builder() {
            // Nothing was sent, and sending it again cannot help.
            return Attempt::Failed(WebApiError::InvalidInput(format!(
                "the request to {url} could not be built: {}",
                error.without_url()
            )));
        }
        if error.is_connect() {
            // The connection was never opened: nothing reached Dataverse.
            return Attempt::Unreachable(WebApiError::Network {
                url,
                source: Arc::new(error.without_url()),
            });
        }
        if error.is_timeout() {
            return Attempt::RetryIfReplayable(WebApiError::Timeout {
                method: request.method.clone(),
                url,
                after: timeout,
            });
        }
        Attempt::RetryIfReplayable(WebApiError::MaybeApplied {
            method: request.method.clone(),
            url,
            source: Arc::new(error.without_url()),
        })
    }
}

/// The refusal of a request whose `Retry-After` ends past the deadline.
fn wait_too_long(error: WebApiError, asked: Duration, budget: &Budget) -> WebApiError {
    match error {
        WebApiError::Service(source) => WebApiError::WaitTooLong {
            asked: (asked != Duration::MAX).then_some(asked),
            left: budget.left(),
            deadline: budget.deadline,
            source,
        },
        other => other,
    }
}

/// Why a body could not be read.
enum BodyError {
    /// Larger than the cap.
    TooLarge,
    /// The connection failed.
    Transport(reqwest::Error),
}

/// Reads the body, chunk by chunk, refusing to hold more than `limit` bytes.
async fn read_body(mut response: reqwest::Response, limit: usize) -> Result<Vec<u8>, BodyError> {
    if response
        .content_length()
        .is_some_and(|length| length > limit as u64)
    {
        return Err(BodyError::TooLarge);
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(BodyError::Transport)? {
        if body.len() + chunk.len() > limit {
            return Err(BodyError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Reads a `Retry-After` value: delay seconds (fractions too, as some gateways send) or an
/// HTTP date. Never fails: a negative or past value is no wait, a value beyond what a
/// `Duration` holds is [`Duration::MAX`] (so it ends past any deadline), garbage is `None`
/// (the backoff applies).
pub(crate) fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<f64>() {
        if seconds.is_nan() {
            return None;
        }
        if seconds <= 0.0 {
            return Some(Duration::ZERO);
        }
        return Some(Duration::try_from_secs_f64(seconds).unwrap_or(Duration::MAX));
    }
    let date = httpdate::parse_http_date(value).ok()?;
    Some(date.duration_since(now).unwrap_or(Duration::ZERO))
}

/// `base + 2^attempt` seconds with ±20 % jitter, capped.
pub(crate) fn backoff(settings: RetrySettings, attempt: u32) -> Duration {
    let exponential = Duration::from_secs(1_u64 << attempt.min(16));
    let scale = settings.base_delay.as_secs_f64() / 5.0;
    // With the default 5 s base the growth is in whole seconds, as ServiceClient's; a
    // smaller base (tests) scales the exponential part down with it.
    let planned = settings.base_delay + exponential.mul_f64(scale.min(1.0));
    let jitter = 0.8 + 0.4 * fastrand_unit();
    planned.mul_f64(jitter).min(settings.max_delay)
}

/// A number in [0, 1) from the random bits of a v4 UUID: enough for jitter, and no extra
/// dependency.
fn fastrand_unit() -> f64 {
    let bits = uuid::Uuid::new_v4().as_u128() as u64 >> 11;
    #[allow(clippy::cast_precision_loss)]
    let unit = bits as f64 / (1_u64 << 53) as f64;
    unit
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_with_jitter_and_stays_under_the_cap() {
        let settings = RetrySettings::default();
        for attempt in 0..12 {
            let delay = backoff(settings, attempt);
            let planned = settings.base_delay + Duration::from_secs(1 << attempt);
            assert!(delay <= settings.max_delay, "{attempt}: {delay:?}");
            assert!(
                delay >= planned.mul_f64(0.8).min(settings.max_delay),
                "{attempt}: {delay:?}"
            );
        }
        let quick = RetrySettings::default()
            .max_retries(3)
            .delays(Duration::from_millis(10), Duration::from_secs(1));
        assert!(backoff(quick, 0) < Duration::from_millis(20));
    }

    #[test]
    fn any_retry_after_value_is_read_without_panicking() {
        let now = httpdate::parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT").unwrap();
        let cases: &[(&str, Option<Duration>)] = &[
            ("1", Some(Duration::from_secs(1))),
            (" 30 ", Some(Duration::from_secs(30))),
            ("0.25", Some(Duration::from_millis(250))),
            ("0", Some(Duration::ZERO)),
            ("-5", Some(Duration::ZERO)),
            ("-0.5", Some(Duration::ZERO)),
            ("1e20", Some(Duration::MAX)),
            ("1e400", Some(Duration::MAX)),
            ("inf", Some(Duration::MAX)),
            ("-inf", Some(Duration::ZERO)),
            ("18446744073709551616", Some(Duration::MAX)),
            ("NaN", None),
            ("", None),
            ("soon", None),
            ("1 minute", None),
            (
                "Sun, 06 Nov 1994 08:50:37 GMT",
                Some(Duration::from_secs(60)),
            ),
            (
                "Sunday, 06-Nov-94 08:49:47 GMT",
                Some(Duration::from_secs(10)),
            ),
            ("Sun Nov  6 08:49:40 1994", Some(Duration::from_secs(3))),
            ("Sat, 05 Nov 1994 08:49:37 GMT", Some(Duration::ZERO)),
            ("Sun, 06 Nov 1994 25:00:00 GMT", None),
        ];
        for (value, expected) in cases {
            assert_eq!(parse_retry_after(value, now), *expected, "{value:?}");
        }
    }

    #[test]
    fn a_budget_refuses_waits_past_the_deadline_and_the_unreachable_window() {
        let settings = RetrySettings::default()
            .deadline(Duration::from_secs(30))
            .unreachable_after(Duration::from_secs(10));
        let mut budget = Budget::new(settings);
        assert!(budget.allows(Duration::from_secs(29), false));
        assert!(!budget.allows(Duration::from_secs(31), false));
        budget.unreachable_since = Some(Instant::now());
        assert!(budget.allows(Duration::from_secs(9), true));
        assert!(!budget.allows(Duration::from_secs(11), true));
        assert!(
            budget.allows(Duration::from_secs(11), false),
            "only unreachable hosts have the shorter window"
        );
    }
}
