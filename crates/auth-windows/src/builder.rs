//! [`WindowsSignInBuilder`]: the organization, the account and the timeouts, checked by
//! `build`.

use std::time::Duration;

use d365_auth_core::{ConfigError, Resource};
use secrecy::SecretString;

use crate::authenticator::{Account, WindowsSignIn};

/// How long opening a connection may take.
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Configures [`WindowsSignIn`]; see [`WindowsSignIn::builder`].
#[must_use]
#[derive(Debug)]
pub struct WindowsSignInBuilder {
    organization: String,
    domain: Option<String>,
    username: Option<String>,
    password: Option<SecretString>,
    connect_timeout: Duration,
}

impl WindowsSignIn {
    /// Configures Windows sign-in to the organization at `organization` (its URL, with the
    /// organization's path on-premises: `https://crm.contoso.local/Contoso`). Credentials
    /// go to that origin only.
    pub fn builder(organization: impl Into<String>) -> WindowsSignInBuilder {
        WindowsSignInBuilder {
            organization: organization.into(),
            domain: None,
            username: None,
            password: None,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
        }
    }
}

impl WindowsSignInBuilder {
    /// The NetBIOS domain (`CONTOSO`). Without it, the user name may carry it
    /// (`CONTOSO\alice`) or be a UPN (`alice@contoso.local`).
    pub fn domain(mut self, domain: impl Into<String>) -> Self {
        self.domain = Some(domain.into());
        self
    }

    /// The account's user name: `alice`, `CONTOSO\alice` or `alice@contoso.local`.
    pub fn username(mut self, username: impl Into<String>) -> Self {
        self.username = Some(username.into());
        self
    }

    /// The account's password.
    pub fn password(mut self, password: SecretString) -> Self {
        self.password = Some(password);
        self
    }

    /// How long opening a connection may take (default 10 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// The authenticator.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] for an organization URL that is not one (or plain http off
    /// loopback), or a missing user name or password (Kerberos with the current ticket is
    /// not supported: see the crate documentation).
    pub fn build(self) -> Result<WindowsSignIn, ConfigError> {
        let organization = Resource::parse(&self.organization)?;
        let username = self
            .username
            .map(|name| name.trim().to_owned())
            .filter(|name| !name.is_empty())
            .ok_or_else(|| ConfigError::Missing {
                setting: "Username",
                fix: "give the Windows account: Domain=CONTOSO;Username=alice (signing in with the current Kerberos ticket is not supported)".to_owned(),
            })?;
        let password = self.password.ok_or_else(|| ConfigError::Missing {
            setting: "Password",
            fix: "give the Windows account's password (quote it if it contains ; or outer spaces: Password='a;b')".to_owned(),
        })?;
        let account = Account::new(self.domain.as_deref(), &username, password)?;
        Ok(WindowsSignIn::new(
            organization,
            account,
            self.connect_timeout,
        ))
    }
}
