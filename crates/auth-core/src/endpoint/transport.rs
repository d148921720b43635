//! The HTTP side of the token-endpoint client: sends a request with reqwest, reads at most
//! [`MAX_BODY`] bytes of the answer, and turns every answer that is not a 200 JSON body
//! into an [`AuthError`] while the status and headers are still at hand.

use std::time::{Duration, SystemTime};

use http::StatusCode;
use url::Url;

use crate::endpoint::response::classify_error_response;
use crate::error::{AuthError, ErrorSource};

/// The largest answer read from an identity provider: token responses (with an ID token
/// and a refresh token) are a few kilobytes; a hostile or broken server must not fill
/// memory.
const MAX_BODY: usize = 1024 * 1024;

/// A successful response body and when it arrived.
pub(crate) struct Received {
    pub(crate) body: Vec<u8>,
    pub(crate) at: SystemTime,
}

/// Sends one token-endpoint request.
pub(crate) struct Transport<'a> {
    pub(crate) http: &'a reqwest::Client,
    pub(crate) endpoint: &'a Url,
    pub(crate) timeout: Duration,
}

impl Transport<'_> {
    pub(crate) async fn send(
        &self,
        request: http::Request<Vec<u8>>,
    ) -> Result<http::Response<Vec<u8>>, AuthError> {
        let mut request =
            reqwest::Request::try_from(request).map_err(|error| self.network(error))?;
        *request.timeout_mut() = Some(self.timeout);
        let response = self
            .http
            .execute(request)
            .await
            .map_err(|error| self.failed(error))?;
        if response.url() != self.endpoint {
            // A caller-supplied client followed a redirect; the answer is not from the endpoint named.
            return Err(AuthError::Redirected {
                endpoint: self.endpoint.clone(),
                status: response.status(),
                location: Some(response.url().to_string()),
            });
        }
        let status = response.status();
        let headers = response.headers().clone();
        let body = self.read_body(response, status).await?;
        if status != StatusCode::OK {
            return Err(classify_error_response(
                self.endpoint,
                status,
                &headers,
                &body,
            ));
        }
        let is_json = headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .is_none_or(|value| value.to_ascii_lowercase().contains("json"));
        if body.iter().all(u8::is_ascii_whitespace) || !is_json {
            let detail = if is_json {
                "an empty body"
            } else {
                "a body that is not JSON"
            };
            return Err(AuthError::UnexpectedResponse {
                endpoint: self.endpoint.clone(),
                status,
                detail: detail.to_owned(),
            });
        }
        let mut response = http::Response::new(body);
        *response.status_mut() = status;
        *response.headers_mut() = headers;
        Ok(response)
    }

    /// Sends and returns the body of the 200 response.
    pub(crate) async fn receive(
        &self,
        request: http::Request<Vec<u8>>,
    ) -> Result<Received, AuthError> {
        let response = self.send(request).await?;
        Ok(Received {
            body: response.into_body(),
            at: SystemTime::now(),
        })
    }

    /// The body, chunk by chunk, refusing more than [`MAX_BODY`] bytes.
    async fn read_body(
        &self,
        mut response: reqwest::Response,
        status: StatusCode,
    ) -> Result<Vec<u8>, AuthError> {
        let too_large = || AuthError::UnexpectedResponse {
            endpoint: self.endpoint.clone(),
            status,
            detail: format!("a body larger than {MAX_BODY} bytes, far more than a token response"),
        };
        if response
            .content_length()
            .is_some_and(|length| length > MAX_BODY as u64)
        {
            return Err(too_large());
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|error| self.failed(error))? {
            if body.len() + chunk.len() > MAX_BODY {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }

    fn failed(&self, error: reqwest::Error) -> AuthError {
        if error.is_timeout() {
            AuthError::Timeout {
                endpoint: self.endpoint.clone(),
                after: self.timeout,
            }
        } else {
            self.network(error)
        }
    }

    fn network(&self, error: reqwest::Error) -> AuthError {
        // reqwest's message names the URL, which holds no secret; the body is never in it.
        AuthError::Network {
            endpoint: self.endpoint.clone(),
            source: ErrorSource::from(
                Box::new(error.without_url()) as Box<dyn std::error::Error + Send + Sync>
            ),
        }
    }
}
