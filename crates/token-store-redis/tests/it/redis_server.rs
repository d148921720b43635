//! A real `redis-server` on a random loopback port, killed on drop, and a provider that
//! counts requests.
//!
//! `redis-server` comes from the Debian package of that name, which `cargo xtask test`
//! installs. Without it a test prints a skip note and passes, except under `CI=true`,
//! where a missing server is a failure.

#![allow(dead_code, unreachable_pub, clippy::print_stderr)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

use std::time::{Duration, Instant, SystemTime};

use d365_auth_core::{AccessToken, AuthError, Grant, TokenProvider, TokenRequest, async_trait};

/// The `redis-server` binary: `$D365_REDIS_SERVER`, or the first on `PATH` (or in the
/// Debian package's directory).
pub fn redis_server_binary() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("D365_REDIS_SERVER") {
        return Some(PathBuf::from(path));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/bin"), PathBuf::from("/usr/sbin")])
        .map(|dir| dir.join("redis-server"))
        .find(|candidate| candidate.is_file())
}

/// A free loopback port: bind port 0, read the port, let it go.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A `redis-server` process on 127.0.0.1, without persistence, killed on drop.
pub struct RedisServer {
    child: Child,
    pub port: u16,
    password: Option<String>,
}

impl RedisServer {
    /// Starts a server, or returns `None` after a skip note when `redis-server` is not
    /// installed (panics instead under `CI=true`).
    pub fn start() -> Option<Self> {
        Self::start_with(None)
    }

    /// Starts a server that requires `password` (`requirepass`).
    pub fn start_with(password: Option<&str>) -> Option<Self> {
        let Some(binary) = redis_server_binary() else {
            let message = "redis-server is not installed: run `cargo xtask test`, which installs the Debian package redis-server (or set D365_REDIS_SERVER)";
            assert!(
                std::env::var("CI").map_or(true, |ci| ci != "true"),
                "{message}"
            );
            eprintln!("skipping: {message}");
            return None;
        };
        for _ in 0..5 {
            let port = free_port();
            if let Some(server) = Self::spawn(&binary, port, password) {
                return Some(server);
            }
        }
        panic!("redis-server did not start after 5 attempts");
    }

    /// Starts a server on `port`; `None` if it exits early (the port was taken).
    pub fn spawn(binary: &std::path::Path, port: u16, password: Option<&str>) -> Option<Self> {
        let mut command = Command::new(binary);
        command
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some(password) = password {
            command.args(["--requirepass", password]);
        }
        let child = command.spawn().expect("redis-server starts");
        let mut server = Self {
            child,
            port,
            password: password.map(str::to_owned),
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if server.child.try_wait().unwrap().is_some() {
                return None;
            }
            if server.answers_ping() {
                return Some(server);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("redis-server on port {port} did not answer PING within 10 s");
    }

    fn answers_ping(&self) -> bool {
        let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        stream
            .set_read_timeout(Some(Duration::from_secs(1)))
            .unwrap();
        // Without a password PING answers +PONG; with one, -NOAUTH also proves it is up.
        if stream.write_all(b"PING\r\n").is_err() {
            return false;
        }
        let mut answer = [0_u8; 16];
        let n = stream.read(&mut answer).unwrap_or(0);
        answer[..n].starts_with(b"+PONG") || answer[..n].starts_with(b"-NOAUTH")
    }

    /// `redis://[:password@]127.0.0.1:port`.
    pub fn url(&self) -> String {
        match &self.password {
            Some(password) => format!("redis://:{password}@127.0.0.1:{}", self.port),
            None => format!("redis://127.0.0.1:{}", self.port),
        }
    }

    /// Stops the server and waits for it to exit.
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Counts requests; each token is `redis-token-<pid>-<n>`, valid for an hour, with a
/// refresh token when asked.
#[derive(Debug, Default)]
pub struct Counting {
    pub calls: AtomicUsize,
    pub refresh_tokens: bool,
}

impl Counting {
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl TokenProvider for Counting {
    async fn request_token(&self, request: &TokenRequest) -> Result<AccessToken, AuthError> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        tokio::time::sleep(Duration::from_millis(20)).await;
        let builder = AccessToken::builder(
            format!("redis-token-{}-{n}", std::process::id()).into(),
            SystemTime::now() + Duration::from_secs(3600),
            request.resource().clone(),
        );
        Ok(if self.refresh_tokens {
            builder
                .refresh_token(format!("redis-refresh-{n}").into())
                .build()
        } else {
            builder.build()
        }
        .unwrap())
    }

    fn grant(&self) -> Grant {
        Grant::new("counting")
    }

    fn cache_key(&self) -> String {
        "https://login.microsoftonline.com/contoso/|app-id".into()
    }
}
