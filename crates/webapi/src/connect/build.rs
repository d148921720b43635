//! From a parsed [`ConnectionString`] to a token provider and a [`Client`]: the authority
//! (given, or discovered from the organization's `401` challenge), then the grant the
//! `AuthType` names.

use std::fmt;
use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use d365_auth_client_credentials::{Certificate, ClientCredentials};
use d365_auth_core::{AuthError, Authority, Cloud, Resource, Tenant, TokenProvider};
use d365_auth_ropc::UsernamePassword;
use secrecy::SecretString;

use super::auth_type::AuthType;
use super::challenge::{self, DEFAULT_DISCOVERY_TIMEOUT};
use super::error::ConnectError;
use super::external::{
    DEFAULT_EXTERNAL_TOKEN_LIFETIME, ExternalTokenProvider, TokenCallback, TokenCallbackFuture,
};
use super::string::{ConnectionString, SAMPLE_CLIENT_ID};
use crate::client::{Client, ClientBuilder};

/// What a connection needs besides the connection string: your HTTP client, the token
/// callback of `AuthType=ExternalTokenManagement`, timeouts.
///
/// # Examples
///
/// ```no_run
/// # async fn run() -> Result<(), d365_webapi::ConnectError> {
/// use d365_webapi::ConnectOptions;
/// use secrecy::SecretString;
///
/// let options = ConnectOptions::new().token_callback(|resource: String| async move {
///     // Ask your own token source for `resource` here.
///     Ok(SecretString::from(format!("token for {resource}")))
/// });
/// let client = d365_webapi::connect_with(
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
    http: Option<reqwest::Client>,
    token_callback: Option<TokenCallback>,
    external_token_lifetime: Duration,
    discovery_timeout: Duration,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        Self {
            http: None,
            token_callback: None,
            external_token_lifetime: DEFAULT_EXTERNAL_TOKEN_LIFETIME,
            discovery_timeout: DEFAULT_DISCOVERY_TIMEOUT,
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
    /// [`ExternalTokenProvider`]. Ignored for other types.
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

    /// How long a token from the callback is used when its expiry is unknown (5 minutes
    /// unless set); see [`ExternalTokenProvider::lifetime`].
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

impl ConnectOptions {
    pub(crate) fn http_client_option(&self) -> Option<&reqwest::Client> {
        self.http.as_ref()
    }
}

impl fmt::Debug for ConnectOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectOptions")
            .field("http_client", &self.http.is_some())
            .field("token_callback", &self.token_callback.is_some())
            .field("external_token_lifetime", &self.external_token_lifetime)
            .field("discovery_timeout", &self.discovery_timeout)
            .finish()
    }
}

/// Parses `connection_string`, builds its provider (discovering the authority if the
/// string names no tenant) and a [`Client`] with the default settings.
///
/// # Errors
///
/// [`ConnectError`]: the string is invalid (see [`ConnectionString::parse`]), discovery
/// failed, the grant's settings cannot work, or the client cannot be built.
///
/// # Examples
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let client = d365_webapi::connect(
///     "AuthType=ClientSecret;Url=https://contoso.crm.dynamics.com;ClientId=00000000-0000-0000-0000-0000000000c1;ClientSecret=...",
/// )
/// .await?;
/// let me = client.who_am_i().await?;
/// # let _ = me;
/// # Ok(()) }
/// ```
pub async fn connect(connection_string: &str) -> Result<Client, ConnectError> {
    connect_with(connection_string, &ConnectOptions::new()).await
}

/// As [`connect`], with options (an HTTP client, a token callback, ...).
///
/// # Errors
///
/// As for [`connect`]; [`ConnectError::TokenCallbackRequired`] for
/// `AuthType=ExternalTokenManagement` without a callback.
pub async fn connect_with(
    connection_string: &str,
    options: &ConnectOptions,
) -> Result<Client, ConnectError> {
    ConnectionString::parse(connection_string)?
        .client_with(options)
        .await
}

/// Parses `connection_string` and builds only its token provider (not cached: wrap it in
/// a [`TokenCache`](d365_auth_core::TokenCache), as [`Client`] does).
///
/// # Errors
///
/// As for [`connect`].
pub async fn provider_from_connection_string(
    connection_string: &str,
) -> Result<Arc<dyn TokenProvider>, ConnectError> {
    ConnectionString::parse(connection_string)?.provider().await
}

impl ConnectionString {
    /// The token provider of this connection string, with the default options.
    ///
    /// # Errors
    ///
    /// See [`provider_with`](Self::provider_with).
    pub async fn provider(&self) -> Result<Arc<dyn TokenProvider>, ConnectError> {
        self.provider_with(&ConnectOptions::new()).await
    }

    /// The token provider of this connection string: client credentials with the secret
    /// or the certificate file, the password grant for `OAuth`, or the callback for
    /// `ExternalTokenManagement`. The authority is `Authority`, or `TenantId` (with
    /// `AuthorityHost`, or else the cloud of the organization's host), or else discovered
    /// from the organization's `401` challenge (one unauthenticated request).
    ///
    /// # Errors
    ///
    /// [`ConnectError::Discovery`]; [`ConnectError::Config`] from the grant (a certificate
    /// file that cannot be read or does not match its key, ...);
    /// [`ConnectError::CertificateMismatch`]; [`ConnectError::TokenCallbackRequired`].
    pub async fn provider_with(
        &self,
        options: &ConnectOptions,
    ) -> Result<Arc<dyn TokenProvider>, ConnectError> {
        match self.auth_type() {
            AuthType::ExternalTokenManagement => {
                let callback = options
                    .token_callback
                    .clone()
                    .ok_or(ConnectError::TokenCallbackRequired)?;
                Ok(Arc::new(
                    ExternalTokenProvider::from_boxed(callback)
                        .lifetime(options.external_token_lifetime),
                ))
            }
            AuthType::ClientSecret => {
                let authority = self.resolve_authority(options).await?;
                let secret = self
                    .client_secret()
                    .cloned()
                    .ok_or(ConnectError::MissingKey {
                        key: "ClientSecret (or Secret)",
                        fix: "give the secret's Value".to_owned(),
                        unrecognised: 0,
                    })?;
                let mut builder = ClientCredentials::builder()
                    .authority(require_specific_tenant(authority, "TenantId")?)
                    .client_id(self.client_id().unwrap_or_default())
                    .client_secret(secret);
                if let Some(http) = &options.http {
                    builder = builder.http_client(http.clone());
                }
                Ok(Arc::new(builder.build()?))
            }
            AuthType::Certificate => {
                let certificate = self.load_certificate()?;
                let authority = self.resolve_authority(options).await?;
                let mut builder = ClientCredentials::builder()
                    .authority(require_specific_tenant(authority, "TenantId")?)
                    .client_id(self.client_id().unwrap_or_default())
                    .certificate(certificate)
                    .send_certificate_chain(self.send_certificate_chain());
                if let Some(http) = &options.http {
                    builder = builder.http_client(http.clone());
                }
                Ok(Arc::new(builder.build()?))
            }
            AuthType::OAuth => {
                let authority = self.resolve_authority(options).await?;
                let (Some(username), Some(password)) = (self.username(), self.password()) else {
                    return Err(ConnectError::InteractiveSignIn);
                };
                let mut builder = UsernamePassword::builder()
                    .authority(authority)
                    .client_id(self.client_id().unwrap_or(SAMPLE_CLIENT_ID))
                    .username(username)
                    .password(password.clone());
                if let Some(http) = &options.http {
                    builder = builder.http_client(http.clone());
                }
                Ok(Arc::new(builder.build()?))
            }
            other => Err(ConnectError::UnsupportedAuthType {
                auth_type: other,
                reason: "it is not an OAuth authentication type",
                alternative: "use ClientSecret, Certificate, OAuth with Username and Password, or ExternalTokenManagement",
            }),
        }
    }

    /// A [`ClientBuilder`] for this connection, with its provider, so you can set retries,
    /// timeouts or a token store before `build`.
    ///
    /// # Errors
    ///
    /// As for [`provider_with`](Self::provider_with).
    pub async fn client_builder(
        &self,
        options: &ConnectOptions,
    ) -> Result<ClientBuilder, ConnectError> {
        let provider = self.provider_with(options).await?;
        let mut builder = Client::builder_shared(self.url().as_str(), provider);
        if let Some(http) = &options.http {
            builder = builder.http_client(http.clone());
        }
        Ok(builder)
    }

    /// A [`Client`] for this connection, with the default options.
    ///
    /// # Errors
    ///
    /// As for [`client_with`](Self::client_with).
    pub async fn client(&self) -> Result<Client, ConnectError> {
        self.client_with(&ConnectOptions::new()).await
    }

    /// A [`Client`] for this connection.
    ///
    /// # Errors
    ///
    /// As for [`provider_with`](Self::provider_with), and [`ConnectError::WebApi`] when the
    /// client cannot be built.
    pub async fn client_with(&self, options: &ConnectOptions) -> Result<Client, ConnectError> {
        Ok(self.client_builder(options).await?.build()?)
    }

    /// A [`Client`] for an `AuthType=ExternalTokenManagement` string, with `callback`
    /// supplying the tokens (see [`ExternalTokenProvider`]).
    ///
    /// # Errors
    ///
    /// [`ConnectError::InvalidValue`] when the string's `AuthType` is another one, and
    /// [`ConnectError::WebApi`] when the client cannot be built.
    ///
    /// # Examples
    ///
    /// ```
    /// use d365_webapi::ConnectionString;
    /// use secrecy::SecretString;
    ///
    /// let client = ConnectionString::parse("AuthType=ExternalTokenManagement;Url=https://contoso.crm.dynamics.com")?
    ///     .into_client_with_token_callback(|_resource: String| async {
    ///         Ok(SecretString::from("a token from elsewhere"))
    ///     })?;
    /// assert_eq!(client.org().as_str(), "https://contoso.crm.dynamics.com");
    /// # Ok::<(), d365_webapi::ConnectError>(())
    /// ```
    pub fn into_client_with_token_callback<F, Fut>(
        self,
        callback: F,
    ) -> Result<Client, ConnectError>
    where
        F: Fn(String) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<SecretString, AuthError>> + Send + 'static,
    {
        if self.auth_type() != AuthType::ExternalTokenManagement {
            return Err(ConnectError::InvalidValue {
                key: "AuthType",
                problem: format!(
                    "a token callback is for AuthType=ExternalTokenManagement, and this string has AuthType={}",
                    self.auth_type()
                ),
                fix: "write AuthType=ExternalTokenManagement, or connect without a callback"
                    .to_owned(),
            });
        }
        let provider = ExternalTokenProvider::new(callback);
        Ok(Client::builder(self.url().as_str(), provider).build()?)
    }

    /// The authority tokens come from: `Authority`; or `TenantId` on `AuthorityHost`, or
    /// on the cloud of the organization's host (`*.microsoftdynamics.us` and
    /// `*.appsplatform.us` → US Government, `*.dynamics.cn` → China, else public); or
    /// discovered from the organization's `401` challenge (its host and tenant, with the
    /// host replaced by `AuthorityHost` if given).
    ///
    /// # Errors
    ///
    /// [`ConnectError::Discovery`] when discovery is needed and fails.
    pub async fn resolve_authority(
        &self,
        options: &ConnectOptions,
    ) -> Result<Authority, ConnectError> {
        if let Some(authority) = self.authority() {
            return Ok(authority.clone());
        }
        resolve_authority_parts(
            Some(self.url()),
            self.tenant(),
            self.authority_host(),
            options,
        )
        .await
    }

    /// Loads the certificate file(s) and checks the thumbprint, if one is given.
    fn load_certificate(&self) -> Result<Certificate, ConnectError> {
        let path = self.certificate_path().ok_or(ConnectError::MissingKey {
            key: "CertificatePath (or CertificateFile)",
            fix: "give the certificate with its private key as a file".to_owned(),
            unrecognised: 0,
        })?;
        let certificate = if is_pkcs12(path) {
            let empty = SecretString::from(String::new());
            Certificate::from_pkcs12_file(path, self.certificate_password().unwrap_or(&empty))?
        } else {
            let key = self.certificate_key_path().unwrap_or(path);
            Certificate::from_pem_files(key, path)?
        };
        if let Some(expected) = self.thumbprint() {
            let found = certificate.thumbprint_sha1().to_ascii_uppercase();
            if found.replace(':', "") != expected {
                return Err(ConnectError::CertificateMismatch {
                    expected: expected.to_owned(),
                    found,
                });
            }
        }
        Ok(certificate)
    }
}

/// Client credentials need a specific tenant; a discovered `organizations` (from
/// `common`) is not one.
pub(crate) fn require_specific_tenant(
    authority: Authority,
    key: &'static str,
) -> Result<Authority, ConnectError> {
    match authority.tenant() {
        Some(tenant) if !tenant.is_specific() => Err(ConnectError::InvalidValue {
            key,
            problem: format!(
                "the authority {authority} names no specific tenant, and an application can only sign in to its own"
            ),
            fix: format!("give {key}=<directory (tenant) id>"),
        }),
        _ => Ok(authority),
    }
}

fn is_pkcs12(path: &Path) -> bool {
    path.extension()
        .and_then(|ext| ext.to_str())
        .is_some_and(|ext| ext.eq_ignore_ascii_case("pfx") || ext.eq_ignore_ascii_case("p12"))
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

/// The authority from a tenant and a host (either may be missing), discovering what is
/// missing from the organization's `401` challenge.
pub(crate) async fn resolve_authority_parts(
    org: Option<&Resource>,
    tenant: Option<&Tenant>,
    host: Option<&str>,
    options: &ConnectOptions,
) -> Result<Authority, ConnectError> {
    let tenant = match (tenant, org) {
        (Some(tenant), _) => tenant.clone(),
        (None, None) => {
            return Err(ConnectError::MissingKey {
                key: "TenantId",
                fix: "give the directory (tenant) id, or the organization URL to discover it from"
                    .to_owned(),
                unrecognised: 0,
            });
        }
        (None, Some(org)) => {
            let http = match &options.http {
                Some(http) => http.clone(),
                None => d365_auth_core::default_http_client()?,
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
