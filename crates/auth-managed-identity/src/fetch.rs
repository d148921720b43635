//! One token request against a managed identity endpoint: the IMDS probe, the request,
//! the retries, and the answers that mean "no managed identity here".

use std::time::Duration;

use d365_auth_core::{AccessToken, AuthError, ErrorKind, TokenRequest};
use http::StatusCode;
use tokio::time::{Instant, sleep, timeout_at};
use tracing::Instrument as _;

use crate::identity::Spelling;
use crate::provider::Inner;

/// How people name this credential in "not available" errors.
const CREDENTIAL: &str = "managed identity";

/// What would make a managed identity available, for every "not available" error.
const FIX_NO_ENDPOINT: &str = "run in Azure with a managed identity assigned, or set AZURE_POD_IDENTITY_AUTHORITY_HOST / IDENTITY_ENDPOINT, or use another credential";

/// Gets a token for `request`: probes IMDS the first time, then asks, retrying as the
/// policy says, within its deadline.
pub(crate) async fn token(inner: &Inner, request: &TokenRequest) -> Result<AccessToken, AuthError> {
    let span = tracing::debug_span!(
        "managed_identity",
        source = inner.source.kind(),
        endpoint = %inner.token_url,
        identity = %inner.identity,
    );
    async {
        let deadline = after(Instant::now(), inner.retry.deadline);
        let url = inner.url_for(request);
        probe(inner, &url, deadline).await?;
        let outcome = ask(inner, &url, deadline).await;
        match &outcome {
            Ok(_) => tracing::debug!("the managed identity endpoint issued a token"),
            Err(error) => tracing::debug!(%error, "no token from the managed identity endpoint"),
        }
        outcome?.into_access_token(request)
    }
    .instrument(span)
    .await
}

/// The first contact with IMDS: the token request without `Metadata: true`, which IMDS
/// refuses at once (it fetches no token for it), with a short timeout. Any HTTP answer
/// means the endpoint is there; none means there is no managed identity here. As
/// azure-identity does, and only until the endpoint has answered once.
async fn probe(inner: &Inner, url: &url::Url, deadline: Instant) -> Result<(), AuthError> {
    let Some(client) = &inner.probe else {
        return Ok(());
    };
    if inner.has_answered() {
        return Ok(());
    }
    tracing::debug!(
        timeout_ms = client.timeout().as_millis(),
        "probing the instance metadata endpoint"
    );
    let outcome = match timeout_at(deadline, client.get_token(url, &[])).await {
        Ok(outcome) => outcome,
        Err(_) => Err(deadline_passed(inner)),
    };
    let Err(error) = outcome else {
        inner.mark_answered();
        return Ok(());
    };
    match status_of(&error) {
        // Docker Desktop answers for an unreachable link-local address with a 403 page of
        // its own; IMDS refuses a request without `Metadata` with a 400.
        Some(StatusCode::FORBIDDEN) if error.identity().is_none() => Err(AuthError::unavailable(
            CREDENTIAL,
            format!(
                "{} answered HTTP 403 with a page that is not the instance metadata service's (Docker Desktop answers so when it cannot reach it)",
                inner.endpoint_name()
            ),
            FIX_NO_ENDPOINT,
        )),
        Some(status) => {
            tracing::debug!(
                status = status.as_u16(),
                "the instance metadata endpoint answered the probe"
            );
            inner.mark_answered();
            Ok(())
        }
        None if is_transport(&error) => Err(no_answer(inner, &error)),
        None => Err(error),
    }
}

/// Asks for the token until it comes, the endpoint says no, or the policy gives up.
async fn ask(
    inner: &Inner,
    url: &url::Url,
    deadline: Instant,
) -> Result<d365_auth_core::grant::TokenResponse, AuthError> {
    let headers = [inner.header.clone()];
    let policy = &inner.retry;
    let mut retry = 0_u32;
    let mut first_gone: Option<Instant> = None;
    loop {
        let contacted = inner.has_answered();
        let outcome = match timeout_at(deadline, inner.client.get_token(url, &headers)).await {
            Ok(outcome) => outcome,
            Err(_) => Err(deadline_passed(inner)),
        };
        let error = match outcome {
            Ok(response) => {
                inner.mark_answered();
                return Ok(response);
            }
            Err(error) => error,
        };
        let status = status_of(&error);
        if status.is_some() {
            inner.mark_answered();
        } else if !contacted && is_transport(&error) {
            return Err(no_answer(inner, &error));
        }
        if status == Some(StatusCode::BAD_REQUEST) && !is_unknown_resource(&error) {
            return Err(not_assigned(inner, &error));
        }
        if !is_retried(inner.spelling, status, &error) {
            return Err(error);
        }
        let now = Instant::now();
        if status == Some(StatusCode::GONE) {
            first_gone.get_or_insert(now);
        } else {
            first_gone = None;
        }
        let gone_until = first_gone.map(|first| after(first, policy.gone_window));
        let exhausted = retry >= policy.max_retries;
        if exhausted && gone_until.is_none_or(|until| now >= until) {
            tracing::debug!(
                retries = retry,
                "the managed identity endpoint is still failing; giving up"
            );
            return Err(error);
        }
        let mut wait = match &error {
            AuthError::Throttled {
                retry_after: Some(after),
                ..
            } => *after,
            _ => policy.jittered_delay(retry),
        };
        if let Some(until) = gone_until.filter(|_| exhausted) {
            // Beyond the retries, a 410 is asked again once more when its window ends.
            wait = wait.min(until.saturating_duration_since(now));
        }
        if after(now, wait) >= deadline {
            tracing::debug!(
                wait_ms = wait.as_millis(),
                "the deadline leaves no time to ask the managed identity endpoint again"
            );
            return Err(error);
        }
        tracing::debug!(
            retry = retry + 1,
            status = status.map(|status| status.as_u16()),
            wait_ms = wait.as_millis(),
            %error,
            "asking the managed identity endpoint again"
        );
        sleep(wait).await;
        retry += 1;
    }
}

/// `duration` after `instant`, or a moment decades away when that cannot be represented
/// (a deadline of `Duration::MAX`, a `Retry-After` of billions of seconds): never a panic.
fn after(instant: Instant, duration: Duration) -> Instant {
    const FAR: Duration = Duration::from_secs(30 * 365 * 86_400);
    instant
        .checked_add(duration.min(FAR))
        .or_else(|| instant.checked_add(Duration::from_secs(86_400)))
        .unwrap_or(instant)
}

/// The HTTP status of an answer that was not a token, if there was an answer.
fn status_of(error: &AuthError) -> Option<StatusCode> {
    match error {
        AuthError::Identity(identity) => Some(identity.status()),
        AuthError::Throttled { .. } => Some(StatusCode::TOO_MANY_REQUESTS),
        AuthError::UnexpectedResponse { status, .. } | AuthError::Redirected { status, .. } => {
            Some(*status)
        }
        _ => None,
    }
}

/// No answer at all: the connection failed or timed out.
fn is_transport(error: &AuthError) -> bool {
    matches!(error, AuthError::Timeout { .. } | AuthError::Network { .. })
}

/// Whether a failure is retried at this endpoint: Microsoft's list for IMDS (404, 410,
/// 429, 5xx), 429 and 5xx for App Service, and a timeout or a dropped connection once the
/// endpoint has answered.
fn is_retried(spelling: Spelling, status: Option<StatusCode>, error: &AuthError) -> bool {
    match status {
        Some(status) if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS => true,
        Some(status) => {
            spelling == Spelling::Imds
                && (status == StatusCode::NOT_FOUND || status == StatusCode::GONE)
        }
        None => is_transport(error),
    }
}

/// Entra's "this resource does not exist in the tenant" (AADSTS500011, `invalid_resource`):
/// a 400 about the organization, not the identity.
fn is_unknown_resource(error: &AuthError) -> bool {
    error.kind() == ErrorKind::ResourceNotFound
}

/// The endpoint never answered: no managed identity here.
fn no_answer(inner: &Inner, error: &AuthError) -> AuthError {
    let reason = match error {
        AuthError::Timeout { after, .. } => format!(
            "{} did not answer within {}",
            inner.endpoint_name(),
            seconds(*after)
        ),
        AuthError::Network { source, .. } => {
            // The deepest cause says what happened: "Connection refused (os error 111)".
            let mut cause: &dyn std::error::Error = source.as_ref();
            while let Some(next) = cause.source() {
                cause = next;
            }
            format!("{} could not be reached ({cause})", inner.endpoint_name())
        }
        other => format!("{} did not answer ({other})", inner.endpoint_name()),
    };
    tracing::debug!(%reason, "no managed identity endpoint here");
    AuthError::unavailable(CREDENTIAL, reason, FIX_NO_ENDPOINT)
}

/// A 400 that is not about the organization: the identity asked for is not assigned to the
/// resource (IMDS says "Identity not found").
fn not_assigned(inner: &Inner, error: &AuthError) -> AuthError {
    let said = error
        .identity()
        .map(|refusal| {
            let description = refusal
                .description()
                .and_then(|text| text.lines().next())
                .map(|line| line.chars().take(200).collect::<String>());
            match description {
                Some(line) if !line.trim().is_empty() => {
                    format!(" ({}: {})", refusal.error(), line.trim())
                }
                _ => format!(" ({})", refusal.error()),
            }
        })
        .unwrap_or_default();
    let (problem, fix) = if inner.identity.is_system() {
        (
            "this Azure resource has no system-assigned identity, or has only user-assigned ones and none was named".to_owned(),
            "turn on the system-assigned identity of the VM, scale set, AKS node pool or app (Azure portal > the resource > Identity), or name a user-assigned one by its client id, object id or resource id",
        )
    } else {
        (
            format!(
                "{} is not assigned to this Azure resource",
                inner.identity.describe()
            ),
            "assign it to the VM, scale set, AKS node pool or app (Azure portal > the resource > Identity > User assigned), or check the id",
        )
    };
    AuthError::unavailable(
        CREDENTIAL,
        format!(
            "{} answered HTTP 400{said}: {problem}",
            inner.endpoint_name()
        ),
        fix,
    )
}

/// The whole request took longer than the policy's deadline.
fn deadline_passed(inner: &Inner) -> AuthError {
    AuthError::Timeout {
        endpoint: inner.token_url.clone(),
        after: inner.retry.deadline,
    }
}

fn seconds(duration: Duration) -> String {
    if duration.subsec_millis() == 0 {
        format!("{} s", duration.as_secs())
    } else {
        format!("{:.1} s", duration.as_secs_f64())
    }
}
