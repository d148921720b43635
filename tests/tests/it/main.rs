//! The workspace's interop tests, one binary: d365's grants against third-party OAuth 2.0
//! servers that `cargo xtask test` installs.

mod client_credentials;
mod ropc;
