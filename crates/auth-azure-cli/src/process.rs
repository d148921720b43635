//! Finding `az` and running it: no shell, arguments passed as they are, stdin closed, a
//! fixed working directory, a timeout after which the process is killed, and a size cap on
//! what it writes.

use std::ffi::{OsStr, OsString};
use std::future::{Future, poll_fn};
use std::io;
use std::path::{Path, PathBuf};
use std::pin::pin;
use std::process::{ExitStatus, Stdio};
use std::task::Poll;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt as _};
use tokio::process::Command;

/// The most the Azure CLI may write to stdout, and to stderr: a token answer is a few KiB.
pub(crate) const OUTPUT_CAP: usize = 1024 * 1024;

/// The names `az` goes by, in order of preference. On Windows the Azure CLI installs
/// `az.cmd`, which azure-identity prefers (Azure/azure-sdk-for-python#41806).
#[cfg(windows)]
const PROGRAM_NAMES: &[&str] = &["az.cmd", "az.exe"];
#[cfg(not(windows))]
const PROGRAM_NAMES: &[&str] = &["az"];

/// What the Azure CLI did, when it ran to the end.
pub(crate) struct Finished {
    pub(crate) status: ExitStatus,
    pub(crate) stdout: Vec<u8>,
    pub(crate) stderr: Vec<u8>,
}

/// Why the Azure CLI did not run to the end.
#[derive(Debug)]
pub(crate) enum RunError {
    /// It could not be started.
    Spawn(io::Error),
    /// It ran longer than the timeout and was killed.
    TimedOut,
    /// It wrote more than [`OUTPUT_CAP`] to `stream` and was killed.
    TooLarge { stream: &'static str },
    /// Its output could not be read.
    Read(io::Error),
}

/// The first `az` in `search_path`: a file that may be executed, in an absolute directory
/// (a relative one, such as `.`, would run whatever the current directory holds).
pub(crate) fn find_program(search_path: &OsStr) -> Option<PathBuf> {
    std::env::split_paths(search_path)
        .filter(|directory| directory.is_absolute())
        .flat_map(|directory| PROGRAM_NAMES.iter().map(move |name| directory.join(name)))
        .find(|candidate| is_executable(candidate))
}

/// The process `PATH`.
pub(crate) fn process_path() -> OsString {
    std::env::var_os("PATH").unwrap_or_default()
}

/// Whether `path` is a file the current user may execute (following symbolic links, as
/// `az` is often one).
pub(crate) fn is_executable(path: &Path) -> bool {
    let Ok(metadata) = std::fs::metadata(path) else {
        return false;
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        metadata.is_file() && metadata.permissions().mode() & 0o111 != 0
    }
    #[cfg(not(unix))]
    {
        metadata.is_file()
    }
}

/// Where `az` runs: a directory that exists everywhere and holds nothing of the caller's,
/// as azure-identity does (`/bin`, or `%SYSTEMROOT%` on Windows).
fn working_directory() -> PathBuf {
    #[cfg(windows)]
    {
        std::env::var_os("SYSTEMROOT").map_or_else(|| PathBuf::from(r"C:\Windows"), PathBuf::from)
    }
    #[cfg(not(windows))]
    {
        let bin = PathBuf::from("/bin");
        if bin.is_dir() {
            bin
        } else {
            PathBuf::from("/")
        }
    }
}

/// Runs `program` with `args` until it exits, `timeout` passes or it writes too much. The
/// process is killed in the last two cases, and whenever the returned future is dropped.
pub(crate) async fn run(
    program: &Path,
    args: &[&str],
    timeout: Duration,
) -> Result<Finished, RunError> {
    let mut child = Command::new(program)
        .args(args)
        .current_dir(working_directory())
        .env("AZURE_CORE_NO_COLOR", "true")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(RunError::Spawn)?;
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let outcome = tokio::time::timeout(timeout, async {
        let (stdout, stderr) = try_join(
            read_capped(stdout, "standard output"),
            read_capped(stderr, "standard error"),
        )
        .await?;
        let status = child.wait().await.map_err(RunError::Read)?;
        Ok(Finished {
            status,
            stdout,
            stderr,
        })
    })
    .await
    .unwrap_or(Err(RunError::TimedOut));
    if outcome.is_err() {
        // Gone already if it exited; otherwise it must not outlive the request.
        if let Err(error) = child.start_kill() {
            tracing::trace!(%error, "the Azure CLI process could not be killed (it has exited)");
        }
    }
    outcome
}

/// Everything `reader` gives until its end, refusing more than [`OUTPUT_CAP`].
async fn read_capped(
    reader: Option<impl AsyncRead + Unpin>,
    stream: &'static str,
) -> Result<Vec<u8>, RunError> {
    let Some(reader) = reader else {
        return Ok(Vec::new());
    };
    let mut buffer = Vec::with_capacity(8 * 1024);
    // One byte past the cap tells "exactly the cap" from "more".
    reader
        .take(OUTPUT_CAP as u64 + 1)
        .read_to_end(&mut buffer)
        .await
        .map_err(RunError::Read)?;
    if buffer.len() > OUTPUT_CAP {
        return Err(RunError::TooLarge { stream });
    }
    Ok(buffer)
}

/// Both results, or the first error as soon as it happens (so that a stream that overflows
/// does not wait for the other one to end). Without tokio's `macros` feature.
async fn try_join<A, B, E>(
    first: impl Future<Output = Result<A, E>>,
    second: impl Future<Output = Result<B, E>>,
) -> Result<(A, B), E> {
    let mut first = pin!(first);
    let mut second = pin!(second);
    let mut first_done = None;
    let mut second_done = None;
    poll_fn(|cx| {
        if first_done.is_none()
            && let Poll::Ready(result) = first.as_mut().poll(cx)
        {
            first_done = Some(result?);
        }
        if second_done.is_none()
            && let Poll::Ready(result) = second.as_mut().poll(cx)
        {
            second_done = Some(result?);
        }
        match (first_done.take(), second_done.take()) {
            (Some(a), Some(b)) => Poll::Ready(Ok((a, b))),
            (a, b) => {
                first_done = a;
                second_done = b;
                Poll::Pending
            }
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_directories_are_never_searched() {
        let path = std::env::join_paths([".", "bin", ""]).unwrap();
        assert_eq!(find_program(&path), None);
        assert_eq!(find_program(OsStr::new("")), None);
    }
}
