//! The metadata Web API: `EntityDefinitions` (list, by logical name, by MetadataId),
//! `Attributes` with typed casts and `OptionSet` expansions, relationships, keys, global
//! option sets, `$select` / `$filter` / `$expand` as Dataverse takes them, refused options,
//! not-found answers, and agreement with the CSDL (`$metadata`) and the schema file.

use d365_emulator::{Emulator, SchemaConfig};
use serde_json::Value;

use crate::common::{Api, assert_error};

const SCHEMA: &str = r#"
[[tables]]
logical_name = "new_project"
entity_set_name = "new_projects"
primary_id = "new_projectid"
primary_name = "new_name"
display_name = "Project"
columns = [
  { name = "new_name", type = "string", max_length = 200 },
  { name = "new_color", type = "optionset", option_set = "new_colors", options = [
      { value = 1, label = "Red" }, { value = 2, label = "Green" } ] },
  { name = "new_accent", type = "optionset", option_set = "new_colors" },
  { name = "new_accountid", type = "lookup", target = "account" },
]
keys = [{ name = "new_name_key", columns = ["new_name"] }]
"#;

async fn start() -> (Emulator, Api) {
    let schema = SchemaConfig::from_toml_str(SCHEMA).expect("schema");
    let emulator = Emulator::builder()
        .schema(schema)
        .start()
        .await
        .expect("started");
    let api = Api::new(&emulator).await;
    (emulator, api)
}

fn values(reply: &crate::common::Reply) -> &Vec<Value> {
    reply.body["value"]
        .as_array()
        .unwrap_or_else(|| panic!("no value: {}", reply.body))
}

#[tokio::test]
async fn entity_definitions_list_and_address_tables() {
    let (_emulator, api) = start().await;
    let root = api.root.clone();

    // What Microsoft's Python SDK sends first, encoded as `requests` encodes it.
    let reply = api
        .get("EntityDefinitions?%24select=LogicalName%2CEntitySetName%2CPrimaryIdAttribute&%24filter=LogicalName+eq+%27account%27")
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(
        reply.body["@odata.context"],
        format!("{root}$metadata#EntityDefinitions(LogicalName,EntitySetName,PrimaryIdAttribute)")
    );
    let rows = values(&reply);
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["EntitySetName"], "accounts");
    assert_eq!(rows[0]["PrimaryIdAttribute"], "accountid");
    assert_eq!(
        rows[0]["MetadataId"],
        "70816501-edb9-4740-a16c-6a5efbc05d84"
    );
    assert!(rows[0].get("SchemaName").is_none(), "{}", rows[0]);

    // No match is an empty list, not an error.
    let reply = api
        .get("EntityDefinitions?$filter=LogicalName eq 'nosuch'")
        .await;
    assert_eq!(reply.status, 200);
    assert!(values(&reply).is_empty());

    // Enum literals and complex properties in $filter.
    let reply = api
        .get("EntityDefinitions?$select=LogicalName&$filter=OwnershipType eq Microsoft.Dynamics.CRM.OwnershipTypes'UserOwned' and IsCustomizable/Value eq true")
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let mut names: Vec<&str> = values(&reply)
        .iter()
        .filter_map(|r| r["LogicalName"].as_str())
        .collect();
    names.sort_unstable();
    assert_eq!(
        names,
        ["account", "asyncoperation", "contact", "new_project"]
    );

    // By logical name: one object, `$entity`.
    let reply = api
        .get("EntityDefinitions(LogicalName='new_project')?$select=LogicalName,EntitySetName,IsCustomEntity,DisplayName,ObjectTypeCode")
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(
        reply.body["@odata.context"],
        format!(
            "{root}$metadata#EntityDefinitions(LogicalName,EntitySetName,IsCustomEntity,DisplayName,ObjectTypeCode)/$entity"
        )
    );
    assert_eq!(reply.body["IsCustomEntity"], true);
    assert_eq!(reply.body["ObjectTypeCode"], 10000);
    assert_eq!(
        reply.body["DisplayName"]["UserLocalizedLabel"]["Label"],
        "Project"
    );
    assert_eq!(
        reply.body["DisplayName"]["LocalizedLabels"][0]["LanguageCode"],
        1033
    );
    // By MetadataId, the same table.
    let id = reply.body["MetadataId"].as_str().expect("id").to_owned();
    let again = api
        .get(&format!("EntityDefinitions({id})?$select=LogicalName"))
        .await;
    assert_eq!(again.body["LogicalName"], "new_project");

    // The whole table definition without $select.
    let full = api.get("EntityDefinitions(LogicalName='account')").await;
    for property in [
        "SchemaName",
        "LogicalCollectionName",
        "PrimaryNameAttribute",
        "OwnershipType",
        "IsActivity",
        "DisplayCollectionName",
    ] {
        assert!(
            full.body.get(property).is_some(),
            "{property}: {}",
            full.body
        );
    }
    assert!(
        full.body.get("Attributes").is_none(),
        "navigation properties only when expanded"
    );
}

#[tokio::test]
async fn attributes_casts_and_option_sets() {
    let (_emulator, api) = start().await;
    let root = api.root.clone();

    // Un-cast attributes carry their derived type.
    let reply = api
        .get("EntityDefinitions(LogicalName='account')/Attributes?$select=LogicalName,AttributeType&$filter=AttributeType eq Microsoft.Dynamics.CRM.AttributeTypeCode'Picklist'")
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(
        reply.body["@odata.context"],
        format!(
            "{root}$metadata#EntityDefinitions('account')/Attributes(LogicalName,AttributeType)"
        )
    );
    let rows = values(&reply);
    let picklists: Vec<&str> = rows
        .iter()
        .filter_map(|r| r["LogicalName"].as_str())
        .collect();
    assert_eq!(picklists, ["industrycode", "accountcategorycode"]);
    assert_eq!(
        rows[0]["@odata.type"],
        "#Microsoft.Dynamics.CRM.PicklistAttributeMetadata"
    );

    // The Python SDK's request for a table's choices, word for word.
    let reply = api
        .get("EntityDefinitions(LogicalName='account')/Attributes/Microsoft.Dynamics.CRM.PicklistAttributeMetadata?$select=LogicalName&$expand=OptionSet($select=Options)")
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(
        reply.body["@odata.context"],
        format!(
            "{root}$metadata#EntityDefinitions('account')/Attributes/Microsoft.Dynamics.CRM.PicklistAttributeMetadata(LogicalName,OptionSet(Options))"
        )
    );
    let rows = values(&reply);
    let category = rows
        .iter()
        .find(|r| r["LogicalName"] == "accountcategorycode")
        .expect("accountcategorycode");
    assert!(category.get("@odata.type").is_none(), "{category}");
    let options = category["OptionSet"]["Options"]
        .as_array()
        .expect("options");
    assert_eq!(options[0]["Value"], 1);
    assert_eq!(
        options[0]["Label"]["UserLocalizedLabel"]["Label"],
        "Preferred Customer"
    );
    assert!(category["OptionSet"]["MetadataId"].is_string());
    assert!(category["OptionSet"].get("Name").is_none());

    // One attribute by name, cast, with both option set navigations.
    let reply = api
        .get("EntityDefinitions(LogicalName='new_project')/Attributes(LogicalName='new_accent')/Microsoft.Dynamics.CRM.PicklistAttributeMetadata?$select=LogicalName&$expand=OptionSet,GlobalOptionSet($select=Name)")
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert!(
        reply.body["@odata.context"]
            .as_str()
            .expect("context")
            .ends_with("/Microsoft.Dynamics.CRM.PicklistAttributeMetadata(LogicalName,OptionSet(),GlobalOptionSet(Name))/$entity"),
        "{}",
        reply.body
    );
    assert_eq!(reply.body["GlobalOptionSet"]["Name"], "new_colors");
    assert_eq!(reply.body["OptionSet"]["IsGlobal"], true);

    // State and status, lookups, strings: typed properties.
    let status = api
        .get("EntityDefinitions(LogicalName='account')/Attributes(LogicalName='statuscode')/Microsoft.Dynamics.CRM.StatusAttributeMetadata?$expand=OptionSet")
        .await;
    assert_eq!(status.status, 200, "{}", status.body);
    assert_eq!(status.body["AttributeType"], "Status");
    assert_eq!(status.body["OptionSet"]["Options"][1]["State"], 1);
    let lookup = api
        .get("EntityDefinitions(LogicalName='contact')/Attributes(LogicalName='parentcustomerid')/Microsoft.Dynamics.CRM.LookupAttributeMetadata?$select=Targets,AttributeType")
        .await;
    assert_eq!(
        lookup.body["Targets"],
        serde_json::json!(["account", "contact"])
    );
    assert_eq!(lookup.body["AttributeType"], "Customer");
    let text = api
        .get("EntityDefinitions(LogicalName='account')/Attributes(LogicalName='accountnumber')/Microsoft.Dynamics.CRM.StringAttributeMetadata?$select=MaxLength")
        .await;
    assert_eq!(text.body["MaxLength"], 20);

    // A typed property without the cast, OptionSet on the base type, the abstract type.
    let reply = api
        .get("EntityDefinitions(LogicalName='account')/Attributes?$select=MaxLength")
        .await;
    assert_error(
        &reply,
        400,
        "0x0",
        "Could not find a property named 'MaxLength' on type 'Microsoft.Dynamics.CRM.AttributeMetadata'",
    );
    let reply = api
        .get("EntityDefinitions(LogicalName='account')/Attributes?$expand=OptionSet")
        .await;
    assert_error(&reply, 400, "0x0", "'OptionSet'");
    let reply = api
        .get("EntityDefinitions(LogicalName='account')/Attributes/Microsoft.Dynamics.CRM.EnumAttributeMetadata")
        .await;
    assert_error(&reply, 400, "0x80060888", "abstract");
    // Expanding attributes from the table, with nested options.
    let reply = api
        .get("EntityDefinitions(LogicalName='account')?$select=LogicalName&$expand=Attributes($select=LogicalName;$filter=IsPrimaryId eq true),Keys($select=KeyAttributes)")
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(
        reply.body["Attributes"]
            .as_array()
            .expect("attributes")
            .len(),
        1
    );
    assert_eq!(reply.body["Attributes"][0]["LogicalName"], "accountid");
    assert_eq!(
        reply.body["Keys"][0]["KeyAttributes"],
        serde_json::json!(["accountnumber"])
    );
}

#[tokio::test]
async fn relationships_and_global_option_sets() {
    let (_emulator, api) = start().await;
    let reply = api
        .get("RelationshipDefinitions/Microsoft.Dynamics.CRM.OneToManyRelationshipMetadata?$select=SchemaName,ReferencingEntityNavigationPropertyName&$filter=ReferencedEntity eq 'account' and ReferencingEntity eq 'new_project'")
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let rows = values(&reply);
    assert_eq!(rows.len(), 1, "{}", reply.body);
    assert_eq!(rows[0]["SchemaName"], "new_project_new_accountid");
    assert_eq!(
        rows[0]["ReferencingEntityNavigationPropertyName"],
        "new_accountid"
    );

    // The same relationship from the table's side, and by its schema name.
    let reply = api
        .get("EntityDefinitions(LogicalName='account')/OneToManyRelationships?$select=SchemaName&$filter=SchemaName eq 'new_project_new_accountid'")
        .await;
    assert_eq!(values(&reply).len(), 1, "{}", reply.body);
    let reply = api
        .get("RelationshipDefinitions(SchemaName='account_primary_contact')")
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(
        reply.body["@odata.type"],
        "#Microsoft.Dynamics.CRM.OneToManyRelationshipMetadata"
    );
    assert_eq!(reply.body["ReferencedEntity"], "contact");
    let reply = api
        .get("RelationshipDefinitions?$select=ReferencedEntity")
        .await;
    assert_error(&reply, 400, "0x0", "RelationshipMetadataBase");

    let reply = api.get("GlobalOptionSetDefinitions").await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let sets = values(&reply);
    assert_eq!(sets.len(), 1);
    assert_eq!(sets[0]["Name"], "new_colors");
    assert_eq!(
        sets[0]["@odata.type"],
        "#Microsoft.Dynamics.CRM.OptionSetMetadata"
    );
    let reply = api
        .get("GlobalOptionSetDefinitions(Name='new_colors')")
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(
        reply.body["Options"][1]["Label"]["UserLocalizedLabel"]["Label"],
        "Green"
    );
}

#[tokio::test]
async fn refused_options_and_missing_definitions() {
    let (_emulator, api) = start().await;
    let reply = api.get("EntityDefinitions?$orderby=LogicalName").await;
    assert_error(&reply, 400, "0x80060888", "$orderby is not supported");
    let reply = api.get("EntityDefinitions?$top=1").await;
    assert_error(&reply, 400, "0x80060888", "$top is not supported");
    let reply = api.get("EntityDefinitions(LogicalName='nosuch')").await;
    assert_error(
        &reply,
        404,
        "0x80040217",
        "Could not find an entity with name nosuch",
    );
    let reply = api
        .get("EntityDefinitions(LogicalName='account')/Attributes(LogicalName='nosuch')")
        .await;
    assert_eq!(reply.status, 404, "{}", reply.body);
    let reply = api.get("EntityDefinitions?$select=Nope").await;
    assert_error(
        &reply,
        400,
        "0x0",
        "'Nope' on type 'Microsoft.Dynamics.CRM.EntityMetadata'",
    );
    let reply = api
        .get("EntityDefinitions(LogicalName='account')/Nope")
        .await;
    assert_error(&reply, 404, "0x8006088a", "'Nope'");
    let reply = api
        .post(
            "EntityDefinitions",
            &serde_json::json!({"LogicalName": "x"}),
        )
        .await;
    assert_eq!(reply.status, 405, "{}", reply.body);
}

/// The CSDL, the metadata API and the schema file describe the same tables.
#[tokio::test]
async fn csdl_metadata_api_and_schema_agree() {
    let (_emulator, api) = start().await;
    let csdl = api
        .request(reqwest::Method::GET, "$metadata")
        .send()
        .await
        .expect("sent")
        .text()
        .await
        .expect("text");
    let document = roxmltree_free_parse(&csdl);
    let reply = api
        .get("EntityDefinitions?$select=LogicalName,EntitySetName,PrimaryIdAttribute&$expand=Attributes($select=LogicalName,AttributeType)")
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    for table in values(&reply) {
        let logical = table["LogicalName"].as_str().expect("name");
        let set = table["EntitySetName"].as_str().expect("set");
        let (csdl_set, properties) = document
            .iter()
            .find(|(name, _, _)| name == logical)
            .map_or_else(
                || panic!("{logical} is not in the CSDL"),
                |(_, set, props)| (set.clone(), props.clone()),
            );
        assert_eq!(csdl_set, set, "{logical}");
        let mut from_api: Vec<String> = table["Attributes"]
            .as_array()
            .expect("attributes")
            .iter()
            .map(|a| {
                let name = a["LogicalName"].as_str().expect("name");
                let lookup = matches!(
                    a["AttributeType"].as_str(),
                    Some("Lookup" | "Customer" | "Owner")
                );
                if lookup {
                    format!("_{name}_value")
                } else {
                    name.to_owned()
                }
            })
            .collect();
        from_api.sort();
        let mut from_csdl = properties;
        from_csdl.sort();
        assert_eq!(from_api, from_csdl, "{logical}");
        assert!(
            table["Attributes"]
                .as_array()
                .expect("attributes")
                .iter()
                .any(|a| a["LogicalName"] == table["PrimaryIdAttribute"]),
            "{logical}"
        );
    }
    assert!(document.iter().any(|(name, _, _)| name == "new_project"));
}

/// `(entity type, entity set, property names)` for each table's entity type in a CSDL
/// document, read with plain string scanning (the test crate has no XML parser).
fn roxmltree_free_parse(csdl: &str) -> Vec<(String, String, Vec<String>)> {
    let attribute = |text: &str, name: &str| -> Option<String> {
        let start = text.find(&format!("{name}=\""))? + name.len() + 2;
        let end = text[start..].find('"')? + start;
        Some(text[start..end].to_owned())
    };
    let mut out = Vec::new();
    for block in csdl.split("<EntityType ").skip(1) {
        let block = block.split("</EntityType>").next().unwrap_or_default();
        let Some(name) = attribute(block, "Name") else {
            continue;
        };
        if name.ends_with("Metadata") || name.ends_with("MetadataBase") {
            continue;
        }
        let properties = block
            .split("<Property ")
            .skip(1)
            .filter_map(|p| attribute(p, "Name"))
            .collect();
        let set = csdl
            .split("<EntitySet ")
            .skip(1)
            .find(|s| {
                attribute(s, "EntityType").as_deref()
                    == Some(&format!("Microsoft.Dynamics.CRM.{name}"))
            })
            .and_then(|s| attribute(s, "Name"))
            .unwrap_or_default();
        out.push((name, set, properties));
    }
    out
}
