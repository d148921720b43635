//! With the `webapi` feature: from configuration straight to a [`Client`] of
//! `d365-webapi` — the one-liners `connect`, `connect_with` and
//! `connect_from_environment`.

use std::future::Future;

use d365_auth_core::AuthError;
use d365_webapi::{Client, ClientBuilder};
use secrecy::SecretString;

use crate::auth_type::AuthType;
use crate::build::ConnectOptions;
use crate::environment::{EnvironmentSettings, URL_VARIABLE};
use crate::error::ConnectError;
use crate::external::ExternalTokenProvider;
use crate::string::ConnectionString;

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
/// let client = d365_connect::connect(
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

/// A [`Client`] from `D365_URL` and the azure-identity variables of the process
/// environment.
///
/// # Errors
///
/// As for [`EnvironmentSettings::from_environment`] and [`EnvironmentSettings::client`].
///
/// # Examples
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// // D365_URL=https://contoso.crm.dynamics.com AZURE_TENANT_ID=… AZURE_CLIENT_ID=… AZURE_CLIENT_SECRET=…
/// let client = d365_connect::connect_from_environment().await?;
/// println!("{}", client.who_am_i().await?.user_id);
/// # Ok(()) }
/// ```
pub async fn connect_from_environment() -> Result<Client, ConnectError> {
    EnvironmentSettings::from_environment()?
        .client(&ConnectOptions::new())
        .await
}

impl ConnectionString {
    /// A [`ClientBuilder`] for this connection, with its provider, so you can set retries,
    /// timeouts or a token store before `build`.
    ///
    /// # Errors
    ///
    /// As for [`Credential::provider`](crate::Credential::provider).
    pub async fn client_builder(
        &self,
        options: &ConnectOptions,
    ) -> Result<ClientBuilder, ConnectError> {
        let credential = self.credential();
        let mut builder = match credential.authenticator()? {
            Some(authenticator) => {
                Client::builder_with_authenticator(self.url().to_string(), authenticator)
            }
            None => {
                Client::builder_shared(self.url().to_string(), credential.provider(options).await?)
            }
        };
        if let Some(version) = self.get("ApiVersion") {
            builder = builder.api_version(version);
        }
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
    /// As for [`Credential::provider`](crate::Credential::provider), and [`ConnectError::WebApi`] when the
    /// client cannot be built.
    pub async fn client_with(&self, options: &ConnectOptions) -> Result<Client, ConnectError> {
        Ok(self
            .client_builder(options)
            .await?
            .build()?
            .discover_api_version()
            .await?)
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
    /// use d365_connect::ConnectionString;
    /// use secrecy::SecretString;
    ///
    /// let client = ConnectionString::parse("AuthType=ExternalTokenManagement;Url=https://contoso.crm.dynamics.com")?
    ///     .into_client_with_token_callback(|_resource: String| async {
    ///         Ok(SecretString::from("a-token-from-elsewhere"))
    ///     })?;
    /// assert_eq!(client.org().as_str(), "https://contoso.crm.dynamics.com");
    /// # Ok::<(), d365_connect::ConnectError>(())
    /// ```
    pub fn into_client_with_token_callback<F, Fut>(
        self,
        callback: F,
    ) -> Result<Client, ConnectError>
    where
        F: Fn(String) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<SecretString, AuthError>> + Send + 'static,
    {
        if self.auth_type() != Some(AuthType::ExternalTokenManagement) {
            return Err(ConnectError::InvalidValue {
                key: "AuthType",
                problem: format!(
                    "a token callback is for AuthType=ExternalTokenManagement, and this string has AuthType={}",
                    self.auth_type().map_or("none", AuthType::as_str)
                ),
                fix: "write AuthType=ExternalTokenManagement, or connect without a callback"
                    .to_owned(),
            });
        }
        let provider = ExternalTokenProvider::new(callback);
        Ok(Client::builder(self.url().to_string(), provider).build()?)
    }
}

impl EnvironmentSettings {
    /// A [`Client`] for the organization, with the provider the variables describe.
    ///
    /// # Errors
    ///
    /// [`ConnectError::Environment`] when no URL is known (set `D365_URL` or call
    /// [`with_url`](Self::with_url)), and as for [`Credential::provider`](crate::Credential::provider).
    pub async fn client(&self, options: &ConnectOptions) -> Result<Client, ConnectError> {
        let url = self.url().ok_or_else(|| ConnectError::Environment {
            problem: format!("{URL_VARIABLE} is not set"),
            fix: format!("set {URL_VARIABLE} to the organization URL, such as https://contoso.crm.dynamics.com"),
        })?;
        let provider = self.credential().provider(options).await?;
        let mut builder = Client::builder_shared(url.to_string(), provider);
        if let Some(version) = self.credential().config().text("ApiVersion") {
            builder = builder.api_version(version);
        }
        if let Some(http) = &options.http {
            builder = builder.http_client(http.clone());
        }
        Ok(builder.build()?.discover_api_version().await?)
    }
}
