//! [`ConnectionAuthenticator`]: a credential that proves itself on the HTTP connection
//! (Windows sign-in: Negotiate or NTLM against an on-premises server) instead of handing
//! out a bearer token.
//!
//! Such a credential is not a [`TokenProvider`](crate::TokenProvider): there is no token to
//! cache, renew, store or show, and the proof belongs to one TCP connection (NTLM's three
//! legs must travel on the same one). So it does not pretend to be one: the Web API client
//! hands it whole requests and it sends them itself, on connections it authenticates. The
//! one token abstraction stays honest — what a `TokenProvider` hands out is always a bearer
//! token — and the scheme a request is proven with is the authenticator's
//! [`scheme`](ConnectionAuthenticator::scheme).

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;

use crate::error::AuthError;

/// The bounds a request sent by a [`ConnectionAuthenticator`] must keep.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SendLimits {
    /// How long the whole exchange (every leg of the handshake) may take.
    pub timeout: Duration,
    /// The largest answer body to read; a larger one is an error, never read whole.
    pub max_body: usize,
}

impl SendLimits {
    /// Limits of `timeout` and `max_body` bytes.
    #[must_use]
    pub const fn new(timeout: Duration, max_body: usize) -> Self {
        Self { timeout, max_body }
    }
}

/// A credential proven per HTTP connection rather than by a bearer token.
///
/// The Web API client gives it each request, complete with headers and body, for the
/// organization's origin only; it sends it on a connection of its own, answering the
/// server's challenges there, and returns the final answer. A `401` comes back only when
/// the credential itself was refused.
#[async_trait]
pub trait ConnectionAuthenticator: Send + Sync + fmt::Debug {
    /// The HTTP authentication scheme it answers with, such as `NTLM` or `Negotiate`.
    fn scheme(&self) -> &'static str;

    /// Who it signs in as, for people (`CONTOSO\alice`); never a secret.
    fn identity(&self) -> String;

    /// Sends `request` within `limits`, authenticating the connection as the server asks.
    ///
    /// # Errors
    ///
    /// [`AuthError`]: `Network` or `Timeout` when the server cannot be reached in time,
    /// `Credential` when it refuses the credential, `UnexpectedResponse` for an answer
    /// that breaks the protocol (or is over `limits.max_body`).
    async fn send(
        &self,
        request: http::Request<Vec<u8>>,
        limits: SendLimits,
    ) -> Result<http::Response<Vec<u8>>, AuthError>;
}
