//! External client assertions: a JWT made by someone else — a callback of the caller's,
//! or a federated token file that a platform (Kubernetes workload identity, GitHub
//! Actions) rewrites before the token in it expires.

use std::fmt;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::time::SystemTime;

use d365_auth_core::AuthError;
use d365_auth_core::grant::credential_fingerprint;
use d365_auth_core::store::read_private_file;
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::Mutex;

/// The largest federated token file read: a JWT is a few kilobytes.
const MAX_TOKEN_FILE: u64 = 64 * 1024;

/// The future an assertion callback returns.
pub type AssertionFuture = Pin<Box<dyn Future<Output = Result<SecretString, AuthError>> + Send>>;

type Callback = Arc<dyn Fn() -> AssertionFuture + Send + Sync>;

/// Where an external assertion comes from.
#[derive(Clone)]
pub(crate) enum ExternalAssertion {
    Callback(Callback),
    File(Arc<FederatedTokenFile>),
}

impl ExternalAssertion {
    /// Which source this is, for the cache key: the token file's path, or one fingerprint
    /// for every callback (a closure has no identity to hash).
    pub(crate) fn fingerprint(&self) -> String {
        match self {
            Self::Callback(_) => credential_fingerprint("assertion_callback", b""),
            Self::File(file) => credential_fingerprint(
                "federated_token_file",
                file.path.as_os_str().as_encoded_bytes(),
            ),
        }
    }

    pub(crate) fn callback<F, Fut>(callback: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<SecretString, AuthError>> + Send + 'static,
    {
        Self::Callback(Arc::new(move || Box::pin(callback())))
    }

    /// The current assertion, without the white space around it (a file written with a
    /// trailing newline is the usual case).
    pub(crate) async fn assertion(&self) -> Result<SecretString, AuthError> {
        match self {
            Self::Callback(callback) => {
                let assertion = callback().await?;
                let trimmed = assertion.expose_secret().trim();
                if trimmed.len() == assertion.expose_secret().len() {
                    Ok(assertion)
                } else {
                    Ok(SecretString::from(trimmed))
                }
            }
            Self::File(file) => file.read().await,
        }
    }
}

impl fmt::Debug for ExternalAssertion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Callback(_) => f.write_str("ExternalAssertion::Callback"),
            Self::File(file) => f
                .debug_tuple("ExternalAssertion::File")
                .field(&file.path)
                .finish(),
        }
    }
}

/// A token file such as the one `AZURE_FEDERATED_TOKEN_FILE` names. It is read again
/// whenever its modification time or size changes, so a token rotated by the platform
/// is picked up at the next request (a stale one gets AADSTS700024).
pub(crate) struct FederatedTokenFile {
    path: PathBuf,
    cached: Mutex<Option<(FileStamp, SecretString)>>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
struct FileStamp {
    modified: Option<SystemTime>,
    len: u64,
}

impl FederatedTokenFile {
    pub(crate) fn new(path: &Path) -> Self {
        Self {
            path: path.to_owned(),
            cached: Mutex::new(None),
        }
    }

    async fn read(&self) -> Result<SecretString, AuthError> {
        let metadata = tokio::fs::metadata(&self.path)
            .await
            .map_err(|error| self.unreadable(error))?;
        let stamp = FileStamp {
            modified: metadata.modified().ok(),
            len: metadata.len(),
        };
        let mut cached = self.cached.lock().await;
        if let Some((seen, token)) = cached.as_ref()
            && *seen == stamp
        {
            return Ok(token.clone());
        }
        // A regular file of a sane size only: a FIFO or a device planted at the path would
        // hang or exhaust the reading thread.
        let path = self.path.clone();
        let bytes = tokio::task::spawn_blocking(move || read_private_file(&path, MAX_TOKEN_FILE))
            .await
            .map_err(|error| {
                AuthError::credential(
                    "reading the federated token file did not finish",
                    Some(Box::new(error)),
                )
            })?
            .map_err(|error| self.unreadable(error))?
            .ok_or_else(|| self.unreadable(std::io::Error::from(std::io::ErrorKind::NotFound)))?;
        let text = String::from_utf8(bytes).map_err(|_| {
            AuthError::credential(
                format!(
                    "the federated token file {} is not UTF-8 text",
                    self.path.display()
                ),
                None,
            )
        })?;
        let token = text.trim();
        if token.is_empty() {
            return Err(AuthError::credential(
                format!(
                    "the federated token file {} is empty; the platform that writes it (workload identity, a CI system) has not provided a token",
                    self.path.display()
                ),
                None,
            ));
        }
        let token = SecretString::from(token);
        tracing::debug!(path = %self.path.display(), "federated token file read");
        *cached = Some((stamp, token.clone()));
        Ok(token)
    }

    fn unreadable(&self, error: std::io::Error) -> AuthError {
        AuthError::credential(
            format!(
                "the federated token file {} could not be read: {error}; check AZURE_FEDERATED_TOKEN_FILE and the file's permissions",
                self.path.display()
            ),
            Some(Box::new(error)),
        )
    }
}

/// Whether `text` has the shape of a JWT (three base64url parts), to catch a path or a
/// secret given where an assertion belongs.
pub(crate) fn looks_like_jwt(text: &SecretString) -> bool {
    let parts: Vec<&str> = text.expose_secret().split('.').collect();
    parts.len() == 3
        && parts.iter().all(|part| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'=')
        })
}
