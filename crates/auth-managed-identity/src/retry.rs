//! [`RetryPolicy`]: how long and how often a managed identity endpoint is asked again —
//! exponential back-off with jitter, `Retry-After`, the 70 seconds IMDS may answer `410`
//! while it updates, and one deadline over everything.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher as _, Hasher as _};
use std::time::Duration;

/// How a managed identity endpoint is retried, as Microsoft documents for IMDS and
/// azure-identity does.
///
/// Which answers are retried depends on the endpoint: IMDS `404`, `410`, `429`, every `5xx`,
/// and timeouts or dropped connections once the endpoint has answered; App Service `429`,
/// `5xx`, timeouts and dropped connections. This policy says how often and how long:
///
/// - retry `n` (from 0) waits `initial_delay × 2ⁿ`, at most `max_delay`, scaled by a random
///   factor between 0.8 and 1.2 (jitter, so that a fleet does not retry in step) unless
///   jitter is off — or what the endpoint asked with `Retry-After` on a `429`;
/// - at most `max_retries` retries, except that a `410` (IMDS is updating, back within
///   70 seconds) is retried until `gone_window` has passed since the first `410`;
/// - nothing — no request, no wait — goes past `deadline`, counted from the start of the
///   token request: a wait that would end after it is not begun.
///
/// The defaults ([`imds`](Self::imds)): 5 retries from 0.8 seconds (0.8, 1.6, 3.2, 6.4,
/// 12.8 s), at most 60 seconds apart, `410` for at least 70 seconds, a 100-second deadline.
/// [`app_service`](Self::app_service): 3 retries, a 60-second deadline.
///
/// # Examples
///
/// A schedule in milliseconds, for tests:
///
/// ```
/// use std::time::Duration;
/// use d365_auth_managed_identity::RetryPolicy;
///
/// let fast = RetryPolicy::imds()
///     .initial_delay(Duration::from_millis(5))
///     .max_delay(Duration::from_millis(20))
///     .gone_window(Duration::from_millis(200))
///     .deadline(Duration::from_secs(5))
///     .jitter(false);
/// assert_eq!(fast.delay(0), Duration::from_millis(5));
/// assert_eq!(fast.delay(1), Duration::from_millis(10));
/// assert_eq!(fast.delay(4), Duration::from_millis(20));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[must_use]
#[non_exhaustive]
pub struct RetryPolicy {
    pub(crate) max_retries: u32,
    pub(crate) initial_delay: Duration,
    pub(crate) max_delay: Duration,
    pub(crate) gone_window: Duration,
    pub(crate) deadline: Duration,
    pub(crate) jitter: bool,
}

impl RetryPolicy {
    /// The instance metadata endpoint's policy, as Microsoft documents it and azure-identity
    /// applies it: 5 retries from 0.8 s, doubling, at most 60 s apart, with jitter; `410`
    /// for at least 70 s; a 100-second deadline.
    pub fn imds() -> Self {
        Self {
            max_retries: 5,
            initial_delay: Duration::from_millis(800),
            max_delay: Duration::from_secs(60),
            gone_window: Duration::from_secs(70),
            deadline: Duration::from_secs(100),
            jitter: true,
        }
    }

    /// App Service's policy: a few retries (3) from 0.8 s, with jitter; a 60-second deadline.
    pub fn app_service() -> Self {
        Self {
            max_retries: 3,
            gone_window: Duration::ZERO,
            deadline: Duration::from_secs(60),
            ..Self::imds()
        }
    }

    /// At most this many retries after the first request (a `410` may take more, see
    /// [`gone_window`](Self::gone_window)).
    pub fn max_retries(mut self, retries: u32) -> Self {
        self.max_retries = retries;
        self
    }

    /// The wait before the first retry; each later one doubles it.
    pub fn initial_delay(mut self, delay: Duration) -> Self {
        self.initial_delay = delay;
        self
    }

    /// The longest wait between two requests (but a `Retry-After` is honoured as sent).
    pub fn max_delay(mut self, delay: Duration) -> Self {
        self.max_delay = delay;
        self
    }

    /// How long `410 Gone` (IMDS is updating; Microsoft: back within 70 seconds) is
    /// retried, from the first `410`, even beyond [`max_retries`](Self::max_retries).
    pub fn gone_window(mut self, window: Duration) -> Self {
        self.gone_window = window;
        self
    }

    /// The most a token request may take, retries and waits included.
    pub fn deadline(mut self, deadline: Duration) -> Self {
        self.deadline = deadline;
        self
    }

    /// Whether waits are scaled by a random factor between 0.8 and 1.2 (on by default).
    pub fn jitter(mut self, jitter: bool) -> Self {
        self.jitter = jitter;
        self
    }

    /// The wait before retry `retry` (from 0), without jitter: `initial_delay × 2^retry`, at
    /// most `max_delay`.
    #[must_use]
    pub fn delay(&self, retry: u32) -> Duration {
        let factor = 2_u32.saturating_pow(retry.min(31));
        self.initial_delay
            .checked_mul(factor)
            .unwrap_or(self.max_delay)
            .min(self.max_delay)
    }

    /// The wait before retry `retry`, with jitter when it is on.
    pub(crate) fn jittered_delay(&self, retry: u32) -> Duration {
        let delay = self.delay(retry);
        if !self.jitter {
            return delay;
        }
        // A factor in [0.8, 1.2): the standard library's randomly keyed hasher is random
        // enough to spread a fleet's retries, without a dependency.
        let random = RandomState::new().build_hasher().finish();
        #[allow(
            clippy::cast_precision_loss,
            reason = "a jitter factor needs no precision"
        )]
        let unit = (random >> 11) as f64 / (1_u64 << 53) as f64;
        Duration::try_from_secs_f64(delay.as_secs_f64() * (0.8 + 0.4 * unit))
            .map_or(self.max_delay, |jittered| jittered.min(self.max_delay))
    }
}

impl Default for RetryPolicy {
    /// [`RetryPolicy::imds`].
    fn default() -> Self {
        Self::imds()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_back_off_doubles_to_its_cap_and_jitter_stays_within_a_fifth() {
        let policy = RetryPolicy::imds();
        let waits: Vec<u128> = (0..8).map(|n| policy.delay(n).as_millis()).collect();
        assert_eq!(waits, [800, 1600, 3200, 6400, 12800, 25600, 51200, 60000]);
        assert_eq!(policy.delay(u32::MAX), Duration::from_secs(60));
        for retry in 0..6 {
            let base = policy.delay(retry);
            let jittered = policy.jittered_delay(retry);
            assert!(
                jittered >= base.mul_f64(0.8)
                    && jittered <= base.mul_f64(1.2).min(Duration::from_secs(60))
            );
        }
        assert_eq!(
            policy.clone().jitter(false).jittered_delay(2),
            Duration::from_millis(3200)
        );
        let unbounded = policy.initial_delay(Duration::MAX).max_delay(Duration::MAX);
        for retry in [0, 1, 40] {
            let _ = unbounded.jittered_delay(retry);
        }
    }
}
