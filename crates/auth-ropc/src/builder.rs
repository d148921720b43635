//! [`UsernamePasswordBuilder`]: every setting of the password grant, checked by `build`
//! before any request, with a fix for each mistake.

use std::fmt;

use d365_auth_core::grant::{
    ClientSettings, ResolvedAuthority, TokenEndpointClient, client_setters, default_http_client,
};
use d365_auth_core::{AuthError, ConfigError, Tenant};
use secrecy::{ExposeSecret, SecretString};

use crate::provider::{Inner, UsernamePassword};
use crate::realm::{RealmCheck, realm_url};

/// Where the authority comes from, until `build` resolves it.
/// Configures [`UsernamePassword`]; see [`UsernamePassword::builder`]. Every mistake is
/// reported by [`build`](Self::build), before any request.
///
/// Required: a tenant (unless the authority is AD FS or a complete [`Authority`](d365_auth_core::Authority)), the
/// client id, the user name and the password. Everything else has a default: the public
/// cloud, the v2 endpoint, a public client, the user realm check on, d365's HTTP client
/// and a 30-second timeout.
///
/// # Examples
///
/// A public client (no secret) in the public cloud:
///
/// ```
/// use d365_auth_ropc::UsernamePassword;
///
/// let grant = UsernamePassword::builder()
///     .tenant("contoso.onmicrosoft.com")
///     .client_id("51f81489-12ee-4a9e-aaae-a2591f45987d")
///     .username("ana@contoso.com")
///     .password("correct horse battery staple".into())
///     .build()?;
/// assert_eq!(
///     grant.token_endpoint().url().as_str(),
///     "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token",
/// );
/// assert!(!format!("{grant:?}").contains("battery"));
/// # Ok::<(), d365_auth_core::ConfigError>(())
/// ```
///
/// A confidential client on the v1 endpoint of the US Government cloud, and AD FS:
///
/// ```
/// use d365_auth_core::grant::ClientKind;
/// use d365_auth_core::{Cloud, EndpointVersion};
/// use d365_auth_ropc::UsernamePassword;
///
/// let grant = UsernamePassword::builder()
///     .cloud(Cloud::UsGovernment)
///     .tenant("organizations")
///     .endpoint_version(EndpointVersion::V1)
///     .client_id("00000000-0000-0000-0000-000000000001")
///     .client_secret("app-secret-value".into())
///     .username("ana@contoso.com")
///     .password("p4ssw0rd".into())
///     .build()?;
/// assert_eq!(grant.client_kind(), ClientKind::Confidential);
/// assert_eq!(
///     grant.token_endpoint().url().as_str(),
///     "https://login.microsoftonline.us/organizations/oauth2/token",
/// );
///
/// let on_premises = UsernamePassword::builder()
///     .adfs("https://adfs.contoso.com")
///     .client_id("00000000-0000-0000-0000-000000000002")
///     .username(r"CONTOSO\ana")
///     .password("p4ssw0rd".into())
///     .build()?;
/// assert!(!on_premises.checks_user_realm());
/// # Ok::<(), d365_auth_core::ConfigError>(())
/// ```
#[must_use]
pub struct UsernamePasswordBuilder {
    client: ClientSettings,
    client_secret: Option<SecretString>,
    username: Option<String>,
    password: Option<SecretString>,
    user_realm_check: bool,
}

impl Default for UsernamePasswordBuilder {
    fn default() -> Self {
        Self {
            client: ClientSettings::default(),
            client_secret: None,
            username: None,
            password: None,
            user_realm_check: true,
        }
    }
}

impl UsernamePasswordBuilder {
    // The tenant, cloud, authority host, AD FS, authority, token endpoint (no user realm
    // check on such a server), endpoint version, client id, HTTP client (for the token
    // endpoint and the user realm check) and timeout, as every grant takes them. The
    // tenant may be an id, a verified domain or `organizations`; `common` and `consumers`
    // are refused by `build`: Entra ID does not allow the password grant there
    // (AADSTS9001023).
    client_setters!(client);

    /// The client secret of a confidential application (its value, not its id). The grant
    /// then asks for `{org}/.default` instead of `{org}/user_impersonation`.
    pub fn client_secret(mut self, secret: SecretString) -> Self {
        self.client_secret = Some(secret);
        self
    }

    /// The user's name: a user principal name (`ana@contoso.com`) for Entra ID, or what
    /// AD FS accepts (`CONTOSO\ana`).
    pub fn username(mut self, username: impl Into<String>) -> Self {
        self.username = Some(username.into());
        self
    }

    /// The user's password.
    pub fn password(mut self, password: SecretString) -> Self {
        self.password = Some(password);
        self
    }

    /// Whether to ask Entra ID's user realm endpoint, before the password is sent, if the
    /// user is federated to another identity provider, and refuse such users (default:
    /// on; never for AD FS). Turn it off for a tenant that validates federated users'
    /// passwords in the cloud, or a host without the endpoint that is slow to say so.
    pub fn user_realm_check(mut self, check: bool) -> Self {
        self.user_realm_check = check;
        self
    }

    /// Checks the settings and builds the grant. A password with leading or trailing
    /// spaces is accepted with a warning in the log (Entra ID does not support them).
    ///
    /// # Errors
    ///
    /// [`ConfigError`] for a missing or invalid tenant (including `common` and
    /// `consumers`), authority, client id, user name or password, or an empty client secret.
    pub fn build(self) -> Result<UsernamePassword, ConfigError> {
        let ResolvedAuthority {
            authority,
            endpoint,
            ..
        } = self.client.authority.resolve(check_tenant)?;
        let client_id = self.client.require_client_id()?;
        let username = self
            .username
            .map(|name| name.trim().to_owned())
            .filter(|name| !name.is_empty())
            .ok_or_else(|| ConfigError::Missing {
                setting: "username",
                fix: "give the user's sign-in name, such as ana@contoso.com (its user principal name)".to_owned(),
            })?;
        let password = self
            .password
            .filter(|password| !password.expose_secret().trim().is_empty())
            .ok_or_else(|| ConfigError::Missing {
                setting: "password",
                fix: "give the user's password (it is empty or only spaces); to sign in without one, use the device code grant".to_owned(),
            })?;
        if has_outer_whitespace(password.expose_secret()) {
            tracing::warn!(
                %username,
                "the password begins or ends with whitespace, which Entra ID does not support for the password grant; sign-in will likely fail with AADSTS50126 — check for a stray space or newline from a file or an environment variable"
            );
        }
        if let Some(secret) = &self.client_secret
            && secret.expose_secret().trim().is_empty()
        {
            return Err(ConfigError::Invalid {
                setting: "client secret",
                problem: "it is empty".to_owned(),
                fix: "give the secret's Value from App registrations > Certificates & secrets, or leave the secret out for a public client".to_owned(),
            });
        }

        let http_client = match self.client.http {
            Some(client) => client,
            None => default_http_client().map_err(|error| match error {
                AuthError::Config(config) => config,
                other => ConfigError::Invalid {
                    setting: "HTTP client",
                    problem: other.to_string(),
                    fix: "pass your own reqwest::Client to the builder".to_owned(),
                },
            })?,
        };
        let mut token_client = TokenEndpointClient::builder().http_client(http_client.clone());
        if let Some(timeout) = self.client.timeout {
            token_client = token_client.timeout(timeout);
        }
        let token_client = token_client.build();
        let realm = if self.user_realm_check {
            authority
                .as_ref()
                .and_then(|authority| realm_url(authority, &username))
                .map(|url| RealmCheck::new(url, http_client, token_client.timeout()))
        } else {
            None
        };
        Ok(UsernamePassword::from_inner(Inner {
            authority,
            endpoint,
            client_id,
            client_secret: self.client_secret,
            username,
            password,
            realm,
            http: token_client,
        }))
    }
}

fn has_outer_whitespace(text: &str) -> bool {
    text.starts_with(char::is_whitespace) || text.ends_with(char::is_whitespace)
}

/// Entra ID answers the password grant on `common` and `consumers` with AADSTS9001023;
/// saying so here saves a round trip and names the fix.
fn check_tenant(tenant: &Tenant) -> Result<(), ConfigError> {
    let why = match tenant {
        Tenant::Common => {
            "`common` is not allowed for the password grant: Entra ID refuses it there (AADSTS9001023), because it cannot tell which directory checks the password"
        }
        Tenant::Consumers => {
            "`consumers` is not allowed for the password grant: Entra ID refuses it there (AADSTS9001023), and personal Microsoft accounts can use neither this grant nor Dataverse"
        }
        _ => return Ok(()),
    };
    Err(ConfigError::Invalid {
        setting: "tenant",
        problem: why.to_owned(),
        fix: "use the tenant id, a verified domain such as contoso.onmicrosoft.com, or `organizations`".to_owned(),
    })
}

impl fmt::Debug for UsernamePasswordBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UsernamePasswordBuilder")
            .field("authority", &self.client.authority)
            .field("client_id", &self.client.client_id)
            .field(
                "client_secret",
                &self.client_secret.as_ref().map(|_| "[redacted]"),
            )
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "[redacted]"))
            .field("user_realm_check", &self.user_realm_check)
            .field("timeout", &self.client.timeout)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use d365_auth_core::Authority;

    fn base() -> UsernamePasswordBuilder {
        UsernamePassword::builder()
            .client_id("app")
            .username("ana@contoso.com")
            .password("pw".into())
    }

    #[test]
    fn tenants_for_the_password_grant() {
        let cases: &[(&str, Result<&str, &str>)] = &[
            (
                "organizations",
                Ok("https://login.microsoftonline.com/organizations"),
            ),
            (
                "Contoso.onmicrosoft.com",
                Ok("https://login.microsoftonline.com/contoso.onmicrosoft.com"),
            ),
            (
                "72f988bf-86f1-41af-91ab-2d7cd011db47",
                Ok("https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47"),
            ),
            ("common", Err("AADSTS9001023")),
            ("COMMON", Err("AADSTS9001023")),
            ("consumers", Err("personal Microsoft accounts")),
            ("contoso", Err("a tenant is a tenant id")),
        ];
        for (tenant, expected) in cases {
            match (base().tenant(*tenant).build(), expected) {
                (Ok(grant), Ok(url)) => assert_eq!(grant.authority().unwrap().url().as_str(), *url),
                (Err(error), Err(reason)) => {
                    assert!(error.to_string().contains(reason), "{tenant}: {error}");
                }
                (Ok(grant), Err(_)) => panic!("{tenant}: expected an error, got {grant:?}"),
                (Err(error), Ok(_)) => panic!("{tenant}: {error}"),
            }
        }
    }

    #[test]
    fn complete_authorities_are_checked_too() {
        let common = Authority::parse("https://login.microsoftonline.com/common").unwrap();
        let error = base().authority(common).build().unwrap_err();
        assert!(error.to_string().contains("AADSTS9001023"), "{error}");
        let adfs = Authority::adfs("https://adfs.contoso.com").unwrap();
        assert!(base().authority(adfs).build().is_ok());
    }

    #[test]
    fn outer_whitespace() {
        for (text, expected) in [
            ("pw", false),
            (" pw", true),
            ("pw ", true),
            ("pw\n", true),
            ("p w", false),
        ] {
            assert_eq!(has_outer_whitespace(text), expected, "{text:?}");
        }
    }
}
