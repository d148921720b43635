//! What the `d365` binary's tests share: a `d365` process with a private configuration
//! directory and no connection from the environment, `d365 emulator` running in the
//! background, a bare HTTP client for the emulator's admin API and pages, and a runner for
//! commands that sign in with the device code grant.

use std::ops::Deref;
use std::path::{Path, PathBuf};

use assert_cmd::Command;

/// `d365` with a private config directory and no connection from the environment.
pub(crate) fn d365(config: &Path) -> Command {
    Command::from_std(d365_process(config))
}

/// As [`d365`], as a plain process (for commands read while they run).
pub(crate) fn d365_process(config: &Path) -> std::process::Command {
    let mut command = std::process::Command::new(assert_cmd::cargo::cargo_bin("d365"));
    command
        .env("D365_CONFIG_DIR", config)
        .env("D365_TOKEN_CACHE", config.join("tokens.json"))
        .env("NO_COLOR", "1")
        // Never the real OS keyring: the token file's key goes to a file in `config`.
        .env("D365_TOKEN_KEY_STORE", "file")
        .env_remove("D365_CONNECTION_STRING")
        .env_remove("D365_CONNECTION_STRING_FILE")
        .env_remove("D365_PROFILE")
        .env_remove("D365_TIMEOUT")
        .env_remove("D365_MAX_RETRIES")
        .env_remove("D365_MAX_PAGES")
        .env_remove("D365_API_VERSION")
        .env_remove("D365_URL")
        .env_remove("D365_GRANT")
        .env_remove("AZURE_CLIENT_ID")
        .env_remove("AZURE_TENANT_ID")
        .env_remove("AZURE_CLIENT_SECRET")
        .env_remove("RUST_LOG")
        .env("COLUMNS", "200");
    command
}

/// A private configuration directory (mode 0700, a random name), removed when dropped.
pub(crate) struct TempConfig(tempfile::TempDir);

impl Deref for TempConfig {
    type Target = Path;

    fn deref(&self) -> &Path {
        self.0.path()
    }
}

impl AsRef<Path> for TempConfig {
    fn as_ref(&self) -> &Path {
        self.0.path()
    }
}

/// A private configuration directory for the test `name`.
pub(crate) fn temp_config(name: &str) -> TempConfig {
    TempConfig(
        tempfile::Builder::new()
            .prefix(&format!("d365-cli-{name}-"))
            .tempdir()
            .unwrap(),
    )
}

pub(crate) fn stdout(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub(crate) fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The seeded user alice's system user in the emulator's organization (WhoAmI's UserId).
pub(crate) const ALICE_SYSTEMUSER_ID: &str = "d3650000-5050-4000-8000-000000000003";

/// `d365 emulator` running in the background: one organization shared by several commands.
pub(crate) struct RunningEmulator {
    child: std::process::Child,
    pub(crate) base_url: String,
    pub(crate) connection_string: String,
    pub(crate) certificate_connection_string: String,
    /// alice's connection string (`AuthType=OAuth`, the public client).
    pub(crate) user_connection_string: String,
    /// Every connection string it printed, in order: the confidential app, the
    /// certificate app, alice, the read-only app, the app without an application user.
    pub(crate) connection_strings: Vec<String>,
    /// Where its stderr (its logs) goes.
    pub(crate) log_file: PathBuf,
    /// The CA certificate (PEM file) to trust, with `--https -o json`.
    pub(crate) ca_certificate: Option<PathBuf>,
}

impl RunningEmulator {
    pub(crate) fn start(config: &Path) -> Self {
        Self::start_with(config, &[])
    }

    /// `d365 emulator` with `args`; its logs go to `emulator.log` in `config`.
    pub(crate) fn start_with(config: &Path, args: &[&str]) -> Self {
        Self::start_with_env(config, args, &[])
    }

    /// As [`Self::start_with`], with extra environment variables (`RUST_LOG`).
    pub(crate) fn start_with_env(config: &Path, args: &[&str], env: &[(&str, &str)]) -> Self {
        use std::io::BufRead as _;
        let log_file = config.join("emulator.log");
        let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("d365"))
            .args(["emulator"])
            .args(args)
            .env("D365_CONFIG_DIR", config)
            .env("NO_COLOR", "1")
            .envs(env.iter().copied())
            .stdout(std::process::Stdio::piped())
            .stderr(std::fs::File::create(&log_file).unwrap())
            .spawn()
            .unwrap();
        let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
        let mut base_url = None;
        let mut ca_certificate = None;
        let mut connection_strings = Vec::new();
        for line in lines.by_ref() {
            let line = line.unwrap();
            // `-o json`: everything comes on one line.
            if line.starts_with('{') {
                let announcement: serde_json::Value = serde_json::from_str(&line).unwrap();
                base_url = announcement["base_url"].as_str().map(str::to_owned);
                ca_certificate = announcement["ca_certificate"].as_str().map(PathBuf::from);
                connection_strings = announcement["connections"]
                    .as_array()
                    .expect("the JSON line lists the connections")
                    .iter()
                    .map(|connection| connection["connection_string"].as_str().unwrap().to_owned())
                    .collect();
                break;
            }
            if let Some(base) = line.strip_prefix("d365 emulator: Entra ID and Dataverse at ") {
                base_url = Some(base.trim().to_owned());
            }
            if line.trim_start().starts_with("AuthType=") || line.trim_start().starts_with("Grant=")
            {
                connection_strings.push(line.trim().to_owned());
            }
            if line.starts_with("Press Ctrl-C") {
                break;
            }
        }
        // Keep draining stdout so the emulator never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        let first = |auth_type: &str| {
            connection_strings
                .iter()
                .find(|printed| printed.starts_with(auth_type))
                .unwrap_or_else(|| panic!("the emulator prints a {auth_type} connection string"))
                .clone()
        };
        Self {
            child,
            base_url: base_url.expect("the emulator prints its base URL"),
            connection_string: first("AuthType=ClientSecret"),
            certificate_connection_string: first("AuthType=Certificate"),
            user_connection_string: first("AuthType=OAuth"),
            connection_strings,
            log_file,
            ca_certificate,
        }
    }

    /// Stops it with Ctrl-C and checks it exits cleanly.
    pub(crate) fn stop(mut self) {
        let status = std::process::Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let exited = self.child.wait().unwrap();
        assert!(
            exited.success(),
            "Ctrl-C stops the emulator cleanly: {exited:?}"
        );
    }
}

impl Drop for RunningEmulator {
    /// A test that fails before `stop` leaves no emulator running.
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// One HTTP/1.1 POST to a loopback URL, without a client library: `(status, body)`.
pub(crate) fn http_post(url: &str, content_type: &str, body: &str) -> (u16, String) {
    http_request("POST", url, content_type, body)
}

/// One HTTP/1.1 request to a loopback URL, without a client library: `(status, body)`.
pub(crate) fn http_request(
    method: &str,
    url: &str,
    content_type: &str,
    body: &str,
) -> (u16, String) {
    use std::io::{Read as _, Write as _};
    let rest = url.strip_prefix("http://").expect("a loopback http URL");
    let (host, path) = rest
        .split_once('/')
        .map_or((rest, "/".to_owned()), |(host, path)| {
            (host, format!("/{path}"))
        });
    let mut stream = std::net::TcpStream::connect(host).unwrap();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    let body = answer
        .split_once("\r\n\r\n")
        .map_or("", |(_, body)| body)
        .to_owned();
    (status, body)
}

/// A `d365` command that signs in with the device code grant, run in the background: it
/// reads stderr until the sign-in message, hands the page and the code to `approve`, then
/// waits for the command to finish. Returns its exit code, stdout and all of stderr.
pub(crate) fn with_device_code(
    mut command: std::process::Command,
    approve: impl FnOnce(&str, &str),
) -> (Option<i32>, String, String) {
    use std::io::{BufRead as _, Read as _};
    let mut child = command
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    let mut line = String::new();
    while stderr.read_line(&mut line).unwrap() > 0 {
        seen.push_str(&line);
        if let Some(rest) = line.strip_prefix("To sign in, use a web browser to open the page ") {
            let (page, rest) = rest.split_once(" and enter the code ").unwrap();
            let code = rest.split_whitespace().next().unwrap();
            approve(page, code);
            break;
        }
        line.clear();
    }
    let mut rest = String::new();
    stderr.read_to_string(&mut rest).unwrap();
    seen.push_str(&rest);
    let output = child.wait_with_output().unwrap();
    (output.status.code(), stdout(&output), seen)
}
