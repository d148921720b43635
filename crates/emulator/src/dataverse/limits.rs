//! Service protection limits, per caller: requests per sliding window, combined execution
//! time per window and concurrent requests. A request over a limit gets 429 with
//! `Retry-After` (seconds) and Dataverse's hex code and message.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

/// Service protection limits for one caller (Dataverse's defaults: 6000 requests and
/// 1,200,000 ms of execution time per 300 s, 52 concurrent requests).
///
/// ```
/// use std::time::Duration;
/// let tight = d365_emulator::ServiceLimits::default()
///     .requests(10, Duration::from_secs(60))
///     .concurrent(2);
/// assert_eq!(tight.max_requests, 10);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServiceLimits {
    /// Requests allowed per window.
    pub max_requests: u32,
    /// The sliding window of the request and execution-time limits.
    pub window: Duration,
    /// Requests allowed in flight at once.
    pub max_concurrent: u32,
    /// Combined execution time allowed per window.
    pub max_execution_time: Duration,
}

impl Default for ServiceLimits {
    fn default() -> Self {
        Self {
            max_requests: 6000,
            window: Duration::from_secs(300),
            max_concurrent: 52,
            max_execution_time: Duration::from_millis(1_200_000),
        }
    }
}

impl ServiceLimits {
    /// At most `count` requests per `window`.
    #[must_use]
    pub fn requests(mut self, count: u32, window: Duration) -> Self {
        self.max_requests = count;
        self.window = window.max(Duration::from_millis(1));
        self
    }

    /// At most `count` requests in flight.
    #[must_use]
    pub fn concurrent(mut self, count: u32) -> Self {
        self.max_concurrent = count;
        self
    }

    /// At most `time` of combined execution per window.
    #[must_use]
    pub fn execution_time(mut self, time: Duration) -> Self {
        self.max_execution_time = time;
        self
    }
}

/// Which limit tripped, with what Dataverse says about it.
#[derive(Debug, Clone)]
pub(crate) struct Throttled {
    pub(crate) code: &'static str,
    pub(crate) message: String,
    pub(crate) retry_after_secs: u64,
}

#[derive(Debug, Default)]
struct CallerState {
    requests: VecDeque<Instant>,
    executions: VecDeque<(Instant, Duration)>,
    active: u32,
}

impl CallerState {
    fn prune(&mut self, now: Instant, window: Duration) {
        while self
            .requests
            .front()
            .is_some_and(|t| now.duration_since(*t) >= window)
        {
            self.requests.pop_front();
        }
        while self
            .executions
            .front()
            .is_some_and(|(t, _)| now.duration_since(*t) >= window)
        {
            self.executions.pop_front();
        }
    }
}

/// The limits in force and each caller's recent history.
#[derive(Debug)]
pub(crate) struct Limiter {
    default: RwLock<ServiceLimits>,
    overrides: RwLock<HashMap<String, ServiceLimits>>,
    callers: Mutex<HashMap<String, CallerState>>,
}

fn seconds_until(since: Instant, window: Duration, now: Instant) -> u64 {
    let left = window.saturating_sub(now.duration_since(since));
    left.as_secs() + u64::from(left.subsec_nanos() > 0)
}

fn thousands(value: u128) -> String {
    let digits = value.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A request in flight; dropping it records its execution time.
#[derive(Debug)]
pub(crate) struct Permit {
    limiter: Arc<Limiter>,
    key: String,
    started: Instant,
    /// Requests and milliseconds left in the window, for the `x-ms-ratelimit-*` headers.
    pub(crate) remaining_requests: u32,
    pub(crate) remaining_time_ms: u128,
}

impl Drop for Permit {
    fn drop(&mut self) {
        let now = Instant::now();
        let mut callers = self
            .limiter
            .callers
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(state) = callers.get_mut(&self.key) {
            state.active = state.active.saturating_sub(1);
            state
                .executions
                .push_back((now, now.duration_since(self.started)));
        }
    }
}

impl Limiter {
    pub(crate) fn new(default: ServiceLimits, overrides: HashMap<String, ServiceLimits>) -> Self {
        Self {
            default: RwLock::new(default),
            overrides: RwLock::new(
                overrides
                    .into_iter()
                    .map(|(k, v)| (k.to_ascii_lowercase(), v))
                    .collect(),
            ),
            callers: Mutex::new(HashMap::new()),
        }
    }

    pub(crate) fn default_limits(&self) -> ServiceLimits {
        *self.default.read().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn set_default(&self, limits: ServiceLimits) {
        *self.default.write().unwrap_or_else(PoisonError::into_inner) = limits;
    }

    pub(crate) fn overrides(&self) -> HashMap<String, ServiceLimits> {
        self.overrides
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub(crate) fn set_override(&self, caller: &str, limits: Option<ServiceLimits>) -> bool {
        let mut overrides = self
            .overrides
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        let key = caller.to_ascii_lowercase();
        match limits {
            Some(limits) => overrides.insert(key, limits).is_some(),
            None => overrides.remove(&key).is_some(),
        }
    }

    /// Forgets every caller's history (admin API, after changing limits).
    pub(crate) fn reset(&self) {
        self.callers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }

    fn limits_for(&self, keys: &[String]) -> ServiceLimits {
        let overrides = self
            .overrides
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        keys.iter()
            .find_map(|k| overrides.get(&k.to_ascii_lowercase()).copied())
            .unwrap_or_else(|| self.default_limits())
    }

    /// Admits a request of the caller known by `keys` (the first is its identity).
    pub(crate) fn acquire(self: &Arc<Self>, keys: &[String]) -> Result<Permit, Throttled> {
        let limits = self.limits_for(keys);
        let key = keys
            .first()
            .cloned()
            .unwrap_or_default()
            .to_ascii_lowercase();
        let now = Instant::now();
        let mut callers = self.callers.lock().unwrap_or_else(PoisonError::into_inner);
        let state = callers.entry(key.clone()).or_default();
        state.prune(now, limits.window);
        if state.active >= limits.max_concurrent {
            return Err(Throttled {
                code: "0x80072326",
                message: format!(
                    "Number of concurrent requests exceeded the limit of {}.",
                    limits.max_concurrent
                ),
                retry_after_secs: 1,
            });
        }
        let window_secs = limits.window.as_secs().max(1);
        if state.requests.len() >= limits.max_requests as usize {
            let oldest = state.requests.front().copied().unwrap_or(now);
            return Err(Throttled {
                code: "0x80072322",
                message: format!(
                    "Number of requests exceeded the limit of {} over time window of {window_secs} seconds.",
                    limits.max_requests
                ),
                retry_after_secs: seconds_until(oldest, limits.window, now).max(1),
            });
        }
        let used: Duration = state.executions.iter().map(|(_, d)| *d).sum();
        if used > limits.max_execution_time {
            let oldest = state.executions.front().map_or(now, |(t, _)| *t);
            return Err(Throttled {
                code: "0x80072321",
                message: format!(
                    "Combined execution time of incoming requests exceeded limit of {} milliseconds over time window of {window_secs} seconds. Decrease number of concurrent requests or reduce the duration of requests and try again later.",
                    thousands(limits.max_execution_time.as_millis())
                ),
                retry_after_secs: seconds_until(oldest, limits.window, now).max(1),
            });
        }
        state.requests.push_back(now);
        state.active += 1;
        let remaining_requests =
            u32::try_from((limits.max_requests as usize).saturating_sub(state.requests.len()))
                .unwrap_or(0);
        let remaining_time_ms = limits.max_execution_time.saturating_sub(used).as_millis();
        Ok(Permit {
            limiter: Arc::clone(self),
            key,
            started: now,
            remaining_requests,
            remaining_time_ms,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> Vec<String> {
        vec!["app".to_owned()]
    }

    #[test]
    fn each_limit_trips_with_its_code() {
        let limiter = Arc::new(Limiter::new(
            ServiceLimits::default().requests(2, Duration::from_secs(60)),
            HashMap::new(),
        ));
        let first = limiter.acquire(&keys()).expect("1");
        drop(first);
        drop(limiter.acquire(&keys()).expect("2"));
        let err = limiter.acquire(&keys()).expect_err("3rd");
        assert_eq!(err.code, "0x80072322");
        assert_eq!(
            err.message,
            "Number of requests exceeded the limit of 2 over time window of 60 seconds."
        );
        assert!((1..=60).contains(&err.retry_after_secs));

        let limiter = Arc::new(Limiter::new(
            ServiceLimits::default().concurrent(1),
            HashMap::new(),
        ));
        let held = limiter.acquire(&keys()).expect("1");
        let err = limiter.acquire(&keys()).expect_err("concurrent");
        assert_eq!(err.code, "0x80072326");
        assert_eq!(
            err.message,
            "Number of concurrent requests exceeded the limit of 1."
        );
        drop(held);
        drop(limiter.acquire(&keys()).expect("free again"));

        let limiter = Arc::new(Limiter::new(
            ServiceLimits::default().execution_time(Duration::ZERO),
            HashMap::new(),
        ));
        let permit = limiter.acquire(&keys()).expect("1");
        std::thread::sleep(Duration::from_millis(2));
        drop(permit);
        let err = limiter.acquire(&keys()).expect_err("time");
        assert_eq!(err.code, "0x80072321");
        assert!(err.message.starts_with(
            "Combined execution time of incoming requests exceeded limit of 0 milliseconds"
        ));
    }

    #[test]
    fn overrides_apply_to_any_key_of_the_caller() {
        let mut overrides = HashMap::new();
        overrides.insert(
            "ALICE@x".to_owned(),
            ServiceLimits::default().requests(1, Duration::from_secs(5)),
        );
        let limiter = Arc::new(Limiter::new(ServiceLimits::default(), overrides));
        let alice = vec!["oid-1".to_owned(), "alice@x".to_owned()];
        drop(limiter.acquire(&alice).expect("1"));
        assert!(limiter.acquire(&alice).is_err());
        drop(limiter.acquire(&keys()).expect("others keep the default"));
        assert_eq!(thousands(1_200_000), "1,200,000");
    }
}
