//! A fleet sharing Redis over a simulated hour: 50 workers, each with its own token cache,
//! Redis connection and grant (as 50 processes have), call the token cache every 20 ms
//! while the emulator issues short tokens — an hour of 5-minute tokens compressed to 12
//! lifetimes of 2 seconds. Once with the renewal lease (`RedisStore` as it is), once with
//! the lease turned off (the same store behind a wrapper that cannot coordinate: each
//! worker renews on its own, as before single flight across processes), in the same run.
//!
//! Reported: the token requests the emulator served (its own count), against the renewals
//! the period needs (one every half lifetime), and how long a worker's `get` took — the
//! median, the 99th percentile and the longest, which is the wait when the token is due.
//! Written to `target/bench/sections/fleet.md`, which `cargo xtask bench` appends.

#![allow(clippy::print_stdout, missing_docs)]

#[path = "../tests/it/redis_server.rs"]
mod redis_server;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use d365_auth_client_credentials::ClientCredentials;
use d365_auth_core::store::TokenStore;
use d365_auth_core::{AccessToken, TokenCache, TokenRequest, async_trait};
use d365_emulator::Emulator;
use d365_token_store_redis::RedisStore;

const WORKERS: usize = 50;
const LIFETIME: Duration = Duration::from_secs(2);
const CALL_EVERY: Duration = Duration::from_millis(20);

/// The Redis store without its renewal lease: what every worker did before.
#[derive(Debug)]
struct NoLease(RedisStore);

#[async_trait]
impl TokenStore for NoLease {
    async fn load(
        &self,
        key: &str,
    ) -> Result<Option<AccessToken>, d365_auth_core::store::StoreError> {
        self.0.load(key).await
    }
    async fn save(
        &self,
        key: &str,
        token: &AccessToken,
    ) -> Result<(), d365_auth_core::store::StoreError> {
        self.0.save(key, token).await
    }
    async fn remove(&self, key: &str) -> Result<(), d365_auth_core::store::StoreError> {
        self.0.remove(key).await
    }
}

struct Outcome {
    requests: u64,
    renewal_periods: f64,
    latencies: Vec<Duration>,
}

async fn run(redis_url: &str, lease: bool, lifetimes: u32) -> Outcome {
    let emulator = Emulator::builder()
        .token_lifetime(LIFETIME)
        .start()
        .await
        .expect("emulator");
    let app = emulator.seeded().expect("seeded").confidential_app.clone();
    let request = TokenRequest::for_url(emulator.base_url()).expect("request");
    let duration = LIFETIME * lifetimes;
    let started = Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..WORKERS {
        let redis = RedisStore::new(redis_url).expect("store");
        let store: Arc<dyn TokenStore> = if lease {
            Arc::new(redis)
        } else {
            Arc::new(NoLease(redis))
        };
        let grant = ClientCredentials::builder()
            .authority_host(emulator.base_url())
            .tenant(emulator.tenant_id())
            .client_id(app.client_id.clone())
            .client_secret(app.secret.clone())
            .build()
            .expect("grant");
        let cache = TokenCache::builder(grant).store(store).build();
        let request = request.clone();
        workers.spawn(async move {
            let mut latencies = Vec::new();
            while started.elapsed() < duration {
                let call = Instant::now();
                cache.get(&request).await.expect("a token");
                latencies.push(call.elapsed());
                tokio::time::sleep(CALL_EVERY).await;
            }
            latencies
        });
    }
    let latencies = workers.join_all().await.into_iter().flatten().collect();
    let stats: serde_json::Value =
        reqwest::get(format!("{}/_emulator/identity/stats", emulator.base_url()))
            .await
            .expect("stats")
            .json()
            .await
            .expect("stats JSON");
    emulator.shutdown().await;
    Outcome {
        requests: stats["token_requests"].as_u64().unwrap_or(0),
        // A token is renewed about halfway through its life: two renewal periods per
        // lifetime, and the first token.
        renewal_periods: f64::from(lifetimes) * 2.0,
        latencies,
    }
}

fn percentile(sorted: &[Duration], share: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let index = ((sorted.len() - 1) as f64 * share).round() as usize;
    sorted[index]
}

fn millis(time: Duration) -> String {
    format!("{:.2} ms", time.as_secs_f64() * 1000.0)
}

fn sections_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the bench executable");
    exe.ancestors()
        .nth(3)
        .expect("target/<profile>/deps")
        .join("bench")
        .join("sections")
}

fn main() {
    // Criterion's arguments, as `cargo xtask bench` passes them: a name filter, and
    // `--warm-up-time`/`--measurement-time` (with a value) for a quick run.
    let mut filters = Vec::new();
    let mut quick = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--warm-up-time" | "--measurement-time" => {
                quick = true;
                args.next();
            }
            "--sample-size" | "--save-baseline" | "--baseline" | "--output-format" => {
                args.next();
            }
            flag if flag.starts_with('-') => {}
            filter => filters.push(filter.to_owned()),
        }
    }
    if !filters.is_empty()
        && !filters
            .iter()
            .any(|filter| "fleet_redis".contains(filter.as_str()))
    {
        return;
    }
    let lifetimes = if quick { 6 } else { 12 };
    let mut out =
        String::from("\n## Fleet on Redis (crates/token-store-redis/benches/fleet.rs)\n\n");
    let Some(server) = redis_server::RedisServer::start() else {
        out.push_str(
            "Not run: `redis-server` is not installed (`cargo xtask test` installs it).\n",
        );
        write(&out);
        return;
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    out.push_str(&format!(
        "{WORKERS} workers (each its own cache, Redis connection and grant) call `TokenCache::get` every {} ms for {lifetimes} token lifetimes of {} s — an hour of 5-minute tokens, compressed. Token requests are the emulator's own count.\n\n",
        CALL_EVERY.as_millis(),
        LIFETIME.as_secs()
    ));
    out.push_str("| renewal | token requests | renewal periods | requests per period | get median | get p99 | longest get (the wait when due) |\n|---|---|---|---|---|---|---|\n");
    let mut per_period = Vec::new();
    for (name, lease) in [
        ("per process (no lease; the baseline)", false),
        ("renewal lease (single flight)", true),
    ] {
        let outcome = runtime.block_on(run(&server.url(), lease, lifetimes));
        let mut sorted = outcome.latencies.clone();
        sorted.sort();
        let ratio = outcome.requests as f64 / outcome.renewal_periods;
        per_period.push(ratio);
        out.push_str(&format!(
            "| {name} | {} | {} | {ratio:.1} | {} | {} | {} |\n",
            outcome.requests,
            outcome.renewal_periods,
            millis(percentile(&sorted, 0.5)),
            millis(percentile(&sorted, 0.99)),
            millis(sorted.last().copied().unwrap_or_default()),
        ));
    }
    if let [baseline, leased] = per_period[..] {
        out.push_str(&format!(
            "\nToken requests with the lease: {:.3} of the per-process baseline's (target: about one request per renewal period).\n",
            leased / baseline.max(f64::MIN_POSITIVE)
        ));
    }
    print!("{out}");
    write(&out);
}

fn write(out: &str) {
    let dir = sections_dir();
    std::fs::create_dir_all(&dir).expect("the sections directory");
    std::fs::write(dir.join("fleet.md"), out).expect("the report section");
}
