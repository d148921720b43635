//! What the client costs per call: a WhoAmI loop through `d365-webapi` against the same
//! loop in raw reqwest with a fixed bearer token, both against one emulator over loopback
//! HTTP with identically configured `reqwest::Client`s (issue 10; target: the client's
//! throughput at least 0.95 of raw reqwest's, i.e. a time ratio of at most 1.05).
//!
//! - `whoami_loop/raw_reqwest_baseline`: GET `WhoAmI` with `Authorization: Bearer …` and
//!   the OData headers, the answer read into the same three ids.
//! - `whoami_loop/webapi_client`: `Client::who_am_i` — a token cache hit, the request id,
//!   the retry pipeline's bookkeeping, the same parse.
//!
//! Setup checks (untimed) that both loops answer the same user, so neither can be
//! measuring a failure.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use d365_auth_client_credentials::ClientCredentials;
use d365_emulator::{Emulator, ServiceLimits};
use d365_webapi::{Client, Guid};
use secrecy::ExposeSecret as _;

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

fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("an HTTP client")
}

async fn raw_who_am_i(http: &reqwest::Client, url: &str, bearer: &str) -> Guid {
    let body = http
        .get(url)
        .bearer_auth(bearer)
        .header("Accept", "application/json")
        .header("OData-MaxVersion", "4.0")
        .header("OData-Version", "4.0")
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
    let bearer = token.secret().expose_secret().to_owned();
    let raw = http_client();
    let url = format!("{}WhoAmI", emulator.web_api_url());
    let through_raw = runtime.block_on(raw_who_am_i(&raw, &url, &bearer));
    assert_eq!(
        through_raw, through_client.user_id,
        "both loops ask the same"
    );

    let mut group = c.benchmark_group("whoami_loop");
    group.bench_function("raw_reqwest_baseline", |b| {
        b.iter(|| black_box(runtime.block_on(raw_who_am_i(&raw, &url, &bearer))));
    });
    group.bench_function("webapi_client", |b| {
        b.iter(|| black_box(runtime.block_on(client.who_am_i()).expect("WhoAmI")));
    });
    group.finish();
    drop(emulator);
}

criterion_group!(benches, whoami);
criterion_main!(benches);
