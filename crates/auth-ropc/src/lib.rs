//! The OAuth 2.0 resource owner password credentials (ROPC) grant for Microsoft Entra ID
//! and AD FS: a user's name and password exchanged for a Dataverse token.
//!
//! [`UsernamePassword`] is a [`TokenProvider`](d365_auth_core::TokenProvider):
//! - a public client (scope `{org}/user_impersonation`) or a confidential one with its
//!   client secret (scope `{org}/.default`), on the v2 endpoint (default) or v1, in any
//!   Microsoft cloud, on a custom host such as the d365 emulator, or on AD FS;
//! - it asks for `offline_access` and keeps the refresh token it receives on the
//!   [`AccessToken`](d365_auth_core::AccessToken), so a
//!   [`TokenCache`](d365_auth_core::TokenCache) renews with the refresh token and the
//!   password is sent once per refresh-token lifetime; a refused refresh token falls back
//!   to the password;
//! - before the password is sent, it asks Entra ID's user realm endpoint whether the user
//!   is federated to another identity provider and refuses such users
//!   ([`is_federated_user`]), since the password grant cannot sign them in;
//! - the builder refuses the `common` and `consumers` tenants (Entra answers
//!   AADSTS9001023) and empty names and passwords, before any request.
//!
//! Microsoft recommends against this grant. It fails for users who must use multi-factor
//! authentication (AADSTS50076, 50079), federated users and personal accounts. Use the
//! client credentials grant (`d365-auth-client-credentials`) for unattended jobs, and the
//! device code grant for people. `docs/grants/ropc.md` has the details.
//!
//! ```no_run
//! use d365_auth_core::{ErrorKind, TokenCache, TokenRequest};
//! use d365_auth_ropc::UsernamePassword;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let grant = UsernamePassword::builder()
//!     .tenant("contoso.onmicrosoft.com")
//!     .client_id("51f81489-12ee-4a9e-aaae-a2591f45987d")
//!     .username("ana@contoso.com")
//!     .password(std::env::var("D365_PASSWORD")?.into())
//!     .build()?;
//! let cache = TokenCache::new(grant);
//! let request = TokenRequest::for_url("https://contoso.crm.dynamics.com")?;
//! match cache.get(&request).await {
//!     Ok(token) => println!("valid until {:?}", token.expires_on()),
//!     Err(error) if error.kind() == ErrorKind::MfaRequired => {
//!         eprintln!("{error}"); // says to use client credentials or the device code grant
//!     }
//!     Err(error) => return Err(error.into()),
//! }
//! # Ok(()) }
//! ```

// docs.rs labels each feature-gated item with its feature (`doc_cfg`, which took in
// `doc_auto_cfg` in 2025).
#![cfg_attr(docsrs, feature(doc_cfg))]

mod builder;
mod provider;
mod realm;
mod registration;

pub use builder::UsernamePasswordBuilder;
pub use provider::{UsernamePassword, is_federated_user};
pub use registration::{
    ON_PREMISES_TOOLS_CLIENT_ID, PasswordRegistration, REGISTRATION, SAMPLE_CLIENT_ID,
};

/// Compiles the examples of `docs/grants/ropc.md` as doc tests, so the guide cannot drift
/// from the API. Only built by `cargo test --doc`: the file is outside the package.
#[cfg(doctest)]
#[doc = include_str!("../../../docs/grants/ropc.md")]
struct RopcGuide;

/// The README's examples, compiled (and run, unless marked `no_run`) as doctests so the
/// page a user reads first cannot drift from the API.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
