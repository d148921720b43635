//! Signs a person in with the device code grant and prints when the Dataverse token
//! expires and what it grants (never the token itself), then renews it with the refresh
//! token — without a second prompt.
//!
//! By default it starts the d365 emulator in-process and approves the code in the
//! background as the emulator's seeded user, so it finishes on its own, offline:
//!
//! ```text
//! cargo run -p d365-auth-device-code --example device_code
//! ```
//!
//! With `--env` it signs in to a real tenant from these environment variables:
//! `D365_ORG_URL`, `D365_TENANT_ID`, `D365_CLIENT_ID` (an app registration that allows
//! public client flows). Open the page it prints, type the code and sign in.
//!
//! ```text
//! D365_ORG_URL=https://contoso.crm.dynamics.com D365_TENANT_ID=contoso.onmicrosoft.com \
//! D365_CLIENT_ID=51f81489-12ee-4a9e-aaae-a2591f45987d \
//! cargo run -p d365-auth-device-code --example device_code -- --env
//! ```

#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use d365_auth_core::{AccessToken, TokenProvider, TokenRequest};
use d365_auth_device_code::DeviceCode;
use d365_emulator::Emulator;

const VARIABLES: &[&str] = &["D365_ORG_URL", "D365_TENANT_ID", "D365_CLIENT_ID"];

#[tokio::main]
async fn main() -> ExitCode {
    let from_environment = std::env::args().skip(1).any(|arg| arg == "--env");
    let outcome = if from_environment {
        with_environment().await
    } else {
        with_emulator().await
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn with_emulator() -> Result<(), String> {
    let emulator = Emulator::builder()
        .device_code_interval(Duration::from_secs(1))
        .start()
        .await
        .map_err(|error| format!("the emulator did not start: {error}"))?;
    let seeded = emulator
        .seeded()
        .ok_or("the emulator has no seeded identities")?;
    println!(
        "emulator at {} (tenant {})",
        emulator.base_url(),
        emulator.tenant_id()
    );
    let codes = emulator.device_codes();
    let person = seeded.user.upn.clone();
    let grant = DeviceCode::builder()
        .authority_host(emulator.base_url())
        .tenant(emulator.tenant_id())
        .client_id(&seeded.public_app.client_id)
        .on_message(move |message| {
            println!("{message}");
            // A person would open the page and type the code; here the emulator approves
            // it two seconds later, as its seeded user, while the grant polls.
            let codes = codes.clone();
            let code = message.user_code.clone();
            let person = person.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_secs(2)).await;
                match codes.approve(&code, &person) {
                    Ok(_) => println!("(approved in the background as {person})"),
                    Err(error) => eprintln!("(could not approve: {error})"),
                }
            });
        })
        .build()
        .map_err(|error| error.to_string())?;
    let outcome = run(&grant, "https://contoso.crm.dynamics.com").await;
    emulator.shutdown().await;
    outcome
}

async fn with_environment() -> Result<(), String> {
    let missing: Vec<&str> = VARIABLES
        .iter()
        .copied()
        .filter(|name| std::env::var(name).map_or(true, |value| value.is_empty()))
        .collect();
    if !missing.is_empty() {
        return Err(format!(
            "set {} to sign in to a real tenant (or run without --env to use the emulator)",
            missing.join(", ")
        ));
    }
    let var = |name: &str| std::env::var(name).unwrap_or_default();
    let grant = DeviceCode::builder()
        .tenant(var("D365_TENANT_ID"))
        .client_id(var("D365_CLIENT_ID"))
        .on_message(|message| eprintln!("{message}"))
        .build()
        .map_err(|error| error.to_string())?;
    run(&grant, &var("D365_ORG_URL")).await
}

async fn run(grant: &DeviceCode, org_url: &str) -> Result<(), String> {
    let request = TokenRequest::for_url(org_url).map_err(|error| error.to_string())?;
    println!("signing in to {}", request.resource());
    let token = grant
        .request_token(&request)
        .await
        .map_err(|error| error.to_string())?;
    describe("device code grant", &token);
    let renewed = grant
        .renew_token(&request, &token)
        .await
        .map_err(|error| error.to_string())?;
    describe("renewed with the refresh token (no new code)", &renewed);
    Ok(())
}

fn describe(how: &str, token: &AccessToken) {
    let remaining = token.remaining_at(SystemTime::now()).as_secs();
    println!("{how}:");
    println!("  expires in {remaining} s");
    println!("  scope: {}", token.scope().unwrap_or("(not stated)"));
    println!(
        "  refresh token: {}",
        if token.refresh_token().is_some() {
            "received"
        } else {
            "none"
        }
    );
}
