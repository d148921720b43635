//! An app-only daemon: the client credentials grant (a client secret), a token cache in
//! front of it, and the Web API client doing a job every round — here a record created and
//! the accounts counted, three rounds, with one token request for all of them.
//!
//! It starts the d365 emulator in-process, so it runs with no setup:
//!
//! ```text
//! cargo run -p d365-webapi --example app_only_daemon
//! ```
//!
//! Against a real organization the grant is built the same way from your tenant, app id and
//! secret (or a certificate), and `Client::builder` gets the organization URL.

#![allow(clippy::print_stdout)]

use d365_auth_client_credentials::ClientCredentials;
use d365_emulator::Emulator;
use d365_webapi::{Client, Query, RequestOptions};
use serde_json::json;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let emulator = Emulator::builder().start().await?;
    let app = emulator
        .seeded()
        .expect("the emulator seeds a confidential app")
        .confidential_app
        .clone();
    println!("emulator at {}", emulator.base_url());

    // The app's identity: tenant, client id and secret. No person is involved.
    let grant = ClientCredentials::builder()
        .authority_host(emulator.base_url())
        .tenant(emulator.tenant_id())
        .client_id(&app.client_id)
        .client_secret(app.secret.clone())
        .build()?;
    // The client keeps the grant behind a token cache: one token for every round.
    let client = Client::builder(emulator.base_url(), grant).build()?;

    let me = client.who_am_i().await?;
    for round in 1..=3 {
        let name = format!("Daemon round {round}");
        client
            .create("accounts", &json!({ "name": name }), &RequestOptions::new())
            .await?;
        let page = client
            .query_page::<serde_json::Value>(&Query::new("accounts").select(["name"]).count())
            .await?;
        println!(
            "round {round}: running as application user {}, {} accounts",
            me.user_id,
            page.count.unwrap_or_default()
        );
    }
    emulator.shutdown().await;
    println!("done");
    Ok(())
}
