//! What the client costs per call: a WhoAmI loop through `d365-webapi` against the same
//! loop in raw reqwest with a fixed bearer token (issue 10; target: the client's
//! throughput at least 0.95 of raw reqwest's, i.e. a time ratio of at most 1.05).
//!
//! The raw loop is the floor, so it gets every advantage the client has (issue 25: in one
//! run the client came out 27% "faster" than its floor, measured alone minutes apart on a
//! shared machine):
//!
//! - **the same wire**: the `reqwest::Client` settings `d365-webapi` builds by default
//!   (from `d365_auth_core::grant::http_client_builder`), the same headers (the token,
//!   `Accept`, the two OData versions, a fresh `x-ms-client-request-id`,
//!   `If-None-Match: null`) and the same per-request timeout, so the emulator does the
//!   same work for both; one emulator, served on the loops' own runtime thread;
//! - **the same moments**: each timed call of one loop is followed by an untimed call of
//!   the other, so a burst of load from elsewhere on the machine falls on both;
//! - **noise measured**: the floor runs twice, before and after the client
//!   (`raw_reqwest_baseline`, `raw_reqwest_baseline_again`); `cargo xtask bench` reports
//!   their spread as the run's noise and flags a path that beats its floor by more.
//!
//! - `whoami_loop/raw_reqwest_baseline`: GET `WhoAmI`, the answer read into the three ids.
//! - `whoami_loop/webapi_client`: `Client::who_am_i` — a token cache hit, the request id,
//!   the retry pipeline's bookkeeping, the same parse.
//!
//! Setup checks (untimed) that both loops answer the same user, so neither can be
//! measuring a failure.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use d365_auth_client_credentials::ClientCredentials;
use d365_emulator::{Emulator, ServiceLimits};
use d365_webapi::{Client, Guid};
use secrecy::ExposeSecret as _;

/// The per-request timeout both loops set (the client's default).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

/// The ids WhoAmI answers, read the way the client reads them.
#[derive(serde::Deserialize)]
struct RawWhoAmI {
    #[serde(rename = "UserId")]
    user_id: Guid,
    #[serde(rename = "BusinessUnitId")]
    _business_unit_id: Guid,
    #[serde(rename = "OrganizationId")]
    _organization_id: Guid,
}

/// The HTTP client `d365-webapi` builds when given none, for both loops.
fn http_client() -> reqwest::Client {
    d365_auth_core::grant::http_client_builder()
        .user_agent(concat!("d365-webapi/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs(10))
        .pool_idle_timeout(Duration::from_secs(60))
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()
        .expect("an HTTP client")
}

async fn raw_who_am_i(http: &reqwest::Client, url: &str, authorization: &str) -> Guid {
    let body = http
        .get(url)
        .timeout(REQUEST_TIMEOUT)
        .header("Authorization", authorization)
        .header("Accept", "application/json")
        .header("OData-MaxVersion", "4.0")
        .header("OData-Version", "4.0")
        .header("x-ms-client-request-id", uuid::Uuid::new_v4().to_string())
        .header("If-None-Match", "null")
        .send()
        .await
        .expect("sent")
        .error_for_status()
        .expect("200")
        .bytes()
        .await
        .expect("a body");
    let answer: RawWhoAmI = serde_json::from_slice(&body).expect("WhoAmI json");
    answer.user_id
}

/// Times `iters` calls of `timed`, each followed by an untimed call of `other`.
fn alternating(iters: u64, mut timed: impl FnMut(), mut other: impl FnMut()) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let started = Instant::now();
        timed();
        total += started.elapsed();
        other();
    }
    total
}

fn whoami(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let emulator = runtime
        .block_on(
            // Service protection would answer 429 to a loop this long; the loop measures
            // the client, not throttling.
            Emulator::builder()
                .service_limits(
                    ServiceLimits::default()
                        .requests(u32::MAX, Duration::from_secs(1))
                        .execution_time(Duration::from_secs(3600)),
                )
                .start(),
        )
        .expect("emulator");
    let app = emulator.seeded().expect("seeded").confidential_app.clone();
    let grant = ClientCredentials::builder()
        .authority_host(emulator.base_url())
        .tenant(emulator.tenant_id())
        .client_id(&app.client_id)
        .client_secret(app.secret)
        .build()
        .expect("grant");
    let client = Client::builder(emulator.base_url(), grant)
        .http_client(http_client())
        .timeout(REQUEST_TIMEOUT)
        .build()
        .expect("client");
    let through_client = runtime
        .block_on(client.who_am_i())
        .expect("WhoAmI through the client");

    // The raw loop's fixed token is the one the client holds.
    let token = runtime
        .block_on(
            client
                .token_cache()
                .get(&d365_auth_core::TokenRequest::new(client.org().clone())),
        )
        .expect("the cached token");
    let authorization = format!("Bearer {}", token.secret().expose_secret());
    let raw = http_client();
    let url = format!("{}WhoAmI", emulator.web_api_url());
    let through_raw = runtime.block_on(raw_who_am_i(&raw, &url, &authorization));
    assert_eq!(
        through_raw, through_client.user_id,
        "both loops ask the same"
    );

    let raw_call = || {
        black_box(runtime.block_on(raw_who_am_i(&raw, &url, &authorization)));
    };
    let client_call = || {
        black_box(runtime.block_on(client.who_am_i()).expect("WhoAmI"));
    };
    let mut group = c.benchmark_group("whoami_loop");
    group.bench_function("raw_reqwest_baseline", |b| {
        b.iter_custom(|iters| alternating(iters, raw_call, client_call));
    });
    group.bench_function("webapi_client", |b| {
        b.iter_custom(|iters| alternating(iters, client_call, raw_call));
    });
    group.bench_function("raw_reqwest_baseline_again", |b| {
        b.iter_custom(|iters| alternating(iters, raw_call, client_call));
    });
    group.finish();
    drop(emulator);
}

criterion_group!(benches, whoami);
criterion_main!(benches);
