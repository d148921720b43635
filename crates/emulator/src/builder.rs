//! Configuring and starting an emulator: [`EmulatorBuilder`] collects the options, and
//! [`EmulatorBuilder::start`] reads the configuration, builds the directory and the Dataverse
//! store, binds the port, writes the credential files and hands the router to the server.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::oneshot;

use crate::config::EmulatorConfig;
use crate::credentials::{self, CredentialsDir};
use crate::dataverse::faults::FaultConfig;
use crate::dataverse::limits::ServiceLimits;
use crate::dataverse::org::{NewUser, ids as org_ids};
use crate::dataverse::schema::{SchemaConfig, TableConfig};
use crate::dataverse::{self, DvSettings, DvState};
use crate::directory::{App, Directory, ManagedIdentity, User};
use crate::emulator::Emulator;
use crate::error::EmulatorError;
use crate::keys;
use crate::on_premises::OnPremises;
use crate::seed::{self, SeededIdentities};
use crate::server;
use crate::state::{
    AppState, DEFAULT_AUTHORIZATION_CODE_LIFETIME_SECS, DEFAULT_DEVICE_CODE_INTERVAL_SECS,
    DEFAULT_DEVICE_CODE_LIFETIME_SECS, DEFAULT_TOKEN_LIFETIME_SECS, Settings,
};
use crate::tls;

/// Configures and starts an [`Emulator`].
#[derive(Debug, Clone, Default)]
#[must_use]
pub struct EmulatorBuilder {
    port: u16,
    https: bool,
    token_lifetime: Option<Duration>,
    device_code_interval: Option<Duration>,
    device_code_lifetime: Option<Duration>,
    authorization_code_lifetime: Option<Duration>,
    config: Option<EmulatorConfig>,
    config_file: Option<PathBuf>,
    credentials_dir: Option<CredentialsDir>,
    data_file: Option<PathBuf>,
    schema_file: Option<PathBuf>,
    tables: Vec<TableConfig>,
    limits: Option<ServiceLimits>,
    caller_limits: std::collections::HashMap<String, ServiceLimits>,
    dop_hint: Option<u32>,
    faults: Option<FaultConfig>,
    generated_accounts: u64,
    on_premises: Option<OnPremises>,
    organizations: Vec<String>,
}

impl EmulatorBuilder {
    /// Listen on this port of 127.0.0.1 (default 0: a port the OS picks).
    pub fn port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// Serve https with a generated certificate (see [`Emulator::ca_certificate_pem`]).
    pub fn https(mut self, enabled: bool) -> Self {
        self.https = enabled;
        self
    }

    /// Lifetime of issued access tokens (default 3599 s; at least one second).
    pub fn token_lifetime(mut self, lifetime: Duration) -> Self {
        self.token_lifetime = Some(lifetime);
        self
    }

    /// The polling `interval` device codes are issued with (default 5 s, as Entra; whole
    /// seconds, at least one). Tests use one second.
    pub fn device_code_interval(mut self, interval: Duration) -> Self {
        self.device_code_interval = Some(interval);
        self
    }

    /// How long device codes live (`expires_in`; default 900 s, as Entra; at least one
    /// second).
    pub fn device_code_lifetime(mut self, lifetime: Duration) -> Self {
        self.device_code_lifetime = Some(lifetime);
        self
    }

    /// How long authorization codes of the browser sign-in live (default 600 s, "about ten
    /// minutes" as Entra; at least one second). Past it, redemption answers AADSTS70008.
    pub fn authorization_code_lifetime(mut self, lifetime: Duration) -> Self {
        self.authorization_code_lifetime = Some(lifetime);
        self
    }

    /// Use this configuration (instead of the default: seeded identities only).
    pub fn config(mut self, config: EmulatorConfig) -> Self {
        self.config = Some(config);
        self
    }

    /// Read the configuration from a TOML file when starting; wins over [`Self::config`].
    pub fn config_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.config_file = Some(path.into());
        self
    }

    /// Write the seeded certificate app's certificate and key (`certificate-app.crt.pem`,
    /// `certificate-app.key.pem`, mode 0600) and, with https, the CA (`ca.crt.pem`) into
    /// this directory (created with mode 0700 when missing). Each file replaces what was
    /// there through a new file and a rename, never writing through a symlink; the files
    /// are removed when the emulator stops.
    pub fn write_credentials_to(mut self, dir: impl Into<PathBuf>) -> Self {
        self.credentials_dir = Some(CredentialsDir::Named(dir.into()));
        self
    }

    /// Write the same files as [`Self::write_credentials_to`] into a new private directory
    /// of this emulator's own (mode 0700, under the system's temporary directory, see
    /// [`Emulator::credentials_dir`]), removed with everything in it when the emulator
    /// stops. Two emulators side by side never share or overwrite each other's files.
    pub fn write_credentials_to_private_dir(mut self) -> Self {
        self.credentials_dir = Some(CredentialsDir::Private);
        self
    }

    /// Keep the Dataverse data in this SQLite file (created when absent), so it survives a
    /// restart. Default: in memory.
    pub fn data_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.data_file = Some(path.into());
        self
    }

    /// Serve the tables of this schema file (TOML, see [`SchemaConfig`]) beside the built-in
    /// ones; read at `start`.
    pub fn schema_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.schema_file = Some(path.into());
        self
    }

    /// Serve these tables beside the built-in ones.
    pub fn schema(mut self, schema: SchemaConfig) -> Self {
        self.tables.extend(schema.tables);
        self
    }

    /// Service protection limits of every caller (default: Dataverse's).
    pub fn service_limits(mut self, limits: ServiceLimits) -> Self {
        self.limits = Some(limits);
        self
    }

    /// Service protection limits of one caller, named by client id (apps), UPN or object id
    /// (users).
    pub fn caller_limits(mut self, caller: impl Into<String>, limits: ServiceLimits) -> Self {
        self.caller_limits.insert(caller.into(), limits);
        self
    }

    /// The `x-ms-dop-hint` every Web API response carries (default 4).
    pub fn dop_hint(mut self, hint: u32) -> Self {
        self.dop_hint = Some(hint);
        self
    }

    /// Inject faults into every request outside `/_emulator/`.
    pub fn faults(mut self, faults: FaultConfig) -> Self {
        self.faults = Some(faults);
        self
    }

    /// Insert this many generated accounts at start (load tests and benchmarks).
    pub fn generated_accounts(mut self, count: u64) -> Self {
        self.generated_accounts = count;
        self
    }

    /// Plays an on-premises Dynamics 365 server: the organization under
    /// `{base}/{organization}/api/data/v{version}/` at the server version's Web API versions,
    /// AD FS at `{base}/adfs/` as the identity provider (its discovery document, keys and
    /// token endpoint; v1 tokens with AD FS's claims; RS256 client assertions only; `MSIS`
    /// errors), and the on-premises `401` challenge naming it. Entra ID's endpoints stay
    /// served; Dataverse accepts only AD FS's tokens.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), d365_emulator::EmulatorError> {
    /// use d365_emulator::{Emulator, OnPremises};
    ///
    /// let emulator = Emulator::builder()
    ///     .on_premises(OnPremises::new("Contoso").server_version("8.2.2.112"))
    ///     .start()
    ///     .await?;
    /// assert!(emulator.organization_url().ends_with("/Contoso"));
    /// # Ok(()) }
    /// ```
    pub fn on_premises(mut self, on_premises: OnPremises) -> Self {
        self.on_premises = Some(on_premises);
        self
    }

    /// Register a further Dataverse organization URL tokens are issued for (such as
    /// `https://fabrikam.crm.dynamics.com`); the emulator's own is always registered. Its Web
    /// API is not served: tokens for it are refused by the emulator's own, with 401.
    pub fn organization(mut self, url: impl Into<String>) -> Self {
        self.organizations.push(url.into());
        self
    }

    /// Binds the port and starts serving in the background of the current Tokio runtime.
    pub async fn start(self) -> Result<Emulator, EmulatorError> {
        if let Some(on_premises) = &self.on_premises {
            on_premises.check().map_err(EmulatorError::InvalidConfig)?;
        }
        let config = match &self.config_file {
            Some(path) => EmulatorConfig::from_file(path)?,
            None => self.config.clone().unwrap_or_default(),
        };
        let lifetime = self
            .token_lifetime
            .map(|d| d.as_secs())
            .or(config.token_lifetime_secs)
            .unwrap_or(DEFAULT_TOKEN_LIFETIME_SECS)
            .max(1);
        let device_code_interval = self
            .device_code_interval
            .map(|d| d.as_secs())
            .or(config.device_code_interval_secs)
            .unwrap_or(DEFAULT_DEVICE_CODE_INTERVAL_SECS)
            .max(1);
        let device_code_lifetime = self
            .device_code_lifetime
            .map(|d| d.as_secs())
            .or(config.device_code_lifetime_secs)
            .unwrap_or(DEFAULT_DEVICE_CODE_LIFETIME_SECS)
            .max(1);
        let authorization_code_lifetime = self
            .authorization_code_lifetime
            .map(|d| d.as_secs())
            .or(config.authorization_code_lifetime_secs)
            .unwrap_or(DEFAULT_AUTHORIZATION_CODE_LIFETIME_SECS)
            .max(1);
        let signing = keys::signing_key()?;
        let (directory, seeded) = build_directory(&config)?;
        let tls = if self.https {
            Some(keys::tls_material()?)
        } else {
            None
        };

        let listener = TcpListener::bind(("127.0.0.1", self.port))
            .await
            .map_err(|source| EmulatorError::Bind {
                port: self.port,
                source,
            })?;
        let address = listener
            .local_addr()
            .map_err(|source| EmulatorError::Bind {
                port: self.port,
                source,
            })?;
        let scheme = if tls.is_some() { "https" } else { "http" };
        let base_url = format!("{scheme}://{address}");
        let tenant_id = directory
            .tenants
            .first()
            .map(|t| t.id.clone())
            .unwrap_or_default();
        let state = Arc::new(AppState::new(
            base_url.clone(),
            Arc::clone(&signing),
            directory,
            Settings {
                token_lifetime_secs: lifetime,
                device_code_interval_secs: device_code_interval,
                device_code_lifetime_secs: device_code_lifetime,
                authorization_code_lifetime_secs: authorization_code_lifetime,
            },
            self.on_premises.clone(),
        ));
        state.register_organizations(
            std::iter::once(base_url.as_str())
                .chain(seeded.is_some().then_some(seed::ids::ORGANIZATION_URL))
                .chain(config.organizations.iter().map(String::as_str))
                .chain(self.organizations.iter().map(String::as_str)),
        );
        let acceptor = tls.as_ref().map(tls::acceptor).transpose()?;

        let mut tables = config.tables.clone();
        if let Some(path) = &self.schema_file {
            tables.extend(SchemaConfig::from_file(path)?.tables);
        }
        tables.extend(self.tables.iter().cloned());
        let settings = DvSettings {
            data_file: self.data_file.clone(),
            tables,
            limits: self.limits.unwrap_or_default(),
            caller_limits: self.caller_limits.clone(),
            dop_hint: self
                .dop_hint
                .or(config.dop_hint)
                .unwrap_or(dataverse::DEFAULT_DOP_HINT),
            faults: self.faults.clone(),
            generated_accounts: self.generated_accounts,
            organization_name: state
                .directory()
                .tenants
                .first()
                .map_or_else(|| "Contoso".to_owned(), |t| t.display_name.clone()),
        };
        let mut users = if seeded.is_some() {
            seed::system_users()
        } else {
            Vec::new()
        };
        users.extend(identity_users(&state.directory()));
        let dv = {
            let state = Arc::clone(&state);
            let tenant_id = tenant_id.clone();
            // Opening the store (and generating rows) is blocking work.
            tokio::task::spawn_blocking(move || DvState::open(state, tenant_id, &settings, &users))
                .await
                .map_err(|err| EmulatorError::Store(err.to_string()))??
        };
        let dv = Arc::new(dv);

        let credentials = self
            .credentials_dir
            .as_ref()
            .map(|dir| credentials::write_credentials(dir, seeded.as_ref(), tls.as_ref()))
            .transpose()?;

        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(server::serve(
            listener,
            server::router(Arc::clone(&state), Arc::clone(&dv)),
            acceptor,
            stopped,
        ));
        tracing::info!(%base_url, %tenant_id, "d365 emulator listening");
        Ok(Emulator {
            base_url,
            tenant_id,
            seeded,
            ca_pem: tls.map(|t| t.ca_pem),
            state,
            dataverse: dv,
            credentials,
            stop: Some(stop),
            task: Some(task),
        })
    }
}

/// The application users (System Administrator) of the organization tenant's managed
/// identities that asked for one.
fn identity_users(directory: &Directory) -> Vec<NewUser> {
    let Some(tenant) = directory.tenants.first() else {
        return Vec::new();
    };
    tenant
        .managed_identities
        .iter()
        .filter_map(|identity| {
            identity
                .application_user_id
                .as_ref()
                .map(|id| identity_user(identity, id))
        })
        .collect()
}

/// The application user of a managed identity.
pub(crate) fn identity_user(identity: &ManagedIdentity, system_user_id: &str) -> NewUser {
    NewUser {
        id: system_user_id.to_owned(),
        full_name: format!("# {}", identity.display_name),
        application_id: Some(identity.client_id.clone()),
        object_id: None,
        domain_name: None,
        roles: vec![org_ids::SYSTEM_ADMINISTRATOR.to_owned()],
    }
}

fn invalid(err: crate::directory::DirectoryError) -> EmulatorError {
    EmulatorError::InvalidConfig(err.to_string())
}

/// The seeded tenant (unless turned off), then the configured tenants, then the top-level
/// apps and users in the first tenant.
fn build_directory(
    config: &EmulatorConfig,
) -> Result<(Directory, Option<SeededIdentities>), EmulatorError> {
    let mut directory = Directory::default();
    let seeded = if config.seed_defaults {
        let (tenant, identities) = seed::seed(&keys::client_certificate()?)?;
        directory.tenants.push(tenant);
        Some(identities)
    } else {
        None
    };
    for tenant in &config.tenants {
        directory.apply_tenant(tenant).map_err(invalid)?;
    }
    if !config.apps.is_empty() || !config.users.is_empty() || !config.managed_identities.is_empty()
    {
        let tenant = directory.tenants.first_mut().ok_or_else(|| {
            EmulatorError::InvalidConfig(
                "top-level apps and users need a tenant: keep seed_defaults or add [[tenants]]"
                    .into(),
            )
        })?;
        for app in &config.apps {
            tenant
                .add_app(App::from_config(app).map_err(invalid)?)
                .map_err(invalid)?;
        }
        for user in &config.users {
            tenant
                .add_user(User::from_config(user).map_err(invalid)?)
                .map_err(invalid)?;
        }
        for identity in &config.managed_identities {
            tenant
                .add_managed_identity(ManagedIdentity::from_config(identity).map_err(invalid)?)
                .map_err(invalid)?;
        }
    }
    // Only the organization's tenant (the first) has Dataverse users.
    for tenant in directory.tenants.iter_mut().skip(1) {
        for identity in &mut tenant.managed_identities {
            identity.application_user_id = None;
        }
    }
    if directory.tenants.is_empty() {
        return Err(EmulatorError::InvalidConfig(
            "no tenant: keep seed_defaults or add [[tenants]]".into(),
        ));
    }
    Ok((directory, seeded))
}
