//! Interop with Microsoft's own clients: unmodified MSAL for Python and azure-identity get
//! tokens from the emulator over https (instance discovery off), and the tokens validate.
//!
//! Needs a virtualenv with `msal` and `azure-identity` at `$D365_INTEROP_DIR/venv` (default
//! `target/interop/venv`), which `cargo xtask test` creates. Without it the test is skipped,
//! except on CI (`CI=true`) where it fails.

use std::path::PathBuf;
use std::process::Command;

use d365_emulator::Emulator;
use secrecy::ExposeSecret as _;

use crate::common;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn msal_and_azure_identity_get_tokens_over_https() {
    let python = common::interop_python();
    if !common::interop_clients_installed(
        "interop_python",
        &[
            ("msal", common::interop_python_has("msal")),
            (
                "azure-identity",
                common::interop_python_has("azure_identity"),
            ),
        ],
    ) {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let emulator = Emulator::builder()
        .https(true)
        .write_credentials_to(dir.path())
        .start()
        .await
        .expect("started");
    let seeded = emulator.seeded().expect("seeded").clone();
    let cert_app = &seeded.certificate_app;
    let combined = dir.path().join("certificate-app.pem");
    std::fs::write(
        &combined,
        format!(
            "{}{}",
            cert_app.private_key_pem.expose_secret(),
            cert_app.certificate_pem
        ),
    )
    .expect("combined PEM");
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/interop/msal_client.py");
    let mut command = Command::new(&python);
    command
        .arg(&script)
        .env("EMULATOR_BASE", emulator.base_url())
        .env("EMULATOR_TENANT", emulator.tenant_id())
        .env("EMULATOR_CA_BUNDLE", dir.path().join("ca.crt.pem"))
        .env("REQUESTS_CA_BUNDLE", dir.path().join("ca.crt.pem"))
        .env(
            "EMULATOR_SCOPE",
            "https://contoso.crm.dynamics.com/.default",
        )
        .env("EMULATOR_CLIENT_ID", &seeded.confidential_app.client_id)
        .env(
            "EMULATOR_CLIENT_SECRET",
            seeded.confidential_app.secret.expose_secret(),
        )
        .env("EMULATOR_CERT_CLIENT_ID", &cert_app.client_id)
        .env("EMULATOR_CERT", dir.path().join("certificate-app.crt.pem"))
        .env(
            "EMULATOR_CERT_KEY",
            dir.path().join("certificate-app.key.pem"),
        )
        .env("EMULATOR_CERT_AND_KEY", &combined)
        .env("EMULATOR_CERT_THUMBPRINT", &cert_app.thumbprint_sha1)
        .env("EMULATOR_PUBLIC_CLIENT_ID", &seeded.public_app.client_id)
        .env("EMULATOR_USERNAME", &seeded.user.upn)
        .env("EMULATOR_PASSWORD", seeded.user.password.expose_secret())
        .env_remove("HTTPS_PROXY")
        .env_remove("https_proxy")
        .env("NO_PROXY", "127.0.0.1,localhost");
    let output = tokio::task::spawn_blocking(move || command.output())
        .await
        .expect("joined")
        .expect("python ran");
    assert!(
        output.status.success(),
        "interop script failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let tokens: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("the script prints JSON");
    let validator = emulator.token_validator();
    for name in [
        "msal_secret",
        "msal_certificate_ps256",
        "msal_certificate_rs256",
        "msal_ropc",
        "msal_refresh",
        "azure_identity_secret",
        "azure_identity_certificate",
    ] {
        let token = tokens[name]
            .as_str()
            .unwrap_or_else(|| panic!("{name}: no token"));
        let validated = validator
            .validate(token, "https://contoso.crm.dynamics.com")
            .unwrap_or_else(|err| panic!("{name}: {err}"));
        assert_eq!(validated.tenant_id(), Some(emulator.tenant_id()), "{name}");
    }
    let ropc = common::claims(tokens["msal_ropc"].as_str().expect("token"));
    // Dataverse tokens are v1-shaped whichever endpoint MSAL called, as on the service.
    assert_eq!(ropc["ver"], "1.0");
    assert_eq!(ropc["upn"], seeded.user.upn);
    assert_eq!(ropc["scp"], "user_impersonation");
}
