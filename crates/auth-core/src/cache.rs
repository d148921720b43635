//! [`TokenCache`]: wraps any provider, answers hits from memory without taking a lock, and
//! makes sure that however many callers miss at once, one request goes out.
//!
//! Per request there is a slot: the current entry (behind a `std` read-write lock) and a
//! flight lock that serializes requests to the provider. Callers that wait on a flight take
//! its outcome, success or failure, instead of sending their own request: 1,000 callers on
//! a cold key cause one request, and if it fails, one failure.
//!
//! Hits do not touch the slots: every change to an entry also republishes a read-only map
//! of the usable entries (copy on write, through `arc-swap`), and a hit is one load of that
//! map, a lookup and an `Arc` clone. A lock word, even a read lock's, is written by every
//! reader, so callers on different cores would take turns owning its cache line; entries
//! change once per token lifetime, so copying the small map then costs nothing that counts.

use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant, SystemTime};

use arc_swap::ArcSwap;
use async_trait::async_trait;

use crate::error::AuthError;
use crate::provider::{Grant, TokenProvider};
use crate::resource::TokenRequest;
use crate::store::{MemoryStore, Renewal, StoreError, TokenStore};
use crate::token::AccessToken;

/// Renew this long before expiry, as MSAL does.
const DEFAULT_REFRESH_BEFORE_EXPIRY: Duration = Duration::from_secs(5 * 60);
/// After a failed early refresh, keep serving the current token this long before trying again.
const DEFAULT_RETRY_FAILED_REFRESH_AFTER: Duration = Duration::from_secs(30);

/// A caching [`TokenProvider`] around another one.
///
/// - A hit reads a published map without a lock and clones an `Arc`; it never calls the
///   provider, and hits from many threads do not wait for each other.
/// - A miss, or an expired token, is single-flight: concurrent callers share one request
///   and its outcome.
/// - A token is renewed early: at the identity provider's `refresh_on`, or
///   `refresh_before_expiry` (5 minutes) before it expires, but never before half of its
///   remaining lifetime, so short-lived tokens do not cause a request per call.
/// - While a token is due but still valid, one caller renews it and the others keep
///   using it; if renewal fails, the current token is served until it expires and the
///   failure is logged as a warning.
/// - [`invalidate`](TokenCache::invalidate) drops a token the resource server rejected.
/// - Tokens are also saved in a [`TokenStore`] (a private [`MemoryStore`] unless one is
///   given), so caches and processes that share a store share tokens.
///
/// Cloning is cheap and clones share the cache.
///
/// # Examples
///
/// ```no_run
/// # use d365_auth_core::{TokenCache, TokenProvider, TokenRequest};
/// # async fn run(provider: impl TokenProvider + 'static) -> Result<(), Box<dyn std::error::Error>> {
/// let cache = TokenCache::new(provider);
/// let request = TokenRequest::for_url("https://contoso.crm.dynamics.com")?;
/// let token = cache.request_token(&request).await?; // one request to the identity provider
/// let again = cache.request_token(&request).await?; // from memory
/// assert!(token.same_token(&again));
/// # Ok(()) }
/// ```
pub struct TokenCache<P> {
    shared: Arc<Shared<P>>,
}

struct Shared<P> {
    provider: P,
    store: Arc<dyn TokenStore>,
    /// `provider.cache_key()`, computed once: it prefixes every store key.
    partition: String,
    refresh_before_expiry: Duration,
    retry_failed_refresh_after: Duration,
    slots: RwLock<HashMap<TokenRequest, Arc<Slot>>>,
    /// The entries hits may be served from, republished whole on every change.
    hits: ArcSwap<HitMap>,
}

/// What a hit reads: every request's current, not rejected entry. Applications call one
/// or a few organizations, and comparing a handful of keys is cheaper than hashing one, so
/// the entries are scanned until there are more than [`HitMap::SCAN_LIMIT`].
#[derive(Clone, Default)]
struct HitMap {
    entries: Vec<(TokenRequest, Entry)>,
    index: Option<HashMap<TokenRequest, usize, BuildHasherDefault<KeyHasher>>>,
}

impl HitMap {
    const SCAN_LIMIT: usize = 8;

    fn new(entries: Vec<(TokenRequest, Entry)>) -> Self {
        let index = (entries.len() > Self::SCAN_LIMIT).then(|| {
            entries
                .iter()
                .enumerate()
                .map(|(position, (request, _))| (request.clone(), position))
                .collect()
        });
        Self { entries, index }
    }

    fn get(&self, request: &TokenRequest) -> Option<&Entry> {
        match &self.index {
            Some(index) => index
                .get(request)
                .map(|&position| &self.entries[position].1),
            None => self
                .entries
                .iter()
                .find(|(key, _)| key == request)
                .map(|(_, entry)| entry),
        }
    }

    /// A copy with `request`'s entry replaced by `entry`, or removed.
    fn with(&self, request: &TokenRequest, entry: Option<&Entry>) -> Self {
        let mut entries: Vec<_> = self
            .entries
            .iter()
            .filter(|(key, _)| key != request)
            .cloned()
            .collect();
        entries.extend(entry.map(|entry| (request.clone(), entry.clone())));
        Self::new(entries)
    }

    /// A copy without the entries that hold `token`.
    fn without_token(&self, token: &AccessToken) -> Self {
        Self::new(
            self.entries
                .iter()
                .filter(|(_, entry)| !entry.token.same_token(token))
                .cloned()
                .collect(),
        )
    }

    fn holds_token(&self, token: &AccessToken) -> bool {
        self.entries
            .iter()
            .any(|(_, entry)| entry.token.same_token(token))
    }
}

/// The keys are organization URLs the application chose, not attacker input, so SipHash's
/// resistance to flooding buys nothing here, while its cost would be a large share of a
/// hit. This mixes eight bytes per step, as rustc's FxHasher does.
#[derive(Default)]
struct KeyHasher(u64);

impl KeyHasher {
    const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(Self::SEED);
    }
}

impl Hasher for KeyHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut words = bytes.chunks_exact(8);
        for word in &mut words {
            let mut buffer = [0; 8];
            buffer.copy_from_slice(word);
            self.add(u64::from_le_bytes(buffer));
        }
        let mut tail = [0; 8];
        tail[..words.remainder().len()].copy_from_slice(words.remainder());
        self.add(u64::from_le_bytes(tail));
    }

    fn write_u8(&mut self, byte: u8) {
        self.add(u64::from(byte));
    }

    fn write_usize(&mut self, value: usize) {
        self.add(value as u64);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// Everything the cache knows about one request.
#[derive(Default)]
struct Slot {
    entry: RwLock<Option<Entry>>,
    /// Held while a request to the provider is in flight.
    flight: tokio::sync::Mutex<()>,
    /// Counts finished flights, so a waiter can tell that one finished while it waited.
    flights_finished: AtomicU64,
    /// The outcome of the last finished flight, handed to the callers that waited on it.
    last_outcome: Mutex<Option<Result<AccessToken, AuthError>>>,
    /// When an early refresh last failed.
    refresh_failed_at: Mutex<Option<Instant>>,
}

#[derive(Clone)]
struct Entry {
    token: AccessToken,
    refresh_at: SystemTime,
    /// The resource server refused it; kept only for its refresh token.
    rejected: bool,
}

impl Entry {
    fn is_fresh(&self, now: SystemTime) -> bool {
        !self.rejected && now < self.refresh_at
    }

    fn is_usable(&self, now: SystemTime) -> bool {
        !self.rejected && !self.token.is_expired_at(now)
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Every critical section here is a single assignment, so a panic elsewhere cannot
    // leave the data half-written: recovering from poison is safe.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(PoisonError::into_inner)
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(PoisonError::into_inner)
}

impl Slot {
    fn current(&self) -> Option<Entry> {
        read(&self.entry).clone()
    }

    fn fresh_token(&self, now: SystemTime) -> Option<AccessToken> {
        read(&self.entry)
            .as_ref()
            .filter(|entry| entry.is_fresh(now))
            .map(|entry| entry.token.clone())
    }

    fn usable_token(&self, now: SystemTime) -> Option<AccessToken> {
        read(&self.entry)
            .as_ref()
            .filter(|entry| entry.is_usable(now))
            .map(|entry| entry.token.clone())
    }

    fn finish_flight(&self, outcome: &Result<AccessToken, AuthError>) {
        *lock(&self.last_outcome) = Some(outcome.clone());
        self.flights_finished.fetch_add(1, Ordering::AcqRel);
    }
}

/// When to renew `token`, received at `now`: the planned point, moved earlier by a random
/// share (up to a tenth) of the time until it, so that the processes of a
/// fleet sharing a store do not all come due in the same second — the first one past its
/// point renews for all of them.
fn refresh_at(token: &AccessToken, now: SystemTime, refresh_before_expiry: Duration) -> SystemTime {
    let expires_on = token.expires_on();
    let by_skew = expires_on.checked_sub(refresh_before_expiry).unwrap_or(now);
    let halfway = now + token.remaining_at(now) / 2;
    let planned = by_skew.max(halfway);
    // The identity provider's own advice wins when it is earlier.
    let planned = token
        .refresh_on()
        .map_or(planned, |refresh_on| refresh_on.min(planned));
    let spread = planned.duration_since(now).unwrap_or_default() / 10;
    let earlier = spread.mul_f64(random_unit());
    planned.checked_sub(earlier).unwrap_or(planned).max(now)
}

/// A random number in `[0, 1)` from the operating system's generator (a constant when it
/// fails, which only loses the spreading).
fn random_unit() -> f64 {
    let mut bytes = [0_u8; 8];
    if getrandom::fill(&mut bytes).is_err() {
        return 0.5;
    }
    // 53 random bits make every double in [0, 1) equally likely.
    (u64::from_le_bytes(bytes) >> 11) as f64 / (1_u64 << 53) as f64
}

impl<P: TokenProvider> TokenCache<P> {
    /// A cache around `provider` with the default settings and a private memory store.
    pub fn new(provider: P) -> Self {
        Self::builder(provider).build()
    }

    /// Configures a cache around `provider`.
    pub fn builder(provider: P) -> TokenCacheBuilder<P> {
        TokenCacheBuilder {
            provider,
            store: None,
            refresh_before_expiry: DEFAULT_REFRESH_BEFORE_EXPIRY,
            retry_failed_refresh_after: DEFAULT_RETRY_FAILED_REFRESH_AFTER,
        }
    }

    /// The provider behind the cache.
    pub fn provider(&self) -> &P {
        &self.shared.provider
    }

    /// A token for `request`: from memory when fresh, else from the store or the provider.
    ///
    /// # Errors
    ///
    /// The provider's [`AuthError`] when no valid token is at hand and the request failed.
    pub async fn get(&self, request: &TokenRequest) -> Result<AccessToken, AuthError> {
        if let Some(token) = self.hit(request, SystemTime::now()) {
            return Ok(token);
        }
        let slot = self.slot(request);
        self.renew(&slot, request).await
    }

    fn hit(&self, request: &TokenRequest, now: SystemTime) -> Option<AccessToken> {
        self.shared
            .hits
            .load()
            .get(request)
            .filter(|entry| entry.is_fresh(now))
            .map(|entry| entry.token.clone())
    }

    fn slot(&self, request: &TokenRequest) -> Arc<Slot> {
        if let Some(slot) = read(&self.shared.slots).get(request) {
            return Arc::clone(slot);
        }
        Arc::clone(
            write(&self.shared.slots)
                .entry(request.clone())
                .or_default(),
        )
    }

    /// Changes the entry for `request` and republishes it for hits. The slot's write lock
    /// is held while publishing, so the published map follows the slot's changes in order.
    fn update_entry(
        &self,
        request: &TokenRequest,
        slot: &Slot,
        change: impl FnOnce(&mut Option<Entry>),
    ) {
        let mut entry = write(&slot.entry);
        change(&mut entry);
        let published = entry.clone().filter(|entry| !entry.rejected);
        self.shared
            .hits
            .rcu(|hits| hits.with(request, published.as_ref()));
    }

    /// Drops `token` because the resource server rejected it (HTTP 401): the next call
    /// gets a new one. Returns whether the cache held it.
    pub async fn invalidate(&self, token: &AccessToken) -> bool {
        let slots: Vec<(TokenRequest, Arc<Slot>)> = read(&self.shared.slots)
            .iter()
            .map(|(request, slot)| (request.clone(), Arc::clone(slot)))
            .collect();
        let mut found = Vec::new();
        for (request, slot) in &slots {
            let holds_it = read(&slot.entry)
                .as_ref()
                .is_some_and(|entry| entry.token.same_token(token));
            if holds_it {
                self.update_entry(request, slot, |entry| {
                    if let Some(entry) =
                        entry.as_mut().filter(|entry| entry.token.same_token(token))
                    {
                        entry.rejected = true;
                    }
                });
                found.push(request.clone());
            }
        }
        // An entry published by a flight that finished after `clear` has no slot any more.
        if self.shared.hits.load().holds_token(token) {
            self.shared.hits.rcu(|hits| hits.without_token(token));
        }
        for request in &found {
            let key = self.store_key(request);
            if let Err(error) = self.shared.store.remove(&key).await {
                tracing::warn!(%error, "could not remove a rejected token from the token store");
            }
        }
        if !found.is_empty() {
            tracing::debug!(grant = %self.shared.provider.grant(), "token invalidated after the resource rejected it");
        }
        !found.is_empty()
    }

    /// The token this cache holds for `request` without asking the provider: the one in
    /// memory, else the one in the store — expired ones too, since they may carry a refresh
    /// token. For showing who is signed in, or deciding whether a sign-in is remembered.
    ///
    /// # Errors
    ///
    /// [`StoreError`] when the store cannot be read.
    pub async fn stored(&self, request: &TokenRequest) -> Result<Option<AccessToken>, StoreError> {
        let in_memory = read(&self.shared.slots)
            .get(request)
            .and_then(|slot| slot.current())
            .map(|entry| entry.token);
        match in_memory {
            Some(token) => Ok(Some(token)),
            None => self.shared.store.load(&self.store_key(request)).await,
        }
    }

    /// Forgets the token for `request` in memory and in the store: a sign-out. The next
    /// [`get`](Self::get) asks the provider.
    ///
    /// # Errors
    ///
    /// [`StoreError`] when the store cannot be written (memory is cleared anyway).
    pub async fn forget(&self, request: &TokenRequest) -> Result<(), StoreError> {
        let slot = write(&self.shared.slots).remove(request);
        if let Some(slot) = slot {
            self.update_entry(request, &slot, |entry| *entry = None);
        }
        self.shared.hits.rcu(|hits| hits.with(request, None));
        self.shared.store.remove(&self.store_key(request)).await
    }

    /// Forgets every token held in memory (the store is left as it is).
    pub fn clear(&self) {
        let mut slots = write(&self.shared.slots);
        slots.clear();
        self.shared.hits.store(Arc::default());
    }

    async fn renew(&self, slot: &Slot, request: &TokenRequest) -> Result<AccessToken, AuthError> {
        let now = SystemTime::now();
        let current = slot.current();
        match current.as_ref().filter(|entry| entry.is_usable(now)) {
            Some(entry) => self.refresh_early(slot, request, &entry.token).await,
            None => {
                self.fetch_blocking(slot, request, current.map(|entry| entry.token))
                    .await
            }
        }
    }

    /// The token is due but valid: one caller renews it, everyone else keeps using it.
    async fn refresh_early(
        &self,
        slot: &Slot,
        request: &TokenRequest,
        current: &AccessToken,
    ) -> Result<AccessToken, AuthError> {
        let Ok(_flight) = slot.flight.try_lock() else {
            return Ok(current.clone());
        };
        let now = SystemTime::now();
        if let Some(token) = slot.fresh_token(now) {
            return Ok(token);
        }
        let failed_recently = lock(&slot.refresh_failed_at)
            .is_some_and(|at| at.elapsed() < self.shared.retry_failed_refresh_after);
        if failed_recently {
            return Ok(current.clone());
        }
        // The token is still valid: if another process is renewing it, keep serving it
        // rather than waiting; a later call finds the new one in the store.
        let Some(outcome) = self.fetch_shared(slot, request, Some(current), false).await else {
            return Ok(current.clone());
        };
        slot.finish_flight(&outcome);
        match outcome {
            Ok(token) => {
                *lock(&slot.refresh_failed_at) = None;
                Ok(token)
            }
            Err(error) => {
                *lock(&slot.refresh_failed_at) = Some(Instant::now());
                let remaining = current.remaining_at(SystemTime::now()).as_secs();
                tracing::warn!(
                    grant = %self.shared.provider.grant(),
                    resource = %request.resource(),
                    remaining_secs = remaining,
                    %error,
                    "token refresh failed; serving the current token until it expires"
                );
                Ok(current.clone())
            }
        }
    }

    /// No valid token: wait for the one flight, or be it.
    async fn fetch_blocking(
        &self,
        slot: &Slot,
        request: &TokenRequest,
        previous: Option<AccessToken>,
    ) -> Result<AccessToken, AuthError> {
        let finished_before = slot.flights_finished.load(Ordering::Acquire);
        let _flight = slot.flight.lock().await;
        if let Some(token) = slot.usable_token(SystemTime::now()) {
            return Ok(token);
        }
        if slot.flights_finished.load(Ordering::Acquire) != finished_before
            && let Some(outcome) = lock(&slot.last_outcome).clone()
        {
            return outcome;
        }
        let previous = match self.load_from_store(request, previous.as_ref()).await {
            Stored::Usable(token) => {
                let outcome = Ok(token.clone());
                slot.finish_flight(&outcome);
                self.remember(slot, request, &token);
                return outcome;
            }
            Stored::Previous(token) => Some(token),
            Stored::Nothing => previous,
        };
        let outcome = self
            .fetch_shared(slot, request, previous.as_ref(), true)
            .await
            .unwrap_or_else(|| {
                Err(AuthError::unavailable(
                    "the token store",
                    "it answered that another process is renewing although asked to wait",
                    "fix the store: asked to wait, it must wait or answer Renewal::Alone",
                ))
            });
        slot.finish_flight(&outcome);
        outcome
    }

    /// Renews across processes: under the store's renewal lease when it grants one, the
    /// token another process saved meanwhile is taken instead of asking the provider; a
    /// new token is saved before the lease is released, so the processes waiting for it
    /// find it. The token is installed either way. `None` when `wait` is false, another
    /// process holds the lease, and no newer token is saved yet.
    async fn fetch_shared(
        &self,
        slot: &Slot,
        request: &TokenRequest,
        previous: Option<&AccessToken>,
        wait: bool,
    ) -> Option<Result<AccessToken, AuthError>> {
        let key = self.store_key(request);
        let lease = match self.shared.store.begin_renewal(&key, wait).await {
            Renewal::Lease(lease) => Some(lease),
            Renewal::Alone => None,
            Renewal::Busy => {
                // Someone else is renewing (or just checking): its token may be saved already.
                let token = self.renewed_elsewhere(&key, previous).await?;
                self.remember(slot, request, &token);
                return Some(Ok(token));
            }
        };
        if lease.is_some()
            && let Some(token) = self.renewed_elsewhere(&key, previous).await
        {
            tracing::debug!(grant = %self.shared.provider.grant(), "another process renewed the token; using it");
            self.remember(slot, request, &token);
            if let Some(lease) = lease {
                lease.release().await;
            }
            return Some(Ok(token));
        }
        let outcome = self.fetch(request, previous).await;
        if let Ok(token) = &outcome {
            self.install(slot, request, token).await;
        }
        if let Some(lease) = lease {
            lease.release().await;
        }
        Some(outcome)
    }

    /// The token under `key` when another process saved one that is not `previous` and is
    /// not yet due for renewal.
    async fn renewed_elsewhere(
        &self,
        key: &str,
        previous: Option<&AccessToken>,
    ) -> Option<AccessToken> {
        let token = match self.shared.store.load(key).await {
            Ok(token) => token?,
            Err(error) => {
                tracing::warn!(%error, "could not read the token store under the renewal lease");
                return None;
            }
        };
        let now = SystemTime::now();
        let newer = previous.is_none_or(|previous| !previous.same_token(&token));
        let due = refresh_at(&token, now, self.shared.refresh_before_expiry) <= now;
        (newer && !due && !token.is_expired_at(now)).then_some(token)
    }

    async fn fetch(
        &self,
        request: &TokenRequest,
        previous: Option<&AccessToken>,
    ) -> Result<AccessToken, AuthError> {
        let started = Instant::now();
        let provider = &self.shared.provider;
        let outcome = match previous {
            Some(previous) => provider.renew_token(request, previous).await,
            None => provider.request_token(request).await,
        };
        let elapsed_ms = started.elapsed().as_millis();
        match &outcome {
            Ok(token) => tracing::debug!(
                grant = %provider.grant(),
                resource = %request.resource(),
                elapsed_ms,
                valid_secs = token.remaining_at(SystemTime::now()).as_secs(),
                "token acquired"
            ),
            Err(error) => tracing::debug!(
                grant = %provider.grant(),
                resource = %request.resource(),
                elapsed_ms,
                %error,
                "token request failed"
            ),
        }
        outcome
    }

    fn remember(&self, slot: &Slot, request: &TokenRequest, token: &AccessToken) {
        let fresh = Entry {
            token: token.clone(),
            refresh_at: refresh_at(token, SystemTime::now(), self.shared.refresh_before_expiry),
            rejected: false,
        };
        self.update_entry(request, slot, |entry| *entry = Some(fresh));
    }

    async fn install(&self, slot: &Slot, request: &TokenRequest, token: &AccessToken) {
        self.remember(slot, request, token);
        if let Err(error) = self
            .shared
            .store
            .save(&self.store_key(request), token)
            .await
        {
            tracing::warn!(%error, "could not save a token to the token store; it stays in memory");
        }
    }

    async fn load_from_store(
        &self,
        request: &TokenRequest,
        rejected: Option<&AccessToken>,
    ) -> Stored {
        match self.shared.store.load(&self.store_key(request)).await {
            Ok(Some(token)) if rejected.is_some_and(|r| r.same_token(&token)) => {
                Stored::Previous(token)
            }
            Ok(Some(token)) if !token.is_expired_at(SystemTime::now()) => Stored::Usable(token),
            Ok(Some(token)) => Stored::Previous(token),
            Ok(None) => Stored::Nothing,
            Err(error) => {
                tracing::warn!(%error, "could not read the token store; asking the identity provider");
                Stored::Nothing
            }
        }
    }

    fn store_key(&self, request: &TokenRequest) -> String {
        format!("{}|{}", self.shared.partition, request.cache_key())
    }
}

enum Stored {
    Usable(AccessToken),
    Previous(AccessToken),
    Nothing,
}

impl<P> Clone for TokenCache<P> {
    fn clone(&self) -> Self {
        Self {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<P: fmt::Debug> fmt::Debug for TokenCache<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenCache")
            .field("provider", &self.shared.provider)
            .field("store", &self.shared.store)
            .field("refresh_before_expiry", &self.shared.refresh_before_expiry)
            .field("entries", &read(&self.shared.slots).len())
            .finish()
    }
}

#[async_trait]
impl<P: TokenProvider> TokenProvider for TokenCache<P> {
    async fn request_token(&self, request: &TokenRequest) -> Result<AccessToken, AuthError> {
        self.get(request).await
    }

    /// The caller found `previous` unusable: drop it and get another.
    async fn renew_token(
        &self,
        request: &TokenRequest,
        previous: &AccessToken,
    ) -> Result<AccessToken, AuthError> {
        self.invalidate(previous).await;
        self.get(request).await
    }

    fn grant(&self) -> Grant {
        self.shared.provider.grant()
    }

    fn cache_key(&self) -> String {
        self.shared.partition.clone()
    }
}

/// Configures a [`TokenCache`]; see [`TokenCache::builder`].
#[must_use]
pub struct TokenCacheBuilder<P> {
    provider: P,
    store: Option<Arc<dyn TokenStore>>,
    refresh_before_expiry: Duration,
    retry_failed_refresh_after: Duration,
}

impl<P: TokenProvider> TokenCacheBuilder<P> {
    /// Renew tokens this long before they expire (default 5 minutes). The identity
    /// provider's `refresh_in` still wins when it is earlier.
    pub fn refresh_before_expiry(mut self, margin: Duration) -> Self {
        self.refresh_before_expiry = margin;
        self
    }

    /// After a failed early refresh, serve the current token this long before trying
    /// again (default 30 seconds).
    pub fn retry_failed_refresh_after(mut self, delay: Duration) -> Self {
        self.retry_failed_refresh_after = delay;
        self
    }

    /// Keep tokens in `store` too (a shared [`MemoryStore`], a file, Redis).
    pub fn store(mut self, store: Arc<dyn TokenStore>) -> Self {
        self.store = Some(store);
        self
    }

    /// The cache.
    pub fn build(self) -> TokenCache<P> {
        let partition = self.provider.cache_key();
        TokenCache {
            shared: Arc::new(Shared {
                provider: self.provider,
                store: self.store.unwrap_or_else(|| Arc::new(MemoryStore::new())),
                partition,
                refresh_before_expiry: self.refresh_before_expiry,
                retry_failed_refresh_after: self.retry_failed_refresh_after,
                slots: RwLock::default(),
                hits: ArcSwap::default(),
            }),
        }
    }
}

impl<P: fmt::Debug> fmt::Debug for TokenCacheBuilder<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenCacheBuilder")
            .field("provider", &self.provider)
            .field("refresh_before_expiry", &self.refresh_before_expiry)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resource::Resource;

    fn token_at(now: SystemTime, lifetime: u64, refresh_in: Option<u64>) -> AccessToken {
        let builder = AccessToken::builder(
            "t".into(),
            now + Duration::from_secs(lifetime),
            Resource::parse("https://contoso.crm.dynamics.com").unwrap(),
        );
        match refresh_in {
            Some(secs) => builder.refresh_on(now + Duration::from_secs(secs)).build(),
            None => builder.build(),
        }
        .unwrap()
    }

    #[test]
    fn refresh_is_planned_from_skew_halfway_and_refresh_on() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let five_minutes = Duration::from_secs(300);
        // (lifetime, refresh_in, margin, expected seconds after now)
        let cases = [
            (3600, None, five_minutes, 3300),       // expires_on − 5 min
            (3600, Some(1800), five_minutes, 1800), // Entra's refresh_in is earlier
            (3600, Some(3500), five_minutes, 3300), // refresh_in later than the margin: margin wins
            (240, None, five_minutes, 120),         // shorter than the margin: halfway
            (5, None, five_minutes, 2), // a 5 s token: 2.5 s, truncated by the test's secs
            (86_400, None, Duration::from_secs(60), 86_340),
            (0, None, five_minutes, 0), // already expired: due now
        ];
        for (lifetime, refresh_in, margin, expected) in cases {
            let token = token_at(now, lifetime, refresh_in);
            // The planned point, moved earlier by a random share of up to a tenth of the
            // lifetime: many draws all land in that window, and they differ.
            let spread = expected / 10;
            let mut seen = std::collections::HashSet::new();
            for _ in 0..50 {
                let due = refresh_at(&token, now, margin)
                    .duration_since(now)
                    .unwrap()
                    .as_secs();
                assert!(
                    due <= expected && due + spread + 1 >= expected,
                    "lifetime {lifetime}, refresh_in {refresh_in:?}: {due} not in [{expected} - {spread}, {expected}]"
                );
                seen.insert(due);
            }
            if spread >= 60 {
                assert!(seen.len() > 10, "a fleet's refresh points spread: {seen:?}");
            }
        }
    }
}
