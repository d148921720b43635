//! `d365`: the command line for Microsoft Dataverse.
//!
//! Its commands arrive with the crates they drive; today it answers `--help` and `--version`.

use clap::Parser;

/// The d365 command line.
#[derive(Debug, Parser)]
#[command(name = "d365", version, about = "Microsoft Dataverse from the command line")]
struct Cli {}

fn main() {
    Cli::parse();
}
