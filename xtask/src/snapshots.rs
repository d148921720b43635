//! `cargo xtask snapshots [--accept]`: run the insta snapshot tests without cargo-insta and
//! report which snapshot files changed.

use anyhow::Result;

use crate::cmd::Cmd;
use crate::test::test_environment;

/// Runs every test with snapshots checked (`INSTA_UPDATE=no`) or, with `accept`, written in
/// place (`INSTA_UPDATE=always`); then lists the `.snap` files that differ from git's index
/// and any pending snapshots left to review.
///
/// Inline snapshots (`@"…"`) cannot be rewritten without cargo-insta: insta leaves them as
/// `.pending-snap` files, which are listed so they are not missed.
pub(crate) fn run(accept: bool) -> Result<()> {
    let update = if accept { "always" } else { "no" };
    let tests = Cmd::cargo([
        "test",
        "--workspace",
        "--all-targets",
        "--locked",
        "--no-fail-fast",
    ])
    .envs(&test_environment(update))
    .run();

    let changed = Cmd::new("git")
        .args([
            "status",
            "--porcelain",
            "--untracked-files=all",
            "--",
            "*.snap",
        ])
        .read()?;
    if changed.trim().is_empty() {
        println!("snapshots: no .snap file changed");
    } else {
        println!(
            "snapshots: changed .snap files (git status):\n{}",
            changed.trim_end()
        );
    }
    let pending = Cmd::new("git")
        .args([
            "ls-files",
            "--others",
            "--ignored",
            "--exclude-standard",
            "--",
            "*.pending-snap",
            "*.snap.new",
        ])
        .read()?;
    if !pending.trim().is_empty() {
        println!(
            "snapshots: pending snapshots (review by hand, then delete):\n{}",
            pending.trim_end()
        );
    }
    tests
}
