//! Token cache benchmarks (issue 10): the hit path against its floor, the hit path with two
//! threads at once, and a cold-cache storm.
//!
//! - `token_cache_hit/floor_access_token_clone`: a bare clone of an [`AccessToken`] (one
//!   `Arc` increment), the least a hit can cost; the report's ratios are against it. Each
//!   floor runs again after what it bounds (`…_again`): the spread of the two runs is the
//!   noise `cargo xtask bench` reports.
//! - `token_cache_hit/hit_one_thread`: `TokenCache::get` on a warm key, polled once with a
//!   no-op waker (a hit never waits, so no runtime is involved). Target: ≤ 100 ns.
//! - `token_cache_hit_two_threads/floor_access_token_clone_two_threads` and
//!   `.../hit_two_threads`: the same pair measured from two threads, so that the ratio shows
//!   what the cache adds to the contended reference count every hit must touch.
//! - `token_cache_hit/hit_one_thread_of_20_orgs`: a hit when the cache holds tokens for 20
//!   organizations (past the scanned list, so the hashed index answers).
//! - `token_cache_cold_storm/callers_10000_provider_20ms`: 10,000 tasks call `get` on a cold
//!   key on a 2-worker runtime; the provider sleeps 20 ms. The time runs until every caller
//!   has its token. Setup checks (untimed) that the storm makes exactly one provider call.

use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant, SystemTime};

use criterion::{Criterion, criterion_group, criterion_main};
use d365_auth_core::{
    AccessToken, AuthError, Grant, TokenCache, TokenProvider, TokenRequest, async_trait,
};

/// Concurrent callers in the cold-cache storm.
const STORM_CALLERS: usize = 10_000;
/// How long the provider takes to answer.
const PROVIDER_DELAY: Duration = Duration::from_millis(20);

/// A provider that counts its calls and, if asked, sleeps before answering.
#[derive(Debug, Default)]
struct CountingProvider {
    calls: AtomicUsize,
    delay: Duration,
}

#[async_trait]
impl TokenProvider for CountingProvider {
    async fn request_token(&self, request: &TokenRequest) -> Result<AccessToken, AuthError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if !self.delay.is_zero() {
            tokio::time::sleep(self.delay).await;
        }
        Ok(token(request))
    }

    fn grant(&self) -> Grant {
        Grant::new("bench")
    }

    fn cache_key(&self) -> String {
        "bench|counting".to_owned()
    }
}

/// A token valid for an hour.
fn token(request: &TokenRequest) -> AccessToken {
    AccessToken::builder(
        "bench-token".to_owned().into(),
        SystemTime::now() + Duration::from_secs(3600),
        request.resource().clone(),
    )
    .build()
    .expect("a plain token is a valid header value")
}

fn request() -> TokenRequest {
    TokenRequest::for_url("https://contoso.crm.dynamics.com").expect("a valid organization URL")
}

/// Polls a future once; a cache hit is ready at once.
fn ready<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("a cache hit must not wait"),
    }
}

fn hit(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let request = request();
    let cache = TokenCache::new(Arc::new(CountingProvider::default()));
    let warm = runtime.block_on(cache.get(&request)).expect("warmed up");
    assert_eq!(cache.provider().calls.load(Ordering::SeqCst), 1);
    let hit = ready(cache.get(&request)).expect("a hit");
    assert!(hit.same_token(&warm), "the warm key is a hit");

    let mut group = c.benchmark_group("token_cache_hit");
    group.bench_function("floor_access_token_clone", |b| {
        b.iter(|| black_box(black_box(&warm).clone()));
    });
    group.bench_function("hit_one_thread", |b| {
        b.iter(|| black_box(ready(cache.get(black_box(&request)))));
    });
    let many = TokenCache::new(Arc::new(CountingProvider::default()));
    let orgs: Vec<TokenRequest> = (0..20)
        .map(|n| {
            TokenRequest::for_url(&format!("https://org{n}.crm.dynamics.com"))
                .expect("a valid organization URL")
        })
        .collect();
    for org in &orgs {
        runtime.block_on(many.get(org)).expect("warmed up");
    }
    let tenth = &orgs[10];
    group.bench_function("hit_one_thread_of_20_orgs", |b| {
        b.iter(|| black_box(ready(many.get(black_box(tenth)))));
    });
    // The floor again, after what it bounds: the spread of its two runs is this run's noise.
    group.bench_function("floor_access_token_clone_again", |b| {
        b.iter(|| black_box(black_box(&warm).clone()));
    });
    group.finish();

    let mut group = c.benchmark_group("token_cache_hit_two_threads");
    group.bench_function("floor_access_token_clone_two_threads", |b| {
        b.iter_custom(|iters| {
            on_two_threads(iters, || {
                black_box(black_box(&warm).clone());
            })
        });
    });
    group.bench_function("hit_two_threads", |b| {
        b.iter_custom(|iters| {
            on_two_threads(iters, || {
                black_box(ready(cache.get(black_box(&request)))).expect("a hit");
            })
        });
    });
    group.bench_function("floor_access_token_clone_two_threads_again", |b| {
        b.iter_custom(|iters| {
            on_two_threads(iters, || {
                black_box(black_box(&warm).clone());
            })
        });
    });
    group.finish();
    assert_eq!(
        cache.provider().calls.load(Ordering::SeqCst),
        1,
        "hits never call the provider"
    );
}

/// Runs one storm on a fresh (cold) cache; returns the time until every caller was served
/// and how many times the provider was called.
fn storm(runtime: &tokio::runtime::Runtime, request: &TokenRequest) -> (Duration, usize) {
    let provider = Arc::new(CountingProvider {
        calls: AtomicUsize::new(0),
        delay: PROVIDER_DELAY,
    });
    let cache = TokenCache::new(Arc::clone(&provider));
    let elapsed = runtime.block_on(async {
        let started = Instant::now();
        let mut callers = tokio::task::JoinSet::new();
        for _ in 0..STORM_CALLERS {
            let cache = cache.clone();
            let request = request.clone();
            callers.spawn(async move { cache.get(&request).await });
        }
        while let Some(served) = callers.join_next().await {
            black_box(served.expect("joined").expect("served"));
        }
        started.elapsed()
    });
    (elapsed, provider.calls.load(Ordering::SeqCst))
}

fn cold_storm(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let request = request();
    let (_, calls) = storm(&runtime, &request);
    assert_eq!(
        calls, 1,
        "{STORM_CALLERS} callers on a cold key: one provider call"
    );

    let mut group = c.benchmark_group("token_cache_cold_storm");
    group.sample_size(10);
    group.bench_function(format!("callers_{STORM_CALLERS}_provider_20ms"), |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| storm(&runtime, &request).0)
                .sum::<Duration>()
        });
    });
    group.finish();
}

/// Runs `call` `iters` times on each of two threads started together; the time is the
/// slower thread's.
fn on_two_threads(iters: u64, call: impl Fn() + Sync) -> Duration {
    let barrier = Barrier::new(2);
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..2)
            .map(|_| {
                scope.spawn(|| {
                    barrier.wait();
                    let started = Instant::now();
                    for _ in 0..iters {
                        call();
                    }
                    started.elapsed()
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|worker| worker.join().expect("worker"))
            .max()
            .expect("two workers")
    })
}

criterion_group!(benches, hit, cold_storm);
criterion_main!(benches);
