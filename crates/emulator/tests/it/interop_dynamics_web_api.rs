//! Interop with the unmodified npm packages `dynamics-web-api` and `@azure/msal-node`, against
//! the emulator over https: msal-node gets tokens with a client secret, a certificate (SHA-256
//! and SHA-1 thumbprints) and a user's password; DynamicsWebApi runs WhoAmI under each, create,
//! retrieve (by id and alternate key), update, single- and collection-valued `$expand`,
//! formatted values, metadata (entity, entities, attributes with a type cast, one attribute),
//! a bulk create (CreateMultiple), paging (`maxPageSize` and `@odata.nextLink`, and
//! `retrieveAll`), a batch with a change set and Content-ID references, delete and a 404.
//!
//! Needs both packages in `$D365_INTEROP_DIR/node/node_modules` (default `target/interop`),
//! which `cargo xtask test` installs. Without them the test is skipped, except on CI
//! (`CI=true`) where it fails.

use std::path::PathBuf;
use std::process::Command;

use d365_emulator::Emulator;
use secrecy::ExposeSecret as _;
use serde_json::{Value, json};

use crate::common;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamics_web_api_with_msal_node_works_against_the_emulator() {
    if !common::interop_clients_installed(
        "interop_dynamics_web_api",
        &[
            (
                "dynamics-web-api",
                common::interop_npm_package("dynamics-web-api").exists(),
            ),
            (
                "@azure/msal-node",
                common::interop_npm_package("@azure/msal-node").exists(),
            ),
        ],
    ) {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let emulator = Emulator::builder()
        .https(true)
        .write_credentials_to(dir.path())
        .generated_accounts(3)
        .start()
        .await
        .expect("started");
    let seeded = emulator.seeded().expect("seeded").clone();
    let script =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/interop/dynamics_web_api.mjs");
    let mut command = Command::new("node");
    command
        .arg(&script)
        .env("D365_INTEROP_DIR", common::interop_dir())
        .env("NODE_EXTRA_CA_CERTS", dir.path().join("ca.crt.pem"))
        .env("EMULATOR_BASE", emulator.base_url())
        .env("EMULATOR_AUTHORITY", emulator.authority())
        .env("EMULATOR_CLIENT_ID", &seeded.confidential_app.client_id)
        .env(
            "EMULATOR_CLIENT_SECRET",
            seeded.confidential_app.secret.expose_secret(),
        )
        .env("EMULATOR_CERT_CLIENT_ID", &seeded.certificate_app.client_id)
        .env("EMULATOR_CERT", dir.path().join("certificate-app.crt.pem"))
        .env(
            "EMULATOR_CERT_KEY",
            dir.path().join("certificate-app.key.pem"),
        )
        .env("EMULATOR_PUBLIC_CLIENT_ID", &seeded.public_app.client_id)
        .env("EMULATOR_USERNAME", &seeded.user.upn)
        .env("EMULATOR_PASSWORD", seeded.user.password.expose_secret())
        .env("NO_PROXY", "127.0.0.1,localhost");
    let output = tokio::task::spawn_blocking(move || command.output().expect("node runs"))
        .await
        .expect("joined");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "node failed:\n{stderr}");
    let report: Value = serde_json::from_str(stdout.trim()).expect("one JSON report");

    // msal-node's tokens are the emulator's, for the organization, and name who asked.
    let validator = emulator.token_validator();
    for name in ["secret", "certificateSha256", "certificateSha1", "password"] {
        let token = report["tokens"][name]
            .as_str()
            .unwrap_or_else(|| panic!("{name}: no token"));
        let validated = validator
            .validate(token, emulator.base_url())
            .unwrap_or_else(|err| panic!("{name}: {err}"));
        assert_eq!(validated.tenant_id(), Some(emulator.tenant_id()), "{name}");
    }
    let password = common::claims(report["tokens"]["password"].as_str().expect("token"));
    assert_eq!(password["upn"], seeded.user.upn);
    assert_eq!(password["scp"], "user_impersonation");
    let organization = &seeded.organization;
    assert_eq!(
        report["identities"],
        json!({
            "secret": organization.confidential_app_user_id,
            "certificateSha256": organization.certificate_app_user_id,
            "certificateSha1": organization.certificate_app_user_id,
            "password": organization.user_id,
        })
    );
    assert_eq!(
        report["whoAmI"]["OrganizationId"],
        organization.organization_id.as_str()
    );
    assert_eq!(
        report["whoAmI"]["BusinessUnitId"],
        organization.business_unit_id.as_str()
    );

    let id = report["createdId"].as_str().expect("created id");
    assert_eq!(report["retrieved"]["name"], "DWA account");
    assert_eq!(report["byKeyId"], id);
    assert_eq!(
        report["updated"],
        json!({"name": "DWA account (updated)", "telephone1": "555-0100", "etagChanged": true})
    );

    assert_eq!(report["expand"]["primaryContact"], "Ada Lovelace");
    assert_eq!(
        report["expand"]["primaryContactId"],
        report["expand"]["contactId"]
    );
    assert_eq!(report["expand"]["children"], json!(["Babbage"]));
    assert_eq!(
        report["expand"]["parents"],
        json!(["DWA account (updated)"])
    );
    assert_eq!(report["formatted"], "Active");

    assert_eq!(
        report["metadata"]["entity"],
        json!({
            "LogicalName": "account",
            "EntitySetName": "accounts",
            "PrimaryIdAttribute": "accountid",
            "PrimaryNameAttribute": "name",
        })
    );
    assert_eq!(report["metadata"]["entities"], json!(["contacts"]));
    assert_eq!(
        report["metadata"]["picklists"],
        json!(["accountcategorycode", "industrycode"])
    );
    assert_eq!(report["metadata"]["picklistOptions"], true);
    assert_eq!(
        report["metadata"]["attribute"],
        json!({"LogicalName": "accountnumber", "MaxLength": 20})
    );

    assert_eq!(report["bulk"], json!({"ids": 20, "distinct": 20}));
    // 3 generated + 1 created + 20 bulk-created = 24 rows; 7 a page.
    assert_eq!(report["firstPage"], json!({"count": 7, "hasNext": true}));
    assert_eq!(report["paging"], json!({"pages": 4, "rows": 24}));
    assert_eq!(report["retrieveAll"], json!({"rows": 24, "ids": 24}));

    assert_eq!(report["batch"]["results"], 4, "{report}");
    assert_eq!(report["batch"]["contacts"], json!(["Batch"]));
    assert_eq!(
        report["batch"]["primaryContact"],
        report["batch"]["contactId"]
    );
    assert_eq!(
        report["missing"],
        json!({"status": 404, "code": "0x80040217"})
    );
}
