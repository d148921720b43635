//! The one road from configuration to a token provider for the Dataverse Web API.
//!
//! Every source of configuration — ServiceClient connection strings ([`ConnectionString`]),
//! azure-identity environment variables ([`EnvironmentSettings`]), command-line flags and
//! saved profiles (the `d365` command line stores connection strings) — parses into one
//! credential description, a [`Credential`] (a grant found in the [`Registry`] and the
//! [`GrantConfig`](d365_auth_core::grant::GrantConfig) it reads), and one function,
//! [`Credential::provider`], turns it into an `Arc<dyn TokenProvider>`.
//!
//! Each grant crate contributes its part — its keys, its checks, its construction —
//! through its [`GrantRegistration`](d365_auth_core::grant::GrantRegistration), and this
//! crate's cargo features decide which are registered: `client-credentials`, `password`,
//! `device-code`, `interactive`, `azure-cli`, `managed-identity` (all on by default).
//! Nothing here lists what a grant needs: adding a grant adds a crate and a feature line.
//!
//! With the `webapi` feature (on by default), [`connect`] and friends hand back a
//! `d365_webapi::Client`:
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let client = d365_connect::connect(
//!     "AuthType=ClientSecret;Url=https://contoso.crm.dynamics.com;TenantId=contoso.onmicrosoft.com;ClientId=00000000-0000-0000-0000-0000000000c1;ClientSecret=...",
//! )
//! .await?;
//! println!("{}", client.who_am_i().await?.user_id);
//! # Ok(()) }
//! ```
//!
//! [`discover_authority`] and [`BearerChallenge`] find the authority from the
//! organization's `401` challenge when the configuration names no tenant, as ServiceClient
//! does. `docs/connection-strings.md` is the guide.

// docs.rs labels each feature-gated item with its feature (`doc_cfg`, which took in
// `doc_auto_cfg` in 2025).
#![cfg_attr(docsrs, feature(doc_cfg))]

mod auth_type;
mod build;
mod chain;
mod challenge;
#[cfg(feature = "webapi")]
mod client;
mod credential;
mod environment;
mod error;
mod external;
mod grammar;
mod keys;
mod registry;
mod string;

pub use auth_type::{AuthType, AuthTypeParseError};
pub use build::{ConnectOptions, provider_from_connection_string};
pub use chain::{DefaultChain, RememberedSignIn};
pub use challenge::{BearerChallenge, discover_authority, discover_challenge};
#[cfg(feature = "webapi")]
pub use client::{connect, connect_from_environment, connect_with};
pub use credential::Credential;
pub use environment::{EnvironmentSettings, GRANT_VARIABLE, URL_VARIABLE};
pub use error::ConnectError;
pub use external::{DEFAULT_EXTERNAL_TOKEN_LIFETIME, ExternalTokenProvider, TokenCallbackFuture};
pub use registry::Registry;
pub use string::ConnectionString;

/// The guide `docs/connection-strings.md`, compiled as doc tests so its examples stay true.
#[cfg(doctest)]
#[doc = include_str!("../../../docs/connection-strings.md")]
struct ConnectionStringsGuide;

/// The README's examples, compiled (and run, unless marked `no_run`) as doctests so the
/// page a user reads first cannot drift from the API.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
