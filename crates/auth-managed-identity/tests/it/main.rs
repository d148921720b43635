//! The managed identity's integration tests, as one test binary, against loopback
//! endpoints only (never the real link-local address): what IMDS and App Service receive,
//! the retries, "no managed identity here" (a closed port, a silent listener), detection
//! from variables, the registration, and the no-secrets check.

mod app_service;
mod detection;
mod imds;
mod no_secrets;
mod registration;
mod retries;
mod unavailable;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use d365_auth_core::TokenRequest;
use d365_auth_managed_identity::RetryPolicy;
use d365_test_support::{Canned, Captured, Server};
use tokio::net::TcpListener;

/// The organization every test asks a token for.
pub(crate) const ORG: &str = "https://contoso.crm.dynamics.com";
/// Its v1 resource, as the query carries it.
pub(crate) const RESOURCE: &str = "resource=https%3A%2F%2Fcontoso.crm.dynamics.com%2F";
/// A user-assigned identity's client id.
pub(crate) const CLIENT_ID: &str = "00000000-0000-0000-0000-0000000000c1";
/// A user-assigned identity's object id.
pub(crate) const OBJECT_ID: &str = "00000000-0000-0000-0000-0000000000d1";
/// A user-assigned identity's resource id.
pub(crate) const RESOURCE_ID: &str = "/subscriptions/00000000-0000-0000-0000-0000000000e1/resourceGroups/apps/providers/Microsoft.ManagedIdentity/userAssignedIdentities/importer";
/// The same, as the query carries it.
pub(crate) const RESOURCE_ID_QUERY: &str = "%2Fsubscriptions%2F00000000-0000-0000-0000-0000000000e1%2FresourceGroups%2Fapps%2Fproviders%2FMicrosoft.ManagedIdentity%2FuserAssignedIdentities%2Fimporter";

pub(crate) fn request() -> TokenRequest {
    TokenRequest::for_url(ORG).unwrap()
}

/// A schedule in milliseconds, without jitter.
pub(crate) fn fast() -> RetryPolicy {
    RetryPolicy::imds()
        .initial_delay(Duration::from_millis(5))
        .max_delay(Duration::from_millis(20))
        .gone_window(Duration::from_millis(100))
        .deadline(Duration::from_secs(10))
        .jitter(false)
}

/// Seconds since the epoch, `ahead` from now.
pub(crate) fn epoch_in(ahead: Duration) -> u64 {
    (SystemTime::now() + ahead)
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// IMDS's token answer: every number a string, an empty refresh token.
pub(crate) fn imds_token(access: &str) -> Canned {
    let expires_on = epoch_in(Duration::from_secs(3599));
    Canned::json(
        200,
        format!(
            r#"{{"access_token":"{access}","refresh_token":"","client_id":"{CLIENT_ID}","expires_in":"3599","expires_on":"{expires_on}","ext_expires_in":"3599","not_before":"{}","resource":"{ORG}/","token_type":"Bearer"}}"#,
            expires_on - 3599
        ),
    )
}

/// App Service's token answer: `expires_on` as a string epoch, no `expires_in`.
pub(crate) fn app_service_token(access: &str, expires_on: u64) -> Canned {
    Canned::json(
        200,
        format!(
            r#"{{"access_token":"{access}","expires_on":"{expires_on}","resource":"{ORG}/","token_type":"Bearer","client_id":"{CLIENT_ID}"}}"#
        ),
    )
}

/// An error as IMDS sends it.
pub(crate) fn imds_error(status: u16, error: &str, description: &str) -> Canned {
    Canned::json(
        status,
        format!(r#"{{"error":"{error}","error_description":"{description}"}}"#),
    )
}

/// Whether a request is the probe (IMDS's token request without `Metadata: true`).
pub(crate) fn is_probe(request: &Captured) -> bool {
    request.header("metadata").is_none()
}

/// An IMDS on loopback: the probe gets IMDS's 400 for a missing `Metadata` header, and
/// token requests `answer(request, number of earlier token requests)`.
pub(crate) async fn imds(
    answer: impl Fn(&Captured, usize) -> Canned + Send + Sync + 'static,
) -> Server {
    let asked = Arc::new(AtomicUsize::new(0));
    Server::start(move |request, _| {
        if is_probe(request) {
            imds_error(
                400,
                "bad_request_102",
                "Required metadata header not specified",
            )
        } else {
            answer(request, asked.fetch_add(1, Ordering::SeqCst))
        }
    })
    .await
}

/// An endpoint answering requests with `answers` in order, repeating the last (the IMDS
/// probe aside).
pub(crate) async fn imds_answering(answers: Vec<Canned>) -> Server {
    imds(move |_, earlier| answers[earlier.min(answers.len() - 1)].clone()).await
}

/// The token requests a server received: IMDS's with `Metadata: true`, App Service's with
/// its header (the probes aside).
pub(crate) fn token_requests(server: &Server) -> Vec<Captured> {
    server
        .requests()
        .into_iter()
        .filter(|request| {
            request.header("metadata").is_some() || request.header("x-identity-header").is_some()
        })
        .collect()
}

/// The probes a server received.
pub(crate) fn probes(server: &Server) -> usize {
    server
        .requests()
        .iter()
        .filter(|request| {
            request.header("metadata").is_none() && request.header("x-identity-header").is_none()
        })
        .count()
}

/// A loopback port with nothing listening on it.
pub(crate) async fn closed_port() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    base
}

/// A loopback listener that accepts connections and never answers (nor closes them).
pub(crate) async fn silent_listener() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    base
}

/// A lookup closure over `pairs`, as the process environment would answer.
pub(crate) fn variables(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
    let pairs: Vec<(String, String)> = pairs
        .iter()
        .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
        .collect();
    move |name| {
        pairs
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.clone())
    }
}
