//! Token issuance throughput and latency: `client_credentials` with a client secret on the v2
//! endpoint, over loopback HTTP with a keep-alive reqwest client, one request at a time and
//! eight in flight. Criterion's `thrpt` line is requests per second; the median latency is in
//! `target/criterion/token_issuance/*/new/estimates.json` (`median`).

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use d365_emulator::Emulator;
use secrecy::ExposeSecret as _;

fn token_issuance(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let emulator = runtime
        .block_on(Emulator::builder().start())
        .expect("emulator");
    let seeded = emulator.seeded().expect("seeded");
    let url = emulator.token_endpoint_v2();
    let form = vec![
        ("grant_type".to_owned(), "client_credentials".to_owned()),
        (
            "client_id".to_owned(),
            seeded.confidential_app.client_id.clone(),
        ),
        (
            "client_secret".to_owned(),
            seeded.confidential_app.secret.expose_secret().to_owned(),
        ),
        (
            "scope".to_owned(),
            "https://contoso.crm.dynamics.com/.default".to_owned(),
        ),
    ];
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    let request = |client: reqwest::Client, url: String, form: Vec<(String, String)>| async move {
        let response = client.post(url).form(&form).send().await.expect("sent");
        assert!(response.status().is_success());
        response.bytes().await.expect("body")
    };

    let mut group = c.benchmark_group("token_issuance");
    group.throughput(Throughput::Elements(1));
    group.bench_function("client_credentials_secret_sequential", |b| {
        b.iter(|| black_box(runtime.block_on(request(client.clone(), url.clone(), form.clone()))));
    });
    const IN_FLIGHT: u64 = 8;
    group.throughput(Throughput::Elements(IN_FLIGHT));
    group.bench_function("client_credentials_secret_8_in_flight", |b| {
        b.iter(|| {
            runtime.block_on(async {
                let mut tasks = tokio::task::JoinSet::new();
                for _ in 0..IN_FLIGHT {
                    tasks.spawn(request(client.clone(), url.clone(), form.clone()));
                }
                while let Some(done) = tasks.join_next().await {
                    black_box(done.expect("joined"));
                }
            });
        });
    });
    group.finish();
    runtime.block_on(emulator.shutdown());
}

criterion_group!(benches, token_issuance);
criterion_main!(benches);
