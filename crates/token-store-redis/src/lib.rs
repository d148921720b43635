//! A Redis [`TokenStore`](d365_auth_core::store::TokenStore) for d365: a fleet of workers shares
//! one token per app (and per user, for delegated grants) instead of each asking Entra ID
//! for its own, which Entra throttles (`AADSTS50196`).
//!
//! - [`RedisStore`]: the store, configured with [`RedisStoreBuilder`]. Keys are
//!   `d365:token:{provider cache key}|{request key}`; each key expires with its token (or,
//!   when the token carries a refresh token, after the refresh-token TTL).
//! - [`EncryptionKey`]: optional AES-256-GCM encryption at rest with a key you supply.
//! - [`RedisStoreError`]: what can be wrong with the configuration.
//!
//! Redis being down or slow never fails a token request: the store gives up after short
//! timeouts (500 ms by default), and the [`TokenCache`](d365_auth_core::TokenCache) logs
//! the failure and carries on with its memory and the identity provider.
//!
//! # Example
//!
//! ```no_run
//! use std::sync::Arc;
//! use d365_auth_core::{TokenCache, TokenProvider, TokenRequest};
//! use d365_token_store_redis::{EncryptionKey, RedisStore};
//!
//! # async fn run(provider: impl TokenProvider + 'static) -> Result<(), Box<dyn std::error::Error>> {
//! let store = RedisStore::builder(std::env::var("D365_REDIS_URL")?)
//!     .encryption_key(EncryptionKey::from_base64(&std::env::var("D365_TOKEN_KEY")?)?)
//!     .build()?;
//! let cache = TokenCache::builder(provider).store(Arc::new(store)).build();
//! let token = cache.get(&TokenRequest::for_url("https://contoso.crm.dynamics.com")?).await?;
//! # Ok(()) }
//! ```

// docs.rs labels each feature-gated item with its feature (`doc_cfg`, which took in
// `doc_auto_cfg` in 2025).
#![cfg_attr(docsrs, feature(doc_cfg))]

mod error;
mod store;

/// The encryption key of persistent token stores (from `d365-auth-core`).
pub use d365_auth_core::store::EncryptionKey;
pub use error::RedisStoreError;
pub use store::{DEFAULT_KEY_PREFIX, RedisStore, RedisStoreBuilder};

/// The README's examples, compiled (and run, unless marked `no_run`) as doctests so the
/// page a user reads first cannot drift from the API.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
