//! For grant authors: what a new grant crate needs from auth-core, in one place.
//!
//! - [`TokenEndpointClient`] and [`TokenForm`]: post any `grant_type` with its client
//!   authentication ([`ClientCredential`]) and target (scope or resource), read the answer
//!   into a [`TokenResponse`] or a typed error; [`TokenEndpointClient::post_form`] for a
//!   grant's other endpoints.
//! - [`ClientSettings`] and [`client_setters!`]: the part of a builder every grant shares
//!   (authority, client id, HTTP client, timeout), with its setters generated;
//!   [`AuthoritySettings`] resolves the authority with the grant's own tenant rule.
//! - [`RefreshTokenRenewal`]: redeem refresh tokens, sign in again only when refused.
//! - [`http_client_builder`] and [`default_http_client`]: the HTTP client every default
//!   client of d365 starts from (rustls with the platform verifier, the root certificates
//!   read on the first TLS handshake rather than when a client is built).
//! - [`credential_fingerprint`]: what a provider's cache key carries of its credential.
//! - [`ConnectionAuthenticator`] and [`SendLimits`]: for a credential proven on the
//!   connection rather than with a token (Windows sign-in).
//! - [`GrantRegistration`], [`GrantConfig`], [`SettingKey`]: how configuration (connection
//!   strings, environment variables, flags, profiles) reaches the grant through
//!   `d365-connect`, without anyone listing grants.
//!
//! `docs/extending.md` walks through a complete grant built with these.

pub use crate::__client_setters as client_setters;
pub use crate::authority::{TargetParameter, TokenEndpoint};
pub use crate::client_settings::ClientSettings;
pub use crate::connection_auth::{ConnectionAuthenticator, SendLimits};
pub use crate::endpoint::{
    ClientCredential, TokenEndpointClient, TokenEndpointClientBuilder, TokenForm, TokenResponse,
    classify_error_response, default_http_client,
};
pub use crate::error::{ErrorSource, IdentityError};
pub use crate::fingerprint::credential_fingerprint;
pub use crate::registration::{CLIENT_SECRET, GrantConfig, GrantRegistration, SettingKey};
pub use crate::renewal::{OFFLINE_ACCESS, RefreshTokenRenewal};
pub use crate::resource::ClientKind;
pub use crate::settings::{AuthoritySettings, ResolvedAuthority};
pub use crate::tls::http_client_builder;
pub use crate::token::{AccessTokenBuilder, UnsendableToken};
