//! The OAuth 2.0 authorization code grant with PKCE (RFC 6749 §4.1, RFC 7636) for Microsoft
//! Entra ID and AD FS 2019: a person signs in in the system browser — with MFA,
//! Conditional Access, a federated account — and the program gets a Dataverse token acting
//! as them. What `az login`, `pac auth create` and MSAL's `acquire_token_interactive` do.
//!
//! [`AuthorizationCode`] is a [`TokenProvider`](d365_auth_core::TokenProvider):
//! - it listens on a loopback port (`http://localhost:{any free port}/`, RFC 8252), opens
//!   the system browser on the authorize endpoint with an S256 code challenge and a random
//!   `state` and `nonce`, and hands the address to your callback ([`SignInUrl`]) — what a
//!   command line prints when no browser can open;
//! - the browser comes back with the code (or the identity provider's refusal); a page
//!   there tells the person they are done; an answer with another `state` is refused and
//!   the listener keeps waiting, at most the sign-in timeout (5 minutes);
//! - it redeems the code with the verifier, checks the ID token's `nonce`, keeps the
//!   refresh token, and renews with it: the browser opens again only when it is refused.
//!
//! `d365-connect` builds it for `AuthType=OAuth` connection strings without a password,
//! `Grant=interactive` and `d365 --grant interactive` ([`REGISTRATION`]).
//!
//! ```no_run
//! use d365_auth_authorization_code::AuthorizationCode;
//! use d365_auth_core::{TokenCache, TokenRequest};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let grant = AuthorizationCode::builder()
//!     .tenant("contoso.onmicrosoft.com")
//!     .client_id(d365_auth_authorization_code::DEFAULT_CLIENT_ID)
//!     .on_sign_in_url(|sign_in| eprintln!("{sign_in}"))
//!     .build()?;
//! let cache = TokenCache::new(grant);
//! let token = cache.get(&TokenRequest::for_url("https://contoso.crm.dynamics.com")?).await?;
//! println!("valid until {:?}", token.expires_on());
//! # Ok(()) }
//! ```

// docs.rs labels each feature-gated item with its feature (`doc_cfg`, which took in
// `doc_auto_cfg` in 2025).
#![cfg_attr(docsrs, feature(doc_cfg))]

mod authorize;
mod browser;
mod builder;
mod flow;
mod id_token;
mod listener;
mod pages;
mod pkce;
mod provider;
mod registration;

pub use authorize::Prompt;
pub use browser::SignInUrl;
pub use builder::{AuthorizationCodeBuilder, DEFAULT_SIGN_IN_TIMEOUT};
pub use provider::AuthorizationCode;
pub use registration::{DEFAULT_CLIENT_ID, InteractiveRegistration, REGISTRATION, ShowSignInUrl};

/// Compiles the examples of `docs/grants/interactive.md` as doc tests, so the guide cannot
/// drift from the API. Only built by `cargo test --doc`: the file is outside the package.
#[cfg(doctest)]
#[doc = include_str!("../../../docs/grants/interactive.md")]
struct InteractiveGuide;

/// The README's examples, compiled (and run, unless marked `no_run`) as doctests so the
/// page a user reads first cannot drift from the API.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
