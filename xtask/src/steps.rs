//! Named steps of a command: each announced on one line, timed, and named in the error when
//! it fails; a summary line at the end.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};

/// The steps of one xtask command, as they run.
pub(crate) struct Steps {
    command: &'static str,
    started: Instant,
    passed: Vec<&'static str>,
    skipped: Vec<(&'static str, &'static str)>,
}

impl Steps {
    /// Starts the clock for `command` (`test`, `lint`).
    pub(crate) fn new(command: &'static str) -> Self {
        Self {
            command,
            started: Instant::now(),
            passed: Vec::new(),
            skipped: Vec::new(),
        }
    }

    /// Announces and runs one step; its failure becomes an error naming the step.
    pub(crate) fn run(
        &mut self,
        name: &'static str,
        step: impl FnOnce() -> Result<()>,
    ) -> Result<()> {
        println!("==> xtask {}: {name}", self.command);
        let started = Instant::now();
        if let Err(error) = step() {
            println!(
                "==> xtask {}: FAILED at step `{name}` after {}",
                self.command,
                format_duration(started.elapsed())
            );
            return Err(error)
                .with_context(|| format!("xtask {}: step `{name}` failed", self.command));
        }
        println!(
            "==> xtask {}: {name} ok ({})",
            self.command,
            format_duration(started.elapsed())
        );
        self.passed.push(name);
        Ok(())
    }

    /// Records a step that was not run, and why.
    pub(crate) fn skip(&mut self, name: &'static str, because: &'static str) {
        println!("==> xtask {}: {name} skipped ({because})", self.command);
        self.skipped.push((name, because));
    }

    /// The summary line: which steps passed, which were skipped, total time.
    pub(crate) fn summary(&self) -> String {
        let mut line = format!(
            "xtask {}: {} steps ok ({})",
            self.command,
            self.passed.len(),
            self.passed.join(", ")
        );
        if !self.skipped.is_empty() {
            let skipped: Vec<String> = self
                .skipped
                .iter()
                .map(|(name, because)| format!("{name} [{because}]"))
                .collect();
            line.push_str(&format!(", skipped: {}", skipped.join(", ")));
        }
        line.push_str(&format!(" in {}", format_duration(self.started.elapsed())));
        line
    }
}

/// `1m05s` or `4.2s`.
fn format_duration(duration: Duration) -> String {
    let seconds = duration.as_secs();
    if seconds >= 60 {
        format!("{}m{:02}s", seconds / 60, seconds % 60)
    } else {
        format!("{:.1}s", duration.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failing_step_is_named_in_the_error_and_stops_counting() {
        let mut steps = Steps::new("test");
        steps.run("fmt", || Ok(())).unwrap();
        steps.skip("install", "--no-install");
        let error = steps
            .run("clippy", || {
                Err(anyhow::anyhow!("`cargo clippy` failed: exit status: 101"))
            })
            .unwrap_err();
        assert_eq!(error.to_string(), "xtask test: step `clippy` failed");
        assert_eq!(
            error.root_cause().to_string(),
            "`cargo clippy` failed: exit status: 101"
        );
        let summary = steps.summary();
        assert!(
            summary
                .starts_with("xtask test: 1 steps ok (fmt), skipped: install [--no-install] in "),
            "{summary}"
        );
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(format_duration(Duration::from_millis(4_210)), "4.2s");
        assert_eq!(format_duration(Duration::from_secs(65)), "1m05s");
    }
}
