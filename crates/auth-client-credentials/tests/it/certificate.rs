//! Certificates and the assertions they sign: PEM and PKCS#12 loading, the checks made
//! before any request, and the exact header and claims of each assertion.

use std::collections::HashSet;
use std::sync::OnceLock;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use d365_auth_client_credentials::{AssertionAlgorithm, Certificate, ClientCredentials};
use d365_auth_core::{Authority, EndpointVersion, Tenant, TokenProvider, TokenRequest};
use d365_test_support::{Canned, CannedServer};
use rcgen::{CertificateParams, KeyPair, date_time_ymd};
use secrecy::{ExposeSecret, SecretString};

/// RSA keys are slow to generate in debug builds: two per test binary.
fn keys() -> &'static (String, String) {
    static KEYS: OnceLock<(String, String)> = OnceLock::new();
    KEYS.get_or_init(|| {
        let generate = || {
            KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256)
                .unwrap()
                .serialize_pem()
        };
        (generate(), generate())
    })
}

fn certificate_pem(key_pem: &str, from: (i32, u8, u8), to: (i32, u8, u8)) -> String {
    let mut params = CertificateParams::new(vec!["d365-test-app".to_owned()]).unwrap();
    params.not_before = date_time_ymd(from.0, from.1, from.2);
    params.not_after = date_time_ymd(to.0, to.1, to.2);
    params
        .self_signed(&KeyPair::from_pem(key_pem).unwrap())
        .unwrap()
        .pem()
}

fn valid_pair() -> (SecretString, String) {
    let key = keys().0.clone();
    let certificate = certificate_pem(&key, (2020, 1, 1), (2099, 1, 1));
    (SecretString::from(key), certificate)
}

#[test]
fn a_matching_valid_pem_pair_loads_and_debug_hides_the_key() {
    let (key, certificate) = valid_pair();
    let loaded = Certificate::from_pem(&key, &certificate).unwrap();
    assert_eq!(loaded.thumbprint_sha1().len(), 40);
    assert_eq!(loaded.thumbprint_sha256().len(), 64);
    assert!(loaded.subject().contains("rcgen"), "{}", loaded.subject());
    let debug = format!("{loaded:?}");
    assert!(
        debug.contains("[redacted]") && !debug.contains("PRIVATE KEY"),
        "{debug}"
    );
}

#[test]
fn each_unusable_certificate_is_refused_with_a_fix() {
    let (key, other_key) = keys();
    let cases = [
        (
            "key of another certificate",
            other_key.clone(),
            certificate_pem(key, (2020, 1, 1), (2099, 1, 1)),
            "does not belong to the certificate",
        ),
        (
            "expired",
            key.clone(),
            certificate_pem(key, (2020, 1, 1), (2021, 1, 1)),
            "expired",
        ),
        (
            "not yet valid",
            key.clone(),
            certificate_pem(key, (2098, 1, 1), (2099, 1, 1)),
            "is not valid for another",
        ),
        (
            "no certificate",
            key.clone(),
            String::new(),
            "no certificate was found",
        ),
        (
            "no key",
            String::from("not a key"),
            certificate_pem(key, (2020, 1, 1), (2099, 1, 1)),
            "no private key was found",
        ),
        (
            "encrypted key",
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----"
                .to_owned(),
            String::new(),
            "is encrypted",
        ),
        (
            "EC key",
            "-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----".to_owned(),
            String::new(),
            "not an RSA key",
        ),
    ];
    for (name, key, certificate, expected) in cases {
        let fragments: Vec<String> = key
            .lines()
            .filter(|line| line.len() > 20)
            .map(str::to_owned)
            .collect();
        let error = Certificate::from_pem(&SecretString::from(key), &certificate).unwrap_err();
        let message = format!("{error} {error:?}");
        assert!(message.contains(expected), "{name}: {message}");
        assert!(
            fragments
                .iter()
                .all(|fragment| !message.contains(fragment.as_str())),
            "{name} leaked key material: {message}"
        );
    }
}

#[test]
fn pkcs12_archives_load_with_their_password() {
    use rsa::pkcs8::{DecodePrivateKey as _, EncodePrivateKey as _};
    let (key, certificate) = valid_pair();
    let der_key = rsa::RsaPrivateKey::from_pkcs8_pem(key.expose_secret())
        .unwrap()
        .to_pkcs8_der()
        .unwrap();
    let der_certificate = {
        use x509_cert::der::{DecodePem as _, Encode as _};
        x509_cert::Certificate::from_pem(certificate.as_bytes())
            .unwrap()
            .to_der()
            .unwrap()
    };
    let chain = p12_keystore::PrivateKeyChain::new(
        vec![1_u8; 20],
        p12_keystore::PrivateKey::from_der(der_key.as_bytes()).unwrap(),
        [p12_keystore::Certificate::from_der(&der_certificate).unwrap()],
    );
    let mut store = p12_keystore::KeyStore::new();
    store.add_entry("app", p12_keystore::KeyStoreEntry::PrivateKeyChain(chain));
    let archive = store.writer("pfx-password").write().unwrap();

    let loaded = Certificate::from_pkcs12(&archive, &"pfx-password".into()).unwrap();
    let from_pem = Certificate::from_pem(&key, &certificate).unwrap();
    assert_eq!(loaded.thumbprint_sha256(), from_pem.thumbprint_sha256());
    let error = Certificate::from_pkcs12(&archive, &"wrong".into()).unwrap_err();
    assert!(error.to_string().contains("check the password"), "{error}");
}

fn decode_part(part: &str) -> serde_json::Value {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

/// The assertion the grant sends, captured by a canned token endpoint.
async fn assertion_from(grant: &dyn TokenProvider, server: &CannedServer, nth: usize) -> String {
    let request = TokenRequest::for_url("https://contoso.crm.dynamics.com").unwrap();
    grant.request_token(&request).await.unwrap();
    let captured = server.requests().remove(nth);
    captured
        .form()
        .into_iter()
        .find(|(name, _)| name == "client_assertion")
        .unwrap()
        .1
}

#[tokio::test]
async fn assertions_carry_the_headers_and_claims_entra_checks() {
    let (key, certificate) = valid_pair();
    let loaded = Certificate::from_pem(&key, &certificate).unwrap();
    let server = CannedServer::start(vec![Canned::json(
        200,
        r#"{"access_token":"t","expires_in":3599}"#,
    )])
    .await;
    let authority = Authority::custom(
        &server.base,
        Tenant::parse("contoso.onmicrosoft.com").unwrap(),
    )
    .unwrap();
    let endpoint = authority.token_endpoint(EndpointVersion::V2);
    let mut seen_ids = HashSet::new();
    let mut sent = 0;
    for (algorithm, chain) in [
        (AssertionAlgorithm::Ps256, false),
        (AssertionAlgorithm::Rs256, true),
    ] {
        let grant = ClientCredentials::builder()
            .authority(authority.clone())
            .client_id("00000000-0000-0000-0000-0000000000c1")
            .certificate(loaded.clone())
            .assertion_algorithm(algorithm)
            .send_certificate_chain(chain)
            .build()
            .unwrap();
        for _ in 0..2 {
            let jwt = assertion_from(&grant, &server, sent).await;
            sent += 1;
            let parts: Vec<&str> = jwt.split('.').collect();
            let (header, claims) = (decode_part(parts[0]), decode_part(parts[1]));
            assert_eq!(header["typ"], "JWT");
            match algorithm {
                AssertionAlgorithm::Ps256 => {
                    assert_eq!(header["alg"], "PS256");
                    assert_eq!(header["x5t#S256"].as_str().unwrap().len(), 43);
                    assert!(header.get("x5t").is_none() && header.get("x5c").is_none());
                }
                _ => {
                    assert_eq!(header["alg"], "RS256");
                    assert_eq!(header["x5t"].as_str().unwrap().len(), 27);
                    assert_eq!(header["x5c"].as_array().unwrap().len(), 1);
                }
            }
            assert_eq!(claims["aud"], endpoint.url().as_str());
            assert_eq!(claims["iss"], "00000000-0000-0000-0000-0000000000c1");
            assert_eq!(claims["sub"], claims["iss"]);
            let lifetime = claims["exp"].as_u64().unwrap() - claims["nbf"].as_u64().unwrap();
            assert!(lifetime > 0 && lifetime <= 600, "exp - nbf = {lifetime}");
            assert!(
                seen_ids.insert(claims["jti"].as_str().unwrap().to_owned()),
                "jti reused"
            );
            verify_signature(&jwt, algorithm, &key, endpoint.url().as_str());
        }
    }
}

fn verify_signature(
    jwt: &str,
    algorithm: AssertionAlgorithm,
    key_pem: &SecretString,
    audience: &str,
) {
    use rsa::pkcs1::EncodeRsaPublicKey as _;
    use rsa::pkcs8::DecodePrivateKey as _;
    let private = rsa::RsaPrivateKey::from_pkcs8_pem(key_pem.expose_secret()).unwrap();
    let public = rsa::RsaPublicKey::from(&private).to_pkcs1_der().unwrap();
    let key = jsonwebtoken::DecodingKey::from_rsa_der(public.as_bytes());
    let alg = match algorithm {
        AssertionAlgorithm::Ps256 => jsonwebtoken::Algorithm::PS256,
        _ => jsonwebtoken::Algorithm::RS256,
    };
    let mut validation = jsonwebtoken::Validation::new(alg);
    validation.set_audience(&[audience]);
    jsonwebtoken::decode::<serde_json::Value>(jwt, &key, &validation)
        .expect("the signature verifies");
}

#[tokio::test]
async fn ad_fs_gets_rs256_unless_told_otherwise() {
    let (key, certificate) = valid_pair();
    let loaded = Certificate::from_pem(&key, &certificate).unwrap();
    let server = CannedServer::start(vec![Canned::json(
        200,
        r#"{"access_token":"t","expires_in":3599}"#,
    )])
    .await;
    let adfs = Authority::adfs(&format!("{}/adfs", server.base)).unwrap();
    let entra = Authority::custom(
        &server.base,
        Tenant::parse("contoso.onmicrosoft.com").unwrap(),
    )
    .unwrap();
    let cases = [
        (adfs.clone(), None, "RS256"),
        (adfs, Some(AssertionAlgorithm::Ps256), "PS256"),
        (entra, None, "PS256"),
    ];
    for (nth, (authority, chosen, expected)) in cases.into_iter().enumerate() {
        let mut builder = ClientCredentials::builder()
            .authority(authority)
            .client_id("00000000-0000-0000-0000-0000000000c1")
            .certificate(loaded.clone());
        if let Some(algorithm) = chosen {
            builder = builder.assertion_algorithm(algorithm);
        }
        let jwt = assertion_from(&builder.build().unwrap(), &server, nth).await;
        let header = decode_part(jwt.split('.').next().unwrap());
        assert_eq!(header["alg"], expected, "case {nth}");
    }
}

#[tokio::test]
async fn the_connection_string_chooses_the_assertion_algorithm() {
    use d365_auth_client_credentials::REGISTRATION;
    use d365_auth_core::grant::{GrantConfig, GrantRegistration};

    let (key, certificate) = valid_pair();
    let dir = tempfile::tempdir().unwrap();
    let pem = dir.path().join("client.pem");
    std::fs::write(&pem, format!("{}\n{certificate}", key.expose_secret())).unwrap();
    let server = CannedServer::start(vec![Canned::json(
        200,
        r#"{"access_token":"t","expires_in":3599}"#,
    )])
    .await;
    let config = |algorithm: &str| {
        let mut config = GrantConfig::default();
        config.auth_type = Some("Certificate".into());
        config.client_id = Some("00000000-0000-0000-0000-0000000000c1".into());
        config.set_text("CertificatePath", pem.to_str().unwrap());
        config.set_text("AssertionAlgorithm", algorithm);
        config.authority = Some(
            Authority::custom(
                &server.base,
                Tenant::parse("contoso.onmicrosoft.com").unwrap(),
            )
            .unwrap(),
        );
        config
    };
    let provider = REGISTRATION.build(&config("rs256")).unwrap();
    let jwt = assertion_from(provider.as_ref(), &server, 0).await;
    assert_eq!(decode_part(jwt.split('.').next().unwrap())["alg"], "RS256");

    let error = REGISTRATION
        .build(&config("ES256"))
        .unwrap_err()
        .to_string();
    assert!(
        error.starts_with("AssertionAlgorithm: `ES256` is not an algorithm"),
        "{error}"
    );
    assert!(error.contains("write RS256"), "{error}");
}
