//! Starting and stopping: ports, https with the generated CA, configuration files, the
//! credentials directory, and secrets kept out of `Debug`.

use std::time::Duration;

use d365_emulator::{Emulator, EmulatorConfig, EmulatorError};
use secrecy::ExposeSecret as _;

use crate::common;

#[tokio::test]
async fn shutdown_and_drop_stop_the_server() {
    let http = common::client();
    let emulator = Emulator::builder().start().await.expect("started");
    let health = format!("{}/_emulator/health", emulator.base_url());
    assert!(http.get(&health).send().await.is_ok());
    emulator.shutdown().await;
    assert!(common::client().get(&health).send().await.is_err());

    let emulator = Emulator::builder().start().await.expect("started");
    let health = format!("{}/_emulator/health", emulator.base_url());
    drop(emulator);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(common::client().get(&health).send().await.is_err());
}

#[tokio::test]
async fn a_given_port_is_used_and_a_busy_one_is_an_error() {
    let first = Emulator::builder().start().await.expect("started");
    let port: u16 = first
        .base_url()
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("port");
    let second = Emulator::builder().port(port).start().await;
    assert!(
        matches!(second, Err(EmulatorError::Bind { .. })),
        "{second:?}"
    );
    assert!(first.base_url().starts_with("http://127.0.0.1:"));
}

#[tokio::test]
async fn https_serves_with_a_certificate_signed_by_the_exposed_ca() {
    let dir = tempfile::tempdir().expect("temp dir");
    let emulator = Emulator::builder()
        .https(true)
        .write_credentials_to(dir.path())
        .start()
        .await
        .expect("started");
    assert!(emulator.base_url().starts_with("https://127.0.0.1:"));
    let ca = emulator.ca_certificate_pem().expect("CA PEM");
    assert!(ca.contains("BEGIN CERTIFICATE"));
    let http = reqwest::Client::builder()
        .no_proxy()
        .tls_certs_only([reqwest::Certificate::from_pem(ca.as_bytes()).expect("pem")])
        .build()
        .expect("client");
    let reply = common::send(http.get(format!(
        "{}/v2.0/.well-known/openid-configuration",
        emulator.authority()
    )))
    .await;
    assert_eq!(reply.status, 200);
    assert!(
        reply.body["token_endpoint"]
            .as_str()
            .expect("url")
            .starts_with("https://")
    );
    // Also by name: the certificate covers localhost.
    let by_name = emulator.base_url().replace("127.0.0.1", "localhost");
    let reply = common::send(http.get(format!("{by_name}/_emulator/health"))).await;
    assert_eq!(reply.status, 200);

    let seeded = emulator.seeded().expect("seeded");
    let written = |name: &str| std::fs::read_to_string(dir.path().join(name)).expect(name);
    assert_eq!(written("ca.crt.pem"), ca);
    assert_eq!(
        written("certificate-app.crt.pem"),
        seeded.certificate_app.certificate_pem
    );
    assert_eq!(
        written("certificate-app.key.pem"),
        seeded.certificate_app.private_key_pem.expose_secret()
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(dir.path().join("certificate-app.key.pem"))
            .expect("metadata")
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "private key readable by others");
    }
}

/// Each emulator keeps its credential files in a private directory of its own, removed when
/// it stops: two emulators side by side (parallel tests, two terminals) never overwrite each
/// other's keys, which broke the second one's certificate sign-in with AADSTS700027.
#[tokio::test]
async fn each_emulator_has_its_own_private_credentials_removed_at_shutdown() {
    let start = || async {
        Emulator::builder()
            .https(true)
            .write_credentials_to_private_dir()
            .start()
            .await
            .expect("started")
    };
    let (first, second) = (start().await, start().await);
    let (first_dir, second_dir) = (
        first.credentials_dir().expect("dir").to_owned(),
        second.credentials_dir().expect("dir").to_owned(),
    );
    assert_ne!(first_dir, second_dir);
    for (emulator, dir) in [(&first, &first_dir), (&second, &second_dir)] {
        let key = std::fs::read_to_string(dir.join("certificate-app.key.pem")).expect("key");
        assert_eq!(
            key,
            emulator
                .seeded()
                .expect("seeded")
                .certificate_app
                .private_key_pem
                .expose_secret()
        );
        assert!(dir.join("ca.crt.pem").is_file());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = |path: &std::path::Path| {
                std::fs::metadata(path)
                    .expect("metadata")
                    .permissions()
                    .mode()
                    & 0o777
            };
            assert_eq!(mode(dir), 0o700, "the directory is private");
            assert_eq!(mode(&dir.join("certificate-app.key.pem")), 0o600);
        }
    }
    first.shutdown().await;
    assert!(!first_dir.exists(), "removed at shutdown");
    assert!(
        second_dir.join("ca.crt.pem").is_file(),
        "the other one keeps its files"
    );
    drop(second);
    assert!(!second_dir.exists(), "removed when dropped");
}

/// A symlink planted at a credential file's name is replaced, never written through.
#[cfg(unix)]
#[tokio::test]
async fn credential_files_are_never_written_through_a_symlink() {
    let dir = tempfile::tempdir().expect("temp dir");
    let victim = dir.path().join("victim");
    std::fs::write(&victim, "untouched").expect("victim");
    std::os::unix::fs::symlink(&victim, dir.path().join("certificate-app.key.pem"))
        .expect("symlink");
    let emulator = Emulator::builder()
        .write_credentials_to(dir.path())
        .start()
        .await
        .expect("started");
    assert_eq!(
        std::fs::read_to_string(&victim).expect("victim"),
        "untouched"
    );
    let key = dir.path().join("certificate-app.key.pem");
    assert!(std::fs::symlink_metadata(&key).expect("key").is_file());
    drop(emulator);
    assert!(
        !key.exists(),
        "the files it wrote are removed when it stops"
    );
    assert!(victim.exists());
}

#[tokio::test]
async fn a_toml_file_configures_tenants_apps_users_and_lifetime() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("emulator.toml");
    std::fs::write(
        &path,
        r#"
organizations = ["https://northwind.crm.dynamics.com"]
seed_defaults = false
token_lifetime_secs = 42

[[tenants]]
id = "22222222-3333-4444-8555-666666666666"
domain = "northwind.onmicrosoft.com"

[[tenants.apps]]
client_id = "33333333-4444-4555-8666-777777777777"
secrets = [{ value = "northwind-secret", expires_at = "2099-01-01T00:00:00Z" }]
"#,
    )
    .expect("written");
    let emulator = Emulator::builder()
        .config_file(&path)
        .start()
        .await
        .expect("started");
    assert!(emulator.seeded().is_none());
    assert_eq!(emulator.tenant_id(), "22222222-3333-4444-8555-666666666666");
    let reply = common::post_form(
        &common::client(),
        &emulator.token_endpoint_v2(),
        &[
            ("grant_type", "client_credentials"),
            ("client_id", "33333333-4444-4555-8666-777777777777"),
            ("client_secret", "northwind-secret"),
            ("scope", "https://northwind.crm.dynamics.com/.default"),
        ],
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["expires_in"], 42);
    // The seeded identities are gone.
    let reply = common::post_form(
        &common::client(),
        &format!(
            "{}/contoso.onmicrosoft.com/oauth2/v2.0/token",
            emulator.base_url()
        ),
        &[("grant_type", "client_credentials")],
    )
    .await;
    assert_eq!(reply.body["error_codes"][0], 90002);
}

#[tokio::test]
async fn configuration_errors_are_reported() {
    let bad = EmulatorConfig::from_toml_str("[[users]]\nupn = \"no-at-sign\"\npassword = \"x\"")
        .expect("parses");
    let err = Emulator::builder()
        .config(bad)
        .start()
        .await
        .expect_err("invalid");
    assert!(matches!(err, EmulatorError::InvalidConfig(_)), "{err}");
    let empty = EmulatorConfig::from_toml_str("seed_defaults = false").expect("parses");
    let err = Emulator::builder()
        .config(empty)
        .start()
        .await
        .expect_err("no tenant");
    assert!(matches!(err, EmulatorError::InvalidConfig(_)), "{err}");
    let err = Emulator::builder()
        .config_file("/nonexistent/emulator.toml")
        .start()
        .await
        .expect_err("missing file");
    assert!(matches!(err, EmulatorError::ReadConfig { .. }), "{err}");
}

#[tokio::test]
async fn debug_output_never_shows_secrets() {
    let emulator = Emulator::builder()
        .https(true)
        .start()
        .await
        .expect("started");
    let seeded = emulator.seeded().expect("seeded");
    let shown = format!("{emulator:?} {seeded:?} {seeded:#?}");
    assert!(shown.contains(&seeded.confidential_app.client_id));
    for secret in [
        seeded.confidential_app.secret.expose_secret(),
        seeded.confidential_app.expired_secret.expose_secret(),
        seeded.user.password.expose_secret(),
        seeded.mfa_user.password.expose_secret(),
    ] {
        assert!(!shown.contains(secret), "secret in Debug output");
    }
    assert!(
        !shown.contains("PRIVATE KEY"),
        "private key in Debug output"
    );
    let key_body: String = seeded
        .certificate_app
        .private_key_pem
        .expose_secret()
        .lines()
        .nth(1)
        .expect("key line")
        .to_owned();
    assert!(!shown.contains(&key_body));
}
