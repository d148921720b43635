//! State shared by every request handler: the directory, runtime settings, the signing key and
//! the server-side memory of refresh tokens, used assertion ids and device codes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

use crate::directory::Directory;
use crate::keys::SigningKey;

/// Lifetime Entra gives access tokens by default (seconds).
pub(crate) const DEFAULT_TOKEN_LIFETIME_SECS: u64 = 3599;

/// How long clients wait between polls of a device code, as Entra says by default (seconds).
pub(crate) const DEFAULT_DEVICE_CODE_INTERVAL_SECS: u64 = 5;
/// How long a device code lives, as Entra's default `expires_in` (seconds).
pub(crate) const DEFAULT_DEVICE_CODE_LIFETIME_SECS: u64 = 900;

#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) token_lifetime_secs: u64,
    /// The `interval` of new device codes (at least 1: Entra speaks whole seconds).
    pub(crate) device_code_interval_secs: u64,
    /// The `expires_in` of new device codes.
    pub(crate) device_code_lifetime_secs: u64,
}

/// Where a device code stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DeviceCodeState {
    /// Waiting for a person at the verification page (or the admin API).
    Pending,
    /// Approved by this user; the next poll redeems it.
    Approved { user_object_id: String, upn: String },
    /// Declined; every poll answers `authorization_declined`.
    Declined,
    /// Redeemed for a token; it cannot be used again.
    Redeemed { upn: String },
}

/// A device authorization (RFC 8628): the secret device code the client polls with, the
/// user code a person types, and what the sign-in is for.
#[derive(Debug, Clone)]
pub(crate) struct DeviceCodeGrant {
    pub(crate) device_code: String,
    pub(crate) user_code: String,
    pub(crate) tenant_id: String,
    pub(crate) client_id: String,
    /// The `scope` of the device authorization request, as sent.
    pub(crate) scope: String,
    pub(crate) issued: Instant,
    pub(crate) lifetime: Duration,
    /// The polling interval the client must keep; grows by 5 s with each `slow_down`.
    pub(crate) interval: Duration,
    pub(crate) last_poll: Option<Instant>,
    pub(crate) polls: u32,
    pub(crate) slow_downs: u32,
    /// Answer the next poll with `slow_down` whatever its timing (set by the admin API).
    pub(crate) slow_down_next: bool,
    pub(crate) state: DeviceCodeState,
}

impl DeviceCodeGrant {
    pub(crate) fn expires_at(&self) -> Instant {
        self.issued + self.lifetime
    }

    pub(crate) fn is_expired(&self, now: Instant) -> bool {
        now >= self.expires_at()
    }
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
    /// Device codes issued and not yet forgotten (kept ten minutes past their expiry).
    device_codes: Mutex<Vec<DeviceCodeGrant>>,
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
            device_codes: Mutex::new(Vec::new()),
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

    pub(crate) fn set_device_code_interval(&self, seconds: u64) {
        self.settings
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .device_code_interval_secs = seconds;
    }

    pub(crate) fn set_device_code_lifetime(&self, seconds: u64) {
        self.settings
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .device_code_lifetime_secs = seconds;
    }

    /// The device codes, with those that expired more than ten minutes ago forgotten (a
    /// late poll of a recently expired code still answers `expired_token`).
    pub(crate) fn device_codes(&self) -> MutexGuard<'_, Vec<DeviceCodeGrant>> {
        const KEEP_AFTER_EXPIRY: Duration = Duration::from_secs(600);
        let mut codes = self
            .device_codes
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        codes.retain(|code| code.expires_at() + KEEP_AFTER_EXPIRY > now);
        codes
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
