//! State shared by every request handler: the directory, runtime settings, the signing key and
//! the server-side memory of refresh tokens and used assertion ids.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::directory::Directory;
use crate::keys::SigningKey;

/// Lifetime Entra gives access tokens by default (seconds).
pub(crate) const DEFAULT_TOKEN_LIFETIME_SECS: u64 = 3599;

#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) token_lifetime_secs: u64,
}

/// What a refresh token stands for. The token itself is an opaque random key into a map.
#[derive(Debug, Clone)]
pub(crate) struct RefreshGrant {
    pub(crate) tenant_id: String,
    pub(crate) client_id: String,
    pub(crate) user_object_id: String,
    pub(crate) resource: String,
    pub(crate) permissions: Vec<String>,
    pub(crate) expires_at: i64,
}

#[derive(Debug)]
pub(crate) struct AppState {
    /// `http(s)://127.0.0.1:port`, no trailing slash.
    pub(crate) base_url: String,
    pub(crate) signing: Arc<SigningKey>,
    directory: RwLock<Directory>,
    settings: RwLock<Settings>,
    refresh_tokens: Mutex<HashMap<String, RefreshGrant>>,
    /// Client assertion `jti` values seen, with the assertion's expiry (Unix seconds).
    seen_assertions: Mutex<HashMap<String, i64>>,
}

impl AppState {
    pub(crate) fn new(
        base_url: String,
        signing: Arc<SigningKey>,
        directory: Directory,
        settings: Settings,
    ) -> Self {
        Self {
            base_url,
            signing,
            directory: RwLock::new(directory),
            settings: RwLock::new(settings),
            refresh_tokens: Mutex::new(HashMap::new()),
            seen_assertions: Mutex::new(HashMap::new()),
        }
    }

    // A handler that panicked half-way leaves plain data behind, never a broken invariant
    // worth refusing every later request for, so poisoning is ignored.
    pub(crate) fn directory(&self) -> RwLockReadGuard<'_, Directory> {
        self.directory
            .read()
            .unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn directory_mut(&self) -> RwLockWriteGuard<'_, Directory> {
        self.directory
            .write()
            .unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn settings(&self) -> Settings {
        self.settings
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub(crate) fn set_token_lifetime(&self, seconds: u64) {
        self.settings
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .token_lifetime_secs = seconds;
    }

    pub(crate) fn refresh_tokens(&self) -> MutexGuard<'_, HashMap<String, RefreshGrant>> {
        self.refresh_tokens
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Records an assertion id; `false` when it was already used and has not expired yet.
    pub(crate) fn remember_assertion(&self, jti: &str, expires_at: i64, now: i64) -> bool {
        let mut seen = self
            .seen_assertions
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        seen.retain(|_, expiry| *expiry >= now);
        if seen.contains_key(jti) {
            return false;
        }
        seen.insert(jti.to_owned(), expires_at);
        true
    }
}
