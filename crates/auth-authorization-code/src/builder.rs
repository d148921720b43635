//! [`AuthorizationCodeBuilder`]: every setting of the browser sign-in, checked by `build`
//! before any request, with a fix for each mistake.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use d365_auth_core::grant::{ClientSettings, ResolvedAuthority, client_setters};
use d365_auth_core::{ConfigError, Tenant};
use secrecy::{ExposeSecret as _, SecretString};

use crate::authorize::{Prompt, authorize_endpoint};
use crate::browser::{OnSignInUrl, SignInUrl};
use crate::provider::{AuthorizationCode, Inner};

/// How long a person has to finish signing in, unless set: azure-identity's 5 minutes.
pub const DEFAULT_SIGN_IN_TIMEOUT: Duration = Duration::from_secs(300);

/// The longest sign-in timeout accepted.
const MAX_SIGN_IN_TIMEOUT: Duration = Duration::from_secs(3600);

/// Configures [`AuthorizationCode`]; see [`AuthorizationCode::builder`]. Every mistake is
/// reported by [`build`](Self::build), before any request.
///
/// Required: a tenant (unless a complete authority or AD FS is given) and the client id of
/// an app registration that allows public client flows and has a `http://localhost`
/// redirect URI (mobile and desktop platform). Everything else has a default: the public
/// cloud, a public client, any free loopback port with the path `/`, the system browser,
/// no prompt, 5 minutes to sign in, d365's HTTP client and a 30-second timeout per request.
///
/// # Examples
///
/// ```
/// use d365_auth_authorization_code::{AuthorizationCode, Prompt};
///
/// let grant = AuthorizationCode::builder()
///     .tenant("organizations")
///     .client_id("04b07795-8ddb-461a-bbee-02f9e1bf7b46")
///     .login_hint("ana@contoso.onmicrosoft.com")
///     .prompt(Prompt::SelectAccount)
///     .build()?;
/// assert_eq!(
///     grant.authorize_endpoint().as_str(),
///     "https://login.microsoftonline.com/organizations/oauth2/v2.0/authorize",
/// );
/// # Ok::<(), d365_auth_core::ConfigError>(())
/// ```
#[must_use]
pub struct AuthorizationCodeBuilder {
    client: ClientSettings,
    client_secret: Option<SecretString>,
    redirect_uri: Option<String>,
    login_hint: Option<String>,
    domain_hint: Option<String>,
    prompt: Option<Prompt>,
    scopes: Vec<String>,
    open_browser: bool,
    on_sign_in_url: Option<OnSignInUrl>,
    sign_in_timeout: Duration,
    cache_partition: Option<String>,
}

impl Default for AuthorizationCodeBuilder {
    fn default() -> Self {
        Self {
            client: ClientSettings::default(),
            client_secret: None,
            redirect_uri: None,
            login_hint: None,
            domain_hint: None,
            prompt: None,
            scopes: Vec::new(),
            open_browser: true,
            on_sign_in_url: None,
            sign_in_timeout: DEFAULT_SIGN_IN_TIMEOUT,
            cache_partition: None,
        }
    }
}

impl AuthorizationCodeBuilder {
    // The tenant, cloud, authority host, AD FS, authority, client id, HTTP client and
    // timeout of each token request, as every grant takes them. The tenant may be an id, a
    // verified domain, `organizations` or `common`; `consumers` is refused (Dataverse takes
    // work and school accounts only). AD FS 2019 and later support this grant with PKCE.
    client_setters!(client);

    /// The client secret of a confidential (web) application, sent when the code is
    /// redeemed. Desktop tools are public clients and need none.
    pub fn client_secret(mut self, secret: SecretString) -> Self {
        self.client_secret = Some(secret);
        self
    }

    /// The loopback redirect URI to listen on: `http://localhost[:port][/path]` or
    /// `http://127.0.0.1[:port][/path]`. Without a port (or with port 0) any free port is
    /// used, which Entra ID accepts for `localhost` redirect URIs; give a fixed one when
    /// the identity provider matches ports (AD FS). Only the path and the port are taken:
    /// the listener always binds the loopback interface.
    pub fn redirect_uri(mut self, uri: impl Into<String>) -> Self {
        self.redirect_uri = Some(uri.into());
        self
    }

    /// The account to preselect (`login_hint`), such as `ana@contoso.onmicrosoft.com`; it
    /// also partitions the token cache (see [`cache_partition`](Self::cache_partition)).
    pub fn login_hint(mut self, user: impl Into<String>) -> Self {
        self.login_hint = Some(user.into());
        self
    }

    /// The home realm to go to directly (`domain_hint`), such as `contoso.com` for a
    /// federated domain.
    pub fn domain_hint(mut self, domain: impl Into<String>) -> Self {
        self.domain_hint = Some(domain.into());
        self
    }

    /// Whether to ask the person to act even with a session (see [`Prompt`]).
    pub fn prompt(mut self, prompt: Prompt) -> Self {
        self.prompt = Some(prompt);
        self
    }

    /// Scopes to ask for beside the organization's and `offline_access openid profile`
    /// (space-separated, or one call each). They must not name another resource: Entra ID
    /// issues a token for one resource at a time (AADSTS700022).
    pub fn scope(mut self, scope: impl AsRef<str>) -> Self {
        self.scopes
            .extend(scope.as_ref().split_whitespace().map(str::to_owned));
        self
    }

    /// Whether to open the system browser (on by default). Off, the address goes only to
    /// [`on_sign_in_url`](Self::on_sign_in_url), which is then required: for a program
    /// that opens it itself, or a test that drives a browser.
    pub fn open_browser(mut self, open: bool) -> Self {
        self.open_browser = open;
        self
    }

    /// Shows the person where to sign in: called once per sign-in with the address and
    /// whether the browser was opened on it ([`SignInUrl`]; its `Display` says what to
    /// do). Without it, a sign-in where no browser can open fails at once as unavailable.
    /// The callback runs on the task that asked for the token and must not block.
    pub fn on_sign_in_url(mut self, callback: impl Fn(&SignInUrl) + Send + Sync + 'static) -> Self {
        self.on_sign_in_url = Some(Arc::new(callback));
        self
    }

    /// How long the person has to finish signing in (5 minutes unless set, at most an
    /// hour); then the sign-in ends with [`ErrorKind::Cancelled`](d365_auth_core::ErrorKind::Cancelled).
    pub fn sign_in_timeout(mut self, timeout: Duration) -> Self {
        self.sign_in_timeout = timeout;
        self
    }

    /// A label for the person expected to sign in, added to the grant's
    /// [`cache_key`](d365_auth_core::TokenProvider::cache_key) (the login hint is used when
    /// none is given). The user is known only after sign-in, so without either, every
    /// browser sign-in of one application and authority shares a key.
    pub fn cache_partition(mut self, label: impl Into<String>) -> Self {
        self.cache_partition = Some(label.into());
        self
    }

    /// Checks the settings and builds the grant.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] for a missing or invalid tenant (including `consumers`), a bare
    /// token endpoint (whose authorize endpoint is unknown), a missing client id, an empty
    /// client secret, a redirect URI that is not loopback `http`, no way to show the
    /// sign-in when the browser is off, or a sign-in timeout of zero or over an hour.
    pub fn build(self) -> Result<AuthorizationCode, ConfigError> {
        let ResolvedAuthority {
            authority,
            endpoint,
            ..
        } = self.client.authority.resolve(check_tenant)?;
        let authorize_endpoint = authorize_endpoint(&endpoint)?;
        let client_id = self.client.require_client_id()?;
        if let Some(secret) = &self.client_secret
            && secret.expose_secret().trim().is_empty()
        {
            return Err(ConfigError::Invalid {
                setting: "client secret",
                problem: "it is empty".to_owned(),
                fix: "give the secret's Value from App registrations > Certificates & secrets, or leave the secret out for a public client".to_owned(),
            });
        }
        let (redirect_port, redirect_path) = match &self.redirect_uri {
            Some(uri) => parse_redirect_uri(uri)?,
            None => (0, "/".to_owned()),
        };
        if !self.open_browser && self.on_sign_in_url.is_none() {
            return Err(ConfigError::Missing {
                setting: "sign-in address callback",
                fix: "with the browser off, give .on_sign_in_url(|sign_in| eprintln!(\"{sign_in}\")) so the person learns where to sign in".to_owned(),
            });
        }
        if self.sign_in_timeout.is_zero() || self.sign_in_timeout > MAX_SIGN_IN_TIMEOUT {
            return Err(ConfigError::Invalid {
                setting: "sign-in timeout",
                problem: format!(
                    "{} s is not between 1 s and 1 hour",
                    self.sign_in_timeout.as_secs()
                ),
                fix: "give a few minutes: a person has to open the page and sign in".to_owned(),
            });
        }
        Ok(AuthorizationCode::from_inner(Inner {
            authority,
            endpoint,
            authorize_endpoint,
            client_id,
            client_secret: self.client_secret,
            redirect_port,
            redirect_path,
            login_hint: non_empty(self.login_hint),
            domain_hint: non_empty(self.domain_hint),
            prompt: self.prompt,
            scopes: self.scopes,
            open_browser: self.open_browser,
            on_sign_in_url: self.on_sign_in_url,
            sign_in_timeout: self.sign_in_timeout,
            cache_partition: non_empty(self.cache_partition),
            http: self.client.endpoint_client(),
        }))
    }
}

fn non_empty(value: Option<String>) -> Option<String> {
    value
        .map(|text| text.trim().to_owned())
        .filter(|text| !text.is_empty())
}

/// The port (0: any) and path of a loopback redirect URI.
fn parse_redirect_uri(uri: &str) -> Result<(u16, String), ConfigError> {
    let invalid = |problem: String| {
        ConfigError::Invalid {
        setting: "redirect URI",
        problem,
        fix: "give a loopback http address such as http://localhost or http://localhost:8400/callback, registered for the app (Mobile and desktop applications)".to_owned(),
    }
    };
    let url = url::Url::parse(uri.trim())
        .map_err(|error| invalid(format!("`{uri}` is not a URL ({error})")))?;
    let loopback = matches!(url.host_str(), Some("localhost" | "127.0.0.1"));
    if url.scheme() != "http" || !loopback {
        return Err(invalid(format!(
            "`{uri}` is not a loopback http address, and the browser must come back to this machine"
        )));
    }
    if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() {
        return Err(invalid(format!(
            "`{uri}` has a query, a fragment or credentials"
        )));
    }
    Ok((url.port().unwrap_or(0), url.path().to_owned()))
}

/// Dataverse accepts work and school accounts only.
fn check_tenant(tenant: &Tenant) -> Result<(), ConfigError> {
    match tenant {
        Tenant::Consumers => Err(ConfigError::Invalid {
            setting: "tenant",
            problem: "`consumers` signs in personal Microsoft accounts only, and Dataverse accepts work and school accounts".to_owned(),
            fix: "use the tenant id, a verified domain such as contoso.onmicrosoft.com, `organizations` or `common`".to_owned(),
        }),
        _ => Ok(()),
    }
}

impl fmt::Debug for AuthorizationCodeBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthorizationCodeBuilder")
            .field("authority", &self.client.authority)
            .field("client_id", &self.client.client_id)
            .field(
                "client_secret",
                &self.client_secret.as_ref().map(|_| "[redacted]"),
            )
            .field("redirect_uri", &self.redirect_uri)
            .field("login_hint", &self.login_hint)
            .field("prompt", &self.prompt)
            .field("open_browser", &self.open_browser)
            .field("sign_in_timeout", &self.sign_in_timeout)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_uris_must_come_back_to_this_machine() {
        assert_eq!(
            parse_redirect_uri("http://localhost").unwrap(),
            (0, "/".to_owned())
        );
        assert_eq!(
            parse_redirect_uri("http://127.0.0.1:8400/callback").unwrap(),
            (8400, "/callback".to_owned())
        );
        for bad in [
            "https://localhost/",
            "http://example.com/",
            "http://localhost/?x=1",
            "app://58145B91-0C36-4500-8554-080854F2AC97",
            "not a url",
        ] {
            assert!(parse_redirect_uri(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn mistakes_are_caught_before_any_request() {
        let base = || {
            AuthorizationCode::builder()
                .tenant("organizations")
                .client_id("c1")
        };
        assert!(base().build().is_ok());
        assert!(
            AuthorizationCode::builder()
                .tenant("consumers")
                .client_id("c1")
                .build()
                .is_err()
        );
        assert!(
            AuthorizationCode::builder()
                .tenant("organizations")
                .build()
                .is_err()
        );
        assert!(
            base()
                .client_secret(SecretString::from(" "))
                .build()
                .is_err()
        );
        assert!(base().open_browser(false).build().is_err());
        assert!(base().sign_in_timeout(Duration::ZERO).build().is_err());
        assert!(
            base()
                .open_browser(false)
                .on_sign_in_url(|_| {})
                .build()
                .is_ok()
        );
    }
}
