//! Paging throughput of the Web API: one pass through every row of a table of generated
//! accounts (1,000,000 by default; `D365_BENCH_ROWS` changes it) at 5000 rows a page,
//! following `@odata.nextLink` over loopback HTTP, as a client would. Criterion's `thrpt`
//! line is rows served per second; each pass also checks that every row came exactly once.

use std::collections::HashSet;
use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use d365_emulator::Emulator;
use secrecy::ExposeSecret as _;

fn rows() -> u64 {
    std::env::var("D365_BENCH_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000)
}

async fn token(emulator: &Emulator, client: &reqwest::Client) -> String {
    let app = &emulator.seeded().expect("seeded").confidential_app;
    let scope = format!("{}/.default", emulator.base_url());
    let reply: serde_json::Value = client
        .post(emulator.token_endpoint_v2())
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", app.client_id.as_str()),
            ("client_secret", app.secret.expose_secret()),
            ("scope", scope.as_str()),
        ])
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("json");
    reply["access_token"].as_str().expect("token").to_owned()
}

/// Pages through all accounts; returns how many distinct rows came back.
async fn page_through(client: &reqwest::Client, first: &str, token: &str) -> usize {
    let mut ids = HashSet::new();
    let mut next = Some(first.to_owned());
    while let Some(url) = next.take() {
        let page: serde_json::Value = client
            .get(&url)
            .bearer_auth(token)
            .header("Prefer", "odata.maxpagesize=5000")
            .send()
            .await
            .expect("sent")
            .json()
            .await
            .expect("json");
        for row in page["value"].as_array().expect("rows") {
            ids.insert(row["accountid"].as_str().expect("id").to_owned());
        }
        next = page["@odata.nextLink"].as_str().map(str::to_owned);
    }
    ids.len()
}

fn paging(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let count = rows();
    let emulator = runtime
        .block_on(Emulator::builder().generated_accounts(count).start())
        .expect("emulator");
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    let token = runtime.block_on(token(&emulator, &client));
    let first = format!(
        "{}accounts?$select=name,accountnumber,revenue",
        emulator.web_api_url()
    );
    let expected = usize::try_from(count).expect("fits");

    let mut group = c.benchmark_group("paging");
    group.throughput(Throughput::Elements(count));
    group.sample_size(10);
    // One pass over a million rows takes seconds; ten passes need this long.
    group.measurement_time(Duration::from_secs(120));
    group.bench_function(format!("all_rows_{count}_at_5000_per_page"), |b| {
        b.iter(|| {
            let seen = runtime.block_on(page_through(&client, &first, &token));
            assert_eq!(seen, expected, "every row exactly once");
            black_box(seen)
        });
    });
    group.finish();
    drop(emulator);
}

criterion_group!(benches, paging);
criterion_main!(benches);
