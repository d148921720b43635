//! "No managed identity here", fast: a closed port, a listener that never answers, Docker
//! Desktop's 403 — each an `AuthError::Unavailable` naming the endpoint and what to do,
//! without waiting for a retry schedule.

use std::time::{Duration, Instant};

use d365_auth_core::{ErrorCategory, ErrorKind, TokenProvider};
use d365_auth_managed_identity::ManagedIdentity;
use d365_test_support::{Canned, Server};
use secrecy::SecretString;

use crate::{closed_port, fast, request, silent_listener, variables};

const FIX: &str = "run in Azure with a managed identity assigned, or set AZURE_POD_IDENTITY_AUTHORITY_HOST / IDENTITY_ENDPOINT, or use another credential";

#[tokio::test]
async fn a_closed_port_is_unavailable_at_once() {
    let base = closed_port().await;
    let grant = ManagedIdentity::builder()
        .imds_endpoint(&base)
        .build()
        .unwrap();
    let started = Instant::now();
    let error = grant.request_token(&request()).await.unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert!(error.is_unavailable(), "{error:?}");
    assert_eq!(error.kind(), ErrorKind::CredentialUnavailable);
    assert_eq!(error.category(), ErrorCategory::Configuration);
    let message = error.to_string();
    assert!(
        message
            .starts_with("managed identity is not available here: the instance metadata endpoint"),
        "{message}"
    );
    assert!(
        message.contains(&format!(
            "{base}/metadata/identity/oauth2/token could not be reached"
        )),
        "{message}"
    );
    assert!(message.ends_with(FIX), "{message}");
}

#[tokio::test]
async fn a_silent_listener_is_unavailable_after_the_probe_timeout() {
    let base = silent_listener().await;
    // The default probe: 1 second, whatever the retry policy and request timeout say.
    let grant = ManagedIdentity::builder()
        .imds_endpoint(&base)
        .build()
        .unwrap();
    let started = Instant::now();
    let error = grant.request_token(&request()).await.unwrap_err();
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_secs(10), "{elapsed:?}");
    assert!(error.is_unavailable(), "{error:?}");
    assert!(
        error.to_string().contains("did not answer within 1 s"),
        "{error}"
    );
}

#[tokio::test]
async fn an_app_service_endpoint_that_is_not_there_is_unavailable() {
    let base = closed_port().await;
    let grant = ManagedIdentity::builder()
        .app_service(format!("{base}/msi/token"), SecretString::from("header"))
        .retry_policy(fast())
        .build()
        .unwrap();
    let error = grant.request_token(&request()).await.unwrap_err();
    assert!(error.is_unavailable(), "{error:?}");
    assert!(
        error.to_string().contains(&format!(
            "the App Service identity endpoint {base}/msi/token"
        )),
        "{error}"
    );
}

#[tokio::test]
async fn a_pod_identity_host_is_not_probed_but_a_closed_one_is_unavailable() {
    let base = closed_port().await;
    let grant = ManagedIdentity::builder()
        .from_variables(variables(&[("AZURE_POD_IDENTITY_AUTHORITY_HOST", &base)]))
        .retry_policy(fast())
        .build()
        .unwrap();
    assert_eq!(grant.probe_timeout(), None);
    let error = grant.request_token(&request()).await.unwrap_err();
    assert!(error.is_unavailable(), "{error:?}");
}

#[tokio::test]
async fn docker_desktops_403_means_no_imds_here() {
    let server = Server::start(|_, _| {
        Canned::with_type(
            403,
            "text/plain",
            "connecting to 169.254.169.254:80: connecting to 169.254.169.254:80: dial tcp 169.254.169.254:80: connectex: A socket operation was attempted to an unreachable network.",
        )
    })
    .await;
    let grant = ManagedIdentity::builder()
        .imds_endpoint(&server.base)
        .retry_policy(fast())
        .build()
        .unwrap();
    let error = grant.request_token(&request()).await.unwrap_err();
    assert!(error.is_unavailable(), "{error:?}");
    assert!(error.to_string().contains("Docker Desktop"), "{error}");
    assert_eq!(server.requests().len(), 1, "only the probe");
}
