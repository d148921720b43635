//! Where a command's connection comes from, in order: `--emulator`, `--connection-string`
//! (or `D365_CONNECTION_STRING`), a profile (`--profile`, `D365_PROFILE`, or the current
//! one), and the azure-identity environment variables with `D365_URL`. `--grant
//! device-code` signs in with the device code grant instead, keeping the connection's
//! client id and authority. Tokens are kept in the token file (see [`token_file`]) unless
//! `--no-token-cache`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use d365_auth_client_credentials::ClientCredentials;
use d365_auth_core::{Authority, FileStore, Tenant, TokenProvider, TokenStore};
use d365_auth_device_code::{DeviceCode, DeviceCodeMessage};
use d365_emulator::Emulator;
use d365_webapi::{Client, ConnectOptions, ConnectionString, RetrySettings};
use secrecy::ExposeSecret as _;

use crate::cli::{Global, GrantChoice};
use crate::exit::UsageError;
use crate::profiles;

/// How often the embedded emulator lets the device code grant poll: a person at its page
/// needs no five-second pause, and neither do tests.
pub(crate) const EMULATOR_DEVICE_CODE_INTERVAL: Duration = Duration::from_secs(1);

/// Shows the device code sign-in on stderr, so stdout stays the command's output, with
/// `note` under the identity provider's message.
pub(crate) fn print_device_code_message(message: &DeviceCodeMessage, note: Option<&str>) {
    // The identity provider wrote the message: it must not drive the terminal.
    eprintln!("{}", crate::output::printable(&message.to_string(), true));
    if let Some(note) = note {
        eprintln!("{note}");
    }
    eprintln!(
        "Waiting for the sign-in (the code expires in {} min; Ctrl-C to stop).",
        message.expires_in.as_secs().div_ceil(60)
    );
}

/// The device code grant for `client_id` at `authority`, printing its message on stderr.
pub(crate) fn device_code_grant(
    authority: Authority,
    client_id: &str,
) -> anyhow::Result<DeviceCode> {
    Ok(DeviceCode::builder()
        .authority(authority)
        .client_id(client_id)
        .on_message(|message| print_device_code_message(message, None))
        .build()?)
}

/// A ready client and what it was built from.
pub(crate) struct Connection {
    pub(crate) client: Client,
    /// The client's token cache, as a provider (for `d365 token`).
    pub(crate) provider: Arc<dyn TokenProvider>,
    /// The grant itself, behind no cache: `auth doctor` proves the credential with it.
    pub(crate) grant: Arc<dyn TokenProvider>,
    /// Where the connection came from, for people (never holds a secret).
    pub(crate) source: String,
    /// Keeps the embedded emulator running for the command.
    pub(crate) _emulator: Option<Emulator>,
}

/// The token file: `$D365_TOKEN_CACHE`, or `tokens.json` in the d365 config directory.
pub(crate) fn token_file() -> PathBuf {
    std::env::var_os("D365_TOKEN_CACHE")
        .map_or_else(|| profiles::config_dir().join("tokens.json"), PathBuf::from)
}

/// The most a connection string read from standard input or a file may hold.
const MAX_CONNECTION_STRING_LEN: u64 = 64 * 1024;

/// The connection string the options give: `--connection-string TEXT` (or
/// `D365_CONNECTION_STRING`), `-c -` for standard input, or `--connection-string-file`.
/// Warns when one typed on the command line holds a secret: every local user can read it
/// in the process list.
pub(crate) fn connection_string(global: &Global) -> anyhow::Result<Option<String>> {
    if let Some(path) = &global.connection_string_file {
        let bytes = d365_auth_core::read_private_file(path, MAX_CONNECTION_STRING_LEN)
            .with_context(|| format!("cannot read the connection string file {}", path.display()))?
            .ok_or_else(|| {
                UsageError(format!(
                    "the connection string file {} does not exist",
                    path.display()
                ))
            })?;
        let text = String::from_utf8(bytes).map_err(|_| {
            UsageError(format!(
                "the connection string file {} is not UTF-8 text",
                path.display()
            ))
        })?;
        return Ok(Some(text.trim().to_owned()));
    }
    match global.connection_string.as_deref() {
        None => Ok(None),
        Some("-") => read_stdin("the connection string").map(Some),
        Some(text) => {
            if global.connection_string_on_command_line {
                warn_if_secret_on_command_line(text);
            }
            Ok(Some(text.to_owned()))
        }
    }
}

/// Standard input, whole and trimmed, for a value that may hold a secret.
pub(crate) fn read_stdin(what: &str) -> anyhow::Result<String> {
    use std::io::Read as _;
    let mut text = String::new();
    std::io::stdin()
        .lock()
        .take(MAX_CONNECTION_STRING_LEN + 1)
        .read_to_string(&mut text)
        .with_context(|| format!("cannot read {what} from standard input"))?;
    if text.len() as u64 > MAX_CONNECTION_STRING_LEN {
        return Err(UsageError(format!(
            "{what} on standard input is longer than {MAX_CONNECTION_STRING_LEN} bytes"
        ))
        .into());
    }
    let text = text.trim();
    if text.is_empty() {
        return Err(UsageError(format!("{what} on standard input is empty")).into());
    }
    Ok(text.to_owned())
}

/// Whether a connection string holds a secret (a client secret, a password, a certificate
/// password); one that does not parse is judged by its keys, never echoed.
pub(crate) fn holds_secret(text: &str) -> bool {
    match ConnectionString::parse(text) {
        Ok(parsed) => {
            parsed.has_client_secret()
                || parsed.has_password()
                || parsed.certificate_password().is_some()
        }
        Err(_) => {
            let lower = text.to_ascii_lowercase();
            ["secret", "password", "pwd"]
                .iter()
                .any(|key| lower.contains(key))
        }
    }
}

/// The warning for a secret typed on the command line.
pub(crate) fn warn_if_secret_on_command_line(text: &str) {
    if holds_secret(text) {
        eprintln!(
            "warning: the connection string on the command line holds a secret, which other users of this machine can read in the process list; pass it on standard input (`-c -`), in a file (--connection-string-file), in D365_CONNECTION_STRING, or save it in a profile (`d365 profile add NAME` asks for it without echo)"
        );
    }
}

/// The Web API client for `url` with `grant`, the retry, deadline and paging bounds of
/// the options, and the token file unless `--no-token-cache` (or `token_file` is false).
fn client_for(
    url: &str,
    grant: Arc<dyn TokenProvider>,
    global: &Global,
    token_file_allowed: bool,
) -> anyhow::Result<Client> {
    let retry = RetrySettings::default()
        .max_retries(global.max_retries)
        .deadline(Duration::from_secs(global.timeout));
    let mut builder = Client::builder_shared(url, grant)
        .retry(retry)
        .max_pages(global.max_pages);
    if token_file_allowed && !global.no_token_cache {
        builder =
            builder.token_store(Arc::new(FileStore::new(token_file())) as Arc<dyn TokenStore>);
    }
    Ok(builder.build()?)
}

impl Connection {
    fn new(
        client: Client,
        grant: Arc<dyn TokenProvider>,
        source: String,
        emulator: Option<Emulator>,
    ) -> Self {
        Self {
            provider: Arc::new(client.token_cache().clone()),
            client,
            grant,
            source,
            _emulator: emulator,
        }
    }
}

impl Connection {
    /// Resolves the connection the options and environment name, with `--grant`.
    pub(crate) async fn resolve(global: &Global) -> anyhow::Result<Self> {
        Self::resolve_as(global, global.grant).await
    }

    /// Resolves the connection, signing in with `grant` instead of the connection's own
    /// when one is given.
    pub(crate) async fn resolve_as(
        global: &Global,
        grant: Option<GrantChoice>,
    ) -> anyhow::Result<Self> {
        if global.emulator {
            return Self::embedded_emulator(global, grant).await;
        }
        if let Some(text) = connection_string(global)? {
            return Self::from_connection_string(&text, "connection string", global, grant).await;
        }
        if let Some(profile) = profiles::selected(global.profile.as_deref())? {
            let source = format!("profile `{}`", profile.name);
            return Self::from_connection_string(
                &profile.connection_string,
                &source,
                global,
                grant,
            )
            .await;
        }
        if let Some(url) = std::env::var("D365_URL").ok().filter(|url| !url.is_empty()) {
            return Self::from_environment(&url, global, grant);
        }
        Err(UsageError(
            "no connection: give --connection-string (or D365_CONNECTION_STRING), --profile, or --emulator, or set D365_URL with the AZURE_* variables; `d365 demo` shows everything offline".to_owned(),
        )
        .into())
    }

    /// The embedded emulator with its seeded confidential application, or with
    /// `--grant device-code` its seeded public client: the code is approved at the
    /// emulator's own page (`{base}/devicelogin`) by one of its users.
    pub(crate) async fn embedded_emulator(
        global: &Global,
        grant: Option<GrantChoice>,
    ) -> anyhow::Result<Self> {
        let emulator = Emulator::builder()
            .device_code_interval(EMULATOR_DEVICE_CODE_INTERVAL)
            .start()
            .await
            .context("starting the embedded emulator")?;
        let seeded = emulator
            .seeded()
            .context("the emulator seeds its identities")?
            .clone();
        // The emulator's signing keys live as long as the process: its tokens must not
        // reach the token file.
        let (grant, source): (Arc<dyn TokenProvider>, String) = match grant {
            Some(GrantChoice::DeviceCode) => {
                let authority =
                    Authority::custom(emulator.base_url(), Tenant::parse(emulator.tenant_id())?)?;
                // The seeded user's password is the emulator's published test value.
                let note = format!(
                    "The emulator's users sign in there, such as {} with the password {}.",
                    seeded.user.upn,
                    seeded.user.password.expose_secret()
                );
                let grant = DeviceCode::builder()
                    .authority(authority)
                    .client_id(&seeded.public_app.client_id)
                    .on_message(move |message| print_device_code_message(message, Some(&note)))
                    .build()?;
                (
                    Arc::new(grant),
                    format!(
                        "embedded emulator at {} (device code, public client)",
                        emulator.base_url()
                    ),
                )
            }
            None => {
                let app = &seeded.confidential_app;
                let grant = ClientCredentials::builder()
                    .authority_host(emulator.base_url())
                    .tenant(emulator.tenant_id())
                    .client_id(&app.client_id)
                    .client_secret(app.secret.clone())
                    .build()?;
                (
                    Arc::new(grant),
                    format!("embedded emulator at {}", emulator.base_url()),
                )
            }
        };
        let client = client_for(emulator.base_url(), Arc::clone(&grant), global, false)?;
        Ok(Self::new(client, grant, source, Some(emulator)))
    }

    async fn from_connection_string(
        text: &str,
        source: &str,
        global: &Global,
        grant: Option<GrantChoice>,
    ) -> anyhow::Result<Self> {
        let connection = ConnectionString::parse(text)?;
        let (provider, source) = match grant {
            Some(GrantChoice::DeviceCode) => (
                device_code_for(&connection).await?,
                format!("{source} (device code)"),
            ),
            None => (connection.provider().await?, source.to_owned()),
        };
        let client = client_for(
            connection.url().as_str(),
            Arc::clone(&provider),
            global,
            true,
        )?;
        Ok(Self::new(client, provider, source, None))
    }

    /// `D365_URL` with the azure-identity variables (a secret, a certificate, or a
    /// federated token file); with `--grant device-code`, only `AZURE_CLIENT_ID` (and
    /// `AZURE_TENANT_ID`, `AZURE_AUTHORITY_HOST`) are used.
    fn from_environment(
        url: &str,
        global: &Global,
        grant: Option<GrantChoice>,
    ) -> anyhow::Result<Self> {
        let (provider, source): (Arc<dyn TokenProvider>, _) = match grant {
            Some(GrantChoice::DeviceCode) => (
                Arc::new(device_code_from_environment()?),
                "environment (D365_URL, AZURE_CLIENT_ID; device code)",
            ),
            None => (
                Arc::new(ClientCredentials::builder().with_environment().build().context(
                    "D365_URL is set, but the AZURE_* variables do not describe a client credential",
                )?),
                "environment (D365_URL, AZURE_*)",
            ),
        };
        let client = client_for(url, Arc::clone(&provider), global, true)?;
        Ok(Self::new(client, provider, source.to_owned(), None))
    }
}

/// The device code grant for a connection string: its `ClientId` (Microsoft's sample
/// public client when absent, as for `AuthType=OAuth`) and its authority (`Authority`,
/// `TenantId` with `AuthorityHost`, or discovered from the organization). Secrets and
/// passwords in the string are not used.
pub(crate) async fn device_code_for(
    connection: &ConnectionString,
) -> anyhow::Result<Arc<dyn TokenProvider>> {
    let authority = connection.resolve_authority(&ConnectOptions::new()).await?;
    let client_id = connection
        .client_id()
        .unwrap_or(ConnectionString::SAMPLE_CLIENT_ID);
    Ok(Arc::new(device_code_grant(authority, client_id)?))
}

/// The device code grant from `AZURE_CLIENT_ID`, `AZURE_TENANT_ID` (default
/// `organizations`) and `AZURE_AUTHORITY_HOST`.
fn device_code_from_environment() -> anyhow::Result<DeviceCode> {
    let var = |name: &str| {
        std::env::var(name)
            .ok()
            .filter(|value| !value.trim().is_empty())
    };
    let client_id = var("AZURE_CLIENT_ID").ok_or_else(|| {
        UsageError("--grant device-code with D365_URL needs AZURE_CLIENT_ID: the application (client) id of an app registration that allows public client flows".to_owned())
    })?;
    let tenant =
        Tenant::parse(&var("AZURE_TENANT_ID").unwrap_or_else(|| "organizations".to_owned()))?;
    let authority = match var("AZURE_AUTHORITY_HOST") {
        Some(host) if host.contains("://") => Authority::custom(&host, tenant)?,
        Some(host) => Authority::custom(&format!("https://{host}"), tenant)?,
        None => Authority::public_cloud(tenant),
    };
    device_code_grant(authority, &client_id)
}

/// Every saved profile for `org` other than `current_source`, as grants to compare.
pub(crate) async fn profile_candidates(
    org: &d365_auth_core::Resource,
    current_source: &str,
) -> anyhow::Result<Vec<crate::commands::auth::Candidate>> {
    let dir = profiles::config_dir();
    let file = profiles::read_profiles(&dir)?;
    let mut candidates = Vec::new();
    for (name, info) in &file.profiles {
        let label = format!("profile `{name}`");
        let same_org = d365_auth_core::Resource::parse(&info.url).is_ok_and(|url| &url == org);
        if !same_org || label == current_source {
            continue;
        }
        let Some(profile) = profiles::selected(Some(name))? else {
            continue;
        };
        let parsed = ConnectionString::parse(&profile.connection_string)?;
        candidates.push(crate::commands::auth::Candidate {
            label: format!("{label} ({})", info.auth_type),
            provider: parsed.provider().await?,
        });
    }
    Ok(candidates)
}
