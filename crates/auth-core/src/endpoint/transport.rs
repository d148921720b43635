//! The HTTP side of the token-endpoint client: sends a request with reqwest and turns
//! every answer that is not a 200 JSON body into an [`AuthError`] while the status and
//! headers are still at hand. It is also the `oauth2` crate's HTTP client, so that crate
//! only ever sees successful responses.

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, SystemTime};

use http::StatusCode;
use url::Url;

use crate::endpoint::response::classify_error_response;
use crate::error::{AuthError, ErrorSource};

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

/// An [`AuthError`] carried through `oauth2`'s error type.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub(crate) struct TransportError(pub(crate) AuthError);

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
        let body = response
            .bytes()
            .await
            .map_err(|error| self.failed(error))?
            .to_vec();
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

impl<'c> oauth2::AsyncHttpClient<'c> for Transport<'_> {
    type Error = TransportError;
    type Future =
        Pin<Box<dyn Future<Output = Result<oauth2::HttpResponse, TransportError>> + Send + 'c>>;

    fn call(&'c self, request: oauth2::HttpRequest) -> Self::Future {
        Box::pin(async move { self.send(request).await.map_err(TransportError) })
    }
}
