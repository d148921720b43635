//! The `d365` binary's tests, one binary: commands end to end against the emulator and
//! their snapshots, exit codes, output for scripts, a hostile organization, and the
//! no-secrets sweep.

mod browser;
mod cli;
mod docs_snippets;
mod exit_codes;
mod hostile;
mod import;
mod login;
mod no_secrets;
mod on_premises;
mod precedence;
mod scripts;
mod support;
