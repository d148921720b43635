//! Project automation for d365, run as `cargo xtask <command>`: the command line (parsed by
//! hand) and the dispatch to one module per command.
//!
//! Printing is this program's job, so the workspace's print lints are off here.

#![allow(clippy::print_stdout, clippy::print_stderr)]

mod bench;
mod cmd;
mod deps;
mod grant_names;
mod install;
mod metadata;
mod release;
mod snapshots;
mod steps;
mod test;

use std::process::ExitCode;

use anyhow::{Result, bail};

use bench::BenchArgs;
use release::ReleaseArgs;
use test::TestArgs;

const USAGE: &str = "\
usage: cargo xtask <command> [options]

commands:
  test [--no-install] [--quick]   install the interop tools, then fmt, clippy, deps,
                                  standalone builds, doc and every test (what CI runs)
                                  --no-install  skip installing the interop tools
                                  --quick       run only the tests (skip fmt..doc)
  lint                            fmt check, clippy -D warnings, deps, rustdoc -D warnings
  deps                            check each crate's dependency boundaries, and that
                                  auth-core, webapi and the stores name no grant
  snapshots [--accept]            run the insta snapshot tests; --accept writes new and
                                  changed snapshots in place; lists changed .snap files
  release <version> [--dry-run] [--allow-dirty]
                                  check (package every crate in dependency order with
                                  its licences, semver against the previous tag when
                                  cargo-semver-checks is installed, the MSRV when its
                                  toolchain is), bump versions, cut CHANGELOG.md, verify
                                  packaging, commit and tag; --dry-run prints the plan
                                  and runs the checks only (--allow-dirty: from a dirty
                                  tree, dry run only); a skipped check is printed
  bench [--quick] [--peers] [args...]
                                  cargo bench (criterion benches), then write
                                  target/bench/report.md: medians and ratios against
                                  each group's floor, with the run's noise; args go to
                                  cargo bench
                                  --quick  -- --warm-up-time 1 --measurement-time 3
                                  --peers  install MSAL (Python, Node), azure-identity,
                                           DynamicsWebApi and the Python Dataverse SDK
                                           (pinned, under target/bench-peers) and run
                                           them beside d365 in the process bench
";

/// A parsed command line.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Command {
    Help,
    Test(TestArgs),
    Lint,
    Deps,
    Snapshots { accept: bool },
    Release(ReleaseArgs),
    Bench(BenchArgs),
}

/// Runs the command; an error is printed with its causes, one per line, and exits 1
/// (without the backtrace an inherited `RUST_BACKTRACE` would add).
fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match parse(&args).and_then(run) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            for cause in error.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            ExitCode::FAILURE
        }
    }
}

/// Runs one parsed command.
fn run(command: Command) -> Result<()> {
    match command {
        Command::Help => {
            print!("{USAGE}");
            Ok(())
        }
        Command::Test(test_args) => test::run_test(test_args),
        Command::Lint => test::run_lint(),
        Command::Deps => {
            deps::check()?;
            println!("deps: every dependency boundary holds");
            Ok(())
        }
        Command::Snapshots { accept } => snapshots::run(accept),
        Command::Release(release_args) => release::run(&release_args),
        Command::Bench(bench_args) => bench::run(&bench_args),
    }
}

/// Parses the arguments after `cargo xtask`.
fn parse(args: &[String]) -> Result<Command> {
    let Some((command, rest)) = args.split_first() else {
        return Ok(Command::Help);
    };
    let command = match command.as_str() {
        "help" | "-h" | "--help" => Command::Help,
        "test" => {
            let (flags, _) = options(command, rest, &["--no-install", "--quick"], 0)?;
            Command::Test(TestArgs {
                no_install: flags.contains(&"--no-install"),
                quick: flags.contains(&"--quick"),
            })
        }
        "lint" => {
            options(command, rest, &[], 0)?;
            Command::Lint
        }
        "deps" => {
            options(command, rest, &[], 0)?;
            Command::Deps
        }
        "snapshots" => {
            let (flags, _) = options(command, rest, &["--accept"], 0)?;
            Command::Snapshots {
                accept: flags.contains(&"--accept"),
            }
        }
        "release" => {
            let (flags, positional) = options(command, rest, &["--dry-run", "--allow-dirty"], 1)?;
            let Some(version) = positional.first() else {
                bail!(
                    "release needs the version to release, e.g. `cargo xtask release 0.2.0`\n\n{USAGE}"
                );
            };
            Command::Release(ReleaseArgs {
                version: (*version).to_owned(),
                dry_run: flags.contains(&"--dry-run"),
                allow_dirty: flags.contains(&"--allow-dirty"),
            })
        }
        "bench" => Command::Bench(BenchArgs::parse(rest)),
        other => bail!("unknown command `{other}`\n\n{USAGE}"),
    };
    Ok(command)
}

/// Splits `args` into known `--flags` and at most `max_positional` other arguments.
fn options<'a>(
    command: &str,
    args: &'a [String],
    known: &[&'static str],
    max_positional: usize,
) -> Result<(Vec<&'static str>, Vec<&'a str>)> {
    let mut flags = Vec::new();
    let mut positional = Vec::new();
    for arg in args {
        if let Some(&flag) = known.iter().find(|&&flag| flag == arg) {
            flags.push(flag);
        } else if arg.starts_with('-') || positional.len() == max_positional {
            bail!("`cargo xtask {command}` does not take `{arg}`\n\n{USAGE}");
        } else {
            positional.push(arg.as_str());
        }
    }
    Ok((flags, positional))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_line(line: &str) -> Result<Command> {
        let args: Vec<String> = line.split_whitespace().map(str::to_owned).collect();
        parse(&args)
    }

    #[test]
    fn parses_every_command_and_its_flags() {
        assert_eq!(parse_line("").unwrap(), Command::Help);
        assert_eq!(parse_line("--help").unwrap(), Command::Help);
        assert_eq!(
            parse_line("test").unwrap(),
            Command::Test(TestArgs::default())
        );
        assert_eq!(
            parse_line("test --quick --no-install").unwrap(),
            Command::Test(TestArgs {
                no_install: true,
                quick: true
            })
        );
        assert_eq!(parse_line("lint").unwrap(), Command::Lint);
        assert_eq!(parse_line("deps").unwrap(), Command::Deps);
        assert_eq!(
            parse_line("snapshots --accept").unwrap(),
            Command::Snapshots { accept: true }
        );
        assert_eq!(
            parse_line("release 0.2.0 --dry-run").unwrap(),
            Command::Release(ReleaseArgs {
                version: "0.2.0".into(),
                dry_run: true,
                allow_dirty: false
            })
        );
        assert_eq!(
            parse_line("bench -- --quick token").unwrap(),
            Command::Bench(BenchArgs {
                quick: false,
                peers: false,
                args: vec!["--".into(), "--quick".into(), "token".into()]
            })
        );
        assert_eq!(
            parse_line("bench --quick").unwrap(),
            Command::Bench(BenchArgs {
                quick: true,
                peers: false,
                args: Vec::new()
            })
        );
        assert_eq!(
            parse_line("bench --peers --quick -p d365-cli").unwrap(),
            Command::Bench(BenchArgs {
                quick: true,
                peers: true,
                args: vec!["-p".into(), "d365-cli".into()]
            })
        );
    }

    #[test]
    fn refuses_unknown_commands_flags_and_extra_arguments() {
        for line in [
            "frobnicate",
            "test --fast",
            "lint extra",
            "deps --accept",
            "release",
            "release 0.2.0 0.3.0",
            "release --dry-run",
            "snapshots --dry-run",
        ] {
            assert!(parse_line(line).is_err(), "{line}");
        }
    }
}
