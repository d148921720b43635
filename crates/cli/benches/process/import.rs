//! `d365 import` against the two ways a program loads rows without it (issue 23), all into
//! the same kind of emulator in one run:
//!
//! - **one create per request**: `Client::create` for each row, as many in flight as the
//!   client's parallelism allows (`run_parallel`), over a sample of the rows;
//! - **`$batch` of 1,000**: one change set of 1,000 creates per request, one request after
//!   another, over a sample;
//! - **`d365 import accounts --file F.jsonl`**: the whole file, as a process of its own; its
//!   wall time and peak RSS (`VmHWM`) at two sizes, so that memory that grows with the input
//!   shows;
//! - **under faults**: the import again with throttling (a request limit per window, so 429s
//!   with `Retry-After`) and 5% of responses cut mid-body, which must end with exactly the
//!   file's rows — none lost, none twice.
//!
//! Rates are rows over wall time. Every import is checked to have written every row.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use d365_emulator::{Emulator, FaultConfig, ServiceLimits};
use d365_webapi::{Batch, Client};
use serde_json::json;

use crate::measure::{Watched, millis, run_watching_memory};
use crate::{Options, Scratch, connection_string, d365_in, emulator_builder, runtime};

/// Rows in each `$batch` request of the batch baseline.
const BATCH_ROWS: usize = 1_000;

/// The first row number of the batch baseline (after the single creates' rows).
const BATCH_ROW_BASE: u64 = 1 << 32;

/// The first row number of the `CreateMultiple` reference.
const MULTIPLE_ROW_BASE: u64 = 1 << 33;

impl Options {
    /// The two import sizes: `D365_BENCH_IMPORT_ROWS=a,b`, else 100,000 and 1,000,000
    /// (10,000 and 100,000 quick).
    fn import_sizes(&self) -> Vec<u64> {
        if let Ok(sizes) = std::env::var("D365_BENCH_IMPORT_ROWS") {
            return sizes
                .split(',')
                .map(|size| {
                    size.trim()
                        .parse()
                        .expect("D365_BENCH_IMPORT_ROWS: row counts")
                })
                .collect();
        }
        if self.quick {
            vec![10_000, 100_000]
        } else {
            vec![100_000, 1_000_000]
        }
    }

    /// How many rows the baselines write: enough for a steady rate, few enough to finish.
    fn baseline_rows(&self) -> (usize, usize) {
        if self.quick {
            (2_000, 10_000)
        } else {
            (5_000, 30_000)
        }
    }
}

/// The account row number `n` of an input file.
fn row(n: u64) -> serde_json::Value {
    json!({"name": format!("Imported {n}"), "accountnumber": format!("I-{n}"), "revenue": n})
}

/// Writes `rows` account rows as JSON lines to `path`.
pub(crate) fn write_input(path: &Path, rows: u64) {
    let file = std::fs::File::create(path).expect("input file");
    let mut writer = std::io::BufWriter::with_capacity(1 << 16, file);
    for n in 0..rows {
        serde_json::to_writer(&mut writer, &row(n)).expect("row written");
        writer.write_all(b"\n").expect("row written");
    }
    writer.flush().expect("input flushed");
}

/// How many accounts the emulator holds, counted page by page (`$count` stops at 5,000, as
/// on the service); the client replays reads cut by injected faults.
fn accounts(runtime: &tokio::runtime::Runtime, emulator: &Emulator) -> u64 {
    use futures_util::TryStreamExt as _;
    runtime.block_on(async {
        let client = d365_connect::connect(&connection_string(emulator))
            .await
            .expect("a client of the emulator");
        let query = d365_webapi::Query::new("accounts")
            .select(["accountid"])
            .page_size(5_000);
        client
            .query_all::<serde_json::Value>(query)
            .try_fold(0u64, |count, _| async move { Ok(count + 1) })
            .await
            .expect("the accounts counted")
    })
}

fn client(runtime: &tokio::runtime::Runtime, emulator: &Emulator) -> Client {
    runtime
        .block_on(d365_connect::connect(&connection_string(emulator)))
        .expect("a client of the emulator")
}

/// Rows per second of one create per request, `rows` of them, as parallel as the client
/// goes.
fn single_creates(runtime: &tokio::runtime::Runtime, client: &Client, rows: usize) -> f64 {
    let started = Instant::now();
    let results = runtime.block_on(client.run_parallel(0..rows as u64, |client, n| async move {
        client
            .create("accounts", &row(n), &d365_webapi::RequestOptions::new())
            .await
    }));
    let elapsed = started.elapsed();
    assert!(
        results.iter().all(Result::is_ok),
        "every single create succeeds"
    );
    rows as f64 / elapsed.as_secs_f64()
}

/// Rows per second of `$batch` requests of [`BATCH_ROWS`] creates in one change set each,
/// one after another.
fn batches(runtime: &tokio::runtime::Runtime, client: &Client, rows: usize) -> f64 {
    let started = Instant::now();
    runtime.block_on(async {
        let mut next = 0u64;
        while (next as usize) < rows {
            let end = (next + BATCH_ROWS as u64).min(rows as u64);
            let mut batch = Batch::new();
            batch.change_set(|set| {
                // Numbered after the single creates' rows: account numbers are a key.
                for n in next..end {
                    set.create("accounts", row(BATCH_ROW_BASE + n));
                }
            });
            let answers = client.execute_batch(&batch).await.expect("$batch");
            if let Some(failed) = answers.iter().find(|answer| !answer.status.is_success()) {
                panic!("a $batch create failed: {failed:?}");
            }
            next = end;
        }
    });
    rows as f64 / started.elapsed().as_secs_f64()
}

/// Rows per second of `CreateMultiple` requests of 1,000 rows, one after another: what the
/// emulator itself takes for the requests `d365 import` sends.
fn create_multiples(runtime: &tokio::runtime::Runtime, client: &Client, rows: usize) -> f64 {
    let started = Instant::now();
    runtime.block_on(async {
        let mut next = 0u64;
        while (next as usize) < rows {
            let end = (next + BATCH_ROWS as u64).min(rows as u64);
            let chunk: Vec<serde_json::Value> =
                (next..end).map(|n| row(MULTIPLE_ROW_BASE + n)).collect();
            client
                .create_multiple("accounts", &chunk)
                .await
                .expect("CreateMultiple");
            next = end;
        }
    });
    rows as f64 / started.elapsed().as_secs_f64()
}

/// `d365 import accounts --file input` against `emulator`, as a process.
fn import(scratch: &Scratch, emulator: &Emulator, input: &Path) -> Watched {
    let mut command = d365_in(scratch);
    command
        .args([
            "import",
            "accounts",
            "--no-token-cache",
            "-o",
            "json",
            "--file",
        ])
        .arg(input)
        .env("D365_CONNECTION_STRING", connection_string(emulator));
    run_watching_memory(command).expect_success("d365 import")
}

pub(crate) fn run(options: &Options, scratch: &Scratch, out: &mut String) {
    let _ = writeln!(out, "\n## cli_import\n");
    let (single_rows, batch_rows) = options.baseline_rows();
    let _ = writeln!(
        out,
        "`d365 import accounts --file F.jsonl` (a process) against one create per request \
         (`Client::create`, {single_rows} rows, as parallel as the client goes) and `$batch` \
         requests of {BATCH_ROWS} creates in a change set ({batch_rows} rows, one request \
         after another), each into a fresh emulator without service protection limits. \
         For reference, `CreateMultiple` requests of {BATCH_ROWS} rows one after another \
         ({batch_rows} rows, the library alone): what the emulator takes for the requests the \
         import sends. Rates are rows over wall time; peak RSS is `VmHWM` of the `d365` \
         process.\n"
    );
    out.push_str(
        "| rows | d365 import | one create per request | $batch of 1,000 | CreateMultiple of \
         1,000 | import / single | import / batch | peak RSS of d365 |\n\
         |---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    let mut peaks = Vec::new();
    for rows in options.import_sizes() {
        let input = scratch.path(&format!("import-{rows}.jsonl"));
        write_input(&input, rows);
        let runtime = runtime();

        let baseline = runtime
            .block_on(emulator_builder(0).start())
            .expect("emulator");
        let baseline_client = client(&runtime, &baseline);
        let single = single_creates(&runtime, &baseline_client, single_rows);
        let batched = batches(&runtime, &baseline_client, batch_rows);
        let multiple = create_multiples(&runtime, &baseline_client, batch_rows);
        drop(baseline);

        let emulator = runtime
            .block_on(emulator_builder(0).start())
            .expect("emulator");
        let before = accounts(&runtime, &emulator);
        let imported = import(scratch, &emulator, &input);
        let after = accounts(&runtime, &emulator);
        assert_eq!(after - before, rows, "the import wrote every row once");
        drop(emulator);
        std::fs::remove_file(&input).expect("input removed");

        let rate = rows as f64 / imported.elapsed.as_secs_f64();
        peaks.push((rows, imported.peak_mib()));
        let _ = writeln!(
            out,
            "| {rows} | {rate:.0} rows/s ({}) | {single:.0} rows/s | {batched:.0} rows/s | {multiple:.0} rows/s | {:.1} | {:.2} | {:.1} MiB |",
            millis(imported.elapsed),
            rate / single,
            rate / batched,
            imported.peak_mib(),
        );
    }
    if let [(small, small_peak), .., (large, large_peak)] = peaks.as_slice() {
        let _ = writeln!(
            out,
            "\nPeak memory from {small} to {large} rows: {small_peak:.1} MiB → {large_peak:.1} MiB \
             ({:.2}×).",
            large_peak / small_peak
        );
    }
    faults(options, scratch, out);
}

/// The import under throttling and cut connections ends with exactly the file's rows.
fn faults(options: &Options, scratch: &Scratch, out: &mut String) {
    let rows = options.import_sizes()[0];
    let input = scratch.path("import-faults.jsonl");
    write_input(&input, rows);
    let runtime = runtime();
    let emulator = runtime
        .block_on(
            Emulator::builder()
                .service_limits(
                    ServiceLimits::default()
                        .requests(20, Duration::from_secs(1))
                        .execution_time(Duration::from_secs(3600)),
                )
                .faults(FaultConfig::new(25).cut(0.05))
                .start(),
        )
        .expect("emulator");
    let before = accounts(&runtime, &emulator);
    let imported = import(scratch, &emulator, &input);
    let stats = emulator.dataverse_stats();
    let after = accounts(&runtime, &emulator);
    assert_eq!(after - before, rows, "exactly every row, under faults");
    std::fs::remove_file(&input).expect("input removed");
    let _ = writeln!(
        out,
        "\nUnder faults (20 requests per second, then 429 with `Retry-After`; 5% of responses \
         cut mid-body): {rows} rows in {} ({:.0} rows/s); the emulator answered {} 429s and cut \
         {} responses; the table then held exactly {rows} new rows ({} early retries).",
        millis(imported.elapsed),
        rows as f64 / imported.elapsed.as_secs_f64(),
        stats.throttled_responses,
        stats.injected_cuts,
        stats.early_retries,
    );
}
