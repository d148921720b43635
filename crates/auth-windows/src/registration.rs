//! Windows sign-in as configuration knows it: ServiceClient's
//! `AuthType=AD;Url=…;Domain=…;Username=…;Password=…`. `d365-connect` registers
//! [`REGISTRATION`] with its `windows` feature.

use std::sync::Arc;

use d365_auth_core::grant::{ConnectionAuthenticator, GrantConfig, GrantRegistration, SettingKey};
use d365_auth_core::{ConfigError, TokenProvider};

use crate::authenticator::WindowsSignIn;

const USERNAME: SettingKey =
    SettingKey::new("Username", &["UserName", "User Name", "UserId", "User Id"]);
const PASSWORD: SettingKey = SettingKey::new("Password", &["Password"]).secret();
const KEYS: &[SettingKey] = &[USERNAME, PASSWORD];
/// ServiceClient's NTLM domain key, which `d365-connect` keeps for grants to read.
const DOMAIN: &str = "Domain";

/// Windows sign-in, registered with configuration: it takes `AuthType=AD` with
/// `Username` and `Password` (and `Domain`).
#[derive(Debug)]
#[non_exhaustive]
pub struct WindowsRegistration;

/// The registration `d365-connect` lists.
pub static REGISTRATION: WindowsRegistration = WindowsRegistration;

impl GrantRegistration for WindowsRegistration {
    fn name(&self) -> &'static str {
        "windows"
    }

    fn description(&self) -> &'static str {
        "a Windows account (NTLM) against an on-premises server without AD FS, as AuthType=AD; no token: each connection is signed in"
    }

    fn keys(&self) -> &'static [SettingKey] {
        KEYS
    }

    fn accepts(&self, config: &GrantConfig) -> bool {
        config.auth_type_is("AD")
    }

    fn check(&self, config: &GrantConfig) -> Result<(), ConfigError> {
        self.authenticator(config).map(|_| ())
    }

    fn needs_authority(&self) -> bool {
        false
    }

    fn build(&self, config: &GrantConfig) -> Result<Arc<dyn TokenProvider>, ConfigError> {
        self.check(config)?;
        Err(ConfigError::Invalid {
            setting: "AuthType",
            problem: "AD (Windows sign-in) signs in each connection and hands out no token".to_owned(),
            fix: "connect a Web API client with it (d365_connect::connect, or any d365 command that calls the Web API); for a token, use OAuth through AD FS".to_owned(),
        })
    }

    fn build_authenticator(
        &self,
        config: &GrantConfig,
    ) -> Option<Result<Arc<dyn ConnectionAuthenticator>, ConfigError>> {
        Some(
            self.authenticator(config)
                .map(|sign_in| Arc::new(sign_in) as Arc<dyn ConnectionAuthenticator>),
        )
    }
}

impl WindowsRegistration {
    fn authenticator(&self, config: &GrantConfig) -> Result<WindowsSignIn, ConfigError> {
        let organization = config.organization.as_ref().ok_or_else(|| ConfigError::Missing {
            setting: "Url",
            fix: "give the organization URL, with its path on-premises: Url=https://crm.contoso.local/Contoso".to_owned(),
        })?;
        let mut builder = WindowsSignIn::builder(organization.organization_url());
        if let Some(domain) = config.text(DOMAIN) {
            builder = builder.domain(domain);
        }
        if let Some(user) = config.text(USERNAME.name) {
            builder = builder.username(user);
        }
        if let Some(password) = config.secret(PASSWORD.name) {
            builder = builder.password(password.clone());
        }
        builder.build()
    }
}
