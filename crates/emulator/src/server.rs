//! Starting and stopping the emulator: the builder, the bound listener, the optional TLS layer
//! and the accept loop that serves the router over HTTP/1.1.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use secrecy::ExposeSecret as _;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::{JoinHandle, JoinSet};
use tokio_rustls::TlsAcceptor;

use crate::config::EmulatorConfig;
use crate::connection::{self, ConnectionString};
use crate::dataverse::faults::{self, FaultConfig};
use crate::dataverse::ledger::DataverseStats;
use crate::dataverse::limits::ServiceLimits;
use crate::dataverse::schema::{SchemaConfig, TableConfig};
use crate::dataverse::{self, DvSettings, DvState};
use crate::device_codes::DeviceCodes;
use crate::directory::{App, Directory, User};
use crate::error::EmulatorError;
use crate::keys::{self, TlsMaterial};
use crate::seed::{self, SeededIdentities};
use crate::state::{
    AppState, DEFAULT_DEVICE_CODE_INTERVAL_SECS, DEFAULT_DEVICE_CODE_LIFETIME_SECS,
    DEFAULT_TOKEN_LIFETIME_SECS, Settings,
};
use crate::validation::TokenValidator;
use crate::{admin, identity};

/// Configures and starts an [`Emulator`].
#[derive(Debug, Clone, Default)]
#[must_use]
pub struct EmulatorBuilder {
    port: u16,
    https: bool,
    token_lifetime: Option<Duration>,
    device_code_interval: Option<Duration>,
    device_code_lifetime: Option<Duration>,
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

    /// Binds the port and starts serving in the background of the current Tokio runtime.
    pub async fn start(self) -> Result<Emulator, EmulatorError> {
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
            },
        ));
        let acceptor = tls.as_ref().map(tls_acceptor).transpose()?;

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
        let users = if seeded.is_some() {
            seed::system_users()
        } else {
            Vec::new()
        };
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
            .map(|dir| write_credentials(dir, seeded.as_ref(), tls.as_ref()))
            .transpose()?;

        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(serve(
            listener,
            router(Arc::clone(&state), Arc::clone(&dv)),
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
    if !config.apps.is_empty() || !config.users.is_empty() {
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
    }
    if directory.tenants.is_empty() {
        return Err(EmulatorError::InvalidConfig(
            "no tenant: keep seed_defaults or add [[tenants]]".into(),
        ));
    }
    Ok((directory, seeded))
}

/// The whole HTTP surface: the identity endpoints and the Web API behind fault injection,
/// and the admin API beside them (never faulted).
fn router(state: Arc<AppState>, dv: Arc<DvState>) -> Router {
    let public = Router::new()
        .merge(identity::routes())
        .fallback(identity::user_realm_fallback)
        .with_state(Arc::clone(&state))
        .merge(dataverse::routes(Arc::clone(&dv)))
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&dv),
            faults::layer,
        ));
    let admin = admin::routes()
        .with_state(state)
        .merge(dataverse::admin::routes().with_state(dv))
        .layer(axum::middleware::from_fn(admin::loopback_only));
    Router::new().nest("/_emulator", admin).merge(public)
}

fn tls_acceptor(material: &TlsMaterial) -> Result<TlsAcceptor, EmulatorError> {
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
    let crypto = |err: rustls::Error| EmulatorError::Crypto(err.to_string());
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(crypto)?
        .with_no_client_auth()
        .with_single_cert(
            vec![
                CertificateDer::from(material.leaf_der.clone()),
                CertificateDer::from(material.ca_der.clone()),
            ],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
                material.leaf_key_pkcs8_der.clone(),
            )),
        )
        .map_err(crypto)?;
    // HTTP/1.1 only: the server speaks nothing else, so never let a client pick h2.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

async fn serve(
    listener: TcpListener,
    router: Router,
    tls: Option<TlsAcceptor>,
    mut stopped: oneshot::Receiver<()>,
) {
    // Dropping the set on the way out aborts open connections: shutdown is immediate.
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            _ = &mut stopped => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(accepted) => accepted,
                    Err(err) => {
                        tracing::warn!(%err, "accept failed");
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let service = TowerToHyperService::new(router.clone());
                let tls = tls.clone();
                connections.spawn(async move {
                    let http = hyper::server::conn::http1::Builder::new();
                    let result = match tls {
                        Some(acceptor) => match acceptor.accept(stream).await {
                            Ok(stream) => http.serve_connection(TokioIo::new(stream), service).await,
                            Err(err) => {
                                tracing::debug!(%peer, %err, "TLS handshake failed");
                                return;
                            }
                        },
                        None => http.serve_connection(TokioIo::new(stream), service).await,
                    };
                    if let Err(err) = result {
                        tracing::debug!(%peer, %err, "connection ended with an error");
                    }
                });
            }
        }
    }
    tracing::info!("d365 emulator stopped");
}

/// Where [`EmulatorBuilder`] writes the credential files.
#[derive(Debug, Clone)]
enum CredentialsDir {
    /// A directory the caller named.
    Named(PathBuf),
    /// A new private directory of this emulator's own.
    Private,
}

/// The credential files an emulator wrote, removed when it stops (with the directory, when
/// it was the emulator's own).
#[derive(Debug)]
struct WrittenCredentials {
    dir: PathBuf,
    files: Vec<PathBuf>,
    /// Removes the private directory when dropped.
    _private: Option<tempfile::TempDir>,
}

impl Drop for WrittenCredentials {
    fn drop(&mut self) {
        for file in &self.files {
            let _ = std::fs::remove_file(file);
        }
    }
}

/// Replaces `path` with `contents` through a new file beside it, created exclusively with
/// `mode` (never opening an existing file or a symlink), synced, and renamed over `path`.
fn write_file(path: &Path, contents: &str, mode: u32) -> Result<(), EmulatorError> {
    use std::io::Write as _;
    let fail = |source| EmulatorError::WriteCredentials {
        path: path.to_owned(),
        source,
    };
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    let mut builder = tempfile::Builder::new();
    builder.prefix(".d365-emulator-").suffix(".tmp");
    #[cfg(unix)]
    builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(mode));
    #[cfg(not(unix))]
    let _ = mode;
    let mut file = builder.tempfile_in(dir).map_err(fail)?;
    file.write_all(contents.as_bytes()).map_err(fail)?;
    file.as_file().sync_all().map_err(fail)?;
    file.persist(path).map_err(|error| fail(error.error))?;
    Ok(())
}

/// Creates `dir` with mode 0700 when missing.
fn create_private_dir(dir: &Path) -> Result<(), EmulatorError> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder
        .create(dir)
        .map_err(|source| EmulatorError::WriteCredentials {
            path: dir.to_owned(),
            source,
        })
}

fn write_credentials(
    target: &CredentialsDir,
    seeded: Option<&SeededIdentities>,
    tls: Option<&TlsMaterial>,
) -> Result<WrittenCredentials, EmulatorError> {
    let (dir, private) = match target {
        CredentialsDir::Named(dir) => {
            create_private_dir(dir)?;
            (dir.clone(), None)
        }
        CredentialsDir::Private => {
            let mut builder = tempfile::Builder::new();
            builder.prefix("d365-emulator-");
            #[cfg(unix)]
            builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o700));
            let temporary =
                builder
                    .tempdir()
                    .map_err(|source| EmulatorError::WriteCredentials {
                        path: std::env::temp_dir(),
                        source,
                    })?;
            (temporary.path().to_owned(), Some(temporary))
        }
    };
    let mut written = WrittenCredentials {
        dir,
        files: Vec::new(),
        _private: private,
    };
    let mut write = |name: &str, contents: &str, mode: u32| {
        let path = written.dir.join(name);
        write_file(&path, contents, mode)?;
        written.files.push(path);
        Ok::<_, EmulatorError>(())
    };
    if let Some(seeded) = seeded {
        let app = &seeded.certificate_app;
        write("certificate-app.crt.pem", &app.certificate_pem, 0o644)?;
        write(
            "certificate-app.key.pem",
            app.private_key_pem.expose_secret(),
            0o600,
        )?;
    }
    if let Some(tls) = tls {
        write("ca.crt.pem", &tls.ca_pem, 0o644)?;
    }
    Ok(written)
}

/// A running emulator on 127.0.0.1. It stops on [`Emulator::shutdown`] or when dropped.
pub struct Emulator {
    base_url: String,
    tenant_id: String,
    seeded: Option<SeededIdentities>,
    ca_pem: Option<String>,
    state: Arc<AppState>,
    dataverse: Arc<DvState>,
    credentials: Option<WrittenCredentials>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Emulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Emulator")
            .field("base_url", &self.base_url)
            .field("tenant_id", &self.tenant_id)
            .field("seeded", &self.seeded)
            .field("https", &self.ca_pem.is_some())
            .finish_non_exhaustive()
    }
}

impl Emulator {
    /// A builder with the defaults: any free port, plain http, seeded identities, 3599 s tokens.
    pub fn builder() -> EmulatorBuilder {
        EmulatorBuilder::default()
    }

    /// `http://127.0.0.1:PORT` (or `https://`), without a trailing slash.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The default tenant's GUID (the seeded tenant, or the first configured one).
    pub fn tenant_id(&self) -> &str {
        &self.tenant_id
    }

    /// `{base_url}/{tenant_id}`: the authority to give MSAL-style clients.
    pub fn authority(&self) -> String {
        format!("{}/{}", self.base_url, self.tenant_id)
    }

    /// The default tenant's v2 token endpoint.
    pub fn token_endpoint_v2(&self) -> String {
        format!("{}/oauth2/v2.0/token", self.authority())
    }

    /// The default tenant's v1 token endpoint.
    pub fn token_endpoint_v1(&self) -> String {
        format!("{}/oauth2/token", self.authority())
    }

    /// The seeded identities, unless seeding was turned off in the configuration.
    pub fn seeded(&self) -> Option<&SeededIdentities> {
        self.seeded.as_ref()
    }

    /// With https: the PEM of the CA that signed the server certificate, for clients to trust.
    pub fn ca_certificate_pem(&self) -> Option<&str> {
        self.ca_pem.as_deref()
    }

    /// The directory the credential files were written to
    /// ([`EmulatorBuilder::write_credentials_to`] or
    /// [`EmulatorBuilder::write_credentials_to_private_dir`]), if any: it holds
    /// `certificate-app.crt.pem`, `certificate-app.key.pem` and, with https, `ca.crt.pem`
    /// until the emulator stops.
    pub fn credentials_dir(&self) -> Option<&Path> {
        self.credentials
            .as_ref()
            .map(|written| written.dir.as_path())
    }

    /// The organization URL clients connect to: the base URL (tokens are issued for it).
    pub fn organization_url(&self) -> &str {
        &self.base_url
    }

    /// `{base_url}/api/data/v9.2/`: the Web API service root.
    pub fn web_api_url(&self) -> String {
        format!("{}/api/data/v9.2/", self.base_url)
    }

    /// The `WWW-Authenticate` challenge the Web API answers unauthenticated requests with.
    pub fn www_authenticate(&self) -> String {
        dataverse::challenge_value(&self.base_url, &self.tenant_id)
    }

    /// Ready connection strings for the seeded identities (empty when seeding is off).
    pub fn connection_strings(&self) -> Vec<ConnectionString> {
        self.seeded
            .as_ref()
            .map(|seeded| connection::connection_strings(&self.base_url, seeded))
            .unwrap_or_default()
    }

    /// Inserts `count` generated accounts (off the async runtime) and returns how many
    /// generated accounts exist now.
    pub async fn generate_accounts(&self, count: u64) -> Result<u64, EmulatorError> {
        self.dataverse
            .with_store(move |db, schema| dataverse::generate_accounts(db, schema, count))
            .await
            .map_err(|err| EmulatorError::Store(err.to_string()))?
            .map_err(|err| EmulatorError::Store(err.to_string()))
    }

    /// Counters of the Web API half since the start: `429`s sent, `503`s and cuts injected,
    /// and retries checked against the `Retry-After` they were given (by
    /// `x-ms-client-request-id`), with how many came early. Also at
    /// `GET /_emulator/dataverse/stats`.
    pub fn dataverse_stats(&self) -> DataverseStats {
        self.dataverse.stats()
    }

    /// The device codes clients asked for: approve or decline them as a person at the
    /// verification page (`{base_url}/devicelogin`) would. The handle is cheap to clone and
    /// stays usable while the emulator runs.
    pub fn device_codes(&self) -> DeviceCodes {
        DeviceCodes::new(Arc::clone(&self.state))
    }

    /// A validator for the access tokens this emulator issues.
    pub fn token_validator(&self) -> TokenValidator {
        TokenValidator::new(Arc::clone(&self.state.signing), self.base_url.clone())
    }

    /// Stops accepting requests, closes open connections and waits for the server task.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}
