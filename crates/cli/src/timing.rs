//! Where a command's time goes: `RUST_LOG=d365::timing=debug` logs each phase of a run
//! (the command line parsed, the runtime started, the connection ready, the command done)
//! with the time since `main` began, which is how `docs/performance.md`'s start-up
//! breakdown is measured. Off (one relaxed atomic load per phase) otherwise.

use std::sync::OnceLock;
use std::time::Instant;

static STARTED: OnceLock<Instant> = OnceLock::new();

/// Marks the start of `main`.
pub(crate) fn start() {
    STARTED.get_or_init(Instant::now);
}

/// Logs that `phase` ended, with the microseconds since [`start`].
pub(crate) fn phase(phase: &'static str) {
    if tracing::enabled!(target: "d365::timing", tracing::Level::DEBUG) {
        let since_start = STARTED
            .get()
            .map_or(0, |started| started.elapsed().as_micros());
        tracing::debug!(target: "d365::timing", since_start_us = since_start, "{phase}");
    }
}
