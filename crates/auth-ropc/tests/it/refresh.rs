//! Refresh-token reuse: the password crosses the wire once per refresh-token lifetime.
//! Renewals redeem the refresh token; each new refresh token replaces the old one; a
//! refused refresh token, and only that, falls back to the password.

use std::sync::Arc;
use std::time::Duration;

use d365_auth_core::store::{MemoryStore, TokenStore};
use d365_auth_core::{AccessToken, ErrorKind, TokenCache, TokenProvider, TokenRequest};
use d365_auth_ropc::UsernamePassword;
use d365_test_support::{Canned, Server};
use secrecy::ExposeSecret;

const RENEWALS: usize = 10;

fn request() -> TokenRequest {
    TokenRequest::for_url("https://contoso.crm.dynamics.com").unwrap()
}

fn grant(server: &Server) -> UsernamePassword {
    UsernamePassword::builder()
        .authority_host(&server.base)
        .tenant("organizations")
        .client_id("app")
        .username("ana@contoso.com")
        .password("USER-PASSWORD".into())
        .build()
        .unwrap()
}

/// Password grants get `ACCESS-P{n}`/`REFRESH-P{n}`, refreshes `ACCESS-R{n}`/`REFRESH-R{n}`.
fn numbered(
    expires_in: u64,
) -> impl Fn(&d365_test_support::Captured, usize) -> Canned + Send + Sync {
    move |request, earlier| match request.grant_type().as_deref() {
        Some("password") => Canned::token(
            &format!("ACCESS-P{earlier}"),
            Some(&format!("REFRESH-P{earlier}")),
            expires_in,
        ),
        Some("refresh_token") => Canned::token(
            &format!("ACCESS-R{earlier}"),
            Some(&format!("REFRESH-R{earlier}")),
            expires_in,
        ),
        _ => Canned::json(400, r#"{"error":"unsupported_grant_type"}"#),
    }
}

fn refresh_of(token: &AccessToken) -> String {
    token
        .refresh_token()
        .map(|secret| secret.expose_secret().to_owned())
        .unwrap_or_default()
}

#[tokio::test]
async fn n_renewals_cost_one_password_grant() {
    let server = Server::managed(numbered(3599)).await;
    let grant = grant(&server);
    let mut token = grant.request_token(&request()).await.unwrap();
    for _ in 0..RENEWALS {
        token = grant.renew_token(&request(), &token).await.unwrap();
    }
    assert_eq!(server.count("password"), 1);
    assert_eq!(server.count("refresh_token"), RENEWALS);
    assert_eq!(server.realm_requests().len(), 1);
    assert_eq!(
        token.secret().expose_secret(),
        format!("ACCESS-R{}", RENEWALS - 1)
    );
}

#[tokio::test]
async fn through_a_token_cache_with_short_lived_tokens() {
    // Tokens that expire on arrival: every `get` renews, through `renew_token`.
    let server = Server::managed(numbered(0)).await;
    let cache = TokenCache::builder(grant(&server))
        .refresh_before_expiry(Duration::from_secs(3600))
        .build();
    for _ in 0..=RENEWALS {
        cache.get(&request()).await.unwrap();
    }
    assert_eq!(server.count("password"), 1);
    assert_eq!(server.count("refresh_token"), RENEWALS);
}

#[tokio::test]
async fn each_new_refresh_token_replaces_the_old_one() {
    let server = Server::managed(numbered(3599)).await;
    let grant = grant(&server);
    let mut token = grant.request_token(&request()).await.unwrap();
    for _ in 0..3 {
        token = grant.renew_token(&request(), &token).await.unwrap();
    }
    let sent: Vec<String> = server
        .token_requests()
        .iter()
        .filter_map(|request| request.field("refresh_token"))
        .collect();
    assert_eq!(sent, ["REFRESH-P0", "REFRESH-R0", "REFRESH-R1"]);
    assert_eq!(refresh_of(&token), "REFRESH-R2");
}

#[tokio::test]
async fn the_refresh_request_names_client_target_and_offline_access() {
    let server = Server::managed(numbered(3599)).await;
    let grant = UsernamePassword::builder()
        .authority_host(&server.base)
        .tenant("organizations")
        .client_id("app")
        .client_secret("APP-SECRET".into())
        .username("ana@contoso.com")
        .password("USER-PASSWORD".into())
        .build()
        .unwrap();
    let token = grant.request_token(&request()).await.unwrap();
    grant.renew_token(&request(), &token).await.unwrap();
    let refresh = server
        .token_requests()
        .into_iter()
        .find(|request| request.grant_type().as_deref() == Some("refresh_token"))
        .unwrap();
    let mut names: Vec<String> = refresh.form().into_iter().map(|(name, _)| name).collect();
    names.sort();
    assert_eq!(
        names,
        [
            "client_id",
            "client_secret",
            "grant_type",
            "refresh_token",
            "scope"
        ]
    );
    assert_eq!(
        refresh.field("scope").as_deref(),
        Some("https://contoso.crm.dynamics.com/.default offline_access")
    );
    assert!(refresh.field("password").is_none());
}

#[tokio::test]
async fn a_refresh_answer_without_a_refresh_token_keeps_the_old_one() {
    let server = Server::managed(|request, _| match request.grant_type().as_deref() {
        Some("password") => Canned::token("ACCESS-P", Some("REFRESH-P"), 3599),
        _ => Canned::token("ACCESS-R", None, 3599),
    })
    .await;
    let grant = grant(&server);
    let first = grant.request_token(&request()).await.unwrap();
    let second = grant.renew_token(&request(), &first).await.unwrap();
    let third = grant.renew_token(&request(), &second).await.unwrap();
    assert_eq!(second.secret().expose_secret(), "ACCESS-R");
    assert_eq!(refresh_of(&second), "REFRESH-P");
    assert_eq!(refresh_of(&third), "REFRESH-P");
    assert_eq!(server.count("password"), 1);
}

#[tokio::test]
async fn a_rejected_refresh_token_falls_back_to_the_password_once() {
    // Every refresh is refused as expired (AADSTS70008): each renewal costs one refused
    // refresh and one password grant, and the password grant's new refresh token is the
    // one tried next.
    let server = Server::managed(|request, earlier| match request.grant_type().as_deref() {
        Some("password") => Canned::token(
            &format!("ACCESS-P{earlier}"),
            Some(&format!("REFRESH-P{earlier}")),
            3599,
        ),
        _ => Canned::entra_error(
            400,
            "invalid_grant",
            70008,
            "The provided authorization code or refresh token has expired due to inactivity.",
        ),
    })
    .await;
    let grant = grant(&server);
    let first = grant.request_token(&request()).await.unwrap();
    let second = grant.renew_token(&request(), &first).await.unwrap();
    let third = grant.renew_token(&request(), &second).await.unwrap();
    assert_eq!(server.count("password"), 3);
    assert_eq!(server.count("refresh_token"), 2);
    assert_eq!(third.secret().expose_secret(), "ACCESS-P2");
    let tried: Vec<String> = server
        .token_requests()
        .iter()
        .filter_map(|request| request.field("refresh_token"))
        .collect();
    assert_eq!(tried, ["REFRESH-P0", "REFRESH-P1"]);
}

#[tokio::test]
async fn plain_invalid_grant_on_refresh_also_falls_back() {
    // AD FS and RFC 6749 servers send `invalid_grant` without an AADSTS code.
    let server = Server::managed(|request, _| match request.grant_type().as_deref() {
        Some("password") => Canned::token("ACCESS-P", Some("REFRESH-P"), 3599),
        _ => Canned::json(400, r#"{"error":"invalid_grant","error_description":"MSIS9615: The refresh token has expired."}"#),
    })
    .await;
    let grant = grant(&server);
    let first = grant.request_token(&request()).await.unwrap();
    grant.renew_token(&request(), &first).await.unwrap();
    assert_eq!(server.count("password"), 2);
}

#[tokio::test]
async fn other_refresh_failures_do_not_send_the_password() {
    let failures = [
        (
            Canned::json(503, r#"{"error":"temporarily_unavailable"}"#),
            ErrorKind::ServiceUnavailable,
        ),
        (
            Canned::entra_error(
                401,
                "invalid_client",
                7000215,
                "Invalid client secret provided.",
            ),
            ErrorKind::InvalidClientSecret,
        ),
        (Canned::drop_connection(), ErrorKind::Network),
    ];
    for (failure, kind) in failures {
        let server = Server::managed(move |request, _| match request.grant_type().as_deref() {
            Some("password") => Canned::token("ACCESS-P", Some("REFRESH-P"), 3599),
            _ => failure.clone(),
        })
        .await;
        let grant = grant(&server);
        let first = grant.request_token(&request()).await.unwrap();
        let error = grant.renew_token(&request(), &first).await.unwrap_err();
        assert_eq!(error.kind(), kind, "{error}");
        assert_eq!(server.count("password"), 1, "{kind:?}");
    }
}

#[tokio::test]
async fn a_token_without_a_refresh_token_is_renewed_with_the_password() {
    let server = Server::managed(|_, _| Canned::token("ACCESS", None, 3599)).await;
    let grant = grant(&server);
    let first = grant.request_token(&request()).await.unwrap();
    grant.renew_token(&request(), &first).await.unwrap();
    assert_eq!(server.count("password"), 2);
    assert_eq!(server.count("refresh_token"), 0);
}

#[tokio::test]
async fn a_shared_store_carries_the_refresh_token_to_another_process() {
    // Two caches over one store stand for two runs of a program with a persistent store:
    // the second run renews with the first run's refresh token, without the password.
    let server = Server::managed(numbered(0)).await;
    let store: Arc<dyn TokenStore> = Arc::new(MemoryStore::new());
    let first_run = TokenCache::builder(grant(&server))
        .store(Arc::clone(&store))
        .build();
    first_run.get(&request()).await.unwrap();
    drop(first_run);

    let second_run = TokenCache::builder(grant(&server)).store(store).build();
    let token = second_run.get(&request()).await.unwrap();
    assert_eq!(server.count("password"), 1);
    assert_eq!(server.count("refresh_token"), 1);
    assert_eq!(refresh_of(&token), "REFRESH-R0");
}
