//! A `$batch` over Dataverse's 1,000-operation limit, against the emulator (which refuses
//! more than 1,000 parts in one request): it is sent as several batches, in order, each
//! change set whole — so `$n` references inside a change set still resolve — and without
//! `continue_on_error` nothing is sent after a batch that held a failure.

use std::time::Duration;

use d365_emulator::Emulator;
use d365_webapi::{Batch, Client, Filter, Literal, Query, RecordKey, RequestOptions};
use serde_json::{Value, json};

async fn admin_client(emulator: &Emulator) -> Client {
    let mut retry = d365_webapi::RetrySettings::default();
    retry.base_delay = Duration::from_millis(20);
    retry.max_delay = Duration::from_millis(200);
    Client::builder(emulator.base_url(), crate::support::admin_grant(emulator))
        .retry(retry)
        .build()
        .unwrap()
}

async fn count_named(client: &Client, prefix: &str) -> usize {
    let query = Query::new("accounts")
        .select(["name"])
        .filter_raw(format!("startswith(name,'{prefix}')"))
        .page_size(5000);
    let mut rows = 0;
    let mut page = client.query_page::<Value>(&query).await.unwrap();
    loop {
        rows += page.records.len();
        match page.next_link.take() {
            Some(link) => page = client.next_page::<Value>(&link, Some(5000)).await.unwrap(),
            None => return rows,
        }
    }
}

#[tokio::test]
async fn a_batch_of_2500_operations_is_split_in_order_with_change_sets_whole() {
    let emulator = Emulator::builder().start().await.unwrap();
    let client = admin_client(&emulator).await;
    let key = RecordKey::alternate([("accountnumber", Literal::from("SPLIT-KEY"))]);
    let mut batch = Batch::new();
    // Operation 1 creates the record the last operation updates: only in order does the
    // update find it.
    batch.change_set(|set| {
        set.upsert("accounts", &key, json!({"name": "split-key first"}));
    });
    let mut operations = 1;
    while operations < 2499 {
        if operations % 997 == 0 {
            // A change set across what would be a batch boundary, with a reference.
            batch.change_set(|set| {
                let created = set.create("accounts", json!({"name": "split-set"}));
                set.update_created(created, json!({"name": "split-set updated"}));
                set.create("accounts", json!({"name": "split-set third"}));
            });
            operations += 3;
        } else {
            batch.request(
                http::Method::POST,
                "accounts",
                Some(json!({"name": format!("split-{operations:04}")})),
            );
            operations += 1;
        }
    }
    batch.change_set(|set| {
        set.update("accounts", &key, json!({"name": "split-key last"}));
    });
    operations += 1;
    assert_eq!(batch.len(), operations);
    assert!(operations > 2000);

    let parts = client.execute_batch(&batch).await.unwrap();
    assert_eq!(parts.len(), operations, "one answer per operation");
    assert!(
        parts.iter().all(d365_webapi::BatchResponse::is_success),
        "{:?}",
        parts.iter().find(|part| !part.is_success())
    );
    let last = client
        .retrieve("accounts", key, &RequestOptions::new().select(["name"]))
        .await
        .unwrap();
    assert_eq!(
        last["name"], "split-key last",
        "the operations ran in order"
    );
    // The answers are in the operations' order: the second answer is `split-0001`.
    let second = client
        .retrieve(
            "accounts",
            parts[1].id.unwrap(),
            &RequestOptions::new().select(["name"]),
        )
        .await
        .unwrap();
    assert_eq!(second["name"], "split-0001");
    let updated = client
        .query_page::<Value>(
            &Query::new("accounts").filter(Filter::eq("name", "split-set updated")),
        )
        .await
        .unwrap();
    assert_eq!(
        updated.records.len(),
        2,
        "each change set's `$1` reached its own create"
    );
    emulator.shutdown().await;
}

#[tokio::test]
async fn a_failure_stops_a_split_batch_unless_it_continues_on_error() {
    let emulator = Emulator::builder().start().await.unwrap();
    let client = admin_client(&emulator).await;
    let build = |prefix: &str, continue_on_error: bool| {
        let mut batch = if continue_on_error {
            Batch::new().continue_on_error()
        } else {
            Batch::new()
        };
        batch.request(
            http::Method::POST,
            "accounts",
            Some(json!({"nosuchcolumn": 1})),
        );
        for index in 1..1500 {
            batch.request(
                http::Method::POST,
                "accounts",
                Some(json!({"name": format!("{prefix}-{index}")})),
            );
        }
        batch
    };
    let parts = client.execute_batch(&build("stop", false)).await.unwrap();
    assert!(!parts[0].is_success());
    assert!(parts.len() < 1000, "the answers end at the failure");
    assert_eq!(
        count_named(&client, "stop-").await,
        0,
        "no later batch was sent"
    );

    let parts = client.execute_batch(&build("go", true)).await.unwrap();
    assert_eq!(parts.len(), 1500);
    assert!(!parts[0].is_success());
    assert_eq!(count_named(&client, "go-").await, 1499);
    emulator.shutdown().await;
}

#[tokio::test]
async fn a_change_set_over_the_limit_is_refused_before_anything_is_sent() {
    let emulator = Emulator::builder().start().await.unwrap();
    let client = admin_client(&emulator).await;
    let mut batch = Batch::new();
    batch.change_set(|set| {
        for index in 0..1001 {
            set.create("accounts", json!({"name": format!("huge-{index}")}));
        }
    });
    let error = client.execute_batch(&batch).await.unwrap_err();
    assert_eq!(error.kind(), d365_webapi::ErrorKind::InvalidInput);
    assert!(error.to_string().contains("cannot be split"), "{error}");
    assert_eq!(count_named(&client, "huge-").await, 0);
    emulator.shutdown().await;
}
