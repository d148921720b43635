//! `cargo xtask bench [args…]`: the workspace benchmarks, extra arguments passed through to
//! `cargo bench` (e.g. `-- --quick` for criterion, or a benchmark name filter).

use anyhow::Result;

use crate::cmd::Cmd;

/// Runs `cargo bench --workspace <args>`.
pub(crate) fn run(args: &[String]) -> Result<()> {
    Cmd::cargo(["bench", "--workspace", "--locked"])
        .args(args)
        .run()
}
