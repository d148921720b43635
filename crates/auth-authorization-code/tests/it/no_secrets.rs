//! No code, verifier, token or ID token reaches a log line at TRACE level, a `Debug` or an
//! error: a successful sign-in, a renewal, a refusal and a nonce mismatch are run, and
//! everything observable is searched.

use d365_auth_core::{TokenProvider, TokenRequest};
use d365_test_support::SecretWatch;

use crate::support::{ACCESS, CODE, Idp, Person, REFRESH, RENEWED};

#[tokio::test]
async fn no_secret_in_logs_debug_or_errors() {
    let mut watch = SecretWatch::start(&[CODE, ACCESS, REFRESH, RENEWED]);
    let request = TokenRequest::for_url("https://contoso.crm.dynamics.com").unwrap();

    let idp = Idp::start(None).await;
    let grant = idp.builder(Person::SignsIn).build().unwrap();
    watch.see_debug(&grant);
    let token = grant.request_token(&request).await.unwrap();
    watch.see_debug(&token);
    let renewed = grant.renew_token(&request, &token).await;
    watch.see_outcome(&renewed);
    let redeemed = idp.server.requests()[0].clone();
    watch.add_secret(redeemed.field("code_verifier").unwrap());

    let refused = Idp::start(None).await;
    let grant = refused
        .builder(Person::Refused(
            "invalid_grant",
            "AADSTS70008: The provided authorization code or refresh token has expired.",
        ))
        .build()
        .unwrap();
    watch.see_outcome(&grant.request_token(&request).await);

    let mismatched = Idp::start(Some("another")).await;
    let grant = mismatched.builder(Person::SignsIn).build().unwrap();
    watch.see_outcome(&grant.request_token(&request).await);

    watch.assert_clean_with_logs();
}
