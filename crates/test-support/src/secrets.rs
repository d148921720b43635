//! [`SecretWatch`]: the harness behind every crate's no-secrets test. It captures every
//! log line at TRACE level while a test runs, collects whatever else the test could show
//! (`Debug`, `Display` of errors and values), and fails naming the secret and where it
//! leaked.

use std::fmt;

use tracing::subscriber::DefaultGuard;

use crate::logs::LogCapture;

/// Watches for secrets: logs at TRACE level on this thread while it lives, plus everything
/// the test [`see`](Self::see)s.
///
/// # Examples
///
/// ```
/// use d365_test_support::SecretWatch;
///
/// let mut watch = SecretWatch::start(&["TOP-SECRET"]);
/// tracing::debug!(user = "ana", "signing in");
/// watch.see_debug(&"a value that is fine");
/// watch.assert_clean();
/// ```
pub struct SecretWatch {
    secrets: Vec<String>,
    logs: LogCapture,
    observed: String,
    _guard: DefaultGuard,
}

impl SecretWatch {
    /// Starts capturing this thread's logs at TRACE level; `secrets` must appear nowhere.
    #[must_use]
    pub fn start(secrets: &[&str]) -> Self {
        let logs = LogCapture::default();
        let guard = tracing::subscriber::set_default(logs.subscriber());
        Self {
            secrets: secrets.iter().map(|secret| (*secret).to_owned()).collect(),
            logs,
            observed: String::new(),
            _guard: guard,
        }
    }

    /// Records what `value` shows (`Display`).
    pub fn see(&mut self, value: impl fmt::Display) {
        self.observed.push_str(&value.to_string());
        self.observed.push('\n');
    }

    /// Records what `value`'s `Debug` shows.
    pub fn see_debug(&mut self, value: &impl fmt::Debug) {
        self.observed.push_str(&format!("{value:?}\n"));
    }

    /// Records an outcome: the value's `Debug`, or the error's `Display` and `Debug`.
    pub fn see_outcome<T: fmt::Debug, E: fmt::Display + fmt::Debug>(
        &mut self,
        outcome: &Result<T, E>,
    ) {
        match outcome {
            Ok(value) => self.see_debug(value),
            Err(error) => {
                self.see(error);
                self.see_debug(error);
            }
        }
    }

    /// Adds a secret found while the test ran (a signed assertion, a generated key).
    pub fn add_secret(&mut self, secret: impl Into<String>) {
        self.secrets.push(secret.into());
    }

    /// The logs captured so far.
    #[must_use]
    pub fn logs(&self) -> String {
        self.logs.text()
    }

    /// Everything seen and logged so far, to check what should be there.
    #[must_use]
    pub fn everything(&self) -> String {
        format!("{}\n{}", self.observed, self.logs.text())
    }

    /// Fails if any secret appears in the logs or in what was seen, naming the secret and
    /// quoting where.
    ///
    /// # Panics
    ///
    /// When a secret leaked.
    pub fn assert_clean(&self) {
        let everything = self.everything();
        for secret in &self.secrets {
            if let Some(position) = everything.find(secret.as_str()) {
                let start = everything[..position]
                    .char_indices()
                    .rev()
                    .nth(200)
                    .map_or(0, |(index, _)| index);
                let end = (position + secret.len() + 200).min(everything.len());
                let end = (end..=everything.len())
                    .find(|index| everything.is_char_boundary(*index))
                    .unwrap_or(everything.len());
                panic!(
                    "the secret {secret:?} leaked:\n…{}…",
                    &everything[start..end]
                );
            }
        }
    }

    /// As [`assert_clean`](Self::assert_clean), and fails too when nothing was logged: a
    /// test that captured no log proves nothing about logs.
    ///
    /// # Panics
    ///
    /// When a secret leaked, or no log line was captured.
    pub fn assert_clean_with_logs(&self) {
        assert!(
            !self.logs.text().trim().is_empty(),
            "no log line was captured: the code under test logged nothing at TRACE level"
        );
        self.assert_clean();
    }
}

impl fmt::Debug for SecretWatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretWatch")
            .field("secrets", &self.secrets.len())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[should_panic(expected = "leaked")]
    fn a_secret_in_a_log_line_fails() {
        let watch = SecretWatch::start(&["TOP-SECRET"]);
        tracing::trace!(value = "TOP-SECRET", "oops");
        watch.assert_clean();
    }

    #[test]
    #[should_panic(expected = "leaked")]
    fn a_secret_in_debug_fails() {
        let mut watch = SecretWatch::start(&["TOP-SECRET"]);
        watch.see_debug(&("user", "TOP-SECRET"));
        watch.assert_clean();
    }

    #[test]
    fn clean_output_passes() {
        let mut watch = SecretWatch::start(&["TOP-SECRET"]);
        tracing::info!("nothing to hide");
        watch.see_outcome(&Err::<(), _>("a refusal"));
        watch.assert_clean_with_logs();
    }
}
