//! The libraries a user would pick instead of d365, side by side with it in the same run
//! and against the same emulator and data (issue 25), when `cargo xtask bench --peers`
//! installed them and named their directory in `D365_BENCH_PEERS`: MSAL for Python,
//! azure-identity, MSAL for Node.js, DynamicsWebApi (Node.js) and Microsoft's Python
//! Dataverse SDK. The scripts they run are beside this file (`peers/`).
//!
//! The emulator serves https here (MSAL and azure-identity refuse a plain-http authority,
//! the Python SDK a plain-http organization), its CA trusted by every process through the
//! variable each platform reads: `SSL_CERT_FILE` for `d365`, `REQUESTS_CA_BUNDLE` and an
//! explicit `verify` for Python, `NODE_EXTRA_CA_CERTS` for Node.js.
//!
//! Jobs: a token cache hit, a cold token, a one-shot WhoAmI process, a whole-table export,
//! and a bulk create of 100,000 rows (`d365 import` against DynamicsWebApi's and the Python
//! SDK's `CreateMultiple` paths).
//!
//! One table per job, each row a peer: its figure, d365's figure from the same run, and the
//! ratio peer / d365 (above 1: the peer takes longer or holds more). A peer that cannot run
//! against today's emulator is a row saying why, in the peer's own words.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use d365_emulator::Emulator;
use secrecy::ExposeSecret as _;

use crate::measure::{Spread, Watched, millis, rounds, run_within};
use crate::{Options, PAGE_SIZE, SELECT, Scratch};

/// The variable `cargo xtask bench --peers` sets to the peers' directory.
const PEERS_VARIABLE: &str = "D365_BENCH_PEERS";
/// The variable that starts this executable in d365's token mode.
const TOKENS_MODE_VARIABLE: &str = "D365_BENCH_TOKENS_MODE";

/// Where the peers are installed, when they are.
pub(crate) struct Peers {
    dir: PathBuf,
}

impl Peers {
    /// The peers `cargo xtask bench --peers` installed, if it did.
    pub(crate) fn from_environment() -> Option<Self> {
        let dir = PathBuf::from(std::env::var_os(PEERS_VARIABLE)?);
        assert!(
            dir.join("venv/bin/python").is_file() && dir.join("node/node_modules").is_dir(),
            "{PEERS_VARIABLE}={} holds no venv/ and node/: run `cargo xtask bench --peers`",
            dir.display()
        );
        Some(Self { dir })
    }

    fn python(&self) -> PathBuf {
        self.dir.join("venv/bin/python")
    }
}

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("benches/process/peers")
        .join(name)
}

/// The https emulator every peer job runs against, and what processes need to reach it.
struct Target {
    emulator: Emulator,
    ca: PathBuf,
    client_id: String,
    secret: String,
    connection: String,
}

impl Target {
    fn start(runtime: &tokio::runtime::Runtime, scratch: &Scratch, rows: u64) -> Self {
        let emulator = runtime
            .block_on(
                crate::emulator_builder(rows)
                    .https(true)
                    .write_credentials_to(scratch.path(&format!("peers-{rows}")))
                    .start(),
            )
            .expect("the https emulator");
        let ca = scratch.path(&format!("peers-{rows}/ca.crt.pem"));
        assert!(
            ca.is_file(),
            "the emulator wrote its CA to {}",
            ca.display()
        );
        let app = emulator.seeded().expect("seeded").confidential_app.clone();
        let connection = crate::connection_string(&emulator);
        Self {
            ca,
            client_id: app.client_id.clone(),
            secret: app.secret.expose_secret().to_owned(),
            connection,
            emulator,
        }
    }

    /// A peer's process: the emulator, its app and CA in the environment.
    fn peer(&self, peers: &Peers, program: &Path, args: &[&str]) -> Command {
        let mut command = Command::new(program);
        command
            .args(args)
            .env(PEERS_VARIABLE, &peers.dir)
            .env("EMULATOR_BASE", self.emulator.base_url())
            .env("EMULATOR_TENANT", self.emulator.tenant_id())
            .env("EMULATOR_CLIENT_ID", &self.client_id)
            .env("EMULATOR_CLIENT_SECRET", &self.secret)
            .env("EMULATOR_CA_BUNDLE", &self.ca)
            .env("REQUESTS_CA_BUNDLE", &self.ca)
            .env("NODE_EXTRA_CA_CERTS", &self.ca)
            .env("EXPORT_SELECT", SELECT)
            .env("NO_PROXY", "127.0.0.1,localhost")
            .env_remove("HTTPS_PROXY")
            .env_remove("https_proxy")
            .env_remove("HTTP_PROXY")
            .env_remove("http_proxy");
        command
    }

    fn python(&self, peers: &Peers, name: &str, args: &[&str]) -> Command {
        let mut command = self.peer(peers, &peers.python(), &[]);
        command.arg(script(name)).args(args);
        command
    }

    fn node(&self, peers: &Peers, name: &str, args: &[&str]) -> Command {
        let mut command = self.peer(peers, Path::new("node"), &[]);
        command.arg(script(name)).args(args);
        command
    }

    /// `d365`, trusting the emulator's CA, its connection in the environment.
    fn d365(&self, scratch: &Scratch) -> Command {
        let mut command = crate::d365_in(scratch);
        command
            .env("SSL_CERT_FILE", &self.ca)
            .env("D365_CONNECTION_STRING", &self.connection);
        command
    }

    /// This executable in d365's token mode (see [`run_tokens_mode_if_asked`]).
    fn d365_tokens(&self, args: &str) -> Command {
        let mut command =
            Command::new(std::env::current_exe().expect("the bench executable's own path"));
        command
            .env(TOKENS_MODE_VARIABLE, args)
            .env("SSL_CERT_FILE", &self.ca)
            .env("D365_CONNECTION_STRING", &self.connection);
        command
    }

    /// Takes secrets out of a peer's error text before it reaches the report.
    fn redact(&self, text: &str) -> String {
        text.replace(&self.secret, "[secret]")
    }
}

/// A peer's figures (JSON: name → samples in nanoseconds) from its standard output, or why
/// it failed.
fn samples(target: &Target, watched: &Watched) -> Result<serde_json::Value, String> {
    if !watched.success {
        return Err(failure(target, watched));
    }
    serde_json::from_str(watched.stdout.trim())
        .map_err(|error| format!("printed no figures ({error})"))
}

/// The last line of a failed process's error output: the peer's own words.
fn failure(target: &Target, watched: &Watched) -> String {
    let text = target.redact(&watched.stderr);
    let last = text
        .lines()
        .rev()
        .map(str::trim)
        .find(|line| !line.is_empty())
        .unwrap_or("it failed without a word");
    last.chars().take(400).collect()
}

/// The median of `values[name]` (nanoseconds), as a duration.
fn median_of(values: &serde_json::Value, name: &str) -> Option<Duration> {
    let samples: Vec<Duration> = values[name]
        .as_array()?
        .iter()
        .filter_map(serde_json::Value::as_f64)
        .map(|ns| Duration::from_nanos(ns.round() as u64))
        .collect();
    (!samples.is_empty()).then(|| Spread::of(samples).median)
}

fn nanos(time: Duration) -> String {
    let ns = time.as_secs_f64() * 1e9;
    if ns < 1e3 {
        format!("{ns:.0} ns")
    } else if ns < 1e6 {
        format!("{:.1} µs", ns / 1e3)
    } else {
        millis(time)
    }
}

fn ratio(peer: Duration, d365: Duration) -> String {
    format!("{:.1}×", peer.as_secs_f64() / d365.as_secs_f64())
}

/// Runs every peer job and writes its tables.
pub(crate) fn run(peers: &Peers, options: &Options, scratch: &Scratch, out: &mut String) {
    let _ = writeln!(out, "\n## peers\n");
    let _ = writeln!(
        out,
        "The same jobs done by the libraries a user would pick instead of d365, against \
         the same https emulator and data, in this run. Ratio: the peer's figure over \
         d365's (above 1: the peer takes longer, or holds more memory).\n"
    );
    let runtime = crate::runtime();
    let target = Target::start(&runtime, scratch, 0);
    tokens(peers, options, &target, out);
    start_up(peers, options, &target, scratch, out);
    drop(target);
    export(peers, options, &runtime, scratch, out);
    bulk_create(peers, options, &runtime, scratch, out);
}

/// Token cache hits and cold tokens.
fn tokens(peers: &Peers, options: &Options, target: &Target, out: &mut String) {
    let (rounds, calls, cold_runs) = if options.quick {
        (5, 2_000, 7)
    } else {
        (11, 10_000, 21)
    };
    let limit = Duration::from_secs(600);
    let d365 = run_within(
        target.d365_tokens(&format!("{rounds},{calls},{cold_runs}")),
        limit,
    );
    let d365 = samples(target, &d365).unwrap_or_else(|error| panic!("d365's tokens: {error}"));
    let d365_hit = median_of(&d365, "cache_hit").expect("d365's cache hits");
    let d365_cold = median_of(&d365, "cold").expect("d365's cold tokens");
    let hit_args = [rounds.to_string(), calls.to_string()];
    let hit_args: Vec<&str> = hit_args.iter().map(String::as_str).collect();
    let python_hit = run_within(
        target.python(
            peers,
            "tokens.py",
            &[&["cache-hit"], &hit_args[..]].concat(),
        ),
        limit,
    );
    let node_hit = run_within(
        target.node(
            peers,
            "tokens.mjs",
            &[&["cache-hit"], &hit_args[..]].concat(),
        ),
        limit,
    );
    let cold = cold_runs.to_string();
    let python_cold = run_within(target.python(peers, "tokens.py", &["cold", &cold]), limit);
    let node_cold = run_within(target.node(peers, "tokens.mjs", &["cold", &cold]), limit);

    let _ = writeln!(out, "### Token cache hit\n");
    let _ = writeln!(
        out,
        "A token asked for again while the one in memory is fresh: MSAL's \
         `acquire_token_for_client` / `acquireTokenByClientCredential` on a warm client \
         against `TokenCache::get` (awaited on a one-thread runtime). Median over {rounds} \
         rounds of {calls} calls, per call; every peer call is checked to come from its \
         cache.\n"
    );
    out.push_str("| peer | per call | d365 `TokenCache::get` | ratio |\n|---|---:|---:|---:|\n");
    for (name, watched, key) in [
        ("MSAL for Python 1.39.0", &python_hit, "msal_python"),
        ("MSAL for Node.js 7.2.4", &node_hit, "msal_node"),
    ] {
        row(out, target, name, watched, key, d365_hit, nanos);
    }

    let _ = writeln!(out, "\n### Cold token by client secret\n");
    let _ = writeln!(
        out,
        "A new client object gets its first token from the emulator's token endpoint (new \
         connection, TLS handshake, whatever discovery the library does first), inside one \
         process: median of {cold_runs} runs. d365: a new provider from the connection \
         string and a new `TokenCache`, then `get`.\n"
    );
    out.push_str("| peer | per token | d365 | ratio |\n|---|---:|---:|---:|\n");
    for (name, watched, key) in [
        ("MSAL for Python 1.39.0", &python_cold, "msal_python"),
        (
            "azure-identity 1.27.0 (`ClientSecretCredential`)",
            &python_cold,
            "azure_identity",
        ),
        ("MSAL for Node.js 7.2.4", &node_cold, "msal_node"),
    ] {
        row(out, target, name, watched, key, d365_cold, millis);
    }
}

/// One table row: the peer's median from its JSON, or why it could not run.
fn row(
    out: &mut String,
    target: &Target,
    name: &str,
    watched: &Watched,
    key: &str,
    d365: Duration,
    show: fn(Duration) -> String,
) {
    match samples(target, watched).map(|values| median_of(&values, key)) {
        Ok(Some(peer)) => {
            let _ = writeln!(
                out,
                "| {name} | {} | {} | {} |",
                show(peer),
                show(d365),
                ratio(peer, d365)
            );
        }
        Ok(None) => {
            let _ = writeln!(
                out,
                "| {name} | printed no `{key}` figures | {} | — |",
                show(d365)
            );
        }
        Err(error) => {
            let _ = writeln!(
                out,
                "| {name} | could not run: {} | {} | — |",
                error.replace('|', "\\|"),
                show(d365)
            );
        }
    }
}

/// A one-shot WhoAmI per process, in rounds.
fn start_up(
    peers: &Peers,
    options: &Options,
    target: &Target,
    scratch: &Scratch,
    out: &mut String,
) {
    let runs = if options.quick { 5 } else { 15 };
    let cold = || {
        let mut command = target.d365(scratch);
        command.args(["whoami", "--no-token-cache"]);
        command
    };
    let warm = || {
        let mut command = target.d365(scratch);
        command.arg("whoami");
        command
    };
    let msal_python = || target.python(peers, "whoami_msal.py", &[]);
    let identity = || target.python(peers, "whoami_identity.py", &[]);
    let node = || target.node(peers, "whoami.mjs", &[]);
    // Each must work before it is timed; the first warm run fills the token file.
    let names = [
        "MSAL for Python + requests",
        "azure-identity + requests",
        "DynamicsWebApi + MSAL for Node.js",
    ];
    let scripts: [&dyn Fn() -> Command; 3] = [&msal_python, &identity, &node];
    let mut working: Vec<(&str, &dyn Fn() -> Command)> = Vec::new();
    let mut broken = Vec::new();
    for (name, script) in names.into_iter().zip(scripts) {
        let first = run_within(script(), Duration::from_secs(120));
        if first.success {
            working.push((name, script));
        } else {
            broken.push((name, failure(target, &first)));
        }
    }
    crate::measure::timed(warm());
    let mut commands: Vec<&dyn Fn() -> Command> = vec![&cold, &warm];
    commands.extend(working.iter().map(|(_, script)| *script));
    let spreads = rounds(runs, &commands);

    let _ = writeln!(out, "\n### Process start-up: one WhoAmI\n");
    let _ = writeln!(
        out,
        "A whole process that gets a token by client secret and calls WhoAmI once, as a \
         script would: {runs} rounds of every command; median wall time (interquartile \
         range). The peers keep no token between processes, so d365's figure is \
         `d365 whoami --no-token-cache`; with its token file warm, `d365 whoami` took {}.\n",
        spreads[1].show()
    );
    out.push_str(
        "| peer | median (IQR) | d365 `whoami --no-token-cache` | ratio |\n|---|---:|---:|---:|\n",
    );
    for ((name, _), spread) in working.iter().zip(&spreads[2..]) {
        let _ = writeln!(
            out,
            "| {name} | {} | {} | {} |",
            spread.show(),
            spreads[0].show(),
            ratio(spread.median, spreads[0].median)
        );
    }
    for (name, error) in broken {
        let _ = writeln!(
            out,
            "| {name} | could not run: {} | {} | — |",
            error.replace('|', "\\|"),
            spreads[0].show()
        );
    }
}

/// Whole-table exports: each process's wall time and peak RSS.
fn export(
    peers: &Peers,
    options: &Options,
    runtime: &tokio::runtime::Runtime,
    scratch: &Scratch,
    out: &mut String,
) {
    let sizes: &[u64] = if options.quick {
        &[100_000]
    } else {
        &[100_000, 1_000_000]
    };
    let _ = writeln!(out, "\n### Whole-table export\n");
    let _ = writeln!(
        out,
        "Every row of `accounts` ({SELECT}) at {PAGE_SIZE} a page, written as JSON lines to \
         a file: DynamicsWebApi's `retrieveAll` (which holds every row in memory, then \
         writes), Microsoft's Python Dataverse SDK paging with `client.records.get`, and \
         `d365 get accounts --all -o jsonl --out FILE`. One run each; wall time and peak RSS \
         of each process; every file is checked to hold every row.\n"
    );
    out.push_str(
        "| rows | peer | wall time | d365 | ratio | peak RSS | d365 | ratio |\n\
         |---:|---|---:|---:|---:|---:|---:|---:|\n",
    );
    let page_size = PAGE_SIZE.to_string();
    for &rows in sizes {
        let target = Target::start(runtime, scratch, rows);
        let file = scratch.path(&format!("peer-export-{rows}.jsonl"));
        let limit = Duration::from_secs(900);
        let mut d365 = target.d365(scratch);
        d365.args([
            "get",
            "accounts",
            "--all",
            "--select",
            SELECT,
            "--page-size",
            &page_size,
            "--output",
            "jsonl",
            "--no-token-cache",
            "--out",
        ])
        .arg(&file);
        let d365 = run_within(d365, limit).expect_success("d365 get --all (https)");
        assert_eq!(crate::count_lines(&file), rows, "d365 exported every row");
        let file_arg = file.display().to_string();
        for (name, command) in [
            (
                "DynamicsWebApi 2.5.0 `retrieveAll` (Node.js)",
                target.node(peers, "export.mjs", &[&file_arg, &page_size]),
            ),
            (
                "PowerPlatform-Dataverse-Client 1.1.0 (Python)",
                target.python(peers, "export_sdk.py", &[&file_arg, &page_size]),
            ),
        ] {
            let _ = std::fs::remove_file(&file);
            let peer = run_within(command, limit);
            let counted = peer.stdout.trim().parse::<u64>().ok();
            let outcome = if !peer.success {
                Err(failure(&target, &peer))
            } else if counted == Some(rows) && crate::count_lines(&file) == rows {
                Ok(())
            } else {
                Err(format!("it wrote {counted:?} rows of {rows}"))
            };
            let _ = writeln!(out, "| {rows} {}", process_row(name, &peer, &d365, outcome));
        }
        let _ = std::fs::remove_file(&file);
    }
}

/// Bulk create: the rows of one JSON lines file into an empty table, by each peer's bulk
/// path and by `d365 import`, each into a fresh emulator; every table is then exported and
/// counted.
fn bulk_create(
    peers: &Peers,
    options: &Options,
    runtime: &tokio::runtime::Runtime,
    scratch: &Scratch,
    out: &mut String,
) {
    let rows: u64 = if options.quick { 20_000 } else { 100_000 };
    let chunk = "1000";
    let _ = writeln!(out, "\n### Bulk create of {rows} rows\n");
    let _ = writeln!(
        out,
        "The rows of one JSON lines file (name, account number, revenue) into an empty \
         `accounts`: DynamicsWebApi calling the bound action `CreateMultiple` with {chunk} \
         rows a request (it has no helper for it), the Python SDK's `records.create` with a \
         list of {chunk} (it sends a list as one `CreateMultiple` and does not chunk), both \
         one request after another as their documentation shows; and `d365 import accounts \
         --file F` (chunks of 500, several in flight, a checkpoint file). Each into a fresh \
         emulator; wall time and peak RSS of each process; every table is then counted.\n"
    );
    out.push_str(
        "| peer | wall time | d365 | ratio | peak RSS | d365 | ratio |\n\
         |---|---:|---:|---:|---:|---:|---:|\n",
    );
    let input = scratch.path("peer-bulk.jsonl");
    crate::import::write_input(&input, rows);
    let input_arg = input.display().to_string();
    let limit = Duration::from_secs(900);
    let counted = |target: &Target| -> u64 {
        let file = scratch.path("peer-bulk-count.jsonl");
        let mut command = target.d365(scratch);
        command
            .args([
                "get",
                "accounts",
                "--all",
                "--select",
                "accountid",
                "-o",
                "jsonl",
            ])
            .args(["--no-token-cache", "--out"])
            .arg(&file);
        run_within(command, limit).expect_success("d365 get (count)");
        let rows = crate::count_lines(&file);
        let _ = std::fs::remove_file(&file);
        rows
    };

    let target = Target::start(runtime, scratch, 0);
    let before = counted(&target);
    let mut d365 = target.d365(scratch);
    d365.args([
        "import",
        "accounts",
        "--no-token-cache",
        "-o",
        "json",
        "--file",
    ])
    .arg(&input);
    let d365 = run_within(d365, limit).expect_success("d365 import (https)");
    assert_eq!(counted(&target) - before, rows, "d365 imported every row");
    drop(target);

    for (name, program) in [
        (
            "DynamicsWebApi 2.5.0 `callAction` CreateMultiple (Node.js)",
            "bulk.mjs",
        ),
        (
            "PowerPlatform-Dataverse-Client 1.1.0 `records.create` (Python)",
            "bulk_sdk.py",
        ),
    ] {
        let target = Target::start(runtime, scratch, 0);
        let before = counted(&target);
        let command = if program.ends_with(".mjs") {
            target.node(peers, program, &[&input_arg, chunk])
        } else {
            target.python(peers, program, &[&input_arg, chunk])
        };
        let peer = run_within(command, limit);
        let written = counted(&target) - before;
        let outcome = if !peer.success {
            Err(failure(&target, &peer))
        } else if written == rows {
            Ok(())
        } else {
            Err(format!("the table got {written} rows of {rows}"))
        };
        let _ = writeln!(out, "{}", process_row(name, &peer, &d365, outcome));
    }
    let _ = std::fs::remove_file(&input);
}

/// One table row comparing a peer's process with d365's: `| name | wall time | d365 | ratio |
/// peak RSS | d365 | ratio |`, or why the peer could not run.
fn process_row(name: &str, peer: &Watched, d365: &Watched, outcome: Result<(), String>) -> String {
    match outcome {
        Ok(()) => format!(
            "| {name} | {} | {} | {} | {:.1} MiB | {:.1} MiB | {:.1}× |",
            millis(peer.elapsed),
            millis(d365.elapsed),
            ratio(peer.elapsed, d365.elapsed),
            peer.peak_mib(),
            d365.peak_mib(),
            peer.peak_mib() / d365.peak_mib()
        ),
        Err(why) => format!(
            "| {name} | could not run: {} | {} | — | — | {:.1} MiB | — |",
            why.replace('|', "\\|"),
            millis(d365.elapsed),
            d365.peak_mib()
        ),
    }
}

/// When this executable was started in d365's token mode (`ROUNDS,CALLS,COLD_RUNS` in
/// [`TOKENS_MODE_VARIABLE`], the connection string in `D365_CONNECTION_STRING`): measures
/// `TokenCache::get` hits and cold tokens, prints them as JSON, and returns `true`.
pub(crate) fn run_tokens_mode_if_asked() -> bool {
    let Ok(args) = std::env::var(TOKENS_MODE_VARIABLE) else {
        return false;
    };
    let numbers: Vec<u32> = args
        .split(',')
        .map(|number| number.parse().expect("ROUNDS,CALLS,COLD_RUNS"))
        .collect();
    let [rounds, calls, cold_runs] = numbers[..] else {
        panic!("ROUNDS,CALLS,COLD_RUNS");
    };
    let text = std::env::var("D365_CONNECTION_STRING").expect("the connection string");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let figures = runtime.block_on(async {
        let provider = || async {
            d365_connect::ConnectionString::parse(&text)
                .expect("a connection string")
                .into_credential()
                .provider(&d365_connect::ConnectOptions::new())
                .await
                .expect("a provider")
        };
        let credential = d365_connect::ConnectionString::parse(&text)
            .expect("a connection string")
            .into_credential();
        let org = credential.organization().expect("an organization").clone();
        let request = d365_auth_core::TokenRequest::new(org);

        let cache = d365_auth_core::TokenCache::new(provider().await);
        let first = cache.get(&request).await.expect("a first token");
        assert!(
            cache.get(&request).await.expect("a hit").same_token(&first),
            "a warm key is a hit"
        );
        let mut hits = Vec::new();
        for _ in 0..rounds {
            let started = Instant::now();
            for _ in 0..calls {
                std::hint::black_box(cache.get(&request).await.expect("a hit"));
            }
            hits.push(started.elapsed().as_nanos() as f64 / f64::from(calls));
        }

        let mut cold = Vec::new();
        for _ in 0..cold_runs {
            let started = Instant::now();
            let cache = d365_auth_core::TokenCache::new(provider().await);
            std::hint::black_box(cache.get(&request).await.expect("a cold token"));
            cold.push(started.elapsed().as_nanos() as f64);
        }
        serde_json::json!({ "cache_hit": hits, "cold": cold })
    });
    println!("{figures}");
    true
}
