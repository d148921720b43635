//! A `$batch`: an account and its contact created together in one atomic change set (the
//! contact refers to the account created just before it), then a query in the same round
//! trip. If any request of the change set fails, none of them takes effect.
//!
//! It starts the d365 emulator in-process, so it runs with no setup:
//!
//! ```text
//! cargo run -p d365-webapi --example batch
//! ```

#![allow(clippy::print_stdout)]

use d365_auth_client_credentials::ClientCredentials;
use d365_emulator::Emulator;
use d365_webapi::{Batch, Client};
use serde_json::json;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let emulator = Emulator::builder().start().await?;
    let app = emulator
        .seeded()
        .expect("the emulator seeds a confidential app")
        .confidential_app
        .clone();
    let grant = ClientCredentials::builder()
        .authority_host(emulator.base_url())
        .tenant(emulator.tenant_id())
        .client_id(&app.client_id)
        .client_secret(app.secret.clone())
        .build()?;
    let client = Client::builder(emulator.base_url(), grant).build()?;

    let mut batch = Batch::new();
    batch.change_set(|set| {
        let account = set.create("accounts", json!({"name": "Fabrikam (batch)"}));
        set.create(
            "contacts",
            json!({"lastname": "Ng", "parentcustomerid_account@odata.bind": account.bind()}),
        );
    });
    batch.get("accounts?$select=name&$filter=name eq 'Fabrikam (batch)'");

    let parts = client.execute_batch(&batch).await?;
    for (index, part) in parts.iter().enumerate() {
        println!(
            "part {}: HTTP {}{}",
            index + 1,
            part.status.as_u16(),
            part.id
                .map(|id| format!(", record {id}"))
                .unwrap_or_default()
        );
    }
    emulator.shutdown().await;
    if !parts.iter().all(d365_webapi::BatchResponse::is_success) {
        return Err("a part of the batch failed".into());
    }
    Ok(())
}
