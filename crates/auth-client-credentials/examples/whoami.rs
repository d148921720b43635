//! The classic walkthrough in Rust: get a token by client credentials, then call the
//! Dataverse `WhoAmI` function with the OData headers.
//!
//! By default it starts the d365 emulator in-process and uses its seeded confidential app.
//! Set these to run it against a real organization instead:
//!
//! ```text
//! D365_ORG_URL=https://contoso.crm.dynamics.com
//! AZURE_TENANT_ID=<directory id>  AZURE_CLIENT_ID=<application id>  AZURE_CLIENT_SECRET=<secret value>
//! cargo run -p d365-auth-client-credentials --example whoami
//! ```
//!
//! (`d365-connect` reads every azure-identity variable — a certificate or a federated token
//! file in place of the secret — and builds the grant for you: `d365_connect::from_environment`.)

#![allow(clippy::print_stdout)]

use std::time::SystemTime;

use d365_auth_client_credentials::ClientCredentials;
use d365_auth_core::{TokenCache, TokenRequest};
use secrecy::ExposeSecret;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (org_url, grant, _emulator) = match std::env::var("D365_ORG_URL") {
        Ok(org_url) => {
            let variable = |name: &str| std::env::var(name).map_err(|_| format!("set {name}"));
            let grant = ClientCredentials::builder()
                .tenant(variable("AZURE_TENANT_ID")?)
                .client_id(variable("AZURE_CLIENT_ID")?)
                .client_secret(variable("AZURE_CLIENT_SECRET")?.into())
                .build()?;
            (org_url, grant, None)
        }
        Err(_) => {
            let emulator = d365_emulator::Emulator::builder().start().await?;
            let app = emulator
                .seeded()
                .expect("the emulator seeds a confidential app")
                .confidential_app
                .clone();
            println!("Started the d365 emulator at {}", emulator.base_url());
            let grant = ClientCredentials::builder()
                .authority_host(emulator.base_url())
                .tenant(emulator.tenant_id())
                .client_id(&app.client_id)
                .client_secret(app.secret.clone())
                .build()?;
            (emulator.base_url().to_owned(), grant, Some(emulator))
        }
    };

    let request = TokenRequest::for_url(&org_url)?;
    let cache = TokenCache::new(grant);
    let token = cache.get(&request).await?;
    let minutes = token.remaining_at(SystemTime::now()).as_secs() / 60;
    println!(
        "Token for {} from {}: valid for {minutes} more minutes",
        request.resource(),
        cache.provider().token_endpoint()
    );

    let response = reqwest::Client::new()
        .get(format!("{}/api/data/v9.2/WhoAmI", request.resource()))
        .bearer_auth(token.secret().expose_secret())
        .header("Accept", "application/json")
        .header("OData-MaxVersion", "4.0")
        .header("OData-Version", "4.0")
        .send()
        .await?;
    let status = response.status();
    let body: serde_json::Value =
        serde_json::from_slice(&response.bytes().await?).unwrap_or_default();
    if status.is_success() {
        println!(
            "WhoAmI: UserId {}  BusinessUnitId {}  OrganizationId {}",
            body["UserId"], body["BusinessUnitId"], body["OrganizationId"]
        );
    } else {
        println!(
            "WhoAmI answered HTTP {status}: {}",
            body["error"]["message"]
        );
        println!(
            "(a token without an application user in the environment gets 401/403: create one with a security role)"
        );
    }
    Ok(())
}
