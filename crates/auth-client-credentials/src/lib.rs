//! The OAuth 2.0 client credentials grant for Microsoft Entra ID and AD FS: the
//! application gets a token as itself, for daemons, scheduled jobs and services.
//!
//! One builder, three credentials:
//! - a **client secret**, sent as `client_secret_post` (default) or `client_secret_basic`;
//! - a **certificate** (PEM or PKCS#12): a client assertion signed per request, PS256 with
//!   `x5t#S256` by default or RS256 with `x5t`, optionally with the `x5c` chain;
//! - an **external assertion**: your callback, or a federated token file
//!   (`AZURE_FEDERATED_TOKEN_FILE`) re-read when it changes.
//!
//! The builder catches the usual mistakes before any request: an empty secret, a secret
//! *ID* pasted instead of its value (a warning), a key that does not match its
//! certificate, an expired certificate, `common` as the tenant.
//!
//! [`REGISTRATION`] is the grant as configuration knows it (connection strings,
//! azure-identity's environment variables): `d365-connect` lists it with its
//! `client-credentials` feature.
//!
//! ```no_run
//! use d365_auth_client_credentials::{Certificate, ClientCredentials};
//! use d365_auth_core::{TokenCache, TokenRequest};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let grant = ClientCredentials::builder()
//!     .tenant("contoso.onmicrosoft.com")
//!     .client_id("00000000-0000-0000-0000-000000000001")
//!     .certificate(Certificate::from_pkcs12_file("app.pfx".as_ref(), &"pfx-password".into())?)
//!     .build()?;
//! let cache = TokenCache::new(grant);
//! let token = cache.get(&TokenRequest::for_url("https://contoso.crm.dynamics.com")?).await?;
//! # Ok(()) }
//! ```

// docs.rs labels each feature-gated item with its feature (`doc_cfg`, which took in
// `doc_auto_cfg` in 2025).
#![cfg_attr(docsrs, feature(doc_cfg))]

mod certificate;
mod external;
mod provider;
mod registration;

pub use certificate::{AssertionAlgorithm, Certificate};
pub use external::AssertionFuture;
pub use provider::{ClientCredentials, ClientCredentialsBuilder, SecretMethod};
pub use registration::{ClientCredentialsRegistration, REGISTRATION};

/// The README's examples, compiled (and run, unless marked `no_run`) as doctests so the
/// page a user reads first cannot drift from the API.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
