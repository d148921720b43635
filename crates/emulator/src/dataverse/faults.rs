//! Fault injection for tests: a share of requests answered 503, delayed, or cut mid-body (the
//! connection is closed after part of the response was written). Decisions come from a
//! seeded generator indexed by request number, so a test that sends the same requests in the
//! same order sees the same faults. `/_emulator/` is never affected.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::DvState;

/// Which faults to inject, and how often (each rate between 0 and 1).
///
/// ```
/// use std::time::Duration;
/// let faults = d365_emulator::FaultConfig::new(42)
///     .unavailable(0.1)
///     .delayed(0.2, Duration::from_millis(300))
///     .cut(0.05);
/// assert_eq!(faults.seed, 42);
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct FaultConfig {
    /// Seed of the generator.
    pub seed: u64,
    /// Share of requests answered `503 Service Unavailable`.
    pub unavailable_rate: f64,
    /// Share of requests delayed by [`Self::delay`] before being served.
    pub delay_rate: f64,
    /// The delay.
    pub delay: Duration,
    /// Share of responses cut: headers and part of the body, then the connection closes.
    pub cut_rate: f64,
}

impl FaultConfig {
    /// No faults yet, with this seed.
    pub fn new(seed: u64) -> Self {
        Self {
            seed,
            unavailable_rate: 0.0,
            delay_rate: 0.0,
            delay: Duration::ZERO,
            cut_rate: 0.0,
        }
    }

    /// Answer this share of requests with 503.
    #[must_use]
    pub fn unavailable(mut self, rate: f64) -> Self {
        self.unavailable_rate = rate.clamp(0.0, 1.0);
        self
    }

    /// Delay this share of requests by `delay`.
    #[must_use]
    pub fn delayed(mut self, rate: f64, delay: Duration) -> Self {
        self.delay_rate = rate.clamp(0.0, 1.0);
        self.delay = delay;
        self
    }

    /// Cut this share of responses mid-body.
    #[must_use]
    pub fn cut(mut self, rate: f64) -> Self {
        self.cut_rate = rate.clamp(0.0, 1.0);
        self
    }
}

/// SplitMix64: tiny, good enough, and stable across versions (no dependency on a crate's
/// choice of generator keeps seeded runs reproducible forever).
fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = x;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn unit(seed: u64, index: u64, salt: u64) -> f64 {
    let bits = splitmix(seed ^ splitmix(index.wrapping_mul(3).wrapping_add(salt)));
    (bits >> 11) as f64 / (1u64 << 53) as f64
}

/// What happens to one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Decision {
    pub(crate) unavailable: bool,
    pub(crate) delay: Option<Duration>,
    pub(crate) cut: bool,
}

/// The active configuration, the request counter, and how many faults were injected.
#[derive(Debug, Default)]
pub(crate) struct Faults {
    state: Mutex<Option<(FaultConfig, u64)>>,
    unavailable: AtomicU64,
    cuts: AtomicU64,
}

impl Faults {
    pub(crate) fn new(config: Option<FaultConfig>) -> Self {
        Self {
            state: Mutex::new(config.map(|c| (c, 0))),
            ..Self::default()
        }
    }

    /// `503`s and cuts injected since the start (a new configuration does not reset them).
    pub(crate) fn injected(&self) -> (u64, u64) {
        (
            self.unavailable.load(Ordering::Relaxed),
            self.cuts.load(Ordering::Relaxed),
        )
    }

    /// Replaces the configuration and restarts the sequence.
    pub(crate) fn set(&self, config: Option<FaultConfig>) {
        *self.state.lock().unwrap_or_else(PoisonError::into_inner) = config.map(|c| (c, 0));
    }

    pub(crate) fn get(&self) -> Option<FaultConfig> {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .map(|(c, _)| c.clone())
    }

    pub(crate) fn decide(&self) -> Decision {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let Some((config, counter)) = state.as_mut() else {
            return Decision::default();
        };
        let index = *counter;
        *counter += 1;
        Decision {
            unavailable: unit(config.seed, index, 0) < config.unavailable_rate,
            delay: (unit(config.seed, index, 1) < config.delay_rate).then_some(config.delay),
            cut: unit(config.seed, index, 2) < config.cut_rate,
        }
    }
}

/// Writes half of `bytes`, then fails the body so the server closes the connection. The
/// pause between the two lets hyper flush what was written, so the client sees a response
/// that starts and then stops, not one that never starts.
fn cut_body(bytes: Bytes) -> Body {
    let half = bytes.slice(..bytes.len() / 2);
    let stream = futures_util::stream::unfold(0u8, move |step| {
        let half = half.clone();
        async move {
            match step {
                0 => Some((Ok(half), 1)),
                1 => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    Some((
                        Err(std::io::Error::new(
                            std::io::ErrorKind::ConnectionAborted,
                            "fault injected: response cut",
                        )),
                        2,
                    ))
                }
                _ => None,
            }
        }
    });
    Body::from_stream(stream)
}

/// Middleware over every route but `/_emulator/`. It is also where the retry ledger sees
/// every request arrive, before any fault is decided, so a retry that is then faulted is
/// still checked.
pub(crate) async fn layer(
    State(state): State<Arc<DvState>>,
    request: Request,
    next: Next,
) -> Response {
    state.ledger.arrived(
        request
            .headers()
            .get(super::ledger::CLIENT_REQUEST_ID)
            .and_then(|value| value.to_str().ok()),
        Instant::now(),
    );
    let decision = state.faults.decide();
    if let Some(delay) = decision.delay {
        tokio::time::sleep(delay).await;
    }
    if decision.unavailable {
        tracing::debug!(uri = %request.uri(), "fault injected: 503");
        state.faults.unavailable.fetch_add(1, Ordering::Relaxed);
        let body = r#"{"error":{"code":"0x80040216","message":"The service is temporarily unavailable (fault injected by the d365 emulator)."}}"#;
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            [(
                header::CONTENT_TYPE,
                "application/json; odata.metadata=minimal",
            )],
            body,
        )
            .into_response();
    }
    let response = next.run(request).await;
    if !decision.cut {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, usize::MAX).await else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    tracing::debug!(len = bytes.len(), "fault injected: cutting the response");
    state.faults.cuts.fetch_add(1, Ordering::Relaxed);
    if let Ok(length) = HeaderValue::from_str(&bytes.len().to_string()) {
        parts.headers.insert(header::CONTENT_LENGTH, length);
    }
    Response::from_parts(parts, cut_body(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decisions_are_reproducible_and_follow_the_rates() {
        let config = FaultConfig::new(7)
            .unavailable(0.3)
            .delayed(0.5, Duration::from_millis(1))
            .cut(0.1);
        let run = || {
            let faults = Faults::new(Some(config.clone()));
            (0..2000).map(|_| faults.decide()).collect::<Vec<_>>()
        };
        let first = run();
        assert_eq!(first, run());
        let share =
            |f: fn(&Decision) -> bool| first.iter().filter(|d| f(d)).count() as f64 / 2000.0;
        assert!((share(|d| d.unavailable) - 0.3).abs() < 0.05);
        assert!((share(|d| d.delay.is_some()) - 0.5).abs() < 0.05);
        assert!((share(|d| d.cut) - 0.1).abs() < 0.03);
        assert_eq!(Faults::new(None).decide(), Decision::default());
    }
}
