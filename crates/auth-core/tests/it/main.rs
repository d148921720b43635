//! auth-core's integration tests, as one test binary (one link instead of one per file):
//! the token cache, the file store, the token-endpoint client's requests and answers, the
//! helpers grants share, every message a person reads, and the no-secrets check.

mod cache;
mod file_store;
mod grant_helpers;
mod messages;
mod no_secrets;
mod token_endpoint;
