//! [`LogCapture`]: what a `tracing` subscriber writes, kept for tests that search logs.

use std::sync::{Arc, Mutex};

/// Collects what a `tracing` subscriber writes, for tests that search logs for secrets.
#[derive(Clone, Default)]
pub struct LogCapture(Arc<Mutex<Vec<u8>>>);

impl LogCapture {
    /// A subscriber that writes every event at TRACE level into this capture.
    pub fn subscriber(&self) -> impl tracing::Subscriber + Send + Sync + use<> {
        keep_every_callsite_live();
        let writer = self.clone();
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_writer(move || writer.clone())
            .finish()
    }

    /// A multi-thread Tokio runtime with `worker_threads` workers whose every thread (and
    /// the thread that calls `block_on`, while the returned guard lives) logs into this
    /// capture — for a test whose work runs on other threads, without a global subscriber
    /// that would also catch the logs of every other test in the binary.
    ///
    /// # Panics
    ///
    /// When the runtime cannot be built.
    pub fn runtime(
        &self,
        worker_threads: usize,
    ) -> (tokio::runtime::Runtime, tracing::dispatcher::DefaultGuard) {
        let dispatch = tracing::Dispatch::new(self.subscriber());
        let for_threads = dispatch.clone();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(worker_threads)
            .enable_all()
            .on_thread_start(move || {
                // The runtime's threads end with the runtime: the default lives as long.
                std::mem::forget(tracing::dispatcher::set_default(&for_threads));
            })
            .build()
            .expect("a Tokio runtime");
        (runtime, tracing::dispatcher::set_default(&dispatch))
    }

    /// Everything written so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl std::io::Write for LogCapture {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Installs, once per process, a global subscriber that takes every event and keeps none.
///
/// `tracing` decides once per callsite, process-wide, whether anyone listens, asking the
/// subscriber of the thread that reaches the callsite first. In a test binary where one
/// test captures logs and another, on another thread, reaches the same line first with no
/// subscriber, the line would be switched off for the capture too (tokio-rs/tracing's
/// callsite interest cache). With this global default every thread has a subscriber that
/// listens, so every callsite stays live; a capture set with `set_default` still takes
/// precedence on its own thread.
fn keep_every_callsite_live() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // Another global subscriber, if a test installed one, listens as well.
        let _ = tracing::subscriber::set_global_default(tracing_subscriber::registry());
        tracing::callsite::rebuild_interest_cache();
    });
}
