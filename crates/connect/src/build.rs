//! What building a provider needs besides the credential ([`ConnectOptions`]), and the
//! authority of a credential: given, made from its tenant and host, or discovered from the
//! organization's `401` challenge.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use d365_auth_core::grant::GrantConfig;
use d365_auth_core::{AuthError, Authority, Cloud, ConfigError, Resource, TokenProvider};
use secrecy::SecretString;

use crate::challenge::{self, DEFAULT_DISCOVERY_TIMEOUT};
use crate::credential::Origin;
use crate::error::ConnectError;
use crate::external::{DEFAULT_EXTERNAL_TOKEN_LIFETIME, TokenCallback, TokenCallbackFuture};
use crate::registry::Registry;
use crate::string::ConnectionString;

/// What a connection needs besides its configuration: your HTTP client, the token
/// callback of `AuthType=ExternalTokenManagement`, values for a grant's hooks (such as
/// `d365_auth_device_code::ShowDeviceCode`), timeouts.
///
/// # Examples
///
/// ```no_run
/// # async fn run() -> Result<(), d365_connect::ConnectError> {
/// use d365_connect::ConnectOptions;
/// use secrecy::SecretString;
///
/// let options = ConnectOptions::new().token_callback(|resource: String| async move {
///     // Ask your own token source for `resource` here.
///     Ok(SecretString::from(format!("token-for-{}", resource.len())))
/// });
/// let client = d365_connect::connect_with(
///     "AuthType=ExternalTokenManagement;Url=https://contoso.crm.dynamics.com",
///     &options,
/// )
/// .await?;
/// # let _ = client;
/// # Ok(()) }
/// ```
#[derive(Clone)]
#[non_exhaustive]
#[must_use]
pub struct ConnectOptions {
    pub(crate) http: Option<reqwest::Client>,
    pub(crate) token_callback: Option<TokenCallback>,
    pub(crate) external_token_lifetime: Duration,
    pub(crate) discovery_timeout: Duration,
    pub(crate) extensions: http::Extensions,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        Self {
            http: None,
            token_callback: None,
            external_token_lifetime: DEFAULT_EXTERNAL_TOKEN_LIFETIME,
            discovery_timeout: DEFAULT_DISCOVERY_TIMEOUT,
            extensions: http::Extensions::new(),
        }
    }
}

impl ConnectOptions {
    /// The defaults: d365's HTTP clients, no token callback, tokens of unknown expiry used
    /// for 5 minutes, 30 seconds for authority discovery.
    pub fn new() -> Self {
        Self::default()
    }

    /// Your HTTP client (proxy, TLS roots), for discovery, the grant and the Web API
    /// client. Build it without redirects
    /// (`redirect(reqwest::redirect::Policy::none())`).
    pub fn http_client(mut self, http: reqwest::Client) -> Self {
        self.http = Some(http);
        self
    }

    /// The token callback for `AuthType=ExternalTokenManagement`: it receives the
    /// resource (`https://contoso.crm.dynamics.com/`) and returns an access token. See
    /// [`ExternalTokenProvider`](crate::ExternalTokenProvider). Ignored for other types.
    pub fn token_callback<F, Fut>(mut self, callback: F) -> Self
    where
        F: Fn(String) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<SecretString, AuthError>> + Send + 'static,
    {
        self.token_callback = Some(Arc::new(move |resource| -> TokenCallbackFuture {
            Box::pin(callback(resource))
        }));
        self
    }

    /// A value for a grant's hook, by its type: `d365_auth_device_code::ShowDeviceCode`
    /// shows the device code sign-in, a `CancelHandle` cancels it. Each grant crate
    /// documents the types it reads.
    pub fn extension<T: Clone + Send + Sync + 'static>(mut self, value: T) -> Self {
        self.extensions.insert(value);
        self
    }

    /// How long a token from the callback is used when its expiry is unknown (5 minutes
    /// unless set); see [`ExternalTokenProvider::lifetime`](crate::ExternalTokenProvider::lifetime).
    pub fn external_token_lifetime(mut self, lifetime: Duration) -> Self {
        self.external_token_lifetime = lifetime;
        self
    }

    /// How long authority discovery may take (30 seconds unless set).
    pub fn discovery_timeout(mut self, timeout: Duration) -> Self {
        self.discovery_timeout = timeout;
        self
    }
}

impl fmt::Debug for ConnectOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectOptions")
            .field("http_client", &self.http.is_some())
            .field("token_callback", &self.token_callback.is_some())
            .field("external_token_lifetime", &self.external_token_lifetime)
            .field("discovery_timeout", &self.discovery_timeout)
            .finish_non_exhaustive()
    }
}

/// Parses `connection_string` and builds only its token provider (not cached: wrap it in
/// a `TokenCache`, as the Web API client does).
///
/// # Errors
///
/// [`ConnectError`]: the string is invalid (see [`ConnectionString::parse`]), discovery
/// failed, or the grant's settings cannot work.
pub async fn provider_from_connection_string(
    connection_string: &str,
) -> Result<Arc<dyn TokenProvider>, ConnectError> {
    ConnectionString::parse(connection_string)?
        .credential()
        .provider(&ConnectOptions::new())
        .await
}

/// The Microsoft cloud an organization's host belongs to.
pub(crate) fn cloud_of(org: &Resource) -> Cloud {
    let host = org
        .as_str()
        .split_once("://")
        .map_or(org.as_str(), |(_, rest)| rest)
        .split(':')
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    if host.ends_with(".microsoftdynamics.us") || host.ends_with(".appsplatform.us") {
        Cloud::UsGovernment
    } else if host.ends_with(".dynamics.cn") {
        Cloud::China
    } else {
        Cloud::Public
    }
}

/// The authority of `config`: given whole, or from its tenant and authority host (either
/// may be missing), discovering what is missing from the organization's `401` challenge.
pub(crate) async fn resolve_authority(
    config: &GrantConfig,
    origin: Origin,
    options: &ConnectOptions,
) -> Result<Authority, ConnectError> {
    if let Some(authority) = &config.authority {
        return Ok(authority.clone());
    }
    let org = config.organization.as_ref();
    let host = config.authority_host.as_deref();
    let tenant = match (&config.tenant, org) {
        (Some(tenant), _) => tenant.clone(),
        (None, None) => {
            return Err(origin.error(
                ConfigError::Missing {
                    setting: "TenantId",
                    fix: "give the directory (tenant) id, or the organization URL to discover it from".to_owned(),
                },
                &Registry::enabled(),
                0,
            ));
        }
        (None, Some(org)) => {
            let http = match &options.http {
                Some(http) => http.clone(),
                None => d365_auth_core::grant::default_http_client()?,
            };
            let found =
                challenge::discover_with_timeout(&http, org, options.discovery_timeout).await?;
            let discovered = challenge::authority_of(org, &found)?;
            tracing::debug!(authority = %discovered, "discovered the authority");
            match (host, discovered.tenant()) {
                (None, _) => return Ok(discovered),
                (Some(_), Some(tenant)) => tenant.clone(),
                (Some(_), None) => {
                    return Err(ConnectError::Discovery {
                        org: org.to_string(),
                        problem: format!(
                            "the organization names the AD FS authority {discovered}, which has no tenant to combine with the authority host"
                        ),
                        fix: "remove the authority host (AuthorityHost, AZURE_AUTHORITY_HOST), or give Authority",
                        source: None,
                    });
                }
            }
        }
    };
    match host {
        Some(host) => Ok(Authority::parse(&format!(
            "{}/{tenant}",
            host.trim_end_matches('/')
        ))?),
        None => Ok(Authority::cloud(
            org.map_or(Cloud::Public, cloud_of),
            tenant,
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clouds_follow_the_organization_host() {
        for (url, cloud) in [
            ("https://contoso.crm.dynamics.com", Cloud::Public),
            ("https://contoso.crm9.dynamics.com", Cloud::Public),
            (
                "https://contoso.crm.microsoftdynamics.us",
                Cloud::UsGovernment,
            ),
            ("https://contoso.crm.appsplatform.us", Cloud::UsGovernment),
            ("https://contoso.crm.dynamics.cn", Cloud::China),
            ("http://127.0.0.1:8080", Cloud::Public),
        ] {
            assert_eq!(cloud_of(&Resource::parse(url).unwrap()), cloud, "{url}");
        }
    }
}
