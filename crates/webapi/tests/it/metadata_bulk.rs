//! Table metadata, bulk operations, `$expand` and formatted values through the client
//! against the emulator: what `d365 tables`, `d365 columns` and `d365 import` stand on.

use d365_emulator::Emulator;
use d365_webapi::{
    Client, ErrorKind, Filter, MAX_BULK_ROWS, Query, RecordKey, RequestOptions, WebApiError,
    formatted_value,
};
use futures_util::TryStreamExt as _;
use serde_json::{Value, json};

async fn account_count(client: &Client) -> usize {
    client
        .query_all::<Value>(Query::new("accounts").select(["accountid"]))
        .try_collect::<Vec<_>>()
        .await
        .unwrap()
        .len()
}

async fn admin(emulator: &Emulator) -> Client {
    let app = emulator.seeded().unwrap().confidential_app.clone();
    let grant = crate::support::app_grant(emulator, &app.client_id, app.secret);
    Client::builder(emulator.base_url(), grant).build().unwrap()
}

#[tokio::test]
async fn tables_and_columns_come_from_the_metadata_api() {
    let emulator = Emulator::builder().start().await.unwrap();
    let client = admin(&emulator).await;

    let tables = client.tables().await.unwrap();
    let account = tables
        .iter()
        .find(|table| table.logical_name == "account")
        .expect("account is listed");
    assert_eq!(account.entity_set_name, "accounts");
    assert_eq!(account.primary_id_attribute, "accountid");
    assert_eq!(account.primary_name_attribute.as_deref(), Some("name"));
    assert_eq!(account.display_name.as_deref(), Some("Account"));
    assert!(
        tables
            .windows(2)
            .all(|w| w[0].logical_name <= w[1].logical_name)
    );

    assert_eq!(&client.table("account").await.unwrap(), account);
    assert_eq!(
        &*client.table_for_entity_set("accounts").await.unwrap(),
        account
    );
    let missing = client.table("nosuchtable").await.unwrap_err();
    assert_eq!(missing.kind(), ErrorKind::NotFound, "{missing}");
    let unknown_set = client.table_for_entity_set("nosuchsets").await.unwrap_err();
    assert!(
        unknown_set.to_string().contains("nosuchsets"),
        "{unknown_set}"
    );
    let hostile = client.table("account')/x").await.unwrap_err();
    assert!(matches!(hostile, WebApiError::InvalidInput(_)), "{hostile}");

    let columns = client.columns("account").await.unwrap();
    let by_name = |name: &str| {
        columns
            .iter()
            .find(|column| column.logical_name == name)
            .unwrap_or_else(|| panic!("{name} is a column of account"))
    };
    let category = by_name("accountcategorycode");
    assert_eq!(category.attribute_type, "Picklist");
    assert_eq!(category.option_value("preferred customer"), Some(1));
    assert_eq!(category.option_value("Standard"), Some(2));
    assert_eq!(category.option_value("Gold"), None);
    let name = by_name("name");
    assert_eq!(name.attribute_type, "String");
    assert!(name.is_primary_name && name.is_writable());
    assert!(name.max_length.is_some());
    let contact = by_name("primarycontactid");
    assert_eq!(contact.attribute_type, "Lookup");
    assert_eq!(contact.targets, ["contact"]);
    let state = by_name("statecode");
    assert!(
        state.options.iter().any(|option| option.value == 0),
        "{state:?}"
    );
    assert!(!by_name("createdon").is_valid_for_create);
    emulator.shutdown().await;
}

#[tokio::test]
async fn bulk_operations_write_many_rows_in_one_request_each() {
    let emulator = Emulator::builder().start().await.unwrap();
    let client = admin(&emulator).await;
    let seeded = account_count(&client).await;

    let rows: Vec<Value> = (0..25)
        .map(|n| json!({"name": format!("Bulk {n}"), "accountnumber": format!("B-{n}")}))
        .collect();
    let ids = client.create_multiple("accounts", &rows).await.unwrap();
    assert_eq!(ids.len(), 25);
    let first: Value = client
        .retrieve("accounts", ids[0], &RequestOptions::new().select(["name"]))
        .await
        .unwrap();
    assert_eq!(
        first["name"], "Bulk 0",
        "ids come back in the order of the rows"
    );

    let changes: Vec<Value> = ids
        .iter()
        .take(3)
        .map(|id| json!({"accountid": id.to_string(), "revenue": 7}))
        .collect();
    client.update_multiple("accounts", &changes).await.unwrap();
    let updated = client
        .query_all::<Value>(Query::new("accounts").filter(Filter::eq("revenue", 7)))
        .try_collect::<Vec<_>>()
        .await
        .unwrap();
    assert_eq!(updated.len(), 3);

    // An upsert by alternate key, sent twice, leaves the same rows: one new, one changed.
    let upserts = [
        json!({"accountnumber": "B-0", "name": "Renamed"}),
        json!({"accountnumber": "B-new", "name": "New by key"}),
    ];
    for _ in 0..2 {
        client
            .upsert_multiple("accounts", &["accountnumber"], &upserts)
            .await
            .unwrap();
    }
    let renamed: Value = client
        .retrieve(
            "accounts",
            RecordKey::alternate([("accountnumber", "B-0".into())]),
            &RequestOptions::new(),
        )
        .await
        .unwrap();
    assert_eq!(renamed["name"], "Renamed");
    assert_eq!(
        account_count(&client).await,
        seeded + 26,
        "25 created, one more by the upsert sent twice"
    );

    // Refused before sending, with the row that was wrong.
    let error = client
        .update_multiple("accounts", &[json!({"name": "no id"})])
        .await
        .unwrap_err();
    assert!(error.to_string().contains("row 0") && error.to_string().contains("accountid"));
    let error = client
        .upsert_multiple("accounts", &["accountnumber"], &[json!({"name": "no key"})])
        .await
        .unwrap_err();
    assert!(error.to_string().contains("accountnumber"), "{error}");
    let error = client
        .create_multiple("accounts", &[json!("not an object")])
        .await
        .unwrap_err();
    assert!(matches!(error, WebApiError::InvalidInput(_)), "{error}");
    let too_many = vec![json!({"name": "x"}); MAX_BULK_ROWS + 1];
    let error = client
        .create_multiple("accounts", &too_many)
        .await
        .unwrap_err();
    assert!(error.to_string().contains("at most 1000"), "{error}");
    assert!(
        client
            .create_multiple("accounts", &[])
            .await
            .unwrap()
            .is_empty()
    );

    // All or nothing: one bad row (a column the table lacks) and no row is created.
    let error = client
        .create_multiple(
            "accounts",
            &[
                json!({"name": "fine"}),
                json!({"name": "bad", "nosuchcolumn": 1}),
            ],
        )
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::BadRequest, "{error}");
    assert!(error.to_string().contains("nosuchcolumn"), "{error}");
    assert_eq!(
        account_count(&client).await,
        seeded + 26,
        "nothing of it was created"
    );
    emulator.shutdown().await;
}

#[tokio::test]
async fn expanded_and_formatted_values_reach_every_page() {
    let emulator = Emulator::builder().start().await.unwrap();
    let client = admin(&emulator).await;
    let contact = client
        .create(
            "contacts",
            &json!({"firstname": "Ada", "lastname": "Lovelace"}),
            &RequestOptions::new(),
        )
        .await
        .unwrap()
        .id
        .unwrap();
    let rows: Vec<Value> = (0..5)
        .map(|n| {
            json!({
                "name": format!("Expanded {n}"),
                "accountcategorycode": 1,
                "primarycontactid@odata.bind": format!("/contacts({contact})"),
            })
        })
        .collect();
    client.create_multiple("accounts", &rows).await.unwrap();

    let query = Query::new("accounts")
        .select(["name", "accountcategorycode"])
        .filter(Filter::eq("accountcategorycode", 1))
        .expand(
            "primarycontactid",
            Query::new("contacts").select(["fullname"]),
        )
        .formatted_values()
        .page_size(2);
    let records = client
        .query_all::<Value>(query)
        .try_collect::<Vec<_>>()
        .await
        .unwrap();
    assert_eq!(records.len(), 5, "three pages of two");
    for record in &records {
        assert_eq!(
            record["primarycontactid"]["fullname"], "Ada Lovelace",
            "{record}"
        );
        assert_eq!(
            formatted_value(record, "accountcategorycode"),
            Some("Preferred Customer"),
            "every page asks for formatted values: {record}"
        );
    }
    emulator.shutdown().await;
}
