//! The retry rules, on a millisecond schedule: IMDS retries `404`, `410` (for the whole
//! window), `429` (after its `Retry-After`) and `5xx`, and timeouts once it has answered;
//! a `400` is not retried and says the identity is not assigned; App Service retries `429`
//! and `5xx` only; the deadline bounds everything.

use std::time::{Duration, Instant};

use d365_auth_core::{AuthError, ErrorKind, TokenProvider};
use d365_auth_managed_identity::{ManagedIdentity, RetryPolicy};
use d365_test_support::{Canned, Server};
use secrecy::{ExposeSecret as _, SecretString};

use crate::{
    CLIENT_ID, app_service_token, epoch_in, fast, imds, imds_answering, imds_error, imds_token,
    request, token_requests,
};

fn grant(base: &str, policy: RetryPolicy) -> ManagedIdentity {
    ManagedIdentity::builder()
        .imds_endpoint(base)
        .retry_policy(policy)
        .build()
        .unwrap()
}

#[tokio::test]
async fn a_500_then_a_token() {
    let server = imds_answering(vec![
        imds_error(500, "server_error", "Something went wrong"),
        imds_token("after-500"),
    ])
    .await;
    let token = grant(&server.base, fast())
        .request_token(&request())
        .await
        .unwrap();
    assert_eq!(token.secret().expose_secret(), "after-500");
    assert_eq!(token_requests(&server).len(), 2);
}

#[tokio::test]
async fn a_404_and_a_502_page_are_retried_at_imds() {
    let server = imds_answering(vec![
        Canned::not_found(),
        Canned::with_type(502, "text/html", "<html><title>Bad Gateway</title></html>"),
        imds_token("after-404"),
    ])
    .await;
    grant(&server.base, fast())
        .request_token(&request())
        .await
        .unwrap();
    assert_eq!(token_requests(&server).len(), 3);
}

#[tokio::test]
async fn a_429_waits_for_its_retry_after() {
    let server = imds_answering(vec![
        Canned::json(429, r#"{"error":"too_many_requests"}"#).header("retry-after", "1"),
        imds_token("after-429"),
    ])
    .await;
    // The back-off alone would wait 5 ms: the second request comes after Retry-After.
    let started = Instant::now();
    grant(&server.base, fast())
        .request_token(&request())
        .await
        .unwrap();
    assert!(
        started.elapsed() >= Duration::from_millis(950),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(token_requests(&server).len(), 2);
}

#[tokio::test]
async fn a_410_is_retried_beyond_the_retry_count_within_its_window() {
    // Four 410s with one retry allowed: the 410 window (10 s here) keeps the grant asking.
    let server = imds_answering(vec![
        Canned::with_type(410, "text/plain", "IMDS is updating"),
        Canned::with_type(410, "text/plain", "IMDS is updating"),
        Canned::with_type(410, "text/plain", "IMDS is updating"),
        Canned::with_type(410, "text/plain", "IMDS is updating"),
        imds_token("after-410"),
    ])
    .await;
    let policy = fast().max_retries(1).gone_window(Duration::from_secs(10));
    let token = grant(&server.base, policy)
        .request_token(&request())
        .await
        .unwrap();
    assert_eq!(token.secret().expose_secret(), "after-410");
    assert_eq!(token_requests(&server).len(), 5);
}

#[tokio::test]
async fn a_410_keeps_being_retried_for_at_least_its_window() {
    // Microsoft: a 410 means "back within 70 s". Scaled down: a 400 ms window, one retry,
    // waits of at most 20 ms — the grant still asks until the window has passed.
    let server = imds_answering(vec![Canned::with_type(
        410,
        "text/plain",
        "IMDS is updating",
    )])
    .await;
    let window = Duration::from_millis(400);
    let policy = fast().max_retries(1).gone_window(window);
    let started = Instant::now();
    let error = grant(&server.base, policy)
        .request_token(&request())
        .await
        .unwrap_err();
    assert!(started.elapsed() >= window, "{:?}", started.elapsed());
    assert!(
        token_requests(&server).len() > 2,
        "{} requests",
        token_requests(&server).len()
    );
    assert!(
        matches!(&error, AuthError::UnexpectedResponse { status, .. } if status.as_u16() == 410),
        "{error:?}"
    );
}

#[tokio::test]
async fn retries_end_after_the_retry_count_with_the_last_answer() {
    let server = imds_answering(vec![imds_error(503, "service_unavailable", "busy")]).await;
    let error = grant(&server.base, fast().max_retries(3))
        .request_token(&request())
        .await
        .unwrap_err();
    assert_eq!(
        token_requests(&server).len(),
        4,
        "the first request and 3 retries"
    );
    assert!(error.is_transient(), "{error:?}");
    assert_eq!(error.identity().unwrap().status().as_u16(), 503);
}

#[tokio::test]
async fn the_deadline_bounds_every_retry() {
    let server = imds_answering(vec![imds_error(500, "server_error", "down")]).await;
    let policy = fast()
        .max_retries(10_000)
        .initial_delay(Duration::from_millis(20))
        .max_delay(Duration::from_millis(20))
        .deadline(Duration::from_millis(300));
    let started = Instant::now();
    let error = grant(&server.base, policy)
        .request_token(&request())
        .await
        .unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert!(error.is_transient(), "{error:?}");
    assert!(token_requests(&server).len() < 100);
}

#[tokio::test]
async fn a_400_is_not_retried_and_says_the_identity_is_not_assigned() {
    let server = imds_answering(vec![imds_error(
        400,
        "invalid_request",
        "Identity not found",
    )])
    .await;
    let grant = ManagedIdentity::builder()
        .imds_endpoint(&server.base)
        .client_id(CLIENT_ID)
        .retry_policy(fast())
        .build()
        .unwrap();
    let error = grant.request_token(&request()).await.unwrap_err();
    assert_eq!(token_requests(&server).len(), 1, "a 400 is not retried");
    assert!(error.is_unavailable(), "{error:?}");
    let message = error.to_string();
    for expected in [
        "managed identity is not available here",
        "HTTP 400",
        "Identity not found",
        &format!("the user-assigned identity with client id {CLIENT_ID} is not assigned"),
        "assign it",
    ] {
        assert!(message.contains(expected), "{expected}: {message}");
    }

    let server = imds_answering(vec![imds_error(
        400,
        "invalid_request",
        "Identity not found",
    )])
    .await;
    let error = ManagedIdentity::builder()
        .imds_endpoint(&server.base)
        .retry_policy(fast())
        .build()
        .unwrap()
        .request_token(&request())
        .await
        .unwrap_err();
    assert!(
        error.to_string().contains("no system-assigned identity"),
        "{error}"
    );
}

#[tokio::test]
async fn a_400_for_an_unknown_organization_keeps_entras_error() {
    let server = imds_answering(vec![Canned::entra_error(
        400,
        "invalid_resource",
        500_011,
        "The resource principal named https://contoso.crm.dynamics.com/ was not found in the tenant.",
    )])
    .await;
    let error = grant(&server.base, fast())
        .request_token(&request())
        .await
        .unwrap_err();
    assert_eq!(token_requests(&server).len(), 1);
    assert_eq!(error.kind(), ErrorKind::ResourceNotFound, "{error:?}");
    assert!(!error.is_unavailable());
}

#[tokio::test]
async fn a_401_is_not_retried() {
    let server = imds_answering(vec![imds_error(401, "unknown_source", "Unknown Source")]).await;
    let error = grant(&server.base, fast())
        .request_token(&request())
        .await
        .unwrap_err();
    assert_eq!(token_requests(&server).len(), 1);
    assert!(
        !error.is_unavailable() && !error.is_transient(),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_timeout_after_the_endpoint_answered_is_retried() {
    let server = imds(|_, earlier| {
        if earlier == 0 {
            Canned::hang()
        } else {
            imds_token("after-timeout")
        }
    })
    .await;
    let grant = ManagedIdentity::builder()
        .imds_endpoint(&server.base)
        .timeout(Duration::from_millis(300))
        .retry_policy(fast())
        .build()
        .unwrap();
    let token = grant.request_token(&request()).await.unwrap();
    assert_eq!(token.secret().expose_secret(), "after-timeout");
    assert_eq!(token_requests(&server).len(), 2);
}

#[tokio::test]
async fn app_service_retries_5xx_and_429_but_not_404() {
    let expires_on = epoch_in(Duration::from_secs(3600));
    let server = Server::start(move |_, earlier| match earlier {
        0 => Canned::json(503, r#"{"statusCode":503,"message":"busy"}"#),
        1 => Canned::json(429, r#"{"statusCode":429,"message":"slow down"}"#),
        _ => app_service_token("after-503", expires_on),
    })
    .await;
    let app_service = |server: &Server| {
        ManagedIdentity::builder()
            .app_service(
                format!("{}/msi/token", server.base),
                SecretString::from("h"),
            )
            .retry_policy(
                RetryPolicy::app_service()
                    .initial_delay(Duration::from_millis(5))
                    .jitter(false),
            )
            .build()
            .unwrap()
    };
    let token = app_service(&server)
        .request_token(&request())
        .await
        .unwrap();
    assert_eq!(token.secret().expose_secret(), "after-503");
    assert_eq!(server.requests().len(), 3);

    let server = Server::start(|_, _| Canned::not_found()).await;
    let error = app_service(&server)
        .request_token(&request())
        .await
        .unwrap_err();
    assert_eq!(
        server.requests().len(),
        1,
        "a 404 is not retried at App Service"
    );
    assert_eq!(error.kind(), ErrorKind::UnexpectedResponse, "{error:?}");

    let server = Server::start(|_, _| Canned::json(500, r#"{"statusCode":500}"#)).await;
    app_service(&server)
        .request_token(&request())
        .await
        .unwrap_err();
    assert_eq!(
        server.requests().len(),
        4,
        "the first request and 3 retries"
    );
}

#[tokio::test]
async fn absurd_waits_and_deadlines_end_in_an_error_never_a_panic() {
    // A Retry-After of billions of years: past any deadline, so not waited for.
    let server = imds_answering(vec![
        Canned::json(429, r#"{"error":"too_many_requests"}"#)
            .header("retry-after", "18446744073709551615"),
    ])
    .await;
    let error = grant(&server.base, fast())
        .request_token(&request())
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Throttled, "{error:?}");
    assert_eq!(token_requests(&server).len(), 1);

    // Every bound at its maximum: a 500 then a token, with no overflow anywhere.
    let server = imds_answering(vec![
        imds_error(500, "server_error", "once"),
        imds_token("unbounded"),
    ])
    .await;
    let unbounded = RetryPolicy::imds()
        .initial_delay(Duration::ZERO)
        .max_delay(Duration::MAX)
        .gone_window(Duration::MAX)
        .deadline(Duration::MAX);
    grant(&server.base, unbounded)
        .request_token(&request())
        .await
        .unwrap();
}
