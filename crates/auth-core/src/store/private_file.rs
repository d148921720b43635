//! Files that hold secrets, read and written safely: [`read_private_file`] refuses anything
//! that is not a regular file and caps the size; [`replace_private_file`] replaces a file
//! only with complete contents, never through a symlink and never with wider permissions.
//!
//! Both serve every file d365 keeps on disk (the token file, the command line's profiles and
//! secrets), and any store that keeps its data in a file.

use std::fs::{File, OpenOptions};
use std::io::{self, Read as _, Write as _};
use std::path::Path;

/// Reads the file at `path`, at most `max_len` bytes; `Ok(None)` when it does not exist.
///
/// Refused, without blocking: anything that is not a regular file once opened (a FIFO, a
/// device such as `/dev/zero`, a directory, a socket), as
/// [`io::ErrorKind::InvalidInput`]; a file larger than `max_len`, as
/// [`io::ErrorKind::FileTooLarge`]. A symlink is followed to its target, which must be a
/// regular file.
///
/// # Errors
///
/// The refusals above, and any error opening or reading the file.
///
/// # Examples
///
/// ```
/// # fn run() -> std::io::Result<()> {
/// use d365_auth_core::store::read_private_file;
///
/// assert!(read_private_file(std::path::Path::new("/nonexistent/d365"), 1024)?.is_none());
/// # #[cfg(unix)]
/// assert!(read_private_file(std::path::Path::new("/dev/zero"), 1024).is_err());
/// # Ok(()) }
/// # run().unwrap();
/// ```
pub fn read_private_file(path: &Path, max_len: u64) -> io::Result<Option<Vec<u8>>> {
    let mut options = OpenOptions::new();
    options.read(true);
    // Opening a FIFO for reading blocks until a writer comes: never wait for one.
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::custom_flags(&mut options, libc::O_NONBLOCK);
    let file = match options.open(path) {
        Ok(file) => file,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(error),
    };
    let metadata = file.metadata()?;
    if !metadata.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "{} is not a regular file (a device, FIFO, socket or directory): refusing to read it",
                path.display()
            ),
        ));
    }
    if metadata.len() > max_len {
        return Err(too_large(path, max_len));
    }
    let mut contents = Vec::new();
    file.take(max_len + 1).read_to_end(&mut contents)?;
    if contents.len() as u64 > max_len {
        return Err(too_large(path, max_len));
    }
    Ok(Some(contents))
}

fn too_large(path: &Path, max_len: u64) -> io::Error {
    io::Error::new(
        io::ErrorKind::FileTooLarge,
        format!(
            "{} is larger than {max_len} bytes, more than d365 ever writes there: refusing to read it",
            path.display()
        ),
    )
}

/// Replaces the file at `path` with `contents`, so that a reader sees the old contents or
/// the new, never a part of either:
///
/// 1. a new temporary file in the target's directory, created exclusively (`O_EXCL`: an
///    existing file or symlink of that name is never opened) with mode `0600`;
/// 2. the contents written and `fsync`ed;
/// 3. renamed over the target — a symlink at `path` is replaced, never followed — and the
///    directory `fsync`ed so the rename survives a crash.
///
/// A missing directory is created with mode `0700`. On failure the temporary file is
/// removed and the target is left as it was.
///
/// # Errors
///
/// Any error creating the directory or the file, writing, syncing or renaming.
///
/// # Examples
///
/// ```
/// # fn run() -> std::io::Result<()> {
/// use d365_auth_core::store::{read_private_file, replace_private_file};
///
/// let dir = std::env::temp_dir().join(format!("d365-doc-private-{}", std::process::id()));
/// let path = dir.join("secrets.toml");
/// replace_private_file(&path, b"key = \"value\"\n")?;
/// assert_eq!(read_private_file(&path, 1024)?.unwrap(), b"key = \"value\"\n");
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok(()) }
/// # run().unwrap();
/// ```
pub fn replace_private_file(path: &Path, contents: &[u8]) -> io::Result<()> {
    let directory = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    create_private_dir(directory)?;
    let name = path
        .file_name()
        .map_or_else(|| "d365".into(), |name| name.to_string_lossy().into_owned());
    let prefix = format!(".{name}.");
    let mut builder = tempfile::Builder::new();
    builder.prefix(&prefix).suffix(".tmp");
    #[cfg(unix)]
    builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600));
    let mut temporary = builder.tempfile_in(directory)?;
    temporary.write_all(contents)?;
    temporary.as_file().sync_all()?;
    temporary.persist(path).map_err(|error| error.error)?;
    sync_directory(directory);
    Ok(())
}

/// Creates `directory` (and its parents) with mode `0700` when missing; an existing one is
/// left as it is.
pub(crate) fn create_private_dir(directory: &Path) -> io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(directory)
}

/// Makes a rename in `directory` durable (Unix; elsewhere the rename is as durable as it
/// gets). A failure only costs durability, so it is logged, not returned.
fn sync_directory(directory: &Path) {
    #[cfg(unix)]
    if let Err(error) = File::open(directory).and_then(|dir| dir.sync_all()) {
        tracing::debug!(path = %directory.display(), %error, "could not sync the directory");
    }
    #[cfg(not(unix))]
    let _ = (directory, File::open);
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    fn scratch(name: &str) -> std::path::PathBuf {
        let dir =
            std::env::temp_dir().join(format!("d365-private-file-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn a_symlink_at_the_target_is_replaced_never_followed() {
        let dir = scratch("symlink");
        let victim = dir.join("victim");
        std::fs::write(&victim, "untouched").unwrap();
        std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o644)).unwrap();
        let target = dir.join("secrets.toml");
        std::os::unix::fs::symlink(&victim, &target).unwrap();
        replace_private_file(&target, b"secret").unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "untouched");
        let metadata = std::fs::symlink_metadata(&target).unwrap();
        assert!(metadata.is_file(), "the symlink itself was replaced");
        assert_eq!(metadata.permissions().mode() & 0o777, 0o600);
        assert_eq!(
            std::fs::metadata(&victim).unwrap().permissions().mode() & 0o777,
            0o644,
            "the symlink's target keeps its mode"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_wider_existing_file_is_replaced_by_a_private_one() {
        let dir = scratch("mode");
        let target = dir.join("profiles.toml");
        std::fs::write(&target, "old").unwrap();
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o666)).unwrap();
        replace_private_file(&target, b"new").unwrap();
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "new");
        assert_eq!(
            std::fs::metadata(&target).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let leftovers: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .filter_map(Result::ok)
            .filter(|entry| entry.file_name().to_string_lossy().ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn devices_fifos_directories_and_large_files_are_refused_without_blocking() {
        let dir = scratch("read");
        let fifo = dir.join("tokens.json");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());
        let error = read_private_file(&fifo, 1 << 20).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidInput, "{error}");
        let error = read_private_file(Path::new("/dev/zero"), 1 << 20).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidInput, "{error}");
        let error = read_private_file(&dir, 1 << 20).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidInput, "{error}");
        let big = dir.join("big");
        std::fs::write(&big, vec![b'x'; 2048]).unwrap();
        let error = read_private_file(&big, 1024).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::FileTooLarge, "{error}");
        assert_eq!(read_private_file(&big, 2048).unwrap().unwrap().len(), 2048);
        assert!(
            read_private_file(&dir.join("absent"), 10)
                .unwrap()
                .is_none()
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
