//! Gets a Dataverse token with the password grant and prints when it expires and what it
//! grants (never the token itself), then renews it with the refresh token.
//!
//! By default it starts the d365 emulator in-process and signs in as its seeded user:
//!
//! ```text
//! cargo run -p d365-auth-ropc --example ropc
//! ```
//!
//! With `--env` it signs in to a real tenant from these environment variables:
//! `D365_ORG_URL`, `D365_TENANT_ID`, `D365_CLIENT_ID`, `D365_USERNAME`, `D365_PASSWORD`
//! (and optionally `D365_CLIENT_SECRET` for a confidential application).
//!
//! ```text
//! D365_ORG_URL=https://contoso.crm.dynamics.com D365_TENANT_ID=contoso.onmicrosoft.com \
//! D365_CLIENT_ID=... D365_USERNAME=ana@contoso.com D365_PASSWORD=... \
//! cargo run -p d365-auth-ropc --example ropc -- --env
//! ```

#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::process::ExitCode;
use std::time::SystemTime;

use d365_auth_core::{AccessToken, TokenProvider, TokenRequest};
use d365_auth_ropc::UsernamePassword;
use d365_emulator::Emulator;

const VARIABLES: &[&str] = &[
    "D365_ORG_URL",
    "D365_TENANT_ID",
    "D365_CLIENT_ID",
    "D365_USERNAME",
    "D365_PASSWORD",
];

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
    let grant = UsernamePassword::builder()
        .authority_host(emulator.base_url())
        .tenant(emulator.tenant_id())
        .client_id(&seeded.public_app.client_id)
        .username(&seeded.user.upn)
        .password(seeded.user.password.clone())
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
    let mut builder = UsernamePassword::builder()
        .tenant(var("D365_TENANT_ID"))
        .client_id(var("D365_CLIENT_ID"))
        .username(var("D365_USERNAME"))
        .password(var("D365_PASSWORD").into());
    if let Ok(secret) = std::env::var("D365_CLIENT_SECRET")
        && !secret.is_empty()
    {
        builder = builder.client_secret(secret.into());
    }
    let grant = builder.build().map_err(|error| error.to_string())?;
    run(&grant, &var("D365_ORG_URL")).await
}

async fn run(grant: &UsernamePassword, org_url: &str) -> Result<(), String> {
    let request = TokenRequest::for_url(org_url).map_err(|error| error.to_string())?;
    println!(
        "signing in as {} to {}",
        grant.username(),
        request.resource()
    );
    let token = grant
        .request_token(&request)
        .await
        .map_err(|error| error.to_string())?;
    describe("password grant", &token);
    let renewed = grant
        .renew_token(&request, &token)
        .await
        .map_err(|error| error.to_string())?;
    describe("renewed with the refresh token", &renewed);
    Ok(())
}

fn describe(how: &str, token: &AccessToken) {
    let remaining = token.remaining_at(SystemTime::now()).as_secs();
    let expires_at = token
        .expires_on()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|since| since.as_secs())
        .unwrap_or_default();
    println!("{how}:");
    println!("  expires in {remaining} s (unix time {expires_at})");
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
