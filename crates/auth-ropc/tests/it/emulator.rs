//! The password grant against the d365 emulator, started in-process on a random loopback
//! port: real HTTP, an independent implementation of Entra ID's side of the protocol, and
//! access tokens that are checked with the emulator's own validator.

use std::time::SystemTime;

use d365_auth_core::{
    AccessToken, EndpointVersion, ErrorKind, TokenCache, TokenProvider, TokenRequest,
};
use d365_auth_ropc::{UsernamePassword, UsernamePasswordBuilder, is_federated_user};
use d365_emulator::{Emulator, EmulatorConfig, SeededIdentities};
use secrecy::{ExposeSecret, SecretString};

const ORG: &str = "https://contoso.crm.dynamics.com";
const FEDERATED_UPN: &str = "carol@contoso.onmicrosoft.com";

fn request() -> TokenRequest {
    TokenRequest::for_url(ORG).unwrap()
}

async fn emulator() -> Emulator {
    let config = EmulatorConfig::from_toml_str(&format!(
        r#"
        [[users]]
        upn = "{FEDERATED_UPN}"
        password = "Federated-Passw0rd!"
        federated = true
        "#
    ))
    .unwrap();
    Emulator::builder().config(config).start().await.unwrap()
}

fn seeded(emulator: &Emulator) -> &SeededIdentities {
    emulator
        .seeded()
        .expect("the emulator seeds its default identities")
}

/// A public client signing in as the seeded user.
fn public(emulator: &Emulator) -> UsernamePasswordBuilder {
    let seeded = seeded(emulator);
    UsernamePassword::builder()
        .authority_host(emulator.base_url())
        .tenant(emulator.tenant_id())
        .client_id(&seeded.public_app.client_id)
        .username(&seeded.user.upn)
        .password(seeded.user.password.clone())
}

fn validate(emulator: &Emulator, token: &AccessToken) -> d365_emulator::ValidatedToken {
    emulator
        .token_validator()
        .validate(token.secret().expose_secret(), ORG)
        .expect("the emulator accepts the token it issued")
}

#[tokio::test]
async fn public_client_on_v2() {
    let emulator = emulator().await;
    let token = public(&emulator)
        .build()
        .unwrap()
        .request_token(&request())
        .await
        .unwrap();
    assert!(
        token.refresh_token().is_some(),
        "offline_access brings a refresh token"
    );
    assert!(token.expires_on() > SystemTime::now());
    let claims = validate(&emulator, &token);
    assert_eq!(
        claims.user_principal_name(),
        Some(seeded(&emulator).user.upn.as_str())
    );
    assert_eq!(claims.scopes(), ["user_impersonation"]);
    assert!(!claims.is_app_only());
}

#[tokio::test]
async fn public_client_on_v1() {
    let emulator = emulator().await;
    let token = public(&emulator)
        .endpoint_version(EndpointVersion::V1)
        .build()
        .unwrap()
        .request_token(&request())
        .await
        .unwrap();
    assert!(token.refresh_token().is_some());
    let claims = validate(&emulator, &token);
    assert_eq!(
        claims.user_principal_name(),
        Some(seeded(&emulator).user.upn.as_str())
    );
}

#[tokio::test]
async fn organizations_and_the_tenant_domain_work_too() {
    let emulator = emulator().await;
    let domain = seeded(&emulator).tenant.domain.clone();
    for tenant in ["organizations", domain.as_str()] {
        let token = public(&emulator)
            .tenant(tenant)
            .build()
            .unwrap()
            .request_token(&request())
            .await;
        assert!(token.is_ok(), "{tenant}: {token:?}");
    }
}

#[tokio::test]
async fn confidential_client_with_its_secret() {
    let emulator = emulator().await;
    let app = &seeded(&emulator).confidential_app;
    let token = public(&emulator)
        .client_id(&app.client_id)
        .client_secret(app.secret.clone())
        .build()
        .unwrap()
        .request_token(&request())
        .await
        .unwrap();
    let claims = validate(&emulator, &token);
    assert_eq!(claims.client_id(), Some(app.client_id.as_str()));
    assert!(!claims.is_app_only());
}

#[tokio::test]
async fn a_confidential_client_without_its_secret() {
    let emulator = emulator().await;
    let app = &seeded(&emulator).confidential_app;
    let error = public(&emulator)
        .client_id(&app.client_id)
        .build()
        .unwrap()
        .request_token(&request())
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::ClientCredentialMissing, "{error}");
    assert!(
        error.to_string().contains("Allow public client flows"),
        "{error}"
    );
}

#[tokio::test]
async fn a_wrong_password() {
    let emulator = emulator().await;
    let error = public(&emulator)
        .password(SecretString::from("not-the-password"))
        .build()
        .unwrap()
        .request_token(&request())
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidUserCredentials, "{error}");
    assert_eq!(error.aadsts(), Some(50126));
    assert!(!error.to_string().contains("not-the-password"));
}

#[tokio::test]
async fn an_mfa_user_is_told_to_use_another_grant() {
    let emulator = emulator().await;
    let mfa = &seeded(&emulator).mfa_user;
    let error = public(&emulator)
        .username(&mfa.upn)
        .password(mfa.password.clone())
        .build()
        .unwrap()
        .request_token(&request())
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::MfaRequired, "{error}");
    let hint = error.hint().unwrap();
    assert!(hint.contains("client credentials grant"), "{hint}");
    assert!(hint.contains("device code grant"), "{hint}");
    assert!(error.to_string().contains(hint));
}

#[tokio::test]
async fn a_federated_user_is_refused_by_the_realm_check() {
    let emulator = emulator().await;
    let grant = public(&emulator)
        .username(FEDERATED_UPN)
        .password("Federated-Passw0rd!".into())
        .build()
        .unwrap();
    let error = grant.request_token(&request()).await.unwrap_err();
    assert!(is_federated_user(&error), "{error}");
    assert!(error.to_string().contains("device code grant"), "{error}");

    // Without the check, Entra (and the emulator) answer AADSTS50126, whose hint names
    // federated users too.
    let unchecked = public(&emulator)
        .username(FEDERATED_UPN)
        .password("Federated-Passw0rd!".into())
        .user_realm_check(false)
        .build()
        .unwrap();
    let error = unchecked.request_token(&request()).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidUserCredentials, "{error}");
    assert!(error.hint().unwrap().contains("federated"));
}

#[tokio::test]
async fn the_common_tenant_is_refused_before_anything_is_sent() {
    let emulator = emulator().await;
    let error = public(&emulator).tenant("common").build().unwrap_err();
    assert!(error.to_string().contains("AADSTS9001023"), "{error}");
}

#[tokio::test]
async fn renewals_reuse_the_refresh_token() {
    let emulator = emulator().await;
    let grant = public(&emulator).build().unwrap();
    let first = grant.request_token(&request()).await.unwrap();
    // The same user and client with a wrong password: if a renewal sent the password,
    // it would fail with AADSTS50126. Each one succeeds, so each used the refresh token.
    let wrong_password = public(&emulator)
        .password("not-the-password".into())
        .build()
        .unwrap();
    let mut token = first;
    for _ in 0..5 {
        let next = wrong_password
            .renew_token(&request(), &token)
            .await
            .unwrap();
        assert!(!next.same_token(&token));
        assert!(next.refresh_token().is_some());
        validate(&emulator, &next);
        token = next;
    }
}

#[tokio::test]
async fn a_refused_refresh_token_falls_back_to_the_password() {
    let emulator = emulator().await;
    let grant = public(&emulator).build().unwrap();
    let issued = grant.request_token(&request()).await.unwrap();
    let forged = AccessToken::builder(
        issued.secret().clone(),
        issued.expires_on(),
        issued.resource().clone(),
    )
    .refresh_token("not-a-refresh-token".into())
    .build()
    .unwrap();
    let renewed = grant.renew_token(&request(), &forged).await.unwrap();
    validate(&emulator, &renewed);
    assert!(renewed.refresh_token().is_some());

    // With a wrong password, the fallback's own error comes back: proof that the refused
    // refresh token led to a password grant.
    let wrong_password = public(&emulator)
        .password("not-the-password".into())
        .build()
        .unwrap();
    let error = wrong_password
        .renew_token(&request(), &forged)
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidUserCredentials, "{error}");
}

#[tokio::test]
async fn through_a_token_cache() {
    let emulator = emulator().await;
    let cache = TokenCache::new(public(&emulator).build().unwrap());
    let first = cache.get(&request()).await.unwrap();
    let again = cache.get(&request()).await.unwrap();
    assert!(first.same_token(&again));
    validate(&emulator, &first);
}
