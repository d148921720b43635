//! For store authors, and for choosing a store: [`TokenStore`], where a
//! [`TokenCache`](crate::TokenCache) keeps tokens beyond its own memory, so that they can
//! be shared between caches and outlive a process;
//! [`MemoryStore`], the default; [`FileStore`], a JSON file for command lines; and
//! [`encode_token`]/[`decode_token`], the record format persistent stores share (the
//! Redis store in `d365-token-store-redis` writes it too); [`read_private_file`] and
//! [`replace_private_file`], how every file holding secrets is read and written;
//! [`EncryptionKey`], encryption at rest for persistent stores; [`Renewal`] and
//! [`RenewalLease`], how a store lets one process of a fleet renew a shared token while the
//! others wait (`docs/token-stores.md`).

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;

use async_trait::async_trait;

use crate::error::ErrorSource;
use crate::token::AccessToken;

mod crypto;
mod file;
mod private_file;
mod record;

pub use crypto::EncryptionKey;
pub use file::{FileStore, FileStoreBuilder};
pub use private_file::{read_private_file, replace_private_file};
pub use record::{decode_token, encode_token};

/// A place to keep tokens (with their refresh tokens) by key.
///
/// Keys are built by the cache from [`TokenProvider::cache_key`](crate::TokenProvider::cache_key)
/// and the request; they hold no secret. A store holds secrets: a persistent one must
/// protect them (file permissions, encryption) and must never log them.
///
/// Failures never reach the cache's callers: the cache logs them and carries on with
/// its memory and the provider.
#[async_trait]
pub trait TokenStore: Send + Sync + fmt::Debug {
    /// The token saved under `key`, if any (expired ones too: they may carry a refresh token).
    ///
    /// # Errors
    ///
    /// [`StoreError`] when the store cannot be read.
    async fn load(&self, key: &str) -> Result<Option<AccessToken>, StoreError>;

    /// Saves `token` under `key`, replacing what was there.
    ///
    /// # Errors
    ///
    /// [`StoreError`] when the store cannot be written.
    async fn save(&self, key: &str, token: &AccessToken) -> Result<(), StoreError>;

    /// Forgets the token under `key`.
    ///
    /// # Errors
    ///
    /// [`StoreError`] when the store cannot be written.
    async fn remove(&self, key: &str) -> Result<(), StoreError>;

    /// Asks for the right to renew the token under `key` while other processes sharing
    /// this store wait, so that a fleet renews a shared token once. A store that can
    /// coordinate waits (bounded) for another holder and answers [`Renewal::Lease`]; the
    /// cache then reads the store again — another process may have renewed meanwhile —
    /// and asks the identity provider only if it did not, saving the new token before it
    /// releases the lease. A store that cannot coordinate, or gives up waiting, answers
    /// [`Renewal::Alone`] (the default): the cache renews on its own, as without a store.
    ///
    /// With `wait` false (the cache still holds a valid token, so its callers need not
    /// wait), a store answers [`Renewal::Busy`] at once when another process holds the
    /// lease, and the cache keeps serving its token.
    ///
    /// A lease must end by itself when its holder dies (an OS lock, an expiring key).
    async fn begin_renewal(&self, key: &str, wait: bool) -> Renewal {
        let _ = (key, wait);
        Renewal::Alone
    }
}

/// What [`TokenStore::begin_renewal`] answers.
#[derive(Debug)]
#[non_exhaustive]
pub enum Renewal {
    /// This process holds the renewal lease for the key until it calls
    /// [`RenewalLease::release`] (or drops it, or dies).
    Lease(Box<dyn RenewalLease>),
    /// No coordination: renew alone.
    Alone,
    /// Another process is renewing and the caller asked not to wait.
    Busy,
}

/// The right to renew one key's token, held by one process at a time. Dropping it without
/// [`release`](RenewalLease::release) must release it too, at the latest when it expires.
#[async_trait]
pub trait RenewalLease: Send + fmt::Debug {
    /// Gives the lease back, so that waiting processes go on at once.
    async fn release(self: Box<Self>);
}

/// A store that could not be read or written.
#[derive(Clone, Debug, thiserror::Error)]
#[error("token store: {message}")]
pub struct StoreError {
    message: String,
    #[source]
    source: Option<ErrorSource>,
}

impl StoreError {
    /// An error saying what failed, with its cause.
    pub fn new(
        message: impl Into<String>,
        source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
    ) -> Self {
        Self {
            message: message.into(),
            source: source.map(ErrorSource::from),
        }
    }
}

/// Tokens in this process's memory. Share one `Arc<MemoryStore>` between caches so that
/// they share tokens; the default store of each [`TokenCache`](crate::TokenCache) is a
/// fresh one of its own.
#[derive(Default)]
pub struct MemoryStore {
    tokens: Mutex<HashMap<String, AccessToken>>,
}

impl MemoryStore {
    /// An empty store.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    fn tokens(&self) -> std::sync::MutexGuard<'_, HashMap<String, AccessToken>> {
        // A panic while holding the lock cannot leave the map half-written: every
        // operation on it is a single insert or remove.
        self.tokens
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryStore")
            .field("tokens", &self.tokens().len())
            .finish()
    }
}

#[async_trait]
impl TokenStore for MemoryStore {
    async fn load(&self, key: &str) -> Result<Option<AccessToken>, StoreError> {
        Ok(self.tokens().get(key).cloned())
    }

    async fn save(&self, key: &str, token: &AccessToken) -> Result<(), StoreError> {
        self.tokens().insert(key.to_owned(), token.clone());
        Ok(())
    }

    async fn remove(&self, key: &str) -> Result<(), StoreError> {
        self.tokens().remove(key);
        Ok(())
    }
}
