//! The OAuth 2.0 device authorization grant (RFC 8628, "device code") for Microsoft Entra
//! ID: a person signs in in a browser — on their phone or laptop, with MFA and Conditional
//! Access — and the tool gets a Dataverse token acting as them.
//!
//! [`DeviceCode`] is a [`TokenProvider`](d365_auth_core::TokenProvider):
//! - it asks `{authority}/oauth2/v2.0/devicecode` for a code and hands the page and the code
//!   to your callback as a [`DeviceCodeMessage`] (which never holds the device code, the
//!   grant's secret);
//! - it polls the token endpoint every `interval` (5 seconds unless the server says), adds
//!   5 seconds after each `slow_down`, keeps going on `authorization_pending`, and stops
//!   when the person signs in, declines (`ErrorKind::AuthorizationDeclined`), the code
//!   expires (`ErrorKind::CodeExpired`, after `expires_in`), or you cancel with a
//!   [`CancelHandle`] or by dropping the future (`ErrorKind::Cancelled`);
//! - it asks for `offline_access` and keeps the refresh token on the
//!   [`AccessToken`](d365_auth_core::AccessToken), so a
//!   [`TokenCache`](d365_auth_core::TokenCache) renews without showing a new code until the
//!   refresh token is refused;
//! - a public client by default (scope `{org}/user_impersonation`), or a confidential one
//!   with its secret (`{org}/.default`), in any Microsoft cloud or on a custom host such as
//!   the d365 emulator; `consumers` and AD FS are refused by the builder, saying why.
//!
//! It is the grant for people, and what to use when the password grant fails on MFA
//! (AADSTS50076) or federation. It depends on `d365-auth-core` alone: `docs/extending.md`
//! walks through it as the worked example of adding a grant.
//!
//! ```no_run
//! use d365_auth_core::{ErrorKind, TokenCache, TokenRequest};
//! use d365_auth_device_code::DeviceCode;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let grant = DeviceCode::builder()
//!     .tenant("contoso.onmicrosoft.com")
//!     .client_id("51f81489-12ee-4a9e-aaae-a2591f45987d")
//!     .on_message(|message| eprintln!("{message}"))
//!     .build()?;
//! let cache = TokenCache::new(grant);
//! let request = TokenRequest::for_url("https://contoso.crm.dynamics.com")?;
//! match cache.get(&request).await {
//!     Ok(token) => println!("valid until {:?}", token.expires_on()),
//!     Err(error) if error.kind() == ErrorKind::CodeExpired => eprintln!("too slow: {error}"),
//!     Err(error) => return Err(error.into()),
//! }
//! # Ok(()) }
//! ```

// docs.rs labels each feature-gated item with its feature (`doc_cfg`, which took in
// `doc_auto_cfg` in 2025).
#![cfg_attr(docsrs, feature(doc_cfg))]

mod builder;
mod cancel;
mod flow;
mod message;
mod provider;
mod registration;

pub use builder::DeviceCodeBuilder;
pub use cancel::CancelHandle;
pub use message::DeviceCodeMessage;
pub use provider::DeviceCode;
pub use registration::{DeviceCodeRegistration, REGISTRATION, SAMPLE_CLIENT_ID, ShowDeviceCode};

/// Compiles the examples of `docs/grants/device-code.md` as doc tests, so the guide cannot
/// drift from the API. Only built by `cargo test --doc`: the file is outside the package.
#[cfg(doctest)]
#[doc = include_str!("../../../docs/grants/device-code.md")]
struct DeviceCodeGuide;

/// The README's examples, compiled (and run, unless marked `no_run`) as doctests so the
/// page a user reads first cannot drift from the API.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
