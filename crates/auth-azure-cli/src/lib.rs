//! A Dataverse token from the developer's own Azure CLI sign-in: the credential for local
//! development and scripts, where a person has run `az login` and nothing else is set up.
//!
//! [`AzureCli`] is a [`TokenProvider`](d365_auth_core::TokenProvider):
//! - it runs `az account get-access-token --output json --resource {org}/` (with `--tenant`
//!   and `--subscription` when given) — found on `PATH` (`az.cmd` first on Windows), started
//!   directly with no shell, stdin closed, in `/bin` (`%SYSTEMROOT%` on Windows), with
//!   `AZURE_CORE_NO_COLOR=true`;
//! - it stops the process after a timeout (10 s unless set, as azure-identity's
//!   `process_timeout`) and reads at most 1 MiB of its output and of its errors;
//! - it reads the expiry from `expires_on` (Azure CLI 2.54 and later), else from the token's
//!   own `exp` claim, else from `expiresOn` in local time when the local offset is known;
//! - it fails with [`AuthError::Unavailable`](d365_auth_core::AuthError::Unavailable)
//!   (`is_unavailable()`) when `az` is not installed or not signed in, so a chain of
//!   credentials moves on; with an error carrying the AADSTS code and Entra ID's sentence
//!   when Entra ID refused; and with a typed error naming the timeout, an oversized or
//!   unreadable answer, or the Azure CLI's own (cleaned) message otherwise. No error quotes
//!   the token.
//!
//! The token is the signed-in developer's: delegated (`scp`), with their Dataverse security
//! roles. Never use it in production — a service uses the client credentials grant or a
//! managed identity. It depends on `d365-auth-core` alone.
//!
//! ```no_run
//! use d365_auth_core::{TokenCache, TokenRequest};
//! use d365_auth_azure_cli::AzureCli;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let grant = AzureCli::builder().tenant("contoso.onmicrosoft.com").build()?;
//! let cache = TokenCache::new(grant);
//! match cache.get(&TokenRequest::for_url("https://contoso.crm.dynamics.com")?).await {
//!     Ok(token) => println!("valid until {:?}", token.expires_on()),
//!     Err(error) if error.is_unavailable() => eprintln!("no Azure CLI sign-in: {error}"),
//!     Err(error) => return Err(error.into()),
//! }
//! # Ok(()) }
//! ```

// docs.rs labels each feature-gated item with its feature (`doc_cfg`, which took in
// `doc_auto_cfg` in 2025).
#![cfg_attr(docsrs, feature(doc_cfg))]

mod builder;
mod output;
mod process;
mod provider;
mod redact;
mod registration;

pub use builder::{AzureCliBuilder, DEFAULT_TIMEOUT};
pub use provider::AzureCli;
pub use registration::{AzureCliRegistration, REGISTRATION};

/// Compiles the examples of `docs/grants/azure-cli.md` as doc tests, so the guide cannot
/// drift from the API. Only built by `cargo test --doc`: the file is outside the package.
#[cfg(doctest)]
#[doc = include_str!("../../../docs/grants/azure-cli.md")]
struct AzureCliGuide;

/// The README's examples, compiled (and run, unless marked `no_run`) as doctests so the
/// page a user reads first cannot drift from the API.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
