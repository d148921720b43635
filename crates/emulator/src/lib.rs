//! A local emulator of Microsoft Entra ID (and, next, the Dataverse Web API) for offline
//! development and tests.
//!
//! The emulator is an independent server-side implementation of the protocol: it shares no
//! code with the `d365` client crates, so that a misreading of the protocol in one is caught
//! by the other. It serves, on 127.0.0.1:
//!
//! - `POST /{tenant}/oauth2/token` (v1, `resource=`) and `POST /{tenant}/oauth2/v2.0/token`
//!   (v2, `scope=`) with the `client_credentials`, `password` and `refresh_token` grants;
//! - OIDC discovery, JWKS, instance discovery and user realm, so that unmodified MSAL and
//!   azure-identity get tokens from it (over https, instance discovery off);
//! - Entra-shaped errors with the real AADSTS codes;
//! - an admin API under `/_emulator/` to change the directory while it runs.
//!
//! ```no_run
//! # async fn demo() -> Result<(), d365_emulator::EmulatorError> {
//! use d365_emulator::Emulator;
//!
//! let emulator = Emulator::builder().https(true).start().await?;
//! let seeded = emulator.seeded().expect("seeded by default");
//! println!("{} {}", emulator.token_endpoint_v2(), seeded.confidential_app.client_id);
//! emulator.shutdown().await;
//! # Ok(())
//! # }
//! ```
//!
//! See `docs/emulator.md` for the seeded identities, the configuration file and the list of
//! Entra behaviours it reproduces.

mod admin;
mod config;
mod directory;
mod error;
mod identity;
mod keys;
mod seed;
mod server;
mod state;
mod validation;

pub use config::{
    AppConfig, CertificateConfig, EmulatorConfig, SecretConfig, TenantConfig, UserConfig,
};
pub use error::EmulatorError;
pub use seed::{
    SeededCertificateApp, SeededIdentities, SeededPublicApp, SeededSecretApp, SeededTenant,
    SeededUser,
};
pub use server::{Emulator, EmulatorBuilder};
pub use validation::{TokenRejection, TokenValidator, TokenVersion, ValidatedToken};
