//! `d365`: the command line for Microsoft Dataverse — tokens, WhoAmI, queries and exports,
//! writes, raw requests, connection profiles, and the local emulator.
//!
//! The binary is the only part of d365 that prints. Errors are one line plus a hint, and
//! the exit code says what kind of failure it was (see [`exit`]).

#![allow(clippy::print_stdout, clippy::print_stderr)]
// The doc comments of the clap definitions are the `--help` text, read in a terminal,
// where `<https://…>` would show its brackets: URLs there stay bare.
#![allow(rustdoc::bare_urls)]

mod cli;
mod commands;
mod connection;
mod exit;
mod keys;
mod output;
mod profiles;
mod timing;
mod token_key;

use std::process::ExitCode;

fn main() -> ExitCode {
    timing::start();
    let cli = parse_command_line();
    init_tracing(cli.global.verbose);
    timing::phase("command line parsed, logging set up");
    let runtime = match runtime_for(&cli).enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: could not start the async runtime: {error}");
            return ExitCode::from(exit::FAILURE);
        }
    };
    timing::phase("runtime started");
    let outcome = runtime.block_on(run_interruptibly(cli));
    timing::phase("command done");
    drop(runtime);
    timing::phase("runtime shut down");
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        // The reader stopped reading (`d365 get … | head -1`): it has what it wanted.
        Err(error) if exit::is_broken_pipe(&error) => ExitCode::SUCCESS,
        Err(error) => {
            exit::report(&error);
            ExitCode::from(exit::code_for(&error))
        }
    }
}

/// Runs the command; Ctrl-C ends it with exit code 130 (`d365 emulator` stops cleanly on
/// Ctrl-C instead, and `get --out` says which file it left as it was). Files d365 writes
/// are replaced whole, so an interruption never leaves one half-written.
async fn run_interruptibly(cli: cli::Cli) -> anyhow::Result<()> {
    if matches!(cli.command, cli::Command::Emulator(_)) {
        return commands::run(cli).await;
    }
    // Without a signal handler the command simply runs to its end.
    let interrupted = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        outcome = commands::run(cli) => outcome,
        () = interrupted => Err(exit::Interrupted(
            "stopped by Ctrl-C before the command finished (a request already sent may have been applied)".to_owned(),
        )
        .into()),
    }
}

/// The async runtime `cli`'s command runs on: one thread for a command that sends one
/// request at a time (starting worker threads and handing every wake-up between them
/// costs a single `whoami` a third of a millisecond), the multi-threaded runtime for
/// the rest: paging fetches the next page while the last one is written, and the
/// emulator, the sign-ins and `auth` serve or wait on other tasks.
fn runtime_for(cli: &cli::Cli) -> tokio::runtime::Builder {
    use cli::Command;
    let one_request_at_a_time = matches!(
        cli.command,
        Command::Whoami
            | Command::Token { .. }
            | Command::Create(_)
            | Command::Update(_)
            | Command::Upsert(_)
            | Command::Delete(_)
            | Command::Request(_)
    );
    if one_request_at_a_time && !cli.global.emulator {
        tokio::runtime::Builder::new_current_thread()
    } else {
        tokio::runtime::Builder::new_multi_thread()
    }
}

/// Parses the command line, noting where each connection string came from: one typed on
/// the command line is visible to every local user in the process list.
fn parse_command_line() -> cli::Cli {
    use clap::FromArgMatches as _;
    use clap::parser::ValueSource;
    let matches = cli::command().get_matches();
    let mut cli = cli::Cli::from_arg_matches(&matches).unwrap_or_else(|error| error.exit());
    fn typed(matches: &clap::ArgMatches) -> bool {
        matches.value_source("connection_string") == Some(ValueSource::CommandLine)
    }
    cli.global.connection_string_on_command_line = typed(&matches);
    cli.global.origins = cli::Origins::from_matches(&matches);
    if let cli::Command::Profile(cli::ProfileCommand::Add {
        connection_string_on_command_line,
        ..
    }) = &mut cli.command
    {
        *connection_string_on_command_line = matches
            .subcommand_matches("profile")
            .and_then(|profile| profile.subcommand_matches("add"))
            .is_some_and(typed);
    }
    cli
}

/// `-v` shows d365's own debug logs, `-vv` everything at trace level; `RUST_LOG` overrides.
/// Colours only on a terminal, so logs redirected to a file or a pipe stay plain text.
fn init_tracing(verbose: u8) {
    use std::io::IsTerminal as _;
    let default = match verbose {
        0 => "warn",
        1 => "warn,d365=debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none())
        .with_target(verbose > 0)
        .try_init();
}
