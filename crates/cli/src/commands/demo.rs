//! `d365 demo`: the classic walkthrough, offline. It starts the embedded emulator, registers
//! an application with a client secret, shows what happens before the application has a
//! user in the environment, creates the application user with a security role, gets tokens
//! by client credentials and by the password grant, calls WhoAmI with each, creates and
//! queries accounts, prints the grant comparison, and signs a person in once with a device
//! code — remembered, so a second run asks nobody. Every step says what it did.

use anyhow::Context as _;
use d365_auth_core::{Resource, TokenRequest};
use d365_connect::ConnectionString;
use d365_webapi::{Filter, Order, Query, RequestOptions};
use secrecy::{ExposeSecret as _, SecretString};
use serde_json::{Value, json};

use crate::cli::{Global, OutputFormat};
use crate::commands::auth::{COMPARE_COLUMNS, compare_rows, emulator_candidates};
use crate::commands::token::token_facts;
use crate::connection::{emulator_builder, start_emulator};
use crate::output;

fn step(number: u32, text: &str) {
    println!("\n[{number}] {text}");
}

fn done(text: &str) {
    println!("    ✓ {text}");
}

/// Runs the walkthrough.
pub(crate) async fn run(global: &Global) -> anyhow::Result<()> {
    let format = global.output;
    step(
        1,
        "Starting the emulator: a local Entra ID and Dataverse on loopback",
    );
    // The certificate app's files are written so the comparison can use them.
    let emulator = start_emulator(emulator_builder().write_credentials_to_private_dir()).await?;
    let base = emulator.base_url().to_owned();
    let tenant = emulator.tenant_id().to_owned();
    done(&format!(
        "organization and authority at {base}, tenant {tenant}"
    ));

    step(
        2,
        "Registering an application and creating a client secret (Entra admin center > App registrations)",
    );
    let admin = reqwest::Client::new();
    let app: Value = admin_post(
        &admin,
        &format!("{base}/_emulator/tenants/{tenant}/apps"),
        &json!({"display_name": "d365 demo daemon"}),
    )
    .await?;
    let client_id = app["client_id"]
        .as_str()
        .context("the emulator returns the new client id")?
        .to_owned();
    let secret: Value = admin_post(
        &admin,
        &format!("{base}/_emulator/tenants/{tenant}/apps/{client_id}/secrets"),
        &json!({}),
    )
    .await?;
    let secret = SecretString::from(
        secret["value"]
            .as_str()
            .context("the emulator returns the generated secret value")?
            .to_owned(),
    );
    done(&format!(
        "application (client) id {client_id}; secret value saved (it is shown once, never printed here)"
    ));

    let daemon_string = ConnectionString::parse(&format!(
        "AuthType=ClientSecret;Url={base};TenantId={tenant};AuthorityHost={base};ClientId={client_id};ClientSecret={}",
        secret.expose_secret()
    ))?;
    done(&format!("connection string: {daemon_string}"));
    let daemon = daemon_string.client().await?;

    step(
        3,
        "Calling WhoAmI before the application has a user in the environment",
    );
    match daemon.who_am_i().await {
        Err(error) => {
            done("Dataverse refused it, as it does for every new app registration:");
            let (line, hint) = crate::exit::describe(&error.into());
            println!("      {line}");
            if let Some(hint) = hint {
                println!("      hint: {hint}");
            }
        }
        Ok(_) => anyhow::bail!(
            "WhoAmI succeeded without an application user: the emulator did not enforce membership"
        ),
    }

    step(
        4,
        "Creating an application user with the System Administrator role (Power Platform admin center > Application users)",
    );
    let user: Value = admin_post(
        &admin,
        &format!("{base}/_emulator/dataverse/users"),
        &json!({"application_id": client_id, "fullname": "# d365 demo daemon", "roles": ["System Administrator"]}),
    )
    .await?;
    done(&format!(
        "application user {}",
        user["systemuserid"].as_str().unwrap_or("created")
    ));

    step(
        5,
        "Getting a token by client credentials and calling WhoAmI",
    );
    let request = TokenRequest::new(Resource::parse(&base)?);
    let token = daemon.token_cache().get(&request).await?;
    print_facts(format, &token_facts(&token))?;
    let me = daemon.who_am_i().await?;
    done(&format!(
        "WhoAmI: UserId {} (the application user)",
        me.user_id
    ));

    step(
        6,
        "Getting a token by the password grant (ROPC, public client) and calling WhoAmI",
    );
    let seeded = emulator
        .seeded()
        .context("the emulator seeds users")?
        .clone();
    let user_string = ConnectionString::parse(&format!(
        "AuthType=OAuth;Url={base};TenantId={tenant};AuthorityHost={base};ClientId={};Username={};Password={}",
        seeded.public_app.client_id,
        seeded.user.upn,
        seeded.user.password.expose_secret()
    ))?;
    done(&format!("connection string: {user_string}"));
    let user_client = user_string.client().await?;
    let user_token = user_client.token_cache().get(&request).await?;
    print_facts(format, &token_facts(&user_token))?;
    let alice = user_client.who_am_i().await?;
    done(&format!(
        "WhoAmI: UserId {} ({})",
        alice.user_id, seeded.user.upn
    ));

    step(7, "Creating accounts and querying them");
    for (name, revenue) in [
        ("Contoso Pharmaceuticals", 1_200_000),
        ("Fabrikam, Inc.", 850_000),
        ("Northwind Traders", 2_300_000),
    ] {
        let created = daemon
            .create(
                "accounts",
                &json!({"name": name, "revenue": revenue}),
                &RequestOptions::new(),
            )
            .await?;
        done(&format!(
            "created {name} ({})",
            created.id.map(|id| id.to_string()).unwrap_or_default()
        ));
    }
    let query = Query::new("accounts")
        .select(["name", "revenue"])
        .filter(Filter::gt("revenue", 1_000_000))
        .order_by("revenue", Order::Desc);
    done(&format!("GET {}", query.to_relative_url()));
    let page = daemon.query_page::<Value>(&query).await?;
    output::records(&mut std::io::stdout().lock(), format, &page.records)?;

    step(8, "Comparing the grants against the same organization");
    let mut candidates = emulator_candidates(&emulator).await?;
    candidates.retain(|candidate| !candidate.label.contains("confidential client"));
    let rows = compare_rows(&Resource::parse(&base)?, candidates).await;
    output::records_in_order(
        &mut std::io::stdout().lock(),
        format,
        &rows,
        COMPARE_COLUMNS,
    )?;

    step(
        9,
        "A person signs in once without a browser (a device code), and is remembered (d365 login --device-code)",
    );
    remembered_sign_in(&emulator, &base, &tenant, format).await?;

    println!(
        "\nDone. Run the emulator yourself with `d365 emulator`, or any command with --emulator."
    );
    emulator.shutdown().await;
    Ok(())
}

/// The device code sign-in, approved at the emulator's page as alice, its tokens kept in an
/// encrypted token file; then a second run of the same connection — a new process, in
/// real life — gets its token from the file and the refresh token, with no sign-in.
async fn remembered_sign_in(
    emulator: &d365_emulator::Emulator,
    base: &str,
    tenant: &str,
    format: OutputFormat,
) -> anyhow::Result<()> {
    let seeded = emulator
        .seeded()
        .context("the emulator seeds users")?
        .clone();
    let text = format!(
        "AuthType=OAuth;Url={base};TenantId={tenant};AuthorityHost={base};ClientId={};Grant=device-code",
        seeded.public_app.client_id
    );
    done(&format!("connection string: {text}"));
    let dir = tempfile::tempdir().context("a temporary directory for the demo's token file")?;
    let file = dir.path().join("tokens.json");
    let key = d365_auth_core::store::EncryptionKey::generate()?;
    let prompts = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let credential = ConnectionString::parse(&text)?.into_credential();
    let run = |counter: std::sync::Arc<std::sync::atomic::AtomicUsize>| {
        let codes = emulator.device_codes();
        let person = seeded.user.upn.clone();
        let options = d365_connect::ConnectOptions::new().extension(
            d365_auth_device_code::ShowDeviceCode::new(move |message| {
                counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                println!(
                    "    {}",
                    crate::output::printable(&message.to_string(), true)
                );
                println!(
                    "    (the emulator approves it as {person}, as a person at that page would)"
                );
                if let Err(error) = codes.approve(&message.user_code, &person) {
                    tracing::warn!(%error, "the emulator did not approve the device code");
                }
            }),
        );
        let credential = credential.clone();
        let store = d365_auth_core::store::FileStore::builder(&file)
            .encryption_key(key.clone())
            .build();
        async move {
            let provider = credential.provider(&options).await?;
            let client = d365_webapi::Client::builder_shared(base, provider)
                .token_store(std::sync::Arc::new(store))
                .build()?;
            anyhow::Ok(client.who_am_i().await?.user_id)
        }
    };
    let first = run(std::sync::Arc::clone(&prompts)).await?;
    done(&format!(
        "signed in; WhoAmI: UserId {first}; the tokens are in an encrypted token file"
    ));
    let again = run(std::sync::Arc::clone(&prompts)).await?;
    done(&format!(
        "a second run of the same connection: WhoAmI: UserId {again}, with {} sign-in in all — the token file answered",
        prompts.load(std::sync::atomic::Ordering::SeqCst)
    ));
    print_facts(
        format,
        &[
            (
                "sign-ins",
                json!(prompts.load(std::sync::atomic::Ordering::SeqCst)),
            ),
            ("same person", json!(first == again)),
        ],
    )
}

fn print_facts(format: OutputFormat, facts: &[(&str, Value)]) -> anyhow::Result<()> {
    output::facts(&mut std::io::stdout().lock(), format, facts)
}

async fn admin_post(http: &reqwest::Client, url: &str, body: &Value) -> anyhow::Result<Value> {
    let response = http
        .post(url)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(body.to_string())
        .send()
        .await
        .with_context(|| format!("POST {url}"))?;
    let status = response.status();
    let bytes = response.bytes().await?;
    if !status.is_success() {
        anyhow::bail!(
            "POST {url}: HTTP {status}: {}",
            String::from_utf8_lossy(&bytes)
        );
    }
    Ok(serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}
