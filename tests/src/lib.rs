//! Shared helpers for the workspace-level tests in `tests/tests/`: finding the third-party
//! peers `cargo xtask test` installs, and running the oauth2-mock-server launcher.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

/// Where `cargo xtask test` installs interop peers: `$D365_INTEROP_DIR`, or
/// `target/interop` in the workspace.
#[must_use]
pub fn interop_dir() -> PathBuf {
    std::env::var_os("D365_INTEROP_DIR").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/interop"),
        PathBuf::from,
    )
}

/// Whether an interop peer is installed. When it is not: under CI this panics (a needed
/// test must never skip silently there); elsewhere it says how to install it and the
/// caller skips.
///
/// # Panics
///
/// Under `CI=true` when the peer is missing.
#[must_use]
pub fn interop_available(relative: &str) -> bool {
    let path = interop_dir().join(relative);
    if path.exists() {
        return true;
    }
    let message = format!(
        "interop peer {} is not installed; run `cargo xtask test` (it installs the interop peers)",
        path.display()
    );
    assert!(std::env::var("CI").as_deref() != Ok("true"), "{message}");
    #[allow(clippy::print_stderr)]
    {
        eprintln!("skipping: {message}");
    }
    false
}

/// oauth2-mock-server running behind `tests/interop/oauth2_mock_server.mjs`.
pub struct MockServer {
    /// The token endpoint URL.
    pub token_url: String,
    child: Child,
    lines: Lines<BufReader<ChildStdout>>,
}

impl MockServer {
    /// Starts the server with what it should expect (see the script's header).
    ///
    /// # Panics
    ///
    /// When node or the script cannot start, or it does not become ready in 30 seconds.
    pub async fn start(expect: &serde_json::Value) -> Self {
        let script =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("interop/oauth2_mock_server.mjs");
        let mut child = Command::new("node")
            .arg(script)
            .env("D365_INTEROP_DIR", interop_dir())
            .env("D365_INTEROP_EXPECT", expect.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("node starts (Node.js is needed for the interop tests)");
        let mut lines = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
        let ready = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .expect("oauth2-mock-server is ready within 30 s")
            .expect("its stdout is readable")
            .expect("it prints a ready line");
        let ready: serde_json::Value =
            serde_json::from_str(&ready).expect("the ready line is JSON");
        let token_url = ready["ready"]
            .as_str()
            .expect("the ready line names the endpoint")
            .to_owned();
        Self {
            token_url,
            child,
            lines,
        }
    }

    /// The report of the next token request the server answered.
    ///
    /// # Panics
    ///
    /// When no report arrives within 10 seconds.
    pub async fn next_report(&mut self) -> serde_json::Value {
        let line = tokio::time::timeout(Duration::from_secs(10), self.lines.next_line())
            .await
            .expect("a report within 10 s")
            .expect("stdout is readable")
            .expect("a report line");
        serde_json::from_str(&line).expect("reports are JSON")
    }

    /// Stops the server (closing its stdin makes it exit).
    pub async fn stop(mut self) {
        drop(self.child.stdin.take());
        let _ = tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await;
    }
}
