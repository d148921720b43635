//! The user realm check: a federated user is refused before the password is sent; a
//! managed user goes ahead (and the realm is not asked again); a missing or unreachable
//! realm endpoint skips the check, as MSAL does; the check can be turned off.

use d365_auth_core::{ErrorKind, TokenProvider, TokenRequest};
use d365_auth_ropc::{UsernamePassword, is_federated_user};
use d365_test_support::{Canned, Server};

fn request() -> TokenRequest {
    TokenRequest::for_url("https://contoso.crm.dynamics.com").unwrap()
}

fn grant(server: &Server, check: bool) -> UsernamePassword {
    UsernamePassword::builder()
        .authority_host(&server.base)
        .tenant("organizations")
        .client_id("app")
        .username("ana@contoso.com")
        .password("USER-PASSWORD".into())
        .user_realm_check(check)
        .build()
        .unwrap()
}

async fn with_realm(realm: Canned) -> Server {
    Server::start(move |request, _| {
        if request.is_realm() {
            realm.clone()
        } else {
            Canned::token("ACCESS", Some("REFRESH"), 3599)
        }
    })
    .await
}

#[tokio::test]
async fn a_federated_user_is_refused_before_the_password_is_sent() {
    let server = with_realm(Canned::realm("Federated")).await;
    let error = grant(&server, true)
        .request_token(&request())
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Configuration);
    assert!(is_federated_user(&error));
    let message = error.to_string();
    for expected in [
        "ana@contoso.com",
        "domain `contoso.com`",
        "federated to another identity provider",
        "the password was not sent",
        "client credentials grant",
        "device code grant",
        "user realm check off",
    ] {
        assert!(
            message.contains(expected),
            "{expected:?} missing: {message}"
        );
    }
    assert!(!message.contains("USER-PASSWORD"));
    assert!(server.token_requests().is_empty());
}

#[tokio::test]
async fn account_types_are_read_in_any_case() {
    let server = with_realm(Canned::json(
        200,
        r#"{"ver":"1.0","account_type":"federated"}"#,
    ))
    .await;
    let error = grant(&server, true)
        .request_token(&request())
        .await
        .unwrap_err();
    assert!(is_federated_user(&error), "{error}");
    assert!(server.token_requests().is_empty());
}

#[tokio::test]
async fn a_managed_user_is_checked_once() {
    let server = with_realm(Canned::realm("Managed")).await;
    let grant = grant(&server, true);
    grant.request_token(&request()).await.unwrap();
    grant.request_token(&request()).await.unwrap();
    assert_eq!(server.realm_requests().len(), 1);
    assert_eq!(server.count("password"), 2);
}

#[tokio::test]
async fn no_answer_from_the_realm_endpoint_skips_the_check() {
    let answers = [
        Canned::not_found(),
        Canned::drop_connection(),
        Canned::json(500, r#"{"error":"server_error"}"#),
        Canned::json(200, "not json"),
        Canned::realm("Unknown"),
    ];
    for answer in answers {
        let server = with_realm(answer.clone()).await;
        let token = grant(&server, true).request_token(&request()).await;
        assert!(token.is_ok(), "{answer:?}: {token:?}");
        assert_eq!(server.realm_requests().len(), 1);
        assert_eq!(server.count("password"), 1);
    }
}

#[tokio::test]
async fn a_missing_realm_endpoint_is_not_asked_again_but_an_unreachable_one_is() {
    let server = with_realm(Canned::not_found()).await;
    let grant_404 = grant(&server, true);
    grant_404.request_token(&request()).await.unwrap();
    grant_404.request_token(&request()).await.unwrap();
    assert_eq!(server.realm_requests().len(), 1);

    let server = with_realm(Canned::drop_connection()).await;
    let grant_down = grant(&server, true);
    grant_down.request_token(&request()).await.unwrap();
    grant_down.request_token(&request()).await.unwrap();
    assert_eq!(server.realm_requests().len(), 2);
}

#[tokio::test]
async fn the_check_can_be_turned_off() {
    let server = with_realm(Canned::realm("Federated")).await;
    let grant = grant(&server, false);
    assert!(!grant.checks_user_realm());
    grant.request_token(&request()).await.unwrap();
    assert!(server.realm_requests().is_empty());
    assert_eq!(server.count("password"), 1);
}

#[tokio::test]
async fn renewals_with_a_refresh_token_do_not_ask_the_realm() {
    let server = with_realm(Canned::realm("Managed")).await;
    let grant = grant(&server, true);
    let mut token = grant.request_token(&request()).await.unwrap();
    for _ in 0..3 {
        token = grant.renew_token(&request(), &token).await.unwrap();
    }
    assert_eq!(server.realm_requests().len(), 1);
}
