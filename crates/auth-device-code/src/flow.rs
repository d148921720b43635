//! One device code sign-in: ask the device authorization endpoint for a code, show the
//! person where to type it, and poll the token endpoint (RFC 8628 §3.4–3.5) until they
//! finish, decline, the code expires, or the caller cancels.

use std::future::Future as _;
use std::pin::pin;
use std::task::Poll;
use std::time::{Duration, SystemTime};

use d365_auth_core::grant::{OFFLINE_ACCESS, TokenForm};
use d365_auth_core::{AccessToken, AuthError, ErrorKind, TokenRequest};
use tokio::time::Instant;

use crate::message::Authorization;
use crate::provider::Inner;

/// The `grant_type` the token endpoint is polled with.
pub(crate) const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:device_code";
/// What RFC 8628 §3.5 adds to the interval after each `slow_down`.
const SLOW_DOWN_STEP: Duration = Duration::from_secs(5);

/// The whole sign-in, ended early by the cancel handle. Dropping the returned future ends
/// it too: nothing is sent after that.
pub(crate) async fn sign_in(
    inner: &Inner,
    request: &TokenRequest,
) -> Result<AccessToken, AuthError> {
    // Created before anything else, so a cancellation from inside the callback counts.
    let mut cancelled = pin!(inner.cancel.cancelled());
    cancelled.as_mut().enable();
    let mut sign_in = pin!(run(inner, request));
    std::future::poll_fn(|cx| {
        if cancelled.as_mut().poll(cx).is_ready() {
            tracing::debug!(client_id = %inner.client_id, "device code sign-in cancelled");
            return Poll::Ready(Err(AuthError::Cancelled {
                operation: "the device code sign-in".to_owned(),
            }));
        }
        sign_in.as_mut().poll(cx)
    })
    .await
}

/// The scope of the device authorization request: the organization's (by client kind),
/// `offline_access`, and the caller's extra scopes.
fn scope(inner: &Inner, request: &TokenRequest) -> String {
    let mut scopes = vec![
        request.resource().v2_scope(inner.client_kind()),
        OFFLINE_ACCESS.to_owned(),
    ];
    for extra in &inner.scopes {
        if !scopes.contains(extra) {
            scopes.push(extra.clone());
        }
    }
    scopes.join(" ")
}

async fn run(inner: &Inner, request: &TokenRequest) -> Result<AccessToken, AuthError> {
    let scope = scope(inner, request);
    tracing::debug!(
        client_id = %inner.client_id,
        endpoint = %inner.device_endpoint,
        %scope,
        "asking for a device code"
    );
    let answer = inner
        .http
        .post_form(
            &inner.device_endpoint,
            &[
                ("client_id", inner.client_id.as_str()),
                ("scope", scope.as_str()),
            ],
        )
        .await?;
    let received = Instant::now();
    let authorization = Authorization::parse(&inner.device_endpoint, &answer, SystemTime::now())?;
    drop(answer);
    let lifetime = authorization.message.expires_in;
    let deadline = received + lifetime;
    let mut interval = authorization.message.interval;
    tracing::debug!(
        verification_uri = %authorization.message.verification_uri,
        expires_in = lifetime.as_secs(),
        interval = interval.as_secs(),
        "device code issued; waiting for the person to sign in"
    );
    (inner.on_message)(&authorization.message);

    loop {
        let now = Instant::now();
        if now >= deadline {
            return Err(AuthError::CodeExpired { lifetime });
        }
        tokio::time::sleep_until((now + interval).min(deadline)).await;
        if Instant::now() >= deadline {
            tracing::debug!("the device code expired before the person finished signing in");
            return Err(AuthError::CodeExpired { lifetime });
        }
        let form = TokenForm::new(GRANT_TYPE, &inner.client_id)
            .credential(inner.credential())
            .secret_param("device_code", &authorization.device_code);
        match inner.http.send(&inner.endpoint, &form).await {
            Ok(response) => {
                tracing::debug!(client_id = %inner.client_id, "the person signed in");
                return response.into_access_token(request);
            }
            Err(error) => match error.kind() {
                ErrorKind::AuthorizationPending => {
                    tracing::trace!("still waiting for the person to sign in");
                }
                ErrorKind::SlowDown => {
                    interval += SLOW_DOWN_STEP;
                    tracing::debug!(
                        interval = interval.as_secs(),
                        "the server asked to poll less often"
                    );
                }
                _ => return Err(error),
            },
        }
    }
}
