//! The store and the schema: a data file survives a restart; tables from a schema file are
//! served with typed columns, option set labels, lookups and alternate keys, and appear in
//! the service document and `$metadata`.

use d365_emulator::{Emulator, SchemaConfig};
use reqwest::Method;
use serde_json::json;

use crate::common::{Api, assert_error, send};

const SCHEMA: &str = r#"
[[tables]]
logical_name = "new_project"
entity_set_name = "new_projects"
primary_id = "new_projectid"
primary_name = "new_name"
columns = [
  { name = "new_code", type = "string", max_length = 10 },
  { name = "new_budget", type = "money" },
  { name = "new_hours", type = "int" },
  { name = "new_rate", type = "decimal" },
  { name = "new_active", type = "bool" },
  { name = "new_start", type = "datetime" },
  { name = "new_ref", type = "guid" },
  { name = "new_stage", type = "optionset", options = [{ value = 1, label = "Draft" }, { value = 2, label = "Live" }] },
  { name = "new_accountid", type = "lookup", target = "account", relationship = "new_account_projects" },
]
keys = [{ name = "new_code_key", columns = ["new_code", "new_hours"] }]
"#;

#[tokio::test]
async fn data_survives_a_restart() {
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("dataverse.sqlite");
    let id = {
        let emulator = Emulator::builder()
            .data_file(&file)
            .start()
            .await
            .expect("started");
        let api = Api::new(&emulator).await;
        let id = api.create("accounts", &json!({"name": "Persistent"})).await;
        emulator.shutdown().await;
        id
    };
    let emulator = Emulator::builder()
        .data_file(&file)
        .start()
        .await
        .expect("restarted");
    let api = Api::new(&emulator).await;
    let reply = api.get(&format!("accounts({id})")).await;
    assert_eq!(reply.body["name"], "Persistent", "{}", reply.body);
    assert_eq!(api.get("WhoAmI").await.status, 200, "seeding is idempotent");
    let etag = reply.body["@odata.etag"].as_str().expect("etag").to_owned();
    api.patch(&format!("accounts({id})"), &json!({"name": "Changed"}))
        .await;
    let after = api.get(&format!("accounts({id})")).await;
    assert_ne!(
        after.body["@odata.etag"],
        etag.as_str(),
        "versions continue after a restart"
    );
    assert_eq!(emulator.generate_accounts(10).await.expect("generated"), 10);
}

#[tokio::test]
async fn schema_file_tables_are_served() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("schema.toml");
    std::fs::write(&path, SCHEMA).expect("written");
    let emulator = Emulator::builder()
        .schema_file(&path)
        .start()
        .await
        .expect("started");
    let api = Api::new(&emulator).await;
    let account = api.create("accounts", &json!({"name": "Owner"})).await;
    let body = json!({
        "new_name": "Rollout", "new_code": "P1", "new_budget": 2500.5, "new_hours": 12, "new_rate": 1.25,
        "new_active": true, "new_start": "2024-03-04T05:06:07Z", "new_ref": "6C1D2E3F-0000-0000-0000-00000000A001",
        "new_stage": 2, "new_accountid@odata.bind": format!("/accounts({account})"),
    });
    let id = api.create("new_projects", &body).await;
    let reply = send(
        api.request(Method::GET, "new_projects(new_code='P1',new_hours=12)")
            .header(
                "Prefer",
                "odata.include-annotations=\"OData.Community.Display.V1.FormattedValue\"",
            ),
    )
    .await;
    let record = &reply.body;
    assert_eq!(record["new_projectid"], id.as_str(), "{record}");
    assert_eq!(
        record["new_stage@OData.Community.Display.V1.FormattedValue"],
        "Live"
    );
    assert_eq!(
        record["new_budget@OData.Community.Display.V1.FormattedValue"],
        "$2,500.50"
    );
    assert_eq!(
        record["new_start@OData.Community.Display.V1.FormattedValue"],
        "3/4/2024 5:06 AM"
    );
    assert_eq!(
        record["_new_accountid_value@OData.Community.Display.V1.FormattedValue"],
        "Owner"
    );
    assert_eq!(record["new_ref"], "6c1d2e3f-0000-0000-0000-00000000a001");
    assert_eq!(record["new_active"], true);
    let related = api
        .get(&format!(
            "accounts({account})/new_account_projects?$select=new_name"
        ))
        .await;
    assert_eq!(
        related.body["value"][0]["new_name"], "Rollout",
        "{}",
        related.body
    );
    assert_error(
        &api.post("new_projects", &json!({"new_code": "TOO-LONG-CODE"}))
            .await,
        400,
        "0x80044331",
        "'new_code'",
    );
    assert_error(
        &api.post("new_projects", &json!({"new_code": "P1", "new_hours": 12}))
            .await,
        412,
        "0x80040237",
        "",
    );

    let service = api.get("").await;
    assert_eq!(
        service.body["@odata.context"],
        format!("{}$metadata", emulator.web_api_url())
    );
    let sets: Vec<&str> = service.body["value"]
        .as_array()
        .expect("sets")
        .iter()
        .map(|s| s["name"].as_str().expect("name"))
        .collect();
    assert!(
        sets.contains(&"new_projects") && sets.contains(&"accounts"),
        "{sets:?}"
    );
    let metadata = send(api.request(Method::GET, "$metadata")).await;
    let csdl = metadata.body.as_str().expect("xml");
    assert!(csdl.contains(r#"<EntityType Name="new_project" BaseType="mscrm.crmbaseentity">"#));
    assert!(csdl.contains(r#"<Property Name="new_budget" Type="Edm.Decimal""#));
    assert!(csdl.contains(
        r#"<NavigationProperty Name="new_account_projects" Type="Collection(mscrm.new_project)""#
    ));

    let config = SchemaConfig::from_toml_str(SCHEMA).expect("parses");
    assert_eq!(config.tables.len(), 1);
    let broken = SchemaConfig::from_toml_str(
        &SCHEMA.replace("target = \"account\"", "target = \"nothing\""),
    )
    .expect("parses");
    let err = Emulator::builder()
        .schema(broken)
        .start()
        .await
        .expect_err("bad lookup");
    assert!(err.to_string().contains("unknown table 'nothing'"), "{err}");
}
