//! The token abstraction every d365 grant and the Dataverse Web API client share.
//!
//! Three audiences, three places:
//!
//! - **Consumers** (an application, the Web API client) find what they need here at the
//!   root: [`TokenProvider`], the trait every grant implements; [`AccessToken`];
//!   [`TokenCache`], single-flight caching with early renewal; [`TokenRequest`] and
//!   [`Resource`] (an organization URL in any common form); [`Authority`], [`Tenant`],
//!   [`Cloud`] to configure grants; [`AuthError`] with its [`ErrorKind`], grouped into a
//!   handful of [`ErrorCategory`]s, and the AADSTS code with a hint.
//! - **Grant authors** find the token-endpoint client, forms, the shared builder part,
//!   refresh-token renewal and registration with configuration in [`grant`].
//! - **Store authors** find [`TokenStore`](store::TokenStore), the record format and safe
//!   file helpers in [`store`].
//!
//! auth-core names no particular grant: a grant is a `grant_type` on the wire and a crate
//! of its own (`docs/extending.md`).
//!
//! # Example
//!
//! ```no_run
//! use d365_auth_core::grant::{
//!     ClientCredential, ClientKind, TokenEndpointClient, TokenForm, credential_fingerprint,
//! };
//! use d365_auth_core::{
//!     async_trait, AccessToken, Authority, AuthError, EndpointVersion, Grant, Tenant,
//!     TokenCache, TokenProvider, TokenRequest,
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
//!         let form = TokenForm::new("client_credentials", &self.client_id)
//!             .credential(ClientCredential::SecretPost(&self.secret))
//!             .target(request, ClientKind::Confidential, &endpoint);
//!         self.http.send(&endpoint, &form).await?.into_access_token(request)
//!     }
//!
//!     fn grant(&self) -> Grant {
//!         Grant::new("client_credentials")
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

// docs.rs labels each feature-gated item with its feature (`doc_cfg`, which took in
// `doc_auto_cfg` in 2025).
#![cfg_attr(docsrs, feature(doc_cfg))]

mod aadsts;
mod authority;
mod cache;
mod client_settings;
mod connection_auth;
mod endpoint;
mod error;
mod fingerprint;
mod provider;
mod registration;
mod renewal;
mod resource;
mod settings;
mod tls;
mod token;
mod urls;

pub mod grant;
pub mod store;

pub use async_trait::async_trait;
pub use authority::{Authority, Cloud, EndpointVersion, Tenant, TokenEndpoint};
pub use cache::{TokenCache, TokenCacheBuilder};
pub use connection_auth::{ConnectionAuthenticator, SendLimits};
pub use error::{AuthError, ConfigError, ErrorCategory, ErrorKind};
pub use provider::{Grant, TokenProvider};
pub use resource::{Resource, TokenRequest};
pub use token::AccessToken;

/// What [`grant::client_setters!`] expands to needs, under a path of this crate.
#[doc(hidden)]
pub mod __private {
    pub use reqwest;
}

/// The README's examples, compiled (and run, unless marked `no_run`) as doctests so the
/// page a user reads first cannot drift from the API.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
