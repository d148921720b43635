//! The `connect` feature: a token provider and a [`Client`](crate::Client) from a
//! ServiceClient-style connection string or from the azure-identity environment variables.
//!
//! - [`ConnectionString`]: the ADO.NET grammar, every ServiceClient key and alias, d365's
//!   own keys, checked per `AuthType`; secrets redacted in `Debug`, `Display` and errors.
//! - [`connect`], [`connect_with`], [`provider_from_connection_string`]: from a string to a
//!   client or a provider. `ClientSecret` and `Certificate` (from a file) become the client
//!   credentials grant, `OAuth` with `Username`/`Password` the password grant,
//!   `ExternalTokenManagement` your callback ([`ExternalTokenProvider`]).
//! - [`discover_authority`], [`BearerChallenge`]: the authority from the organization's
//!   `401` challenge, used when the string names no tenant, as ServiceClient does.
//! - [`EnvironmentSettings`], [`connect_from_environment`]: `D365_URL` and the `AZURE_*`
//!   variables.
//!
//! `docs/connection-strings.md` is the guide.

mod auth_type;
mod build;
mod challenge;
mod environment;
mod error;
mod external;
mod grammar;
mod keys;
mod string;

pub use auth_type::{AuthType, AuthTypeParseError};
pub use build::{ConnectOptions, connect, connect_with, provider_from_connection_string};
pub use challenge::{BearerChallenge, discover_authority, discover_challenge};
pub use environment::{
    EnvironmentCredentialKind, EnvironmentSettings, URL_VARIABLE, connect_from_environment,
};
pub use error::ConnectError;
pub use external::{DEFAULT_EXTERNAL_TOKEN_LIFETIME, ExternalTokenProvider, TokenCallbackFuture};
pub use string::ConnectionString;

/// The guide `docs/connection-strings.md`, compiled as doc tests so its examples stay true.
#[cfg(doctest)]
#[doc = include_str!("../../../../docs/connection-strings.md")]
struct ConnectionStringsGuide;
