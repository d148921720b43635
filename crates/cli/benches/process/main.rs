//! The `d365` process measured from outside (issues 10 and 25), where criterion cannot
//! look: wall time of whole command runs and their peak resident memory. A plain `main`
//! (the bench target has `harness = false`) that starts an emulator in this process, runs
//! the release `d365` binary against it, prints a report section and writes it to
//! `target/bench/sections/cli_process.md`, which `cargo xtask bench` appends to its report.
//!
//! Every figure has a floor measured in the same run, twice, so that the run's noise is
//! known (the spread of the floor's two runs) and a floor that does not bound what it is
//! the floor of shows:
//!
//! - **Start-up**: `d365 --version`, and `d365 whoami` with a warm token file and with
//!   `--no-token-cache`, against spawning `true`; in rounds (`true`, the three commands,
//!   `true` again), so that a burst of load from elsewhere on the machine falls on all of
//!   them. Medians and interquartile ranges over the rounds.
//! - **Export**: `d365 get accounts --all --out FILE -o jsonl` over 100,000 and 1,000,000
//!   generated rows at 5000 a page, against a raw page fetch **in its own process** (this
//!   executable again, in its raw mode: the same HTTP client settings and headers as
//!   `d365-webapi`, a fixed token, each page read only for its next link and its row
//!   count, nothing written), run before and after `d365`. Wall time and peak RSS
//!   (`VmHWM`, polled from `/proc` every 5 ms) of each process. Every exported file is
//!   checked to hold every row, and every raw pass to count every row.
//!
//! - **Import** (`import.rs`): `d365 import` against one create per request and `$batch`
//!   of 1,000, its peak RSS at two sizes, and a run under throttling and cut connections
//!   that must end with exactly every row.
//!
//! `D365_BENCH_ROWS=a,b` changes the export sizes (`D365_BENCH_IMPORT_ROWS` the import's); criterion's `--quick` options (passed by
//! `cargo xtask bench --quick`) shrink them to 10,000 and 100,000 and run fewer start-ups.

#![allow(
    clippy::print_stdout,
    reason = "a benchmark reports on stdout, as criterion does"
)]

mod import;
mod measure;
mod peers;
mod raw;

use std::fmt::Write as _;
use std::io::BufRead as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use measure::{Floor, Watched, millis, rounds, run_watching_memory};

use d365_emulator::{Emulator, EmulatorBuilder, ServiceLimits};
use secrecy::ExposeSecret as _;

const SELECT: &str = "name,accountnumber,revenue";
const PAGE_SIZE: u32 = 5000;

/// What the command line asked for: a name filter and whether to be quick.
struct Options {
    filters: Vec<String>,
    quick: bool,
}

impl Options {
    fn from_args() -> Self {
        let mut filters = Vec::new();
        let mut quick = false;
        let mut args = std::env::args().skip(1);
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--warm-up-time" | "--measurement-time" => {
                    quick = true;
                    args.next();
                }
                "--sample-size" | "--save-baseline" | "--baseline" | "--output-format" => {
                    args.next();
                }
                flag if flag.starts_with('-') => {}
                filter => filters.push(filter.to_owned()),
            }
        }
        Self { filters, quick }
    }

    fn selects(&self, name: &str) -> bool {
        self.filters.is_empty() || self.filters.iter().any(|filter| name.contains(filter))
    }

    fn export_sizes(&self) -> Vec<u64> {
        if let Ok(sizes) = std::env::var("D365_BENCH_ROWS") {
            return sizes
                .split(',')
                .map(|size| size.trim().parse().expect("D365_BENCH_ROWS: row counts"))
                .collect();
        }
        if self.quick {
            vec![10_000, 100_000]
        } else {
            vec![100_000, 1_000_000]
        }
    }

    fn start_up_runs(&self) -> usize {
        if self.quick { 21 } else { 61 }
    }
}

fn d365() -> Command {
    Command::new(env!("CARGO_BIN_EXE_d365"))
}

/// A multi-threaded runtime the emulator keeps serving on while this thread waits for
/// child processes.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime")
}

/// An emulator with `rows` generated accounts and no service protection limits (they
/// would throttle a benchmark; they are not what is measured).
fn emulator_builder(rows: u64) -> EmulatorBuilder {
    Emulator::builder().generated_accounts(rows).service_limits(
        ServiceLimits::default()
            .requests(u32::MAX, Duration::from_secs(1))
            .execution_time(Duration::from_secs(3600)),
    )
}

fn emulator(runtime: &tokio::runtime::Runtime, rows: u64) -> Emulator {
    runtime
        .block_on(emulator_builder(rows).start())
        .expect("emulator")
}

fn connection_string(emulator: &Emulator) -> String {
    let seeded = emulator.seeded().expect("seeded identities");
    d365_emulator::connection_strings(emulator.base_url(), seeded)
        .into_iter()
        .next()
        .expect("the confidential app's connection string")
        .value
        .expose_secret()
        .to_owned()
}

/// A token for the emulator's confidential app, asked for once by this process.
fn app_token(runtime: &tokio::runtime::Runtime, emulator: &Emulator) -> String {
    let app = emulator.seeded().expect("seeded").confidential_app.clone();
    let http = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("an HTTP client");
    runtime.block_on(async {
        let scope = format!("{}/.default", emulator.base_url());
        let form = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("grant_type", "client_credentials")
            .append_pair("client_id", &app.client_id)
            .append_pair("client_secret", app.secret.expose_secret())
            .append_pair("scope", &scope)
            .finish();
        let body = http
            .post(emulator.token_endpoint_v2())
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(form)
            .send()
            .await
            .expect("token request")
            .bytes()
            .await
            .expect("token body");
        let answer: serde_json::Value = serde_json::from_slice(&body).expect("token json");
        answer["access_token"].as_str().expect("a token").to_owned()
    })
}

/// A scratch directory for the token file and the exports, removed at the end.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("d365-bench-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("scratch directory");
        Self(dir)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `d365` isolated from the user's profiles and token file.
fn d365_in(scratch: &Scratch) -> Command {
    let mut command = d365();
    command
        .env("D365_CONFIG_DIR", scratch.path("config"))
        .env("D365_TOKEN_CACHE", scratch.path("tokens.json"))
        .env("D365_TOKEN_KEY_STORE", "file")
        .env_remove("D365_CONNECTION_STRING")
        .env_remove("D365_PROFILE")
        .env_remove("RUST_LOG");
    command
}

fn start_up(options: &Options, scratch: &Scratch, out: &mut String) {
    let runs = options.start_up_runs();
    let runtime = runtime();
    let emulator = emulator(&runtime, 0);
    let connection = connection_string(&emulator);
    let floor = || Command::new("true");
    let version = || {
        let mut command = d365_in(scratch);
        command.arg("--version");
        command
    };
    // In the environment, as a script would pass it: not on the command line, where
    // `d365` warns about the secret.
    let whoami = || {
        let mut command = d365_in(scratch);
        command
            .arg("whoami")
            .env("D365_CONNECTION_STRING", &connection);
        command
    };
    let cold = || {
        let mut command = whoami();
        command.arg("--no-token-cache");
        command
    };
    // The first run fills the token file; the timed runs find it warm.
    measure::timed(whoami());
    let spreads = rounds(runs, &[&floor, &version, &whoami, &cold, &floor]);
    drop(emulator);
    let [floor_1, version, warm, cold, floor_2] =
        <[measure::Spread; 5]>::try_from(spreads).expect("five commands");
    let floor = Floor {
        runs: [floor_1.median, floor_2.median],
    };

    let ratio = |time: Duration| time.as_secs_f64() / floor.mean().as_secs_f64();
    let _ = writeln!(out, "\n## cli_start_up\n");
    let _ = writeln!(
        out,
        "{runs} rounds of `true`, the three commands, `true` again; each command's median \
         wall time (interquartile range) and its ratio to the floor (the mean of the two \
         `true` medians). `whoami` reads its connection string from the environment.\n"
    );
    out.push_str("| command | median (IQR) | ratio |\n|---|---:|---:|\n");
    for (name, spread) in [
        ("`true` (floor)", floor_1),
        ("`d365 --version`", version),
        ("`d365 whoami`, warm token file", warm),
        ("`d365 whoami --no-token-cache`", cold),
        ("`true` (floor, again)", floor_2),
    ] {
        let _ = writeln!(
            out,
            "| {name} | {} | {:.2}× |",
            spread.show(),
            ratio(spread.median)
        );
    }
    let _ = writeln!(
        out,
        "\n{} A warm `whoami` is {} faster than a cold one ({}).",
        floor.verdict(&[("`d365 --version`", version.median)]),
        millis(cold.median.saturating_sub(warm.median)),
        if warm.p75 < cold.p25 {
            "their interquartile ranges do not overlap"
        } else {
            "**within the noise: their interquartile ranges overlap**"
        }
    );
}

fn count_lines(path: &Path) -> u64 {
    let file = std::fs::File::open(path).expect("the export exists");
    std::io::BufReader::new(file).lines().count() as u64
}

/// One raw pass, in its own process; checks it counted every row.
fn raw_pass(first_page: &str, token: &str, rows: u64) -> Watched {
    let watched =
        run_watching_memory(raw::command(first_page, token, PAGE_SIZE)).expect_success("raw pass");
    assert_eq!(
        watched.stdout.trim().parse::<u64>().ok(),
        Some(rows),
        "the raw pass counts every row"
    );
    watched
}

fn export(options: &Options, scratch: &Scratch, out: &mut String) {
    let _ = writeln!(out, "\n## cli_export\n");
    let _ = writeln!(
        out,
        "`d365 get accounts --all --select {SELECT} --page-size {PAGE_SIZE} -o jsonl --out FILE` \
         against its floor: the same pages fetched by a process of their own (the same \
         HTTP client settings and headers, a fixed token, each page read for its next link \
         and row count only, nothing written), run before and after `d365`. Throughput is \
         rows over the process's wall time; peak RSS is each process's `VmHWM`.\n"
    );
    out.push_str(
        "| rows | floor (raw pages, 2 runs) | d365 export | d365 / floor throughput | \
         peak RSS: floor, d365 | noise |\n|---:|---:|---:|---:|---:|---|\n",
    );
    let mut verdicts = Vec::new();
    for rows in options.export_sizes() {
        let runtime = runtime();
        let emulator = emulator(&runtime, rows);
        let connection = connection_string(&emulator);
        let token = app_token(&runtime, &emulator);
        let first_page = format!("{}accounts?$select={SELECT}", emulator.web_api_url());
        let before = raw_pass(&first_page, &token, rows);
        let file = scratch.path(&format!("accounts-{rows}.jsonl"));
        let mut command = d365_in(scratch);
        command
            .args([
                "get",
                "accounts",
                "--all",
                "--select",
                SELECT,
                "--page-size",
                &PAGE_SIZE.to_string(),
                "--output",
                "jsonl",
                "--no-token-cache",
                "--out",
            ])
            .arg(&file)
            .env("D365_CONNECTION_STRING", &connection);
        let exported = run_watching_memory(command).expect_success("d365 get --all");
        let after = raw_pass(&first_page, &token, rows);
        assert_eq!(count_lines(&file), rows, "the export holds every row");
        std::fs::remove_file(&file).expect("export removed");
        drop(emulator);

        let floor = Floor {
            runs: [before.elapsed, after.elapsed],
        };
        let rate = |time: Duration| rows as f64 / time.as_secs_f64();
        let _ = writeln!(
            out,
            "| {rows} | {:.0} rows/s ({}, {}) | {:.0} rows/s ({}) | {:.2} | {:.1} MiB, {:.1} MiB | {:.1}% |",
            rate(floor.mean()),
            millis(before.elapsed),
            millis(after.elapsed),
            rate(exported.elapsed),
            millis(exported.elapsed),
            rate(exported.elapsed) / rate(floor.mean()),
            before.peak_mib().max(after.peak_mib()),
            exported.peak_mib(),
            floor.noise() * 100.0,
        );
        verdicts.push(format!(
            "{rows} rows: {}",
            floor.verdict(&[("`d365 get --all`", exported.elapsed)])
        ));
    }
    out.push('\n');
    for verdict in verdicts {
        let _ = writeln!(out, "- {verdict}");
    }
}

/// `target/bench/sections`, next to where cargo put this executable (`target/release/deps`).
fn sections_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the bench executable");
    let target = exe
        .ancestors()
        .nth(3)
        .expect("the executable lives in target/<profile>/deps");
    target.join("bench").join("sections")
}

fn main() {
    if raw::run_if_asked() || peers::run_tokens_mode_if_asked() {
        return;
    }
    let options = Options::from_args();
    let run_start_up = options.selects("cli_start_up");
    let run_export = options.selects("cli_export");
    let run_import = options.selects("cli_import");
    let peers = peers::Peers::from_environment().filter(|_| options.selects("peers"));
    if !run_start_up && !run_export && !run_import && peers.is_none() {
        return;
    }
    let scratch = Scratch::new();
    let mut out = String::new();
    if run_start_up {
        start_up(&options, &scratch, &mut out);
    }
    if run_export {
        export(&options, &scratch, &mut out);
    }
    if run_import {
        import::run(&options, &scratch, &mut out);
    }
    if let Some(peers) = &peers {
        peers::run(peers, &options, &scratch, &mut out);
    }
    print!("{out}");
    let dir = sections_dir();
    std::fs::create_dir_all(&dir).expect("the sections directory");
    std::fs::write(dir.join("cli_process.md"), out).expect("the report section");
}
