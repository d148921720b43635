//! The client credentials grant against the d365 emulator's Entra ID: each credential kind
//! on v1 and v2, and every failure the emulator produces for this grant, mapped to the
//! right `ErrorKind` and hint.

use std::time::{Duration, SystemTime};

use base64::Engine as _;
use d365_auth_client_credentials::{
    AssertionAlgorithm, Certificate, ClientCredentials, SecretMethod,
};
use d365_auth_core::{EndpointVersion, ErrorKind, TokenCache, TokenProvider, TokenRequest};
use d365_emulator::Emulator;
use secrecy::{ExposeSecret, SecretString};

fn org(emulator: &Emulator) -> TokenRequest {
    TokenRequest::for_url(emulator.base_url()).unwrap()
}

fn claims(token: &d365_auth_core::AccessToken) -> serde_json::Value {
    let payload = token
        .secret()
        .expose_secret()
        .split('.')
        .nth(1)
        .unwrap()
        .to_owned();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap()
}

fn builder(
    emulator: &Emulator,
    version: EndpointVersion,
) -> d365_auth_client_credentials::ClientCredentialsBuilder {
    ClientCredentials::builder()
        .authority_host(emulator.base_url())
        .tenant(emulator.tenant_id())
        .endpoint_version(version)
}

#[tokio::test]
async fn every_credential_kind_gets_an_app_token_on_v1_and_v2() {
    let emulator = Emulator::builder().start().await.unwrap();
    let seeded = emulator.seeded().unwrap().clone();
    let certificate = Certificate::from_pem(
        &seeded.certificate_app.private_key_pem,
        &seeded.certificate_app.certificate_pem,
    )
    .unwrap();
    for version in [EndpointVersion::V2, EndpointVersion::V1] {
        let secret_post = builder(&emulator, version)
            .client_id(&seeded.confidential_app.client_id)
            .client_secret(seeded.confidential_app.secret.clone());
        let secret_basic = builder(&emulator, version)
            .client_id(&seeded.confidential_app.client_id)
            .client_secret(seeded.confidential_app.secret.clone())
            .secret_method(SecretMethod::Basic);
        let ps256 = builder(&emulator, version)
            .client_id(&seeded.certificate_app.client_id)
            .certificate(certificate.clone());
        let rs256 = builder(&emulator, version)
            .client_id(&seeded.certificate_app.client_id)
            .certificate(certificate.clone())
            .assertion_algorithm(AssertionAlgorithm::Rs256)
            .send_certificate_chain(true);
        for (name, grant, app) in [
            (
                "secret post",
                secret_post,
                &seeded.confidential_app.client_id,
            ),
            (
                "secret basic",
                secret_basic,
                &seeded.confidential_app.client_id,
            ),
            (
                "certificate PS256",
                ps256,
                &seeded.certificate_app.client_id,
            ),
            (
                "certificate RS256 + x5c",
                rs256,
                &seeded.certificate_app.client_id,
            ),
        ] {
            let grant = grant.build().unwrap();
            let token = grant
                .request_token(&org(&emulator))
                .await
                .unwrap_or_else(|e| panic!("{name} {version:?}: {e}"));
            let claims = claims(&token);
            assert_eq!(
                claims["aud"],
                emulator.base_url().trim_end_matches('/'),
                "{name}"
            );
            assert_eq!(claims["tid"], emulator.tenant_id(), "{name}");
            assert_eq!(claims["idtyp"], "app", "{name}");
            let app_claim = if claims["ver"] == "1.0" {
                "appid"
            } else {
                "azp"
            };
            assert_eq!(
                &claims[app_claim],
                app.as_str(),
                "{name} {version:?}: {claims}"
            );
            assert!(token.remaining_at(SystemTime::now()) > Duration::from_secs(3000));
        }
    }
    emulator.shutdown().await;
}

/// Signs an assertion the way an external signer (a workload identity platform, a key
/// vault) would: with the seeded certificate's key, or another key to fake a bad signature.
fn external_assertion(
    emulator: &Emulator,
    issuer: &str,
    expires_in: i64,
    key_pem: &SecretString,
) -> SecretString {
    let seeded = emulator.seeded().unwrap();
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    header.x5t = Some(seeded.certificate_app.x5t.clone());
    let now = i64::try_from(
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap();
    let claims = serde_json::json!({
        "aud": emulator.token_endpoint_v2(),
        "iss": issuer,
        "sub": issuer,
        "jti": format!("{now}-{expires_in}-{}", rand_suffix()),
        "nbf": now.min(now + expires_in) - 60,
        "iat": now - 60,
        "exp": now + expires_in,
    });
    let key = jsonwebtoken::EncodingKey::from_rsa_pem(key_pem.expose_secret().as_bytes()).unwrap();
    SecretString::from(jsonwebtoken::encode(&header, &claims, &key).unwrap())
}

fn rand_suffix() -> u128 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

fn callback_grant(
    emulator: &Emulator,
    client_id: &str,
    assertion: SecretString,
) -> ClientCredentials {
    builder(emulator, EndpointVersion::V2)
        .client_id(client_id)
        .assertion_callback(move || {
            let assertion = assertion.clone();
            async move { Ok(assertion) }
        })
        .build()
        .unwrap()
}

#[tokio::test]
async fn an_external_assertion_is_accepted_once_then_refused_as_replayed() {
    let emulator = Emulator::builder().start().await.unwrap();
    let seeded = emulator.seeded().unwrap().clone();
    let app = &seeded.certificate_app.client_id;
    let assertion =
        external_assertion(&emulator, app, 300, &seeded.certificate_app.private_key_pem);
    let grant = callback_grant(&emulator, app, assertion);
    grant.request_token(&org(&emulator)).await.unwrap();
    let error = grant.request_token(&org(&emulator)).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidClientAssertion, "{error}");
    assert_eq!(error.aadsts(), Some(50013));
    assert!(error.hint().unwrap().contains("unique jti"));
    emulator.shutdown().await;
}

#[tokio::test]
async fn every_failure_maps_to_its_kind_and_hint() {
    let emulator = Emulator::builder().start().await.unwrap();
    let seeded = emulator.seeded().unwrap().clone();
    let confidential = &seeded.confidential_app.client_id;
    let certificate_app = &seeded.certificate_app.client_id;
    let other_key = SecretString::from(
        rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256)
            .unwrap()
            .serialize_pem(),
    );
    let secret_grant = |client: &str, secret: SecretString| {
        builder(&emulator, EndpointVersion::V2)
            .client_id(client)
            .client_secret(secret)
            .build()
            .unwrap()
    };
    let cases: Vec<(&str, ClientCredentials, ErrorKind, u32, &str)> = vec![
        (
            "wrong secret",
            secret_grant(confidential, "not-the-secret".into()),
            ErrorKind::InvalidClientSecret,
            7000215,
            "not its Secret ID",
        ),
        (
            "secret ID instead of value",
            secret_grant(confidential, "d3650000-5ec0-4000-8000-000000000001".into()),
            ErrorKind::InvalidClientSecret,
            7000215,
            "not its Secret ID",
        ),
        (
            "expired secret",
            secret_grant(confidential, seeded.confidential_app.expired_secret.clone()),
            ErrorKind::ClientSecretExpired,
            7000222,
            "create a new client secret",
        ),
        (
            "unknown client",
            secret_grant("d3650000-dead-4000-8000-000000000000", "x".into()),
            ErrorKind::ClientNotFound,
            700016,
            "check the client (application) id",
        ),
        (
            "public client with a secret",
            secret_grant(&seeded.public_app.client_id, "x".into()),
            ErrorKind::PublicClientSentCredential,
            700025,
            "drop the secret",
        ),
        (
            "unknown tenant",
            ClientCredentials::builder()
                .authority_host(emulator.base_url())
                .tenant("d3650000-0000-4000-8000-00000000dead")
                .client_id(confidential)
                .client_secret(seeded.confidential_app.secret.clone())
                .build()
                .unwrap(),
            ErrorKind::TenantNotFound,
            90002,
            "check the tenant id",
        ),
        (
            "assertion signed by an unregistered key",
            callback_grant(
                &emulator,
                certificate_app,
                external_assertion(&emulator, certificate_app, 300, &other_key),
            ),
            ErrorKind::InvalidClientAssertion,
            700027,
            "upload the certificate",
        ),
        (
            "expired assertion",
            callback_grant(
                &emulator,
                certificate_app,
                external_assertion(
                    &emulator,
                    certificate_app,
                    -600,
                    &seeded.certificate_app.private_key_pem,
                ),
            ),
            ErrorKind::ClientAssertionExpired,
            700024,
            "synchronize the machine's clock",
        ),
        (
            "assertion for another client",
            callback_grant(
                &emulator,
                certificate_app,
                external_assertion(
                    &emulator,
                    confidential,
                    300,
                    &seeded.certificate_app.private_key_pem,
                ),
            ),
            ErrorKind::InvalidClientAssertion,
            700021,
            "iss and sub",
        ),
    ];
    for (name, grant, kind, code, hint) in cases {
        let error = grant.request_token(&org(&emulator)).await.expect_err(name);
        assert_eq!(error.kind(), kind, "{name}: {error}");
        assert_eq!(error.aadsts(), Some(code), "{name}: {error}");
        assert!(
            error.hint().unwrap().contains(hint),
            "{name}: {:?}",
            error.hint()
        );
        let identity = error.identity().unwrap();
        assert!(
            identity.trace_id().is_some() && identity.correlation_id().is_some(),
            "{name}: Entra's diagnostics"
        );
        assert!(
            !error
                .to_string()
                .contains(seeded.confidential_app.secret.expose_secret()),
            "{name} leaked the secret"
        );
    }
    emulator.shutdown().await;
}

#[tokio::test]
async fn under_a_token_cache_one_request_serves_many_callers_and_short_tokens_renew() {
    let emulator = Emulator::builder()
        .token_lifetime(Duration::from_secs(2))
        .start()
        .await
        .unwrap();
    let seeded = emulator.seeded().unwrap().clone();
    let grant = builder(&emulator, EndpointVersion::V2)
        .client_id(&seeded.confidential_app.client_id)
        .client_secret(seeded.confidential_app.secret.clone())
        .build()
        .unwrap();
    let cache = TokenCache::new(grant);
    let request = org(&emulator);
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let cache = cache.clone();
            let request = request.clone();
            tokio::spawn(async move { cache.get(&request).await.unwrap() })
        })
        .collect();
    let mut tokens = Vec::new();
    for task in tasks {
        tokens.push(task.await.unwrap());
    }
    assert!(
        tokens.iter().all(|token| token.same_token(&tokens[0])),
        "one flight, one token"
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let renewed = cache.get(&request).await.unwrap();
    assert!(
        !renewed.same_token(&tokens[0]),
        "a 2 s token is renewed after half its life"
    );
    emulator.shutdown().await;
}

/// A shared store (a token file, Redis) keeps tokens by the provider's cache key: with the
/// credential's fingerprint in it, a wrong or rotated secret never gets the token the
/// right one obtained, and has to prove itself to the identity provider.
#[tokio::test]
async fn a_token_got_with_one_secret_is_never_served_to_another() {
    use std::sync::Arc;
    let emulator = Emulator::builder().start().await.unwrap();
    let seeded = emulator.seeded().unwrap().clone();
    let store: Arc<dyn d365_auth_core::store::TokenStore> =
        Arc::new(d365_auth_core::store::MemoryStore::default());
    let with_secret = |secret: SecretString| {
        builder(&emulator, EndpointVersion::V2)
            .client_id(&seeded.confidential_app.client_id)
            .client_secret(secret)
            .build()
            .unwrap()
    };
    let right = TokenCache::builder(with_secret(seeded.confidential_app.secret.clone()))
        .store(Arc::clone(&store))
        .build();
    right.get(&org(&emulator)).await.unwrap();
    let wrong = TokenCache::builder(with_secret(SecretString::from(
        "a-wrong-secret-of-the-same-length-0123456".to_owned(),
    )))
    .store(Arc::clone(&store))
    .build();
    let error = wrong.get(&org(&emulator)).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidClientSecret, "{error}");
    assert_ne!(
        right.cache_key(),
        wrong.cache_key(),
        "the fingerprint tells the two apart"
    );
    let again = TokenCache::builder(with_secret(seeded.confidential_app.secret.clone()))
        .store(store)
        .build();
    assert_eq!(
        again.cache_key(),
        right.cache_key(),
        "the same secret shares the token"
    );
    assert!(
        !right
            .cache_key()
            .contains(seeded.confidential_app.secret.expose_secret()),
        "the key holds a fingerprint, never the secret"
    );
}
