//! How the process bench measures: whole processes timed in rounds, peak memory polled
//! from `/proc`, medians with their quartiles, and a floor run twice whose spread is the
//! noise.

use std::fmt::Write as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Median and quartiles of a set of samples.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Spread {
    pub(crate) median: Duration,
    pub(crate) p25: Duration,
    pub(crate) p75: Duration,
}

impl Spread {
    pub(crate) fn of(mut samples: Vec<Duration>) -> Self {
        assert!(!samples.is_empty(), "at least one sample");
        samples.sort_unstable();
        let last = samples.len() - 1;
        let at = |quarter: usize| samples[(last * quarter + 2) / 4];
        Self {
            median: at(2),
            p25: at(1),
            p75: at(3),
        }
    }

    /// `3.17 ms (3.06–3.34)`.
    pub(crate) fn show(&self) -> String {
        format!(
            "{} ({}–{})",
            millis(self.median),
            millis_bare(self.p25),
            millis_bare(self.p75)
        )
    }
}

/// `3.17 ms`.
pub(crate) fn millis(time: Duration) -> String {
    format!("{} ms", millis_bare(time))
}

fn millis_bare(time: Duration) -> String {
    let ms = time.as_secs_f64() * 1000.0;
    if ms >= 100.0 {
        format!("{ms:.0}")
    } else {
        format!("{ms:.2}")
    }
}

/// Runs `command` to the end and returns its wall time; it must succeed.
pub(crate) fn timed(mut command: Command) -> Duration {
    command.stdout(Stdio::null()).stderr(Stdio::piped());
    let started = Instant::now();
    let output = command.output().expect("spawned");
    let elapsed = started.elapsed();
    assert!(
        output.status.success(),
        "{command:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    elapsed
}

/// `runs` rounds of every command of `commands`, in order; each command's spread.
pub(crate) fn rounds(runs: usize, commands: &[&dyn Fn() -> Command]) -> Vec<Spread> {
    let mut samples = vec![Vec::with_capacity(runs); commands.len()];
    for _ in 0..runs {
        for (command, samples) in commands.iter().zip(&mut samples) {
            samples.push(timed(command()));
        }
    }
    samples.into_iter().map(Spread::of).collect()
}

/// The process's peak resident set so far, in KiB, while it runs.
fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
}

/// What a process did.
pub(crate) struct Watched {
    pub(crate) elapsed: Duration,
    pub(crate) peak_kib: u64,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
    pub(crate) success: bool,
}

impl Watched {
    pub(crate) fn peak_mib(&self) -> f64 {
        self.peak_kib as f64 / 1024.0
    }

    /// Panics with the process's error output unless it succeeded.
    pub(crate) fn expect_success(self, what: &str) -> Self {
        assert!(
            self.success,
            "{what} failed: {}{}",
            self.stdout, self.stderr
        );
        self
    }
}

/// Runs `command` to the end: its wall time, the highest peak RSS seen while it ran
/// (polled every 5 ms), and what it printed (read on threads, so a chatty child never
/// blocks on a full pipe).
pub(crate) fn run_watching_memory(command: Command) -> Watched {
    run_within(command, Duration::from_secs(3600))
}

/// As [`run_watching_memory`], killing the process after `limit` (it then failed, and its
/// error output says so).
pub(crate) fn run_within(mut command: Command, limit: Duration) -> Watched {
    use std::io::Read as _;
    let started = Instant::now();
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|error| panic!("{command:?} could not start: {error}"));
    let pid = child.id();
    let read_all = |mut pipe: Box<dyn std::io::Read + Send>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = pipe.read_to_string(&mut text);
            text
        })
    };
    let stdout = read_all(Box::new(child.stdout.take().expect("piped")));
    let stderr = read_all(Box::new(child.stderr.take().expect("piped")));
    let mut peak = 0;
    let mut killed = false;
    let status = loop {
        if let Some(status) = child.try_wait().expect("waited") {
            break status;
        }
        peak = peak.max(peak_rss_kib(pid).unwrap_or(0));
        if !killed && started.elapsed() > limit {
            let _ = child.kill();
            killed = true;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let elapsed = started.elapsed();
    let mut stderr = stderr.join().unwrap_or_default();
    if killed {
        let _ = write!(stderr, "\nstopped after {} s", limit.as_secs());
    }
    Watched {
        elapsed,
        peak_kib: peak,
        stdout: stdout.join().unwrap_or_default(),
        stderr,
        success: status.success() && !killed,
    }
}

/// A floor measured twice: the mean of its runs is the floor, their spread the noise.
pub(crate) struct Floor {
    pub(crate) runs: [Duration; 2],
}

impl Floor {
    pub(crate) fn mean(&self) -> Duration {
        (self.runs[0] + self.runs[1]) / 2
    }

    /// `(max - min) / min` of the two runs.
    pub(crate) fn noise(&self) -> f64 {
        let [a, b] = self.runs.map(|run| run.as_secs_f64());
        (a - b).abs() / a.min(b)
    }

    /// Whether `time` beats the floor by more than the noise.
    pub(crate) fn beaten_by(&self, time: Duration) -> bool {
        time.as_secs_f64() < self.mean().as_secs_f64() * (1.0 - self.noise())
    }

    /// One sentence on the noise, and on `paths` that beat the floor beyond it.
    pub(crate) fn verdict(&self, paths: &[(&str, Duration)]) -> String {
        let mut out = format!(
            "Noise: the floor's two runs ({} and {}) differ by {:.1}%.",
            millis(self.runs[0]),
            millis(self.runs[1]),
            self.noise() * 100.0
        );
        let below: Vec<&str> = paths
            .iter()
            .filter(|(_, time)| self.beaten_by(*time))
            .map(|(name, _)| *name)
            .collect();
        if below.is_empty() {
            out.push_str(" Nothing measured is below its floor by more than that.");
        } else {
            let _ = write!(
                out,
                " **Below the floor by more than the noise: {}: the floor does not bound it.**",
                below.join(", ")
            );
        }
        out
    }
}
