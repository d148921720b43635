//! Every operation of the client against the d365 emulator's Dataverse Web API, with a
//! real token from its Entra ID half, and the failure paths: missing records, ETag
//! conflicts, create-only and update-only upserts, unknown entity sets and columns, an
//! application without an application user, a caller without the privilege.

use std::time::Duration;

use d365_auth_client_credentials::ClientCredentials;
use d365_emulator::Emulator;
use d365_webapi::{
    Batch, Client, ErrorKind, Filter, Guid, Literal, Order, Query, RecordKey, RequestOptions,
    UpsertMode, etag, formatted_value,
};
use futures_util::TryStreamExt as _;
use serde_json::{Value, json};

async fn connect(emulator: &Emulator, client_id: &str, secret: secrecy::SecretString) -> Client {
    let grant = crate::support::app_grant(emulator, client_id, secret);
    Client::builder(emulator.base_url(), grant)
        .retry({
            let mut retry = d365_webapi::RetrySettings::default();
            retry.base_delay = Duration::from_millis(20);
            retry.max_delay = Duration::from_millis(200);
            retry
        })
        .build()
        .unwrap()
}

async fn admin_client(emulator: &Emulator) -> Client {
    let app = emulator.seeded().unwrap().confidential_app.clone();
    connect(emulator, &app.client_id, app.secret).await
}

#[tokio::test]
async fn who_am_i_names_the_application_user() {
    let emulator = Emulator::builder().start().await.unwrap();
    let client = admin_client(&emulator).await;
    let me = client.who_am_i().await.unwrap();
    assert_ne!(me.user_id, Guid::nil());
    assert_ne!(me.organization_id, Guid::nil());
    assert_eq!(client.who_am_i().await.unwrap(), me);
    emulator.shutdown().await;
}

#[tokio::test]
async fn records_are_created_read_updated_upserted_and_deleted() {
    let emulator = Emulator::builder().start().await.unwrap();
    let client = admin_client(&emulator).await;
    let none = RequestOptions::new();

    let created = client
        .create(
            "accounts",
            &json!({"name": "Contoso", "accountnumber": "C-1", "revenue": 1000}),
            &none,
        )
        .await
        .unwrap();
    let id = created.id.expect("OData-EntityId gives the id");
    assert!(created.url.unwrap().ends_with(&format!("accounts({id})")));

    let with_body = client
        .create(
            "accounts",
            &json!({"name": "Fabrikam"}),
            &RequestOptions::new().return_representation(),
        )
        .await
        .unwrap();
    assert_eq!(with_body.record.unwrap()["name"], "Fabrikam");

    let record = client
        .retrieve(
            "accounts",
            id,
            &RequestOptions::new().select(["name", "revenue"]),
        )
        .await
        .unwrap();
    assert_eq!(record["name"], "Contoso");
    let first_etag = etag(&record).expect("records carry @odata.etag").to_owned();
    let by_key = client
        .retrieve(
            "accounts",
            RecordKey::alternate([("accountnumber", Literal::from("C-1"))]),
            &none,
        )
        .await
        .unwrap();
    assert_eq!(by_key["name"], "Contoso");

    assert_eq!(
        client
            .retrieve_if_changed(
                "accounts",
                id,
                &first_etag,
                &RequestOptions::new().select(["name"])
            )
            .await
            .unwrap(),
        None
    );
    client
        .update("accounts", id, &json!({"name": "Contoso Ltd"}), &none)
        .await
        .unwrap();
    let stale = client
        .update(
            "accounts",
            id,
            &json!({"name": "x"}),
            &RequestOptions::new().if_match(first_etag.clone()),
        )
        .await
        .unwrap_err();
    assert_eq!(stale.kind(), ErrorKind::PreconditionFailed, "{stale}");
    assert!(
        client
            .retrieve_if_changed("accounts", id, &first_etag, &none)
            .await
            .unwrap()
            .is_some()
    );

    let missing = Guid::new_random();
    let error = client
        .update("accounts", missing, &json!({"name": "x"}), &none)
        .await
        .unwrap_err();
    assert_eq!(
        error.kind(),
        ErrorKind::NotFound,
        "update never creates: {error}"
    );

    let key = RecordKey::alternate([("accountnumber", Literal::from("U-1"))]);
    let error = client
        .upsert(
            "accounts",
            key.clone(),
            &json!({"name": "Upserted"}),
            UpsertMode::UpdateOnly,
            &none,
        )
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::NotFound);
    client
        .upsert(
            "accounts",
            key.clone(),
            &json!({"name": "Upserted"}),
            UpsertMode::CreateOnly,
            &none,
        )
        .await
        .unwrap();
    let error = client
        .upsert(
            "accounts",
            key.clone(),
            &json!({"name": "Again"}),
            UpsertMode::CreateOnly,
            &none,
        )
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::PreconditionFailed);
    client
        .upsert(
            "accounts",
            key.clone(),
            &json!({"name": "Again"}),
            UpsertMode::CreateOrUpdate,
            &none,
        )
        .await
        .unwrap();
    assert_eq!(
        client.retrieve("accounts", key, &none).await.unwrap()["name"],
        "Again"
    );

    let chosen = Guid::new_random();
    let created = client
        .create_with_id("accounts", chosen, &json!({"name": "Chosen"}), &none)
        .await
        .unwrap();
    assert_eq!(created.id, Some(chosen));
    assert_eq!(
        client.retrieve("accounts", chosen, &none).await.unwrap()["name"],
        "Chosen"
    );

    client.delete("accounts", id, &none).await.unwrap();
    let error = client.retrieve("accounts", id, &none).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::NotFound);
    assert_eq!(
        client
            .delete("accounts", id, &none)
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::NotFound
    );
    emulator.shutdown().await;
}

#[tokio::test]
async fn lookups_bind_and_associations_work() {
    let emulator = Emulator::builder().start().await.unwrap();
    let client = admin_client(&emulator).await;
    let none = RequestOptions::new();
    let account = client
        .create("accounts", &json!({"name": "Parent"}), &none)
        .await
        .unwrap()
        .id
        .unwrap();
    let contact = client
        .create("contacts", &json!({"lastname": "Ng", "parentcustomerid_account@odata.bind": format!("/accounts({account})")}), &none)
        .await
        .unwrap()
        .id
        .unwrap();
    let read = client
        .retrieve(
            "contacts",
            contact,
            &RequestOptions::new().formatted_values(),
        )
        .await
        .unwrap();
    assert_eq!(read["_parentcustomerid_value"], account.to_string());
    assert_eq!(
        formatted_value(&read, "_parentcustomerid_value"),
        Some("Parent")
    );
    client
        .set_reference("accounts", account, "primarycontactid", "contacts", contact)
        .await
        .unwrap();
    let parent = client.retrieve("accounts", account, &none).await.unwrap();
    assert_eq!(parent["_primarycontactid_value"], contact.to_string());
    client
        .disassociate("accounts", account, "primarycontactid", None)
        .await
        .unwrap();
    emulator.shutdown().await;
}

#[tokio::test]
async fn queries_filter_sort_count_and_page_through_every_row_once() {
    let emulator = Emulator::builder().start().await.unwrap();
    let client = admin_client(&emulator).await;
    let mut batch = Batch::new();
    batch.change_set(|set| {
        for n in 0..120 {
            set.create(
                "accounts",
                json!({"name": format!("Account {n:03}"), "revenue": n * 10}),
            );
        }
    });
    assert!(
        client
            .execute_batch(&batch)
            .await
            .unwrap()
            .iter()
            .all(d365_webapi::BatchResponse::is_success)
    );

    let query = Query::new("accounts")
        .select(["name", "revenue"])
        .filter(Filter::ge("revenue", 500).and(Filter::starts_with("name", "Account")))
        .order_by("revenue", Order::Desc)
        .count()
        .top(10);
    let page = client.query_page::<Value>(&query).await.unwrap();
    assert_eq!(page.records.len(), 10);
    assert_eq!(page.records[0]["name"], "Account 119");
    assert_eq!(page.count, Some(70));

    let names: Vec<String> = client
        .query_all::<Value>(
            Query::new("accounts")
                .select(["name"])
                .order_by("name", Order::Asc)
                .page_size(25),
        )
        .map_ok(|row| row["name"].as_str().unwrap().to_owned())
        .try_collect()
        .await
        .unwrap();
    assert_eq!(names.len(), 120);
    let mut unique = names.clone();
    unique.dedup();
    assert_eq!(unique.len(), 120, "every row exactly once");

    let quoted = client
        .create(
            "accounts",
            &json!({"name": "O'Neil & Sons #1 + 100%"}),
            &RequestOptions::new(),
        )
        .await
        .unwrap();
    let found = client
        .query_page::<Value>(
            &Query::new("accounts")
                .select(["name"])
                .filter(Filter::eq("name", "O'Neil & Sons #1 + 100%")),
        )
        .await
        .unwrap();
    assert_eq!(found.records.len(), 1, "literal escaping round-trips");
    assert!(quoted.id.is_some());

    let fetch = r#"<fetch count="50"><entity name="account"><attribute name="name"/><order attribute="name"/></entity></fetch>"#;
    let fetched: Vec<Value> = client
        .fetch_xml_all("accounts", fetch)
        .try_collect()
        .await
        .unwrap();
    assert_eq!(
        fetched.len(),
        121,
        "FetchXML paging cookies cover every row"
    );
    emulator.shutdown().await;
}

#[tokio::test]
async fn batches_apply_change_sets_atomically_and_report_each_part() {
    let emulator = Emulator::builder().start().await.unwrap();
    let client = admin_client(&emulator).await;
    let mut batch = Batch::new();
    batch.change_set(|set| {
        let account = set.create("accounts", json!({"name": "Fabrikam (batch)"}));
        let contact = set.create(
            "contacts",
            json!({"lastname": "Ng", "parentcustomerid_account@odata.bind": account.bind()}),
        );
        set.update_created(
            account,
            json!({"primarycontactid@odata.bind": contact.bind()}),
        );
    });
    batch.get("accounts?$select=name");
    let parts = client.execute_batch(&batch).await.unwrap();
    assert_eq!(parts.len(), 4);
    assert!(
        parts[..3]
            .iter()
            .all(|part| part.status.as_u16() == 204 && part.id.is_some())
    );
    assert_eq!(
        parts[3].body.as_ref().unwrap()["value"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // A failing part rolls its change set back.
    let mut failing = Batch::new();
    failing.change_set(|set| {
        set.create("accounts", json!({"name": "rolled back"}));
        set.create("accounts", json!({"nosuchcolumn": 1}));
    });
    let parts = client.execute_batch(&failing).await.unwrap();
    assert!(parts.iter().any(|part| !part.is_success()));
    let found = client
        .query_page::<Value>(&Query::new("accounts").filter(Filter::eq("name", "rolled back")))
        .await
        .unwrap();
    assert!(found.records.is_empty(), "the change set was atomic");
    emulator.shutdown().await;
}

#[tokio::test]
async fn dataverse_errors_are_typed_with_hints() {
    let emulator = Emulator::builder().start().await.unwrap();
    let client = admin_client(&emulator).await;
    let error = client
        .query_page::<Value>(&Query::new("nosuchset"))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::NotFound);
    assert_eq!(error.service().unwrap().code(), "0x8006088a");
    assert!(error.hint().unwrap().contains("entity set"));

    let error = client
        .query_page::<Value>(&Query::new("accounts").select(["Name"]))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::BadRequest);
    assert!(
        error
            .to_string()
            .contains("Could not find a property named 'Name'"),
        "{error}"
    );
    emulator.shutdown().await;
}

#[tokio::test]
async fn an_app_without_an_application_user_and_a_reader_get_typed_refusals() {
    let emulator = Emulator::builder().start().await.unwrap();
    let seeded = emulator.seeded().unwrap().clone();

    let outsider = connect(
        &emulator,
        &seeded.no_user_app.client_id,
        seeded.no_user_app.secret.clone(),
    )
    .await;
    let error = outsider.who_am_i().await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::NotAMember, "{error}");
    assert_eq!(error.service().unwrap().code(), "0x80072560");
    assert!(error.hint().unwrap().contains("create an application user"));

    let reader = connect(
        &emulator,
        &seeded.reader_app.client_id,
        seeded.reader_app.secret.clone(),
    )
    .await;
    reader.who_am_i().await.unwrap();
    reader
        .query_page::<Value>(&Query::new("accounts").top(1))
        .await
        .unwrap();
    let error = reader
        .create(
            "accounts",
            &json!({"name": "not allowed"}),
            &RequestOptions::new(),
        )
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Forbidden, "{error}");
    assert_eq!(error.service().unwrap().code(), "0x80040220");
    assert!(
        error.to_string().contains("prvCreateaccount")
            || error.to_string().to_lowercase().contains("create"),
        "{error}"
    );
    emulator.shutdown().await;
}

#[tokio::test]
async fn a_token_for_another_audience_is_refused_and_refreshed_once() {
    let emulator = Emulator::builder()
        .organization("https://other.crm.dynamics.com")
        .start()
        .await
        .unwrap();
    let grant = crate::support::admin_grant(&emulator);
    // The grant asks for a token for another resource: Dataverse answers 401, the client
    // renews once, gets the same audience again, and reports Unauthorized.
    struct OtherAudience(ClientCredentials);
    impl std::fmt::Debug for OtherAudience {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("OtherAudience")
        }
    }
    #[d365_auth_core::async_trait]
    impl d365_auth_core::TokenProvider for OtherAudience {
        async fn request_token(
            &self,
            _: &d365_auth_core::TokenRequest,
        ) -> Result<d365_auth_core::AccessToken, d365_auth_core::AuthError> {
            let other =
                d365_auth_core::TokenRequest::for_url("https://other.crm.dynamics.com").unwrap();
            self.0.request_token(&other).await
        }
        fn grant(&self) -> d365_auth_core::Grant {
            d365_auth_core::Grant::new("client_credentials")
        }
        fn cache_key(&self) -> String {
            "other-audience".into()
        }
    }
    let client = Client::builder(emulator.base_url(), OtherAudience(grant))
        .build()
        .unwrap();
    let error = client.who_am_i().await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Unauthorized, "{error}");
    emulator.shutdown().await;
}
