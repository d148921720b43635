//! Service protection limits (429 with Retry-After and Dataverse's codes, per caller, set on
//! the builder or through the admin API), `x-ms-dop-hint`, and deterministic fault injection
//! (503, delays, responses cut mid-body) that never touches `/_emulator/`.

use std::time::Duration;

use d365_emulator::{Emulator, FaultConfig, ServiceLimits};
use serde_json::json;

use crate::common::{self, Api, assert_error, client, send};

#[tokio::test]
async fn request_limits_answer_429_with_retry_after() {
    let seeded_reader = "d3650000-a990-4000-8000-000000000005";
    let emulator = Emulator::builder()
        .caller_limits(
            seeded_reader,
            ServiceLimits::default().requests(1, Duration::from_secs(1)),
        )
        .service_limits(ServiceLimits::default().requests(3, Duration::from_secs(60)))
        .dop_hint(12)
        .start()
        .await
        .expect("started");
    let api = Api::new(&emulator).await;
    for _ in 0..3 {
        let reply = api.get("WhoAmI").await;
        assert_eq!(reply.status, 200);
        assert_eq!(reply.headers["x-ms-dop-hint"], "12");
        assert!(
            reply
                .headers
                .contains_key("x-ms-ratelimit-burst-remaining-xrm-requests")
        );
    }
    let reply = api.get("WhoAmI").await;
    assert_error(
        &reply,
        429,
        "0x80072322",
        "Number of requests exceeded the limit of 3 over time window of 60 seconds.",
    );
    let retry: u64 = reply.headers["retry-after"]
        .to_str()
        .expect("header")
        .parse()
        .expect("seconds");
    assert!((1..=60).contains(&retry), "{retry}");

    // Another caller has its own counters (and here its own, tighter limit).
    let seeded = emulator.seeded().expect("seeded");
    let reader = Api {
        token: common::app_token(
            &emulator,
            &seeded.reader_app.client_id,
            secrecy::ExposeSecret::expose_secret(&seeded.reader_app.secret),
        )
        .await,
        ..Api::new(&emulator).await
    };
    assert_eq!(reader.get("WhoAmI").await.status, 200);
    assert_error(
        &reader.get("WhoAmI").await,
        429,
        "0x80072322",
        "limit of 1 over time window of 1 seconds",
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(reader.get("WhoAmI").await.status, 200, "the window slid");

    // The admin API changes limits at run time.
    let http = client();
    let base = emulator.base_url();
    let limits = send(
        http.put(format!("{base}/_emulator/limits"))
            .json(&json!({"max_concurrent": 0})),
    )
    .await;
    assert_eq!(
        limits.body["default"]["max_concurrent"], 0,
        "{}",
        limits.body
    );
    assert_error(
        &api.get("WhoAmI").await,
        429,
        "0x80072326",
        "Number of concurrent requests exceeded the limit of 0.",
    );
    let limits = send(
        http.put(format!(
            "{base}/_emulator/limits/{}",
            seeded.confidential_app.client_id
        ))
        .json(&json!({"max_execution_time_ms": 0})),
    )
    .await;
    assert_eq!(limits.status, 200, "{}", limits.body);
    assert_eq!(api.get("WhoAmI").await.status, 200);
    tokio::time::sleep(Duration::from_millis(5)).await;
    assert_error(
        &api.get("WhoAmI").await,
        429,
        "0x80072321",
        "Combined execution time of incoming requests exceeded limit of 0 milliseconds over time window of 300 seconds.",
    );
    assert_eq!(
        send(http.delete(format!(
            "{base}/_emulator/limits/{}",
            seeded.confidential_app.client_id
        )))
        .await
        .status,
        204
    );
    let settings = send(
        http.patch(format!("{base}/_emulator/dataverse/settings"))
            .json(&json!({"dop_hint": 2})),
    )
    .await;
    assert_eq!(settings.body["dop_hint"], 2);
}

async fn statuses(emulator: &Emulator, api: &Api, count: usize) -> Vec<u16> {
    let _ = emulator;
    let mut out = Vec::new();
    for _ in 0..count {
        out.push(api.get("WhoAmI").await.status.as_u16());
    }
    out
}

#[tokio::test]
async fn faults_are_deterministic_and_spare_the_admin_api() {
    let emulator = Emulator::builder().start().await.expect("started");
    let api = Api::new(&emulator).await;
    let http = client();
    let base = emulator.base_url();
    let set = send(
        http.put(format!("{base}/_emulator/faults"))
            .json(&json!({"seed": 9, "unavailable_rate": 0.5})),
    )
    .await;
    assert_eq!(set.body["enabled"], true, "{}", set.body);
    let first = statuses(&emulator, &api, 40).await;
    assert!(first.contains(&503) && first.contains(&200), "{first:?}");
    // The admin API is never faulted.
    for _ in 0..20 {
        assert_eq!(
            send(http.get(format!("{base}/_emulator/health")))
                .await
                .status,
            200
        );
    }
    send(
        http.put(format!("{base}/_emulator/faults"))
            .json(&json!({"seed": 9, "unavailable_rate": 0.5})),
    )
    .await;
    assert_eq!(
        statuses(&emulator, &api, 40).await,
        first,
        "same seed, same faults"
    );
    let reply = {
        send(
            http.put(format!("{base}/_emulator/faults"))
                .json(&json!({"seed": 1, "unavailable_rate": 1.0})),
        )
        .await;
        api.get("WhoAmI").await
    };
    assert_error(&reply, 503, "0x80040216", "fault injected");
    assert_eq!(
        send(
            http.delete(format!("{base}/_emulator/faults"))
                .json(&json!({}))
        )
        .await
        .status,
        204
    );
    assert_eq!(api.get("WhoAmI").await.status, 200);
    let bad = send(
        http.put(format!("{base}/_emulator/faults"))
            .json(&json!({"unavailable_rate": 2.0})),
    )
    .await;
    assert_eq!(bad.status, 400);
}

#[tokio::test]
async fn cut_and_delayed_responses() {
    let emulator = Emulator::builder()
        .faults(
            FaultConfig::new(3)
                .cut(1.0)
                .delayed(1.0, Duration::from_millis(200)),
        )
        .start()
        .await
        .expect("started");
    // The token endpoint is faulted too: get a token with faults off, then turn them back on.
    let http = client();
    let base = emulator.base_url();
    send(http.delete(format!("{base}/_emulator/faults"))).await;
    let api = Api::new(&emulator).await;
    send(
        http.put(format!("{base}/_emulator/faults"))
            .json(&json!({"seed": 3, "cut_rate": 1.0, "delay_rate": 1.0, "delay_ms": 200})),
    )
    .await;
    let started = std::time::Instant::now();
    let response = api
        .request(reqwest::Method::GET, "WhoAmI")
        .send()
        .await
        .expect("headers arrive");
    assert_eq!(response.status(), 200);
    assert!(response.bytes().await.is_err(), "the body is cut short");
    assert!(started.elapsed() >= Duration::from_millis(200));
}
