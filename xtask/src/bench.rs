//! `cargo xtask bench [--quick] [args…]`: runs the workspace's criterion benchmarks, then
//! reads criterion's estimates and writes `target/bench/report.md`: per group, each
//! benchmark's median and its ratio against the group's baseline (the benchmark whose id
//! contains `baseline` or `floor`), measured in the same run, and the machine it ran on.
//! Benchmarks that measure what criterion cannot (whole processes, peak memory: the CLI's
//! `process` bench) write a markdown section to `target/bench/sections/`; the sections
//! written during the run are appended to the report.
//!
//! Extra arguments go to `cargo bench` (a `-p`/`--bench` selection replaces the default
//! `--workspace --bench '*'`; what follows `--` goes to criterion). `--quick` adds
//! `-- --warm-up-time 1 --measurement-time 3`. `--peers` first installs the pinned peer
//! libraries (`install::PEERS`: MSAL for Python and Node, azure-identity, DynamicsWebApi,
//! Microsoft's Python Dataverse SDK) under `target/bench-peers` and tells the process bench
//! where (`D365_BENCH_PEERS`), which then runs them beside `d365`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::path::Path;
use std::time::SystemTime;

use anyhow::{Context, Result};

use crate::cmd::{Cmd, target_dir};
use crate::install;
use crate::steps::Steps;

/// Where the process bench finds the installed peers (set with `--peers`).
const PEERS_VAR: &str = "D365_BENCH_PEERS";

/// What `cargo xtask bench` was asked to do.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct BenchArgs {
    /// Shorter warm-up and measurement, for a first look.
    pub(crate) quick: bool,
    /// Install the peer libraries and measure them beside d365.
    pub(crate) peers: bool,
    /// Passed through to `cargo bench`.
    pub(crate) args: Vec<String>,
}

impl BenchArgs {
    /// Splits `--quick` and `--peers` (before any `--`) from the arguments passed through.
    pub(crate) fn parse(args: &[String]) -> Self {
        let mut parsed = Self::default();
        let mut after_separator = false;
        for arg in args {
            if arg == "--" {
                after_separator = true;
            }
            if !after_separator && arg == "--quick" {
                parsed.quick = true;
            } else if !after_separator && arg == "--peers" {
                parsed.peers = true;
            } else {
                parsed.args.push(arg.clone());
            }
        }
        parsed
    }

    /// The full `cargo bench …` argument list.
    fn cargo_args(&self) -> Vec<String> {
        let separator = self.args.iter().position(|arg| arg == "--");
        let (cargo_side, criterion_side) = self.args.split_at(separator.unwrap_or(self.args.len()));
        let selects = |names: &[&str]| {
            cargo_side.iter().any(|arg| {
                names
                    .iter()
                    .any(|name| arg == name || arg.starts_with(&format!("{name}=")))
            })
        };
        let mut all: Vec<String> = vec!["bench".into(), "--locked".into()];
        if !selects(&["-p", "--package"]) {
            all.push("--workspace".into());
        }
        // Only the criterion targets: the libraries' libtest harness refuses criterion's options.
        if !selects(&["--bench"]) {
            all.extend(["--bench".into(), "*".into()]);
        }
        all.extend(cargo_side.iter().cloned());
        all.push("--".into());
        all.extend(criterion_side.iter().skip(1).cloned());
        if self.quick {
            all.extend(["--warm-up-time", "1", "--measurement-time", "3"].map(String::from));
        }
        all
    }
}

/// Runs the benchmarks, then writes and prints the report.
pub(crate) fn run(args: &BenchArgs) -> Result<()> {
    let mut steps = Steps::new("bench");
    let started = SystemTime::now();
    let mut bench = Cmd::cargo(args.cargo_args()).env_remove(PEERS_VAR);
    if args.peers {
        let dir = install::peers_dir();
        steps.run("install peers", || {
            install::install_into(&dir, install::PEERS)
        })?;
        bench = bench.env(PEERS_VAR, &dir);
    }
    steps.run("cargo bench", || bench.run())?;
    let target = target_dir();
    let report_path = target.join("bench").join("report.md");
    steps.run("report", || {
        let results = collect(&target.join("criterion"), Some(started))?;
        let mut report = render(&results, &Machine::this_one());
        for section in sections(&target.join("bench").join("sections"), Some(started))? {
            report.push_str(&section);
        }
        fs::create_dir_all(report_path.parent().expect("a parent"))
            .with_context(|| format!("creating {}", report_path.display()))?;
        fs::write(&report_path, &report)
            .with_context(|| format!("writing {}", report_path.display()))?;
        print!("{report}");
        Ok(())
    })?;
    println!("{}", steps.summary());
    println!("report: {}", report_path.display());
    Ok(())
}

/// One benchmark's result.
#[derive(Debug, Clone, PartialEq)]
struct Estimate {
    group: String,
    id: String,
    /// Median time per iteration, in nanoseconds.
    median_ns: f64,
    /// The width of criterion's confidence interval of the median, over the median.
    ci_width: Option<f64>,
}

impl Estimate {
    fn is_baseline(&self) -> bool {
        self.id.contains("baseline") || self.id.contains("floor")
    }
}

/// Reads every `**/new/estimates.json` under `criterion_dir` written at or after `since`
/// (results of earlier runs are left out, so ratios compare one run's numbers).
fn collect(criterion_dir: &Path, since: Option<SystemTime>) -> Result<Vec<Estimate>> {
    let mut found = Vec::new();
    let mut pending = vec![criterion_dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let entries = fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))?;
        for entry in entries {
            let path = entry
                .with_context(|| format!("reading {}", dir.display()))?
                .path();
            if !path.is_dir() {
                continue;
            }
            let estimates = path.join("estimates.json");
            if path.file_name().is_some_and(|name| name == "new") && estimates.is_file() {
                let modified = fs::metadata(&estimates)
                    .and_then(|meta| meta.modified())
                    .with_context(|| format!("reading {}", estimates.display()))?;
                if since.is_none_or(|since| modified >= since) {
                    found.push(read_estimate(criterion_dir, &path)?);
                }
            } else {
                pending.push(path);
            }
        }
    }
    found.sort_by(|a, b| (&a.group, &a.id).cmp(&(&b.group, &b.id)));
    Ok(found)
}

/// Reads one `new/` directory: the median from `estimates.json`, the names from
/// `benchmark.json` (or, without it, from the directory path).
/// The markdown sections (`*.md`, by file name) written under `dir` at or after `since`.
fn sections(dir: &Path, since: Option<SystemTime>) -> Result<Vec<String>> {
    if !dir.is_dir() {
        return Ok(Vec::new());
    }
    let mut found = Vec::new();
    for entry in fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry
            .with_context(|| format!("reading {}", dir.display()))?
            .path();
        if path.extension().is_none_or(|extension| extension != "md") {
            continue;
        }
        let modified = fs::metadata(&path)
            .and_then(|metadata| metadata.modified())
            .with_context(|| format!("reading {}", path.display()))?;
        if since.is_none_or(|since| modified >= since) {
            found.push(path);
        }
    }
    found.sort();
    found
        .iter()
        .map(|path| fs::read_to_string(path).with_context(|| format!("reading {}", path.display())))
        .collect()
}

fn read_estimate(criterion_dir: &Path, new_dir: &Path) -> Result<Estimate> {
    let path = new_dir.join("estimates.json");
    let estimates = read_json(&path)?;
    let median_ns = estimates["median"]["point_estimate"]
        .as_f64()
        .with_context(|| format!("{} has no median.point_estimate", path.display()))?;
    let interval = &estimates["median"]["confidence_interval"];
    let ci_width = interval["lower_bound"]
        .as_f64()
        .zip(interval["upper_bound"].as_f64())
        .filter(|_| median_ns > 0.0)
        .map(|(lower, upper)| (upper - lower) / median_ns);
    let benchmark = read_json(&new_dir.join("benchmark.json")).ok();
    let named = benchmark.as_ref().and_then(|benchmark| {
        let group = benchmark["group_id"].as_str()?;
        let mut id = benchmark["function_id"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        if let Some(value) = benchmark["value_str"].as_str() {
            if !id.is_empty() {
                id.push('/');
            }
            id.push_str(value);
        }
        Some((group.to_owned(), id))
    });
    let (group, id) = named.unwrap_or_else(|| {
        let relative = new_dir
            .parent()
            .and_then(|bench| bench.strip_prefix(criterion_dir).ok())
            .unwrap_or(new_dir);
        let mut parts = relative
            .iter()
            .map(|part| part.to_string_lossy().into_owned());
        let group = parts.next().unwrap_or_default();
        (group, parts.collect::<Vec<_>>().join("/"))
    });
    Ok(Estimate {
        group,
        id,
        median_ns,
        ci_width,
    })
}

fn read_json(path: &Path) -> Result<serde_json::Value> {
    let text = fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

/// Where the numbers were measured.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Machine {
    cpu: String,
    cores: usize,
    /// `YYYY-MM-DD`, UTC.
    date: String,
}

impl Machine {
    /// This machine, today.
    fn this_one() -> Self {
        let cpu = fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|info| {
                info.lines()
                    .find(|line| line.starts_with("model name"))
                    .and_then(|line| line.split_once(':'))
                    .map(|(_, name)| name.trim().to_owned())
            })
            .unwrap_or_else(|| "unknown CPU".to_owned());
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
        let days = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |since| since.as_secs() / 86_400);
        Self {
            cpu,
            cores,
            date: civil_date(days),
        }
    }
}

/// `YYYY-MM-DD` for a count of days since 1970-01-01 (Howard Hinnant's `civil_from_days`).
fn civil_date(days: u64) -> String {
    let z = days + 719_468;
    let era = z / 146_097;
    let day_of_era = z % 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

/// The Markdown report: a table per group, its floor's runs first. A group's floor is
/// the mean of its baseline runs (ids containing `baseline` or `floor`); with two runs or
/// more, their spread is the run's noise, and a path that beats the floor by more than
/// that is flagged: a floor must bound what it is the floor of.
fn render(results: &[Estimate], machine: &Machine) -> String {
    let mut groups: BTreeMap<&str, Vec<&Estimate>> = BTreeMap::new();
    for result in results {
        groups.entry(&result.group).or_default().push(result);
    }
    let mut out = String::from("# Benchmark report\n\n");
    let _ = writeln!(
        out,
        "Machine: {}, {} cores. Date: {}.\n",
        machine.cpu, machine.cores, machine.date
    );
    out.push_str(
        "Medians of criterion's samples (time per iteration). A ratio is the median over the \
         group's floor: the mean of its baseline runs (ids containing `baseline` or `floor`), \
         measured in the same run. Each floor runs twice, before and after what it bounds. \
         The noise is the larger of the spread of the floor's runs and the widest 95% \
         confidence interval criterion gives for a median in the group; a path below its \
         floor by more than the noise is flagged.\n",
    );
    if groups.is_empty() {
        out.push_str("\nNo benchmark results were written in this run.\n");
    }
    for (group, mut members) in groups {
        members.sort_by_key(|member| !member.is_baseline());
        let floor_runs: Vec<f64> = members
            .iter()
            .filter(|member| member.is_baseline())
            .map(|member| member.median_ns)
            .collect();
        let widest_interval = members
            .iter()
            .filter_map(|member| member.ci_width)
            .fold(None, |widest: Option<f64>, width| {
                Some(widest.map_or(width, |widest| widest.max(width)))
            });
        let floor = Floor::of(&floor_runs, widest_interval);
        let _ = writeln!(out, "\n## {group}\n");
        out.push_str("| benchmark | median | ratio |\n|---|---:|---:|\n");
        let mut below = Vec::new();
        for member in members {
            let ratio = match &floor {
                Some(floor) if member.is_baseline() => {
                    format!("{:.2} (floor run)", member.median_ns / floor.mean_ns)
                }
                Some(floor) => {
                    let ratio = member.median_ns / floor.mean_ns;
                    if floor.beaten_by(member.median_ns) {
                        below.push(format!("`{}` ({ratio:.2}×)", member.id));
                        format!("**{ratio:.2}× (below the floor)**")
                    } else {
                        format!("{ratio:.2}×")
                    }
                }
                None => "—".to_owned(),
            };
            let _ = writeln!(
                out,
                "| {} | {} | {ratio} |",
                member.id,
                human_time(member.median_ns)
            );
        }
        if let Some(floor) = &floor {
            out.push('\n');
            out.push_str(&floor.describe(&below));
        }
    }
    out
}

/// A group's floor: the mean of its baseline runs, and the run's noise.
#[derive(Debug, Clone, PartialEq)]
struct Floor {
    mean_ns: f64,
    /// `(max - min) / min` of the runs, when there are two or more.
    spread: Option<f64>,
    /// The widest confidence interval of a median in the group, over that median.
    widest_interval: Option<f64>,
    runs: usize,
}

impl Floor {
    fn of(runs: &[f64], widest_interval: Option<f64>) -> Option<Self> {
        let positive: Vec<f64> = runs.iter().copied().filter(|run| *run > 0.0).collect();
        if positive.is_empty() {
            return None;
        }
        let mean_ns = positive.iter().sum::<f64>() / positive.len() as f64;
        let min = positive.iter().copied().fold(f64::INFINITY, f64::min);
        let max = positive.iter().copied().fold(0.0, f64::max);
        Some(Self {
            mean_ns,
            spread: (positive.len() > 1).then(|| (max - min) / min),
            widest_interval,
            runs: positive.len(),
        })
    }

    /// The noise: the larger of the floor runs' spread and the widest confidence interval
    /// (5% when neither is known).
    fn noise(&self) -> f64 {
        match (self.spread, self.widest_interval) {
            (None, None) => 0.05,
            (spread, interval) => spread.unwrap_or(0.0).max(interval.unwrap_or(0.0)),
        }
    }

    /// Whether a median of `ns` is below the floor by more than the noise.
    fn beaten_by(&self, ns: f64) -> bool {
        ns < self.mean_ns * (1.0 - self.noise())
    }

    fn describe(&self, below: &[String]) -> String {
        let percent = |fraction: f64| format!("{:.1}%", fraction * 100.0);
        let spread = match self.spread {
            Some(spread) => format!(
                "the floor's {} runs differ by {}",
                self.runs,
                percent(spread)
            ),
            None => "the floor ran once".to_owned(),
        };
        let interval = match self.widest_interval {
            Some(width) => format!(
                "the widest 95% confidence interval of a median here spans {}",
                percent(width)
            ),
            None => "criterion gave no confidence interval".to_owned(),
        };
        let noise = format!("Noise {}: {spread}, and {interval}.", percent(self.noise()));
        if below.is_empty() {
            format!("{noise} No path is below its floor by more than the noise.\n")
        } else {
            format!(
                "{noise} **Below the floor by more than the noise: {}: the floor does not \
                 bound it.**\n",
                below.join(", ")
            )
        }
    }
}

/// `12.3 ns`, `4.56 µs`, `20.1 ms`, `1.23 s`: three significant figures.
fn human_time(ns: f64) -> String {
    let (value, unit) = if ns < 1e3 {
        (ns, "ns")
    } else if ns < 1e6 {
        (ns / 1e3, "µs")
    } else if ns < 1e9 {
        (ns / 1e6, "ms")
    } else {
        (ns / 1e9, "s")
    };
    let decimals = if value >= 100.0 {
        0
    } else if value >= 10.0 {
        1
    } else {
        2
    };
    format!("{value:.decimals$} {unit}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_result(root: &Path, dir: &str, benchmark: Option<&str>, median: f64) {
        write_estimates(
            root,
            dir,
            benchmark,
            &format!(
                r#"{{"mean":{{"point_estimate":1.0}},"median":{{"point_estimate":{median}}}}}"#
            ),
        );
    }

    /// A result whose median has a confidence interval `lower..upper`.
    fn write_interval(root: &Path, dir: &str, median: f64, lower: f64, upper: f64) {
        write_estimates(
            root,
            dir,
            None,
            &format!(
                r#"{{"median":{{"point_estimate":{median},"confidence_interval":{{"confidence_level":0.95,"lower_bound":{lower},"upper_bound":{upper}}}}}}}"#
            ),
        );
    }

    fn write_estimates(root: &Path, dir: &str, benchmark: Option<&str>, estimates: &str) {
        let new_dir = root.join(dir).join("new");
        fs::create_dir_all(&new_dir).unwrap();
        fs::write(new_dir.join("estimates.json"), estimates).unwrap();
        if let Some(benchmark) = benchmark {
            fs::write(new_dir.join("benchmark.json"), benchmark).unwrap();
        }
        // criterion's other copies and the HTML report are not results.
        fs::create_dir_all(root.join(dir).join("base")).unwrap();
        fs::write(root.join(dir).join("base").join("estimates.json"), "{}").unwrap();
    }

    #[test]
    fn renders_medians_and_ratios_per_group_from_estimates_files() {
        let root = std::env::temp_dir().join(format!("xtask-bench-test-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        write_result(
            &root,
            "cache/hit",
            Some(r#"{"group_id":"cache","function_id":"hit","value_str":null}"#),
            45.26,
        );
        write_result(
            &root,
            "cache/floor_clone",
            Some(r#"{"group_id":"cache","function_id":"floor_clone","value_str":null}"#),
            9.05,
        );
        write_result(
            &root,
            "cache/floor_clone_again",
            Some(r#"{"group_id":"cache","function_id":"floor_clone_again","value_str":null}"#),
            9.05 * 1.02,
        );
        // A path 20% under a floor that ran once: the floor does not bound it.
        write_interval(&root, "loop/raw_baseline", 400.0, 396.0, 404.0);
        write_interval(&root, "loop/client", 320.0, 318.0, 322.0);
        // 1% under a floor whose runs agree to 0.3%, within its medians' 2% intervals.
        write_interval(&root, "near/raw_baseline", 300.0, 297.0, 303.0);
        write_interval(&root, "near/raw_baseline_again", 301.0, 298.0, 304.0);
        write_interval(&root, "near/client", 298.0, 296.0, 300.0);
        write_result(&root, "storm/callers_10000", None, 23_456_789.0);
        write_result(
            &root,
            "sized/by_size/1000",
            Some(r#"{"group_id":"sized","function_id":"by_size","value_str":"1000"}"#),
            1_234.5,
        );
        fs::create_dir_all(root.join("report")).unwrap();
        fs::write(root.join("report").join("index.html"), "<html>").unwrap();

        let results = collect(&root, None).unwrap();
        let machine = Machine {
            cpu: "Test CPU @ 3.00GHz".into(),
            cores: 2,
            date: "2026-11-23".into(),
        };
        let report = render(&results, &machine);
        fs::remove_dir_all(&root).unwrap();

        let expected = "\
# Benchmark report

Machine: Test CPU @ 3.00GHz, 2 cores. Date: 2026-11-23.

Medians of criterion's samples (time per iteration). A ratio is the median over the group's floor: the mean of its baseline runs (ids containing `baseline` or `floor`), measured in the same run. Each floor runs twice, before and after what it bounds. The noise is the larger of the spread of the floor's runs and the widest 95% confidence interval criterion gives for a median in the group; a path below its floor by more than the noise is flagged.

## cache

| benchmark | median | ratio |
|---|---:|---:|
| floor_clone | 9.05 ns | 0.99 (floor run) |
| floor_clone_again | 9.23 ns | 1.01 (floor run) |
| hit | 45.3 ns | 4.95× |

Noise 2.0%: the floor's 2 runs differ by 2.0%, and criterion gave no confidence interval. No path is below its floor by more than the noise.

## loop

| benchmark | median | ratio |
|---|---:|---:|
| raw_baseline | 400 ns | 1.00 (floor run) |
| client | 320 ns | **0.80× (below the floor)** |

Noise 2.0%: the floor ran once, and the widest 95% confidence interval of a median here spans 2.0%. **Below the floor by more than the noise: `client` (0.80×): the floor does not bound it.**

## near

| benchmark | median | ratio |
|---|---:|---:|
| raw_baseline | 300 ns | 1.00 (floor run) |
| raw_baseline_again | 301 ns | 1.00 (floor run) |
| client | 298 ns | 0.99× |

Noise 2.0%: the floor's 2 runs differ by 0.3%, and the widest 95% confidence interval of a median here spans 2.0%. No path is below its floor by more than the noise.

## sized

| benchmark | median | ratio |
|---|---:|---:|
| by_size/1000 | 1.23 µs | — |

## storm

| benchmark | median | ratio |
|---|---:|---:|
| callers_10000 | 23.5 ms | — |
";
        assert_eq!(report, expected);
    }

    #[test]
    fn results_older_than_the_run_are_left_out() {
        let root =
            std::env::temp_dir().join(format!("xtask-bench-old-test-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        write_result(&root, "old/bench", None, 1.0);
        let later = SystemTime::now() + std::time::Duration::from_secs(3600);
        let results = collect(&root, Some(later)).unwrap();
        fs::remove_dir_all(&root).unwrap();
        assert!(results.is_empty());
        assert!(render(&results, &Machine::this_one()).contains("No benchmark results"));
    }

    #[test]
    fn sections_of_this_run_are_read_in_name_order() {
        let root =
            std::env::temp_dir().join(format!("xtask-bench-sections-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        assert!(
            sections(&root, None).unwrap().is_empty(),
            "no directory, no sections"
        );
        fs::create_dir_all(&root).unwrap();
        fs::write(root.join("b.md"), "\n## b\n").unwrap();
        fs::write(root.join("a.md"), "\n## a\n").unwrap();
        fs::write(root.join("notes.txt"), "not a section").unwrap();
        assert_eq!(sections(&root, None).unwrap(), ["\n## a\n", "\n## b\n"]);
        let later = SystemTime::now() + std::time::Duration::from_secs(3600);
        assert!(
            sections(&root, Some(later)).unwrap().is_empty(),
            "older runs are left out"
        );
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn quick_adds_criterion_options_and_a_selection_replaces_the_workspace() {
        let args = |line: &str| {
            BenchArgs::parse(
                &line
                    .split_whitespace()
                    .map(str::to_owned)
                    .collect::<Vec<_>>(),
            )
            .cargo_args()
            .join(" ")
        };
        assert_eq!(args(""), "bench --locked --workspace --bench * --");
        assert_eq!(
            args("--quick"),
            "bench --locked --workspace --bench * -- --warm-up-time 1 --measurement-time 3"
        );
        assert_eq!(
            args("--quick -p d365-auth-core -- token"),
            "bench --locked --bench * -p d365-auth-core -- token --warm-up-time 1 --measurement-time 3"
        );
        assert_eq!(
            args("--bench token_cache -- --quick"),
            "bench --locked --workspace --bench token_cache -- --quick"
        );
    }

    #[test]
    fn units_and_dates_read_naturally() {
        assert_eq!(human_time(45.26), "45.3 ns");
        assert_eq!(human_time(123_456.0), "123 µs");
        assert_eq!(human_time(2.5e9), "2.50 s");
        assert_eq!(civil_date(0), "1970-01-01");
        assert_eq!(civil_date(20_415), "2025-11-23");
        assert_eq!(civil_date(11_016), "2000-02-29");
    }
}
