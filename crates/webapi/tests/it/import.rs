//! The streaming importer against the emulator: conversions from the metadata (labels,
//! booleans, dates, money, lookups by id and by alternate key), unknown columns refused
//! before anything is sent, rows the service refuses reported while the rest is written,
//! upserts that can be repeated, and exactly N rows through cut connections.

use std::time::Duration;

use d365_emulator::{Emulator, FaultConfig};
use d365_webapi::{
    Client, ImportObserver, ImportOptions, ImportRow, Query, RetrySettings, RowConverter,
    WebApiError,
};
use futures_util::TryStreamExt as _;
use serde_json::{Value, json};

fn client(emulator: &Emulator) -> Client {
    let grant = crate::support::admin_grant(emulator);
    let mut retry = RetrySettings::default();
    retry.max_retries = 20;
    retry.base_delay = Duration::from_millis(10);
    retry.max_delay = Duration::from_millis(100);
    Client::builder(emulator.base_url(), grant)
        .retry(retry)
        .build()
        .unwrap()
}

async fn all(client: &Client, set: &str, select: &[&str]) -> Vec<Value> {
    client
        .query_all::<Value>(Query::new(set).select(select.iter().copied()))
        .try_collect()
        .await
        .unwrap()
}

fn rows(values: Vec<Value>) -> impl futures_util::Stream<Item = std::io::Result<ImportRow>> {
    futures_util::stream::iter(values.into_iter().enumerate().map(|(index, value)| {
        let Value::Object(map) = value else {
            panic!("rows are objects")
        };
        Ok(ImportRow::new(index as u64 + 1, map))
    }))
}

/// Records what the importer reports.
#[derive(Default)]
struct Recorder {
    sent: Vec<(u64, u64)>,
    finished: Vec<(u64, u64)>,
    rejected: Vec<(u64, String)>,
}

impl ImportObserver for Recorder {
    fn sending(&mut self, first: u64, last: u64) -> std::io::Result<()> {
        self.sent.push((first, last));
        Ok(())
    }

    fn rejected(&mut self, row: &ImportRow, reason: &str) -> std::io::Result<()> {
        self.rejected.push((row.number, reason.to_owned()));
        Ok(())
    }

    fn finished(
        &mut self,
        first: u64,
        last: u64,
        _: &d365_webapi::ChunkReport,
    ) -> std::io::Result<()> {
        self.finished.push((first, last));
        Ok(())
    }
}

#[tokio::test]
async fn rows_are_converted_with_the_metadata_and_bad_rows_rejected() {
    let emulator = Emulator::builder().start().await.unwrap();
    let client = client(&emulator);
    let parent = client
        .create(
            "accounts",
            &json!({"name": "Parent", "accountnumber": "P-1"}),
            &d365_webapi::RequestOptions::new(),
        )
        .await
        .unwrap()
        .id
        .unwrap();

    // A column the table does not have is refused before anything is sent.
    let mut converter = RowConverter::load(&client, "account", true).await.unwrap();
    let error = converter
        .prepare(&client, ["name", "acountnumber"])
        .await
        .unwrap_err();
    assert!(matches!(error, WebApiError::InvalidInput(_)), "{error}");
    let text = error.to_string();
    assert!(
        text.contains("`acountnumber`") && text.contains("`accountnumber`"),
        "{text}"
    );
    let error = converter.prepare(&client, ["createdon"]).await.unwrap_err();
    assert!(error.to_string().contains("cannot be written"), "{error}");

    let mut converter = RowConverter::load(&client, "accounts", true).await.unwrap();
    let input = vec![
        json!({"name": "A", "accountnumber": "A-1", "accountcategorycode": "preferred customer",
               "creditonhold": "yes", "revenue": "1234.5", "numberofemployees": "12",
               "lastonholdtime": "2024-05-01 09:30", "parentaccountid": parent.to_string()}),
        json!({"name": "B", "accountnumber": "A-2", "accountcategorycode": "2",
               "creditonhold": "0", "parentaccountid": "accountnumber=P-1"}),
        json!({"name": "C", "accountcategorycode": "Gold"}),
        json!({"name": "D", "numberofemployees": "many"}),
        json!({"name": "E", "parentaccountid": "accountnumber=NOPE"}),
        json!({"name": "F", "accountnumber": "A-6", "lastonholdtime": ""}),
    ];
    let mut recorder = Recorder::default();
    let summary = client
        .import(
            &mut converter,
            &ImportOptions::new().chunk_size(4),
            rows(input),
            &mut recorder,
        )
        .await
        .unwrap();
    assert_eq!(summary.created, 3, "{summary:?}");
    assert_eq!(summary.rejected, 3, "{summary:?}");
    let rejected: Vec<u64> = {
        let mut numbers: Vec<u64> = recorder.rejected.iter().map(|(n, _)| *n).collect();
        numbers.sort_unstable();
        numbers
    };
    assert_eq!(rejected, [3, 4, 5], "{:?}", recorder.rejected);
    assert!(
        recorder
            .rejected
            .iter()
            .any(|(n, reason)| *n == 3 && reason.contains("Preferred Customer (1)")),
        "{:?}",
        recorder.rejected
    );
    let finished: u64 = recorder.finished.iter().map(|(a, b)| b - a + 1).sum();
    assert!(
        finished >= 6,
        "every row is finished: {:?}",
        recorder.finished
    );

    let accounts = all(
        &client,
        "accounts",
        &[
            "name",
            "accountcategorycode",
            "creditonhold",
            "revenue",
            "numberofemployees",
            "lastonholdtime",
            "_parentaccountid_value",
        ],
    )
    .await;
    let by_name = |name: &str| {
        accounts
            .iter()
            .find(|account| account["name"] == name)
            .unwrap_or_else(|| panic!("{name} was imported: {accounts:?}"))
            .clone()
    };
    let a = by_name("A");
    assert_eq!(a["accountcategorycode"], 1);
    assert_eq!(a["creditonhold"], true);
    assert_eq!(a["revenue"], 1234.5);
    assert_eq!(a["numberofemployees"], 12);
    assert!(
        a["lastonholdtime"]
            .as_str()
            .unwrap()
            .starts_with("2024-05-01T09:30:00"),
        "{a}"
    );
    assert_eq!(a["_parentaccountid_value"], parent.to_string());
    let b = by_name("B");
    assert_eq!(b["accountcategorycode"], 2);
    assert_eq!(b["creditonhold"], false);
    assert_eq!(b["_parentaccountid_value"], parent.to_string());
    by_name("F");
    assert_eq!(accounts.len(), 4, "the parent and A, B, F");

    // A lookup with several targets names its table.
    let mut contacts = RowConverter::load(&client, "contact", true).await.unwrap();
    let summary = client
        .import(
            &mut contacts,
            &ImportOptions::new(),
            rows(vec![
                json!({"lastname": "Ng", "birthdate": "1990-02-03",
                       "parentcustomerid": "account(accountnumber=A-1)"}),
                json!({"lastname": "Li", "parentcustomerid": parent.to_string()}),
            ]),
            &mut (),
        )
        .await
        .unwrap();
    assert_eq!((summary.created, summary.rejected), (1, 1), "{summary:?}");
    let contacts = all(
        &client,
        "contacts",
        &["lastname", "_parentcustomerid_value"],
    )
    .await;
    assert_eq!(contacts.len(), 1);
    assert_eq!(
        contacts[0]["_parentcustomerid_value"], a["accountid"],
        "{contacts:?}"
    );
}

#[tokio::test]
async fn upserts_and_resent_rows_are_applied_once() {
    let emulator = Emulator::builder().start().await.unwrap();
    let client = client(&emulator);
    let input: Vec<Value> = (1..=50)
        .map(|n| json!({"name": format!("Row {n}"), "accountnumber": format!("U-{n}")}))
        .collect();
    for _ in 0..2 {
        let mut converter = RowConverter::load(&client, "accounts", false)
            .await
            .unwrap();
        let summary = client
            .import(
                &mut converter,
                &ImportOptions::new()
                    .upsert(["accountnumber"])
                    .chunk_size(20),
                rows(input.clone()),
                &mut (),
            )
            .await
            .unwrap();
        assert_eq!(summary.upserted, 50);
    }
    assert_eq!(all(&client, "accounts", &["accountid"]).await.len(), 50);

    // Create mode, run twice with the same seed, the second as if the first had stopped
    // with every row in flight: the ids match, nothing is created twice.
    let input: Vec<Value> = (1..=30)
        .map(|n| json!({"name": format!("Created {n}")}))
        .collect();
    for resend_through in [0, 30] {
        let mut converter = RowConverter::load(&client, "accounts", true).await.unwrap();
        let summary = client
            .import(
                &mut converter,
                &ImportOptions::new()
                    .id_seed("the same input")
                    .resend_through(resend_through)
                    .chunk_size(7),
                rows(input.clone()),
                &mut (),
            )
            .await
            .unwrap();
        assert_eq!(summary.created + summary.upserted, 30, "{summary:?}");
    }
    assert_eq!(all(&client, "accounts", &["accountid"]).await.len(), 80);

    // A dry run sends nothing.
    let mut converter = RowConverter::load(&client, "accounts", true).await.unwrap();
    let summary = client
        .import(
            &mut converter,
            &ImportOptions::new().dry_run(true),
            rows(vec![
                json!({"name": "dry"}),
                json!({"numberofemployees": "x"}),
            ]),
            &mut (),
        )
        .await
        .unwrap();
    assert_eq!((summary.validated, summary.rejected), (1, 1));
    assert_eq!(all(&client, "accounts", &["accountid"]).await.len(), 80);
}

#[tokio::test]
async fn a_broken_connection_does_not_shrink_the_chunks() {
    const ROWS: u64 = 12_000;
    let emulator = Emulator::builder()
        .faults(FaultConfig::new(5).cut(0.1))
        .start()
        .await
        .unwrap();
    let client = client(&emulator);
    let mut converter = RowConverter::load(&client, "accounts", true).await.unwrap();
    let input: Vec<Value> = (1..=ROWS)
        .map(|n| json!({"name": format!("Cut {n:04}")}))
        .collect();
    let summary = client
        .import(
            &mut converter,
            &ImportOptions::new().chunk_size(200),
            rows(input),
            &mut (),
        )
        .await
        .unwrap();
    assert_eq!(summary.created + summary.upserted, ROWS, "{summary:?}");
    let cuts = emulator.dataverse_stats().injected_cuts;
    assert!(cuts > 0, "cuts happened");
    // 60 chunks, each sent again once per cut (the metadata reads count among the cuts).
    // Halving the chunks on every cut took such a run to chunks of a row and thousands of
    // requests.
    assert!(
        summary.requests <= 60 + 2 * cuts,
        "{} requests for 60 chunks and {cuts} cuts",
        summary.requests
    );
    assert_eq!(all(&client, "accounts", &["name"]).await.len() as u64, ROWS);
}

#[tokio::test]
async fn cut_connections_leave_exactly_n_rows() {
    const ROWS: u64 = 600;
    let emulator = Emulator::builder()
        .faults(FaultConfig::new(11).unavailable(0.05).cut(0.15))
        .start()
        .await
        .unwrap();
    let client = client(&emulator);
    let mut converter = RowConverter::load(&client, "accounts", true).await.unwrap();
    let input: Vec<Value> = (1..=ROWS)
        .map(|n| json!({"name": format!("Chaos {n:04}")}))
        .collect();
    let summary = client
        .import(
            &mut converter,
            &ImportOptions::new().chunk_size(25),
            rows(input),
            &mut (),
        )
        .await
        .unwrap();
    assert_eq!(summary.created + summary.upserted, ROWS, "{summary:?}");
    let stats = emulator.dataverse_stats();
    assert!(stats.injected_cuts > 0, "cuts happened: {stats:?}");
    let names: Vec<String> = all(&client, "accounts", &["name"])
        .await
        .iter()
        .map(|row| row["name"].as_str().unwrap().to_owned())
        .collect();
    let unique: std::collections::HashSet<&String> = names.iter().collect();
    assert_eq!(names.len() as u64, ROWS);
    assert_eq!(unique.len() as u64, ROWS, "no row twice");
}

#[tokio::test]
async fn a_table_without_bulk_messages_is_imported_through_batches() {
    const ROWS: u64 = 250;
    let schema = d365_emulator::SchemaConfig::from_toml_str(
        r#"
[[tables]]
logical_name = "new_note"
entity_set_name = "new_notes"
primary_id = "new_noteid"
primary_name = "new_name"
bulk_messages = []
columns = [{ name = "new_code", type = "string", max_length = 20 }]
"#,
    )
    .unwrap();
    let emulator = Emulator::builder().schema(schema).start().await.unwrap();
    let client = client(&emulator);
    // The table refuses the bulk messages, as some of Dataverse's do.
    let refused = client
        .create_multiple("new_notes", &[json!({"new_name": "direct"})])
        .await
        .unwrap_err();
    assert!(
        refused
            .to_string()
            .contains("does not support entities of type 'new_note'"),
        "{refused}"
    );
    let mut converter = RowConverter::load(&client, "new_notes", true)
        .await
        .unwrap();
    let input: Vec<Value> = (1..=ROWS)
        .map(|n| json!({"new_name": format!("Note {n:03}"), "new_code": format!("N{n}")}))
        .collect();
    let summary = client
        .import(
            &mut converter,
            &ImportOptions::new().chunk_size(100),
            rows(input),
            &mut (),
        )
        .await
        .unwrap();
    assert_eq!(summary.created + summary.upserted, ROWS, "{summary:?}");
    assert_eq!(summary.rejected, 0, "{summary:?}");
    let names = all(&client, "new_notes", &["new_name"]).await;
    let unique: std::collections::HashSet<String> = names
        .iter()
        .map(|row| row["new_name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names.len() as u64, ROWS);
    assert_eq!(unique.len() as u64, ROWS, "no row twice");
}
