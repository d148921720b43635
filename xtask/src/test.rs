//! `cargo xtask test` (the one test command CI runs) and `cargo xtask lint` (its static
//! checks alone): the steps, their cargo invocations, and the environment tests run in.

use anyhow::Result;

use crate::cmd::Cmd;
use crate::deps;
use crate::install;
use crate::metadata;
use crate::steps::Steps;

/// What `cargo xtask test` was asked to skip.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct TestArgs {
    /// `--no-install`: do not install the interop tools.
    pub(crate) no_install: bool,
    /// `--quick`: skip fmt, clippy, deps, standalone builds and doc; run only the tests.
    pub(crate) quick: bool,
}

/// Each library crate checked on its own, so that features another workspace member turns
/// on cannot hide a dependency or feature the crate forgot to declare.
const STANDALONE_BUILDS: &[&[&str]] = &[
    &["--package", "d365-auth-core"],
    &["--package", "d365-auth-client-credentials"],
    &["--package", "d365-auth-ropc"],
    &["--package", "d365-auth-device-code"],
    &["--package", "d365-auth-authorization-code"],
    &["--package", "d365-auth-azure-cli"],
    &["--package", "d365-auth-managed-identity"],
    &["--package", "d365-webapi"],
    &["--package", "d365-connect", "--no-default-features"],
    &["--package", "d365-connect"],
    &["--package", "d365-token-store-redis"],
];

/// Runs every step of `cargo xtask test`, then prints the summary and the test counts.
pub(crate) fn run_test(args: TestArgs) -> Result<()> {
    let mut steps = Steps::new("test");
    if args.no_install {
        steps.skip("install", "--no-install");
    } else {
        steps.run("install", install::install_all)?;
    }
    if args.quick {
        for name in ["fmt", "clippy", "deps", "standalone builds", "doc"] {
            steps.skip(name, "--quick");
        }
    } else {
        steps.run("fmt", fmt_check)?;
        steps.run("clippy", clippy)?;
        steps.run("deps", deps::check)?;
        steps.run("standalone builds", standalone_builds)?;
        steps.run("doc", doc)?;
    }
    let mut counts = TestCounts::default();
    steps.run("tests", || {
        cargo_test(
            &["--workspace", "--all-targets", "--locked", "--no-fail-fast"],
            &mut counts,
        )
    })?;
    steps.run("examples", run_examples)?;
    steps.run("cargo install", install_paths)?;
    steps.run("doctests", || {
        cargo_test(
            &["--workspace", "--doc", "--locked", "--no-fail-fast"],
            &mut counts,
        )
    })?;
    println!("{}", steps.summary());
    // Last, alone on its line: the totals a CI log reader looks for.
    println!("{}", counts.summary_line());
    Ok(())
}

/// Runs the static checks: fmt, clippy, the dependency boundaries and rustdoc.
pub(crate) fn run_lint() -> Result<()> {
    let mut steps = Steps::new("lint");
    steps.run("fmt", fmt_check)?;
    steps.run("clippy", clippy)?;
    steps.run("deps", deps::check)?;
    steps.run("doc", doc)?;
    println!("{}", steps.summary());
    Ok(())
}

/// The environment every test process gets: where the interop tools are, snapshots that
/// fail rather than update (`insta_update` is `INSTA_UPDATE`), and `CI=true` passed on.
pub(crate) fn test_environment(insta_update: &str) -> Vec<(String, String)> {
    let mut vars = vec![
        (
            install::INTEROP_DIR_VAR.to_owned(),
            install::interop_dir().display().to_string(),
        ),
        ("INSTA_UPDATE".to_owned(), insta_update.to_owned()),
    ];
    if std::env::var("CI").is_ok_and(|ci| ci == "true") {
        vars.push(("CI".to_owned(), "true".to_owned()));
    }
    vars
}

fn fmt_check() -> Result<()> {
    Cmd::cargo(["fmt", "--all", "--", "--check"]).run()
}

fn clippy() -> Result<()> {
    Cmd::cargo([
        "clippy",
        "--workspace",
        "--all-targets",
        "--locked",
        "--",
        "-D",
        "warnings",
    ])
    .run()
}

fn standalone_builds() -> Result<()> {
    for package_args in STANDALONE_BUILDS {
        Cmd::cargo(["check", "--locked"])
            .args(package_args.iter())
            .run()?;
    }
    Ok(())
}

fn doc() -> Result<()> {
    Cmd::cargo(["doc", "--workspace", "--no-deps", "--locked"])
        .env("RUSTDOCFLAGS", "-Dwarnings")
        .run()
}

/// Runs every example of the workspace, each of which starts the emulator itself: an
/// example that fails, or needs setup, fails the step. They are built with the workspace's
/// features (as the tests step built them, so this is mostly a no-op) and run from the
/// target directory: `cargo run -p` would resolve each package's features alone and
/// rebuild half the workspace for it.
fn run_examples() -> Result<()> {
    let examples = metadata::workspace_examples()?;
    anyhow::ensure!(!examples.is_empty(), "the workspace has no examples to run");
    Cmd::cargo(["build", "--workspace", "--examples", "--locked", "--quiet"]).run()?;
    let directory = crate::cmd::target_dir().join("debug/examples");
    for (_package, example) in &examples {
        Cmd::new(directory.join(example))
            .envs(&test_environment("no"))
            // Examples switch to a real tenant when these are set: never in tests.
            .env_remove("D365_ORG_URL")
            .env_remove("AZURE_CLIENT_ID")
            .env_remove("AZURE_TENANT_ID")
            .env_remove("AZURE_CLIENT_SECRET")
            .stdout_null()
            .run()?;
    }
    println!("examples: {} ran against the emulator", examples.len());
    Ok(())
}

/// The binaries the READMEs tell users to install, installed the way they say
/// (`cargo install … --locked`, here from the working tree, offline, debug, into a private
/// root under the target directory), then run: `d365 --version`, its completions and man
/// page, and `d365-emulator --help`. Sharing the target directory keeps it to a relink.
fn install_paths() -> Result<()> {
    let target = crate::cmd::target_dir();
    let root = target.join("install-check");
    if root.exists() {
        std::fs::remove_dir_all(&root)?;
    }
    for crate_dir in ["crates/cli", "crates/emulator"] {
        Cmd::cargo([
            "install",
            "--locked",
            "--offline",
            "--debug",
            "--path",
            crate_dir,
            "--root",
        ])
        .arg(&root)
        .env("CARGO_TARGET_DIR", &target)
        .run()?;
    }
    let bin = root.join("bin");
    let version = Cmd::new(bin.join("d365")).arg("--version").read()?;
    anyhow::ensure!(
        version.starts_with("d365 "),
        "`d365 --version` printed {version:?}"
    );
    let completions = Cmd::new(bin.join("d365"))
        .args(["completions", "bash"])
        .read()?;
    anyhow::ensure!(
        completions.contains("complete -F"),
        "`d365 completions bash` printed no bash completion"
    );
    let page = Cmd::new(bin.join("d365")).arg("man").read()?;
    anyhow::ensure!(
        page.starts_with(".ie") || page.contains(".TH d365"),
        "`d365 man` printed no man page"
    );
    let help = Cmd::new(bin.join("d365-emulator")).arg("--help").read()?;
    anyhow::ensure!(
        help.to_ascii_lowercase().contains("usage"),
        "`d365-emulator --help` printed {help:?}"
    );
    std::fs::remove_dir_all(&root)?;
    println!(
        "cargo install: d365 and d365-emulator installed and ran ({})",
        version.trim()
    );
    Ok(())
}

/// `cargo test <args>` in the test environment, adding its results to `counts`.
fn cargo_test(args: &[&str], counts: &mut TestCounts) -> Result<()> {
    Cmd::cargo(["test"])
        .args(args)
        .envs(&test_environment("no"))
        .run_watching_stdout(|line| counts.add_line(line))
}

/// Tests passed, failed and ignored, summed over libtest's `test result:` lines.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct TestCounts {
    passed: u64,
    failed: u64,
    ignored: u64,
}

impl TestCounts {
    /// Adds a line of `cargo test` output if it is a libtest result line, e.g.
    /// `test result: ok. 12 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; …`.
    pub(crate) fn add_line(&mut self, line: &str) {
        let Some(result) = line.trim().strip_prefix("test result: ") else {
            return;
        };
        let Some((_, tallies)) = result.split_once(". ") else {
            return;
        };
        for tally in tallies.split(';') {
            let mut words = tally.split_whitespace();
            let (Some(number), Some(what)) = (words.next(), words.next()) else {
                continue;
            };
            let Ok(number) = number.parse::<u64>() else {
                continue;
            };
            match what {
                "passed" => self.passed += number,
                "failed" => self.failed += number,
                "ignored" => self.ignored += number,
                _ => {}
            }
        }
    }

    /// `tests: N passed, N failed, N skipped` (ignored tests count as skipped).
    pub(crate) fn summary_line(&self) -> String {
        format!(
            "tests: {} passed, {} failed, {} skipped",
            self.passed, self.failed, self.ignored
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_libtest_result_lines_and_ignores_the_rest() {
        let mut counts = TestCounts::default();
        for line in [
            "running 3 tests",
            "test cache::hit ... ok",
            "test result: ok. 12 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; finished in 0.01s",
            "test result: FAILED. 3 passed; 2 failed; 0 ignored; 0 measured; 4 filtered out; finished in 1.50s",
            "   Doc-tests d365_auth_core",
            "test result: ok. 0 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.00s",
            "test result: nonsense",
        ] {
            counts.add_line(line);
        }
        assert_eq!(
            counts,
            TestCounts {
                passed: 15,
                failed: 2,
                ignored: 1
            }
        );
        assert_eq!(
            counts.summary_line(),
            "tests: 15 passed, 2 failed, 1 skipped"
        );
    }

    #[test]
    fn tests_learn_where_the_interop_tools_are_and_never_update_snapshots() {
        let vars = test_environment("no");
        let value = |key: &str| {
            vars.iter()
                .find(|(name, _)| name == key)
                .map(|(_, value)| value.as_str())
        };
        let interop = value("D365_INTEROP_DIR").unwrap();
        assert!(std::path::Path::new(interop).is_absolute());
        assert!(interop.ends_with("interop"));
        assert_eq!(value("INSTA_UPDATE"), Some("no"));
    }

    #[test]
    fn every_standalone_build_names_one_package() {
        for args in STANDALONE_BUILDS {
            assert_eq!(args.iter().filter(|arg| **arg == "--package").count(), 1);
        }
    }
}
