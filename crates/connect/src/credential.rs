//! [`Credential`]: the one description every source of configuration parses into — the
//! grant that builds the provider and the [`GrantConfig`] it reads — and the one function
//! that turns it into a token provider, [`Credential::provider`].

use std::fmt;
use std::sync::Arc;

use d365_auth_core::grant::{GrantConfig, GrantRegistration};
use d365_auth_core::{Authority, ConfigError, Resource, TokenProvider};

use crate::build::{ConnectOptions, resolve_authority};
use crate::error::ConnectError;
use crate::external;
use crate::keys;
use crate::registry::Registry;

/// Where a credential was read from, so a grant's complaint names the setting as the user
/// wrote it: a connection-string key, or an environment variable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Origin {
    /// A connection string, a saved profile, command-line flags: key names.
    Settings,
    /// The azure-identity environment variables: variable names.
    Environment,
}

/// One credential for one organization, whatever it was read from: the grant (found in a
/// [`Registry`]) and the description it is built from. [`ConnectionString`](crate::ConnectionString)
/// and [`EnvironmentSettings`](crate::EnvironmentSettings) each hold one; build one
/// yourself from a [`GrantConfig`] with [`from_config`](Self::from_config).
///
/// `Debug` never shows a secret.
///
/// # Examples
///
/// ```
/// use d365_auth_core::grant::GrantConfig;
/// use d365_auth_core::Resource;
/// use d365_connect::{Credential, Registry};
///
/// let mut config = GrantConfig::default();
/// config.organization = Some(Resource::parse("https://contoso.crm.dynamics.com")?);
/// config.client_id = Some("00000000-0000-0000-0000-0000000000c1".into());
/// config.set_secret("ClientSecret", "the secret's value".into());
/// let credential = Credential::from_config(config, &Registry::enabled())?;
/// assert_eq!(credential.grant().name(), "client-credentials");
/// assert!(!format!("{credential:?}").contains("the secret's value"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Credential {
    grant: &'static dyn GrantRegistration,
    config: GrantConfig,
    origin: Origin,
}

impl Credential {
    /// The grant `config` names ([`GrantConfig::grant`]), or else the first of `registry`
    /// that takes it, after that grant's own check.
    ///
    /// # Errors
    ///
    /// [`ConnectError::UnknownGrant`] for a name `registry` does not have;
    /// [`ConnectError::Config`] when no grant takes `config`, or from the grant's check.
    pub fn from_config(config: GrantConfig, registry: &Registry) -> Result<Self, ConnectError> {
        let grant = match &config.grant {
            Some(name) => registry.named(name)?,
            None => registry.select(&config).ok_or_else(|| {
                ConnectError::Config(ConfigError::Invalid {
                    setting: "grant",
                    problem: format!(
                        "no grant of this build takes the configuration ({} are enabled)",
                        registry.names().collect::<Vec<_>>().join(", ")
                    ),
                    fix: "name one (GrantConfig::grant), or enable the grant's cargo feature of d365-connect".to_owned(),
                })
            })?,
        };
        Self::checked(grant, config, Origin::Settings, registry, 0)
    }

    /// `grant` with `config`, once the grant has checked it; `unrecognised` counts the keys
    /// of the source nobody knows, for the error.
    pub(crate) fn checked(
        grant: &'static dyn GrantRegistration,
        config: GrantConfig,
        origin: Origin,
        registry: &Registry,
        unrecognised: usize,
    ) -> Result<Self, ConnectError> {
        grant
            .check(&config)
            .map_err(|error| origin.error(error, registry, unrecognised))?;
        Ok(Self {
            grant,
            config,
            origin,
        })
    }

    /// This credential with the grant named `grant` (`device-code`) instead: the
    /// organization, the client id, the authority and the settings that grant reads are
    /// kept. What `d365 --grant NAME` does.
    ///
    /// # Errors
    ///
    /// [`ConnectError::UnknownGrant`] for a name this build does not have, and the grant's
    /// own check.
    pub fn with_grant(self, grant: &str) -> Result<Self, ConnectError> {
        let registry = Registry::enabled();
        let chosen = registry.named(grant)?;
        let mut config = self.config;
        config.grant = Some(chosen.name().to_owned());
        Self::checked(chosen, config, self.origin, &registry, 0)
    }

    /// The grant that builds the provider.
    #[must_use]
    pub fn grant(&self) -> &'static dyn GrantRegistration {
        self.grant
    }

    /// The description the grant is built from (secrets stay `SecretString`s).
    #[must_use]
    pub fn config(&self) -> &GrantConfig {
        &self.config
    }

    /// The organization the tokens are for, when known.
    #[must_use]
    pub fn organization(&self) -> Option<&Resource> {
        self.config.organization.as_ref()
    }

    /// The authority tokens come from: `Authority`; or the tenant on the authority host,
    /// or on the cloud of the organization's host (`*.microsoftdynamics.us` and
    /// `*.appsplatform.us` → US Government, `*.dynamics.cn` → China, else public); or
    /// discovered from the organization's `401` challenge (its host and tenant, with the
    /// host replaced by the authority host if given).
    ///
    /// # Errors
    ///
    /// [`ConnectError::Discovery`] when discovery is needed and fails;
    /// [`ConnectError::MissingKey`] when there is neither a tenant nor an organization.
    pub async fn resolve_authority(
        &self,
        options: &ConnectOptions,
    ) -> Result<Authority, ConnectError> {
        resolve_authority(&self.config, self.origin, options).await
    }

    /// The token provider, built by the grant (not cached: wrap it in a `TokenCache`, as
    /// the Web API client does). The authority is resolved first, for a grant that needs
    /// one (see [`resolve_authority`](Self::resolve_authority)).
    ///
    /// # Errors
    ///
    /// [`ConnectError::Discovery`]; the grant's configuration errors (a certificate file
    /// that cannot be read or does not match its thumbprint, ...);
    /// [`ConnectError::TokenCallbackRequired`].
    pub async fn provider(
        &self,
        options: &ConnectOptions,
    ) -> Result<Arc<dyn TokenProvider>, ConnectError> {
        let mut config = self.config.clone();
        if self.grant.needs_authority() && config.authority.is_none() {
            config.authority = Some(self.resolve_authority(options).await?);
        }
        if config.http.is_none() {
            config.http.clone_from(&options.http);
        }
        config.extensions.extend(options.extensions.clone());
        external::add_callback(&mut config, options);
        self.grant.build(&config).map_err(|error| match error {
            ConfigError::Missing { setting, .. } if setting == external::CALLBACK_SETTING => {
                ConnectError::TokenCallbackRequired
            }
            other => self.origin.error(other, &Registry::enabled(), 0),
        })
    }
}

impl Credential {
    /// For a grant that proves itself on the connection (Windows sign-in, `AuthType=AD`):
    /// its authenticator, to build a Web API client with instead of a token provider.
    /// `None` for every token grant.
    ///
    /// # Errors
    ///
    /// The grant's configuration errors, in the source's terms.
    pub fn authenticator(
        &self,
    ) -> Result<Option<Arc<dyn d365_auth_core::ConnectionAuthenticator>>, ConnectError> {
        match self.grant.build_authenticator(&self.config) {
            None => Ok(None),
            Some(Ok(authenticator)) => Ok(Some(authenticator)),
            Some(Err(error)) => Err(self.origin.error(error, &Registry::enabled(), 0)),
        }
    }
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credential")
            .field("grant", &self.grant.name())
            .field("config", &self.config)
            .finish()
    }
}

impl Origin {
    /// A grant's configuration error in the terms of the source: a missing setting named
    /// with its spellings, or by its variable; the count of unknown keys hints at a
    /// misspelt one.
    pub(crate) fn error(
        self,
        error: ConfigError,
        registry: &Registry,
        unrecognised: usize,
    ) -> ConnectError {
        match self {
            Self::Settings => settings_error(error, registry, unrecognised),
            Self::Environment => environment_error(error, registry),
        }
    }
}

fn settings_error(error: ConfigError, registry: &Registry, unrecognised: usize) -> ConnectError {
    match error {
        ConfigError::Missing { setting, fix } => ConnectError::MissingKey {
            key: registry
                .key_named(setting)
                .map_or_else(|| setting.to_owned(), |key| keys::label(&key)),
            fix,
            unrecognised,
        },
        ConfigError::Invalid {
            setting,
            problem,
            fix,
        } => ConnectError::InvalidValue {
            key: setting,
            problem,
            fix,
        },
        other => ConnectError::Config(other),
    }
}

fn environment_error(error: ConfigError, registry: &Registry) -> ConnectError {
    let variable = |setting: &str| {
        registry
            .key_named(setting)
            .and_then(|key| key.variable)
            .map_or_else(|| setting.to_owned(), str::to_owned)
    };
    match error {
        ConfigError::Missing { setting, fix } => ConnectError::Environment {
            problem: format!("{} is not set", variable(setting)),
            fix,
        },
        ConfigError::Invalid {
            setting,
            problem,
            fix,
        } => ConnectError::Environment {
            problem: format!("{}: {problem}", variable(setting)),
            fix,
        },
        other => ConnectError::Config(other),
    }
}
