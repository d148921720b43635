//! Interop with the unmodified npm package `dynamics-web-api`: WhoAmI, create, retrieve (by
//! id and alternate key), paging with `maxPageSize` and `@odata.nextLink`, `retrieveAll`, and
//! a batch with a change set and Content-ID references, against the emulator over http.
//!
//! Needs `dynamics-web-api` in `$D365_INTEROP_DIR/node/node_modules` (default
//! `target/interop`), which `cargo xtask test` installs. Without it the test is skipped,
//! except on CI (`CI=true`) where it fails.

use std::path::PathBuf;
use std::process::Command;

use d365_emulator::Emulator;
use secrecy::ExposeSecret as _;
use serde_json::Value;

fn interop_dir() -> PathBuf {
    std::env::var_os("D365_INTEROP_DIR").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/interop"),
        PathBuf::from,
    )
}

// The skip notice is the one thing this test must tell a person running it locally.
#[allow(clippy::print_stderr)]
fn skip_or_fail(package: &std::path::Path) -> bool {
    if package.join("package.json").exists() {
        return false;
    }
    let message = format!(
        "dynamics-web-api is not installed at {}; run `cargo xtask test` to install it \
         (npm install --prefix target/interop/node dynamics-web-api)",
        package.display()
    );
    assert!(std::env::var("CI").as_deref() != Ok("true"), "{message}");
    eprintln!("skipping interop_dynamics_web_api: {message}");
    true
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamics_web_api_works_against_the_emulator() {
    let dir = interop_dir();
    if skip_or_fail(&dir.join("node/node_modules/dynamics-web-api")) {
        return;
    }
    let emulator = Emulator::builder()
        .generated_accounts(23)
        .start()
        .await
        .expect("started");
    let seeded = emulator.seeded().expect("seeded").clone();
    let script =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/interop/dynamics_web_api.mjs");
    let output = tokio::task::spawn_blocking({
        let base = emulator.base_url().to_owned();
        let token_endpoint = emulator.token_endpoint_v2();
        let app = seeded.confidential_app.clone();
        move || {
            Command::new("node")
                .arg(&script)
                .env("D365_INTEROP_DIR", &dir)
                .env("EMULATOR_BASE", base)
                .env("EMULATOR_TOKEN_ENDPOINT", token_endpoint)
                .env("EMULATOR_CLIENT_ID", &app.client_id)
                .env("EMULATOR_CLIENT_SECRET", app.secret.expose_secret())
                .output()
                .expect("node runs")
        }
    })
    .await
    .expect("joined");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "node failed:\n{stderr}\n{stdout}");
    let report: Value = serde_json::from_str(stdout.trim()).expect("one JSON report");

    assert_eq!(
        report["whoAmI"]["UserId"],
        seeded.organization.confidential_app_user_id.as_str(),
        "{report}"
    );
    assert_eq!(
        report["whoAmI"]["OrganizationId"],
        seeded.organization.organization_id.as_str()
    );
    let id = report["createdId"].as_str().expect("created id");
    assert_eq!(report["retrieved"]["name"], "DWA account");
    assert_eq!(report["byKeyId"], id);
    // 23 generated + 1 created = 24 rows; 7 a page.
    assert_eq!(report["firstPage"]["count"], 7);
    assert_eq!(report["paging"]["rows"], 24, "{report}");
    assert_eq!(report["paging"]["pages"], 4);
    assert_eq!(report["retrieveAll"]["rows"], 24);
    assert_eq!(report["retrieveAll"]["ids"], 24);
    assert_eq!(report["batch"]["results"], 4, "{report}");
    assert_eq!(report["batch"]["contacts"], serde_json::json!(["Batch"]));
    assert_eq!(
        report["batch"]["primaryContact"],
        report["batch"]["contactId"]
    );
    assert_eq!(report["missing"]["status"], 404, "{report}");
    assert_eq!(report["missing"]["code"], "0x80040217");
}
