//! Where a command's connection comes from ([`choose`]): flags beat the environment, and the
//! environment beats the current profile. In order: `--emulator`; `--connection-string`
//! (`-c`, `--connection-string-file`); `--profile NAME`; `D365_CONNECTION_STRING` (or
//! `D365_CONNECTION_STRING_FILE`); `D365_PROFILE`; the azure-identity environment variables
//! with `D365_URL`; the current profile (`d365 profile use`). Each becomes one
//! [`Credential`] of `d365-connect`, which builds the grant: `--grant NAME` signs in with
//! another registered grant (`device-code`), keeping the connection's client id and
//! authority. Tokens are kept in the token file (see [`token_file`]) unless
//! `--no-token-cache`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use d365_auth_core::grant::GrantConfig;
use d365_auth_core::store::TokenStore;
use d365_auth_core::{Resource, Tenant, TokenProvider};
use d365_auth_device_code::{DeviceCodeMessage, ShowDeviceCode};
use d365_connect::{ConnectOptions, ConnectionString, Credential, EnvironmentSettings, Registry};
use d365_emulator::{Emulator, EmulatorBuilder};
use d365_webapi::{Client, RetrySettings};
use secrecy::ExposeSecret as _;

use crate::cli::{Global, Origin};
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

/// What grants read from the command line beyond configuration: where a person is shown
/// the device code sign-in (stderr, with `note` under it).
pub(crate) fn connect_options(note: Option<String>) -> ConnectOptions {
    ConnectOptions::new().extension(ShowDeviceCode::new(move |message| {
        print_device_code_message(message, note.as_deref());
    }))
}

/// The embedded emulator, its device code grant polling every second.
pub(crate) fn emulator_builder() -> EmulatorBuilder {
    Emulator::builder().device_code_interval(EMULATOR_DEVICE_CODE_INTERVAL)
}

/// Starts the embedded emulator.
pub(crate) async fn start_emulator(builder: EmulatorBuilder) -> anyhow::Result<Emulator> {
    builder
        .start()
        .await
        .context("starting the embedded emulator")
}

/// The configuration every credential for the emulator starts from: the emulator is the
/// organization and the authority host, in its tenant.
pub(crate) fn emulator_config(emulator: &Emulator) -> anyhow::Result<GrantConfig> {
    let mut config = GrantConfig::default();
    config.organization = Some(Resource::parse(emulator.base_url())?);
    config.tenant = Some(Tenant::parse(emulator.tenant_id())?);
    config.authority_host = Some(emulator.base_url().to_owned());
    Ok(config)
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

/// The token file, encrypted with its key (see [`token_key`](crate::token_key)).
pub(crate) fn token_store() -> anyhow::Result<Arc<dyn TokenStore>> {
    let (store, _) =
        crate::token_key::open_store(&token_file(), crate::token_key::choice_from_environment()?)?;
    Ok(Arc::new(store))
}

/// The most a connection string read from standard input or a file may hold.
const MAX_CONNECTION_STRING_LEN: u64 = 64 * 1024;

/// The connection string the options give from `origin` (the command line or the
/// environment): `--connection-string TEXT` (`D365_CONNECTION_STRING`), `-c -` for standard
/// input, or `--connection-string-file` (`D365_CONNECTION_STRING_FILE`). Warns when one
/// typed on the command line holds a secret: every local user can read it in the process
/// list.
fn connection_string_from(global: &Global, origin: Origin) -> anyhow::Result<Option<String>> {
    // Checked here, not by clap: clap would also refuse a flag beside the other's variable,
    // where the flag simply wins.
    let file_here = global.connection_string_file.is_some()
        && global.origins.of("connection_string_file") == origin;
    let text_here =
        global.connection_string.is_some() && global.origins.of("connection_string") == origin;
    if file_here && text_here {
        return Err(UsageError(match origin {
            Origin::Environment => {
                "both D365_CONNECTION_STRING and D365_CONNECTION_STRING_FILE are set: unset one"
                    .to_owned()
            }
            _ => "--connection-string and --connection-string-file were both given: give one"
                .to_owned(),
        })
        .into());
    }
    if let Some(path) = &global.connection_string_file
        && global.origins.of("connection_string_file") == origin
    {
        let bytes = d365_auth_core::store::read_private_file(path, MAX_CONNECTION_STRING_LEN)
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
    if global.origins.of("connection_string") != origin {
        return Ok(None);
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

/// The connection a command's options, environment and profiles choose (see the module
/// documentation for the order), with where it came from.
pub(crate) enum Chosen {
    /// A connection string.
    ConnectionString {
        /// The connection string.
        text: String,
        /// Where it came from, for messages and `config show`.
        from: String,
    },
    /// A saved profile.
    Profile {
        /// The profile.
        profile: profiles::Profile,
        /// Why this profile (`--profile`, `D365_PROFILE`, the current one).
        from: String,
    },
    /// The azure-identity environment variables with `D365_URL`.
    Environment,
    /// Nothing names a connection.
    Nothing,
}

/// Chooses the connection: flags, then the environment, then the current profile.
pub(crate) fn choose(global: &Global) -> anyhow::Result<Chosen> {
    if let Some(text) = connection_string_from(global, Origin::Flag)? {
        let from = if global.connection_string_file.is_some()
            && global.origins.of("connection_string_file") == Origin::Flag
        {
            "--connection-string-file"
        } else {
            "--connection-string"
        };
        return Ok(Chosen::ConnectionString {
            text,
            from: from.to_owned(),
        });
    }
    let named_profile = |origin: Origin, from: &str| -> anyhow::Result<Option<Chosen>> {
        if global.origins.of("profile") != origin {
            return Ok(None);
        }
        let Some(profile) = profiles::selected(global.profile.as_deref())? else {
            return Ok(None);
        };
        Ok(Some(Chosen::Profile {
            from: format!("profile `{}` ({from})", profile.name),
            profile,
        }))
    };
    if let Some(chosen) = named_profile(Origin::Flag, "--profile")? {
        return Ok(chosen);
    }
    if let Some(text) = connection_string_from(global, Origin::Environment)? {
        let from = if global.connection_string_file.is_some()
            && global.origins.of("connection_string_file") == Origin::Environment
        {
            "D365_CONNECTION_STRING_FILE"
        } else {
            "D365_CONNECTION_STRING"
        };
        return Ok(Chosen::ConnectionString {
            text,
            from: from.to_owned(),
        });
    }
    if let Some(chosen) = named_profile(Origin::Environment, "D365_PROFILE")? {
        return Ok(chosen);
    }
    if std::env::var_os("D365_URL").is_some_and(|url| !url.is_empty()) {
        return Ok(Chosen::Environment);
    }
    Ok(match profiles::selected(None)? {
        Some(profile) => Chosen::Profile {
            from: format!("profile `{}` (the current one)", profile.name),
            profile,
        },
        None => Chosen::Nothing,
    })
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
/// password: any key a grant marks secret); one that does not parse is judged by its key
/// names, never echoed.
pub(crate) fn holds_secret(text: &str) -> bool {
    match ConnectionString::parse(text) {
        Ok(parsed) => parsed.holds_secret(),
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

/// `builder` with the retry, deadline, paging and version options of the command line.
fn client_builder(
    builder: d365_webapi::ClientBuilder,
    global: &Global,
    api_version: Option<&str>,
) -> d365_webapi::ClientBuilder {
    let retry = RetrySettings::default()
        .max_retries(global.max_retries)
        .deadline(Duration::from_secs(global.timeout));
    let builder = builder.retry(retry).max_pages(global.max_pages);
    match global.api_version.as_deref().or(api_version) {
        Some(version) => builder.api_version(version),
        None => builder,
    }
}

/// The Web API client for `url` with `grant`, the retry, deadline and paging bounds of
/// the options, and the token file unless `--no-token-cache` (or `token_file` is false).
async fn client_for(
    url: &Resource,
    grant: Arc<dyn TokenProvider>,
    global: &Global,
    api_version: Option<&str>,
    token_file_allowed: bool,
) -> anyhow::Result<Client> {
    let mut builder = client_builder(
        Client::builder_shared(url.organization_url(), grant),
        global,
        api_version,
    );
    if token_file_allowed && !global.no_token_cache {
        builder = builder.token_store(token_store()?);
        crate::timing::phase("token file's key read");
    }
    let client = builder.build()?;
    crate::timing::phase("Web API client built");
    Ok(client.discover_api_version().await?)
}

impl Connection {
    /// Resolves the connection the options and environment name, with `--grant`.
    pub(crate) async fn resolve(global: &Global) -> anyhow::Result<Self> {
        Self::resolve_as(global, global.grant.as_deref()).await
    }

    /// Resolves the connection, signing in with the grant named `grant` instead of the
    /// connection's own when one is given.
    pub(crate) async fn resolve_as(global: &Global, grant: Option<&str>) -> anyhow::Result<Self> {
        if global.emulator {
            return Self::embedded_emulator(global, grant).await;
        }
        let (credential, source) = match choose(global)? {
            Chosen::ConnectionString { text, .. } => (
                ConnectionString::parse(&text)?.into_credential(),
                "connection string".to_owned(),
            ),
            Chosen::Profile { profile, .. } => (
                ConnectionString::parse(&profile.connection_string)?.into_credential(),
                format!("profile `{}`", profile.name),
            ),
            Chosen::Environment => (
                environment_credential(grant)?,
                "environment (D365_URL, AZURE_*)".to_owned(),
            ),
            Chosen::Nothing => {
                return Err(UsageError(
                    "no connection: give --connection-string (or D365_CONNECTION_STRING), --profile, or --emulator, or set D365_URL with the AZURE_* variables; `d365 demo` shows everything offline".to_owned(),
                )
                .into());
            }
        };
        Self::from_credential(credential, source, global, grant, None).await
    }

    /// The embedded emulator as its seeded confidential application, or with `--grant
    /// NAME` as its seeded user through its public client: a device code is approved at
    /// the emulator's own page (`{base}/devicelogin`) by one of its users.
    pub(crate) async fn embedded_emulator(
        global: &Global,
        grant: Option<&str>,
    ) -> anyhow::Result<Self> {
        let emulator = start_emulator(emulator_builder()).await?;
        let seeded = emulator
            .seeded()
            .context("the emulator seeds its identities")?
            .clone();
        let mut config = emulator_config(&emulator)?;
        let source = match grant {
            None => {
                config.auth_type = Some("ClientSecret".to_owned());
                config.client_id = Some(seeded.confidential_app.client_id.clone());
                config.set_secret("ClientSecret", seeded.confidential_app.secret.clone());
                format!("embedded emulator at {}", emulator.base_url())
            }
            Some(_) => {
                config.client_id = Some(seeded.public_app.client_id.clone());
                config.set_text("Username", seeded.user.upn.clone());
                config.set_secret("Password", seeded.user.password.clone());
                format!(
                    "embedded emulator at {} (public client)",
                    emulator.base_url()
                )
            }
        };
        let credential = Credential::from_config(config, &Registry::enabled())?;
        Self::from_credential(credential, source, global, grant, Some(emulator)).await
    }

    /// The client for `credential` (with the grant named `grant` instead, if given). The
    /// emulator's signing keys live as long as the process: with `emulator`, tokens do
    /// not reach the token file.
    async fn from_credential(
        credential: Credential,
        mut source: String,
        global: &Global,
        grant: Option<&str>,
        emulator: Option<Emulator>,
    ) -> anyhow::Result<Self> {
        let credential = match grant {
            Some(name) if !name.eq_ignore_ascii_case(credential.grant().name()) => {
                credential.with_grant(name)?
            }
            _ => credential,
        };
        if grant.is_some() {
            source = format!("{source}; {}", credential.grant().name());
        }
        // The emulator's users are its published test accounts: say how to sign in there.
        let note = emulator.as_ref().and_then(Emulator::seeded).map(|seeded| {
            format!(
                "The emulator's users sign in there, such as {} with the password {}.",
                seeded.user.upn,
                seeded.user.password.expose_secret()
            )
        });
        let mut options = connect_options(note);
        if credential.grant().name() == "default"
            && let Some(org) = credential.organization()
            && let Some(remembered) = crate::commands::login::remembered_sign_in(org).await
        {
            options = options.extension(remembered);
        }
        let org = credential
            .organization()
            .context("the connection names its organization")?;
        let api_version = credential.config().text("ApiVersion");
        let (client, provider) = match credential.authenticator()? {
            // Windows sign-in: each connection is signed in, there is no token to keep.
            Some(authenticator) => {
                let client = client_builder(
                    Client::builder_with_authenticator(org.organization_url(), authenticator),
                    global,
                    api_version,
                )
                .build()?
                .discover_api_version()
                .await?;
                let provider: Arc<dyn TokenProvider> = Arc::new(client.token_cache().clone());
                (client, provider)
            }
            None => {
                let provider = credential.provider(&options).await?;
                crate::timing::phase("grant built");
                let client = client_for(
                    org,
                    Arc::clone(&provider),
                    global,
                    api_version,
                    emulator.is_none(),
                )
                .await?;
                (client, provider)
            }
        };
        Ok(Self {
            provider: Arc::new(client.token_cache().clone()),
            client,
            grant: provider,
            source,
            _emulator: emulator,
        })
    }
}

/// `D365_URL` with the azure-identity variables (a secret, a certificate, a federated
/// token file, a user name and password); with `--grant NAME`, that grant reads what it
/// needs of them (the device code grant only `AZURE_CLIENT_ID`, `AZURE_TENANT_ID` and
/// `AZURE_AUTHORITY_HOST`).
fn environment_credential(grant: Option<&str>) -> anyhow::Result<Credential> {
    let settings = EnvironmentSettings::from_variables(|name| {
        if name == d365_connect::GRANT_VARIABLE {
            grant.map(str::to_owned)
        } else {
            std::env::var(name).ok()
        }
    })
    .context("D365_URL is set, but the AZURE_* variables do not describe a credential")?;
    Ok(settings.into_credential())
}

/// Every saved profile for `org` other than `current_source`, as grants to compare.
pub(crate) async fn profile_candidates(
    org: &Resource,
    current_source: &str,
) -> anyhow::Result<Vec<crate::commands::auth::Candidate>> {
    let dir = profiles::config_dir();
    let file = profiles::read_profiles(&dir)?;
    let mut candidates = Vec::new();
    for (name, info) in &file.profiles {
        let label = format!("profile `{name}`");
        let same_org = Resource::parse(&info.url).is_ok_and(|url| &url == org);
        if !same_org || current_source.starts_with(&label) {
            continue;
        }
        let Some(profile) = profiles::selected(Some(name))? else {
            continue;
        };
        let parsed = ConnectionString::parse(&profile.connection_string)?;
        candidates.push(crate::commands::auth::Candidate {
            label: format!("{label} ({})", info.auth_type),
            provider: parsed.credential().provider(&connect_options(None)).await?,
        });
    }
    Ok(candidates)
}
