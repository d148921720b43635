//! The emulator's configuration file (TOML) and the JSON bodies of the admin API share these
//! types: a tenant, an app registration, a secret, a certificate, a user.

use std::path::{Path, PathBuf};

use secrecy::SecretString;
use serde::Deserialize;

use crate::dataverse::schema::TableConfig;
use crate::error::EmulatorError;

fn default_true() -> bool {
    true
}

/// Everything the emulator can be told before it starts, usually read from a TOML file.
///
/// Apps and users at the top level go into the default tenant (the seeded one, or the first
/// tenant listed when seeding is off); `[[tenants]]` adds more tenants, each with its own apps
/// and users. A tenant whose id or domain matches an existing one is merged into it.
///
/// ```toml
/// seed_defaults = true
/// token_lifetime_secs = 60
/// device_code_interval_secs = 1
///
/// [[apps]]
/// client_id = "11111111-2222-4333-8444-555555555555"
/// display_name = "nightly import"
/// secrets = [{ value = "s3cr3t", expires_at = "2030-01-01T00:00:00Z" }]
///
/// [[users]]
/// upn = "carol@contoso.onmicrosoft.com"
/// password = "Passw0rd!"
/// disabled = true
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct EmulatorConfig {
    /// Keep the default identities (one tenant, three apps, two users). Default `true`.
    #[serde(default = "default_true")]
    pub seed_defaults: bool,
    /// Lifetime of issued access tokens in seconds. Default 3599.
    #[serde(default)]
    pub token_lifetime_secs: Option<u64>,
    /// The polling `interval` device codes are issued with, in seconds (at least 1).
    /// Default 5, as Entra.
    #[serde(default)]
    pub device_code_interval_secs: Option<u64>,
    /// The lifetime (`expires_in`) of device codes, in seconds. Default 900, as Entra.
    #[serde(default)]
    pub device_code_lifetime_secs: Option<u64>,
    /// The lifetime of authorization codes (browser sign-in), in seconds. Default 600
    /// ("about ten minutes", as Entra).
    #[serde(default)]
    pub authorization_code_lifetime_secs: Option<u64>,
    /// App registrations added to the default tenant.
    #[serde(default)]
    pub apps: Vec<AppConfig>,
    /// Users added to the default tenant.
    #[serde(default)]
    pub users: Vec<UserConfig>,
    /// Managed identities added to the default tenant.
    #[serde(default)]
    pub managed_identities: Vec<ManagedIdentityConfig>,
    /// Further tenants.
    #[serde(default)]
    pub tenants: Vec<TenantConfig>,
    /// Dataverse tables served beside the built-in ones (same form as a schema file).
    #[serde(default)]
    pub tables: Vec<TableConfig>,
    /// The `x-ms-dop-hint` of Web API responses (default 4).
    #[serde(default)]
    pub dop_hint: Option<u32>,
    /// Further Dataverse organization URLs tokens are issued for, besides the emulator's own
    /// (and, with `seed_defaults`, `https://contoso.crm.dynamics.com`). Tokens for any other
    /// resource are refused with AADSTS500011. Only the emulator's own organization serves
    /// the Web API.
    #[serde(default)]
    pub organizations: Vec<String>,
}

impl Default for EmulatorConfig {
    fn default() -> Self {
        Self {
            seed_defaults: true,
            token_lifetime_secs: None,
            device_code_interval_secs: None,
            device_code_lifetime_secs: None,
            authorization_code_lifetime_secs: None,
            apps: Vec::new(),
            users: Vec::new(),
            managed_identities: Vec::new(),
            tenants: Vec::new(),
            tables: Vec::new(),
            dop_hint: None,
            organizations: Vec::new(),
        }
    }
}

impl EmulatorConfig {
    /// Parses a TOML document.
    pub fn from_toml_str(text: &str) -> Result<Self, EmulatorError> {
        toml::from_str(text).map_err(|err| EmulatorError::InvalidConfig(err.to_string()))
    }

    /// Reads and parses a TOML file.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, EmulatorError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| EmulatorError::ReadConfig {
            path: path.to_owned(),
            source,
        })?;
        Self::from_toml_str(&text)
    }
}

/// A tenant (directory).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct TenantConfig {
    /// Tenant GUID; generated when absent.
    #[serde(default)]
    pub id: Option<String>,
    /// Verified domain, e.g. `fabrikam.onmicrosoft.com`; usable as the tenant path segment.
    pub domain: String,
    /// Display name; defaults to the domain.
    #[serde(default)]
    pub display_name: Option<String>,
    /// App registrations in this tenant.
    #[serde(default)]
    pub apps: Vec<AppConfig>,
    /// Users in this tenant.
    #[serde(default)]
    pub users: Vec<UserConfig>,
    /// Managed identities in this tenant (`[[tenants.managed_identities]]`).
    #[serde(default)]
    pub managed_identities: Vec<ManagedIdentityConfig>,
}

/// An app registration (with its service principal).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct AppConfig {
    /// Application (client) id; generated when absent.
    #[serde(default)]
    pub client_id: Option<String>,
    /// Display name.
    #[serde(default)]
    pub display_name: Option<String>,
    /// "Allow public client flows": the app authenticates with no credential and must not
    /// send one.
    #[serde(default)]
    pub public_client: bool,
    /// App roles granted to the app itself, emitted as the `roles` claim of app-only tokens.
    #[serde(default)]
    pub roles: Vec<String>,
    /// Client secrets.
    #[serde(default)]
    pub secrets: Vec<SecretConfig>,
    /// Certificates (public part only) for client assertions.
    #[serde(default)]
    pub certificates: Vec<CertificateConfig>,
    /// Redirect URIs for the browser sign-in (authorization code grant): `https`, or `http`
    /// on `localhost`/`127.0.0.1`, whose port is ignored when matching (so
    /// `http://localhost` takes any port).
    #[serde(default)]
    pub redirect_uris: Vec<String>,
}

/// A client secret.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct SecretConfig {
    /// Secret id (what the portal calls "Secret ID"); generated when absent.
    #[serde(default)]
    pub id: Option<String>,
    /// The secret value.
    pub value: SecretString,
    /// Expiry as RFC 3339 (`2030-01-01T00:00:00Z`); two years from now when absent.
    #[serde(default)]
    pub expires_at: Option<String>,
}

/// A certificate credential: a PEM text or a path to a PEM file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct CertificateConfig {
    /// The certificate as PEM (`-----BEGIN CERTIFICATE-----`).
    #[serde(default)]
    pub pem: Option<String>,
    /// A file holding the PEM certificate.
    #[serde(default)]
    pub path: Option<PathBuf>,
}

/// A managed identity: the system-assigned identity of the emulated Azure host, or a
/// user-assigned identity attached to it. The emulator's managed identity endpoints (IMDS
/// and App Service shapes) issue app-only tokens for it.
///
/// ```toml
/// [[tenants.managed_identities]]
/// client_id = "33333333-4444-4555-8666-777777777777"   # generated when absent
/// object_id = "44444444-5555-4666-8777-888888888888"   # generated when absent
/// resource_id = "/subscriptions/…/providers/Microsoft.ManagedIdentity/userAssignedIdentities/nightly"
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct ManagedIdentityConfig {
    /// The host's system-assigned identity (asked for with no id); at most one per tenant.
    /// Default `false`: a user-assigned identity.
    #[serde(default)]
    pub system_assigned: bool,
    /// Client (application) id; generated when absent.
    #[serde(default)]
    pub client_id: Option<String>,
    /// Object id of its service principal (`oid` of its tokens); generated when absent.
    #[serde(default)]
    pub object_id: Option<String>,
    /// Azure resource id (`msi_res_id` / `mi_res_id`): the host's for a system-assigned
    /// identity, the identity's own for a user-assigned one. Made up from the display name
    /// when absent.
    #[serde(default)]
    pub resource_id: Option<String>,
    /// Display name.
    #[serde(default)]
    pub display_name: Option<String>,
    /// App roles granted to it, emitted as the `roles` claim.
    #[serde(default)]
    pub roles: Vec<String>,
    /// Give it an application user (System Administrator) in the Dataverse organization at
    /// start, when it is in the organization's (default) tenant. Default `true`.
    #[serde(default = "default_true")]
    pub application_user: bool,
}

/// A user account.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct UserConfig {
    /// User principal name, e.g. `carol@contoso.onmicrosoft.com`.
    pub upn: String,
    /// Password.
    pub password: SecretString,
    /// Object id; generated when absent.
    #[serde(default)]
    pub object_id: Option<String>,
    /// Display name; defaults to the part of the UPN before `@`.
    #[serde(default)]
    pub display_name: Option<String>,
    /// Conditional Access demands MFA: the password grant fails with AADSTS50076.
    #[serde(default)]
    pub mfa_required: bool,
    /// Federated (AD FS) account: the user realm says `Federated`, the password grant fails.
    #[serde(default)]
    pub federated: bool,
    /// Disabled account: sign-ins fail with AADSTS50057.
    #[serde(default)]
    pub disabled: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_document_parses() {
        let config = EmulatorConfig::from_toml_str(
            r#"
            seed_defaults = false
            token_lifetime_secs = 5
            device_code_interval_secs = 1
            device_code_lifetime_secs = 30
            [[apps]]
            display_name = "a"
            secrets = [{ value = "v" }]
            [[users]]
            upn = "u@x.onmicrosoft.com"
            password = "p"
            mfa_required = true
            [[tenants]]
            domain = "fabrikam.onmicrosoft.com"
            [[tenants.apps]]
            public_client = true
            redirect_uris = ["http://localhost"]
            [[tenants.managed_identities]]
            system_assigned = true
            application_user = false
            "#,
        )
        .expect("parses");
        assert!(!config.seed_defaults);
        assert_eq!(config.token_lifetime_secs, Some(5));
        assert_eq!(config.device_code_interval_secs, Some(1));
        assert_eq!(config.device_code_lifetime_secs, Some(30));
        assert_eq!(config.apps.len(), 1);
        assert!(config.users[0].mfa_required);
        assert!(config.tenants[0].apps[0].public_client);
        assert_eq!(
            config.tenants[0].apps[0].redirect_uris,
            ["http://localhost"]
        );
        let identity = &config.tenants[0].managed_identities[0];
        assert!(identity.system_assigned && !identity.application_user);
        assert!(!format!("{config:?}").contains("\"p\""));
    }

    #[test]
    fn unknown_keys_are_refused() {
        assert!(EmulatorConfig::from_toml_str("colour = 1").is_err());
    }
}
