//! The whole sign-in against the fake identity provider: the authorize URL, the code
//! redeemed with the verifier, the nonce, refusals, the timeout, renewal, AD FS.

use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use d365_auth_core::{ErrorKind, TokenProvider, TokenRequest};
use secrecy::ExposeSecret as _;
use sha2::{Digest as _, Sha256};

use crate::support::{ACCESS, CODE, Idp, Person, REFRESH, RENEWED};

fn org() -> TokenRequest {
    TokenRequest::for_url("https://contoso.crm.dynamics.com").unwrap()
}

#[tokio::test]
async fn a_person_signs_in_and_the_code_is_redeemed_with_the_verifier() {
    let idp = Idp::start(None).await;
    let grant = idp
        .builder(Person::SignsIn)
        .login_hint("ana@contoso.onmicrosoft.com")
        .build()
        .unwrap();
    let token = grant.request_token(&org()).await.unwrap();
    assert_eq!(token.secret().expose_secret(), ACCESS);
    assert_eq!(token.refresh_token().unwrap().expose_secret(), REFRESH);

    let seen = idp.seen.lock().unwrap();
    let authorize = &seen.authorize;
    assert_eq!(authorize["response_type"], "code");
    assert_eq!(authorize["code_challenge_method"], "S256");
    assert_eq!(
        authorize["client_id"],
        "00000000-0000-0000-0000-0000000000c1"
    );
    assert_eq!(authorize["login_hint"], "ana@contoso.onmicrosoft.com");
    assert_eq!(
        authorize["scope"],
        "https://contoso.crm.dynamics.com/.default offline_access openid profile"
    );
    let redirect_uri = &authorize["redirect_uri"];
    assert!(
        redirect_uri.starts_with("http://localhost:"),
        "{redirect_uri}"
    );
    assert!(redirect_uri.ends_with('/'));
    assert_eq!(seen.pages.len(), 1);
    assert_eq!(seen.pages[0].0, 200);
    assert!(seen.pages[0].1.contains("Signed in"), "{}", seen.pages[0].1);
    assert!(
        !seen.pages[0].1.contains(CODE),
        "the page never shows the code"
    );

    let redeemed = &idp.server.requests()[0];
    assert_eq!(
        redeemed.path(),
        "/11111111-2222-3333-4444-555555555555/oauth2/v2.0/token"
    );
    assert_eq!(
        redeemed.field("grant_type").as_deref(),
        Some("authorization_code")
    );
    assert_eq!(redeemed.field("code").as_deref(), Some(CODE));
    assert_eq!(redeemed.field("redirect_uri").as_ref(), Some(redirect_uri));
    assert_eq!(
        redeemed.field("client_secret"),
        None,
        "a public client sends no secret"
    );
    let verifier = redeemed.field("code_verifier").unwrap();
    assert!((43..=128).contains(&verifier.len()));
    assert_eq!(
        URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())),
        authorize["code_challenge"],
        "the verifier is the one the challenge was made from"
    );
}

#[tokio::test]
async fn renewal_uses_the_refresh_token_and_shows_nothing() {
    let idp = Idp::start(None).await;
    let grant = idp.builder(Person::SignsIn).build().unwrap();
    let first = grant.request_token(&org()).await.unwrap();
    let renewed = grant.renew_token(&org(), &first).await.unwrap();
    assert_eq!(renewed.secret().expose_secret(), RENEWED);
    assert_eq!(idp.seen.lock().unwrap().shown, 1, "no second sign-in");
    let refresh = &idp.server.requests()[1];
    assert_eq!(
        refresh.field("grant_type").as_deref(),
        Some("refresh_token")
    );
    assert_eq!(refresh.field("refresh_token").as_deref(), Some(REFRESH));
    assert!(
        refresh
            .field("scope")
            .unwrap()
            .starts_with("https://contoso.crm.dynamics.com/.default"),
        "the renewal asks for the scope the sign-in asked for"
    );
}

#[tokio::test]
async fn an_answer_of_another_sign_in_is_refused_and_the_sign_in_goes_on() {
    let idp = Idp::start(None).await;
    let grant = idp.builder(Person::WrongStateFirst).build().unwrap();
    let token = grant.request_token(&org()).await.unwrap();
    assert_eq!(token.secret().expose_secret(), ACCESS);
    let pages = idp.pages(2).await;
    assert_eq!(pages[0].0, 400);
    assert!(pages[0].1.contains("another sign-in"));
    assert_eq!(pages[1].0, 200);
    let redeemed = idp.server.requests();
    assert_eq!(redeemed.len(), 1);
    assert_eq!(
        redeemed[0].field("code").as_deref(),
        Some(CODE),
        "the forged code was never redeemed"
    );
}

#[tokio::test]
async fn the_form_post_answer_is_read_too() {
    let idp = Idp::start(None).await;
    let grant = idp.builder(Person::PostsTheForm).build().unwrap();
    grant.request_token(&org()).await.unwrap();
    assert_eq!(idp.pages(1).await[0].0, 200);
}

#[tokio::test]
async fn a_person_who_cancels_gets_a_declined_error_and_a_page_that_says_so() {
    let idp = Idp::start(None).await;
    let grant = idp.builder(Person::Cancels).build().unwrap();
    let error = grant.request_token(&org()).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::AuthorizationDeclined, "{error}");
    assert!(idp.server.requests().is_empty(), "nothing was redeemed");
    let pages = idp.pages(1).await;
    assert!(pages[0].1.contains("cancelled"), "{}", pages[0].1);
}

#[tokio::test]
async fn a_refusal_on_the_redirect_carries_its_aadsts_code() {
    let idp = Idp::start(None).await;
    let grant = idp
        .builder(Person::Refused(
            "invalid_request",
            "AADSTS50011: The redirect URI 'http://localhost:1/' specified in the request does not match the redirect URIs configured for the application.",
        ))
        .build()
        .unwrap();
    let error = grant.request_token(&org()).await.unwrap_err();
    assert_eq!(error.aadsts(), Some(50011), "{error}");
    let page = &idp.pages(1).await[0].1;
    assert!(page.contains("AADSTS50011"), "the page says why: {page}");
}

#[tokio::test]
async fn an_id_token_of_another_sign_in_is_refused() {
    let idp = Idp::start(Some("someone-elses-nonce")).await;
    let grant = idp.builder(Person::SignsIn).build().unwrap();
    let error = grant.request_token(&org()).await.unwrap_err();
    assert!(error.to_string().contains("nonce"), "{error}");
}

#[tokio::test]
async fn nobody_signing_in_ends_at_the_timeout() {
    let idp = Idp::start(None).await;
    let grant = idp
        .builder(Person::WalksAway)
        .sign_in_timeout(Duration::from_secs(1))
        .build()
        .unwrap();
    let started = Instant::now();
    let error = grant.request_token(&org()).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Cancelled, "{error}");
    assert!(
        error.to_string().contains("not finished within 1 s"),
        "{error}"
    );
    assert!(started.elapsed() < Duration::from_secs(15));
}

#[tokio::test]
async fn ad_fs_is_asked_for_the_resource() {
    let idp = Idp::start(None).await;
    let grant = idp
        .builder(Person::SignsIn)
        .adfs(format!("{}/adfs", idp.server.base))
        .build()
        .unwrap();
    assert_eq!(
        grant.authorize_endpoint().as_str(),
        format!("{}/adfs/oauth2/authorize", idp.server.base)
    );
    grant.request_token(&org()).await.unwrap();
    let seen = idp.seen.lock().unwrap();
    assert_eq!(
        seen.authorize["resource"],
        "https://contoso.crm.dynamics.com/"
    );
    assert!(!seen.authorize.contains_key("scope"));
    let redeemed = &idp.server.requests()[0];
    assert_eq!(redeemed.path(), "/adfs/oauth2/token");
    assert_eq!(
        redeemed.field("resource").as_deref(),
        Some("https://contoso.crm.dynamics.com/")
    );
}
