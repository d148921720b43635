//! The grant as configuration knows it: which configurations it takes, what `check`
//! refuses before anything is read, and providers built from a secret, a certificate
//! file (with its thumbprint checked) and a federated token file, signing in against the
//! emulator.

use std::io::Write as _;

use d365_auth_client_credentials::REGISTRATION;
use d365_auth_core::grant::{GrantConfig, GrantRegistration};
use d365_auth_core::{Authority, ConfigError, Tenant, TokenRequest};
use d365_emulator::Emulator;

fn config(auth_type: Option<&str>) -> GrantConfig {
    let mut config = GrantConfig::default();
    config.auth_type = auth_type.map(str::to_owned);
    config.client_id = Some("00000000-0000-0000-0000-0000000000c1".to_owned());
    config
}

#[test]
fn it_takes_its_auth_types_and_azure_identity_credentials() {
    assert!(REGISTRATION.accepts(&config(Some("ClientSecret"))));
    assert!(REGISTRATION.accepts(&config(Some("certificate"))));
    assert!(!REGISTRATION.accepts(&config(Some("OAuth"))));
    let mut environment = config(None);
    assert!(!REGISTRATION.accepts(&environment), "no credential");
    environment.set_text("FederatedTokenFile", "/var/run/token");
    assert!(REGISTRATION.accepts(&environment));
    environment.set_text("Username", "ana@contoso.com");
    environment.set_secret("Password", "p".into());
    assert!(
        !REGISTRATION.accepts(&environment),
        "a user name and password win over a federated token file, as in azure-identity"
    );
    environment.set_secret("ClientSecret", "s".into());
    assert!(
        REGISTRATION.accepts(&environment),
        "a secret wins over both"
    );
}

#[test]
fn check_names_what_is_missing_and_how_to_fix_it() {
    let missing = |config: &GrantConfig| match REGISTRATION.check(config) {
        Err(ConfigError::Missing { setting, fix }) => (setting, fix),
        other => panic!("{other:?}"),
    };
    let (setting, fix) = missing(&config(Some("ClientSecret")));
    assert_eq!(setting, "ClientSecret");
    assert!(fix.contains("Value"), "{fix}");
    let mut no_client = config(Some("ClientSecret"));
    no_client.client_id = None;
    no_client.set_secret("ClientSecret", "s".into());
    assert_eq!(missing(&no_client).0, "ClientId");
    assert_eq!(missing(&config(Some("Certificate"))).0, "CertificatePath");

    let mut store = config(Some("Certificate"));
    store.set_text("Thumbprint", "A909502DD82AE41433E6F83886B00D4277A32A7B");
    let Err(ConfigError::Invalid { problem, fix, .. }) = REGISTRATION.check(&store) else {
        panic!("a thumbprint alone names a certificate store");
    };
    assert!(
        problem.contains("Windows certificate store `My`"),
        "{problem}"
    );
    assert!(fix.contains("CertificatePath"), "{fix}");

    let mut bad = config(Some("Certificate"));
    bad.set_text("CertificatePath", "app.pfx");
    bad.set_text("Thumbprint", "not hex");
    assert!(REGISTRATION.check(&bad).is_err());
    bad.set_text(
        "Thumbprint",
        "a9 09 50 2d d8 2a e4 14 33 e6 f8 38 86 b0 0d 42 77 a3 2a 7b",
    );
    REGISTRATION
        .check(&bad)
        .expect("separators and case are forgiven");
    bad.set_text("SendCertificateChain", "perhaps");
    assert!(REGISTRATION.check(&bad).is_err());
}

#[tokio::test]
async fn providers_built_from_configuration_sign_in() {
    let emulator = Emulator::builder().start().await.unwrap();
    let seeded = emulator.seeded().unwrap().clone();
    let authority = Authority::custom(
        emulator.base_url(),
        Tenant::parse(emulator.tenant_id()).unwrap(),
    )
    .unwrap();
    let request = TokenRequest::for_url(emulator.base_url()).unwrap();
    let dir = tempfile::tempdir().unwrap();

    let mut secret = config(Some("ClientSecret"));
    secret.client_id = Some(seeded.confidential_app.client_id.clone());
    secret.set_secret("ClientSecret", seeded.confidential_app.secret.clone());
    secret.authority = Some(authority.clone());
    REGISTRATION
        .build(&secret)
        .unwrap()
        .request_token(&request)
        .await
        .unwrap();

    let certificate_file = dir.path().join("app.crt.pem");
    let key_file = dir.path().join("app.key.pem");
    std::fs::write(&certificate_file, &seeded.certificate_app.certificate_pem).unwrap();
    std::fs::write(
        &key_file,
        secrecy::ExposeSecret::expose_secret(&seeded.certificate_app.private_key_pem),
    )
    .unwrap();
    let mut certificate = config(Some("Certificate"));
    certificate.client_id = Some(seeded.certificate_app.client_id.clone());
    certificate.set_text("CertificatePath", certificate_file.to_str().unwrap());
    certificate.set_text("CertificateKeyPath", key_file.to_str().unwrap());
    certificate.set_text("Thumbprint", &seeded.certificate_app.thumbprint_sha1);
    certificate.authority = Some(authority.clone());
    REGISTRATION
        .build(&certificate)
        .unwrap()
        .request_token(&request)
        .await
        .unwrap();
    certificate.set_text("Thumbprint", "0000000000000000000000000000000000000000");
    let error = REGISTRATION.build(&certificate).unwrap_err().to_string();
    assert!(
        error.contains("not 0000000000000000000000000000000000000000"),
        "{error}"
    );

    // A federated token file with a trailing newline, as platforms write them: the
    // assertion is trimmed, the provider builds, and a bad assertion is refused by the
    // identity provider, not by a header or form error on our side.
    let token_file = dir.path().join("token");
    let mut file = std::fs::File::create(&token_file).unwrap();
    writeln!(file, "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl").unwrap();
    let mut federated = config(None);
    federated.client_id = Some(seeded.certificate_app.client_id.clone());
    federated.set_text("FederatedTokenFile", token_file.to_str().unwrap());
    federated.authority = Some(authority);
    let error = REGISTRATION
        .build(&federated)
        .unwrap()
        .request_token(&request)
        .await
        .unwrap_err();
    assert!(
        error.aadsts().is_some(),
        "the emulator judged the assertion: {error}"
    );
}
