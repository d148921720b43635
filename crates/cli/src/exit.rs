//! Exit codes and how an error is shown: one line, then a hint when d365 knows the fix.
//!
//! [`TABLE`] is the one list of exit codes: `--help` prints it, `docs/cli.md` shows it
//! (a test checks the two agree), and every command's failure maps to one of its codes
//! through [`code_for`]. A URL off the organization (refused before anything is sent), a
//! paging loop and the page cap are failures (1): the message says which.

use d365_auth_core::{AuthError, ErrorKind as AuthKind};
use d365_connect::ConnectError;
use d365_webapi::{ErrorKind, WebApiError};

/// Success.
pub(crate) const SUCCESS: u8 = 0;
/// Any other failure.
pub(crate) const FAILURE: u8 = 1;
/// Bad arguments (clap uses 2 for its own errors too).
pub(crate) const USAGE: u8 = 2;
/// Authentication or authorization.
pub(crate) const AUTH: u8 = 3;
/// Not found, or a conflict.
pub(crate) const NOT_FOUND_OR_CONFLICT: u8 = 4;
/// Throttled after the retries.
pub(crate) const THROTTLED: u8 = 5;
/// The network.
pub(crate) const NETWORK: u8 = 6;
/// Ctrl-C, as shells report a command ended by SIGINT (128 + 2).
pub(crate) const INTERRUPTED: u8 = 130;

/// One exit code: its number, a few words for `--help`, and its meaning for the docs.
pub(crate) struct Entry {
    pub(crate) code: u8,
    pub(crate) short: &'static str,
    pub(crate) meaning: &'static str,
}

/// Every exit code d365 uses, in order: the one source of `--help`'s list and the table of
/// `docs/cli.md`.
pub(crate) const TABLE: &[Entry] = &[
    Entry {
        code: SUCCESS,
        short: "ok",
        meaning: "success",
    },
    Entry {
        code: FAILURE,
        short: "failure",
        meaning: "any other failure",
    },
    Entry {
        code: USAGE,
        short: "usage",
        meaning: "usage: bad arguments, options, connection strings or profiles",
    },
    Entry {
        code: AUTH,
        short: "authentication or authorization",
        meaning: "authentication or authorization: no token, token refused, not a user of the environment, missing privilege",
    },
    Entry {
        code: NOT_FOUND_OR_CONFLICT,
        short: "not found or conflict",
        meaning: "not found, or a conflict (precondition failed, record or profile exists)",
    },
    Entry {
        code: THROTTLED,
        short: "throttled",
        meaning: "throttled by service protection limits after the retries",
    },
    Entry {
        code: NETWORK,
        short: "network",
        meaning: "network: unreachable, timed out, or the connection broke",
    },
    Entry {
        code: INTERRUPTED,
        short: "interrupted",
        meaning: "interrupted with Ctrl-C; nothing was left half-written",
    },
];

/// The table `--help` ends with, from [`TABLE`].
pub(crate) fn long_help_text() -> String {
    use std::fmt::Write as _;
    let mut text = String::from("Exit codes:\n");
    for entry in TABLE {
        let _ = writeln!(text, "  {:>3}  {}", entry.code, entry.meaning);
    }
    text.trim_end().to_owned()
}

/// The list `-h` ends with, from [`TABLE`].
pub(crate) fn help_text() -> String {
    let codes: Vec<String> = TABLE
        .iter()
        .map(|entry| format!("{} {}", entry.code, entry.short))
        .collect();
    format!("Exit codes: {}.", codes.join(", "))
}

/// A failure whose exit code the command chose (`auth doctor`: the code of the check that
/// failed).
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub(crate) struct Failed {
    pub(crate) code: u8,
    pub(crate) message: String,
}

/// The command was interrupted (Ctrl-C) and stopped cleanly.
#[derive(Debug, thiserror::Error)]
#[error("interrupted: {0}")]
pub(crate) struct Interrupted(pub(crate) String);

/// A usage error found after parsing (e.g. an invalid key), shown like clap's own.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct UsageError(pub(crate) String);

/// The exit code for a token error.
pub(crate) fn from_auth(error: &AuthError) -> u8 {
    match error.kind() {
        AuthKind::Configuration => USAGE,
        AuthKind::Throttled => THROTTLED,
        AuthKind::Network | AuthKind::Timeout => NETWORK,
        _ => AUTH,
    }
}

/// The exit code for a Web API error.
pub(crate) fn from_webapi(error: &WebApiError) -> u8 {
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
        if let Some(failed) = cause.downcast_ref::<Failed>() {
            return failed.code;
        }
        if let Some(error) = cause.downcast_ref::<ConnectError>() {
            return from_connect(error);
        }
    }
    FAILURE
}

/// Whether the command failed only because standard output was closed by its reader (a
/// pipe into `head`): not a failure to report.
pub(crate) fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
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

#[cfg(test)]
mod tests {
    use super::*;

    /// `docs/cli.md`'s table of exit codes is [`TABLE`], row for row.
    #[test]
    fn the_documented_table_is_the_table() {
        let docs = include_str!("../../../docs/cli.md");
        let section = docs
            .split("## Errors and exit codes")
            .nth(1)
            .expect("docs/cli.md has an exit code section");
        let rows: Vec<(u8, String)> = section
            .lines()
            .skip_while(|line| !line.starts_with("| code"))
            .skip(2)
            .take_while(|line| line.starts_with('|'))
            .map(|line| {
                let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
                (cells[0].parse().unwrap(), cells[1].to_owned())
            })
            .collect();
        let table: Vec<(u8, String)> = TABLE
            .iter()
            .map(|entry| (entry.code, entry.meaning.to_owned()))
            .collect();
        assert_eq!(rows, table);
        let mut codes: Vec<u8> = TABLE.iter().map(|entry| entry.code).collect();
        codes.dedup();
        assert_eq!(codes.len(), TABLE.len(), "each code once");
    }

    #[test]
    fn help_lists_every_code() {
        let help = help_text();
        let long = long_help_text();
        for entry in TABLE {
            assert!(help.contains(&format!("{} {}", entry.code, entry.short)));
            assert!(long.contains(entry.meaning));
        }
    }
}
