//! No client secret, private key, PKCS#12 password, client assertion (signed, from a
//! callback or from a federated token file) or access token reaches a log line at TRACE
//! level, the `Debug` of a builder, a grant, a cache or a token, or an error message: every
//! credential kind runs against answers that succeed and answers that fail, and everything
//! observable is searched for each secret.

use std::time::Duration;

use d365_auth_client_credentials::{
    Certificate, ClientCredentials, ClientCredentialsBuilder, SecretMethod,
};
use d365_auth_core::{AuthError, TokenCache, TokenProvider, TokenRequest};
use d365_test_support::{Canned, SecretWatch, Server};
use rcgen::{CertificateParams, KeyPair};
use secrecy::SecretString;

const CLIENT_SECRET: &str = "CLIENT-SECRET-VALUE";
const PFX_PASSWORD: &str = "PFX-PASSWORD-VALUE";
/// External assertions must look like a JWT to be sent.
const CALLBACK_ASSERTION: &str =
    "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJjYWxsYmFjayJ9.CALLBACK-ASSERTION-SIGNATURE";
const FEDERATED_TOKEN: &str =
    "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJmZWRlcmF0ZWQifQ.FEDERATED-TOKEN-SIGNATURE";
/// What a misconfigured callback returns instead of an assertion: refused, never echoed.
const NOT_AN_ASSERTION: &str = "NOT-AN-ASSERTION-SECRET";
const ACCESS_TOKEN: &str = "ACCESS-TOKEN-VALUE";

/// A key pair, its self-signed certificate, and the same pair as a PKCS#12 archive.
struct KeyMaterial {
    key_pem: String,
    certificate_pem: String,
    pkcs12: Vec<u8>,
}

fn key_material() -> KeyMaterial {
    use rsa::pkcs8::{DecodePrivateKey as _, EncodePrivateKey as _};
    use x509_cert::der::{DecodePem as _, Encode as _};
    let key = KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).unwrap();
    let key_pem = key.serialize_pem();
    let certificate_pem = CertificateParams::new(vec!["d365-leak-test".to_owned()])
        .unwrap()
        .self_signed(&key)
        .unwrap()
        .pem();
    let der_key = rsa::RsaPrivateKey::from_pkcs8_pem(&key_pem)
        .unwrap()
        .to_pkcs8_der()
        .unwrap();
    let der_certificate = x509_cert::Certificate::from_pem(certificate_pem.as_bytes())
        .unwrap()
        .to_der()
        .unwrap();
    let chain = p12_keystore::PrivateKeyChain::new(
        vec![7_u8; 20],
        p12_keystore::PrivateKey::from_der(der_key.as_bytes()).unwrap(),
        [p12_keystore::Certificate::from_der(&der_certificate).unwrap()],
    );
    let mut store = p12_keystore::KeyStore::new();
    store.add_entry("app", p12_keystore::KeyStoreEntry::PrivateKeyChain(chain));
    let pkcs12 = store.writer(PFX_PASSWORD).write().unwrap();
    KeyMaterial {
        key_pem,
        certificate_pem,
        pkcs12,
    }
}

/// Each credential kind, named, as a builder pointed at `base`.
fn every_credential(
    base: &str,
    keys: &KeyMaterial,
    federated_file: &std::path::Path,
) -> Vec<(&'static str, ClientCredentialsBuilder)> {
    let builder = || {
        ClientCredentials::builder()
            .authority_host(base)
            .tenant("contoso.onmicrosoft.com")
            .client_id("d3650000-a990-4000-8000-000000000001")
            .timeout(Duration::from_secs(5))
    };
    let pem = Certificate::from_pem(
        &SecretString::from(keys.key_pem.clone()),
        &keys.certificate_pem,
    )
    .unwrap();
    let pkcs12 = Certificate::from_pkcs12(&keys.pkcs12, &SecretString::from(PFX_PASSWORD)).unwrap();
    vec![
        ("secret post", builder().client_secret(CLIENT_SECRET.into())),
        (
            "secret basic",
            builder()
                .client_secret(CLIENT_SECRET.into())
                .secret_method(SecretMethod::Basic),
        ),
        ("certificate from PEM", builder().certificate(pem)),
        (
            "certificate from PKCS#12",
            builder().certificate(pkcs12).send_certificate_chain(true),
        ),
        (
            "assertion callback",
            builder().assertion_callback(|| async {
                Ok::<_, AuthError>(SecretString::from(CALLBACK_ASSERTION))
            }),
        ),
        (
            "callback returning a secret that is not a JWT",
            builder().assertion_callback(|| async {
                Ok::<_, AuthError>(SecretString::from(NOT_AN_ASSERTION))
            }),
        ),
        (
            "federated token file",
            builder().federated_token_file(federated_file),
        ),
    ]
}

/// A token endpoint that answers the n-th request of each run with `answers[n % len]`.
fn answers() -> Vec<Canned> {
    vec![
        Canned::token(ACCESS_TOKEN, None, 3599),
        Canned::entra_error(
            401,
            "invalid_client",
            7_000_215,
            "AADSTS7000215: Invalid client secret provided.",
        ),
        Canned::entra_error(
            401,
            "invalid_client",
            700_027,
            "AADSTS700027: Client assertion failed signature validation.",
        ),
        Canned::json(
            200,
            r#"{"token_type":"Bearer","access_token":"ACCESS-TOKEN-VAL"#,
        ),
        Canned::with_type(500, "text/html", "<html>upstream failure</html>"),
        Canned::drop_connection(),
    ]
}

#[tokio::test]
async fn no_secret_in_logs_debug_or_errors() {
    let mut watch = SecretWatch::start(&[
        CLIENT_SECRET,
        PFX_PASSWORD,
        "WRONG-PFX-PASSWORD",
        CALLBACK_ASSERTION,
        "CALLBACK-ASSERTION-SIGNATURE",
        FEDERATED_TOKEN,
        "FEDERATED-TOKEN-SIGNATURE",
        NOT_AN_ASSERTION,
        ACCESS_TOKEN,
    ]);
    watch.add_secret(basic_credentials(CLIENT_SECRET));
    let keys = key_material();
    let federated_file =
        std::env::temp_dir().join(format!("d365-federated-token-{}.jwt", std::process::id()));
    std::fs::write(&federated_file, FEDERATED_TOKEN).unwrap();
    let request = TokenRequest::for_url("https://contoso.crm.dynamics.com").unwrap();
    let mut sent_assertions = Vec::new();

    for answer in answers() {
        let server = Server::start(move |_, _| answer.clone()).await;
        for (name, builder) in every_credential(&server.base, &keys, &federated_file) {
            watch.see(format!("{name}: {builder:?}"));
            let grant = builder.build().unwrap();
            watch.see_debug(&grant);
            watch.see_outcome(&grant.request_token(&request).await);
            let cache = TokenCache::new(grant);
            watch.see_outcome(&cache.get(&request).await);
            watch.see_debug(&cache);
        }
        sent_assertions.extend(
            server
                .requests()
                .iter()
                .filter_map(|captured| captured.field("client_assertion")),
        );
    }

    // Configuration errors that hold a secret: a PKCS#12 archive opened with a wrong
    // password, a key that does not belong to its certificate.
    watch.see_outcome(&Certificate::from_pkcs12(
        &keys.pkcs12,
        &SecretString::from("WRONG-PFX-PASSWORD"),
    ));
    let other = key_material();
    watch.see_outcome(&Certificate::from_pem(
        &SecretString::from(other.key_pem.clone()),
        &keys.certificate_pem,
    ));
    let _ = std::fs::remove_file(&federated_file);

    let everything = watch.everything();
    assert!(
        everything.contains("token_request"),
        "TRACE logging was not captured"
    );
    assert!(
        everything.contains("is not a JWT"),
        "the callback's non-assertion was refused"
    );
    assert!(
        sent_assertions.iter().any(|sent| sent.starts_with("eyJ")),
        "the certificate grants sent signed assertions: {sent_assertions:?}"
    );
    assert!(
        sent_assertions
            .iter()
            .any(|sent| sent == CALLBACK_ASSERTION)
    );
    assert!(sent_assertions.iter().any(|sent| sent == FEDERATED_TOKEN));

    // The private keys, line by line (a line is 64 base64 characters of key material).
    for key in [&keys.key_pem, &other.key_pem] {
        for line in key
            .lines()
            .filter(|line| !line.starts_with("-----") && line.len() > 20)
        {
            watch.add_secret(line);
        }
    }
    // Each signed assertion, and its signature on its own.
    for sent in &sent_assertions {
        watch.add_secret(sent.clone());
        if let Some(signature) = sent.rsplit('.').next().filter(|part| part.len() > 20) {
            watch.add_secret(signature);
        }
    }
    watch.assert_clean_with_logs();
}

/// `client_secret_basic` sends `base64(id:secret)`: search for the secret's encoding
/// inside that header (the id is fixed).
fn basic_credentials(secret: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .encode(format!("d3650000-a990-4000-8000-000000000001:{secret}"))
}
