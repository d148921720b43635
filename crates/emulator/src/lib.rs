//! A local emulator of Microsoft Entra ID and the Dataverse Web API for offline development
//! and tests.
//!
//! The emulator is an independent server-side implementation of the protocol: it shares no
//! code with the `d365` client crates, so that a misreading of the protocol in one is caught
//! by the other. It serves, on 127.0.0.1:
//!
//! - `POST /{tenant}/oauth2/token` (v1, `resource=`) and `POST /{tenant}/oauth2/v2.0/token`
//!   (v2, `scope=`) with the `client_credentials`, `password` and `refresh_token` grants,
//!   and on v2 the device code grant: `POST /{tenant}/oauth2/v2.0/devicecode`, a
//!   verification page at `/devicelogin`, and [`DeviceCodes`] to approve codes from code;
//! - the browser sign-in (authorization code with PKCE): `GET /{tenant}/oauth2/v2.0/authorize`
//!   (and v1 `/{tenant}/oauth2/authorize`) shows a sign-in page, and the code it sends back
//!   is redeemed at the token endpoints with `grant_type=authorization_code`;
//! - managed identity endpoints in the IMDS (`/metadata/identity/oauth2/token`) and App
//!   Service (`/msi/token`) shapes, with fault modes for retry tests
//!   ([`ManagedIdentityHost`]);
//! - OIDC discovery, JWKS, instance discovery and user realm, so that unmodified MSAL and
//!   azure-identity get tokens from it (over https, instance discovery off);
//! - Entra-shaped errors with the real AADSTS codes;
//! - the Dataverse Web API under `/api/data/v9.2/` on the same base URL (the organization
//!   URL): WhoAmI, CRUD, upsert, alternate keys, `$ref`, queries with keyset paging,
//!   FetchXML, `$batch`, ETags, application users and security roles, service protection
//!   limits and fault injection, over SQLite (in memory or a file);
//! - an admin API under `/_emulator/` to change the directory, the organization, limits and
//!   faults while it runs.
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

// docs.rs labels each feature-gated item with its feature (`doc_cfg`, which took in
// `doc_auto_cfg` in 2025).
#![cfg_attr(docsrs, feature(doc_cfg))]

mod admin;
mod builder;
mod config;
mod connection;
mod credentials;
mod dataverse;
mod device_codes;
mod directory;
mod emulator;
mod error;
mod identity;
mod keys;
mod managed_identity;
mod on_premises;
mod seed;
mod server;
mod state;
mod tls;
mod validation;

pub use builder::EmulatorBuilder;
pub use config::{
    AppConfig, CertificateConfig, EmulatorConfig, ManagedIdentityConfig, SecretConfig,
    TenantConfig, UserConfig,
};
pub use connection::{ConnectionString, connection_strings};
pub use dataverse::faults::FaultConfig;
pub use dataverse::ledger::DataverseStats;
pub use dataverse::limits::ServiceLimits;
pub use dataverse::schema::{
    ColumnConfig, ColumnType, KeyConfig, OptionConfig, SchemaConfig, TableConfig,
};
pub use device_codes::{DeviceCodeInfo, DeviceCodeStatus, DeviceCodes};
pub use emulator::Emulator;
pub use error::EmulatorError;
pub use managed_identity::{ManagedIdentityFault, ManagedIdentityHost};
pub use on_premises::{DEFAULT_SERVER_VERSION, OnPremises};
pub use seed::{
    SeededCertificateApp, SeededIdentities, SeededManagedIdentity, SeededOrganization,
    SeededPublicApp, SeededSecretApp, SeededTenant, SeededUser,
};
pub use validation::{TokenRejection, TokenValidator, TokenVersion, ValidatedToken};

/// The README's examples, compiled (and run, unless marked `no_run`) as doctests so the
/// page a user reads first cannot drift from the API.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

/// `docs/emulator.md`'s Rust snippet, compiled as a doctest so that the guide cannot drift.
#[cfg(doctest)]
#[doc = include_str!("../../../docs/emulator.md")]
struct EmulatorGuide;
