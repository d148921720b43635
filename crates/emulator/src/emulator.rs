//! The running emulator: [`Emulator`], the handle [`EmulatorBuilder::start`] returns, with its
//! URLs, seeded identities, CA, credential files, counters, device codes and managed identity
//! host, and the way to stop it.

use std::path::Path;
use std::sync::Arc;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::builder::EmulatorBuilder;
use crate::connection::{self, ConnectionString};
use crate::credentials::WrittenCredentials;
use crate::dataverse::ledger::DataverseStats;
use crate::dataverse::{self, DvState};
use crate::device_codes::DeviceCodes;
use crate::error::EmulatorError;
use crate::managed_identity::ManagedIdentityHost;
use crate::on_premises::OnPremises;
use crate::seed::SeededIdentities;
use crate::state::AppState;
use crate::validation::TokenValidator;

/// A running emulator on 127.0.0.1. It stops on [`Emulator::shutdown`] or when dropped.
pub struct Emulator {
    // Crate-visible because `EmulatorBuilder::start` assembles it; the public surface is the
    // methods below.
    pub(crate) base_url: String,
    pub(crate) tenant_id: String,
    pub(crate) seeded: Option<SeededIdentities>,
    pub(crate) ca_pem: Option<String>,
    pub(crate) state: Arc<AppState>,
    pub(crate) dataverse: Arc<DvState>,
    pub(crate) credentials: Option<WrittenCredentials>,
    pub(crate) stop: Option<oneshot::Sender<()>>,
    pub(crate) task: Option<JoinHandle<()>>,
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

    /// The organization URL clients connect to: the base URL (tokens are issued for it), or
    /// on-premises the base URL with the organization's path (`http://127.0.0.1:PORT/Contoso`).
    pub fn organization_url(&self) -> String {
        match &self.state.on_premises {
            Some(on_premises) => format!("{}/{}", self.base_url, on_premises.organization()),
            None => self.base_url.clone(),
        }
    }

    /// The on-premises deployment this emulator plays, if any.
    pub fn on_premises(&self) -> Option<&OnPremises> {
        self.state.on_premises.as_ref()
    }

    /// On-premises, the AD FS authority: `{base_url}/adfs`.
    pub fn adfs_authority(&self) -> Option<String> {
        self.state
            .on_premises
            .as_ref()
            .map(|_| format!("{}/adfs", self.base_url))
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

    /// `{base_url}/api/data/v9.2/`: the Web API service root (on-premises
    /// `{organization_url}/api/data/v{newest version}/`).
    pub fn web_api_url(&self) -> String {
        match &self.state.on_premises {
            Some(on_premises) => format!(
                "{}/api/data/{}/",
                self.organization_url(),
                on_premises
                    .web_api_versions()
                    .last()
                    .map_or("v9.0", String::as_str)
            ),
            None => format!("{}/api/data/v9.2/", self.base_url),
        }
    }

    /// The `WWW-Authenticate` challenge the Web API answers unauthenticated requests with.
    pub fn www_authenticate(&self) -> String {
        if self.state.on_premises.is_some() {
            dataverse::adfs_challenge_value(&self.base_url)
        } else {
            dataverse::challenge_value(&self.base_url, &self.tenant_id)
        }
    }

    /// Ready connection strings for the seeded identities, then the managed identity's
    /// (empty when seeding is off).
    pub fn connection_strings(&self) -> Vec<ConnectionString> {
        let Some(seeded) = self.seeded.as_ref() else {
            return Vec::new();
        };
        if let Some(on_premises) = &self.state.on_premises {
            let mut strings = connection::on_premises_connection_strings(
                &self.organization_url(),
                on_premises,
                seeded,
            );
            if !on_premises.takes_windows_sign_in() {
                strings.retain(|string| {
                    !secrecy::ExposeSecret::expose_secret(&string.value).starts_with("AuthType=AD;")
                });
            }
            return strings;
        }
        let mut strings = connection::connection_strings(&self.base_url, seeded);
        let host = self.managed_identity();
        strings.push(connection::managed_identity_connection_string(
            &self.base_url,
            &host.app_service_endpoint(),
            &host.identity_header(),
        ));
        strings
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

    /// The Azure host the managed identities are attached to: its IMDS and App Service
    /// endpoints, the `X-IDENTITY-HEADER` secret, and fault modes for retry tests. The handle
    /// is cheap to clone and stays usable while the emulator runs.
    pub fn managed_identity(&self) -> ManagedIdentityHost {
        ManagedIdentityHost::new(Arc::clone(&self.state))
    }

    /// Registers a further Dataverse organization URL tokens are issued for while the
    /// emulator runs (as [`EmulatorBuilder::organization`] does at start): for tests whose
    /// organization is another loopback server.
    pub fn register_organization(&self, url: &str) {
        self.state.register_organizations([url]);
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
