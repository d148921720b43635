//! Records over the Web API: create, retrieve (id, alternate and compound keys), update,
//! upsert with `If-Match`/`If-None-Match`, delete, ETags, `@odata.bind` and `_x_value`
//! lookups, `$ref` associations, single properties and the failure cases of each.

use d365_emulator::Emulator;
use reqwest::Method;
use serde_json::{Value, json};

use crate::common::{Api, assert_error, entity_id, send};

#[tokio::test]
async fn create_retrieve_update_delete() {
    let emulator = Emulator::builder().start().await.expect("started");
    let api = Api::new(&emulator).await;

    let reply = api
        .post(
            "accounts",
            &json!({"name": "Contoso", "accountnumber": "A1", "revenue": 1234.5}),
        )
        .await;
    assert_eq!(reply.status, 204, "{}", reply.body);
    let id = entity_id(&reply);
    assert_eq!(
        reply.headers["OData-EntityId"].to_str().expect("header"),
        format!("{}accounts({id})", emulator.web_api_url())
    );

    let reply = send(
        api.request(Method::POST, "accounts")
            .header("Prefer", "return=representation")
            .json(&json!({"name": "Fabrikam"})),
    )
    .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    assert_eq!(reply.body["name"], "Fabrikam");
    assert!(
        reply.body["@odata.etag"]
            .as_str()
            .expect("etag")
            .starts_with("W/\"")
    );
    assert!(
        reply.body["@odata.context"]
            .as_str()
            .expect("context")
            .ends_with("$metadata#accounts/$entity")
    );

    let chosen = "6c1d2e3f-0000-0000-0000-00000000a001";
    let reply = api
        .post(
            "accounts",
            &json!({"accountid": chosen, "name": "Chosen id"}),
        )
        .await;
    assert_eq!(entity_id(&reply), chosen);
    assert_error(
        &api.post("accounts", &json!({"accountid": chosen, "name": "Again"}))
            .await,
        412,
        "0x80040237",
        "already exists",
    );

    let by_id = api
        .get(&format!("accounts({id})?$select=name,revenue"))
        .await;
    assert_eq!(by_id.status, 200, "{}", by_id.body);
    assert_eq!(by_id.body["name"], "Contoso");
    assert_eq!(by_id.body["accountid"], id.as_str());
    assert!(by_id.body.get("accountnumber").is_none());
    let etag = by_id.body["@odata.etag"].as_str().expect("etag").to_owned();
    assert_eq!(by_id.headers["etag"], etag.as_str());
    let by_key = api.get("accounts(accountnumber='A1')").await;
    assert_eq!(by_key.body["accountid"], id.as_str());

    let not_modified = send(
        api.request(Method::GET, &format!("accounts({id})"))
            .header("If-None-Match", &etag),
    )
    .await;
    assert_eq!(not_modified.status, 304);
    // With `$expand` the record's ETag says nothing of its related rows: never 304.
    let expanded = send(
        api.request(
            Method::GET,
            &format!("accounts({id})?$expand=primarycontactid($select=fullname)"),
        )
        .header("If-None-Match", &etag),
    )
    .await;
    assert_eq!(expanded.status, 200, "{}", expanded.body);

    let reply = api
        .patch(&format!("accounts({id})"), &json!({"name": "Contoso Ltd"}))
        .await;
    assert_eq!(reply.status, 204, "{}", reply.body);
    let after = api.get(&format!("accounts({id})")).await;
    assert_eq!(after.body["name"], "Contoso Ltd");
    assert_ne!(
        after.body["@odata.etag"],
        etag.as_str(),
        "the ETag changes on every write"
    );
    let stale = send(
        api.request(Method::PATCH, &format!("accounts({id})"))
            .header("If-Match", &etag)
            .json(&json!({"name": "x"})),
    )
    .await;
    assert_error(
        &stale,
        412,
        "",
        "The version of the existing record doesn't match the RowVersion property provided.",
    );
    let fresh = after.body["@odata.etag"].as_str().expect("etag");
    let ok = send(
        api.request(Method::PATCH, &format!("accounts({id})"))
            .header("If-Match", fresh)
            .json(&json!({"name": "y"})),
    )
    .await;
    assert_eq!(ok.status, 204);

    let reply = send(
        api.request(Method::PATCH, &format!("accounts({id})"))
            .header("Prefer", "return=representation")
            .json(&json!({"telephone1": "555"})),
    )
    .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body["telephone1"], "555");

    assert_eq!(api.delete(&format!("accounts({id})")).await.status, 204);
    assert_error(
        &api.delete(&format!("accounts({id})")).await,
        404,
        "0x80040217",
        &format!("account With Id = {id} Does Not Exist"),
    );
    assert_error(
        &api.get(&format!("accounts({id})")).await,
        404,
        "0x80040217",
        "Does Not Exist",
    );
}

#[tokio::test]
async fn upsert_by_id_and_by_key() {
    let emulator = Emulator::builder().start().await.expect("started");
    let api = Api::new(&emulator).await;
    let id = uuid::Uuid::new_v4().to_string();
    let url = format!("accounts({id})");

    // What the client uses for safely retryable creates.
    let create_only = |body: Value| {
        send(
            api.request(Method::PATCH, &url)
                .header("If-None-Match", "*")
                .json(&body),
        )
    };
    let first = create_only(json!({"name": "Created by PATCH"})).await;
    assert_eq!(first.status, 204, "{}", first.body);
    assert_eq!(entity_id(&first), id);
    let again = create_only(json!({"name": "Twice"})).await;
    assert_error(
        &again,
        412,
        "0x80040237",
        "A record with matching key values already exists.",
    );

    let missing = format!("accounts({})", uuid::Uuid::new_v4());
    let update_only = send(
        api.request(Method::PATCH, &missing)
            .header("If-Match", "*")
            .json(&json!({"name": "x"})),
    )
    .await;
    assert_error(&update_only, 404, "0x80040217", "Does Not Exist");

    // Upsert through an alternate key creates with the key's values, then updates.
    let reply = api
        .patch("accounts(accountnumber='K-1')", &json!({"name": "Keyed"}))
        .await;
    assert_eq!(reply.status, 204, "{}", reply.body);
    let keyed = entity_id(&reply);
    let reply = api
        .patch(
            "accounts(accountnumber='K-1')",
            &json!({"name": "Keyed again"}),
        )
        .await;
    assert_eq!(entity_id(&reply), keyed);
    let record = api.get(&format!("accounts({keyed})")).await;
    assert_eq!(record.body["accountnumber"], "K-1");
    assert_eq!(record.body["name"], "Keyed again");
    let keyed_missing = send(
        api.request(Method::PATCH, "accounts(accountnumber='K-2')")
            .header("If-Match", "*")
            .json(&json!({"name": "x"})),
    )
    .await;
    assert_error(
        &keyed_missing,
        404,
        "0x80040217",
        "A record with the specified key values does not exist in account entity",
    );

    // Compound key; doubled quotes inside a literal.
    let contact = api
        .patch(
            "contacts(firstname='Joe',emailaddress1='o''neil@example.com')",
            &json!({"lastname": "O'Neil"}),
        )
        .await;
    assert_eq!(contact.status, 204, "{}", contact.body);
    let fetched = api
        .get("contacts(emailaddress1='o''neil@example.com',firstname='Joe')")
        .await;
    assert_eq!(fetched.body["fullname"], "Joe O'Neil", "{}", fetched.body);
    assert_eq!(
        api.get(&format!("contacts(contactid={})", entity_id(&contact)))
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn lookups_bind_read_and_associate() {
    let emulator = Emulator::builder().start().await.expect("started");
    let api = Api::new(&emulator).await;
    let account = api
        .create(
            "accounts",
            &json!({"name": "Parent", "industrycode": 7, "creditonhold": true, "revenue": 1000}),
        )
        .await;
    let contact = api
        .create("contacts", &json!({"firstname": "Ann", "lastname": "Ng", "parentcustomerid_account@odata.bind": format!("/accounts({account})")}))
        .await;
    let reply = api.patch(&format!("accounts({account})"), &json!({"primarycontactid@odata.bind": format!("{}contacts({contact})", emulator.web_api_url())})).await;
    assert_eq!(reply.status, 204, "{}", reply.body);

    let annotated = send(
        api.request(Method::GET, &format!("accounts({account})?$select=name,_primarycontactid_value,industrycode,creditonhold,revenue"))
            .header("Prefer", "odata.include-annotations=\"*\""),
    )
    .await;
    let body = &annotated.body;
    assert_eq!(body["_primarycontactid_value"], contact.as_str(), "{body}");
    assert_eq!(
        body["_primarycontactid_value@OData.Community.Display.V1.FormattedValue"],
        "Ann Ng"
    );
    assert_eq!(
        body["_primarycontactid_value@Microsoft.Dynamics.CRM.lookuplogicalname"],
        "contact"
    );
    assert_eq!(
        body["_primarycontactid_value@Microsoft.Dynamics.CRM.associatednavigationproperty"],
        "primarycontactid"
    );
    assert_eq!(
        body["industrycode@OData.Community.Display.V1.FormattedValue"],
        "Consulting"
    );
    assert_eq!(
        body["creditonhold@OData.Community.Display.V1.FormattedValue"],
        "Yes"
    );
    assert_eq!(
        body["revenue@OData.Community.Display.V1.FormattedValue"],
        "$1,000.00"
    );
    let contact_row = send(
        api.request(
            Method::GET,
            &format!("contacts({contact})?$select=_parentcustomerid_value"),
        )
        .header("Prefer", "odata.include-annotations=\"*\""),
    )
    .await;
    assert_eq!(
        contact_row.body["_parentcustomerid_value"],
        account.as_str()
    );
    assert_eq!(
        contact_row.body["_parentcustomerid_value@Microsoft.Dynamics.CRM.associatednavigationproperty"],
        "parentcustomerid_account"
    );

    // The related collection, and $ref disassociate/associate on both relationships.
    let children = api
        .get(&format!(
            "accounts({account})/contact_customer_accounts?$select=fullname"
        ))
        .await;
    assert_eq!(
        children.body["value"].as_array().expect("rows").len(),
        1,
        "{}",
        children.body
    );
    let primary = api
        .get(&format!(
            "accounts({account})/primarycontactid?$select=fullname"
        ))
        .await;
    assert_eq!(primary.body["fullname"], "Ann Ng", "{}", primary.body);
    assert_eq!(
        api.delete(&format!("accounts({account})/primarycontactid/$ref"))
            .await
            .status,
        204
    );
    assert!(
        api.get(&format!("accounts({account})")).await.body["_primarycontactid_value"].is_null()
    );
    let put = send(
        api.request(
            Method::PUT,
            &format!("accounts({account})/primarycontactid/$ref"),
        )
        .json(&json!({"@odata.id": format!("contacts({contact})")})),
    )
    .await;
    assert_eq!(put.status, 204, "{}", put.body);
    assert_eq!(
        api.get(&format!("accounts({account})")).await.body["_primarycontactid_value"],
        contact.as_str()
    );
    assert_eq!(
        api.delete(&format!(
            "accounts({account})/contact_customer_accounts({contact})/$ref"
        ))
        .await
        .status,
        204
    );
    assert!(
        api.get(&format!("contacts({contact})")).await.body["_parentcustomerid_value"].is_null()
    );
    let post = api
        .post(
            &format!("accounts({account})/contact_customer_accounts/$ref"),
            &json!({"@odata.id": format!("{}contacts({contact})", emulator.web_api_url())}),
        )
        .await;
    assert_eq!(post.status, 204, "{}", post.body);
    assert_eq!(
        api.get(&format!("contacts({contact})")).await.body["_parentcustomerid_value"],
        account.as_str()
    );
    let by_id = api
        .delete(&format!(
            "accounts({account})/contact_customer_accounts/$ref?$id={}contacts({contact})",
            emulator.web_api_url()
        ))
        .await;
    assert_eq!(by_id.status, 204, "{}", by_id.body);
    assert!(
        api.get(&format!("contacts({contact})")).await.body["_parentcustomerid_value"].is_null()
    );

    // Unbinding with null, and deleting a referenced record clears the lookup.
    api.patch(
        &format!("contacts({contact})"),
        &json!({"parentcustomerid_account@odata.bind": format!("/accounts({account})")}),
    )
    .await;
    assert_eq!(
        api.patch(
            &format!("contacts({contact})"),
            &json!({"parentcustomerid_account@odata.bind": null})
        )
        .await
        .status,
        204
    );
    api.patch(
        &format!("contacts({contact})"),
        &json!({"parentcustomerid_account@odata.bind": format!("/accounts({account})")}),
    )
    .await;
    assert_eq!(
        api.delete(&format!("accounts({account})")).await.status,
        204
    );
    assert!(
        api.get(&format!("contacts({contact})")).await.body["_parentcustomerid_value"].is_null()
    );

    // Single properties.
    let put = send(
        api.request(Method::PUT, &format!("contacts({contact})/jobtitle"))
            .json(&json!({"value": "CTO"})),
    )
    .await;
    assert_eq!(put.status, 204, "{}", put.body);
    let value = api.get(&format!("contacts({contact})/jobtitle")).await;
    assert_eq!(value.body["value"], "CTO");
    assert_eq!(
        api.delete(&format!("contacts({contact})/jobtitle"))
            .await
            .status,
        204
    );
    assert_eq!(
        api.get(&format!("contacts({contact})/jobtitle"))
            .await
            .status,
        204
    );
}

#[tokio::test]
async fn failures_are_dataverse_errors() {
    let emulator = Emulator::builder().start().await.expect("started");
    let api = Api::new(&emulator).await;
    let account = api.create("accounts", &json!({"name": "Target"})).await;
    let missing = uuid::Uuid::new_v4();
    let long = "x".repeat(161);
    let cases: Vec<(Method, String, Value, u16, &str, String)> = vec![
        (Method::GET, "Accounts".into(), Value::Null, 404, "0x8006088a", "Resource not found for the segment 'Accounts'.".into()),
        (Method::GET, "nothing(1)/x".into(), Value::Null, 404, "0x8006088a", "segment 'nothing'".into()),
        (Method::GET, format!("accounts({account})/nonsense"), Value::Null, 404, "0x8006088a", "segment 'nonsense'".into()),
        (Method::GET, "accounts?$select=Name".into(), Value::Null, 400, "0x0", "Could not find a property named 'Name' on type 'Microsoft.Dynamics.CRM.account'.".into()),
        (Method::GET, "accounts?$orderby=nope desc".into(), Value::Null, 400, "0x0", "Could not find a property named 'nope'".into()),
        (Method::GET, "accounts(name='x')".into(), Value::Null, 400, "0x80060888", "The key in the request URI is not valid for resource 'Microsoft.Dynamics.CRM.account'".into()),
        (Method::GET, format!("accounts({missing})"), Value::Null, 404, "0x80040217", format!("account With Id = {missing} Does Not Exist")),
        (Method::POST, "accounts".into(), json!({"Name": "x"}), 400, "0x0", "Invalid property 'Name' was found in entity 'Microsoft.Dynamics.CRM.account'.".into()),
        (Method::POST, "accounts".into(), json!({"_primarycontactid_value": missing.to_string()}), 400, "0x0", "Invalid property '_primarycontactid_value'".into()),
        (Method::POST, "accounts".into(), json!({"name": long}), 400, "0x80044331", "The length of the 'name' attribute of the 'account' entity exceeded the maximum allowed length of '160'.".into()),
        (Method::POST, "accounts".into(), json!({"numberofemployees": "many"}), 400, "0x0", "Cannot convert the literal 'many' to the expected type 'Edm.Int32'.".into()),
        (Method::POST, "accounts".into(), json!({"industrycode": 99}), 400, "0x8004431a", "outside the valid range".into()),
        (Method::POST, "accounts".into(), json!({"lastonholdtime": "yesterday"}), 400, "0x0", "Edm.DateTimeOffset".into()),
        (Method::POST, "contacts".into(), json!({"parentcustomerid@odata.bind": format!("/accounts({account})")}), 400, "0x80048d19", "An undeclared property 'parentcustomerid' which only has property annotations".into()),
        (Method::POST, "contacts".into(), json!({"parentcustomerid_account@odata.bind": format!("/accounts({missing})")}), 404, "0x80040217", "Does Not Exist".into()),
        (Method::POST, "contacts".into(), json!({"parentcustomerid_account@odata.bind": format!("/contacts({missing})")}), 404, "0x80040217", "contact With Id".into()),
        (Method::POST, "accounts".into(), json!([1]), 400, "0x80048d19", "JSON object".into()),
        (Method::PUT, format!("accounts({account})"), json!({}), 404, "", "No HTTP resource was found".into()),
        (Method::POST, "$metadata".into(), json!({}), 404, "", "No HTTP resource".into()),
    ];
    for (method, path, body, status, code, message) in cases {
        let mut request = api.request(method.clone(), &path);
        if !body.is_null() {
            request = request.json(&body);
        }
        let reply = send(request).await;
        assert_error(&reply, status, code, &message);
    }
}

/// What Dataverse sets on create and update: state and status, timestamps, who created and
/// changed the row, its owner and business unit, the row version; state and status pairs.
#[tokio::test]
async fn records_get_what_dataverse_sets() {
    let emulator = Emulator::builder().start().await.expect("started");
    let api = Api::new(&emulator).await;
    let org = emulator.seeded().expect("seeded").organization.clone();
    let id = api.create("accounts", &json!({"name": "Stamped"})).await;
    let request = api
        .request(Method::GET, &format!("accounts({id})"))
        .header("Prefer", "odata.include-annotations=\"*\"");
    let created = send(request).await;
    assert_eq!(created.status, 200, "{}", created.body);
    let body = &created.body;
    assert_eq!(body["statecode"], 0);
    assert_eq!(body["statuscode"], 1);
    assert_eq!(
        body["statuscode@OData.Community.Display.V1.FormattedValue"],
        "Active"
    );
    assert_eq!(
        body["_createdby_value"],
        org.confidential_app_user_id.as_str()
    );
    assert_eq!(
        body["_modifiedby_value"],
        org.confidential_app_user_id.as_str()
    );
    assert_eq!(
        body["_ownerid_value"],
        org.confidential_app_user_id.as_str()
    );
    assert_eq!(
        body["_ownerid_value@Microsoft.Dynamics.CRM.lookuplogicalname"],
        "systemuser"
    );
    assert_eq!(
        body["_ownerid_value@Microsoft.Dynamics.CRM.associatednavigationproperty"],
        "ownerid"
    );
    assert_eq!(
        body["_owningbusinessunit_value"],
        org.business_unit_id.as_str()
    );
    let created_on = body["createdon"].as_str().expect("createdon").to_owned();
    assert!(
        created_on.ends_with('Z') && created_on.len() == 20,
        "{created_on}"
    );
    assert_eq!(body["modifiedon"], created_on.as_str());
    let version = body["versionnumber"].as_i64().expect("versionnumber");

    // An update moves the version and who changed it; a state brings its default status.
    let reply = api
        .patch(&format!("accounts({id})"), &json!({"statecode": 1}))
        .await;
    assert_eq!(reply.status, 204, "{}", reply.body);
    let updated = api.get(&format!("accounts({id})")).await.body;
    assert_eq!(updated["statecode"], 1);
    assert_eq!(updated["statuscode"], 2);
    assert!(updated["versionnumber"].as_i64().expect("version") > version);
    assert_eq!(updated["createdon"], created_on.as_str());

    // A status that does not belong to the state, on update and on create.
    let reply = api
        .patch(
            &format!("accounts({id})"),
            &json!({"statecode": 0, "statuscode": 2}),
        )
        .await;
    assert_error(
        &reply,
        400,
        "0x80048408",
        &format!(
            "2 is not a valid status code for state code AccountState.Active on account with Id {id}."
        ),
    );
    let reply = api
        .post(
            "accounts",
            &json!({"name": "Inactive", "statecode": 1, "statuscode": 2}),
        )
        .await;
    assert_error(
        &reply,
        400,
        "0x80048408",
        "2 is not a valid status code for state code AccountState.Active on account",
    );
    // A status alone brings its state.
    let reply = api
        .patch(&format!("accounts({id})"), &json!({"statuscode": 1}))
        .await;
    assert_eq!(reply.status, 204, "{}", reply.body);
    assert_eq!(
        api.get(&format!("accounts({id})")).await.body["statecode"],
        0
    );

    // Another owner brings its business unit; createdby cannot be bound.
    let reply = api
        .post(
            "accounts",
            &json!({
                "name": "Owned",
                "ownerid@odata.bind": format!("/systemusers({})", org.user_id),
                "createdby@odata.bind": format!("/systemusers({})", org.user_id),
            }),
        )
        .await;
    assert_eq!(reply.status, 204, "{}", reply.body);
    let owned = api
        .get(&format!("accounts({})", entity_id(&reply)))
        .await
        .body;
    assert_eq!(owned["_ownerid_value"], org.user_id.as_str());
    assert_eq!(
        owned["_createdby_value"],
        org.confidential_app_user_id.as_str()
    );
    assert_eq!(
        owned["_owningbusinessunit_value"],
        org.business_unit_id.as_str()
    );
}
