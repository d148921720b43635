//! The Dataverse counters over real HTTP: `429`s, injected `503`s and cuts, and the retry
//! ledger that tells a retry sent before its `Retry-After` (same `x-ms-client-request-id`)
//! from one that waited, read through `Emulator::dataverse_stats` and
//! `GET /_emulator/dataverse/stats`.

use std::time::Duration;

use d365_emulator::{DataverseStats, Emulator, ServiceLimits};
use serde_json::json;

use crate::common::{Api, client, send};

#[tokio::test]
async fn early_and_patient_retries_are_told_apart() {
    let emulator = Emulator::builder()
        .service_limits(ServiceLimits::default().requests(1, Duration::from_secs(1)))
        .start()
        .await
        .expect("started");
    let api = Api::new(&emulator).await;
    let who_am_i = |id: &str| {
        api.request(reqwest::Method::GET, "WhoAmI")
            .header("x-ms-client-request-id", id)
    };
    assert_eq!(emulator.dataverse_stats(), DataverseStats::default());

    // Uses the one request of the window, then is throttled and retried at once: early.
    assert_eq!(send(who_am_i("first")).await.status, 200);
    let throttled = send(who_am_i("early")).await;
    assert_eq!(throttled.status, 429);
    assert_eq!(throttled.headers["retry-after"], "1");
    assert_eq!(send(who_am_i("early")).await.status, 429);
    // Throttled, then retried after Retry-After: on time (and served, the window slid).
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(send(who_am_i("early")).await.status, 200);
    let throttled = send(who_am_i("patient")).await;
    assert_eq!(throttled.status, 429);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(send(who_am_i("patient")).await.status, 200);
    // Without the header, a throttled request is not tracked.
    assert_eq!(api.get("WhoAmI").await.status, 429);
    assert_eq!(api.get("WhoAmI").await.status, 429);

    let stats = emulator.dataverse_stats();
    assert_eq!(stats.throttled_responses, 5, "{stats:?}");
    assert_eq!(stats.tracked_retries, 3, "{stats:?}");
    assert_eq!(stats.early_retries, 1, "{stats:?}");
    assert_eq!((stats.injected_unavailable, stats.injected_cuts), (0, 0));

    let reply =
        send(client().get(format!("{}/_emulator/dataverse/stats", emulator.base_url()))).await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.body,
        json!({
            "throttled_responses": 5,
            "injected_unavailable": 0,
            "injected_cuts": 0,
            "tracked_retries": 3,
            "early_retries": 1,
        })
    );
    emulator.shutdown().await;
}

#[tokio::test]
async fn injected_faults_are_counted() {
    let emulator = Emulator::builder().start().await.expect("started");
    // A connection per request: a cut connection is never reused, so each request is seen.
    let api = Api {
        http: reqwest::Client::builder()
            .no_proxy()
            .pool_max_idle_per_host(0)
            .build()
            .expect("client"),
        ..Api::new(&emulator).await
    };
    let http = client();
    let base = emulator.base_url();
    let faults = send(
        http.put(format!("{base}/_emulator/faults"))
            .json(&json!({"seed": 3, "unavailable_rate": 0.3, "cut_rate": 0.3})),
    )
    .await;
    assert_eq!(faults.status, 200, "{}", faults.body);
    let (mut unavailable, mut cut) = (0, 0);
    for _ in 0..40 {
        match api.request(reqwest::Method::GET, "WhoAmI").send().await {
            Ok(response) if response.status() == 503 => unavailable += 1,
            Ok(response) => {
                if response.bytes().await.is_err() {
                    cut += 1;
                }
            }
            Err(error) => panic!("a cut response still starts: {error}"),
        }
    }
    assert!(unavailable > 0 && cut > 0, "{unavailable} {cut}");
    let stats = emulator.dataverse_stats();
    assert_eq!(stats.injected_unavailable, unavailable, "{stats:?}");
    assert_eq!(stats.injected_cuts, cut, "{stats:?}");
    assert_eq!(stats.throttled_responses, 0);
    emulator.shutdown().await;
}
