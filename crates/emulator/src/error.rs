//! The error type of the emulator's library API (starting, configuring, approving device
//! codes), as opposed to the Entra-shaped errors the emulated endpoints return over HTTP.

use std::path::PathBuf;

/// Why the emulator could not start, could not load its configuration, or refused a
/// library call such as approving a device code.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EmulatorError {
    /// The listening socket could not be bound.
    #[error("cannot bind 127.0.0.1:{port}: {source}")]
    Bind {
        /// The port that was asked for (0 = any).
        port: u16,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// A configuration file could not be read.
    #[error("cannot read the emulator configuration {path}: {source}")]
    ReadConfig {
        /// The file that was asked for.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// The configuration is not valid (TOML syntax, a bad GUID, a bad date, a duplicate id, ...).
    #[error("invalid emulator configuration: {0}")]
    InvalidConfig(String),
    /// Generating or loading key material (RSA keys, certificates, TLS) failed.
    #[error("cannot prepare key material: {0}")]
    Crypto(String),
    /// Writing the seeded credentials to the requested directory failed.
    #[error("cannot write {path}: {source}")]
    WriteCredentials {
        /// The file that could not be written.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// The SQLite store could not be opened or prepared.
    #[error("cannot open the Dataverse store: {0}")]
    Store(String),
    /// A device code could not be approved, declined, slowed down or expired: it is
    /// unknown, expired or no longer pending, or the user cannot sign in.
    #[error("device code: {problem}")]
    DeviceCode {
        /// The user code as normalized (upper case), when the problem is about the code.
        user_code: String,
        /// What is wrong and what to do.
        problem: String,
    },
}
