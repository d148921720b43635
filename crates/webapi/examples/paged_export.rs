//! A paged export: every account, page by page (`Prefer: odata.maxpagesize`), following
//! `@odata.nextLink` to the end, written as CSV lines to standard output — memory stays at
//! one page whatever the table's size.
//!
//! It starts the d365 emulator in-process and generates 1,250 accounts, so it runs with no
//! setup:
//!
//! ```text
//! cargo run -p d365-webapi --example paged_export > accounts.csv
//! ```

#![allow(clippy::print_stdout, clippy::print_stderr)]

use d365_auth_client_credentials::ClientCredentials;
use d365_emulator::Emulator;
use d365_webapi::{Client, Order, Query};
use futures_util::TryStreamExt as _;

const ROWS: u64 = 1_250;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let emulator = Emulator::builder().start().await?;
    emulator.generate_accounts(ROWS).await?;
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

    let query = Query::new("accounts")
        .select(["accountid", "name"])
        .order_by("name", Order::Asc)
        .page_size(500);
    let mut rows = std::pin::pin!(client.query_all::<serde_json::Value>(query));
    let mut exported = 0_u64;
    println!("accountid,name");
    while let Some(account) = rows.try_next().await? {
        let name = account["name"]
            .as_str()
            .unwrap_or_default()
            .replace('"', "\"\"");
        println!(
            "{},\"{name}\"",
            account["accountid"].as_str().unwrap_or_default()
        );
        exported += 1;
    }
    emulator.shutdown().await;
    eprintln!("exported {exported} accounts");
    if exported < ROWS {
        return Err(format!("expected at least {ROWS} accounts, exported {exported}").into());
    }
    Ok(())
}
