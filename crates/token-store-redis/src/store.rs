//! [`RedisStore`] and its builder: keys, TTLs, timeouts, the one multiplexed connection
//! it keeps (reconnecting after a failure), and encryption on the way in and out.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use async_trait::async_trait;
use d365_auth_core::AccessToken;
use d365_auth_core::store::{
    Renewal, RenewalLease, StoreError, TokenStore, decode_token, encode_token,
};
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, FromRedisValue};
use secrecy::{ExposeSecret, SecretString};

use crate::error::RedisStoreError;
use d365_auth_core::store::EncryptionKey;

/// The prefix of every key the store writes, unless [`RedisStoreBuilder::key_prefix`]
/// says otherwise: keys are `d365:token:{provider cache key}|{request key}`.
pub const DEFAULT_KEY_PREFIX: &str = "d365:token:";
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_millis(500);
const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_millis(500);
const DEFAULT_REFRESH_TOKEN_TTL: Duration = Duration::from_secs(24 * 60 * 60);
/// How long a renewal lease lasts unless released: longer than a token request may take.
const DEFAULT_RENEWAL_LEASE: Duration = Duration::from_secs(30);
/// How long a worker waits for another's renewal before renewing alone.
const DEFAULT_RENEWAL_WAIT: Duration = Duration::from_secs(35);
/// Deletes the lease key only if it still holds this owner's value: a lease that expired
/// and was taken by another worker is never released by the first one.
const RELEASE_SCRIPT: &str = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end";

/// A [`TokenStore`] in Redis (or anything that speaks its protocol: Valkey, KeyDB, Azure
/// Cache for Redis), shared by every worker that points at it.
///
/// - Keys are `d365:token:{provider cache key}|{request key}`: the provider's key holds the
///   authority, tenant, client and (for delegated grants) user, so workers share exactly
///   the tokens they could have fetched themselves.
/// - A key expires with its token. A token that carries a refresh token (ROPC) is kept for
///   the refresh-token TTL instead (24 hours unless configured), or until the access token
///   expires if that is later.
/// - Values are the JSON record of [`encode_token`], or, with an [`EncryptionKey`], that
///   record sealed with AES-256-GCM (random nonce per write, the Redis key as associated
///   data). A value that does not decrypt (another key, no key, tampering) is a miss with
///   a warning.
/// - Redis down or slow: connecting and each command give up after short timeouts (500 ms
///   each by default) with a [`StoreError`]; the token cache logs it and asks the identity
///   provider. The connection is re-established on the next use.
/// - `Debug` shows the URL without its password and never the key.
///
/// Cloning is cheap and clones share the connection.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use d365_token_store_redis::RedisStore;
///
/// let store = RedisStore::builder("redis://worker:s3cret@cache.internal:6379/2")
///     .connect_timeout(Duration::from_millis(250))
///     .command_timeout(Duration::from_millis(250))
///     .refresh_token_ttl(Duration::from_secs(12 * 60 * 60))
///     .build()?; // no connection yet: the first use connects
/// assert!(!format!("{store:?}").contains("s3cret"));
/// # Ok::<(), d365_token_store_redis::RedisStoreError>(())
/// ```
#[derive(Clone)]
pub struct RedisStore {
    inner: Arc<Inner>,
}

struct Inner {
    client: redis::Client,
    shown_url: String,
    key_prefix: String,
    connect_timeout: Duration,
    command_timeout: Duration,
    refresh_token_ttl: Duration,
    renewal_lease: Duration,
    renewal_wait: Duration,
    encryption: Option<EncryptionKey>,
    connection: tokio::sync::Mutex<Option<MultiplexedConnection>>,
}

/// Configures a [`RedisStore`]; see [`RedisStore::builder`].
#[must_use]
pub struct RedisStoreBuilder {
    url: SecretString,
    key_prefix: String,
    connect_timeout: Duration,
    command_timeout: Duration,
    refresh_token_ttl: Duration,
    renewal_lease: Duration,
    renewal_wait: Duration,
    encryption: Option<EncryptionKey>,
}

impl RedisStore {
    /// A store at `url` with the default settings; see [`RedisStore::builder`].
    ///
    /// # Errors
    ///
    /// As for [`RedisStoreBuilder::build`].
    pub fn new(url: impl Into<SecretString>) -> Result<Self, RedisStoreError> {
        Self::builder(url).build()
    }

    /// Configures a store at `url`: `redis://[user:password@]host[:port][/db]`,
    /// `rediss://…` for TLS (with the `tls` feature), or `redis+unix:///path/to/socket`.
    /// The URL is a secret because it may hold a password.
    pub fn builder(url: impl Into<SecretString>) -> RedisStoreBuilder {
        RedisStoreBuilder {
            url: url.into(),
            key_prefix: DEFAULT_KEY_PREFIX.to_owned(),
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            command_timeout: DEFAULT_COMMAND_TIMEOUT,
            refresh_token_ttl: DEFAULT_REFRESH_TOKEN_TTL,
            renewal_lease: DEFAULT_RENEWAL_LEASE,
            renewal_wait: DEFAULT_RENEWAL_WAIT,
            encryption: None,
        }
    }

    /// The Redis key a store key is kept under: the prefix and the store key.
    ///
    /// # Examples
    ///
    /// ```
    /// let store = d365_token_store_redis::RedisStore::new("redis://127.0.0.1:6379")?;
    /// assert_eq!(store.redis_key("authority|client|https://org"), "d365:token:authority|client|https://org");
    /// # Ok::<(), d365_token_store_redis::RedisStoreError>(())
    /// ```
    #[must_use]
    pub fn redis_key(&self, store_key: &str) -> String {
        format!("{}{store_key}", self.inner.key_prefix)
    }

    /// How long Redis should keep `token` saved at `now`; `None` when it is not worth
    /// keeping (expired, no refresh token).
    fn ttl(&self, token: &AccessToken, now: SystemTime) -> Option<Duration> {
        let remaining = token.remaining_at(now);
        let ttl = if token.refresh_token().is_some() {
            remaining.max(self.inner.refresh_token_ttl)
        } else {
            remaining
        };
        (ttl >= Duration::from_millis(1)).then_some(ttl)
    }
}

impl Inner {
    fn error(&self, what: &str, cause: Option<redis::RedisError>) -> StoreError {
        match cause {
            Some(cause) => StoreError::new(
                format!("Redis at {}: {what}: {cause}", self.shown_url),
                Some(Box::new(cause)),
            ),
            None => StoreError::new(format!("Redis at {}: {what}", self.shown_url), None),
        }
    }

    /// The shared connection, connecting first if there is none. Gives up after the
    /// connect timeout, including time spent waiting for another caller's attempt.
    async fn connection(&self) -> Result<MultiplexedConnection, StoreError> {
        let attempt = async {
            let mut slot = self.connection.lock().await;
            if let Some(connection) = slot.as_ref() {
                return Ok(connection.clone());
            }
            let config = AsyncConnectionConfig::new()
                .set_connection_timeout(Some(self.connect_timeout))
                .set_response_timeout(Some(self.command_timeout));
            let connection = self
                .client
                .get_multiplexed_async_connection_with_config(&config)
                .await
                .map_err(|error| self.error("cannot connect", Some(error)))?;
            *slot = Some(connection.clone());
            Ok(connection)
        };
        tokio::time::timeout(self.connect_timeout, attempt)
            .await
            .map_err(|_| {
                self.error(
                    &format!("no connection within {:?}", self.connect_timeout),
                    None,
                )
            })?
    }

    /// Runs `command`, within the command timeout. After any failure the connection is
    /// dropped, so the next call reconnects.
    async fn run<T: FromRedisValue>(
        &self,
        name: &str,
        command: redis::Cmd,
    ) -> Result<T, StoreError> {
        let mut connection = self.connection().await?;
        let outcome =
            tokio::time::timeout(self.command_timeout, command.query_async(&mut connection)).await;
        let error = match outcome {
            Ok(Ok(value)) => return Ok(value),
            Ok(Err(error)) => self.error(&format!("{name} failed"), Some(error)),
            Err(_) => self.error(
                &format!("{name} got no answer within {:?}", self.command_timeout),
                None,
            ),
        };
        if let Ok(mut slot) = self.connection.try_lock() {
            *slot = None;
        }
        Err(error)
    }

    /// The token in a value read from `key`, or `None` with a warning when it cannot be
    /// used. Never logs a value.
    fn read_value(&self, key: &str, value: &[u8]) -> Option<AccessToken> {
        let sealed = EncryptionKey::is_sealed(value);
        let plain = match (&self.encryption, sealed) {
            (Some(encryption), true) => {
                let Some(plain) = encryption.open(key, value) else {
                    tracing::warn!(
                        key,
                        "a stored token does not decrypt with this store's key (another key, or altered); treating it as a miss"
                    );
                    return None;
                };
                plain
            }
            (Some(_), false) => {
                tracing::warn!(
                    key,
                    "a stored token is not encrypted but this store encrypts; ignoring it"
                );
                return None;
            }
            (None, true) => {
                tracing::warn!(
                    key,
                    "a stored token is encrypted but this store has no encryption key; treating it as a miss"
                );
                return None;
            }
            (None, false) => value.to_vec(),
        };
        let decoded = std::str::from_utf8(&plain)
            .map_err(|_| StoreError::new("not UTF-8", None))
            .and_then(decode_token);
        match decoded {
            Ok(token) => Some(token),
            Err(error) => {
                tracing::warn!(key, %error, "a stored token cannot be read; treating it as a miss");
                None
            }
        }
    }
}

#[async_trait]
impl TokenStore for RedisStore {
    async fn load(&self, key: &str) -> Result<Option<AccessToken>, StoreError> {
        let key = self.redis_key(key);
        let mut command = redis::cmd("GET");
        command.arg(&key);
        let value: Option<Vec<u8>> = self.inner.run("GET", command).await?;
        Ok(value.and_then(|value| self.inner.read_value(&key, &value)))
    }

    async fn save(&self, key: &str, token: &AccessToken) -> Result<(), StoreError> {
        let key = self.redis_key(key);
        let Some(ttl) = self.ttl(token, SystemTime::now()) else {
            // Expired and no refresh token: nothing worth keeping.
            let mut command = redis::cmd("DEL");
            command.arg(&key);
            return self.inner.run::<()>("DEL", command).await;
        };
        let record = encode_token(token);
        let value = match &self.inner.encryption {
            Some(encryption) => encryption.seal(&key, record.expose_secret().as_bytes())?,
            None => record.expose_secret().as_bytes().to_vec(),
        };
        let millis = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX);
        let mut command = redis::cmd("SET");
        command.arg(&key).arg(value).arg("PX").arg(millis);
        self.inner.run::<()>("SET", command).await
    }

    async fn remove(&self, key: &str) -> Result<(), StoreError> {
        let mut command = redis::cmd("DEL");
        command.arg(self.redis_key(key));
        self.inner.run::<()>("DEL", command).await
    }

    /// A lease on `{key}:renewing`: `SET … NX PX {lease}` with a random owner value,
    /// retried every 25–75 ms while another worker holds it, up to the renewal wait (or
    /// [`Renewal::Busy`] at once without `wait`).
    /// Redis unavailable, or a wait that runs out: renew alone, with a warning.
    async fn begin_renewal(&self, key: &str, wait: bool) -> Renewal {
        let lease_key = format!("{}:renewing", self.redis_key(key));
        let owner = random_owner();
        let lease_ms = u64::try_from(self.inner.renewal_lease.as_millis()).unwrap_or(u64::MAX);
        let started = Instant::now();
        loop {
            let mut command = redis::cmd("SET");
            command
                .arg(&lease_key)
                .arg(&owner)
                .arg("NX")
                .arg("PX")
                .arg(lease_ms);
            match self.inner.run::<Option<String>>("SET NX", command).await {
                Ok(Some(_)) => {
                    return Renewal::Lease(Box::new(RedisLease {
                        store: self.clone(),
                        key: lease_key,
                        owner,
                    }));
                }
                Ok(None) if !wait => return Renewal::Busy,
                Ok(None) => {}
                Err(error) => {
                    tracing::warn!(%error, "Redis cannot coordinate the renewal; renewing alone");
                    return Renewal::Alone;
                }
            }
            if started.elapsed() >= self.inner.renewal_wait {
                tracing::warn!(
                    waited_ms = started.elapsed().as_millis(),
                    "another worker has held the renewal lease too long; renewing alone"
                );
                return Renewal::Alone;
            }
            tokio::time::sleep(poll_interval()).await;
        }
    }
}

/// A renewal lease held in Redis: released by its owner only (compare and delete), or by
/// Redis when it expires — which is what happens when the worker holding it dies.
struct RedisLease {
    store: RedisStore,
    key: String,
    owner: String,
}

impl fmt::Debug for RedisLease {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisLease")
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl RenewalLease for RedisLease {
    async fn release(self: Box<Self>) {
        let mut command = redis::cmd("EVAL");
        command
            .arg(RELEASE_SCRIPT)
            .arg(1)
            .arg(&self.key)
            .arg(&self.owner);
        if let Err(error) = self.store.inner.run::<i64>("EVAL (release)", command).await {
            tracing::warn!(%error, "could not release the renewal lease; it expires by itself");
        }
    }
}

/// 128 random bits in hex: no two workers (or two leases of one) share an owner value.
fn random_owner() -> String {
    let mut bytes = [0_u8; 16];
    if getrandom::fill(&mut bytes).is_err() {
        // Unique enough within one host when the OS generator fails.
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        return format!("{}-{now}", std::process::id());
    }
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// 25 to 75 ms, so that waiting workers do not poll in step.
fn poll_interval() -> Duration {
    let mut byte = [0_u8; 1];
    let jitter = if getrandom::fill(&mut byte).is_ok() {
        u64::from(byte[0]) * 50 / 255
    } else {
        25
    };
    Duration::from_millis(25 + jitter)
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("url", &self.inner.shown_url)
            .field("key_prefix", &self.inner.key_prefix)
            .field("connect_timeout", &self.inner.connect_timeout)
            .field("command_timeout", &self.inner.command_timeout)
            .field("refresh_token_ttl", &self.inner.refresh_token_ttl)
            .field("encrypted", &self.inner.encryption.is_some())
            .finish()
    }
}

impl RedisStoreBuilder {
    /// The prefix of every key (default [`DEFAULT_KEY_PREFIX`], `d365:token:`). Give each
    /// environment its own when they share a Redis, or scope an ACL user to it
    /// (`~d365:token:*`).
    pub fn key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.key_prefix = prefix.into();
        self
    }

    /// How long connecting may take before the store gives up (default 500 ms).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How long one command may take before the store gives up (default 500 ms).
    pub fn command_timeout(mut self, timeout: Duration) -> Self {
        self.command_timeout = timeout;
        self
    }

    /// How long a renewal lease lasts unless its holder releases it (default 30 s): when a
    /// worker dies while renewing, the others wait at most this long for it.
    pub fn renewal_lease(mut self, lease: Duration) -> Self {
        self.renewal_lease = lease;
        self
    }

    /// How long a worker that finds the token due waits for another worker's renewal
    /// before renewing alone (default 35 s, past a lease's expiry).
    pub fn renewal_wait(mut self, wait: Duration) -> Self {
        self.renewal_wait = wait;
        self
    }

    /// How long a token that carries a refresh token is kept (default 24 hours): the
    /// refresh token's life, which Redis cannot learn from the token itself.
    pub fn refresh_token_ttl(mut self, ttl: Duration) -> Self {
        self.refresh_token_ttl = ttl;
        self
    }

    /// Encrypts every value with AES-256-GCM under `key`. Every worker sharing the
    /// tokens needs the same key; values written without it, or with another key, read
    /// as misses (with a warning).
    pub fn encryption_key(mut self, key: EncryptionKey) -> Self {
        self.encryption = Some(key);
        self
    }

    /// The store. It does not connect: the first use does, so a store built while Redis
    /// is down works once Redis is back.
    ///
    /// # Errors
    ///
    /// [`RedisStoreError::InvalidUrl`] when the URL is not a Redis URL (or is `rediss://`
    /// without the `tls` feature); [`RedisStoreError::InvalidSetting`] for a zero
    /// timeout.
    pub fn build(self) -> Result<RedisStore, RedisStoreError> {
        for (setting, value) in [
            ("connect_timeout", self.connect_timeout),
            ("command_timeout", self.command_timeout),
            ("refresh_token_ttl", self.refresh_token_ttl),
            ("renewal_lease", self.renewal_lease),
        ] {
            if value.is_zero() {
                return Err(RedisStoreError::InvalidSetting {
                    setting,
                    reason: "it must be more than zero",
                });
            }
        }
        let raw = self.url.expose_secret();
        let parsed = url::Url::parse(raw).map_err(|error| RedisStoreError::InvalidUrl {
            reason: error.to_string(),
        })?;
        let password = parsed.password().unwrap_or_default().to_owned();
        let client = redis::Client::open(raw).map_err(|error| {
            let message = error.to_string();
            let quotes_input =
                message.contains(raw) || (!password.is_empty() && message.contains(&password));
            RedisStoreError::InvalidUrl {
                reason: if quotes_input {
                    "the Redis client does not accept it".to_owned()
                } else {
                    message
                },
            }
        })?;
        Ok(RedisStore {
            inner: Arc::new(Inner {
                client,
                shown_url: redact(&parsed),
                key_prefix: self.key_prefix,
                connect_timeout: self.connect_timeout,
                command_timeout: self.command_timeout,
                refresh_token_ttl: self.refresh_token_ttl,
                renewal_lease: self.renewal_lease,
                renewal_wait: self.renewal_wait,
                encryption: self.encryption,
                connection: tokio::sync::Mutex::new(None),
            }),
        })
    }
}

impl fmt::Debug for RedisStoreBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let url = url::Url::parse(self.url.expose_secret())
            .map_or_else(|_| "[unparsed]".to_owned(), |url| redact(&url));
        f.debug_struct("RedisStoreBuilder")
            .field("url", &url)
            .field("key_prefix", &self.key_prefix)
            .field("connect_timeout", &self.connect_timeout)
            .field("command_timeout", &self.command_timeout)
            .field("refresh_token_ttl", &self.refresh_token_ttl)
            .field("encrypted", &self.encryption.is_some())
            .finish()
    }
}

/// The URL without its password or query (where Unix-socket URLs carry `pass=`).
fn redact(url: &url::Url) -> String {
    let mut shown = url.clone();
    if shown.password().is_some() {
        let _ = shown.set_password(Some("[redacted]"));
    }
    if shown.query().is_some() {
        shown.set_query(Some("[redacted]"));
    }
    shown.set_fragment(None);
    shown.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use d365_auth_core::Resource;

    #[test]
    fn urls_are_shown_without_passwords() {
        let cases = [
            ("redis://127.0.0.1:6379", "redis://127.0.0.1:6379"),
            (
                "redis://worker:hunter2@cache:6380/3",
                "redis://worker:%5Bredacted%5D@cache:6380/3",
            ),
            ("redis://:hunter2@cache", "redis://:%5Bredacted%5D@cache"),
            (
                "redis+unix:///run/redis.sock?db=1&pass=hunter2",
                "redis+unix:///run/redis.sock?[redacted]",
            ),
        ];
        for (url, shown) in cases {
            assert_eq!(redact(&url::Url::parse(url).unwrap()), shown);
            let store = RedisStore::new(url).unwrap();
            let builder = RedisStore::builder(url);
            let debug = format!("{store:?} {builder:?}");
            assert!(!debug.contains("hunter2"), "{debug}");
        }
    }

    #[test]
    fn bad_configurations_are_refused_without_quoting_the_url() {
        for url in ["not a url hunter2", "http://user:hunter2@host/", ""] {
            let error = RedisStore::new(url).expect_err(url).to_string();
            assert!(error.starts_with("invalid Redis URL"), "{error}");
            assert!(!error.contains("hunter2"), "{error}");
        }
        let error = RedisStore::builder("redis://127.0.0.1")
            .command_timeout(Duration::ZERO)
            .build()
            .unwrap_err();
        assert!(error.to_string().contains("command_timeout"), "{error}");
    }

    #[test]
    fn ttl_follows_the_token_or_its_refresh_token() {
        let store = RedisStore::builder("redis://127.0.0.1")
            .refresh_token_ttl(Duration::from_secs(7200))
            .build()
            .unwrap();
        let now = SystemTime::now();
        let token = |lifetime: u64, expired: bool, refresh: bool| {
            let expires_on = if expired {
                now - Duration::from_secs(lifetime)
            } else {
                now + Duration::from_secs(lifetime)
            };
            let builder = AccessToken::builder(
                "t".into(),
                expires_on,
                Resource::parse("https://contoso.crm.dynamics.com").unwrap(),
            );
            if refresh {
                builder.refresh_token("r".into()).build()
            } else {
                builder.build()
            }
            .unwrap()
        };
        let secs = |ttl: Option<Duration>| ttl.map(|ttl| ttl.as_secs());
        assert_eq!(secs(store.ttl(&token(3600, false, false), now)), Some(3600));
        assert_eq!(secs(store.ttl(&token(3600, false, true), now)), Some(7200));
        assert_eq!(secs(store.ttl(&token(9000, false, true), now)), Some(9000));
        assert_eq!(secs(store.ttl(&token(10, true, false), now)), None);
        assert_eq!(secs(store.ttl(&token(10, true, true), now)), Some(7200));
    }
}
