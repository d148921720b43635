//! The azure-identity environment variables (`AZURE_TENANT_ID`, `AZURE_CLIENT_ID`, one
//! credential, `AZURE_AUTHORITY_HOST`) with `D365_URL`, read the way `EnvironmentCredential`
//! and then `WorkloadIdentityCredential` read them. Which variables hold a credential is
//! each grant's to say (its keys' variables); the first grant that takes what is set
//! builds the provider.

use d365_auth_core::grant::{GrantConfig, GrantRegistration};
use d365_auth_core::{Resource, Tenant};
use secrecy::SecretString;

use crate::credential::{Credential, Origin};
use crate::error::ConnectError;
use crate::keys;
use crate::registry::Registry;

/// The variable holding the organization URL.
pub const URL_VARIABLE: &str = "D365_URL";

/// The variable naming the grant to sign in with (`device-code`), when it is not the one
/// the other variables select.
pub const GRANT_VARIABLE: &str = "D365_GRANT";

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
/// `D365_GRANT` names a grant to use instead (`device-code`), which reads what it needs.
///
/// # Examples
///
/// Reading from a map instead of the process environment:
///
/// ```
/// use std::collections::HashMap;
/// use d365_connect::EnvironmentSettings;
///
/// let variables = HashMap::from([
///     ("D365_URL", "https://contoso.crm.dynamics.com"),
///     ("AZURE_TENANT_ID", "contoso.onmicrosoft.com"),
///     ("AZURE_CLIENT_ID", "00000000-0000-0000-0000-0000000000c1"),
///     ("AZURE_CLIENT_SECRET", "the secret's value"),
/// ]);
/// let settings = EnvironmentSettings::from_variables(|name| variables.get(name).map(|v| v.to_string()))?;
/// assert_eq!(settings.grant().name(), "client-credentials");
/// assert_eq!(settings.url().unwrap().as_str(), "https://contoso.crm.dynamics.com");
/// assert!(!format!("{settings:?}").contains("the secret's value"));
/// # Ok::<(), d365_connect::ConnectError>(())
/// ```
#[derive(Clone, Debug)]
pub struct EnvironmentSettings {
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
        Self::from_variables_with(lookup, &Registry::enabled())
    }

    /// As [`from_variables`](Self::from_variables), with the grants of `registry`.
    ///
    /// # Errors
    ///
    /// As for [`from_variables`](Self::from_variables).
    pub fn from_variables_with(
        lookup: impl Fn(&str) -> Option<String>,
        registry: &Registry,
    ) -> Result<Self, ConnectError> {
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
        let mut config = GrantConfig::default();
        config.organization = url;
        config.tenant = tenant;
        config.authority_host = authority_host;
        config.client_id = var("AZURE_CLIENT_ID").map(|id| id.trim().to_owned());
        for key in registry.keys() {
            let Some(value) = key.variable.and_then(var) else {
                continue;
            };
            if config.has(key.name) || keys::is_common(key.name) {
                continue;
            }
            if key.is_secret {
                config.set_secret(key.name, SecretString::from(value));
            } else {
                config.set_text(key.name, value);
            }
        }
        config.grant = var(GRANT_VARIABLE).map(|name| name.trim().to_owned());
        if let Some(version) = var("D365_API_VERSION") {
            config.set_text(keys::API_VERSION.name, version);
        }
        let grant = match &config.grant {
            Some(name) => registry.named(name)?,
            None => registry
                .select(&config)
                .ok_or_else(|| no_credential(&config, registry))?,
        };
        Ok(Self {
            credential: Credential::checked(grant, config, Origin::Environment, registry, 0)?,
        })
    }

    /// Uses `url` as the organization, whatever `D365_URL` says.
    ///
    /// # Errors
    ///
    /// [`ConnectError::InvalidUrl`] when `url` is not a valid organization URL.
    pub fn with_url(self, url: &str) -> Result<Self, ConnectError> {
        let url = Resource::parse(url).map_err(ConnectError::InvalidUrl)?;
        let grant = self.credential.grant();
        let mut config = self.credential.config().clone();
        config.organization = Some(url);
        Ok(Self {
            credential: Credential::checked(
                grant,
                config,
                Origin::Environment,
                &Registry::enabled(),
                0,
            )?,
        })
    }

    /// Signs in with the grant named `grant` (`device-code`) instead: the client id and
    /// the authority are kept.
    ///
    /// # Errors
    ///
    /// [`ConnectError::UnknownGrant`] for a name this build does not have, and the grant's
    /// own check.
    pub fn with_grant(self, grant: &str) -> Result<Self, ConnectError> {
        Ok(Self {
            credential: self.credential.with_grant(grant)?,
        })
    }

    /// The organization (`D365_URL`, or [`with_url`](Self::with_url)).
    #[must_use]
    pub fn url(&self) -> Option<&Resource> {
        self.credential.organization()
    }

    /// `AZURE_TENANT_ID`.
    #[must_use]
    pub fn tenant(&self) -> Option<&Tenant> {
        self.credential.config().tenant.as_ref()
    }

    /// `AZURE_CLIENT_ID`.
    #[must_use]
    pub fn client_id(&self) -> Option<&str> {
        self.credential.config().client_id.as_deref()
    }

    /// `AZURE_AUTHORITY_HOST`, with `https://` added when it has no scheme.
    #[must_use]
    pub fn authority_host(&self) -> Option<&str> {
        self.credential.config().authority_host.as_deref()
    }

    /// The grant the variables describe.
    #[must_use]
    pub fn grant(&self) -> &'static dyn GrantRegistration {
        self.credential.grant()
    }

    /// The credential: the grant and what it is built from. Without `AZURE_TENANT_ID`, its
    /// [`provider`](Credential::provider) discovers the authority from the organization.
    #[must_use]
    pub fn credential(&self) -> &Credential {
        &self.credential
    }

    /// The credential, without the rest.
    #[must_use]
    pub fn into_credential(self) -> Credential {
        self.credential
    }
}

/// Why no grant takes the variables: a grant whose own variables are partly set says what
/// it misses; otherwise every credential variable of the enabled grants is named.
fn no_credential(config: &GrantConfig, registry: &Registry) -> ConnectError {
    for grant in registry.iter() {
        if grant.keys().iter().any(|key| config.has(key.name))
            && let Err(error) = grant.check(config)
        {
            return Origin::Environment.error(error, registry, 0);
        }
    }
    let variables: Vec<&str> = registry
        .keys()
        .filter(|key| !keys::is_common(key.name))
        .filter_map(|key| key.variable)
        .fold(Vec::new(), |mut seen, variable| {
            if !seen.contains(&variable) {
                seen.push(variable);
            }
            seen
        });
    ConnectError::Environment {
        problem: "no azure-identity credential is set in the environment".to_owned(),
        fix: format!(
            "set AZURE_CLIENT_ID and the variables of one credential ({}), with AZURE_TENANT_ID, and D365_URL for the organization",
            variables.join(", ")
        ),
    }
}
