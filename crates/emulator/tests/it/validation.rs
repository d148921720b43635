//! The token validation API the Dataverse half relies on: every rejection reason, including
//! the classic algorithm-confusion attacks.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use d365_emulator::{Emulator, TokenRejection, TokenVersion};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use secrecy::ExposeSecret as _;
use serde_json::{Value, json};

use crate::common;

const AUDIENCE: &str = "https://contoso.crm.dynamics.com";

async fn token(emulator: &Emulator, v1: bool) -> String {
    token_for(emulator, v1, AUDIENCE).await
}

/// A client credentials token for `audience` from the v1 or v2 endpoint.
async fn token_for(emulator: &Emulator, v1: bool, audience: &str) -> String {
    let seeded = emulator.seeded().expect("seeded");
    let app = &seeded.confidential_app;
    let (url, target) = if v1 {
        (
            emulator.token_endpoint_v1(),
            ("resource", format!("{audience}/")),
        )
    } else {
        (
            emulator.token_endpoint_v2(),
            ("scope", format!("{audience}/.default")),
        )
    };
    let reply = common::post_form(
        &common::client(),
        &url,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &app.client_id),
            ("client_secret", app.secret.expose_secret()),
            (target.0, &target.1),
        ],
    )
    .await;
    reply.body["access_token"]
        .as_str()
        .expect("token")
        .to_owned()
}

fn b64(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(value.to_string())
}

#[tokio::test]
async fn valid_v1_and_v2_tokens_pass() {
    let emulator = Emulator::builder().start().await.expect("started");
    let validator = emulator
        .token_validator()
        .require_tenant(emulator.tenant_id());
    let v1 = validator
        .validate(&token(&emulator, true).await, AUDIENCE)
        .expect("v1");
    assert_eq!(v1.version(), TokenVersion::V1);
    // A Dataverse token is v1-shaped from the v2 endpoint too.
    let from_v2 = validator
        .validate(
            &token(&emulator, false).await,
            "HTTPS://CONTOSO.crm.dynamics.com/",
        )
        .expect("v1 from the v2 endpoint");
    assert_eq!(from_v2.version(), TokenVersion::V1);
    // Other resources (Microsoft Graph) get the endpoint's version.
    let v2 = validator
        .validate(
            &token_for(&emulator, false, "https://graph.microsoft.com").await,
            "https://graph.microsoft.com",
        )
        .expect("v2");
    assert_eq!(v2.version(), TokenVersion::V2);
    assert_eq!(v2.tenant_id(), Some(emulator.tenant_id()));
    assert!(v2.object_id().is_some());
    assert!(v2.scopes().is_empty());
    assert!(v2.expires_at() > common::now());
}

#[tokio::test]
async fn wrong_audience_tenant_and_signature_are_rejected() {
    let emulator = Emulator::builder().start().await.expect("started");
    let token = token(&emulator, false).await;
    let validator = emulator.token_validator();
    assert!(matches!(
        validator.validate(&token, "https://other.crm.dynamics.com"),
        Err(TokenRejection::InvalidAudience(_))
    ));
    assert!(matches!(
        validator
            .clone()
            .require_tenant("99999999-0000-4000-8000-000000000000")
            .validate(&token, AUDIENCE),
        Err(TokenRejection::InvalidIssuer(_))
    ));
    let (rest, signature) = token.rsplit_once('.').expect("parts");
    let flipped = if signature.starts_with('A') { "B" } else { "A" };
    let tampered = format!("{rest}.{flipped}{}", &signature[1..]);
    assert_eq!(
        validator.validate(&tampered, AUDIENCE).unwrap_err(),
        TokenRejection::InvalidSignature
    );
    // Claims changed after signing.
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    let mut claims = common::claims(&token);
    claims["aud"] = json!("https://evil.example");
    parts[1] = b64(&claims);
    assert_eq!(
        validator
            .validate(&parts.join("."), "https://evil.example")
            .unwrap_err(),
        TokenRejection::InvalidSignature
    );
    assert_eq!(
        validator.validate("not a token", AUDIENCE).unwrap_err(),
        TokenRejection::Malformed
    );
}

#[tokio::test]
async fn alg_none_is_rejected() {
    let emulator = Emulator::builder().start().await.expect("started");
    let token = token(&emulator, false).await;
    let mut header = common::header(&token);
    header["alg"] = json!("none");
    let claims = common::claims(&token);
    let unsigned = format!("{}.{}.", b64(&header), b64(&claims));
    assert_eq!(
        emulator
            .token_validator()
            .validate(&unsigned, AUDIENCE)
            .unwrap_err(),
        TokenRejection::UnsupportedAlgorithm("none".into())
    );
}

#[tokio::test]
async fn hs256_signed_with_the_public_key_is_rejected() {
    let emulator = Emulator::builder().start().await.expect("started");
    let token = token(&emulator, false).await;
    let kid = common::header(&token)["kid"]
        .as_str()
        .expect("kid")
        .to_owned();
    // The attacker's HMAC secret: the public key material everyone can download.
    let jwks: Value = common::client()
        .get(format!("{}/discovery/v2.0/keys", emulator.authority()))
        .send()
        .await
        .expect("keys")
        .json()
        .await
        .expect("json");
    let public = jwks["keys"][0].to_string();
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some(kid);
    let forged = jsonwebtoken::encode(
        &header,
        &common::claims(&token),
        &EncodingKey::from_secret(public.as_bytes()),
    )
    .expect("forged");
    assert_eq!(
        emulator
            .token_validator()
            .validate(&forged, AUDIENCE)
            .unwrap_err(),
        TokenRejection::UnsupportedAlgorithm("HS256".into())
    );
}

#[tokio::test]
async fn unknown_key_expired_and_not_yet_valid_tokens_are_rejected() {
    let emulator = Emulator::builder().start().await.expect("started");
    let seeded = emulator.seeded().expect("seeded");
    let token = token(&emulator, false).await;
    let claims = common::claims(&token);
    // Signed by another RSA key (the certificate app's), with the same claims.
    let other_key = EncodingKey::from_rsa_pem(
        seeded
            .certificate_app
            .private_key_pem
            .expose_secret()
            .as_bytes(),
    )
    .expect("key");
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some("some-other-key".into());
    let foreign = jsonwebtoken::encode(&header, &claims, &other_key).expect("signed");
    assert_eq!(
        emulator
            .token_validator()
            .validate(&foreign, AUDIENCE)
            .unwrap_err(),
        TokenRejection::UnknownKey
    );

    // Same kid as the emulator's, but the signature is from the wrong key.
    header.kid = common::header(&token)["kid"].as_str().map(str::to_owned);
    let impostor = jsonwebtoken::encode(&header, &claims, &other_key).expect("signed");
    assert_eq!(
        emulator
            .token_validator()
            .validate(&impostor, AUDIENCE)
            .unwrap_err(),
        TokenRejection::InvalidSignature
    );

    // Expiry and not-before come from a short-lived token and the leeway knob.
    let short = Emulator::builder()
        .token_lifetime(std::time::Duration::from_secs(1))
        .start()
        .await
        .expect("started");
    let expiring = self::token(&short, true).await;
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let validator = short.token_validator();
    assert_eq!(
        validator.validate(&expiring, AUDIENCE).unwrap_err(),
        TokenRejection::Expired
    );
    validator
        .clone()
        .leeway(std::time::Duration::from_secs(60))
        .validate(&expiring, AUDIENCE)
        .expect("within leeway");
}
