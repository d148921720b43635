//! Interop with Microsoft's Python Dataverse SDK (`PowerPlatform-Dataverse-Client`), unmodified,
//! over https, with tokens from azure-identity's ClientSecretCredential, CertificateCredential
//! and UsernamePasswordCredential: table and column metadata, create, read with single- and
//! collection-valued `$expand`, update, formatted values, a bulk create (CreateMultiple) and
//! update (UpdateMultiple), a paged query, a batch with a change set, delete and a bulk delete
//! (BulkDelete). The SDK has no WhoAmI; each identity is checked through `_createdby_value`.
//!
//! Needs a virtualenv with `PowerPlatform-Dataverse-Client` and `azure-identity` at
//! `$D365_INTEROP_DIR/venv` (default `target/interop/venv`), which `cargo xtask test` creates.
//! Without it the test is skipped, except on CI (`CI=true`) where it fails.

use std::path::PathBuf;
use std::process::Command;

use d365_emulator::Emulator;
use secrecy::ExposeSecret as _;
use serde_json::{Value, json};

use crate::common;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_dataverse_sdk_works_against_the_emulator() {
    if !common::interop_clients_installed(
        "interop_dataverse_client",
        &[
            (
                "PowerPlatform-Dataverse-Client",
                common::interop_python_has("powerplatform_dataverse_client"),
            ),
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
    // azure-identity's CertificateCredential takes the key and certificate in one PEM file.
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
    let ca = dir.path().join("ca.crt.pem");
    let script =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/interop/dataverse_client.py");
    let mut command = Command::new(common::interop_python());
    command
        .arg(&script)
        .env("EMULATOR_BASE", emulator.base_url())
        .env("EMULATOR_TENANT", emulator.tenant_id())
        .env("EMULATOR_CA_BUNDLE", &ca)
        // The SDK's own `requests` session trusts the emulator's CA through this.
        .env("REQUESTS_CA_BUNDLE", &ca)
        .env("EMULATOR_CLIENT_ID", &seeded.confidential_app.client_id)
        .env(
            "EMULATOR_CLIENT_SECRET",
            seeded.confidential_app.secret.expose_secret(),
        )
        .env("EMULATOR_CERT_CLIENT_ID", &cert_app.client_id)
        .env("EMULATOR_CERT_AND_KEY", &combined)
        .env("EMULATOR_PUBLIC_CLIENT_ID", &seeded.public_app.client_id)
        .env("EMULATOR_USERNAME", &seeded.user.upn)
        .env("EMULATOR_PASSWORD", seeded.user.password.expose_secret())
        .env_remove("HTTPS_PROXY")
        .env_remove("https_proxy")
        .env("NO_PROXY", "127.0.0.1,localhost");
    let output = tokio::task::spawn_blocking(move || command.output().expect("python runs"))
        .await
        .expect("joined");
    assert!(
        output.status.success(),
        "the Dataverse SDK scenario failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: Value = serde_json::from_slice(&output.stdout).expect("the script prints JSON");

    let organization = &seeded.organization;
    assert_eq!(
        report["identities"],
        json!({
            "secret": organization.confidential_app_user_id,
            "certificate": organization.certificate_app_user_id,
            "password": organization.user_id,
        })
    );

    assert_eq!(report["table"]["entity_set_name"], "accounts");
    assert_eq!(report["table"]["primary_id_attribute"], "accountid");
    assert_eq!(report["table"]["primary_name_attribute"], "name");
    assert!(
        report["table"]["metadata_id"]
            .as_str()
            .is_some_and(|id| id.len() == 36),
        "{report}"
    );
    let columns = report["columns"].as_array().expect("columns");
    for column in ["accountid", "name", "accountnumber", "primarycontactid"] {
        assert!(columns.contains(&json!(column)), "{column}: {report}");
    }
    assert_eq!(
        report["column"],
        json!({"LogicalName": "name", "AttributeType": "String"})
    );
    let tables = report["tables"].as_array().expect("tables");
    assert!(tables.contains(&json!("account")) && tables.contains(&json!("contact")));

    assert_eq!(report["created"]["name"], "PPDC account");
    assert_eq!(report["created"]["accountnumber"], "PPDC-1");
    assert_eq!(
        report["updated"],
        json!({"name": "PPDC account (updated)", "telephone1": "555-0100"})
    );

    assert_eq!(report["expand"]["primarycontact"], "Ada Lovelace");
    assert_eq!(
        report["expand"]["primarycontactid"],
        report["expand"]["contactid"]
    );
    assert_eq!(report["expand"]["children"], json!(["Babbage"]));
    assert_eq!(report["expand"]["listed"], json!(["Lovelace"]));
    assert_eq!(report["formatted"], "Active");

    assert_eq!(report["bulk"], json!({"created": 7, "distinct": 7}));
    let names: Vec<String> = (0..7).map(|i| format!("PPDC bulk {i:02}")).collect();
    assert_eq!(
        report["paging"],
        json!({"pages": [3, 3, 1], "names": names, "descriptions": ["bulk updated"]})
    );

    assert_eq!(
        report["batch"]["statuses"],
        json!([204, 204, 204, 200]),
        "{report}"
    );
    assert_eq!(report["batch"]["has_errors"], false);
    assert_eq!(report["batch"]["contacts"], json!(["Batch"]));
    assert_eq!(
        report["batch"]["primarycontact"],
        report["batch"]["contactid"]
    );

    assert_eq!(report["deleted"], true);
    assert!(report["bulk_delete"]["job_id"].is_string(), "{report}");
    assert_eq!(report["bulk_delete"]["remaining"], 0);
}
