//! The in-memory directory: tenants, app registrations (with secrets and certificates) and
//! users. It is data only; the token endpoint decides what a lookup result means.
//!
//! Designed to grow: the Dataverse half adds an organization model (application users,
//! security roles) beside `apps` and `users` in a tenant.

use secrecy::{ExposeSecret as _, SecretString};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use uuid::Uuid;

use crate::config::{
    AppConfig, CertificateConfig, ManagedIdentityConfig, SecretConfig, TenantConfig, UserConfig,
};
use crate::identity::redirect_uri;
use crate::keys::{self, Thumbprints};

/// A failed directory change, reported by the admin API and by configuration loading.
#[derive(Debug, thiserror::Error)]
pub(crate) enum DirectoryError {
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0} already exists")]
    Duplicate(String),
    #[error("{0}")]
    Invalid(String),
    /// The thing exists but is not in a state the change applies to (a device code that is
    /// no longer pending).
    #[error("{0}")]
    Conflict(String),
}

/// Normalizes a GUID to lower-case hyphenated form, the form every comparison uses.
pub(crate) fn parse_guid(text: &str, what: &str) -> Result<String, DirectoryError> {
    Uuid::parse_str(text.trim())
        .map(|id| id.hyphenated().to_string())
        .map_err(|_| DirectoryError::Invalid(format!("{what} '{text}' is not a GUID")))
}

fn guid_or_new(text: Option<&str>, what: &str) -> Result<String, DirectoryError> {
    match text {
        Some(text) => parse_guid(text, what),
        None => Ok(Uuid::new_v4().hyphenated().to_string()),
    }
}

pub(crate) fn parse_time(text: &str) -> Result<OffsetDateTime, DirectoryError> {
    OffsetDateTime::parse(text, &Rfc3339)
        .map_err(|_| DirectoryError::Invalid(format!("'{text}' is not an RFC 3339 date-time")))
}

/// The most redirect URIs one app may have (Entra allows 256).
pub(crate) const MAX_REDIRECT_URIS: usize = 256;

#[derive(Debug, Clone, Default)]
pub(crate) struct Directory {
    pub(crate) tenants: Vec<Tenant>,
}

#[derive(Debug, Clone)]
pub(crate) struct Tenant {
    pub(crate) id: String,
    pub(crate) domain: String,
    pub(crate) display_name: String,
    pub(crate) apps: Vec<App>,
    pub(crate) users: Vec<User>,
    pub(crate) managed_identities: Vec<ManagedIdentity>,
}

#[derive(Debug, Clone)]
pub(crate) struct App {
    pub(crate) client_id: String,
    pub(crate) display_name: String,
    /// Object id of the app's service principal: the `oid`/`sub` of app-only tokens.
    pub(crate) service_principal_id: String,
    pub(crate) public_client: bool,
    pub(crate) roles: Vec<String>,
    pub(crate) secrets: Vec<ClientSecret>,
    pub(crate) certificates: Vec<ClientCertificate>,
    /// Registered redirect URIs, normalized (see `identity::redirect_uri`).
    pub(crate) redirect_uris: Vec<String>,
}

#[derive(Debug, Clone)]
pub(crate) struct ClientSecret {
    pub(crate) id: String,
    pub(crate) value: SecretString,
    pub(crate) expires_at: OffsetDateTime,
}

#[derive(Debug, Clone)]
pub(crate) struct ClientCertificate {
    pub(crate) thumbprints: Thumbprints,
    pub(crate) public_key: rsa::RsaPublicKey,
}

#[derive(Debug, Clone)]
pub(crate) struct User {
    pub(crate) upn: String,
    pub(crate) password: SecretString,
    pub(crate) object_id: String,
    pub(crate) display_name: String,
    pub(crate) mfa_required: bool,
    pub(crate) federated: bool,
    pub(crate) disabled: bool,
}

/// A managed identity: the emulated Azure host's system-assigned identity, or a
/// user-assigned one attached to it.
#[derive(Debug, Clone)]
pub(crate) struct ManagedIdentity {
    pub(crate) client_id: String,
    /// Object id of its service principal: the `oid`/`sub` of its tokens.
    pub(crate) object_id: String,
    /// Azure resource id (the `xms_mirid` claim).
    pub(crate) resource_id: String,
    pub(crate) display_name: String,
    pub(crate) system_assigned: bool,
    pub(crate) roles: Vec<String>,
    /// The Dataverse system user made for it at start (an application user), if any.
    pub(crate) application_user_id: Option<String>,
}

/// Which managed identity a token request asks for.
#[derive(Debug, Clone, Copy)]
pub(crate) enum IdentitySelector<'a> {
    /// No id: the system-assigned identity.
    SystemAssigned,
    ClientId(&'a str),
    ObjectId(&'a str),
    ResourceId(&'a str),
}

/// Constant-time comparison, so the emulator does not teach a timing side channel by example.
pub(crate) fn secrets_equal(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl Directory {
    /// A tenant by GUID or verified domain, case-insensitively.
    pub(crate) fn tenant(&self, segment: &str) -> Option<&Tenant> {
        self.tenants.iter().find(|t| t.matches(segment))
    }

    pub(crate) fn tenant_mut(&mut self, segment: &str) -> Option<&mut Tenant> {
        self.tenants.iter_mut().find(|t| t.matches(segment))
    }

    /// The home tenant of an app, for the `organizations` endpoint.
    pub(crate) fn tenant_of_app(&self, client_id: &str) -> Option<&Tenant> {
        self.tenants.iter().find(|t| t.app(client_id).is_some())
    }

    /// A managed identity, with its tenant: by id in any tenant, or the first tenant's
    /// system-assigned identity.
    pub(crate) fn managed_identity(
        &self,
        selector: IdentitySelector<'_>,
    ) -> Option<(&Tenant, &ManagedIdentity)> {
        self.tenants.iter().find_map(|tenant| {
            tenant
                .managed_identities
                .iter()
                .find(|identity| identity.selected_by(selector))
                .map(|identity| (tenant, identity))
        })
    }

    pub(crate) fn add_tenant(&mut self, tenant: Tenant) -> Result<(), DirectoryError> {
        if self.tenant(&tenant.id).is_some() || self.tenant(&tenant.domain).is_some() {
            return Err(DirectoryError::Duplicate(format!(
                "tenant '{}'",
                tenant.domain
            )));
        }
        self.tenants.push(tenant);
        Ok(())
    }

    /// Adds a configured tenant, merging it into an existing one with the same id or domain.
    pub(crate) fn apply_tenant(&mut self, config: &TenantConfig) -> Result<(), DirectoryError> {
        let existing = config
            .id
            .as_deref()
            .and_then(|id| self.tenants.iter().position(|t| t.matches(id)))
            .or_else(|| self.tenants.iter().position(|t| t.matches(&config.domain)));
        let index = if let Some(index) = existing {
            index
        } else {
            self.add_tenant(Tenant::new(
                config.id.as_deref(),
                &config.domain,
                config.display_name.as_deref(),
            )?)?;
            self.tenants.len() - 1
        };
        let tenant = &mut self.tenants[index];
        for app in &config.apps {
            tenant.add_app(App::from_config(app)?)?;
        }
        for user in &config.users {
            tenant.add_user(User::from_config(user)?)?;
        }
        for identity in &config.managed_identities {
            tenant.add_managed_identity(ManagedIdentity::from_config(identity)?)?;
        }
        Ok(())
    }
}

impl Tenant {
    pub(crate) fn new(
        id: Option<&str>,
        domain: &str,
        display_name: Option<&str>,
    ) -> Result<Self, DirectoryError> {
        let domain = domain.trim().to_ascii_lowercase();
        if domain.is_empty() || domain.contains('/') {
            return Err(DirectoryError::Invalid(format!(
                "'{domain}' is not a domain name"
            )));
        }
        Ok(Self {
            id: guid_or_new(id, "tenant id")?,
            display_name: display_name.unwrap_or(&domain).to_owned(),
            domain,
            apps: Vec::new(),
            users: Vec::new(),
            managed_identities: Vec::new(),
        })
    }

    fn matches(&self, segment: &str) -> bool {
        self.id.eq_ignore_ascii_case(segment.trim()) || self.domain.eq_ignore_ascii_case(segment)
    }

    pub(crate) fn app(&self, client_id: &str) -> Option<&App> {
        self.apps
            .iter()
            .find(|a| a.client_id.eq_ignore_ascii_case(client_id.trim()))
    }

    pub(crate) fn app_mut(&mut self, client_id: &str) -> Option<&mut App> {
        self.apps
            .iter_mut()
            .find(|a| a.client_id.eq_ignore_ascii_case(client_id.trim()))
    }

    /// The user an on-premises account name stands for: its UPN, or the part of the UPN
    /// before `@` (`alice` for `alice@contoso.onmicrosoft.com`), in any case.
    pub(crate) fn user_by_account(&self, account: &str) -> Option<&User> {
        self.user(account).or_else(|| {
            self.users.iter().find(|user| {
                user.upn
                    .split_once('@')
                    .is_some_and(|(name, _)| name.eq_ignore_ascii_case(account))
            })
        })
    }

    pub(crate) fn user(&self, upn: &str) -> Option<&User> {
        self.users
            .iter()
            .find(|u| u.upn.eq_ignore_ascii_case(upn.trim()))
    }

    pub(crate) fn user_by_object_id(&self, object_id: &str) -> Option<&User> {
        self.users.iter().find(|u| u.object_id == object_id)
    }

    pub(crate) fn user_mut(&mut self, upn: &str) -> Option<&mut User> {
        self.users
            .iter_mut()
            .find(|u| u.upn.eq_ignore_ascii_case(upn.trim()))
    }

    pub(crate) fn add_app(&mut self, app: App) -> Result<(), DirectoryError> {
        if self.app(&app.client_id).is_some() {
            return Err(DirectoryError::Duplicate(format!(
                "app '{}'",
                app.client_id
            )));
        }
        self.apps.push(app);
        Ok(())
    }

    /// Adds a managed identity: its client id must be no app's and no other identity's, its
    /// object id and resource id unique, and a tenant has one system-assigned identity at
    /// most.
    pub(crate) fn add_managed_identity(
        &mut self,
        identity: ManagedIdentity,
    ) -> Result<(), DirectoryError> {
        if self.app(&identity.client_id).is_some()
            || self.managed_identities.iter().any(|other| {
                other.client_id == identity.client_id
                    || other.object_id == identity.object_id
                    || other
                        .resource_id
                        .eq_ignore_ascii_case(&identity.resource_id)
            })
        {
            return Err(DirectoryError::Duplicate(format!(
                "managed identity '{}' (client id, object id or resource id)",
                identity.client_id
            )));
        }
        if identity.system_assigned && self.managed_identities.iter().any(|m| m.system_assigned) {
            return Err(DirectoryError::Duplicate(format!(
                "a system-assigned identity in tenant '{}'",
                self.domain
            )));
        }
        self.managed_identities.push(identity);
        Ok(())
    }

    pub(crate) fn add_user(&mut self, user: User) -> Result<(), DirectoryError> {
        if self.user(&user.upn).is_some() {
            return Err(DirectoryError::Duplicate(format!("user '{}'", user.upn)));
        }
        self.users.push(user);
        Ok(())
    }
}

impl App {
    pub(crate) fn from_config(config: &AppConfig) -> Result<Self, DirectoryError> {
        let client_id = guid_or_new(config.client_id.as_deref(), "client id")?;
        let secrets = config
            .secrets
            .iter()
            .map(ClientSecret::from_config)
            .collect::<Result<_, _>>()?;
        let certificates = config
            .certificates
            .iter()
            .map(ClientCertificate::from_config)
            .collect::<Result<_, _>>()?;
        if config.redirect_uris.len() > MAX_REDIRECT_URIS {
            return Err(DirectoryError::Invalid(format!(
                "an app has at most {MAX_REDIRECT_URIS} redirect URIs"
            )));
        }
        let redirect_uris = config
            .redirect_uris
            .iter()
            .map(|uri| redirect_uri::register(uri).map_err(DirectoryError::Invalid))
            .collect::<Result<_, _>>()?;
        Ok(Self {
            display_name: config
                .display_name
                .clone()
                .unwrap_or_else(|| format!("app {client_id}")),
            service_principal_id: Uuid::new_v4().hyphenated().to_string(),
            client_id,
            public_client: config.public_client,
            roles: config.roles.clone(),
            secrets,
            certificates,
            redirect_uris,
        })
    }
}

/// The subscription the made-up resource ids of managed identities name.
const EMULATED_SUBSCRIPTION: &str = "d3650000-5b50-4000-8000-000000000001";
/// The longest resource id accepted (ARM ids are far shorter).
const MAX_RESOURCE_ID_LEN: usize = 1024;

impl ManagedIdentity {
    pub(crate) fn from_config(config: &ManagedIdentityConfig) -> Result<Self, DirectoryError> {
        let client_id = guid_or_new(config.client_id.as_deref(), "client id")?;
        let object_id = guid_or_new(config.object_id.as_deref(), "object id")?;
        let display_name = config
            .display_name
            .clone()
            .unwrap_or_else(|| format!("managed identity {client_id}"));
        let resource_id = match config.resource_id.as_deref().map(str::trim) {
            Some(id) if id.starts_with('/') && id.len() <= MAX_RESOURCE_ID_LEN => id.to_owned(),
            Some(id) => {
                return Err(DirectoryError::Invalid(format!(
                    "'{id}' is not an Azure resource id (/subscriptions/…)"
                )));
            }
            None => {
                let name: String = display_name
                    .chars()
                    .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
                    .collect();
                let provider = if config.system_assigned {
                    "Microsoft.Compute/virtualMachines"
                } else {
                    "Microsoft.ManagedIdentity/userAssignedIdentities"
                };
                format!(
                    "/subscriptions/{EMULATED_SUBSCRIPTION}/resourceGroups/d365-emulator/providers/{provider}/{name}"
                )
            }
        };
        let application_user_id = config
            .application_user
            .then(|| application_user_id(&client_id));
        Ok(Self {
            client_id,
            object_id,
            resource_id,
            display_name,
            system_assigned: config.system_assigned,
            roles: config.roles.clone(),
            application_user_id,
        })
    }

    fn selected_by(&self, selector: IdentitySelector<'_>) -> bool {
        match selector {
            IdentitySelector::SystemAssigned => self.system_assigned,
            IdentitySelector::ClientId(id) => self.client_id.eq_ignore_ascii_case(id.trim()),
            IdentitySelector::ObjectId(id) => self.object_id.eq_ignore_ascii_case(id.trim()),
            IdentitySelector::ResourceId(id) => self.resource_id.eq_ignore_ascii_case(id.trim()),
        }
    }

    /// The identity as the app registration its tokens are minted for.
    pub(crate) fn as_app(&self) -> App {
        App {
            client_id: self.client_id.clone(),
            display_name: self.display_name.clone(),
            service_principal_id: self.object_id.clone(),
            public_client: false,
            roles: self.roles.clone(),
            secrets: Vec::new(),
            certificates: Vec::new(),
            redirect_uris: Vec::new(),
        }
    }
}

/// The system user id of a configured managed identity's application user: derived from
/// its client id, so a restart over the same data file finds the same user.
fn application_user_id(client_id: &str) -> String {
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(format!("d365-emulator application user|{client_id}"));
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .hyphenated()
        .to_string()
}

impl ClientSecret {
    pub(crate) fn from_config(config: &SecretConfig) -> Result<Self, DirectoryError> {
        let expires_at = match config.expires_at.as_deref() {
            Some(text) => parse_time(text)?,
            None => OffsetDateTime::now_utc() + time::Duration::days(730),
        };
        if config.value.expose_secret().is_empty() {
            return Err(DirectoryError::Invalid(
                "a client secret cannot be empty".into(),
            ));
        }
        Ok(Self {
            id: guid_or_new(config.id.as_deref(), "secret id")?,
            value: config.value.clone(),
            expires_at,
        })
    }
}

impl ClientCertificate {
    pub(crate) fn from_der(der: &[u8]) -> Result<Self, DirectoryError> {
        let public_key = keys::certificate_public_key(der)
            .map_err(|err| DirectoryError::Invalid(err.to_string()))?;
        Ok(Self {
            thumbprints: Thumbprints::of(der),
            public_key,
        })
    }

    pub(crate) fn from_pem(pem: &str) -> Result<Self, DirectoryError> {
        let blocks = keys::pem_blocks(pem, "CERTIFICATE");
        let der = blocks.first().ok_or_else(|| {
            DirectoryError::Invalid("no '-----BEGIN CERTIFICATE-----' block found".into())
        })?;
        Self::from_der(der)
    }

    fn from_config(config: &CertificateConfig) -> Result<Self, DirectoryError> {
        match (&config.pem, &config.path) {
            (Some(pem), _) => Self::from_pem(pem),
            (None, Some(path)) => {
                let pem = std::fs::read_to_string(path).map_err(|err| {
                    DirectoryError::Invalid(format!("cannot read {}: {err}", path.display()))
                })?;
                Self::from_pem(&pem)
            }
            (None, None) => Err(DirectoryError::Invalid(
                "a certificate needs `pem` or `path`".into(),
            )),
        }
    }
}

impl User {
    pub(crate) fn from_config(config: &UserConfig) -> Result<Self, DirectoryError> {
        let upn = config.upn.trim().to_owned();
        let Some((local, _domain)) = upn.split_once('@') else {
            return Err(DirectoryError::Invalid(format!(
                "'{upn}' is not a UPN (name@domain)"
            )));
        };
        Ok(Self {
            display_name: config
                .display_name
                .clone()
                .unwrap_or_else(|| local.to_owned()),
            object_id: guid_or_new(config.object_id.as_deref(), "object id")?,
            upn,
            password: config.password.clone(),
            mfa_required: config.mfa_required,
            federated: config.federated,
            disabled: config.disabled,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenants_are_found_by_id_or_domain_in_any_case() {
        let mut directory = Directory::default();
        let tenant = Tenant::new(
            Some("D3650000-E0E0-4000-8000-000000000001"),
            "Contoso.onmicrosoft.com",
            None,
        )
        .expect("tenant");
        directory.add_tenant(tenant).expect("added");
        assert!(
            directory
                .tenant("d3650000-e0e0-4000-8000-000000000001")
                .is_some()
        );
        assert!(directory.tenant("CONTOSO.onmicrosoft.com").is_some());
        assert!(directory.tenant("fabrikam.onmicrosoft.com").is_none());
    }

    #[test]
    fn managed_identities_are_checked_and_found() {
        let config = |text: &str| {
            crate::EmulatorConfig::from_toml_str(text)
                .expect("config")
                .managed_identities
                .remove(0)
        };
        let system = ManagedIdentity::from_config(&config(
            "[[managed_identities]]\nsystem_assigned = true\ndisplay_name = \"my vm\"",
        ))
        .expect("valid");
        assert!(system.resource_id.ends_with("/virtualMachines/my-vm"));
        assert!(system.application_user_id.is_some());
        let bad = config("[[managed_identities]]\nresource_id = \"not/an/id\"");
        assert!(ManagedIdentity::from_config(&bad).is_err());

        let mut tenant = Tenant::new(None, "contoso.onmicrosoft.com", None).expect("tenant");
        tenant.add_managed_identity(system.clone()).expect("added");
        let mut again = system.clone();
        again.client_id = Uuid::new_v4().to_string();
        again.object_id = Uuid::new_v4().to_string();
        again.resource_id = "/subscriptions/x/other".into();
        assert!(
            tenant.add_managed_identity(again).is_err(),
            "two system-assigned"
        );
        let mut directory = Directory::default();
        directory.add_tenant(tenant).expect("added");
        let by_resource = IdentitySelector::ResourceId(&system.resource_id);
        assert!(directory.managed_identity(by_resource).is_some());
        let upper = system.client_id.to_ascii_uppercase();
        assert!(
            directory
                .managed_identity(IdentitySelector::ClientId(&upper))
                .is_some()
        );
        assert!(
            directory
                .managed_identity(IdentitySelector::SystemAssigned)
                .is_some()
        );
        assert!(
            directory
                .managed_identity(IdentitySelector::ObjectId("x"))
                .is_none()
        );
    }

    #[test]
    fn secrets_compare_exactly() {
        assert!(secrets_equal("abc", "abc"));
        assert!(!secrets_equal("abc", "abd"));
        assert!(!secrets_equal("abc", "abcd"));
    }
}
