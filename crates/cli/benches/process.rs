//! The `d365` process measured from outside (issue 10), where criterion cannot look: wall
//! time of whole command runs and their peak resident memory. A plain `main` (the bench
//! target has `harness = false`) that starts an emulator in this process, runs the release
//! `d365` binary against it, prints a report section and writes it to
//! `target/bench/sections/cli_process.md`, which `cargo xtask bench` appends to its report.
//!
//! - **Start-up**: `d365 --version`, and `d365 whoami` with a warm token file and with
//!   `--no-token-cache`, each the median of several runs, against spawning `true` (the
//!   floor any process pays) measured in the same run.
//! - **Export**: `d365 get accounts --all --out FILE -o jsonl` over 100,000 and 1,000,000
//!   generated rows at 5000 a page, against the emulator's raw page-serving rate (the same
//!   pages fetched by reqwest in this process and thrown away); the throughput ratio, and
//!   the child's peak RSS (`VmHWM`, polled from `/proc` every 5 ms), which must stay flat
//!   as the row count grows tenfold. Every exported file is checked to hold every row.
//!
//! `D365_BENCH_ROWS=a,b` changes the export sizes; criterion's `--quick` options (passed by
//! `cargo xtask bench --quick`) shrink them to 10,000 and 100,000 and run fewer start-ups.

#![allow(
    clippy::print_stdout,
    reason = "a benchmark reports on stdout, as criterion does"
)]

use std::collections::HashSet;
use std::fmt::Write as _;
use std::io::BufRead as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use d365_emulator::{Emulator, ServiceLimits};
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
        if self.quick { 7 } else { 25 }
    }
}

fn d365() -> Command {
    Command::new(env!("CARGO_BIN_EXE_d365"))
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort_unstable();
    samples[samples.len() / 2]
}

/// Median wall time of `runs` runs of `command()`, each of which must succeed.
fn timed_runs(runs: usize, mut command: impl FnMut() -> Command) -> Duration {
    let samples = (0..runs)
        .map(|_| {
            let mut command = command();
            let started = Instant::now();
            let output = command.output().expect("spawned");
            let elapsed = started.elapsed();
            assert!(
                output.status.success(),
                "{command:?} failed: {}",
                String::from_utf8_lossy(&output.stderr)
            );
            elapsed
        })
        .collect();
    median(samples)
}

/// The process's peak resident set so far, in KiB, while it runs.
fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Runs `command` to the end; its wall time and the highest peak RSS seen while it ran.
fn run_watching_memory(mut command: Command) -> (Duration, u64) {
    let started = Instant::now();
    let mut child = command
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawned");
    let pid = child.id();
    let mut peak = 0;
    let status = loop {
        if let Some(status) = child.try_wait().expect("waited") {
            break status;
        }
        peak = peak.max(peak_rss_kib(pid).unwrap_or(0));
        std::thread::sleep(Duration::from_millis(5));
    };
    let elapsed = started.elapsed();
    let mut stderr = String::new();
    if let Some(pipe) = child.stderr.take() {
        for line in std::io::BufReader::new(pipe).lines() {
            stderr.push_str(&line.unwrap_or_default());
            stderr.push('\n');
        }
    }
    assert!(status.success(), "{command:?} failed: {stderr}");
    (elapsed, peak)
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

fn emulator(runtime: &tokio::runtime::Runtime, rows: u64) -> Emulator {
    runtime
        .block_on(
            // Service protection would throttle a benchmark; it is not what is measured.
            Emulator::builder()
                .generated_accounts(rows)
                .service_limits(
                    ServiceLimits::default()
                        .requests(u32::MAX, Duration::from_secs(1))
                        .execution_time(Duration::from_secs(3600)),
                )
                .start(),
        )
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
    let floor = timed_runs(runs, || Command::new("true"));
    let version = timed_runs(runs, || {
        let mut command = d365_in(scratch);
        command.arg("--version");
        command
    });
    // The first run fills the token file; the timed runs find it warm.
    let whoami = || {
        let mut command = d365_in(scratch);
        command.args(["whoami", "--connection-string", &connection]);
        command
    };
    timed_runs(1, whoami);
    let warm = timed_runs(runs, whoami);
    let cold = timed_runs(runs, || {
        let mut command = whoami();
        command.arg("--no-token-cache");
        command
    });
    drop(emulator);

    let ratio = |time: Duration| time.as_secs_f64() / floor.as_secs_f64();
    let _ = writeln!(out, "\n## cli_start_up\n");
    let _ = writeln!(
        out,
        "Median wall time of {runs} runs each; the ratio is against spawning `true`.\n"
    );
    out.push_str("| command | median | ratio |\n|---|---:|---:|\n");
    for (name, time) in [
        ("`true` (floor)", floor),
        ("`d365 --version`", version),
        ("`d365 whoami`, warm token file", warm),
        ("`d365 whoami --no-token-cache`", cold),
    ] {
        let _ = writeln!(out, "| {name} | {} | {:.2}× |", millis(time), ratio(time));
    }
}

/// Fetches every page the way the CLI asks for them and throws the rows away; returns how
/// long it took. Checks every row came exactly once.
fn raw_pass(runtime: &tokio::runtime::Runtime, emulator: &Emulator, rows: u64) -> Duration {
    let http = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("an HTTP client");
    let app = emulator.seeded().expect("seeded").confidential_app.clone();
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
        let token = answer["access_token"].as_str().expect("a token").to_owned();

        let started = Instant::now();
        let mut ids = HashSet::new();
        let mut next = Some(format!(
            "{}accounts?$select={SELECT}",
            emulator.web_api_url()
        ));
        while let Some(url) = next.take() {
            let body = http
                .get(&url)
                .bearer_auth(&token)
                .header("Prefer", format!("odata.maxpagesize={PAGE_SIZE}"))
                .send()
                .await
                .expect("page request")
                .bytes()
                .await
                .expect("page body");
            let page: serde_json::Value = serde_json::from_slice(&body).expect("page json");
            for row in page["value"].as_array().expect("rows") {
                ids.insert(row["accountid"].as_str().expect("id").to_owned());
            }
            next = page["@odata.nextLink"].as_str().map(str::to_owned);
        }
        let elapsed = started.elapsed();
        assert_eq!(ids.len() as u64, rows, "the raw pass saw every row once");
        elapsed
    })
}

fn count_lines(path: &Path) -> u64 {
    let file = std::fs::File::open(path).expect("the export exists");
    std::io::BufReader::new(file).lines().count() as u64
}

fn export(options: &Options, scratch: &Scratch, out: &mut String) {
    let _ = writeln!(out, "\n## cli_export\n");
    let _ = writeln!(
        out,
        "`d365 get accounts --all --select {SELECT} --page-size {PAGE_SIZE} -o jsonl --out FILE` \
         against fetching the same pages with reqwest in the emulator's process (the raw \
         page-serving rate). Peak RSS is the `d365` process's `VmHWM`.\n"
    );
    out.push_str(
        "| rows | raw pages | d365 export | export / raw throughput | d365 peak RSS |\n\
         |---:|---:|---:|---:|---:|\n",
    );
    for rows in options.export_sizes() {
        let runtime = runtime();
        let emulator = emulator(&runtime, rows);
        let connection = connection_string(&emulator);
        let raw = raw_pass(&runtime, &emulator, rows);
        let file = scratch.path(&format!("accounts-{rows}.jsonl"));
        let mut command = d365_in(scratch);
        command.args([
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
            "--connection-string",
            &connection,
            "--out",
        ]);
        command.arg(&file);
        let (elapsed, peak_kib) = run_watching_memory(command);
        assert_eq!(count_lines(&file), rows, "the export holds every row");
        std::fs::remove_file(&file).expect("export removed");
        drop(emulator);

        let rate = |time: Duration| rows as f64 / time.as_secs_f64();
        let _ = writeln!(
            out,
            "| {rows} | {:.0} rows/s | {:.0} rows/s ({}) | {:.2} | {:.1} MiB |",
            rate(raw),
            rate(elapsed),
            millis(elapsed),
            rate(elapsed) / rate(raw),
            peak_kib as f64 / 1024.0
        );
    }
}

fn millis(time: Duration) -> String {
    format!("{:.1} ms", time.as_secs_f64() * 1000.0)
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
    let options = Options::from_args();
    let run_start_up = options.selects("cli_start_up");
    let run_export = options.selects("cli_export");
    if !run_start_up && !run_export {
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
    print!("{out}");
    let dir = sections_dir();
    std::fs::create_dir_all(&dir).expect("the sections directory");
    std::fs::write(dir.join("cli_process.md"), out).expect("the report section");
}
