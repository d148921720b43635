//! The azure-identity environment variables (`AZURE_TENANT_ID`, `AZURE_CLIENT_ID`, one
//! credential, `AZURE_AUTHORITY_HOST`) with `D365_URL`, read the way `EnvironmentCredential`
//! and then `WorkloadIdentityCredential` read them.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use d365_auth_client_credentials::ClientCredentials;
use d365_auth_core::{Resource, Tenant, TokenProvider};
use d365_auth_ropc::UsernamePassword;
use secrecy::SecretString;

use super::build::{ConnectOptions, require_specific_tenant, resolve_authority_parts};
use super::error::ConnectError;
use crate::client::Client;

/// The variable holding the organization URL.
pub const URL_VARIABLE: &str = "D365_URL";

/// Which credential the variables describe, in the order they are looked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EnvironmentCredentialKind {
    /// `AZURE_CLIENT_SECRET`: client credentials with a secret.
    ClientSecret,
    /// `AZURE_CLIENT_CERTIFICATE_PATH` (with `AZURE_CLIENT_CERTIFICATE_PASSWORD`,
    /// `AZURE_CLIENT_SEND_CERTIFICATE_CHAIN`): client credentials with a certificate.
    Certificate,
    /// `AZURE_USERNAME` and `AZURE_PASSWORD`: the password grant (deprecated by Microsoft:
    /// it cannot do multi-factor authentication).
    UsernamePassword,
    /// `AZURE_FEDERATED_TOKEN_FILE`: client credentials with a federated token (workload
    /// identity).
    FederatedToken,
}

#[derive(Clone)]
enum Credential {
    Secret(SecretString),
    Certificate {
        path: PathBuf,
        password: Option<SecretString>,
        send_chain: bool,
    },
    UsernamePassword {
        username: String,
        password: SecretString,
    },
    FederatedToken(PathBuf),
}

/// A connection described by environment variables: `D365_URL` (or a URL you give) and
/// the azure-identity variables.
///
/// The credential is the first complete one of: `AZURE_CLIENT_SECRET`;
/// `AZURE_CLIENT_CERTIFICATE_PATH` (PEM with key and certificate, or `.pfx`/`.p12` with
/// `AZURE_CLIENT_CERTIFICATE_PASSWORD`; the `x5c` chain is sent when
/// `AZURE_CLIENT_SEND_CERTIFICATE_CHAIN` is `true` or `1`); `AZURE_USERNAME` with
/// `AZURE_PASSWORD` (logged as deprecated); `AZURE_FEDERATED_TOKEN_FILE`. Each needs
/// `AZURE_CLIENT_ID`. `AZURE_TENANT_ID` names the tenant; without it, the tenant is
/// discovered from the organization, as for a connection string. `AZURE_AUTHORITY_HOST`
/// names another host (`https://login.microsoftonline.us`, the d365 emulator).
///
/// # Examples
///
/// Reading from a map instead of the process environment:
///
/// ```
/// use std::collections::HashMap;
/// use d365_webapi::{EnvironmentCredentialKind, EnvironmentSettings};
///
/// let variables = HashMap::from([
///     ("D365_URL", "https://contoso.crm.dynamics.com"),
///     ("AZURE_TENANT_ID", "contoso.onmicrosoft.com"),
///     ("AZURE_CLIENT_ID", "00000000-0000-0000-0000-0000000000c1"),
///     ("AZURE_CLIENT_SECRET", "the secret's value"),
/// ]);
/// let settings = EnvironmentSettings::from_variables(|name| variables.get(name).map(|v| v.to_string()))?;
/// assert_eq!(settings.credential_kind(), EnvironmentCredentialKind::ClientSecret);
/// assert_eq!(settings.url().unwrap().as_str(), "https://contoso.crm.dynamics.com");
/// assert!(!format!("{settings:?}").contains("the secret's value"));
/// # Ok::<(), d365_webapi::ConnectError>(())
/// ```
#[derive(Clone)]
pub struct EnvironmentSettings {
    url: Option<Resource>,
    tenant: Option<Tenant>,
    client_id: String,
    authority_host: Option<String>,
    credential: Credential,
}

impl EnvironmentSettings {
    /// Reads the process environment (unset and empty variables are the same).
    ///
    /// # Errors
    ///
    /// As for [`from_variables`](Self::from_variables).
    pub fn from_environment() -> Result<Self, ConnectError> {
        Self::from_variables(|name| std::env::var(name).ok())
    }

    /// Reads the variables through `lookup` (a name → its value), so they can come from a
    /// map, a file or a test. Empty values count as unset.
    ///
    /// # Errors
    ///
    /// [`ConnectError::Environment`] naming the variables that are missing or invalid
    /// (never their values).
    pub fn from_variables(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConnectError> {
        let var = |name: &str| lookup(name).filter(|value| !value.trim().is_empty());
        let url = var(URL_VARIABLE)
            .map(|url| {
                Resource::parse(&url).map_err(|error| ConnectError::Environment {
                    problem: format!("{URL_VARIABLE} is not valid: {error}"),
                    fix: format!("set {URL_VARIABLE} to the organization URL, such as https://contoso.crm.dynamics.com"),
                })
            })
            .transpose()?;
        let tenant = var("AZURE_TENANT_ID")
            .map(|value| {
                Tenant::parse(&value).map_err(|error| ConnectError::Environment {
                    problem: format!("AZURE_TENANT_ID is not valid: {error}"),
                    fix: "set AZURE_TENANT_ID to the directory (tenant) id".to_owned(),
                })
            })
            .transpose()?;
        let authority_host = var("AZURE_AUTHORITY_HOST").map(|host| {
            if host.contains("://") {
                host
            } else {
                format!("https://{host}")
            }
        });
        let credential = if let Some(secret) = var("AZURE_CLIENT_SECRET") {
            Credential::Secret(SecretString::from(secret))
        } else if let Some(path) = var("AZURE_CLIENT_CERTIFICATE_PATH") {
            Credential::Certificate {
                path: PathBuf::from(path),
                password: var("AZURE_CLIENT_CERTIFICATE_PASSWORD").map(SecretString::from),
                send_chain: var("AZURE_CLIENT_SEND_CERTIFICATE_CHAIN").is_some_and(|value| {
                    let value = value.trim();
                    value == "1" || value.eq_ignore_ascii_case("true")
                }),
            }
        } else if let (Some(username), Some(password)) =
            (var("AZURE_USERNAME"), var("AZURE_PASSWORD"))
        {
            tracing::warn!(
                "AZURE_USERNAME and AZURE_PASSWORD select the password grant, which Microsoft deprecates (no multi-factor authentication); prefer a client secret, a certificate or workload identity"
            );
            Credential::UsernamePassword {
                username,
                password: SecretString::from(password),
            }
        } else if let Some(path) = var("AZURE_FEDERATED_TOKEN_FILE") {
            Credential::FederatedToken(PathBuf::from(path))
        } else {
            let problem = match (
                var("AZURE_USERNAME").is_some(),
                var("AZURE_PASSWORD").is_some(),
            ) {
                (true, false) => {
                    "AZURE_USERNAME is set without AZURE_PASSWORD, and no other credential is"
                        .to_owned()
                }
                (false, true) => {
                    "AZURE_PASSWORD is set without AZURE_USERNAME, and no other credential is"
                        .to_owned()
                }
                _ => "no azure-identity credential is set in the environment".to_owned(),
            };
            return Err(ConnectError::Environment {
                problem,
                fix: "set AZURE_CLIENT_ID and one of AZURE_CLIENT_SECRET, AZURE_CLIENT_CERTIFICATE_PATH, AZURE_FEDERATED_TOKEN_FILE, or AZURE_USERNAME with AZURE_PASSWORD (with AZURE_TENANT_ID, and D365_URL for the organization)".to_owned(),
            });
        };
        let client_id = var("AZURE_CLIENT_ID").ok_or_else(|| ConnectError::Environment {
            problem: "AZURE_CLIENT_ID is not set".to_owned(),
            fix: "set AZURE_CLIENT_ID to the application (client) id of the app registration"
                .to_owned(),
        })?;
        Ok(Self {
            url,
            tenant,
            client_id: client_id.trim().to_owned(),
            authority_host,
            credential,
        })
    }

    /// Uses `url` as the organization, whatever `D365_URL` says.
    ///
    /// # Errors
    ///
    /// [`ConnectError::InvalidUrl`] when `url` is not a valid organization URL.
    pub fn with_url(mut self, url: &str) -> Result<Self, ConnectError> {
        self.url = Some(Resource::parse(url).map_err(ConnectError::InvalidUrl)?);
        Ok(self)
    }

    /// The organization (`D365_URL`, or [`with_url`](Self::with_url)).
    #[must_use]
    pub fn url(&self) -> Option<&Resource> {
        self.url.as_ref()
    }

    /// `AZURE_TENANT_ID`.
    #[must_use]
    pub fn tenant(&self) -> Option<&Tenant> {
        self.tenant.as_ref()
    }

    /// `AZURE_CLIENT_ID`.
    #[must_use]
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// `AZURE_AUTHORITY_HOST`, with `https://` added when it has no scheme.
    #[must_use]
    pub fn authority_host(&self) -> Option<&str> {
        self.authority_host.as_deref()
    }

    /// Which credential was found.
    #[must_use]
    pub fn credential_kind(&self) -> EnvironmentCredentialKind {
        match &self.credential {
            Credential::Secret(_) => EnvironmentCredentialKind::ClientSecret,
            Credential::Certificate { .. } => EnvironmentCredentialKind::Certificate,
            Credential::UsernamePassword { .. } => EnvironmentCredentialKind::UsernamePassword,
            Credential::FederatedToken(_) => EnvironmentCredentialKind::FederatedToken,
        }
    }

    /// The token provider the variables describe (not cached). Without
    /// `AZURE_TENANT_ID`, the authority is discovered from the organization.
    ///
    /// # Errors
    ///
    /// [`ConnectError::Environment`] when the tenant is missing and there is no URL to
    /// discover it from; [`ConnectError::Discovery`]; [`ConnectError::Config`] from the
    /// grant (a certificate file that cannot be read, ...).
    pub async fn provider(
        &self,
        options: &ConnectOptions,
    ) -> Result<Arc<dyn TokenProvider>, ConnectError> {
        if self.tenant.is_none() && self.url.is_none() {
            return Err(ConnectError::Environment {
                problem: "AZURE_TENANT_ID is not set, and without D365_URL the tenant cannot be discovered".to_owned(),
                fix: "set AZURE_TENANT_ID to the directory (tenant) id, or D365_URL to the organization URL".to_owned(),
            });
        }
        let authority = resolve_authority_parts(
            self.url.as_ref(),
            self.tenant.as_ref(),
            self.authority_host.as_deref(),
            options,
        )
        .await?;
        let http = options.http_client_option();
        let provider: Arc<dyn TokenProvider> = match &self.credential {
            Credential::UsernamePassword { username, password } => {
                let mut builder = UsernamePassword::builder()
                    .authority(authority)
                    .client_id(&self.client_id)
                    .username(username)
                    .password(password.clone());
                if let Some(http) = http {
                    builder = builder.http_client(http.clone());
                }
                Arc::new(builder.build()?)
            }
            credential => {
                let mut builder = ClientCredentials::builder()
                    .authority(require_specific_tenant(authority, "AZURE_TENANT_ID")?)
                    .client_id(&self.client_id);
                builder = match credential {
                    Credential::Secret(secret) => builder.client_secret(secret.clone()),
                    Credential::Certificate {
                        path,
                        password,
                        send_chain,
                    } => {
                        let is_archive =
                            path.extension()
                                .and_then(|ext| ext.to_str())
                                .is_some_and(|ext| {
                                    ext.eq_ignore_ascii_case("pfx")
                                        || ext.eq_ignore_ascii_case("p12")
                                });
                        let builder = if is_archive {
                            let empty = SecretString::from(String::new());
                            builder
                                .certificate_pkcs12_file(path, password.as_ref().unwrap_or(&empty))
                        } else {
                            builder.certificate_pem_files(path, path)
                        };
                        builder.send_certificate_chain(*send_chain)
                    }
                    Credential::FederatedToken(path) => builder.federated_token_file(path),
                    Credential::UsernamePassword { .. } => builder,
                };
                if let Some(http) = http {
                    builder = builder.http_client(http.clone());
                }
                Arc::new(builder.build()?)
            }
        };
        Ok(provider)
    }

    /// A [`Client`] for the organization, with the provider the variables describe.
    ///
    /// # Errors
    ///
    /// [`ConnectError::Environment`] when no URL is known (set `D365_URL` or call
    /// [`with_url`](Self::with_url)), and as for [`provider`](Self::provider).
    pub async fn client(&self, options: &ConnectOptions) -> Result<Client, ConnectError> {
        let url = self.url.as_ref().ok_or_else(|| ConnectError::Environment {
            problem: format!("{URL_VARIABLE} is not set"),
            fix: format!("set {URL_VARIABLE} to the organization URL, such as https://contoso.crm.dynamics.com"),
        })?;
        let provider = self.provider(options).await?;
        let mut builder = Client::builder_shared(url.as_str(), provider);
        if let Some(http) = options.http_client_option() {
            builder = builder.http_client(http.clone());
        }
        Ok(builder.build()?)
    }
}

impl fmt::Debug for EnvironmentSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut debug = f.debug_struct("EnvironmentSettings");
        debug
            .field("url", &self.url)
            .field("tenant", &self.tenant)
            .field("client_id", &self.client_id)
            .field("authority_host", &self.authority_host)
            .field("credential", &self.credential_kind());
        match &self.credential {
            Credential::Certificate {
                path, send_chain, ..
            } => {
                debug
                    .field("certificate_path", path)
                    .field("send_certificate_chain", send_chain);
            }
            Credential::UsernamePassword { username, .. } => {
                debug.field("username", username);
            }
            Credential::FederatedToken(path) => {
                debug.field("federated_token_file", path);
            }
            Credential::Secret(_) => {}
        }
        debug.finish_non_exhaustive()
    }
}

/// A [`Client`] from `D365_URL` and the azure-identity variables of the process
/// environment.
///
/// # Errors
///
/// As for [`EnvironmentSettings::from_environment`] and [`EnvironmentSettings::client`].
///
/// # Examples
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// // D365_URL=https://contoso.crm.dynamics.com AZURE_TENANT_ID=… AZURE_CLIENT_ID=… AZURE_CLIENT_SECRET=…
/// let client = d365_webapi::connect_from_environment().await?;
/// println!("{}", client.who_am_i().await?.user_id);
/// # Ok(()) }
/// ```
pub async fn connect_from_environment() -> Result<Client, ConnectError> {
    EnvironmentSettings::from_environment()?
        .client(&ConnectOptions::new())
        .await
}
