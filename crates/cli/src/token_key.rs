//! The key that encrypts d365's token file, so the file holds no token — and no refresh
//! token, which outlives a stolen laptop's battery — in clear text.
//!
//! Where the key lives is chosen once per token file and recorded beside it
//! (`<tokens>.keystore`), so every later command looks in the same place:
//!
//! - **the OS keyring** (macOS Keychain, Windows Credential Manager, the Secret Service of
//!   a Linux desktop) when one answers: the file alone is then useless to whoever copies
//!   it; or
//! - **a key file** (`<tokens>.key`, mode 0600) when there is no keyring (a server, a
//!   container, CI): the token file is still encrypted, so a backup or a copy of it alone
//!   reveals nothing, but whoever can read both files as you can use the tokens.
//!
//! `D365_TOKEN_KEY_STORE=keyring|file|auto` (or `d365 login --key-store`) chooses
//! explicitly; `auto`, the default, takes the keyring when it answers within five seconds.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use anyhow::Context as _;
use clap::ValueEnum;
use d365_auth_core::store::{EncryptionKey, FileStore, read_private_file, replace_private_file};
use secrecy::ExposeSecret as _;

/// The keyring service d365's keys are filed under.
const KEYRING_SERVICE: &str = "d365";
/// How long a keyring may take to answer before it counts as absent.
const KEYRING_TIMEOUT: Duration = Duration::from_secs(5);
/// The most a key or marker file may hold.
const MAX_SMALL_FILE: u64 = 1024;

/// Where the token file's key may be kept.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub(crate) enum KeyStoreChoice {
    /// The OS keyring when one answers, else a key file.
    #[default]
    Auto,
    /// The OS keyring; an error when there is none.
    Keyring,
    /// A key file beside the token file (mode 0600).
    File,
}

/// Where the key is kept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum KeyHome {
    /// The OS keyring, under service `d365`.
    Keyring,
    /// A key file.
    File(PathBuf),
}

impl fmt::Display for KeyHome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Keyring => f.write_str("the OS keyring (service d365)"),
            Self::File(path) => write!(f, "the key file {}", path.display()),
        }
    }
}

/// The choice from `D365_TOKEN_KEY_STORE`, else `auto`.
pub(crate) fn choice_from_environment() -> anyhow::Result<KeyStoreChoice> {
    match std::env::var("D365_TOKEN_KEY_STORE") {
        Ok(value) if !value.trim().is_empty() => KeyStoreChoice::from_str(value.trim(), true)
            .map_err(|_| {
                crate::exit::UsageError(format!(
                    "D365_TOKEN_KEY_STORE is `{}`; use keyring, file or auto",
                    crate::output::printable(&value, false)
                ))
                .into()
            }),
        _ => Ok(KeyStoreChoice::Auto),
    }
}

/// The encrypted token store at `path`, its key loaded from (or created in) its home.
pub(crate) fn open_store(
    path: &Path,
    choice: KeyStoreChoice,
) -> anyhow::Result<(FileStore, KeyHome)> {
    let (key, home) = load_or_create(path, choice)?;
    Ok((FileStore::builder(path).encryption_key(key).build(), home))
}

/// Where the key of the token file at `path` is kept, if it has one yet.
pub(crate) fn recorded_home(path: &Path) -> anyhow::Result<Option<KeyHome>> {
    Ok(
        match read_text(&marker_path(path))?.as_deref().map(str::trim) {
            Some("keyring") => Some(KeyHome::Keyring),
            Some("file") => Some(KeyHome::File(key_file_path(path))),
            _ => None,
        },
    )
}

/// Removes the token file's key (from the keyring, or its key file) and the record of
/// where it was: what `d365 logout` does when no sign-in is left.
pub(crate) fn forget(path: &Path) -> anyhow::Result<()> {
    if recorded_home(path)? == Some(KeyHome::Keyring) {
        let account = account(path);
        // An entry already gone is what we want; a keyring that does not answer keeps it.
        let _ = with_keyring(move || {
            keyring::Entry::new(KEYRING_SERVICE, &account)?.delete_credential()
        });
    }
    for file in [key_file_path(path), marker_path(path)] {
        match std::fs::remove_file(&file) {
            Ok(()) => {}
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => {
                return Err(error).with_context(|| format!("cannot remove {}", file.display()));
            }
        }
    }
    Ok(())
}

fn load_or_create(path: &Path, choice: KeyStoreChoice) -> anyhow::Result<(EncryptionKey, KeyHome)> {
    let recorded = recorded_home(path)?;
    let wanted = match (choice, &recorded) {
        (KeyStoreChoice::Keyring, _) => KeyStoreChoice::Keyring,
        (KeyStoreChoice::File, _) => KeyStoreChoice::File,
        (KeyStoreChoice::Auto, Some(KeyHome::Keyring)) => KeyStoreChoice::Keyring,
        (KeyStoreChoice::Auto, Some(KeyHome::File(_))) => KeyStoreChoice::File,
        (KeyStoreChoice::Auto, None) => KeyStoreChoice::Auto,
    };
    if wanted != KeyStoreChoice::File {
        match keyring_key(path) {
            Ok(key) => {
                record(path, "keyring")?;
                return Ok((key, KeyHome::Keyring));
            }
            Err(error) if wanted == KeyStoreChoice::Keyring => {
                return Err(error).context(
                    "the OS keyring did not answer; unlock it, or keep the key in a file with D365_TOKEN_KEY_STORE=file",
                );
            }
            Err(error) => {
                tracing::debug!(error = %format!("{error:#}"), "no OS keyring; the token file's key goes to a key file");
            }
        }
    }
    let key = file_key(path)?;
    record(path, "file")?;
    Ok((key, KeyHome::File(key_file_path(path))))
}

/// The key from the keyring, created there when absent.
fn keyring_key(path: &Path) -> anyhow::Result<EncryptionKey> {
    let account = account(path);
    let existing = {
        let account = account.clone();
        with_keyring(move || keyring::Entry::new(KEYRING_SERVICE, &account)?.get_password())
    };
    match existing {
        Ok(text) => EncryptionKey::from_base64(&text)
            .map_err(|error| anyhow::anyhow!("the keyring's d365 key is not a key ({error})")),
        Err(KeyringError::Keyring(keyring::Error::NoEntry)) => {
            let key = EncryptionKey::generate()?;
            let text = key.to_base64().expose_secret().to_owned();
            with_keyring(move || {
                keyring::Entry::new(KEYRING_SERVICE, &account)?.set_password(&text)
            })
            .map_err(|error| anyhow::anyhow!("the OS keyring refused the key ({error})"))?;
            Ok(key)
        }
        Err(error) => Err(anyhow::anyhow!("no OS keyring ({error})")),
    }
}

/// The key from the key file, created (0600) when absent.
fn file_key(path: &Path) -> anyhow::Result<EncryptionKey> {
    let key_path = key_file_path(path);
    if let Some(text) = read_text(&key_path)? {
        return EncryptionKey::from_base64(&text).map_err(|error| {
            anyhow::anyhow!(
                "{} does not hold a key ({error}); remove it (tokens encrypted with it are lost) and sign in again",
                key_path.display()
            )
        });
    }
    let key = EncryptionKey::generate()?;
    if let Some(parent) = key_path
        .parent()
        .filter(|parent| !parent.as_os_str().is_empty())
    {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    replace_private_file(&key_path, key.to_base64().expose_secret().as_bytes())
        .with_context(|| format!("cannot write the key file {}", key_path.display()))?;
    Ok(key)
}

fn record(path: &Path, home: &str) -> anyhow::Result<()> {
    let marker = marker_path(path);
    if read_text(&marker)?.as_deref().map(str::trim) == Some(home) {
        return Ok(());
    }
    if let Some(parent) = marker
        .parent()
        .filter(|parent| !parent.as_os_str().is_empty())
    {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    replace_private_file(&marker, format!("{home}\n").as_bytes())
        .with_context(|| format!("cannot write {}", marker.display()))
}

fn read_text(path: &Path) -> anyhow::Result<Option<String>> {
    let bytes = read_private_file(path, MAX_SMALL_FILE)
        .with_context(|| format!("cannot read {}", path.display()))?;
    bytes
        .map(|bytes| {
            String::from_utf8(bytes).with_context(|| format!("{} is not text", path.display()))
        })
        .transpose()
}

fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

fn key_file_path(path: &Path) -> PathBuf {
    sibling(path, ".key")
}

fn marker_path(path: &Path) -> PathBuf {
    sibling(path, ".keystore")
}

/// The keyring account of a token file: its path, so two token files have two keys.
fn account(path: &Path) -> String {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    format!("token-file-key:{}", absolute.display())
}

/// A keyring failure, or a keyring that did not answer in time.
#[derive(Debug)]
enum KeyringError {
    Keyring(keyring::Error),
    Silent,
}

impl fmt::Display for KeyringError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Keyring(error) => write!(f, "{error}"),
            Self::Silent => write!(f, "no answer within {} s", KEYRING_TIMEOUT.as_secs()),
        }
    }
}

/// Runs a keyring call on a thread of its own, inside a multi-threaded runtime (the
/// Secret Service client spawns tasks that must run while this thread waits), and gives
/// up after [`KEYRING_TIMEOUT`]: a desktop keyring that waits for a password prompt nobody
/// sees must not hang the command. The caller's runtime when it is multi-threaded; a
/// one-thread runtime (a command that sends one request) cannot run those tasks while its
/// only thread waits here, so the call gets a runtime of its own.
fn with_keyring<T: Send + 'static>(
    call: impl FnOnce() -> keyring::Result<T> + Send + 'static,
) -> Result<T, KeyringError> {
    let (sender, receiver) = mpsc::channel();
    let caller = tokio::runtime::Handle::try_current()
        .ok()
        .filter(|handle| handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
    std::thread::spawn(move || {
        let own = match caller {
            Some(_) => None,
            None => tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .ok(),
        };
        let handle = caller.or_else(|| own.as_ref().map(|runtime| runtime.handle().clone()));
        let _entered = handle.as_ref().map(tokio::runtime::Handle::enter);
        let _ = sender.send(call());
    });
    match receiver.recv_timeout(KEYRING_TIMEOUT) {
        Ok(outcome) => outcome.map_err(KeyringError::Keyring),
        Err(_) => Err(KeyringError::Silent),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_file_is_created_once_private_and_recorded() {
        let dir = tempfile::tempdir().unwrap();
        let tokens = dir.path().join("tokens.json");
        let (_, home) = open_store(&tokens, KeyStoreChoice::File).unwrap();
        assert_eq!(home, KeyHome::File(dir.path().join("tokens.json.key")));
        let first = std::fs::read_to_string(dir.path().join("tokens.json.key")).unwrap();
        open_store(&tokens, KeyStoreChoice::Auto).unwrap();
        let second = std::fs::read_to_string(dir.path().join("tokens.json.key")).unwrap();
        assert_eq!(
            first, second,
            "the recorded home is kept, and so is the key"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(dir.path().join("tokens.json.key"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert_eq!(recorded_home(&tokens).unwrap(), Some(home));
        forget(&tokens).unwrap();
        assert!(!dir.path().join("tokens.json.key").exists());
        assert_eq!(recorded_home(&tokens).unwrap(), None);
    }
}
