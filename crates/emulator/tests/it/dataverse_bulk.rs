//! Bulk operations: `CreateMultiple`, `UpdateMultiple` and `UpsertMultiple` bound to an
//! entity set (all or nothing), their payload errors and limits, and `BulkDelete` as an
//! asynchronous job polled through `asyncoperations`.

use std::time::Duration;

use d365_emulator::Emulator;
use serde_json::{Value, json};

use crate::common::{Api, assert_error};

fn account(name: &str) -> Value {
    json!({"@odata.type": "Microsoft.Dynamics.CRM.account", "name": name})
}

async fn count(api: &Api, filter: &str) -> usize {
    let reply = api
        .get(&format!("accounts?$select=name&$filter={filter}"))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.body["value"].as_array().expect("value").len()
}

#[tokio::test]
async fn create_update_and_upsert_multiple() {
    let emulator = Emulator::builder().start().await.expect("started");
    let api = Api::new(&emulator).await;
    let root = api.root.clone();

    let reply = api
        .post(
            "accounts/Microsoft.Dynamics.CRM.CreateMultiple",
            &json!({"Targets": [account("Bulk 1"), account("Bulk 2"), {"@odata.type": "Microsoft.Dynamics.CRM.account", "name": "Bulk 3", "accountnumber": "B3"}]}),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(
        reply.body["@odata.context"],
        format!("{root}$metadata#Microsoft.Dynamics.CRM.CreateMultipleResponse")
    );
    let ids: Vec<String> = reply.body["Ids"]
        .as_array()
        .expect("Ids")
        .iter()
        .map(|v| v.as_str().expect("id").to_owned())
        .collect();
    assert_eq!(ids.len(), 3);
    let first = api.get(&format!("accounts({})", ids[0])).await;
    assert_eq!(first.body["name"], "Bulk 1");
    assert_eq!(first.body["statuscode"], 1);
    assert!(first.body["_ownerid_value"].is_string());

    let reply = api
        .post(
            "accounts/Microsoft.Dynamics.CRM.UpdateMultiple",
            &json!({"Targets": [
                {"@odata.type": "Microsoft.Dynamics.CRM.account", "accountid": ids[0], "telephone1": "555-0100"},
                {"@odata.type": "Microsoft.Dynamics.CRM.account", "accountid": ids[1], "name": "Bulk 2b"},
            ]}),
        )
        .await;
    assert_eq!(reply.status, 204, "{}", reply.body);
    assert_eq!(
        api.get(&format!("accounts({})", ids[0])).await.body["telephone1"],
        "555-0100"
    );
    assert_eq!(
        api.get(&format!("accounts({})", ids[1])).await.body["name"],
        "Bulk 2b"
    );

    // Upsert: an existing key updates, a new key creates, a primary key in the body works.
    let reply = api
        .post(
            "accounts/Microsoft.Dynamics.CRM.UpsertMultiple",
            &json!({"Targets": [
                {"@odata.type": "Microsoft.Dynamics.CRM.account", "@odata.id": "accounts(accountnumber='B3')", "name": "Bulk 3b"},
                {"@odata.type": "Microsoft.Dynamics.CRM.account", "@odata.id": "accounts(accountnumber='B4')", "name": "Bulk 4"},
                {"@odata.type": "Microsoft.Dynamics.CRM.account", "accountid": ids[1], "name": "Bulk 2c"},
            ]}),
        )
        .await;
    assert_eq!(reply.status, 204, "{}", reply.body);
    assert_eq!(
        api.get("accounts(accountnumber='B3')?$select=name")
            .await
            .body["name"],
        "Bulk 3b"
    );
    assert_eq!(
        api.get("accounts(accountnumber='B4')?$select=name")
            .await
            .body["name"],
        "Bulk 4"
    );
    assert_eq!(
        api.get(&format!("accounts({})", ids[1])).await.body["name"],
        "Bulk 2c"
    );
    assert_eq!(count(&api, "startswith(name,'Bulk')").await, 4);
}

#[tokio::test]
async fn bulk_requests_are_all_or_nothing_and_checked() {
    let emulator = Emulator::builder().start().await.expect("started");
    let api = Api::new(&emulator).await;
    // The third target is too long: nothing is created.
    let long = "x".repeat(200);
    let reply = api
        .post(
            "accounts/Microsoft.Dynamics.CRM.CreateMultiple",
            &json!({"Targets": [account("Atomic 1"), account("Atomic 2"), account(&long)]}),
        )
        .await;
    assert_error(
        &reply,
        400,
        "0x80044331",
        "exceeded the maximum allowed length",
    );
    assert_eq!(count(&api, "startswith(name,'Atomic')").await, 0);

    let existing = api.create("accounts", &json!({"name": "Keep"})).await;
    let reply = api
        .post(
            "accounts/Microsoft.Dynamics.CRM.UpdateMultiple",
            &json!({"Targets": [
                {"@odata.type": "Microsoft.Dynamics.CRM.account", "accountid": existing, "name": "Changed"},
                {"@odata.type": "Microsoft.Dynamics.CRM.account", "accountid": "00000000-0000-0000-0000-0000000000aa", "name": "Missing"},
            ]}),
        )
        .await;
    assert_error(&reply, 404, "0x80040217", "Does Not Exist");
    assert_eq!(
        api.get(&format!("accounts({existing})")).await.body["name"],
        "Keep"
    );

    let too_many: Vec<Value> = (0..10_001).map(|i| account(&format!("n{i}"))).collect();
    let cases: Vec<(&str, Value, u16, &str, &str)> = vec![
        (
            "accounts/Microsoft.Dynamics.CRM.CreateMultiple",
            json!({"Targets": [{"name": "no type"}]}),
            400,
            "0x80048d19",
            "has no '@odata.type'",
        ),
        (
            "accounts/Microsoft.Dynamics.CRM.CreateMultiple",
            json!({"Targets": [{"@odata.type": "Microsoft.Dynamics.CRM.contact", "lastname": "x"}]}),
            400,
            "0x80048d19",
            "one table per request",
        ),
        (
            "accounts/Microsoft.Dynamics.CRM.CreateMultiple",
            json!({"Records": []}),
            400,
            "0x80048d19",
            "'Targets'",
        ),
        (
            "accounts/Microsoft.Dynamics.CRM.CreateMultiple",
            json!({"Targets": too_many}),
            400,
            "0x80040203",
            "at most 10000",
        ),
        (
            "accounts/Microsoft.Dynamics.CRM.UpsertMultiple",
            json!({"Targets": [{"@odata.type": "Microsoft.Dynamics.CRM.account", "@odata.id": "https://elsewhere/api/data/v9.2/accounts(accountnumber='Z')", "name": "z"}]}),
            400,
            "0x80048d19",
            "relative",
        ),
        (
            "accounts/Microsoft.Dynamics.CRM.UpsertMultiple",
            json!({"Targets": [{"@odata.type": "Microsoft.Dynamics.CRM.account", "@odata.id": "accounts(accountnumber='NEW')", "accountnumber": "NEW"}]}),
            400,
            "0x80040216",
            "An unexpected error occurred.",
        ),
        (
            "accounts/Microsoft.Dynamics.CRM.DeleteMultiple",
            json!({"Targets": []}),
            400,
            "0x80040216",
            "DeleteMultiple has not yet been implemented.",
        ),
        (
            "accounts/Microsoft.Dynamics.CRM.NoSuchAction",
            json!({}),
            404,
            "0x8006088a",
            "NoSuchAction",
        ),
    ];
    for (path, body, status, code, message) in cases {
        let reply = api.post(path, &body).await;
        assert_error(&reply, status, code, message);
    }
    let reply = api
        .get("accounts/Microsoft.Dynamics.CRM.CreateMultiple")
        .await;
    assert_eq!(reply.status, 404);
}

#[tokio::test]
async fn bulk_delete_runs_as_a_job_polled_through_asyncoperations() {
    let emulator = Emulator::builder().start().await.expect("started");
    let api = Api::new(&emulator).await;
    let targets: Vec<Value> = (0..1200)
        .map(|i| json!({"@odata.type": "Microsoft.Dynamics.CRM.account", "name": format!("Doomed {i}"), "address1_city": "Gone"}))
        .collect();
    let reply = api
        .post(
            "accounts/Microsoft.Dynamics.CRM.CreateMultiple",
            &json!({"Targets": targets}),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    api.create(
        "accounts",
        &json!({"name": "Survivor", "address1_city": "Here"}),
    )
    .await;

    let reply = api
        .post(
            "BulkDelete",
            &json!({
                "QuerySet": [{
                    "@odata.type": "Microsoft.Dynamics.CRM.QueryExpression",
                    "EntityName": "account",
                    "ColumnSet": {"AllColumns": true},
                    "Criteria": {
                        "FilterOperator": "And",
                        "Conditions": [{"AttributeName": "address1_city", "Operator": "Equal", "Values": [{"Value": "Gone", "Type": "System.String"}]}],
                    },
                    "Distinct": false,
                }],
                "JobName": "Remove the doomed",
                "SendEmailNotification": false,
                "ToRecipients": [],
                "CCRecipients": [],
                "RecurrencePattern": "",
                "StartDateTime": "2024-01-01T00:00:00Z",
            }),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert!(
        reply.body["@odata.context"]
            .as_str()
            .expect("context")
            .ends_with("$metadata#Microsoft.Dynamics.CRM.BulkDeleteResponse")
    );
    let job = reply.body["JobId"].as_str().expect("JobId").to_owned();
    let mut state = Value::Null;
    for _ in 0..400 {
        state = api
            .get(&format!(
                "asyncoperations({job})?$select=statecode,statuscode,name,operationtype"
            ))
            .await
            .body;
        if state["statecode"] == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(state["statecode"], 3, "{state}");
    assert_eq!(state["statuscode"], 30, "{state}");
    assert_eq!(state["name"], "Remove the doomed");
    assert_eq!(state["operationtype"], 13);
    assert_eq!(count(&api, "address1_city eq 'Gone'").await, 0);
    assert_eq!(count(&api, "address1_city eq 'Here'").await, 1);

    // Refused requests: an unknown table, an unknown operator, a missing parameter.
    let query = |entity: &str, operator: &str| {
        json!({
            "QuerySet": [{"EntityName": entity, "Criteria": {"Conditions": [{"AttributeName": "name", "Operator": operator, "Values": ["x"]}]}}],
            "JobName": "j", "SendEmailNotification": false, "ToRecipients": [], "CCRecipients": [],
            "RecurrencePattern": "", "StartDateTime": "2024-01-01T00:00:00Z",
        })
    };
    let reply = api.post("BulkDelete", &query("nosuch", "Equal")).await;
    assert_error(
        &reply,
        400,
        "0x80041102",
        "'nosuch' with namemapping = 'Logical'",
    );
    let reply = api.post("BulkDelete", &query("account", "Sounds")).await;
    assert_error(&reply, 400, "0x80040203", "'Sounds'");
    let reply = api.post("BulkDelete", &json!({"QuerySet": []})).await;
    assert_error(&reply, 400, "0x80040203", "QuerySet");
}
