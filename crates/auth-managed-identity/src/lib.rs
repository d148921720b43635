//! Managed identity for Microsoft Entra ID: a program running in Azure — on a VM or scale
//! set, in AKS, in App Service or Functions — gets Dataverse tokens from the identity Azure
//! gives its host, with no secret to store, rotate or leak.
//!
//! [`ManagedIdentity`] is a [`TokenProvider`](d365_auth_core::TokenProvider):
//! - it asks the host's identity endpoint ([`ManagedIdentitySource`]): the instance metadata
//!   service (IMDS, `http://169.254.169.254/metadata/identity/oauth2/token` with
//!   `Metadata: true`) on VMs, scale sets and AKS nodes, or the endpoint App Service and
//!   Functions name in `IDENTITY_ENDPOINT`, with `X-IDENTITY-HEADER: {IDENTITY_HEADER}`;
//!   [`ManagedIdentityBuilder::from_environment`] finds which, as azure-identity does, and
//!   `AZURE_POD_IDENTITY_AUTHORITY_HOST` or the builder point it elsewhere (a local endpoint
//!   for tests);
//! - for the system-assigned identity, or a user-assigned one by client id, object id or
//!   resource id ([`ManagedIdentityId`]);
//! - it retries as Microsoft documents for IMDS — `404`, `410` (for at least 70 seconds),
//!   `429` (honouring `Retry-After`) and `5xx`, with exponential back-off and jitter, within
//!   one deadline ([`RetryPolicy`]) — and `429`/`5xx` a few times at App Service;
//! - where there is no managed identity, it says so fast: IMDS is probed once with a
//!   1-second timeout, and an endpoint that does not answer, or answers that the identity
//!   is not assigned (`400`), is
//!   [`ErrorKind::CredentialUnavailable`](d365_auth_core::ErrorKind::CredentialUnavailable),
//!   the error a chain of credentials moves on from;
//! - it never goes through a proxy and never follows a redirect; the App Service header is
//!   a secret, never in `Debug`, a log line, an error or a cache key.
//!
//! The tokens are app-only: Dataverse sees the identity's application user, with its
//! security roles. It depends on `d365-auth-core` alone; `d365-connect` enables it with the
//! `managed-identity` feature (`Grant=managed-identity`, `d365 --grant managed-identity`).
//!
//! ```no_run
//! use d365_auth_core::{ErrorKind, TokenCache, TokenRequest};
//! use d365_auth_managed_identity::ManagedIdentity;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let grant = ManagedIdentity::builder().from_environment().build()?;
//! let cache = TokenCache::new(grant);
//! let request = TokenRequest::for_url("https://contoso.crm.dynamics.com")?;
//! match cache.get(&request).await {
//!     Ok(token) => println!("valid until {:?}", token.expires_on()),
//!     Err(error) if error.kind() == ErrorKind::CredentialUnavailable => {
//!         eprintln!("not running in Azure with a managed identity: {error}");
//!     }
//!     Err(error) => return Err(error.into()),
//! }
//! # Ok(()) }
//! ```

// docs.rs labels each feature-gated item with its feature (`doc_cfg`, which took in
// `doc_auto_cfg` in 2025).
#![cfg_attr(docsrs, feature(doc_cfg))]

mod builder;
mod fetch;
mod identity;
mod provider;
mod registration;
mod retry;
mod source;

pub use builder::ManagedIdentityBuilder;
pub use identity::ManagedIdentityId;
pub use provider::ManagedIdentity;
pub use registration::{ManagedIdentityRegistration, REGISTRATION};
pub use retry::RetryPolicy;
pub use source::{IMDS_ENDPOINT, ManagedIdentitySource};

/// Compiles the examples of `docs/grants/managed-identity.md` as doc tests, so the guide
/// cannot drift from the API. Only built by `cargo test --doc`: the file is outside the
/// package.
#[cfg(doctest)]
#[doc = include_str!("../../../docs/grants/managed-identity.md")]
struct ManagedIdentityGuide;

/// The README's examples, compiled (and run, unless marked `no_run`) as doctests so the
/// page a user reads first cannot drift from the API.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
