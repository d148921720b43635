//! What d365's test suites share, as a dev-dependency of each crate (never published):
//!
//! - [`CannedServer`] and [`Server`]: a loopback HTTP server answering with canned
//!   responses or a handler, recording every request ([`Captured`]); [`Canned`] builds the
//!   answers identity providers and Dataverse give.
//! - [`LogCapture`]: what a `tracing` subscriber writes.
//! - [`SecretWatch`]: the no-secrets harness — logs at TRACE level plus everything a test
//!   shows, searched for each secret.

mod canned;
mod logs;
mod secrets;

pub use canned::{Canned, CannedServer, Captured, Server};
pub use logs::LogCapture;
pub use secrets::SecretWatch;
