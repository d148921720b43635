//! The token abstraction every d365 grant and the Dataverse Web API client share.
//!
//! - [`TokenProvider`]: the trait a grant implements (`request_token`, `grant`), object
//!   safe so that consumers hold an `Arc<dyn TokenProvider>`.
//! - [`AccessToken`]: a token with its expiry, cheap to clone, never shown by `Debug`.
//! - [`Resource`] and [`TokenRequest`]: an organization URL in any common form, and the
//!   v2 scope or v1 resource derived from it.
//! - [`Authority`]: Entra ID in each cloud, a custom host, or AD FS, and its token endpoints.
//! - [`TokenEndpointClient`] and [`TokenForm`]: the token-endpoint client grants share
//!   (with `post_form` for a grant's other endpoints, such as device authorization, and
//!   [`TokenResponse::into_renewed_token`] for refresh-token reuse).
//! - [`TokenCache`]: single-flight caching with early refresh, over a [`TokenStore`].
//! - [`AuthError`]: typed errors with the AADSTS code and a hint, including the polling
//!   errors of the device code grant and [`AuthError::Cancelled`] for grants that wait for
//!   a person.
//!
//! A new grant is a crate that depends on this one alone: see `docs/extending.md`.
//!
//! # Example
//!
//! ```no_run
//! use d365_auth_core::{
//!     async_trait, AccessToken, Authority, AuthError, ClientCredential, ClientKind, EndpointVersion,
//!     Grant, Tenant, TokenCache, TokenEndpointClient, TokenForm, TokenProvider, TokenRequest,
//!     credential_fingerprint,
//! };
//! use secrecy::{ExposeSecret as _, SecretString};
//!
//! #[derive(Debug)]
//! struct MySecretGrant {
//!     authority: Authority,
//!     client_id: String,
//!     secret: SecretString,
//!     http: TokenEndpointClient,
//! }
//!
//! #[async_trait]
//! impl TokenProvider for MySecretGrant {
//!     async fn request_token(&self, request: &TokenRequest) -> Result<AccessToken, AuthError> {
//!         let endpoint = self.authority.token_endpoint(EndpointVersion::V2);
//!         let form = TokenForm::client_credentials(&self.client_id)
//!             .credential(ClientCredential::SecretPost(&self.secret))
//!             .target(request, ClientKind::Confidential, &endpoint);
//!         Ok(self.http.send(&endpoint, &form).await?.into_access_token(request))
//!     }
//!
//!     fn grant(&self) -> Grant {
//!         Grant::ClientCredentials
//!     }
//!
//!     fn cache_key(&self) -> String {
//!         // A token got with another secret must never be served to this provider.
//!         let secret = credential_fingerprint("client_secret", self.secret.expose_secret().as_bytes());
//!         format!("{}|{}|{secret}", self.authority, self.client_id)
//!     }
//! }
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let grant = MySecretGrant {
//!     authority: Authority::public_cloud(Tenant::parse("contoso.onmicrosoft.com")?),
//!     client_id: "00000000-0000-0000-0000-000000000001".into(),
//!     secret: std::env::var("CLIENT_SECRET")?.into(),
//!     http: TokenEndpointClient::new(),
//! };
//! let cache = TokenCache::new(grant);
//! let token = cache.get(&TokenRequest::for_url("https://contoso.crm.dynamics.com")?).await?;
//! # Ok(()) }
//! ```

mod aadsts;
mod authority;
mod cache;
mod endpoint;
mod error;
mod fingerprint;
mod provider;
mod resource;
mod settings;
mod store;
mod token;
mod urls;

pub use async_trait::async_trait;
pub use authority::{Authority, Cloud, EndpointVersion, TargetParameter, Tenant, TokenEndpoint};
pub use cache::{TokenCache, TokenCacheBuilder};
pub use endpoint::{
    ClientCredential, TokenEndpointClient, TokenEndpointClientBuilder, TokenForm, TokenResponse,
    classify_error_response, default_http_client,
};
pub use error::{AuthError, ConfigError, ErrorKind, ErrorSource, IdentityError};
pub use fingerprint::credential_fingerprint;
pub use provider::{Grant, TokenProvider};
pub use resource::{ClientKind, Resource, TokenRequest};
pub use settings::{AuthoritySettings, ResolvedAuthority};
pub use store::{
    FileStore, FileStoreBuilder, MemoryStore, StoreError, TokenStore, decode_token, encode_token,
    read_private_file, replace_private_file,
};
pub use token::{AccessToken, AccessTokenBuilder};
