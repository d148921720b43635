//! State shared by every request handler: the directory, runtime settings, the signing key and
//! the server-side memory of refresh tokens, used assertion ids, device codes, sign-ins
//! waiting at the sign-in page, authorization codes, and the managed identity host's secret
//! header and fault queue.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

use crate::directory::Directory;
use crate::keys::SigningKey;
use crate::managed_identity::ManagedIdentityState;
use crate::on_premises::OnPremises;

/// Lifetime Entra gives access tokens by default (seconds).
pub(crate) const DEFAULT_TOKEN_LIFETIME_SECS: u64 = 3599;

/// How long clients wait between polls of a device code, as Entra says by default (seconds).
pub(crate) const DEFAULT_DEVICE_CODE_INTERVAL_SECS: u64 = 5;
/// How long a device code lives, as Entra's default `expires_in` (seconds).
pub(crate) const DEFAULT_DEVICE_CODE_LIFETIME_SECS: u64 = 900;
/// How long an authorization code lives: "about ten minutes", as Entra documents (seconds).
pub(crate) const DEFAULT_AUTHORIZATION_CODE_LIFETIME_SECS: u64 = 600;
/// How long a sign-in page stays usable after the authorize request that opened it.
pub(crate) const SIGN_IN_LIFETIME: Duration = Duration::from_secs(3600);
/// The most sign-ins waiting at the page, and the most authorization codes remembered:
/// past it the oldest is forgotten, so a flood of requests cannot fill memory.
const MAX_SIGN_IN_RECORDS: usize = 10_000;
/// How long a spent or expired authorization code is remembered, so that a late second
/// redemption still answers AADSTS54005 or 70008 rather than "unknown".
const KEEP_CODES_AFTER_EXPIRY: Duration = Duration::from_secs(600);

#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) token_lifetime_secs: u64,
    /// The `interval` of new device codes (at least 1: Entra speaks whole seconds).
    pub(crate) device_code_interval_secs: u64,
    /// The `expires_in` of new device codes.
    pub(crate) device_code_lifetime_secs: u64,
    /// The lifetime of new authorization codes.
    pub(crate) authorization_code_lifetime_secs: u64,
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

/// How a PKCE code challenge was derived from the verifier (RFC 7636 §4.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PkceMethod {
    Plain,
    S256,
}

/// The PKCE challenge of an authorization request.
#[derive(Debug, Clone)]
pub(crate) struct Pkce {
    pub(crate) challenge: String,
    pub(crate) method: PkceMethod,
}

/// How the browser is sent back to the app (`response_mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ResponseMode {
    Query,
    Fragment,
    FormPost,
}

/// What a browser sign-in asks for: one resource, its permissions, and the OpenID Connect
/// scopes.
#[derive(Debug, Clone)]
pub(crate) struct SignInTarget {
    pub(crate) resource: String,
    pub(crate) permissions: Vec<String>,
    pub(crate) openid: bool,
    pub(crate) profile: bool,
    pub(crate) offline_access: bool,
}

/// An authorization request waiting for a person at the sign-in page. The page carries only
/// the random key of this record; every parameter stays here, server-side.
#[derive(Debug, Clone)]
pub(crate) struct PendingSignIn {
    /// Whether it came to the v2 authorize endpoint (else v1).
    pub(crate) v2: bool,
    pub(crate) tenant_id: String,
    pub(crate) client_id: String,
    /// The redirect URI as requested (it matched a registered one), normalized.
    pub(crate) redirect_uri: String,
    pub(crate) response_mode: ResponseMode,
    pub(crate) state: Option<String>,
    pub(crate) nonce: Option<String>,
    pub(crate) pkce: Option<Pkce>,
    pub(crate) target: SignInTarget,
    pub(crate) login_hint: Option<String>,
    pub(crate) created: Instant,
}

/// An authorization code issued at the end of a sign-in, and everything it is bound to. The
/// map holds it under the SHA-256 of the code, never the code itself.
#[derive(Debug, Clone)]
pub(crate) struct AuthorizationCodeGrant {
    pub(crate) tenant_id: String,
    pub(crate) client_id: String,
    pub(crate) user_object_id: String,
    pub(crate) redirect_uri: String,
    pub(crate) target: SignInTarget,
    pub(crate) nonce: Option<String>,
    pub(crate) pkce: Option<Pkce>,
    pub(crate) expires_at: Instant,
    pub(crate) redeemed: bool,
}

/// Forgets the oldest entries of `map` until it has room for one more.
fn make_room<T>(map: &mut HashMap<String, T>, age: impl Fn(&T) -> Instant) {
    while map.len() >= MAX_SIGN_IN_RECORDS {
        let oldest = map
            .iter()
            .min_by_key(|(_, value)| age(value))
            .map(|(key, _)| key.clone());
        match oldest {
            Some(key) => {
                map.remove(&key);
            }
            None => break,
        }
    }
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
    /// Sign-ins waiting at the sign-in page, by the random id the page carries.
    sign_ins: Mutex<HashMap<String, PendingSignIn>>,
    /// Authorization codes, by the SHA-256 (hex) of the code.
    authorization_codes: Mutex<HashMap<String, AuthorizationCodeGrant>>,
    /// The managed identity endpoints' secret header and fault queue.
    pub(crate) managed_identity: ManagedIdentityState,
    /// The on-premises deployment played, if any: AD FS instead of Entra ID, the
    /// organization under a path.
    pub(crate) on_premises: Option<OnPremises>,
    /// Token requests served, by client id (`""` when the request named none).
    token_requests: Mutex<HashMap<String, u64>>,
    /// The Dataverse organizations tokens are issued for (normalized URLs): the emulator's
    /// own and the registered ones.
    organizations: RwLock<Vec<String>>,
}

/// An organization URL or token resource in one comparable form: lower case, no trailing
/// slash (`https://Contoso.crm.dynamics.com/` → `https://contoso.crm.dynamics.com`).
pub(crate) fn normalize_resource(resource: &str) -> String {
    resource.trim().trim_end_matches('/').to_ascii_lowercase()
}

/// Microsoft Graph, the one resource besides organizations every tenant knows.
const GRAPH: [&str; 2] = [
    "https://graph.microsoft.com",
    "00000003-0000-0000-c000-000000000000",
];

impl AppState {
    pub(crate) fn new(
        base_url: String,
        signing: Arc<SigningKey>,
        directory: Directory,
        settings: Settings,
        on_premises: Option<OnPremises>,
    ) -> Self {
        Self {
            base_url,
            signing,
            directory: RwLock::new(directory),
            settings: RwLock::new(settings),
            refresh_tokens: Mutex::new(HashMap::new()),
            seen_assertions: Mutex::new(HashMap::new()),
            device_codes: Mutex::new(Vec::new()),
            sign_ins: Mutex::new(HashMap::new()),
            authorization_codes: Mutex::new(HashMap::new()),
            managed_identity: ManagedIdentityState::new(),
            on_premises,
            token_requests: Mutex::new(HashMap::new()),
            organizations: RwLock::new(Vec::new()),
        }
    }

    /// Counts one request to a token endpoint (Entra's v1 and v2, AD FS's, the managed
    /// identity endpoints), whatever its outcome. The number of distinct clients counted
    /// is capped, so a flood of made-up client ids cannot grow the map without bound.
    pub(crate) fn count_token_request(&self, client_id: Option<&str>) {
        const MAX_CLIENTS: usize = 10_000;
        let client = client_id.unwrap_or_default().to_ascii_lowercase();
        let mut counts = self
            .token_requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if counts.len() >= MAX_CLIENTS && !counts.contains_key(&client) {
            *counts.entry("(other)".to_owned()).or_default() += 1;
            return;
        }
        *counts.entry(client).or_default() += 1;
    }

    /// The token requests served so far, by client id.
    pub(crate) fn token_requests(&self) -> HashMap<String, u64> {
        self.token_requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Forgets the counts.
    pub(crate) fn reset_token_requests(&self) {
        self.token_requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }

    /// Registers Dataverse organizations (URLs) tokens may be issued for.
    pub(crate) fn register_organizations<'a>(&self, urls: impl IntoIterator<Item = &'a str>) {
        let mut organizations = self
            .organizations
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        for url in urls {
            let url = normalize_resource(url);
            if !url.is_empty() && !organizations.contains(&url) {
                organizations.push(url);
            }
        }
    }

    /// Whether `resource` is a registered Dataverse organization.
    pub(crate) fn is_organization(&self, resource: &str) -> bool {
        let resource = normalize_resource(resource);
        self.organizations
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(&resource)
    }

    /// Whether tokens may be issued for `resource`: a registered organization, or Microsoft
    /// Graph.
    pub(crate) fn is_known_resource(&self, resource: &str) -> bool {
        self.is_organization(resource) || GRAPH.contains(&normalize_resource(resource).as_str())
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

    pub(crate) fn set_authorization_code_lifetime(&self, seconds: u64) {
        self.settings
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .authorization_code_lifetime_secs = seconds;
    }

    /// Keeps a sign-in for the page under `id`.
    pub(crate) fn add_sign_in(&self, id: String, sign_in: PendingSignIn) {
        let mut sign_ins = self.sign_ins();
        make_room(&mut sign_ins, |pending| pending.created);
        sign_ins.insert(id, sign_in);
    }

    /// The sign-ins waiting at the page, those older than [`SIGN_IN_LIFETIME`] forgotten.
    pub(crate) fn sign_ins(&self) -> MutexGuard<'_, HashMap<String, PendingSignIn>> {
        let mut sign_ins = self.sign_ins.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        sign_ins
            .retain(|_, pending| now.saturating_duration_since(pending.created) < SIGN_IN_LIFETIME);
        sign_ins
    }

    /// Remembers an authorization code under `key` (the SHA-256 of the code).
    pub(crate) fn add_authorization_code(&self, key: String, grant: AuthorizationCodeGrant) {
        let mut codes = self.authorization_codes();
        make_room(&mut codes, |grant| grant.expires_at);
        codes.insert(key, grant);
    }

    /// The authorization codes, those expired more than ten minutes ago forgotten.
    pub(crate) fn authorization_codes(
        &self,
    ) -> MutexGuard<'_, HashMap<String, AuthorizationCodeGrant>> {
        let mut codes = self
            .authorization_codes
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        codes.retain(|_, grant| grant.expires_at + KEEP_CODES_AFTER_EXPIRY > now);
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
