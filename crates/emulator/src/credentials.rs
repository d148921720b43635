//! The credential files an emulator writes for clients that read them from disk: the seeded
//! certificate app's certificate and key and, with https, the CA. Each file replaces what
//! was there atomically and never through a symlink, and all are removed when the emulator
//! stops.

use std::path::{Path, PathBuf};

use secrecy::ExposeSecret as _;

use crate::error::EmulatorError;
use crate::keys::TlsMaterial;
use crate::seed::SeededIdentities;

/// Where [`EmulatorBuilder`](crate::EmulatorBuilder) writes the credential files.
#[derive(Debug, Clone)]
pub(crate) enum CredentialsDir {
    /// A directory the caller named.
    Named(PathBuf),
    /// A new private directory of this emulator's own.
    Private,
}

/// The credential files an emulator wrote, removed when it stops (with the directory, when
/// it was the emulator's own).
#[derive(Debug)]
pub(crate) struct WrittenCredentials {
    pub(crate) dir: PathBuf,
    files: Vec<PathBuf>,
    /// Removes the private directory when dropped.
    _private: Option<tempfile::TempDir>,
}

impl Drop for WrittenCredentials {
    fn drop(&mut self) {
        for file in &self.files {
            let _ = std::fs::remove_file(file);
        }
    }
}

/// Replaces `path` with `contents` through a new file beside it, created exclusively with
/// `mode` (never opening an existing file or a symlink), synced, and renamed over `path`.
fn write_file(path: &Path, contents: &str, mode: u32) -> Result<(), EmulatorError> {
    use std::io::Write as _;
    let fail = |source| EmulatorError::WriteCredentials {
        path: path.to_owned(),
        source,
    };
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    let mut builder = tempfile::Builder::new();
    builder.prefix(".d365-emulator-").suffix(".tmp");
    #[cfg(unix)]
    builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(mode));
    #[cfg(not(unix))]
    let _ = mode;
    let mut file = builder.tempfile_in(dir).map_err(fail)?;
    file.write_all(contents.as_bytes()).map_err(fail)?;
    file.as_file().sync_all().map_err(fail)?;
    file.persist(path).map_err(|error| fail(error.error))?;
    Ok(())
}

/// Creates `dir` with mode 0700 when missing.
fn create_private_dir(dir: &Path) -> Result<(), EmulatorError> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder
        .create(dir)
        .map_err(|source| EmulatorError::WriteCredentials {
            path: dir.to_owned(),
            source,
        })
}

/// Writes the credential files into `target`: the seeded certificate app's certificate and
/// key (when seeded) and the CA (with https).
pub(crate) fn write_credentials(
    target: &CredentialsDir,
    seeded: Option<&SeededIdentities>,
    tls: Option<&TlsMaterial>,
) -> Result<WrittenCredentials, EmulatorError> {
    let (dir, private) = match target {
        CredentialsDir::Named(dir) => {
            create_private_dir(dir)?;
            (dir.clone(), None)
        }
        CredentialsDir::Private => {
            let mut builder = tempfile::Builder::new();
            builder.prefix("d365-emulator-");
            #[cfg(unix)]
            builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o700));
            let temporary =
                builder
                    .tempdir()
                    .map_err(|source| EmulatorError::WriteCredentials {
                        path: std::env::temp_dir(),
                        source,
                    })?;
            (temporary.path().to_owned(), Some(temporary))
        }
    };
    let mut written = WrittenCredentials {
        dir,
        files: Vec::new(),
        _private: private,
    };
    let mut write = |name: &str, contents: &str, mode: u32| {
        let path = written.dir.join(name);
        write_file(&path, contents, mode)?;
        written.files.push(path);
        Ok::<_, EmulatorError>(())
    };
    if let Some(seeded) = seeded {
        let app = &seeded.certificate_app;
        write("certificate-app.crt.pem", &app.certificate_pem, 0o644)?;
        write(
            "certificate-app.key.pem",
            app.private_key_pem.expose_secret(),
            0o600,
        )?;
    }
    if let Some(tls) = tls {
        write("ca.crt.pem", &tls.ca_pem, 0o644)?;
    }
    Ok(written)
}
