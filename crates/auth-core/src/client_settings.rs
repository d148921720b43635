//! [`ClientSettings`]: the part of a grant's builder every grant shares — where tokens
//! come from, which client asks, its HTTP client and timeout — and
//! [`client_setters!`](crate::grant::client_setters), the builder methods that set it.

use std::time::Duration;

use crate::endpoint::TokenEndpointClient;
use crate::error::ConfigError;
use crate::settings::AuthoritySettings;

/// What every grant's builder collects besides its own credential: the authority
/// settings, the application (client) id, an HTTP client and a timeout. A builder keeps one
/// in a field and generates its setters with
/// [`client_setters!`](crate::grant::client_setters), so every grant takes the same
/// settings the same way.
///
/// # Examples
///
/// ```
/// use d365_auth_core::grant::ClientSettings;
///
/// let mut settings = ClientSettings::default();
/// settings.client_id = Some(" 00000000-0000-0000-0000-000000000001 ".into());
/// settings.authority.set_tenant("contoso.onmicrosoft.com");
/// assert_eq!(settings.require_client_id()?, "00000000-0000-0000-0000-000000000001");
/// let endpoint_client = settings.endpoint_client();
/// # let _ = endpoint_client;
/// # Ok::<(), d365_auth_core::ConfigError>(())
/// ```
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct ClientSettings {
    /// Where tokens come from.
    pub authority: AuthoritySettings,
    /// The application (client) id.
    pub client_id: Option<String>,
    /// Your HTTP client (proxy, TLS roots); the default follows no redirect.
    pub http: Option<reqwest::Client>,
    /// The timeout of each request to the identity provider (30 s unless set).
    pub timeout: Option<Duration>,
}

impl ClientSettings {
    /// The client id, trimmed.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Missing`] when none (or only white space) was given.
    pub fn require_client_id(&self) -> Result<String, ConfigError> {
        self.client_id
            .as_deref()
            .map(str::trim)
            .filter(|id| !id.is_empty())
            .map(str::to_owned)
            .ok_or_else(|| ConfigError::Missing {
                setting: "client id",
                fix: "give the application (client) id from the app registration's Overview page"
                    .to_owned(),
            })
    }

    /// The token-endpoint client with the HTTP client and timeout given.
    #[must_use]
    pub fn endpoint_client(&self) -> TokenEndpointClient {
        let mut builder = TokenEndpointClient::builder();
        if let Some(http) = &self.http {
            builder = builder.http_client(http.clone());
        }
        if let Some(timeout) = self.timeout {
            builder = builder.timeout(timeout);
        }
        builder.build()
    }
}

/// Generates the builder methods of a [`ClientSettings`] field: `tenant`, `cloud`,
/// `authority_host`, `adfs`, `authority`, `token_endpoint`, `endpoint_version`,
/// `client_id`, `http_client` and `timeout`. Use it inside the `impl` block of a grant's
/// builder, naming the field.
///
/// # Examples
///
/// ```
/// use d365_auth_core::grant::{ClientSettings, client_setters};
///
/// /// Configures my grant.
/// #[derive(Default)]
/// pub struct MyGrantBuilder {
///     client: ClientSettings,
/// }
///
/// impl MyGrantBuilder {
///     client_setters!(client);
/// }
///
/// let builder = MyGrantBuilder::default().tenant("contoso.onmicrosoft.com").client_id("app");
/// assert_eq!(builder.client.require_client_id()?, "app");
/// # Ok::<(), d365_auth_core::ConfigError>(())
/// ```
#[macro_export]
#[doc(hidden)]
macro_rules! __client_setters {
    ($field:ident) => {
        /// The tenant: its id, a verified domain (`contoso.onmicrosoft.com`), or a keyword
        /// (`organizations`, `common`, `consumers`) where the grant accepts one.
        #[must_use]
        pub fn tenant(mut self, tenant: impl Into<String>) -> Self {
            self.$field.authority.set_tenant(tenant);
            self
        }

        /// A Microsoft cloud other than the public one (US Government, China).
        #[must_use]
        pub fn cloud(mut self, cloud: $crate::Cloud) -> Self {
            self.$field.authority.set_cloud(cloud);
            self
        }

        /// A host speaking Entra ID's protocol, such as the d365 emulator
        /// (`http://127.0.0.1:PORT`) or a proxy; the tenant follows it in the path.
        #[must_use]
        pub fn authority_host(mut self, base_url: impl Into<String>) -> Self {
            self.$field.authority.set_host(base_url);
            self
        }

        /// On-premises AD FS (`https://adfs.contoso.com`), where the grant supports it.
        #[must_use]
        pub fn adfs(mut self, url: impl Into<String>) -> Self {
            self.$field.authority.set_adfs(url);
            self
        }

        /// A complete authority (the tenant setting is then ignored).
        #[must_use]
        pub fn authority(mut self, authority: $crate::Authority) -> Self {
            self.$field.authority.set_authority(authority);
            self
        }

        /// Any OAuth 2.0 token endpoint, for servers not shaped like Entra ID.
        #[must_use]
        pub fn token_endpoint(mut self, endpoint: $crate::TokenEndpoint) -> Self {
            self.$field.authority.set_token_endpoint(endpoint);
            self
        }

        /// The Entra endpoint version (v2 unless set; AD FS has one endpoint).
        #[must_use]
        pub fn endpoint_version(mut self, version: $crate::EndpointVersion) -> Self {
            self.$field.authority.set_version(version);
            self
        }

        /// The application (client) id.
        #[must_use]
        pub fn client_id(mut self, client_id: impl Into<String>) -> Self {
            self.$field.client_id = Some(client_id.into());
            self
        }

        /// Your HTTP client (proxy, TLS roots). Build it without redirects
        /// (`redirect(reqwest::redirect::Policy::none())`): a token request carries
        /// credentials and must reach the endpoint named.
        #[must_use]
        pub fn http_client(mut self, http: $crate::__private::reqwest::Client) -> Self {
            self.$field.http = Some(http);
            self
        }

        /// The timeout of each request to the identity provider (30 s unless set).
        #[must_use]
        pub fn timeout(mut self, timeout: std::time::Duration) -> Self {
            self.$field.timeout = Some(timeout);
            self
        }
    };
}
