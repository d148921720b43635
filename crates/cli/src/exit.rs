//! Exit codes and how an error is shown: one line, then a hint when d365 knows the fix.
//!
//! | code | meaning |
//! |---|---|
//! | 0 | success |
//! | 1 | any other failure |
//! | 2 | usage: bad arguments or options |
//! | 3 | authentication or authorization: no token, token refused, not a user of the environment, missing privilege |
//! | 4 | not found, or a conflict (precondition failed, record exists) |
//! | 5 | throttled by service protection limits after the retries |
//! | 6 | network: unreachable, timed out, or the connection broke |
//! | 130 | interrupted (Ctrl-C): nothing was left half-written |
//!
//! A URL off the organization (refused before anything is sent), a paging loop and the
//! page cap are failures (1): the message says which.

use d365_auth_core::{AuthError, ErrorKind as AuthKind};
use d365_connect::ConnectError;
use d365_webapi::{ErrorKind, WebApiError};

/// Any other failure.
pub(crate) const FAILURE: u8 = 1;
/// Bad arguments (clap uses 2 for its own errors too).
pub(crate) const USAGE: u8 = 2;
const AUTH: u8 = 3;
const NOT_FOUND_OR_CONFLICT: u8 = 4;
const THROTTLED: u8 = 5;
const NETWORK: u8 = 6;
/// Ctrl-C, as shells report a command ended by SIGINT (128 + 2).
const INTERRUPTED: u8 = 130;

/// The command was interrupted (Ctrl-C) and stopped cleanly.
#[derive(Debug, thiserror::Error)]
#[error("interrupted: {0}")]
pub(crate) struct Interrupted(pub(crate) String);

/// A usage error found after parsing (e.g. an invalid key), shown like clap's own.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct UsageError(pub(crate) String);

fn from_auth(error: &AuthError) -> u8 {
    match error.kind() {
        AuthKind::Configuration => USAGE,
        AuthKind::Throttled => THROTTLED,
        AuthKind::Network | AuthKind::Timeout => NETWORK,
        _ => AUTH,
    }
}

fn from_webapi(error: &WebApiError) -> u8 {
    match error {
        WebApiError::Auth(auth) => return from_auth(auth),
        WebApiError::InvalidInput(_) => return USAGE,
        _ => {}
    }
    match error.kind() {
        ErrorKind::Unauthorized
        | ErrorKind::NotAMember
        | ErrorKind::Forbidden
        | ErrorKind::Authentication => AUTH,
        ErrorKind::NotFound | ErrorKind::PreconditionFailed => NOT_FOUND_OR_CONFLICT,
        ErrorKind::Throttled => THROTTLED,
        ErrorKind::Network | ErrorKind::Timeout | ErrorKind::MaybeApplied => NETWORK,
        _ => FAILURE,
    }
}

fn from_connect(error: &ConnectError) -> u8 {
    match error {
        ConnectError::Auth(auth) => from_auth(auth),
        ConnectError::WebApi(webapi) => from_webapi(webapi),
        _ if error.is_network() => NETWORK,
        // Everything else is a connection string or setting that cannot work.
        _ => USAGE,
    }
}

/// The exit code for `error`, from the first typed error in its chain.
pub(crate) fn code_for(error: &anyhow::Error) -> u8 {
    for cause in error.chain() {
        if let Some(error) = cause.downcast_ref::<WebApiError>() {
            return from_webapi(error);
        }
        if let Some(error) = cause.downcast_ref::<AuthError>() {
            return from_auth(error);
        }
        if cause.downcast_ref::<UsageError>().is_some() {
            return USAGE;
        }
        if cause.downcast_ref::<Interrupted>().is_some() {
            return INTERRUPTED;
        }
        if let Some(error) = cause.downcast_ref::<ConnectError>() {
            return from_connect(error);
        }
    }
    FAILURE
}

/// The error and its causes on one line, leaving out a cause whose text the line
/// already holds (typed errors often repeat their source in their own message).
fn one_line(error: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}

/// The error on one line, and its hint — taken out of the line where the error's
/// message carries it inline.
pub(crate) fn describe(error: &anyhow::Error) -> (String, Option<&'static str>) {
    let hint = error.chain().find_map(|cause| {
        cause
            .downcast_ref::<WebApiError>()
            .and_then(WebApiError::hint)
            .or_else(|| cause.downcast_ref::<AuthError>().and_then(AuthError::hint))
    });
    let mut line = one_line(error);
    if let Some(hint) = hint {
        for marker in [". Hint: ", ". Fix: "] {
            line = line.replace(&format!("{marker}{hint}"), ".");
        }
        line = line.replace("..", ".");
    }
    (line, hint)
}

/// Prints `error: …` (the chain on one line) and `hint: …` on its own line when known.
pub(crate) fn report(error: &anyhow::Error) {
    let (line, hint) = describe(error);
    // Server messages are quoted in errors: they must not drive the terminal.
    eprintln!("error: {}", crate::output::printable(&line, false));
    if let Some(hint) = hint {
        eprintln!("hint: {hint}");
    }
}
