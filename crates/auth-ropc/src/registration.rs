//! The password grant as configuration knows it: `AuthType=OAuth` connection strings with
//! `Username` and `Password`, and azure-identity's `AZURE_USERNAME`/`AZURE_PASSWORD`.
//! `d365-connect` registers [`REGISTRATION`] with its `password` feature.

use std::sync::Arc;

use d365_auth_core::grant::{CLIENT_SECRET, GrantConfig, GrantRegistration, SettingKey};
use d365_auth_core::{ConfigError, TokenProvider};

use crate::provider::UsernamePassword;

const USERNAME: SettingKey =
    SettingKey::new("Username", &["UserName", "User Name", "UserId", "User Id"])
        .environment("AZURE_USERNAME");
const PASSWORD: SettingKey = SettingKey::new("Password", &["Password"])
    .secret()
    .environment("AZURE_PASSWORD");

const KEYS: &[SettingKey] = &[USERNAME, PASSWORD, CLIENT_SECRET];

/// The application ServiceClient uses for `AuthType=OAuth` without a `ClientId`:
/// Microsoft's sample public client.
pub const SAMPLE_CLIENT_ID: &str = "51f81489-12ee-4a9e-aaae-a2591f45987d";

/// The client an `AuthType=IFD` connection without a `ClientId` signs in with: the
/// developer-tools client Dynamics 365 on-premises asks administrators to register in
/// AD FS after installation (`Add-AdfsClient -ClientId 2ad88395-…`), since CrmServiceClient's
/// IFD sign-in (WS-Trust) names no OAuth client.
pub const ON_PREMISES_TOOLS_CLIENT_ID: &str = "2ad88395-b77d-4561-9441-d0e40824f9bc";

/// The NTLM domain key of ServiceClient's `AD` and `IFD` connection strings.
const DOMAIN: &str = "Domain";

/// The password grant, registered with configuration.
///
/// It takes `AuthType=OAuth` with `Username` and `Password` (the client id defaults to
/// Microsoft's sample public client, [`SAMPLE_CLIENT_ID`], as ServiceClient's does; a
/// `ClientSecret` makes it a confidential client), CrmServiceClient's on-premises
/// `AuthType=IFD` with `Domain`, `Username` and `Password` (the password grant at the
/// AD FS the server names; the client id defaults to [`ON_PREMISES_TOOLS_CLIENT_ID`]), and,
/// without an `AuthType`, `AZURE_USERNAME` with `AZURE_PASSWORD`. A `Domain` with a bare
/// user name makes the AD FS user name `DOMAIN\user`.
///
/// # Examples
///
/// ```
/// use d365_auth_core::grant::{GrantConfig, GrantRegistration};
/// use d365_auth_core::{Authority, Tenant};
/// use d365_auth_ropc::REGISTRATION;
///
/// let mut config = GrantConfig::default();
/// config.auth_type = Some("OAuth".into());
/// config.set_text("Username", "ana@contoso.com");
/// config.set_secret("Password", "correct horse".into());
/// config.authority = Some(Authority::public_cloud(Tenant::Organizations));
/// assert!(REGISTRATION.accepts(&config));
/// assert_eq!(REGISTRATION.build(&config)?.grant().as_str(), "password");
/// # Ok::<(), d365_auth_core::ConfigError>(())
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub struct PasswordRegistration;

/// The registration `d365-connect` lists.
pub static REGISTRATION: PasswordRegistration = PasswordRegistration;

impl GrantRegistration for PasswordRegistration {
    fn name(&self) -> &'static str {
        "password"
    }

    fn description(&self) -> &'static str {
        "a user's name and password, for scripts without a browser (no multi-factor authentication, no federated users); delegated tokens"
    }

    fn keys(&self) -> &'static [SettingKey] {
        KEYS
    }

    fn accepts(&self, config: &GrantConfig) -> bool {
        // A password is what makes a configuration this grant's: `AuthType=OAuth` with a
        // user name alone is ServiceClient's interactive sign-in.
        let has_user = config.has(USERNAME.name);
        let has_password = config.has(PASSWORD.name);
        match &config.auth_type {
            Some(_) => (config.auth_type_is("OAuth") || config.auth_type_is("IFD")) && has_password,
            None => has_user && has_password,
        }
    }

    fn check(&self, config: &GrantConfig) -> Result<(), ConfigError> {
        // azure-identity's EnvironmentCredential needs the client id; only ServiceClient's
        // AuthType=OAuth falls back to the sample client.
        if config.auth_type.is_none() && config.client_id.is_none() {
            return Err(ConfigError::Missing {
                setting: "ClientId",
                fix: "give the application (client) id of an app registration that allows public client flows".to_owned(),
            });
        }
        if !config.has(PASSWORD.name) {
            return Err(ConfigError::Missing {
                setting: PASSWORD.name,
                fix: "give the user's password (quote it if it contains ; or outer spaces: Password='a;b'); d365 never prompts for it".to_owned(),
            });
        }
        if !config.has(USERNAME.name) {
            return Err(ConfigError::Missing {
                setting: USERNAME.name,
                fix: "give the user's name, such as Username=ana@contoso.onmicrosoft.com"
                    .to_owned(),
            });
        }
        Ok(())
    }

    fn build(&self, config: &GrantConfig) -> Result<Arc<dyn TokenProvider>, ConfigError> {
        self.check(config)?;
        if config.auth_type.is_none() {
            // As azure-identity's EnvironmentCredential warns.
            tracing::warn!(
                "AZURE_USERNAME and AZURE_PASSWORD select the password grant, which Microsoft deprecates (no multi-factor authentication); prefer a client secret, a certificate or workload identity"
            );
        }
        let on_premises = config.auth_type_is("IFD");
        let client_id = config.client_id.clone().unwrap_or_else(|| {
            if on_premises {
                tracing::info!(
                    client_id = ON_PREMISES_TOOLS_CLIENT_ID,
                    "AuthType=IFD without ClientId: using the developer-tools client Dynamics 365 on-premises registers in AD FS (Add-AdfsClient); give ClientId= for your own"
                );
                return ON_PREMISES_TOOLS_CLIENT_ID.to_owned();
            }
            tracing::info!(
                client_id = SAMPLE_CLIENT_ID,
                "no ClientId: using Microsoft's sample public client, as ServiceClient does; register your own application for production"
            );
            SAMPLE_CLIENT_ID.to_owned()
        });
        let mut builder = UsernamePassword::builder()
            .client_id(client_id)
            .username(user_name(config))
            .password(config.secret(PASSWORD.name).cloned().unwrap_or_default());
        if let Some(secret) = config.secret(CLIENT_SECRET.name) {
            builder = builder.client_secret(secret.clone());
        }
        if let Some(authority) = &config.authority {
            builder = builder.authority(authority.clone());
        }
        if let Some(http) = &config.http {
            builder = builder.http_client(http.clone());
        }
        Ok(Arc::new(builder.build()?))
    }
}

/// The user name to send: as given, or `DOMAIN\user` when a `Domain` comes with a bare
/// name (ServiceClient's `AD`/`IFD` strings split them; AD FS takes the joined form or a UPN).
fn user_name(config: &GrantConfig) -> String {
    let user = config.text(USERNAME.name).unwrap_or_default();
    match config
        .text(DOMAIN)
        .map(str::trim)
        .filter(|domain| !domain.is_empty())
    {
        Some(domain) if !user.contains('\\') && !user.contains('@') => format!("{domain}\\{user}"),
        _ => user.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use d365_auth_core::Authority;
    use d365_auth_core::grant::{GrantConfig, GrantRegistration};

    use super::{ON_PREMISES_TOOLS_CLIENT_ID, REGISTRATION, user_name};

    fn ifd(user: &str, domain: Option<&str>) -> GrantConfig {
        let mut config = GrantConfig::default();
        config.auth_type = Some("IFD".into());
        config.set_text("Username", user);
        if let Some(domain) = domain {
            config.set_text("Domain", domain);
        }
        config.set_secret("Password", "correct horse".into());
        config.authority =
            Some(Authority::adfs("https://adfs.contoso.com").expect("an AD FS authority"));
        config
    }

    #[test]
    fn crm_service_client_ifd_strings_become_the_password_grant_at_ad_fs() {
        let config = ifd("alice", Some("CONTOSO"));
        assert!(REGISTRATION.accepts(&config));
        assert_eq!(user_name(&config), r"CONTOSO\alice");
        // A name already qualified is sent as written, whatever the Domain says.
        assert_eq!(
            user_name(&ifd(r"FABRIKAM\bob", Some("CONTOSO"))),
            r"FABRIKAM\bob"
        );
        assert_eq!(
            user_name(&ifd("bob@contoso.local", Some("CONTOSO"))),
            "bob@contoso.local"
        );
        assert_eq!(user_name(&ifd("bob", None)), "bob");
        let provider = REGISTRATION.build(&config).expect("an IFD string builds");
        assert_eq!(provider.grant().as_str(), "password");
        let key = provider.cache_key();
        assert!(!key.contains("correct horse"), "{key}");
        assert!(key.contains(ON_PREMISES_TOOLS_CLIENT_ID), "{key}");

        let mut without_password = GrantConfig::default();
        without_password.auth_type = Some("IFD".into());
        without_password.set_text("Username", "alice");
        assert!(!REGISTRATION.accepts(&without_password));
    }
}
