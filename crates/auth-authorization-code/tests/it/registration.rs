//! The browser sign-in as configuration knows it: which connection strings it takes, and a
//! grant built from configuration that signs a person in.

use std::sync::Arc;

use d365_auth_authorization_code::{DEFAULT_CLIENT_ID, REGISTRATION, ShowSignInUrl};
use d365_auth_core::grant::{GrantConfig, GrantRegistration};
use d365_auth_core::{Authority, Tenant, TokenRequest};

#[test]
fn it_takes_oauth_without_a_password() {
    let mut config = GrantConfig::default();
    config.auth_type = Some("OAuth".into());
    assert!(
        REGISTRATION.accepts(&config),
        "ServiceClient's interactive sign-in"
    );
    config.set_text("Username", "ana@contoso.com");
    assert!(REGISTRATION.accepts(&config), "with a login hint");
    config.set_secret("Password", "p@ss".into());
    assert!(
        !REGISTRATION.accepts(&config),
        "a password means the password grant"
    );
    let mut secret = GrantConfig::default();
    secret.auth_type = Some("ClientSecret".into());
    assert!(!REGISTRATION.accepts(&secret));
    assert_eq!(REGISTRATION.name(), "interactive");
}

#[tokio::test]
async fn a_grant_built_from_configuration_signs_a_person_in() {
    let idp = crate::support::Idp::start(None).await;
    let shown = Arc::new(std::sync::Mutex::new(None));
    let record = Arc::clone(&shown);
    let mut config = GrantConfig::default();
    config.auth_type = Some("OAuth".into());
    config.set_text("Username", "ana@contoso.onmicrosoft.com");
    config.set_text("LoginPrompt", "Always");
    config.set_text("RedirectUri", "app://58145B91-0C36-4500-8554-080854F2AC97");
    config.authority = Some(
        Authority::custom(
            &idp.server.base,
            Tenant::parse("11111111-2222-3333-4444-555555555555").unwrap(),
        )
        .unwrap(),
    );
    config.extensions.insert(
        ShowSignInUrl::new(move |sign_in| {
            *record.lock().unwrap() = Some(sign_in.url.clone());
        })
        .without_browser(),
    );
    let grant = REGISTRATION.build(&config).unwrap();
    // Nobody comes back: the sign-in is abandoned once the address was shown.
    let request = TokenRequest::for_url("https://contoso.crm.dynamics.com").unwrap();
    let attempt = tokio::time::timeout(
        std::time::Duration::from_secs(2),
        grant.request_token(&request),
    )
    .await;
    assert!(attempt.is_err(), "it waits for the person");
    let url = shown
        .lock()
        .unwrap()
        .clone()
        .expect("the address was shown");
    let query: std::collections::HashMap<String, String> = url.query_pairs().into_owned().collect();
    assert_eq!(query["client_id"], DEFAULT_CLIENT_ID);
    assert_eq!(query["login_hint"], "ana@contoso.onmicrosoft.com");
    assert_eq!(query["prompt"], "login");
    assert!(
        query["redirect_uri"].starts_with("http://localhost:"),
        "an app:// redirect is not used"
    );
}
