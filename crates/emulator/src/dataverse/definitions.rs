//! The metadata Web API: `EntityDefinitions` (by `MetadataId` or `LogicalName='…'`) with
//! their `Attributes` (typed, with casts such as
//! `Microsoft.Dynamics.CRM.PicklistAttributeMetadata` and the `OptionSet` / `GlobalOptionSet`
//! navigation properties), `OneToManyRelationships`, `ManyToOneRelationships`,
//! `ManyToManyRelationships` and `Keys`; `RelationshipDefinitions` and
//! `GlobalOptionSetDefinitions`. Every answer is built from the same [`Schema`] as the CSDL
//! (`$metadata`) and the tables themselves, so the three always agree.
//!
//! Query options as Dataverse takes them here: `$select` (MetadataId always comes back),
//! `$filter` (enum literals such as `Microsoft.Dynamics.CRM.OwnershipTypes'UserOwned'`,
//! complex properties one level deep such as `IsCustomizable/Value eq true`) and `$expand`
//! with nested `$select` and `$filter`; `$orderby` and `$top` are refused; everything comes
//! back in one response, never paged. The definitions are read-only here.

use std::fmt::Write as _;

use axum::http::{Method, StatusCode};
use serde_json::{Map, Value, json};
use sha1::{Digest as _, Sha1};

use super::errors::{ApiError, ApiResult};
use super::odata::expand::{self, ExpandItem, context_list};
use super::odata::filter::{self, Expr, Func, Literal, Op};
use super::odata::path::Segment;
use super::request::Call;
use super::response::{Collection, DvResponse, Ordered};
use super::schema::{Column, Kind, LookupTarget, Ownership, Schema, Table};

/// The sets of the metadata API, as the first path segment names them.
pub(crate) const SETS: [&str; 3] = [
    "EntityDefinitions",
    "RelationshipDefinitions",
    "GlobalOptionSetDefinitions",
];

const NS: &str = "Microsoft.Dynamics.CRM.";

/// A stable `MetadataId` for a schema item: the same name gives the same id on every start.
pub(crate) fn metadata_id(kind: &str, name: &str) -> String {
    if kind == "entity" && name == "account" {
        // The id Microsoft's documentation shows for account.
        return "70816501-edb9-4740-a16c-6a5efbc05d84".to_owned();
    }
    let digest = Sha1::digest(format!("d365-emulator/{kind}/{name}").as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    bytes[6] = (bytes[6] & 0x0f) | 0x50;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    uuid::Uuid::from_bytes(bytes).to_string()
}

/// A metadata item: its concrete type, its properties in declaration order, and its
/// navigation properties.
#[derive(Debug, Clone)]
struct Node {
    type_name: &'static str,
    props: Vec<(&'static str, Value)>,
    navs: Vec<(&'static str, Nav)>,
}

#[derive(Debug, Clone)]
enum Nav {
    One(Option<Box<Node>>),
    /// The declared item type, and the items.
    Many(&'static str, Vec<Node>),
}

impl Node {
    fn prop(&self, name: &str) -> Option<&Value> {
        self.props.iter().find(|(n, _)| *n == name).map(|(_, v)| v)
    }

    fn text(&self, name: &str) -> &str {
        self.prop(name).and_then(Value::as_str).unwrap_or_default()
    }

    fn nav(&self, name: &str) -> Option<&Nav> {
        self.navs.iter().find(|(n, _)| *n == name).map(|(_, v)| v)
    }
}

fn localized(text: &str, id_source: &str) -> Value {
    json!({
        "Label": text,
        "LanguageCode": 1033,
        "IsManaged": true,
        "MetadataId": metadata_id("label", id_source),
        "HasChanged": null,
    })
}

/// A `Label`: one en-US localized label, or the empty label.
fn label(text: &str, id_source: &str) -> Value {
    if text.is_empty() {
        return json!({"LocalizedLabels": [], "UserLocalizedLabel": null});
    }
    let one = localized(text, id_source);
    json!({"LocalizedLabels": [one.clone()], "UserLocalizedLabel": one})
}

fn managed(value: impl Into<Value>, name: &str) -> Value {
    json!({"Value": value.into(), "CanBeChanged": false, "ManagedPropertyLogicalName": name})
}

/// `new_project` → `new_Project`; built-in names by Dataverse's spelling.
pub(crate) fn schema_name(name: &str, builtin: bool) -> String {
    let known = [
        ("account", "Account"),
        ("contact", "Contact"),
        ("systemuser", "SystemUser"),
        ("businessunit", "BusinessUnit"),
        ("organization", "Organization"),
        ("asyncoperation", "AsyncOperation"),
        ("accountid", "AccountId"),
        ("contactid", "ContactId"),
        ("systemuserid", "SystemUserId"),
        ("businessunitid", "BusinessUnitId"),
        ("organizationid", "OrganizationId"),
        ("asyncoperationid", "AsyncOperationId"),
        ("createdon", "CreatedOn"),
        ("modifiedon", "ModifiedOn"),
        ("createdby", "CreatedBy"),
        ("modifiedby", "ModifiedBy"),
        ("ownerid", "OwnerId"),
        ("owningbusinessunit", "OwningBusinessUnit"),
        ("statecode", "StateCode"),
        ("statuscode", "StatusCode"),
        ("versionnumber", "VersionNumber"),
        ("name", "Name"),
        ("fullname", "FullName"),
    ];
    if let Some((_, schema)) = known.iter().find(|(n, _)| *n == name) {
        return (*schema).to_owned();
    }
    if builtin {
        let mut chars = name.chars();
        return chars.next().map_or_else(String::new, |first| {
            first.to_ascii_uppercase().to_string() + chars.as_str()
        });
    }
    match name.split_once('_') {
        Some((prefix, rest)) if !rest.is_empty() => {
            let mut chars = rest.chars();
            let first = chars.next().map(|c| c.to_ascii_uppercase());
            format!(
                "{prefix}_{}{}",
                first.map(String::from).unwrap_or_default(),
                chars.as_str()
            )
        }
        _ => name.to_owned(),
    }
}

// ---------------------------------------------------------------------------------------
// Declared types: which properties and navigation properties `$select`, `$filter` and
// `$expand` may name on each.

const ENTITY_PROPS: &[&str] = &[
    "MetadataId",
    "LogicalName",
    "SchemaName",
    "EntitySetName",
    "LogicalCollectionName",
    "CollectionSchemaName",
    "PrimaryIdAttribute",
    "PrimaryNameAttribute",
    "PrimaryImageAttribute",
    "ObjectTypeCode",
    "OwnershipType",
    "TableType",
    "IsActivity",
    "IsActivityParty",
    "IsCustomEntity",
    "IsManaged",
    "IsPrivate",
    "IsIntersect",
    "IsLogicalEntity",
    "IsValidForAdvancedFind",
    "IsAvailableOffline",
    "HasActivities",
    "HasNotes",
    "ChangeTrackingEnabled",
    "EntityColor",
    "IntroducedVersion",
    "DisplayName",
    "DisplayCollectionName",
    "Description",
    "IsCustomizable",
    "CanCreateAttributes",
    "IsAuditEnabled",
];
const ENTITY_NAVS: &[&str] = &[
    "Attributes",
    "OneToManyRelationships",
    "ManyToOneRelationships",
    "ManyToManyRelationships",
    "Keys",
];

const ATTRIBUTE_PROPS: &[&str] = &[
    "MetadataId",
    "LogicalName",
    "SchemaName",
    "EntityLogicalName",
    "AttributeType",
    "AttributeTypeName",
    "AttributeOf",
    "ColumnNumber",
    "IsPrimaryId",
    "IsPrimaryName",
    "IsCustomAttribute",
    "IsManaged",
    "IsLogical",
    "IsSecured",
    "IsValidForCreate",
    "IsValidForUpdate",
    "IsValidForRead",
    "IsValidForAdvancedFind",
    "IsFilterable",
    "IsSearchable",
    "IsRetrievable",
    "IntroducedVersion",
    "SourceType",
    "DisplayName",
    "Description",
    "RequiredLevel",
    "IsCustomizable",
    "IsAuditEnabled",
];

/// The attribute types: the base type, the abstract enum type, and the concrete ones with
/// their own properties and navigation properties.
fn attribute_type_extra(
    type_name: &str,
) -> Option<(&'static [&'static str], &'static [&'static str])> {
    const OPTION_NAVS: &[&str] = &["OptionSet", "GlobalOptionSet"];
    Some(match type_name {
        "AttributeMetadata" => (&[], &[]),
        "StringAttributeMetadata" => (
            &["MaxLength", "DatabaseLength", "Format", "FormatName"],
            &[],
        ),
        "MemoAttributeMetadata" => (&["MaxLength", "Format"], &[]),
        "IntegerAttributeMetadata" => (&["MinValue", "MaxValue", "Format"], &[]),
        "BigIntAttributeMetadata" => (&["MinValue", "MaxValue"], &[]),
        "DecimalAttributeMetadata" => (&["MinValue", "MaxValue", "Precision"], &[]),
        "DoubleAttributeMetadata" => (&["MinValue", "MaxValue", "Precision"], &[]),
        "MoneyAttributeMetadata" => (
            &[
                "MinValue",
                "MaxValue",
                "Precision",
                "PrecisionSource",
                "IsBaseCurrency",
            ],
            &[],
        ),
        "BooleanAttributeMetadata" => (&["DefaultValue"], OPTION_NAVS),
        "DateTimeAttributeMetadata" => (
            &["Format", "DateTimeBehavior", "CanChangeDateTimeBehavior"],
            &[],
        ),
        "UniqueIdentifierAttributeMetadata" => (&[], &[]),
        "PicklistAttributeMetadata"
        | "StateAttributeMetadata"
        | "StatusAttributeMetadata"
        | "MultiSelectPicklistAttributeMetadata" => (&["DefaultFormValue"], OPTION_NAVS),
        "LookupAttributeMetadata" => (&["Targets", "Format"], &[]),
        "ImageAttributeMetadata" | "FileAttributeMetadata" => (&["MaxSizeInKB"], &[]),
        "EntityNameAttributeMetadata" | "ManagedPropertyAttributeMetadata" => (&[], &[]),
        _ => return None,
    })
}

const OPTION_SET_PROPS: &[&str] = &[
    "MetadataId",
    "Name",
    "DisplayName",
    "Description",
    "IsGlobal",
    "IsCustomOptionSet",
    "IsManaged",
    "OptionSetType",
    "IntroducedVersion",
    "ExternalTypeName",
    "IsCustomizable",
    "Options",
];
const BOOLEAN_OPTION_SET_PROPS: &[&str] = &[
    "MetadataId",
    "Name",
    "DisplayName",
    "Description",
    "IsGlobal",
    "IsCustomOptionSet",
    "IsManaged",
    "OptionSetType",
    "IntroducedVersion",
    "ExternalTypeName",
    "IsCustomizable",
    "TrueOption",
    "FalseOption",
];

const RELATIONSHIP_PROPS: &[&str] = &[
    "MetadataId",
    "SchemaName",
    "RelationshipType",
    "IsCustomRelationship",
    "IsManaged",
    "IsValidForAdvancedFind",
    "SecurityTypes",
    "IntroducedVersion",
    "IsCustomizable",
];
const ONE_TO_MANY_PROPS: &[&str] = &[
    "ReferencedAttribute",
    "ReferencedEntity",
    "ReferencingAttribute",
    "ReferencingEntity",
    "ReferencedEntityNavigationPropertyName",
    "ReferencingEntityNavigationPropertyName",
    "IsHierarchical",
    "RelationshipBehavior",
    "CascadeConfiguration",
];
const MANY_TO_MANY_PROPS: &[&str] = &[
    "Entity1LogicalName",
    "Entity2LogicalName",
    "IntersectEntityName",
    "Entity1IntersectAttribute",
    "Entity2IntersectAttribute",
    "Entity1NavigationPropertyName",
    "Entity2NavigationPropertyName",
];

const KEY_PROPS: &[&str] = &[
    "MetadataId",
    "LogicalName",
    "SchemaName",
    "EntityLogicalName",
    "KeyAttributes",
    "EntityKeyIndexStatus",
    "DisplayName",
    "IsManaged",
    "IsCustomizable",
];

/// A declared type: its properties and navigation properties (`None`: no such type).
fn declared(type_name: &str) -> Option<(Vec<&'static str>, &'static [&'static str])> {
    if let Some((extra, navs)) = attribute_type_extra(type_name) {
        let mut props = ATTRIBUTE_PROPS.to_vec();
        props.extend_from_slice(extra);
        return Some((props, navs));
    }
    Some(match type_name {
        "EntityMetadata" => (ENTITY_PROPS.to_vec(), ENTITY_NAVS),
        "OptionSetMetadata" => (OPTION_SET_PROPS.to_vec(), &[]),
        "BooleanOptionSetMetadata" => (BOOLEAN_OPTION_SET_PROPS.to_vec(), &[]),
        "OptionSetMetadataBase" => (OPTION_SET_PROPS[..11].to_vec(), &[]),
        "RelationshipMetadataBase" => (RELATIONSHIP_PROPS.to_vec(), &[]),
        "OneToManyRelationshipMetadata" => {
            let mut props = RELATIONSHIP_PROPS.to_vec();
            props.extend_from_slice(ONE_TO_MANY_PROPS);
            (props, &[])
        }
        "ManyToManyRelationshipMetadata" => {
            let mut props = RELATIONSHIP_PROPS.to_vec();
            props.extend_from_slice(MANY_TO_MANY_PROPS);
            (props, &[])
        }
        "EntityKeyMetadata" => (KEY_PROPS.to_vec(), &[]),
        _ => return None,
    })
}

/// Whether a node of `concrete` type may appear where `declared` is declared.
fn derives_from(concrete: &str, declared: &str) -> bool {
    concrete == declared
        || (declared == "AttributeMetadata" && concrete.ends_with("AttributeMetadata"))
        || (declared == "RelationshipMetadataBase" && concrete.ends_with("RelationshipMetadata"))
        || (declared == "OptionSetMetadataBase" && concrete.ends_with("OptionSetMetadata"))
}

// ---------------------------------------------------------------------------------------
// Building the nodes from the schema.

fn option_items(
    options: &[(i64, String)],
    id_source: &str,
    states: Option<&Table>,
    status: bool,
) -> Value {
    Value::Array(
        options
            .iter()
            .map(|(value, text)| {
                let mut option = json!({
                    "Value": value,
                    "Color": null,
                    "IsManaged": true,
                    "ExternalValue": null,
                    "ParentValues": [],
                    "Tag": null,
                    "IsHidden": false,
                    "MetadataId": null,
                    "HasChanged": null,
                    "Label": label(text, &format!("{id_source}/{value}")),
                    "Description": label("", ""),
                });
                if let Some(table) = states {
                    if status {
                        option["@odata.type"] = json!(format!("#{NS}StatusOptionMetadata"));
                        option["State"] = json!(table.state_of(*value));
                        option["TransitionData"] = Value::Null;
                    } else {
                        option["@odata.type"] = json!(format!("#{NS}StateOptionMetadata"));
                        option["DefaultStatus"] = json!(table.default_status(*value));
                        option["InvariantName"] = json!(text.replace(' ', ""));
                    }
                }
                option
            })
            .collect(),
    )
}

fn option_set_node(
    name: &str,
    display: &str,
    options: &[(i64, String)],
    global: bool,
    set_type: &str,
    states: Option<&Table>,
) -> Node {
    let id_source = format!("optionset/{name}");
    Node {
        type_name: "OptionSetMetadata",
        props: vec![
            ("MetadataId", json!(metadata_id("optionset", name))),
            ("Name", json!(name)),
            (
                "DisplayName",
                label(display, &format!("{id_source}/display")),
            ),
            ("Description", label("", "")),
            ("IsGlobal", json!(global)),
            ("IsCustomOptionSet", json!(global)),
            ("IsManaged", json!(!global)),
            ("OptionSetType", json!(set_type)),
            ("IntroducedVersion", json!("1.0")),
            ("ExternalTypeName", Value::Null),
            ("IsCustomizable", managed(true, "iscustomizable")),
            (
                "Options",
                option_items(options, &id_source, states, set_type == "Status"),
            ),
        ],
        navs: Vec::new(),
    }
}

fn boolean_option_set_node(table: &Table, column: &Column) -> Node {
    let name = format!("{}_{}", table.logical_name, column.name);
    let id_source = format!("optionset/{name}");
    let option = |value: i64, text: &str| {
        json!({
            "Value": value, "Color": null, "IsManaged": true, "ExternalValue": null,
            "ParentValues": [], "Tag": null, "IsHidden": false, "MetadataId": null,
            "HasChanged": null, "Label": label(text, &format!("{id_source}/{value}")),
            "Description": label("", ""),
        })
    };
    Node {
        type_name: "BooleanOptionSetMetadata",
        props: vec![
            ("MetadataId", json!(metadata_id("optionset", &name))),
            ("Name", json!(name)),
            (
                "DisplayName",
                label(&column.display_name, &format!("{id_source}/display")),
            ),
            ("Description", label("", "")),
            ("IsGlobal", json!(false)),
            ("IsCustomOptionSet", json!(column.custom)),
            ("IsManaged", json!(!column.custom)),
            ("OptionSetType", json!("Boolean")),
            ("IntroducedVersion", json!("1.0")),
            ("ExternalTypeName", Value::Null),
            ("IsCustomizable", managed(true, "iscustomizable")),
            ("TrueOption", option(1, "Yes")),
            ("FalseOption", option(0, "No")),
        ],
        navs: Vec::new(),
    }
}

/// The attribute type of a column: metadata type, `AttributeType`, `AttributeTypeName`.
fn attribute_kind(table: &Table, column: &Column) -> (&'static str, &'static str, &'static str) {
    match &column.kind {
        Kind::PrimaryId | Kind::Guid => (
            "UniqueIdentifierAttributeMetadata",
            "Uniqueidentifier",
            "UniqueidentifierType",
        ),
        Kind::String { max_length } if *max_length > 4000 => {
            ("MemoAttributeMetadata", "Memo", "MemoType")
        }
        Kind::String { .. } => ("StringAttributeMetadata", "String", "StringType"),
        Kind::Int => ("IntegerAttributeMetadata", "Integer", "IntegerType"),
        Kind::BigInt => ("BigIntAttributeMetadata", "BigInt", "BigIntType"),
        Kind::Decimal => ("DecimalAttributeMetadata", "Decimal", "DecimalType"),
        Kind::Money => ("MoneyAttributeMetadata", "Money", "MoneyType"),
        Kind::Bool => ("BooleanAttributeMetadata", "Boolean", "BooleanType"),
        Kind::DateTime => ("DateTimeAttributeMetadata", "DateTime", "DateTimeType"),
        Kind::OptionSet(_) if column.name == "statecode" && !table.status_states.is_empty() => {
            ("StateAttributeMetadata", "State", "StateType")
        }
        Kind::OptionSet(_) if column.name == "statuscode" && !table.status_states.is_empty() => {
            ("StatusAttributeMetadata", "Status", "StatusType")
        }
        Kind::OptionSet(_) => ("PicklistAttributeMetadata", "Picklist", "PicklistType"),
        Kind::Lookup(_) if column.name == "ownerid" => {
            ("LookupAttributeMetadata", "Owner", "OwnerType")
        }
        Kind::Lookup(targets) if targets.len() > 1 => {
            ("LookupAttributeMetadata", "Customer", "CustomerType")
        }
        Kind::Lookup(_) => ("LookupAttributeMetadata", "Lookup", "LookupType"),
    }
}

fn attribute_node(schema: &Schema, table: &Table, column: &Column, number: usize) -> Node {
    let (type_name, attribute_type, type_display) = attribute_kind(table, column);
    let id_source = format!("attribute/{}/{}", table.logical_name, column.name);
    let is_id = column.name == table.primary_id;
    let system_set = matches!(
        column.name.as_str(),
        "createdon"
            | "modifiedon"
            | "createdby"
            | "modifiedby"
            | "versionnumber"
            | "owningbusinessunit"
    );
    let required = if is_id
        || column.name == "ownerid"
        || column.name == "statecode"
        || column.name == "statuscode"
    {
        "SystemRequired"
    } else if column.name == table.primary_name {
        "ApplicationRequired"
    } else {
        "None"
    };
    let mut props: Vec<(&'static str, Value)> = vec![
        (
            "MetadataId",
            json!(metadata_id(
                "attribute",
                &format!("{}/{}", table.logical_name, column.name)
            )),
        ),
        ("LogicalName", json!(column.name)),
        (
            "SchemaName",
            json!(schema_name(&column.name, !column.custom)),
        ),
        ("EntityLogicalName", json!(table.logical_name)),
        ("AttributeType", json!(attribute_type)),
        ("AttributeTypeName", json!({"Value": type_display})),
        ("AttributeOf", Value::Null),
        ("ColumnNumber", json!(number)),
        ("IsPrimaryId", json!(is_id)),
        ("IsPrimaryName", json!(column.name == table.primary_name)),
        ("IsCustomAttribute", json!(column.custom)),
        ("IsManaged", json!(!column.custom)),
        ("IsLogical", json!(false)),
        ("IsSecured", json!(false)),
        ("IsValidForCreate", json!(!system_set)),
        ("IsValidForUpdate", json!(!system_set && !is_id)),
        ("IsValidForRead", json!(true)),
        (
            "IsValidForAdvancedFind",
            managed(true, "canmodifysearchsettings"),
        ),
        ("IsFilterable", json!(true)),
        ("IsSearchable", json!(true)),
        ("IsRetrievable", json!(true)),
        ("IntroducedVersion", json!("1.0")),
        ("SourceType", json!(0)),
        (
            "DisplayName",
            label(&column.display_name, &format!("{id_source}/display")),
        ),
        ("Description", label("", "")),
        (
            "RequiredLevel",
            json!({"Value": required, "CanBeChanged": !is_id, "ManagedPropertyLogicalName": "canmodifyrequirementlevelsettings"}),
        ),
        ("IsCustomizable", managed(true, "iscustomizable")),
        ("IsAuditEnabled", managed(false, "canmodifyauditsettings")),
    ];
    let mut navs = Vec::new();
    match &column.kind {
        Kind::String { max_length } => {
            props.push(("MaxLength", json!(max_length)));
            if type_name == "StringAttributeMetadata" {
                props.push(("DatabaseLength", json!(u64::from(*max_length) * 2)));
            }
            props.push(("Format", json!("Text")));
            if type_name == "StringAttributeMetadata" {
                props.push(("FormatName", json!({"Value": "Text"})));
            }
        }
        Kind::Int => {
            props.push(("MinValue", json!(i32::MIN)));
            props.push(("MaxValue", json!(i32::MAX)));
            props.push(("Format", json!("None")));
        }
        Kind::BigInt => {
            props.push(("MinValue", json!(i64::MIN)));
            props.push(("MaxValue", json!(i64::MAX)));
        }
        Kind::Decimal => {
            props.push(("MinValue", json!(-100_000_000_000.0)));
            props.push(("MaxValue", json!(100_000_000_000.0)));
            props.push(("Precision", json!(2)));
        }
        Kind::Money => {
            props.push(("MinValue", json!(-922_337_203_685_477.0)));
            props.push(("MaxValue", json!(922_337_203_685_477.0)));
            props.push(("Precision", json!(2)));
            props.push(("PrecisionSource", json!(2)));
            props.push(("IsBaseCurrency", json!(false)));
        }
        Kind::Bool => {
            props.push(("DefaultValue", json!(false)));
            navs.push((
                "OptionSet",
                Nav::One(Some(Box::new(boolean_option_set_node(table, column)))),
            ));
            navs.push(("GlobalOptionSet", Nav::One(None)));
        }
        Kind::DateTime => {
            props.push(("Format", json!("DateAndTime")));
            props.push(("DateTimeBehavior", json!({"Value": "UserLocal"})));
            props.push((
                "CanChangeDateTimeBehavior",
                managed(false, "canchangedatetimebehavior"),
            ));
        }
        Kind::OptionSet(options) => {
            let set_type = match type_name {
                "StateAttributeMetadata" => "State",
                "StatusAttributeMetadata" => "Status",
                _ => "Picklist",
            };
            let default = if set_type == "Picklist" {
                json!(-1)
            } else {
                Value::Null
            };
            props.push(("DefaultFormValue", default));
            let states = (set_type != "Picklist").then_some(table);
            let global = column
                .global_option_set
                .as_deref()
                .and_then(|name| schema.option_set(name));
            let local = match global {
                Some(set) => {
                    option_set_node(&set.name, &set.name, &set.options, true, set_type, states)
                }
                None => option_set_node(
                    &format!("{}_{}", table.logical_name, column.name),
                    &column.display_name,
                    options,
                    false,
                    set_type,
                    states,
                ),
            };
            navs.push(("OptionSet", Nav::One(Some(Box::new(local.clone())))));
            navs.push(("GlobalOptionSet", Nav::One(global.map(|_| Box::new(local)))));
        }
        Kind::Lookup(targets) => {
            let names: Vec<&str> = targets.iter().map(|t| t.table.as_str()).collect();
            props.push(("Targets", json!(names)));
            props.push(("Format", Value::Null));
        }
        Kind::PrimaryId | Kind::Guid => {}
    }
    Node {
        type_name,
        props,
        navs,
    }
}

/// One lookup target as a 1:N relationship (`ReferencedEntity` 1 → N `ReferencingEntity`).
fn relationship_node(
    schema: &Schema,
    referencing: &Table,
    column: &Column,
    target: &LookupTarget,
) -> Node {
    let referenced = schema.by_name(&target.table);
    let custom = column.custom;
    let self_referencing = referencing.logical_name == target.table;
    let mut props: Vec<(&'static str, Value)> = vec![
        (
            "MetadataId",
            json!(metadata_id("relationship", &target.relationship)),
        ),
        ("SchemaName", json!(target.relationship)),
        ("RelationshipType", json!("OneToManyRelationship")),
        ("IsCustomRelationship", json!(custom)),
        ("IsManaged", json!(!custom)),
        ("IsValidForAdvancedFind", json!(true)),
        ("SecurityTypes", json!("Append")),
        ("IntroducedVersion", json!("1.0")),
        ("IsCustomizable", managed(true, "iscustomizable")),
    ];
    props.extend([
        (
            "ReferencedAttribute",
            json!(referenced.map_or("", |t| t.primary_id.as_str())),
        ),
        ("ReferencedEntity", json!(target.table)),
        ("ReferencingAttribute", json!(column.name)),
        ("ReferencingEntity", json!(referencing.logical_name)),
        (
            "ReferencedEntityNavigationPropertyName",
            json!(target.relationship),
        ),
        (
            "ReferencingEntityNavigationPropertyName",
            json!(target.navigation),
        ),
        ("IsHierarchical", json!(self_referencing)),
        ("RelationshipBehavior", json!(0)),
        (
            "CascadeConfiguration",
            json!({
                "Assign": "NoCascade", "Delete": "RemoveLink", "Archive": "NoCascade",
                "Merge": "NoCascade", "Reparent": "NoCascade", "Share": "NoCascade",
                "Unshare": "NoCascade", "RollupView": "NoCascade",
            }),
        ),
    ]);
    Node {
        type_name: "OneToManyRelationshipMetadata",
        props,
        navs: Vec::new(),
    }
}

/// Every 1:N relationship of the schema, in table and column order.
fn all_relationships(schema: &Schema) -> Vec<Node> {
    let mut out = Vec::new();
    for table in &schema.tables {
        for column in &table.columns {
            if let Kind::Lookup(targets) = &column.kind {
                for target in targets {
                    out.push(relationship_node(schema, table, column, target));
                }
            }
        }
    }
    out
}

fn key_node(table: &Table, key: &super::schema::AltKey) -> Node {
    let id_source = format!("key/{}/{}", table.logical_name, key.name);
    Node {
        type_name: "EntityKeyMetadata",
        props: vec![
            (
                "MetadataId",
                json!(metadata_id(
                    "key",
                    &format!("{}/{}", table.logical_name, key.name)
                )),
            ),
            ("LogicalName", json!(key.name)),
            ("SchemaName", json!(key.name)),
            ("EntityLogicalName", json!(table.logical_name)),
            ("KeyAttributes", json!(key.columns)),
            ("EntityKeyIndexStatus", json!("Active")),
            ("DisplayName", label(&key.name, &id_source)),
            ("IsManaged", json!(!table.custom)),
            ("IsCustomizable", managed(true, "iscustomizable")),
        ],
        navs: Vec::new(),
    }
}

fn entity_node(schema: &Schema, table: &Table) -> Node {
    let logical = &table.logical_name;
    let schema_name = schema_name(logical, !table.custom);
    let relationships = all_relationships(schema);
    let (one_to_many, many_to_one): (Vec<Node>, Vec<Node>) = (
        relationships
            .iter()
            .filter(|r| r.text("ReferencedEntity") == logical)
            .cloned()
            .collect(),
        relationships
            .iter()
            .filter(|r| r.text("ReferencingEntity") == logical)
            .cloned()
            .collect(),
    );
    Node {
        type_name: "EntityMetadata",
        props: vec![
            ("MetadataId", json!(metadata_id("entity", logical))),
            ("LogicalName", json!(logical)),
            ("SchemaName", json!(schema_name)),
            ("EntitySetName", json!(table.entity_set)),
            ("LogicalCollectionName", json!(table.entity_set)),
            ("CollectionSchemaName", json!(format!("{schema_name}s"))),
            ("PrimaryIdAttribute", json!(table.primary_id)),
            ("PrimaryNameAttribute", json!(table.primary_name)),
            ("PrimaryImageAttribute", Value::Null),
            ("ObjectTypeCode", json!(table.object_type_code)),
            ("OwnershipType", json!(table.ownership.metadata_name())),
            ("TableType", json!("Standard")),
            ("IsActivity", json!(false)),
            ("IsActivityParty", json!(false)),
            ("IsCustomEntity", json!(table.custom)),
            ("IsManaged", json!(!table.custom)),
            ("IsPrivate", json!(false)),
            ("IsIntersect", json!(false)),
            ("IsLogicalEntity", json!(false)),
            ("IsValidForAdvancedFind", json!(true)),
            ("IsAvailableOffline", json!(true)),
            ("HasActivities", json!(false)),
            ("HasNotes", json!(false)),
            ("ChangeTrackingEnabled", json!(false)),
            ("EntityColor", Value::Null),
            ("IntroducedVersion", json!("1.0")),
            (
                "DisplayName",
                label(&table.display_name, &format!("entity/{logical}/display")),
            ),
            (
                "DisplayCollectionName",
                label(
                    &table.display_collection_name,
                    &format!("entity/{logical}/collection"),
                ),
            ),
            ("Description", label("", "")),
            ("IsCustomizable", managed(true, "iscustomizable")),
            (
                "CanCreateAttributes",
                managed(table.ownership != Ownership::None, "cancreateattributes"),
            ),
            ("IsAuditEnabled", managed(false, "canmodifyauditsettings")),
        ],
        navs: vec![
            (
                "Attributes",
                Nav::Many(
                    "AttributeMetadata",
                    table
                        .columns
                        .iter()
                        .enumerate()
                        .map(|(i, c)| attribute_node(schema, table, c, i + 1))
                        .collect(),
                ),
            ),
            (
                "OneToManyRelationships",
                Nav::Many("OneToManyRelationshipMetadata", one_to_many),
            ),
            (
                "ManyToOneRelationships",
                Nav::Many("OneToManyRelationshipMetadata", many_to_one),
            ),
            (
                "ManyToManyRelationships",
                Nav::Many("ManyToManyRelationshipMetadata", Vec::new()),
            ),
            (
                "Keys",
                Nav::Many(
                    "EntityKeyMetadata",
                    table.keys.iter().map(|k| key_node(table, k)).collect(),
                ),
            ),
        ],
    }
}

fn global_option_set_nodes(schema: &Schema) -> Vec<Node> {
    schema
        .option_sets
        .iter()
        .map(|set| option_set_node(&set.name, &set.name, &set.options, true, "Picklist", None))
        .collect()
}

// ---------------------------------------------------------------------------------------
// Query options over nodes.

/// `$select`, `$filter` and `$expand` for one level.
#[derive(Debug, Default)]
struct Options {
    select: Option<String>,
    filter: Option<Expr>,
    expand: Vec<ExpandItem>,
}

impl Options {
    fn from_item(item: &ExpandItem) -> ApiResult<Self> {
        if item.orderby.is_some() {
            return Err(ApiError::unsupported_query_option("$orderby"));
        }
        if item.top.is_some() {
            return Err(ApiError::unsupported_query_option("$top"));
        }
        if item.is_ref {
            return Err(ApiError::bad_request(
                "0x80060888",
                "Expand with $ref is not supported on metadata navigation properties.",
            ));
        }
        Ok(Self {
            select: item.select.clone(),
            filter: item
                .filter
                .as_deref()
                .map(|f| filter::parse(f, &[]))
                .transpose()?,
            expand: item.expand.clone(),
        })
    }
}

fn unknown(name: &str, type_name: &str) -> ApiError {
    ApiError::unknown_property(name, type_name)
}

/// The selected property names, checked against the declared type.
fn select_names(select: Option<&str>, declared_type: &str) -> ApiResult<Option<Vec<String>>> {
    let Some(text) = select else { return Ok(None) };
    let (props, _) = declared(declared_type).unwrap_or_default();
    let mut names = Vec::new();
    for name in text.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        if !props.contains(&name) {
            return Err(unknown(name, declared_type));
        }
        names.push(name.to_owned());
    }
    Ok(Some(names))
}

/// Renders a node as its declared type with the query options of its level.
fn render(node: &Node, declared_type: &str, options: &Options) -> ApiResult<Ordered> {
    let (_, navs) = declared(declared_type).unwrap_or_default();
    let select = select_names(options.select.as_deref(), declared_type)?;
    let mut out = Ordered::default();
    if node.type_name != declared_type {
        out.push("@odata.type", json!(format!("#{NS}{}", node.type_name)));
    }
    for (name, value) in &node.props {
        let wanted = select
            .as_ref()
            .is_none_or(|names| *name == "MetadataId" || names.iter().any(|n| n == name));
        if wanted {
            out.push(*name, value.clone());
        }
    }
    for item in &options.expand {
        if !navs.contains(&item.name.as_str()) {
            return Err(unknown(&item.name, declared_type));
        }
        let inner = Options::from_item(item)?;
        let value = match node.nav(&item.name) {
            Some(Nav::One(Some(child))) => to_value(render(child, child.type_name, &inner)?),
            Some(Nav::One(None)) | None => Value::Null,
            Some(Nav::Many(item_type, children)) => {
                let mut rows = Vec::new();
                for child in children {
                    if let Some(condition) = &inner.filter
                        && !matches(condition, child, item_type)?
                    {
                        continue;
                    }
                    rows.push(to_value(render(child, item_type, &inner)?));
                }
                Value::Array(rows)
            }
        };
        out.push(item.name.clone(), value);
    }
    Ok(out)
}

fn to_value(ordered: Ordered) -> Value {
    // `Ordered` keeps member order when serialized; nested values go through serde_json's
    // map, whose order (sorted) is what Dataverse's clients cannot depend on anyway.
    let mut map = Map::new();
    for (name, value) in ordered.0 {
        map.insert(name, value);
    }
    Value::Object(map)
}

/// Evaluates a `$filter` condition against a node's properties.
fn matches(expr: &Expr, node: &Node, declared_type: &str) -> ApiResult<bool> {
    let (props, _) = declared(declared_type).unwrap_or_default();
    let value_of = |path: &str| -> ApiResult<Value> {
        let mut parts = path.split('/');
        let first = parts.next().unwrap_or_default();
        if !props.contains(&first) {
            return Err(unknown(first, declared_type));
        }
        let mut value = node.prop(first).cloned().unwrap_or(Value::Null);
        for part in parts {
            value = value.get(part).cloned().unwrap_or(Value::Null);
        }
        Ok(value)
    };
    Ok(match expr {
        Expr::And(items) => {
            for item in items {
                if !matches(item, node, declared_type)? {
                    return Ok(false);
                }
            }
            true
        }
        Expr::Or(items) => {
            for item in items {
                if matches(item, node, declared_type)? {
                    return Ok(true);
                }
            }
            false
        }
        Expr::Not(inner) => !matches(inner, node, declared_type)?,
        Expr::Compare {
            property,
            op,
            value,
        } => compare(&value_of(property)?, *op, value),
        Expr::Func {
            func,
            property,
            value,
        } => {
            let actual = value_of(property)?;
            let text = actual.as_str().unwrap_or_default().to_ascii_lowercase();
            let value = value.to_ascii_lowercase();
            match func {
                Func::Contains => text.contains(&value),
                Func::StartsWith => text.starts_with(&value),
                Func::EndsWith => text.ends_with(&value),
            }
        }
        Expr::In { property, values } => {
            let actual = value_of(property)?;
            values.iter().any(|v| compare(&actual, Op::Eq, v))
        }
        Expr::Like { .. } => false,
    })
}

fn compare(actual: &Value, op: Op, literal: &Literal) -> bool {
    use std::cmp::Ordering;
    let ordering = match (actual, literal) {
        (Value::Null, Literal::Null) => Some(Ordering::Equal),
        (Value::Null, _) | (_, Literal::Null) => None,
        (Value::String(a), Literal::String(b) | Literal::Guid(b) | Literal::DateTime(b)) => {
            Some(a.to_ascii_lowercase().cmp(&b.to_ascii_lowercase()))
        }
        (Value::Bool(a), Literal::Bool(b)) => Some(a.cmp(b)),
        (Value::Number(a), Literal::Int(b)) => a.as_f64().and_then(|a| a.partial_cmp(&(*b as f64))),
        (Value::Number(a), Literal::Decimal(b)) => a.as_f64().and_then(|a| a.partial_cmp(b)),
        _ => None,
    };
    match (op, ordering) {
        (Op::Eq, Some(o)) => o == Ordering::Equal,
        (Op::Ne, Some(o)) => o != Ordering::Equal,
        (Op::Ne, None) => true,
        (Op::Gt, Some(o)) => o == Ordering::Greater,
        (Op::Ge, Some(o)) => o != Ordering::Less,
        (Op::Lt, Some(o)) => o == Ordering::Less,
        (Op::Le, Some(o)) => o != Ordering::Greater,
        (_, None) => false,
    }
}

// ---------------------------------------------------------------------------------------
// Addressing.

/// A key segment of the metadata API: a `MetadataId`, or `Name='value'` by an alternate key.
fn find_by_key<'a>(
    nodes: &'a [Node],
    key: &str,
    alternate: &[&str],
) -> ApiResult<Option<&'a Node>> {
    let pairs = filter::parse_key(key)?;
    let found = match pairs.as_slice() {
        [(None | Some(_), Literal::Guid(id))] => nodes.iter().find(|n| n.text("MetadataId") == id),
        [(Some(name), Literal::String(value))] if alternate.contains(&name.as_str()) => nodes
            .iter()
            .find(|n| n.text(name).eq_ignore_ascii_case(value)),
        _ => {
            return Err(ApiError::bad_request(
                "0x80060888",
                format!(
                    "The key '({key})' is not valid here: use the MetadataId or {}.",
                    alternate
                        .iter()
                        .map(|a| format!("{a}='…'"))
                        .collect::<Vec<_>>()
                        .join(" or ")
                ),
            ));
        }
    };
    Ok(found)
}

/// A cast segment (`Microsoft.Dynamics.CRM.PicklistAttributeMetadata`) under `base`.
fn cast(segment: &Segment, base: &str) -> ApiResult<&'static str> {
    let name = segment.name.strip_prefix(NS).unwrap_or_default();
    if name == "EnumAttributeMetadata" && base == "AttributeMetadata" {
        return Err(ApiError::bad_request(
            "0x80060888",
            format!(
                "The type '{NS}EnumAttributeMetadata' is abstract; cast to a concrete type such as '{NS}PicklistAttributeMetadata'."
            ),
        ));
    }
    let known = [
        "AttributeMetadata",
        "StringAttributeMetadata",
        "MemoAttributeMetadata",
        "IntegerAttributeMetadata",
        "BigIntAttributeMetadata",
        "DecimalAttributeMetadata",
        "DoubleAttributeMetadata",
        "MoneyAttributeMetadata",
        "BooleanAttributeMetadata",
        "DateTimeAttributeMetadata",
        "UniqueIdentifierAttributeMetadata",
        "PicklistAttributeMetadata",
        "StateAttributeMetadata",
        "StatusAttributeMetadata",
        "MultiSelectPicklistAttributeMetadata",
        "LookupAttributeMetadata",
        "ImageAttributeMetadata",
        "FileAttributeMetadata",
        "EntityNameAttributeMetadata",
        "ManagedPropertyAttributeMetadata",
        "RelationshipMetadataBase",
        "OneToManyRelationshipMetadata",
        "ManyToManyRelationshipMetadata",
        "OptionSetMetadataBase",
        "OptionSetMetadata",
        "BooleanOptionSetMetadata",
    ];
    match known.iter().find(|k| **k == name) {
        Some(found) if segment.key.is_none() && derives_from(found, base) => Ok(found),
        _ => Err(ApiError::segment_not_found(&segment.name)),
    }
}

/// What a metadata path addresses.
struct Target {
    /// The `@odata.context` path (`EntityDefinitions('account')/Attributes`).
    context: String,
    declared_type: &'static str,
    /// One item (`/$entity`), or a collection.
    single: bool,
    nodes: Vec<Node>,
}

fn entity_not_found(key: &str) -> ApiError {
    let name = key
        .split_once('=')
        .map_or(key, |(_, v)| v)
        .trim_matches('\'');
    ApiError::new(
        StatusCode::NOT_FOUND,
        "0x80040217",
        format!(
            "Could not find an entity with name {name} and id 00000000-0000-0000-0000-000000000000"
        ),
    )
}

fn not_found(what: &str, key: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "0x80040217",
        format!("Could not find {what} with key ({key})."),
    )
}

/// Resolves the path below a metadata set.
fn target(schema: &Schema, segments: &[Segment]) -> ApiResult<Target> {
    let (first, rest) = segments
        .split_first()
        .ok_or_else(|| ApiError::segment_not_found(""))?;
    match first.name.as_str() {
        "EntityDefinitions" => {
            let nodes: Vec<Node> = schema
                .tables
                .iter()
                .map(|t| entity_node(schema, t))
                .collect();
            let Some(key) = &first.key else {
                if let Some(next) = rest.first() {
                    return Err(ApiError::segment_not_found(&next.name));
                }
                return Ok(Target {
                    context: "EntityDefinitions".into(),
                    declared_type: "EntityMetadata",
                    single: false,
                    nodes,
                });
            };
            let entity =
                find_by_key(&nodes, key, &["LogicalName"])?.ok_or_else(|| entity_not_found(key))?;
            let context_key = if key.contains('=') {
                format!("'{}'", entity.text("LogicalName"))
            } else {
                entity.text("MetadataId").to_owned()
            };
            below_entity(entity, &format!("EntityDefinitions({context_key})"), rest)
        }
        "RelationshipDefinitions" => {
            let nodes = all_relationships(schema);
            collection_or_item(
                "RelationshipDefinitions",
                "RelationshipMetadataBase",
                nodes,
                first.key.as_deref(),
                &["SchemaName"],
                rest,
                "a relationship",
            )
        }
        "GlobalOptionSetDefinitions" => collection_or_item(
            "GlobalOptionSetDefinitions",
            "OptionSetMetadataBase",
            global_option_set_nodes(schema),
            first.key.as_deref(),
            &["Name"],
            rest,
            "an option set",
        ),
        other => Err(ApiError::segment_not_found(other)),
    }
}

/// A collection (`…/Attributes`), optionally cast, or one of its items by key, optionally
/// cast.
fn collection_or_item(
    context: &str,
    declared_type: &'static str,
    nodes: Vec<Node>,
    key: Option<&str>,
    alternate: &[&str],
    rest: &[Segment],
    what: &str,
) -> ApiResult<Target> {
    let (cast_type, extra) = match rest.split_first() {
        Some((segment, extra)) => (Some(cast(segment, declared_type)?), extra),
        None => (None, rest),
    };
    if let Some(next) = extra.first() {
        return Err(ApiError::segment_not_found(&next.name));
    }
    let declared = cast_type.unwrap_or(declared_type);
    let cast_suffix = cast_type.map(|t| format!("/{NS}{t}")).unwrap_or_default();
    match key {
        None => Ok(Target {
            context: format!("{context}{cast_suffix}"),
            declared_type: declared,
            single: false,
            nodes: nodes
                .into_iter()
                .filter(|n| derives_from(n.type_name, declared))
                .collect(),
        }),
        Some(key) => {
            let node = find_by_key(&nodes, key, alternate)?
                .ok_or_else(|| not_found(what, key))?
                .clone();
            if !derives_from(node.type_name, declared) {
                return Err(ApiError::segment_not_found(&format!("{NS}{declared}")));
            }
            Ok(Target {
                context: format!("{context}{cast_suffix}"),
                declared_type: declared,
                single: true,
                nodes: vec![node],
            })
        }
    }
}

fn below_entity(entity: &Node, context: &str, rest: &[Segment]) -> ApiResult<Target> {
    let Some((nav_segment, tail)) = rest.split_first() else {
        return Ok(Target {
            context: "EntityDefinitions".into(),
            declared_type: "EntityMetadata",
            single: true,
            nodes: vec![entity.clone()],
        });
    };
    let name = nav_segment.name.as_str();
    let Some(Nav::Many(item_type, children)) = entity.nav(name) else {
        return Err(ApiError::segment_not_found(name));
    };
    let alternate: &[&str] = match name {
        "Attributes" | "Keys" => &["LogicalName"],
        _ => &["SchemaName"],
    };
    collection_or_item(
        &format!("{context}/{name}"),
        item_type,
        children.clone(),
        nav_segment.key.as_deref(),
        alternate,
        tail,
        if name == "Attributes" {
            "an attribute"
        } else {
            "an item"
        },
    )
}

/// Answers a request to the metadata API.
pub(crate) fn respond(call: &Call<'_>, segments: &[Segment]) -> ApiResult<DvResponse> {
    if *call.method() != Method::GET {
        return Err(ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "0x80040800",
            "The d365 emulator serves table definitions read-only; change the schema file (--schema) to change them.",
        ));
    }
    let query = &call.options;
    if query.orderby.is_some() {
        return Err(ApiError::unsupported_query_option("$orderby"));
    }
    if query.top.is_some() {
        return Err(ApiError::unsupported_query_option("$top"));
    }
    if query.skiptoken.is_some() || query.count.is_some() || query.fetch_xml.is_some() {
        return Err(ApiError::bad_request(
            "0x80060888",
            "The metadata API answers $select, $filter and $expand only.",
        ));
    }
    let target = target(call.ctx.schema, segments)?;
    let options = Options {
        select: query.select.clone(),
        filter: query
            .filter
            .as_deref()
            .map(|f| filter::parse(f, &query.aliases))
            .transpose()?,
        expand: query
            .expand
            .as_deref()
            .map(expand::parse)
            .transpose()?
            .unwrap_or_default(),
    };
    // `$select` names are checked even when no item comes back.
    select_names(options.select.as_deref(), target.declared_type)?;
    let list = context_list(options.select.as_deref(), &options.expand);
    let mut context = format!("{}$metadata#{}", call.ctx.api_root, target.context);
    if !list.is_empty() {
        let _ = write!(context, "({list})");
    }
    if target.single {
        context.push_str("/$entity");
        let node = &target.nodes[0];
        let mut body = Ordered::default();
        body.push("@odata.context", Value::String(context));
        body.0
            .extend(render(node, target.declared_type, &options)?.0);
        return Ok(DvResponse::json(StatusCode::OK, &body));
    }
    let mut rows = Vec::new();
    for node in &target.nodes {
        if let Some(condition) = &options.filter
            && !matches(condition, node, target.declared_type)?
        {
            continue;
        }
        rows.push(render(node, target.declared_type, &options)?);
    }
    let mut head = Ordered::default();
    head.push("@odata.context", Value::String(context));
    Ok(DvResponse::json(StatusCode::OK, &Collection { head, rows }))
}

/// The metadata types and sets as CSDL, for `$metadata`: the same declared property lists
/// the API checks `$select` against.
pub(crate) fn csdl_types(out: &mut String) {
    let types: &[(&str, Option<&str>, bool)] = &[
        ("EntityMetadata", None, false),
        ("AttributeMetadata", None, false),
        ("EnumAttributeMetadata", Some("AttributeMetadata"), true),
        ("StringAttributeMetadata", Some("AttributeMetadata"), false),
        ("MemoAttributeMetadata", Some("AttributeMetadata"), false),
        ("IntegerAttributeMetadata", Some("AttributeMetadata"), false),
        ("BigIntAttributeMetadata", Some("AttributeMetadata"), false),
        ("DecimalAttributeMetadata", Some("AttributeMetadata"), false),
        ("DoubleAttributeMetadata", Some("AttributeMetadata"), false),
        ("MoneyAttributeMetadata", Some("AttributeMetadata"), false),
        ("BooleanAttributeMetadata", Some("AttributeMetadata"), false),
        (
            "DateTimeAttributeMetadata",
            Some("AttributeMetadata"),
            false,
        ),
        (
            "UniqueIdentifierAttributeMetadata",
            Some("AttributeMetadata"),
            false,
        ),
        (
            "PicklistAttributeMetadata",
            Some("EnumAttributeMetadata"),
            false,
        ),
        (
            "StateAttributeMetadata",
            Some("EnumAttributeMetadata"),
            false,
        ),
        (
            "StatusAttributeMetadata",
            Some("EnumAttributeMetadata"),
            false,
        ),
        (
            "MultiSelectPicklistAttributeMetadata",
            Some("EnumAttributeMetadata"),
            false,
        ),
        ("LookupAttributeMetadata", Some("AttributeMetadata"), false),
        ("ImageAttributeMetadata", Some("AttributeMetadata"), false),
        ("FileAttributeMetadata", Some("AttributeMetadata"), false),
        (
            "EntityNameAttributeMetadata",
            Some("EnumAttributeMetadata"),
            false,
        ),
        (
            "ManagedPropertyAttributeMetadata",
            Some("AttributeMetadata"),
            false,
        ),
        ("RelationshipMetadataBase", None, true),
        (
            "OneToManyRelationshipMetadata",
            Some("RelationshipMetadataBase"),
            false,
        ),
        (
            "ManyToManyRelationshipMetadata",
            Some("RelationshipMetadataBase"),
            false,
        ),
        ("OptionSetMetadataBase", None, true),
        ("OptionSetMetadata", Some("OptionSetMetadataBase"), false),
        (
            "BooleanOptionSetMetadata",
            Some("OptionSetMetadataBase"),
            false,
        ),
        ("EntityKeyMetadata", None, false),
    ];
    for (name, base, is_abstract) in types {
        let (props, navs) = declared(name).unwrap_or((ATTRIBUTE_PROPS.to_vec(), &[]));
        let inherited: Vec<&str> = base
            .and_then(declared)
            .map(|(p, _)| p)
            .or_else(|| base.map(|_| ATTRIBUTE_PROPS.to_vec()))
            .unwrap_or_default();
        let _ = write!(out, r#"      <EntityType Name="{name}""#);
        if let Some(base) = base {
            let _ = write!(out, r#" BaseType="mscrm.{base}""#);
        }
        if *is_abstract {
            out.push_str(r#" Abstract="true""#);
        }
        out.push_str(">\n");
        if base.is_none() {
            out.push_str("        <Key><PropertyRef Name=\"MetadataId\" /></Key>\n");
        }
        for prop in props.iter().filter(|p| !inherited.contains(p)) {
            let edm = if *prop == "MetadataId" {
                "Edm.Guid"
            } else {
                "Edm.Untyped"
            };
            let _ = writeln!(out, r#"        <Property Name="{prop}" Type="{edm}" />"#);
        }
        let inherited_navs: &[&str] = base.and_then(declared).map_or(&[], |(_, n)| n);
        for nav in navs.iter().filter(|n| !inherited_navs.contains(n)) {
            let target = match *nav {
                "Attributes" => "Collection(mscrm.AttributeMetadata)",
                "OneToManyRelationships" | "ManyToOneRelationships" => {
                    "Collection(mscrm.OneToManyRelationshipMetadata)"
                }
                "ManyToManyRelationships" => "Collection(mscrm.ManyToManyRelationshipMetadata)",
                "Keys" => "Collection(mscrm.EntityKeyMetadata)",
                _ => "mscrm.OptionSetMetadataBase",
            };
            let _ = writeln!(
                out,
                r#"        <NavigationProperty Name="{nav}" Type="{target}" />"#
            );
        }
        out.push_str("      </EntityType>\n");
    }
}

/// The metadata entity sets, for the CSDL's entity container.
pub(crate) fn csdl_sets(out: &mut String) {
    for (set, entity_type) in [
        ("EntityDefinitions", "EntityMetadata"),
        ("RelationshipDefinitions", "RelationshipMetadataBase"),
        ("GlobalOptionSetDefinitions", "OptionSetMetadataBase"),
    ] {
        let _ = writeln!(
            out,
            r#"        <EntitySet Name="{set}" EntityType="Microsoft.Dynamics.CRM.{entity_type}" />"#
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every node the schema produces carries exactly the properties its type declares, so
    /// `$select`, `$filter` and the CSDL agree with the answers.
    #[test]
    fn nodes_have_the_declared_properties() {
        let schema = Schema::build(&[]).expect("schema");
        let mut checked = std::collections::HashSet::new();
        let mut stack: Vec<Node> = schema
            .tables
            .iter()
            .map(|t| entity_node(&schema, t))
            .collect();
        while let Some(node) = stack.pop() {
            let (props, navs) = declared(node.type_name).expect(node.type_name);
            let names: Vec<&str> = node.props.iter().map(|(n, _)| *n).collect();
            assert_eq!(names, props, "{}", node.type_name);
            let nav_names: Vec<&str> = node.navs.iter().map(|(n, _)| *n).collect();
            assert_eq!(nav_names, navs, "{}", node.type_name);
            checked.insert(node.type_name);
            for (_, nav) in node.navs {
                match nav {
                    Nav::One(Some(child)) => stack.push(*child),
                    Nav::One(None) => {}
                    Nav::Many(_, children) => stack.extend(children),
                }
            }
        }
        for expected in [
            "EntityMetadata",
            "StringAttributeMetadata",
            "PicklistAttributeMetadata",
            "StateAttributeMetadata",
            "StatusAttributeMetadata",
            "LookupAttributeMetadata",
            "MoneyAttributeMetadata",
            "BooleanAttributeMetadata",
            "BooleanOptionSetMetadata",
            "OptionSetMetadata",
            "OneToManyRelationshipMetadata",
            "EntityKeyMetadata",
        ] {
            assert!(checked.contains(expected), "{expected} never produced");
        }
    }

    #[test]
    fn metadata_ids_are_stable_and_distinct() {
        assert_eq!(
            metadata_id("entity", "contact"),
            metadata_id("entity", "contact")
        );
        assert_ne!(
            metadata_id("entity", "contact"),
            metadata_id("attribute", "contact")
        );
        assert!(uuid::Uuid::parse_str(&metadata_id("entity", "contact")).is_ok());
        assert_eq!(
            metadata_id("entity", "account"),
            "70816501-edb9-4740-a16c-6a5efbc05d84"
        );
    }

    #[test]
    fn schema_names_follow_dataverse_spelling() {
        assert_eq!(schema_name("account", true), "Account");
        assert_eq!(schema_name("new_project", false), "new_Project");
        assert_eq!(schema_name("industrycode", true), "Industrycode");
    }
}
