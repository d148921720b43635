//! [`Registry`]: the grants this build knows — each grant crate's registration, enabled
//! by a cargo feature of this crate, and the external-token provider of
//! `AuthType=ExternalTokenManagement`. Nothing here lists what a grant needs or how it is
//! built: each registration says so itself.

use std::fmt;

use d365_auth_core::grant::{GrantConfig, GrantRegistration, SettingKey};

use crate::chain::DEFAULT_CHAIN;
use crate::error::ConnectError;
use crate::external::EXTERNAL_TOKEN;
use crate::keys;

/// The grants a connection can use, in the order they are asked whether they take a
/// configuration that names none.
///
/// # Examples
///
/// ```
/// let registry = d365_connect::Registry::enabled();
/// assert!(registry.get("client-credentials").is_some());
/// assert!(registry.names().any(|name| name == "device-code"));
/// ```
#[derive(Clone)]
pub struct Registry {
    grants: Vec<&'static dyn GrantRegistration>,
}

impl Registry {
    /// The grants this build enables: one line per grant crate, behind its feature.
    #[must_use]
    #[allow(
        clippy::vec_init_then_push,
        reason = "each grant is pushed behind its own feature"
    )]
    pub fn enabled() -> Self {
        let mut grants: Vec<&'static dyn GrantRegistration> = Vec::new();
        #[cfg(feature = "client-credentials")]
        grants.push(&d365_auth_client_credentials::REGISTRATION);
        #[cfg(feature = "password")]
        grants.push(&d365_auth_ropc::REGISTRATION);
        #[cfg(feature = "device-code")]
        grants.push(&d365_auth_device_code::REGISTRATION);
        #[cfg(feature = "interactive")]
        grants.push(&d365_auth_authorization_code::REGISTRATION);
        #[cfg(feature = "azure-cli")]
        grants.push(&d365_auth_azure_cli::REGISTRATION);
        #[cfg(feature = "managed-identity")]
        grants.push(&d365_auth_managed_identity::REGISTRATION);
        #[cfg(feature = "windows")]
        grants.push(&d365_auth_windows::REGISTRATION);
        grants.push(&DEFAULT_CHAIN);
        grants.push(&EXTERNAL_TOKEN);
        Self { grants }
    }

    /// No grant but the external-token provider of `AuthType=ExternalTokenManagement`:
    /// start from here and add the grants a program allows with [`with`](Self::with) —
    /// a service that must never take a password, say.
    #[must_use]
    pub fn empty() -> Self {
        Self {
            grants: vec![&EXTERNAL_TOKEN],
        }
    }

    /// This registry with one more grant, asked last: a grant of your own.
    #[must_use]
    pub fn with(mut self, grant: &'static dyn GrantRegistration) -> Self {
        self.grants.push(grant);
        self
    }

    /// The grant called `name` (`client-credentials`, `device-code`, ...), any case.
    #[must_use]
    pub fn get(&self, name: &str) -> Option<&'static dyn GrantRegistration> {
        let name = name.trim();
        self.grants
            .iter()
            .copied()
            .find(|grant| grant.name().eq_ignore_ascii_case(name))
    }

    /// The grant called `name`, or the error that lists the grants this build has.
    ///
    /// # Errors
    ///
    /// [`ConnectError::UnknownGrant`].
    pub fn named(&self, name: &str) -> Result<&'static dyn GrantRegistration, ConnectError> {
        self.get(name).ok_or_else(|| ConnectError::UnknownGrant {
            name: name.trim().chars().take(40).collect(),
            enabled: self.names().collect::<Vec<_>>().join(", "),
        })
    }

    /// The names of the grants, in order.
    pub fn names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.grants.iter().map(|grant| grant.name())
    }

    /// Every grant, in order.
    pub fn iter(&self) -> impl Iterator<Item = &'static dyn GrantRegistration> + '_ {
        self.grants.iter().copied()
    }

    /// The grant `config` names, else the first that takes it.
    #[must_use]
    pub fn select(&self, config: &GrantConfig) -> Option<&'static dyn GrantRegistration> {
        match &config.grant {
            Some(name) => self.get(name),
            None => self
                .grants
                .iter()
                .copied()
                .find(|grant| grant.accepts(config)),
        }
    }

    /// Every key a connection string may hold: the common ones, then each grant's.
    pub(crate) fn keys(&self) -> impl Iterator<Item = SettingKey> + '_ {
        keys::LEADING
            .iter()
            .copied()
            .chain(
                self.grants
                    .iter()
                    .flat_map(|grant| grant.keys().iter().copied()),
            )
            .chain(keys::TRAILING.iter().copied())
    }

    /// The key `spelling` names, any alias, any case.
    pub(crate) fn key(&self, spelling: &str) -> Option<SettingKey> {
        self.keys().find(|key| key.matches(spelling))
    }

    /// The key whose canonical name is `name`.
    pub(crate) fn key_named(&self, name: &str) -> Option<SettingKey> {
        self.keys().find(|key| key.name == name)
    }
}

impl Default for Registry {
    fn default() -> Self {
        Self::enabled()
    }
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.names()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings_are_unique_across_the_common_keys_and_every_grant() {
        let registry = Registry::enabled();
        let mut seen = std::collections::HashMap::new();
        for key in registry.keys() {
            for alias in key.aliases {
                if let Some(owner) = seen.insert(alias.to_ascii_lowercase(), key.name) {
                    // Grants may share a key (a confidential client's ClientSecret).
                    assert_eq!(owner, key.name, "{alias} names two different keys");
                }
            }
            assert!(
                key.matches(key.name),
                "{} is one of its own spellings",
                key.name
            );
        }
        assert_eq!(registry.key(" service uri ").unwrap().name, "Url");
        assert!(registry.key("Passwrd").is_none());
    }
}
