//! [`FileStore`]: tokens in one JSON file, for a command line that should not ask the
//! identity provider for a token on every invocation.
//!
//! # The file
//!
//! `{"format": "d365-token-store", "entries": {"<store key>": <record>, ...}}`, where a
//! record is what [`encode_token`](crate::store::encode_token) writes — or, with an
//! [`EncryptionKey`], that record sealed with AES-256-GCM and in base64. Without a key it
//! holds access and refresh tokens in clear text. Either way it is created with mode
//! `0600` on Unix (inside a directory
//! created `0700` when missing); elsewhere it inherits the directory's access control.
//! A file with looser permissions is reported with a warning and rewritten `0600` on the
//! next save.
//!
//! # Writing: atomic replace under an advisory lock
//!
//! Every write is a read-modify-write of the whole file: read the entries, drop the ones
//! not worth keeping (expired and without a refresh token, or whose refresh token is
//! older than the configured limit), change one, and replace the file with
//! [`replace_private_file`]: a new temporary file created exclusively in the same
//! directory (mode `0600`, never through a symlink), `fsync`, `rename` over the file,
//! `fsync` of the directory. A reader therefore sees the old file or the new one, never
//! half of one, so [`load`](crate::TokenStore::load) takes no lock. Reading goes through
//! [`read_private_file`]: anything but a regular file (a FIFO, `/dev/zero`) is refused
//! without blocking, and so is a file over 16 MiB.
//!
//! Two writers (two processes, or two tasks of one) must not interleave their
//! read-modify-writes, or one would lose the other's entry. They serialize on an
//! operating-system advisory lock (`File::try_lock`: `flock` on Unix, `LockFileEx` on
//! Windows) on a sibling `<file>.lock`, never removed. We chose this over a lock file
//! created with `create_new` because the operating system releases the lock when its
//! holder exits or crashes: there is no stale lock to detect, no timeout to guess, and
//! no race between two processes breaking the same stale lock. The lock is on the
//! sibling rather than on the data file because the data file is replaced by `rename`
//! on every write: a lock on it would lock an inode that is about to be unlinked. The
//! lock is taken with `try_lock` and retried with a backoff (1 ms doubling to 50 ms), up
//! to a timeout (10 s by default), so a wedged holder turns into a [`StoreError`], which
//! the cache logs, not into a hang. (Advisory locks are unreliable on some network file
//! systems; keep the file on a local disk.)
//!
//! # Not blocking the runtime
//!
//! Reading, locking, writing and `fsync` are blocking calls that can take tens of
//! milliseconds (`fsync`) or, while another process holds the lock, up to the lock
//! timeout. Each operation therefore runs whole on Tokio's blocking pool
//! (`spawn_blocking`), never on a runtime worker; outside a Tokio runtime it runs inline.
//!
//! # Damage
//!
//! A file that is not JSON, or JSON of another shape ("foreign"), reads as empty, with a
//! warning, and is replaced by the next save; a single unreadable entry is skipped the
//! same way. Neither is an error: a token cache must not fail because its cache file is
//! damaged. Warnings name the file and what is wrong, never a value from it.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use base64::Engine as _;

use crate::store::crypto::EncryptionKey;
use crate::store::private_file::create_private_dir;
use crate::store::record::{Record, json_error_kind};
use crate::store::{
    Renewal, RenewalLease, StoreError, TokenStore, read_private_file, replace_private_file,
};
use crate::token::AccessToken;

/// What the file says it is, so that a foreign JSON file is recognized as such.
const FORMAT: &str = "d365-token-store";
const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a process waits for another one's renewal by default: a token request's timeout.
const DEFAULT_RENEWAL_WAIT: Duration = Duration::from_secs(30);
/// The largest token file read: thousands of entries fit in far less.
const MAX_FILE_LEN: u64 = 16 * 1024 * 1024;
/// Entra ID's default refresh token lifetime (a sliding window of 90 days).
const DEFAULT_KEEP_REFRESH_TOKENS_FOR: Duration = Duration::from_secs(90 * 24 * 60 * 60);
const FIRST_BACKOFF: Duration = Duration::from_millis(1);
const MAX_BACKOFF: Duration = Duration::from_millis(50);

/// Tokens (with their refresh tokens) in a JSON file that outlives the process: the store
/// for a command line. Several processes may share the file.
///
/// See the module documentation in the source for the design; in short: mode `0600`,
/// atomic replace (temporary file, `fsync`, `rename`), writers serialized by an advisory
/// lock on `<file>.lock`, a damaged or foreign file replaced with a warning, blocking
/// I/O on Tokio's blocking pool. Cloning is cheap and clones share the settings.
///
/// # Examples
///
/// ```no_run
/// use std::sync::Arc;
/// use d365_auth_core::{TokenCache, TokenProvider, TokenRequest};
/// use d365_auth_core::store::{FileStore};
///
/// # async fn run(provider: impl TokenProvider + 'static) -> Result<(), Box<dyn std::error::Error>> {
/// let path = FileStore::default_path().ok_or("no cache directory")?;
/// let cache = TokenCache::builder(provider)
///     .store(Arc::new(FileStore::new(path)))
///     .build();
/// // The first run of the program asks the identity provider; later runs read the file.
/// let token = cache.get(&TokenRequest::for_url("https://contoso.crm.dynamics.com")?).await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct FileStore {
    settings: Arc<Settings>,
}

struct Settings {
    path: PathBuf,
    lock_path: PathBuf,
    /// The renewal lock: held by the one process renewing a token of this file.
    renewal_lock_path: PathBuf,
    lock_timeout: Duration,
    renewal_wait: Duration,
    keep_refresh_tokens_for: Duration,
    encryption: Option<EncryptionKey>,
}

/// Configures a [`FileStore`]; see [`FileStore::builder`].
#[must_use]
#[derive(Clone, Debug)]
pub struct FileStoreBuilder {
    path: PathBuf,
    lock_timeout: Duration,
    renewal_wait: Duration,
    keep_refresh_tokens_for: Duration,
    encryption: Option<EncryptionKey>,
}

impl FileStore {
    /// A store in the file at `path` with the default settings. Nothing is read or
    /// created until the store is used.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self::builder(path).build()
    }

    /// Configures a store in the file at `path`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use d365_auth_core::store::FileStore;
    ///
    /// let store = FileStore::builder(std::env::temp_dir().join("d365-doc-tokens.json"))
    ///     .lock_timeout(Duration::from_secs(2))
    ///     .keep_refresh_tokens_for(Duration::from_secs(24 * 60 * 60))
    ///     .build();
    /// assert!(store.path().ends_with("d365-doc-tokens.json"));
    /// ```
    pub fn builder(path: impl Into<PathBuf>) -> FileStoreBuilder {
        FileStoreBuilder {
            path: path.into(),
            lock_timeout: DEFAULT_LOCK_TIMEOUT,
            renewal_wait: DEFAULT_RENEWAL_WAIT,
            keep_refresh_tokens_for: DEFAULT_KEEP_REFRESH_TOKENS_FOR,
            encryption: None,
        }
    }

    /// The usual place for a user's token file: `$XDG_CACHE_HOME/d365/tokens.json` (or
    /// `~/.cache/d365/tokens.json`) on Linux and other Unix systems,
    /// `~/Library/Caches/d365/tokens.json` on macOS, `%LOCALAPPDATA%\d365\tokens.json` on
    /// Windows. `None` when the environment names no home or cache directory.
    ///
    /// # Examples
    ///
    /// ```
    /// if let Some(path) = d365_auth_core::store::FileStore::default_path() {
    ///     assert!(path.ends_with("d365/tokens.json") || path.ends_with("d365\\tokens.json"));
    /// }
    /// ```
    #[must_use]
    pub fn default_path() -> Option<PathBuf> {
        let non_empty = |name: &str| {
            std::env::var_os(name)
                .filter(|value| !value.is_empty())
                .map(PathBuf::from)
        };
        let cache_dir = if cfg!(windows) {
            non_empty("LOCALAPPDATA")
        } else if cfg!(target_os = "macos") {
            non_empty("HOME").map(|home| home.join("Library/Caches"))
        } else {
            non_empty("XDG_CACHE_HOME")
                .or_else(|| non_empty("HOME").map(|home| home.join(".cache")))
        }?;
        Some(cache_dir.join("d365").join("tokens.json"))
    }

    /// The token file.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.settings.path
    }
}

impl FileStoreBuilder {
    /// How long a write waits for another writer to release the lock before failing
    /// (default 10 seconds). Writes hold the lock for milliseconds.
    pub fn lock_timeout(mut self, timeout: Duration) -> Self {
        self.lock_timeout = timeout;
        self
    }

    /// How long a process that finds a token due waits for another process renewing it
    /// (holding the renewal lock on `<file>.renew.lock`) before renewing on its own (default
    /// 30 seconds, the token request timeout). The lock is released when its holder is done
    /// or dies, so the wait is usually the other process's one token request.
    pub fn renewal_wait(mut self, wait: Duration) -> Self {
        self.renewal_wait = wait;
        self
    }

    /// How long an entry whose access token expired is kept for its refresh token
    /// (default 90 days, Entra ID's refresh token lifetime). Expired entries without a
    /// refresh token are dropped on the next write whatever this says.
    pub fn keep_refresh_tokens_for(mut self, duration: Duration) -> Self {
        self.keep_refresh_tokens_for = duration;
        self
    }

    /// Encrypts every entry with `key` (AES-256-GCM, the entry's key as associated data),
    /// so the file holds no token in clear text: keep the key apart from the file (an OS
    /// keyring). Entries written without a key are still read, and encrypted on the next
    /// write; entries that do not open with this key are skipped with a warning and
    /// dropped on the next write.
    pub fn encryption_key(mut self, key: EncryptionKey) -> Self {
        self.encryption = Some(key);
        self
    }

    /// The store.
    pub fn build(self) -> FileStore {
        let sibling = |suffix: &str| {
            let mut name: OsString = self.path.clone().into_os_string();
            name.push(suffix);
            PathBuf::from(name)
        };
        FileStore {
            settings: Arc::new(Settings {
                lock_path: sibling(".lock"),
                renewal_lock_path: sibling(".renew.lock"),
                path: self.path,
                lock_timeout: self.lock_timeout,
                renewal_wait: self.renewal_wait,
                keep_refresh_tokens_for: self.keep_refresh_tokens_for,
                encryption: self.encryption,
            }),
        }
    }
}

impl fmt::Debug for FileStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileStore")
            .field("path", &self.settings.path)
            .field("lock_timeout", &self.settings.lock_timeout)
            .field(
                "keep_refresh_tokens_for",
                &self.settings.keep_refresh_tokens_for,
            )
            .field("encrypted", &self.settings.encryption.is_some())
            .finish()
    }
}

#[async_trait]
impl TokenStore for FileStore {
    async fn load(&self, key: &str) -> Result<Option<AccessToken>, StoreError> {
        let settings = Arc::clone(&self.settings);
        let key = key.to_owned();
        blocking(move || settings.load(&key)).await
    }

    async fn save(&self, key: &str, token: &AccessToken) -> Result<(), StoreError> {
        let settings = Arc::clone(&self.settings);
        let key = key.to_owned();
        let record = Record::from_token(token);
        blocking(move || {
            settings.update(|entries| {
                entries.insert(key, record);
            })
        })
        .await
    }

    async fn remove(&self, key: &str) -> Result<(), StoreError> {
        let settings = Arc::clone(&self.settings);
        let key = key.to_owned();
        blocking(move || {
            settings.update(|entries| {
                entries.remove(&key);
            })
        })
        .await
    }

    /// The renewal lock on `<file>.renew.lock` (one for the whole file), waited for up to
    /// [`FileStoreBuilder::renewal_wait`] (or not at all without `wait`: [`Renewal::Busy`]),
    /// polled with jitter so waiters do not wake together. A failure to open or lock it
    /// means renewing alone, with a warning.
    async fn begin_renewal(&self, _key: &str, wait: bool) -> Renewal {
        let settings = Arc::clone(&self.settings);
        let file = match blocking(move || settings.open_renewal_lock()).await {
            Ok(file) => file,
            Err(error) => {
                tracing::warn!(%error, "no renewal lock; renewing without waiting for other processes");
                return Renewal::Alone;
            }
        };
        let started = Instant::now();
        loop {
            match file.try_lock() {
                Ok(()) => return Renewal::Lease(Box::new(FileLease { file })),
                Err(fs::TryLockError::WouldBlock) if !wait => return Renewal::Busy,
                Err(fs::TryLockError::WouldBlock) => {}
                Err(fs::TryLockError::Error(error)) => {
                    tracing::warn!(%error, path = %self.settings.renewal_lock_path.display(), "cannot take the renewal lock; renewing alone");
                    return Renewal::Alone;
                }
            }
            if started.elapsed() >= self.settings.renewal_wait {
                tracing::warn!(
                    path = %self.settings.renewal_lock_path.display(),
                    waited_ms = started.elapsed().as_millis(),
                    "another process has been renewing a token for too long; renewing alone"
                );
                return Renewal::Alone;
            }
            tokio::time::sleep(renewal_poll_interval()).await;
        }
    }
}

/// How long a process waiting for the renewal lock sleeps between tries: 20 to 60 ms.
fn renewal_poll_interval() -> Duration {
    let mut byte = [0_u8; 1];
    let jitter = if getrandom::fill(&mut byte).is_ok() {
        u64::from(byte[0]) * 40 / 255
    } else {
        20
    };
    Duration::from_millis(20 + jitter)
}

/// The renewal lock, held: the OS releases it when the file is closed, which dropping
/// does, as does the process's death.
#[derive(Debug)]
struct FileLease {
    file: File,
}

#[async_trait]
impl RenewalLease for FileLease {
    async fn release(self: Box<Self>) {
        if let Err(error) = self.file.unlock() {
            tracing::debug!(%error, "could not unlock the renewal lock; closing it releases it");
        }
    }
}

/// How lock files are opened: created if absent with mode 0600, never through a symlink
/// planted in their place, never truncated.
fn lock_file_options() -> OpenOptions {
    let mut options = OpenOptions::new();
    options.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600).custom_flags(libc::O_NOFOLLOW);
    }
    options
}

/// Runs `work` on Tokio's blocking pool when there is a runtime, inline otherwise. Its
/// log events go to the caller's subscriber and span, as if it had run inline.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    match tokio::runtime::Handle::try_current() {
        Ok(runtime) => {
            let span = tracing::Span::current();
            let dispatch = tracing::dispatcher::get_default(Clone::clone);
            let work = move || tracing::dispatcher::with_default(&dispatch, || span.in_scope(work));
            runtime.spawn_blocking(work).await.map_err(|error| {
                StoreError::new("the token file task did not finish", Some(Box::new(error)))
            })?
        }
        Err(_) => work(),
    }
}

/// The file as written: each entry a record, or with an encryption key the record sealed
/// and in base64.
#[derive(Serialize)]
struct Contents<'a> {
    format: &'a str,
    entries: BTreeMap<&'a str, serde_json::Value>,
}

/// The file as read: entries stay JSON values until each is checked, so that one bad
/// entry does not spoil the others.
#[derive(Deserialize)]
struct RawContents {
    format: String,
    entries: BTreeMap<String, serde_json::Value>,
}

fn io_error(what: &str, path: &Path, error: io::Error) -> StoreError {
    StoreError::new(format!("{what} {}", path.display()), Some(Box::new(error)))
}

impl Settings {
    fn load(&self, key: &str) -> Result<Option<AccessToken>, StoreError> {
        let Some(mut entries) = self.read_entries()? else {
            return Ok(None);
        };
        let Some(value) = entries.remove(key) else {
            return Ok(None);
        };
        match self.decode_entry(key, value).map(Record::into_token) {
            Ok(Ok(token)) => Ok(Some(token)),
            Ok(Err(error)) => {
                tracing::warn!(path = %self.path.display(), %error, "skipping an unreadable entry of the token file");
                Ok(None)
            }
            Err(problem) => {
                tracing::warn!(path = %self.path.display(), problem, "skipping an unreadable entry of the token file");
                Ok(None)
            }
        }
    }

    /// An entry as a record: a JSON object, or a sealed record in base64 opened with the
    /// encryption key. The error says what is wrong, never a value.
    fn decode_entry(&self, key: &str, value: serde_json::Value) -> Result<Record, &'static str> {
        let serde_json::Value::String(text) = value else {
            return serde_json::from_value::<Record>(value)
                .map_err(|error| json_error_kind(&error));
        };
        let encryption = self
            .encryption
            .as_ref()
            .ok_or("the entry is encrypted, and this store has no encryption key")?;
        let sealed = base64::engine::general_purpose::STANDARD
            .decode(text)
            .map_err(|_| "the entry is not base64")?;
        let plain = encryption
            .open(key, &sealed)
            .ok_or("the entry does not open with this encryption key (another key, or altered)")?;
        serde_json::from_slice::<Record>(&plain).map_err(|error| json_error_kind(&error))
    }

    /// An entry as written: the record, sealed when there is an encryption key.
    fn encode_entry(&self, key: &str, record: &Record) -> Result<serde_json::Value, StoreError> {
        let unwritable = |error: &serde_json::Error| {
            StoreError::new(
                format!(
                    "cannot serialize the token file ({})",
                    json_error_kind(error)
                ),
                None,
            )
        };
        match &self.encryption {
            None => serde_json::to_value(record).map_err(|error| unwritable(&error)),
            Some(encryption) => {
                let plain = serde_json::to_vec(record).map_err(|error| unwritable(&error))?;
                let sealed = encryption.seal(key, &plain)?;
                Ok(serde_json::Value::String(
                    base64::engine::general_purpose::STANDARD.encode(sealed),
                ))
            }
        }
    }

    /// The raw entries, `None` when there is no file. A damaged or foreign file reads as
    /// empty, with a warning.
    fn read_entries(&self) -> Result<Option<BTreeMap<String, serde_json::Value>>, StoreError> {
        let bytes = match read_private_file(&self.path, MAX_FILE_LEN) {
            Ok(Some(bytes)) => bytes,
            Ok(None) => return Ok(None),
            Err(error) => return Err(io_error("cannot read the token file", &self.path, error)),
        };
        self.warn_if_readable_by_others();
        match serde_json::from_slice::<RawContents>(&bytes) {
            Ok(contents) if contents.format == FORMAT => Ok(Some(contents.entries)),
            Ok(_) => {
                tracing::warn!(path = %self.path.display(), "the token file has another format; it will be replaced");
                Ok(Some(BTreeMap::new()))
            }
            Err(error) => {
                let problem = json_error_kind(&error);
                tracing::warn!(path = %self.path.display(), problem, "the token file is damaged or foreign; it will be replaced");
                Ok(Some(BTreeMap::new()))
            }
        }
    }

    #[cfg(unix)]
    fn warn_if_readable_by_others(&self) {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(metadata) = fs::metadata(&self.path)
            && metadata.permissions().mode() & 0o077 != 0
        {
            tracing::warn!(
                path = %self.path.display(),
                mode = format_args!("{:o}", metadata.permissions().mode() & 0o777),
                "the token file is accessible to other users; it will be rewritten with mode 600"
            );
        }
    }

    #[cfg(not(unix))]
    fn warn_if_readable_by_others(&self) {}

    /// Read-modify-write under the lock: `change` the valid entries, drop the ones not
    /// worth keeping, replace the file atomically.
    fn update(&self, change: impl FnOnce(&mut BTreeMap<String, Record>)) -> Result<(), StoreError> {
        self.create_parent()?;
        let _lock = self.lock()?;
        let existing = self.read_entries()?;
        let had_file = existing.is_some();
        let mut entries = BTreeMap::new();
        let mut skipped = 0_usize;
        for (key, value) in existing.unwrap_or_default() {
            match self.decode_entry(&key, value) {
                Ok(record) => {
                    entries.insert(key, record);
                }
                Err(_) => skipped += 1,
            }
        }
        if skipped > 0 {
            tracing::warn!(path = %self.path.display(), skipped, "dropping unreadable entries of the token file");
        }
        change(&mut entries);
        let now = SystemTime::now();
        entries.retain(|_, record| record.is_worth_keeping(now, self.keep_refresh_tokens_for));
        if !had_file && entries.is_empty() {
            // Nothing to keep and nothing to replace: do not create an empty file.
            return Ok(());
        }
        self.replace(&entries)
    }

    fn create_parent(&self) -> Result<(), StoreError> {
        let Some(parent) = self
            .path
            .parent()
            .filter(|parent| !parent.as_os_str().is_empty())
        else {
            return Ok(());
        };
        create_private_dir(parent)
            .map_err(|error| io_error("cannot create the directory", parent, error))
    }

    /// Takes the advisory lock on `<file>.lock`, retrying with a backoff up to the
    /// timeout. Dropping the returned file releases it.
    /// Opens (creating, 0600, never through a symlink) the renewal lock file.
    fn open_renewal_lock(&self) -> Result<File, StoreError> {
        if let Some(parent) = self
            .renewal_lock_path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
        {
            create_private_dir(parent).map_err(|error| {
                io_error(
                    "cannot create the directory of",
                    &self.renewal_lock_path,
                    error,
                )
            })?;
        }
        lock_file_options()
            .open(&self.renewal_lock_path)
            .map_err(|error| io_error("cannot open the lock file", &self.renewal_lock_path, error))
    }

    fn lock(&self) -> Result<File, StoreError> {
        let file = lock_file_options()
            .open(&self.lock_path)
            .map_err(|error| io_error("cannot open the lock file", &self.lock_path, error))?;
        let started = Instant::now();
        let mut backoff = FIRST_BACKOFF;
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(file),
                Err(fs::TryLockError::WouldBlock) => {}
                Err(fs::TryLockError::Error(error)) => {
                    return Err(io_error("cannot lock", &self.lock_path, error));
                }
            }
            if started.elapsed() >= self.lock_timeout {
                return Err(StoreError::new(
                    format!(
                        "{} stayed locked by another writer for {:?}",
                        self.lock_path.display(),
                        self.lock_timeout
                    ),
                    None,
                ));
            }
            std::thread::sleep(backoff);
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }

    /// Replaces the file with `entries`, atomically.
    fn replace(&self, entries: &BTreeMap<String, Record>) -> Result<(), StoreError> {
        let mut written = BTreeMap::new();
        for (key, record) in entries {
            written.insert(key.as_str(), self.encode_entry(key, record)?);
        }
        let json = serde_json::to_vec_pretty(&Contents {
            format: FORMAT,
            entries: written,
        })
        .map_err(|error| {
            StoreError::new(
                format!(
                    "cannot serialize the token file ({})",
                    json_error_kind(&error)
                ),
                None,
            )
        })?;
        replace_private_file(&self.path, &json)
            .map_err(|error| io_error("cannot replace the token file", &self.path, error))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lock_file_sits_next_to_the_token_file() {
        let store = FileStore::new("/var/cache/d365/tokens.json");
        assert_eq!(
            store.settings.lock_path,
            Path::new("/var/cache/d365/tokens.json.lock")
        );
        assert!(format!("{store:?}").contains("tokens.json"));
    }
}
