//! Where a command's connection comes from, in order: `--emulator`, `--connection-string`
//! (or `D365_CONNECTION_STRING`), a profile (`--profile`, `D365_PROFILE`, or the current
//! one), and the azure-identity environment variables with `D365_URL`. Tokens are kept in
//! the token file (see [`token_file`]) unless `--no-token-cache`.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use d365_auth_client_credentials::ClientCredentials;
use d365_auth_core::{FileStore, TokenProvider, TokenStore};
use d365_emulator::Emulator;
use d365_webapi::Client;

use crate::cli::Global;
use crate::exit::UsageError;
use crate::profiles;

/// A ready client and what it was built from.
pub(crate) struct Connection {
    pub(crate) client: Client,
    /// The client's token cache, as a provider (for `d365 token`).
    pub(crate) provider: Arc<dyn TokenProvider>,
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

fn token_store(global: &Global) -> Option<Arc<dyn TokenStore>> {
    (!global.no_token_cache).then(|| Arc::new(FileStore::new(token_file())) as Arc<dyn TokenStore>)
}

impl Connection {
    /// Resolves the connection the options and environment name.
    pub(crate) async fn resolve(global: &Global) -> anyhow::Result<Self> {
        if global.emulator {
            return Self::embedded_emulator().await;
        }
        if let Some(text) = &global.connection_string {
            return Self::from_connection_string(text, "connection string", global).await;
        }
        if let Some(profile) = profiles::selected(global.profile.as_deref())? {
            let source = format!("profile `{}`", profile.name);
            return Self::from_connection_string(&profile.connection_string, &source, global).await;
        }
        if let Some(url) = std::env::var("D365_URL").ok().filter(|url| !url.is_empty()) {
            return Self::from_environment(&url, global);
        }
        Err(UsageError(
            "no connection: give --connection-string (or D365_CONNECTION_STRING), --profile, or --emulator, or set D365_URL with the AZURE_* variables; `d365 demo` shows everything offline".to_owned(),
        )
        .into())
    }

    /// The embedded emulator with its seeded confidential application.
    pub(crate) async fn embedded_emulator() -> anyhow::Result<Self> {
        let emulator = Emulator::builder()
            .start()
            .await
            .context("starting the embedded emulator")?;
        let app = emulator
            .seeded()
            .context("the emulator seeds a confidential application")?
            .confidential_app
            .clone();
        let grant = ClientCredentials::builder()
            .authority_host(emulator.base_url())
            .tenant(emulator.tenant_id())
            .client_id(&app.client_id)
            .client_secret(app.secret.clone())
            .build()?;
        // The emulator's signing keys live as long as the process: its tokens must not
        // reach the token file.
        let client = Client::builder(emulator.base_url(), grant).build()?;
        Ok(Self {
            provider: Arc::new(client.token_cache().clone()),
            client,
            source: format!("embedded emulator at {}", emulator.base_url()),
            _emulator: Some(emulator),
        })
    }

    async fn from_connection_string(
        text: &str,
        source: &str,
        global: &Global,
    ) -> anyhow::Result<Self> {
        let connection = d365_webapi::ConnectionString::parse(text)?;
        let provider = connection.provider().await?;
        let mut builder = Client::builder_shared(connection.url().as_str(), provider);
        if let Some(store) = token_store(global) {
            builder = builder.token_store(store);
        }
        let client = builder.build()?;
        Ok(Self {
            provider: Arc::new(client.token_cache().clone()),
            client,
            source: source.to_owned(),
            _emulator: None,
        })
    }

    /// `D365_URL` with the azure-identity variables (a secret, a certificate, or a
    /// federated token file).
    fn from_environment(url: &str, global: &Global) -> anyhow::Result<Self> {
        let grant = ClientCredentials::builder()
            .with_environment()
            .build()
            .context(
                "D365_URL is set, but the AZURE_* variables do not describe a client credential",
            )?;
        let mut builder = Client::builder(url, grant);
        if let Some(store) = token_store(global) {
            builder = builder.token_store(store);
        }
        let client = builder.build()?;
        Ok(Self {
            provider: Arc::new(client.token_cache().clone()),
            client,
            source: "environment (D365_URL, AZURE_*)".to_owned(),
            _emulator: None,
        })
    }
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
        let parsed = d365_webapi::ConnectionString::parse(&profile.connection_string)?;
        candidates.push(crate::commands::auth::Candidate {
            label: format!("{label} ({})", info.auth_type),
            provider: parsed.provider().await?,
        });
    }
    Ok(candidates)
}
