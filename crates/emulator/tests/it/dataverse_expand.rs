//! `$expand` on records: single-valued and collection-valued navigation properties, nested
//! `$select` / `$filter` / `$orderby` / `$top`, nested expansions, `$ref`, Dataverse's refusals
//! and the 15-option limit; and `$count` past 5,000 rows.

use d365_emulator::Emulator;
use reqwest::Method;
use serde_json::{Value, json};

use crate::common::{Api, assert_error, send};

struct World {
    api: Api,
    account: String,
    bare_account: String,
    contact: String,
}

async fn world(emulator: &Emulator) -> World {
    let api = Api::new(emulator).await;
    let contact = api
        .create(
            "contacts",
            &json!({"firstname": "Ada", "lastname": "Lovelace"}),
        )
        .await;
    let account = api
        .create(
            "accounts",
            &json!({"name": "Contoso", "primarycontactid@odata.bind": format!("/contacts({contact})")}),
        )
        .await;
    let bare_account = api.create("accounts", &json!({"name": "Bare"})).await;
    for (first, last) in [
        ("Alan", "Turing"),
        ("Grace", "Hopper"),
        ("Edsger", "Dijkstra"),
    ] {
        api.create(
            "contacts",
            &json!({"firstname": first, "lastname": last, "parentcustomerid_account@odata.bind": format!("accounts({account})")}),
        )
        .await;
    }
    World {
        api,
        account,
        bare_account,
        contact,
    }
}

#[tokio::test]
async fn single_and_collection_valued_expansions() {
    let emulator = Emulator::builder().start().await.expect("started");
    let World {
        api,
        account,
        contact,
        ..
    } = world(&emulator).await;
    let root = api.root.clone();
    let reply = api
        .get(&format!(
            "accounts({account})?$select=name&$expand=primarycontactid($select=fullname),contact_customer_accounts($select=fullname;$filter=lastname ne 'Hopper';$orderby=lastname desc;$top=5)"
        ))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(
        reply.body["@odata.context"],
        format!(
            "{root}$metadata#accounts(name,primarycontactid(fullname),contact_customer_accounts(fullname))/$entity"
        )
    );
    let primary = &reply.body["primarycontactid"];
    assert_eq!(primary["fullname"], "Ada Lovelace");
    assert_eq!(primary["contactid"], contact.as_str());
    assert!(primary["@odata.etag"].is_string());
    assert!(primary.get("lastname").is_none(), "{primary}");
    let related: Vec<&str> = reply.body["contact_customer_accounts"]
        .as_array()
        .expect("collection")
        .iter()
        .filter_map(|c| c["fullname"].as_str())
        .collect();
    assert_eq!(related, ["Alan Turing", "Edsger Dijkstra"]);
    let link = reply.body["contact_customer_accounts@odata.nextLink"]
        .as_str()
        .expect("nextLink");
    assert!(
        link.starts_with(&format!(
            "{root}accounts({account})/contact_customer_accounts?$select=fullname"
        )),
        "{link}"
    );
    // The link reads the same related records on their own.
    let followed = api.get(link).await;
    assert_eq!(followed.status, 200, "{}", followed.body);
    assert_eq!(followed.body["value"].as_array().expect("value").len(), 2);

    // Over a collection, with an empty lookup and an empty collection.
    let reply = api
        .get("accounts?$select=name&$orderby=name&$expand=primarycontactid($select=fullname),contact_customer_accounts($select=fullname)")
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let rows = reply.body["value"].as_array().expect("rows");
    assert_eq!(rows[0]["name"], "Bare");
    assert_eq!(rows[0]["primarycontactid"], Value::Null);
    assert_eq!(rows[0]["contact_customer_accounts"], json!([]));
    assert!(rows[0]["contact_customer_accounts@odata.nextLink"].is_string());
    assert_eq!(rows[1]["primarycontactid"]["fullname"], "Ada Lovelace");
    assert_eq!(
        rows[1]["contact_customer_accounts"]
            .as_array()
            .expect("c")
            .len(),
        3
    );

    // Only the reference.
    let reply = api
        .get(&format!(
            "accounts({account})?$select=name&$expand=primarycontactid/$ref"
        ))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(
        reply.body["primarycontactid"]["@odata.id"],
        format!("{root}contacts({contact})")
    );
    assert!(reply.body["primarycontactid"].get("fullname").is_none());
}

#[tokio::test]
async fn nested_expansions_annotations_and_filters() {
    let emulator = Emulator::builder().start().await.expect("started");
    let World { api, account, .. } = world(&emulator).await;
    // Contacts → their account → its primary contact, with formatted values inside.
    let request = api
        .request(
            Method::GET,
            "contacts?$select=fullname&$filter=lastname eq 'Turing'&$expand=parentcustomerid_account($select=name,_primarycontactid_value;$expand=primarycontactid($select=fullname))",
        )
        .header("Prefer", "odata.include-annotations=\"*\"");
    let reply = send(request).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let parent = &reply.body["value"][0]["parentcustomerid_account"];
    assert_eq!(parent["accountid"], account.as_str());
    assert_eq!(parent["primarycontactid"]["fullname"], "Ada Lovelace");
    assert_eq!(
        parent["_primarycontactid_value@OData.Community.Display.V1.FormattedValue"],
        "Ada Lovelace"
    );
    assert_eq!(
        parent["_primarycontactid_value@Microsoft.Dynamics.CRM.lookuplogicalname"],
        "contact"
    );

    // A $filter on a single-valued property that the related record fails: null.
    let reply = api
        .get(&format!(
            "accounts({account})?$select=name&$expand=primarycontactid($select=fullname;$filter=firstname eq 'Nobody')"
        ))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["primarycontactid"], Value::Null);
}

#[tokio::test]
async fn refused_expansions() {
    let emulator = Emulator::builder().start().await.expect("started");
    let World {
        api, bare_account, ..
    } = world(&emulator).await;
    let only = "Only $select and $filter clause can be provided while doing $expand on many-to-one relationship or nested one-to-many relationship.";
    let sixteen = vec!["primarycontactid"; 16].join(",");
    let cases: Vec<(String, u16, &str, &str)> = vec![
        (
            "accounts?$expand=contact_customer_accounts/$ref".into(),
            400,
            "0x80060888",
            "Expand with $ref is only supported on lookup type navigation property.",
        ),
        (
            "accounts?$expand=primarycontactid($top=1)".into(),
            400,
            "0x80060888",
            only,
        ),
        (
            "accounts?$expand=contact_customer_accounts($top=1;$expand=parentcustomerid_contact)"
                .into(),
            400,
            "0x80060888",
            only,
        ),
        (
            "accounts?$expand=nosuch".into(),
            400,
            "0x0",
            "Could not find a property named 'nosuch' on type 'Microsoft.Dynamics.CRM.account'.",
        ),
        (
            "accounts?$expand=primarycontactid($select=nosuch)".into(),
            400,
            "0x0",
            "'nosuch' on type 'Microsoft.Dynamics.CRM.contact'",
        ),
        (
            "accounts?$expand=primarycontactid($skip=1)".into(),
            400,
            "0x80060888",
            "not supported inside $expand",
        ),
        (
            format!("accounts?$expand={sixteen}"),
            400,
            "0x80060888",
            "at most 15",
        ),
        (
            format!(
                "accounts({bare_account})?$expand=contact_customer_accounts($filter=nosuch eq 1)"
            ),
            400,
            "0x0",
            "'nosuch'",
        ),
    ];
    for (path, status, code, message) in cases {
        let reply = api.get(&path).await;
        assert_error(&reply, status, code, message);
    }
}

#[tokio::test]
async fn counts_past_five_thousand_rows() {
    let emulator = Emulator::builder()
        .generated_accounts(5001)
        .start()
        .await
        .expect("started");
    let api = Api::new(&emulator).await;
    let annotations = "odata.include-annotations=\"Microsoft.Dynamics.CRM.totalrecordcount,Microsoft.Dynamics.CRM.totalrecordcountlimitexceeded\",odata.maxpagesize=10";
    let reply = send(
        api.request(Method::GET, "accounts?$select=name&$count=true")
            .header("Prefer", annotations),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["@odata.count"], 5000);
    assert_eq!(reply.body["@Microsoft.Dynamics.CRM.totalrecordcount"], -1);
    assert_eq!(
        reply.body["@Microsoft.Dynamics.CRM.totalrecordcountlimitexceeded"],
        true
    );
    let reply = send(
        api.request(
            Method::GET,
            "accounts?$select=name&$count=true&$filter=accountnumber eq 'G0000007'",
        )
        .header("Prefer", annotations),
    )
    .await;
    assert_eq!(reply.body["@odata.count"], 1);
    assert_eq!(reply.body["@Microsoft.Dynamics.CRM.totalrecordcount"], 1);
    assert_eq!(
        reply.body["@Microsoft.Dynamics.CRM.totalrecordcountlimitexceeded"],
        false
    );
    // Without $count=true nothing was counted.
    let reply = send(
        api.request(Method::GET, "accounts?$select=name")
            .header("Prefer", annotations),
    )
    .await;
    assert!(reply.body.get("@odata.count").is_none());
    assert_eq!(reply.body["@Microsoft.Dynamics.CRM.totalrecordcount"], -1);
}
