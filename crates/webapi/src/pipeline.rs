//! The one place requests are sent: headers every request carries, the token, the retry
//! rules (which failures are retried, for which requests, after how long), the 401
//! refresh, and turning answers into [`Answer`] or [`WebApiError`].

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use url::Url;

use crate::client::{Client, RetrySettings};
use crate::error::{ServiceError, WebApiError, is_throttle_code, parse_error_body};

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

/// A request ready to send.
#[derive(Clone, Debug)]
pub(crate) struct Prepared {
    pub(crate) method: Method,
    pub(crate) url: Url,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Option<Vec<u8>>,
    pub(crate) replay: Replay,
}

impl Prepared {
    pub(crate) fn new(method: Method, url: Url, replay: Replay) -> Self {
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
    /// It may have been applied: retry only if the request allows it.
    RetryIfReplayable(WebApiError),
    /// The token was refused: get a new one and retry once.
    Unauthorized(WebApiError),
}

impl Client {
    /// Sends `request` with the token, the standard headers, and the retry rules.
    pub(crate) async fn execute(&self, request: Prepared) -> Result<Answer, WebApiError> {
        let client_request_id = uuid::Uuid::new_v4().to_string();
        let retry = self.inner.retry;
        let mut retries = 0;
        let mut refreshed_after_401 = false;
        let mut maybe_applied_before = false;
        loop {
            let token = self.inner.tokens.get(&self.inner.token_request).await?;
            let started = Instant::now();
            let attempt = self.attempt(&request, &token, &client_request_id).await;
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
            let (wait, error) = match attempt {
                Attempt::Done(answer) => {
                    tracing::debug!(method = %request.method, url = %request.url, status = answer.status.as_u16(), elapsed_ms, "Dataverse answered");
                    return Ok(answer);
                }
                Attempt::Failed(error) => return Err(error),
                Attempt::Unauthorized(error) => {
                    if refreshed_after_401 {
                        return Err(error);
                    }
                    refreshed_after_401 = true;
                    self.inner.tokens.invalidate(&token).await;
                    tracing::debug!(url = %request.url, "Dataverse refused the token; retrying once with a new one");
                    continue;
                }
                Attempt::RetryNotApplied(retry_after, error) => (retry_after, error),
                Attempt::RetryIfReplayable(error) => {
                    if request.replay == Replay::Unsafe {
                        return Err(error);
                    }
                    maybe_applied_before = true;
                    (None, error)
                }
            };
            if retries >= retry.max_retries {
                return Err(error);
            }
            let delay = wait.unwrap_or_else(|| backoff(retry, retries));
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
        token: &d365_auth_core::AccessToken,
        client_request_id: &str,
    ) -> Attempt {
        let mut builder = self
            .inner
            .http
            .request(request.method.clone(), request.url.clone())
            .timeout(self.inner.timeout)
            .header(http::header::AUTHORIZATION, token.authorization_header())
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
        let response = match builder.send().await {
            Ok(response) => response,
            Err(error) => return self.transport_failure(request, error),
        };
        let status = response.status();
        let headers = response.headers().clone();
        if let Some(hint) = headers
            .get("x-ms-dop-hint")
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.trim().parse::<usize>().ok())
        {
            self.inner.dop_hint.store(hint, Ordering::Relaxed);
        }
        let body = match response.bytes().await {
            Ok(body) => body.to_vec(),
            // The status line already says the request was refused and when to come back;
            // the body would add only the message. Read as a failure of unknown effect, a
            // cut refusal would be retried at once, before its Retry-After.
            Err(_) if matches!(status.as_u16(), 429 | 503) => Vec::new(),
            Err(error) => return self.transport_failure(request, error),
        };
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
            .and_then(|value| value.trim().parse::<f64>().ok())
            .filter(|secs| secs.is_finite() && *secs >= 0.0)
            .map(Duration::from_secs_f64);
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

    fn transport_failure(&self, request: &Prepared, error: reqwest::Error) -> Attempt {
        let url = request.url.to_string();
        if error.is_connect() {
            // The connection was never opened: nothing reached Dataverse.
            return Attempt::RetryNotApplied(
                None,
                WebApiError::Network {
                    url,
                    source: Arc::new(error.without_url()),
                },
            );
        }
        if error.is_timeout() {
            return Attempt::RetryIfReplayable(WebApiError::Timeout {
                method: request.method.clone(),
                url,
                after: self.inner.timeout,
            });
        }
        Attempt::RetryIfReplayable(WebApiError::MaybeApplied {
            method: request.method.clone(),
            url,
            source: Arc::new(error.without_url()),
        })
    }
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
        let quick = RetrySettings {
            max_retries: 3,
            base_delay: Duration::from_millis(10),
            max_delay: Duration::from_secs(1),
        };
        assert!(backoff(quick, 0) < Duration::from_millis(20));
    }
}
