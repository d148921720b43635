//! The retry ledger: the server's own check that clients wait as long as they are told.
//!
//! When the Web API answers `429` (or any answer carrying `Retry-After`), the request's
//! `x-ms-client-request-id` is recorded with the earliest instant a retry is allowed. A
//! request arriving with the same id is a retry: it is counted, and counted as early when
//! it arrives before that instant. Requests without the header are not tracked. Memory is
//! bounded: an entry goes when its retry arrives, entries whose retry never came are
//! dropped a minute past their instant, and at most 100,000 are kept.
//!
//! The counters (with the fault counters kept beside them) are what
//! [`crate::Emulator::dataverse_stats`] and `GET /_emulator/dataverse/stats` report.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// The header that names a logical request across its attempts.
pub(crate) const CLIENT_REQUEST_ID: &str = "x-ms-client-request-id";

/// A retry that comes this long after it was allowed is no longer watched for.
const FORGET_AFTER: Duration = Duration::from_secs(60);

/// Most entries kept at once; beyond this, new throttled requests are not tracked.
const MAX_ENTRIES: usize = 100_000;

/// Past this many entries, the ledger forgets stale ones (at most once a second).
const PRUNE_AT: usize = 1024;

/// Longest request id tracked (ids are GUIDs; anything much longer is not one).
const MAX_ID_LEN: usize = 128;

/// Counters of the emulator's Dataverse half since it started: what it throttled, which
/// faults it injected, and whether clients waited as long as `Retry-After` told them to.
///
/// Read with [`crate::Emulator::dataverse_stats`] or `GET /_emulator/dataverse/stats`.
///
/// ```
/// let stats = d365_emulator::DataverseStats::default();
/// assert_eq!(stats.early_retries, 0);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DataverseStats {
    /// `429` answers sent by the service protection limits.
    pub throttled_responses: u64,
    /// `503` answers injected by fault injection (token endpoints included).
    pub injected_unavailable: u64,
    /// Responses cut mid-body by fault injection (token endpoints included).
    pub injected_cuts: u64,
    /// Requests that arrived with the `x-ms-client-request-id` of an earlier request
    /// answered with `Retry-After`: retries the ledger checked.
    pub tracked_retries: u64,
    /// Of those, the ones that arrived before `Retry-After` allowed.
    pub early_retries: u64,
}

/// Earliest allowed retry per client request id, and the counters.
#[derive(Debug, Default)]
pub(crate) struct RetryLedger {
    pending: Mutex<Pending>,
    throttled: AtomicU64,
    tracked: AtomicU64,
    early: AtomicU64,
}

/// Earliest allowed retry per id, and when stale entries were last forgotten.
#[derive(Debug, Default)]
struct Pending {
    earliest: HashMap<String, Instant>,
    pruned: Option<Instant>,
}

fn usable(id: Option<&str>) -> Option<&str> {
    id.map(str::trim)
        .filter(|id| !id.is_empty() && id.len() <= MAX_ID_LEN)
}

impl RetryLedger {
    /// A `429` was sent.
    pub(crate) fn throttled(&self) {
        self.throttled.fetch_add(1, Ordering::Relaxed);
    }

    /// The request `id` was answered with `Retry-After: retry_after` at `now`.
    pub(crate) fn record(&self, id: Option<&str>, retry_after: Duration, now: Instant) {
        let Some(id) = usable(id) else {
            return;
        };
        let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        let due = pending
            .pruned
            .is_none_or(|last| now >= last + Duration::from_secs(1));
        if pending.earliest.len() >= PRUNE_AT && due {
            pending
                .earliest
                .retain(|_, earliest| now < *earliest + FORGET_AFTER);
            pending.pruned = Some(now);
        }
        if pending.earliest.len() < MAX_ENTRIES || pending.earliest.contains_key(id) {
            pending.earliest.insert(id.to_owned(), now + retry_after);
        }
    }

    /// A request with `id` arrived at `now`: if it retries a request told to wait, check it
    /// waited.
    pub(crate) fn arrived(&self, id: Option<&str>, now: Instant) {
        let Some(id) = usable(id) else {
            return;
        };
        let earliest = self
            .pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .earliest
            .remove(id);
        let Some(earliest) = earliest else {
            return;
        };
        self.tracked.fetch_add(1, Ordering::Relaxed);
        if now < earliest {
            self.early.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(
                client_request_id = id,
                early_ms = earliest.duration_since(now).as_millis(),
                "a request was retried before its Retry-After"
            );
        }
    }

    /// The ledger's counters (the fault counters are filled in by the caller).
    pub(crate) fn stats(&self) -> DataverseStats {
        DataverseStats {
            throttled_responses: self.throttled.load(Ordering::Relaxed),
            tracked_retries: self.tracked.load(Ordering::Relaxed),
            early_retries: self.early.load(Ordering::Relaxed),
            ..DataverseStats::default()
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .earliest
            .len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_are_checked_against_their_instant() {
        let ledger = RetryLedger::default();
        let start = Instant::now();
        let second = Duration::from_secs(1);

        // Not told to wait: nothing is tracked.
        ledger.arrived(Some("a"), start);
        assert_eq!(ledger.stats(), DataverseStats::default());

        // Told to wait 1 s; the retry comes after 1.2 s: checked, not early.
        ledger.throttled();
        ledger.record(Some("a"), second, start);
        ledger.arrived(Some("a"), start + Duration::from_millis(1200));
        // Told to wait 1 s; the retry comes after 0.5 s: early.
        ledger.throttled();
        ledger.record(Some("b"), second, start);
        ledger.arrived(Some("b"), start + Duration::from_millis(500));
        // Exactly on time is allowed.
        ledger.record(Some("c"), second, start);
        ledger.arrived(Some("c"), start + second);
        // The entry went with its retry: a third attempt is a new request.
        ledger.arrived(Some("b"), start + Duration::from_millis(600));
        // Ids are compared after trimming; empty ids are not tracked.
        ledger.record(Some(" d "), second, start);
        ledger.arrived(Some("d"), start);
        ledger.record(Some(""), second, start);
        ledger.record(None, second, start);
        ledger.arrived(None, start);

        let stats = ledger.stats();
        assert_eq!(stats.throttled_responses, 2);
        assert_eq!(stats.tracked_retries, 4);
        assert_eq!(stats.early_retries, 2);
        assert_eq!(ledger.len(), 0);
    }

    #[test]
    fn memory_stays_bounded() {
        let ledger = RetryLedger::default();
        let start = Instant::now();
        // Entries whose retry never came are forgotten once the ledger fills up.
        for n in 0..MAX_ENTRIES {
            ledger.record(Some(&format!("old-{n}")), Duration::ZERO, start);
        }
        assert_eq!(ledger.len(), MAX_ENTRIES);
        let later = start + FORGET_AFTER + Duration::from_secs(1);
        ledger.record(Some("new"), Duration::ZERO, later);
        assert_eq!(ledger.len(), 1);
        // Fresh entries are never dropped, so past the cap new ones are not tracked.
        for n in 0..MAX_ENTRIES + 10 {
            ledger.record(Some(&format!("fresh-{n}")), Duration::ZERO, later);
        }
        assert_eq!(ledger.len(), MAX_ENTRIES);
        // Overlong ids are not tracked.
        let long = "x".repeat(MAX_ID_LEN + 1);
        ledger.arrived(Some(&long), later);
        assert_eq!(ledger.stats().tracked_retries, 0);
    }
}
