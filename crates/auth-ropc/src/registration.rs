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

/// The password grant, registered with configuration.
///
/// It takes `AuthType=OAuth` with `Username` and `Password` (the client id defaults to
/// Microsoft's sample public client, [`SAMPLE_CLIENT_ID`], as ServiceClient's does; a
/// `ClientSecret` makes it a confidential client), and, without an `AuthType`,
/// `AZURE_USERNAME` with `AZURE_PASSWORD`.
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
            Some(_) => config.auth_type_is("OAuth") && has_password,
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
        let client_id = config.client_id.clone().unwrap_or_else(|| {
            tracing::info!(
                client_id = SAMPLE_CLIENT_ID,
                "no ClientId: using Microsoft's sample public client, as ServiceClient does; register your own application for production"
            );
            SAMPLE_CLIENT_ID.to_owned()
        });
        let mut builder = UsernamePassword::builder()
            .client_id(client_id)
            .username(config.text(USERNAME.name).unwrap_or_default())
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
