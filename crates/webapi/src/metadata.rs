//! Table and column definitions from the metadata Web API (`EntityDefinitions`,
//! `…/Attributes`, typed casts for choices), read into the few fields programs act on:
//! a table's entity set name and primary key, a column's type, whether it can be written,
//! and a choice's options.
//!
//! Dataverse answers every metadata query in one response (no paging), so each call here is
//! one request; the responses are bounded by the client's `max_response_size`.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError};

use http::Method;
use serde::Deserialize;

use crate::pipeline::{Prepared, Replay};
use crate::{Client, Guid, WebApiError};

/// The `EntityMetadata` properties a [`TableDefinition`] reads.
const TABLE_SELECT: &str = "MetadataId,LogicalName,SchemaName,EntitySetName,PrimaryIdAttribute,\
PrimaryNameAttribute,DisplayName,OwnershipType,IsCustomEntity,ObjectTypeCode";

/// The casts whose columns have options, read with their option sets expanded.
const CHOICE_CASTS: [&str; 4] = [
    "PicklistAttributeMetadata",
    "MultiSelectPicklistAttributeMetadata",
    "StateAttributeMetadata",
    "StatusAttributeMetadata",
];

/// How many tables' definitions one client remembers by entity set name; a program
/// touching more asks the service again.
const MAX_CACHED_TABLES: usize = 1_000;

/// A table's definition (`EntityMetadata`): the names and keys programs act on.
///
/// ```no_run
/// # async fn run(client: d365_webapi::Client) -> Result<(), d365_webapi::WebApiError> {
/// let account = client.table("account").await?;
/// assert_eq!(account.entity_set_name, "accounts");
/// assert_eq!(account.primary_id_attribute, "accountid");
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase")]
#[non_exhaustive]
pub struct TableDefinition {
    /// The definition's id (`MetadataId`).
    pub metadata_id: Guid,
    /// The logical name (`account`): what `@odata.type` and FetchXML use.
    pub logical_name: String,
    /// The schema name (`Account`).
    pub schema_name: String,
    /// The entity set name (`accounts`): the URL segment of its records.
    pub entity_set_name: String,
    /// The primary key column (`accountid`).
    pub primary_id_attribute: String,
    /// The primary name column (`name`), if the table has one.
    #[serde(default)]
    pub primary_name_attribute: Option<String>,
    /// The display name in the caller's language (`Account`).
    #[serde(default, deserialize_with = "label")]
    pub display_name: Option<String>,
    /// `UserOwned`, `OrganizationOwned`, ….
    #[serde(default)]
    pub ownership_type: Option<String>,
    /// Whether the table was made by a customizer rather than shipped with Dataverse.
    #[serde(default)]
    pub is_custom_entity: bool,
    /// The table's type code (`1` for account).
    #[serde(default)]
    pub object_type_code: Option<i64>,
}

/// A column's definition (`AttributeMetadata` and its typed kinds).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase")]
#[non_exhaustive]
pub struct ColumnDefinition {
    /// The logical name (`accountcategorycode`): the JSON property of its value.
    pub logical_name: String,
    /// The schema name.
    #[serde(default)]
    pub schema_name: String,
    /// The type (`String`, `Integer`, `Money`, `Picklist`, `Lookup`, `DateTime`, …).
    #[serde(default)]
    pub attribute_type: String,
    /// The finer type name (`StringType`, `MultiSelectPicklistType`, `ImageType`, …).
    #[serde(default, deserialize_with = "managed_value")]
    pub attribute_type_name: Option<String>,
    /// The display name in the caller's language.
    #[serde(default, deserialize_with = "label")]
    pub display_name: Option<String>,
    /// `None`, `SystemRequired`, `ApplicationRequired` or `Recommended`.
    #[serde(default, deserialize_with = "managed_value")]
    pub required_level: Option<String>,
    /// Whether this is the table's primary key.
    #[serde(default)]
    pub is_primary_id: bool,
    /// Whether this is the table's primary name.
    #[serde(default)]
    pub is_primary_name: bool,
    /// Whether a create may set it.
    #[serde(default)]
    pub is_valid_for_create: bool,
    /// Whether an update may set it.
    #[serde(default)]
    pub is_valid_for_update: bool,
    /// Whether it can be read.
    #[serde(default)]
    pub is_valid_for_read: bool,
    /// The column this one belongs to (the name column of a lookup, say), if any.
    #[serde(default)]
    pub attribute_of: Option<String>,
    /// The longest text a string or memo column holds.
    #[serde(default)]
    pub max_length: Option<i64>,
    /// The tables a lookup may point at.
    #[serde(default)]
    pub targets: Vec<String>,
    /// A choice's options (choice, choices, state and status columns); empty otherwise.
    #[serde(skip)]
    pub options: Vec<ChoiceOption>,
}

impl ColumnDefinition {
    /// Whether a program may write this column on create or update (not a system column, not
    /// a part of another column).
    #[must_use]
    pub fn is_writable(&self) -> bool {
        (self.is_valid_for_create || self.is_valid_for_update) && self.attribute_of.is_none()
    }

    /// The value of the option whose label is `label` (compared without regard to case), as
    /// an import maps "Preferred Customer" to `1`.
    #[must_use]
    pub fn option_value(&self, label: &str) -> Option<i64> {
        self.options
            .iter()
            .find(|option| {
                option
                    .label
                    .as_deref()
                    .is_some_and(|text| text.eq_ignore_ascii_case(label.trim()))
            })
            .map(|option| option.value)
    }
}

/// One option of a choice column.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ChoiceOption {
    /// The stored value.
    pub value: i64,
    /// Its label in the caller's language.
    pub label: Option<String>,
}

/// The `value` array every metadata collection answers with.
#[derive(Deserialize)]
struct Collection<T> {
    value: Vec<T>,
}

/// A choice column read through its cast, with its option set expanded.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ChoiceColumn {
    logical_name: String,
    #[serde(default)]
    option_set: Option<OptionSet>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct OptionSet {
    #[serde(default)]
    options: Vec<WireOption>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct WireOption {
    value: i64,
    #[serde(default, deserialize_with = "label")]
    label: Option<String>,
}

/// A `Label` (`{"UserLocalizedLabel":{"Label":"Account",…},"LocalizedLabels":[…]}`) as the
/// text in the caller's language, else the first localized one.
fn label<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Label {
        #[serde(default)]
        user_localized_label: Option<Localized>,
        #[serde(default)]
        localized_labels: Vec<Localized>,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Localized {
        label: String,
    }
    let label = Option::<Label>::deserialize(deserializer)?;
    Ok(label.and_then(|label| {
        label
            .user_localized_label
            .or_else(|| label.localized_labels.into_iter().next())
            .map(|localized| localized.label)
    }))
}

/// A managed property or enum wrapper (`{"Value":"ApplicationRequired",…}`) as its value.
fn managed_value<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Managed {
        value: Option<String>,
    }
    Ok(Option::<Managed>::deserialize(deserializer)?.and_then(|managed| managed.value))
}

/// A logical name as it may appear inside `LogicalName='…'`: Dataverse's names are letters,
/// digits and `_`, so anything else is refused before it reaches a URL.
fn checked_name<'a>(what: &str, name: &'a str) -> Result<&'a str, WebApiError> {
    let valid = !name.is_empty()
        && name.len() <= 128
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if valid {
        Ok(name)
    } else {
        Err(WebApiError::InvalidInput(format!(
            "`{name}` is not a {what} (letters, digits and `_`, such as `account`)"
        )))
    }
}

/// The remembered definitions of one client, by entity set name (lower case).
#[derive(Debug, Default)]
pub(crate) struct TableCache {
    by_entity_set: std::sync::RwLock<HashMap<String, Arc<TableDefinition>>>,
}

impl TableCache {
    fn get(&self, entity_set: &str) -> Option<Arc<TableDefinition>> {
        self.by_entity_set
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&entity_set.to_ascii_lowercase())
            .cloned()
    }

    fn remember(&self, table: Arc<TableDefinition>) {
        let mut tables = self
            .by_entity_set
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if tables.len() >= MAX_CACHED_TABLES {
            tables.clear();
        }
        tables.insert(table.entity_set_name.to_ascii_lowercase(), table);
    }
}

impl Client {
    /// Every table the caller can see (`EntityDefinitions`), private ones left out.
    ///
    /// # Errors
    ///
    /// [`WebApiError`].
    pub async fn tables(&self) -> Result<Vec<TableDefinition>, WebApiError> {
        let path = format!("EntityDefinitions?$select={TABLE_SELECT}&$filter=IsPrivate eq false");
        let mut tables = self
            .metadata::<Collection<TableDefinition>>(&path)
            .await?
            .value;
        tables.sort_by(|a, b| a.logical_name.cmp(&b.logical_name));
        Ok(tables)
    }

    /// One table's definition by logical name (`EntityDefinitions(LogicalName='account')`).
    ///
    /// # Errors
    ///
    /// [`WebApiError`]; [`ErrorKind::NotFound`](crate::ErrorKind::NotFound) when there is no
    /// such table.
    pub async fn table(&self, logical_name: &str) -> Result<TableDefinition, WebApiError> {
        let name = checked_name("table's logical name", logical_name)?;
        let path = format!("EntityDefinitions(LogicalName='{name}')?$select={TABLE_SELECT}");
        let table: TableDefinition = self.metadata(&path).await?;
        Ok(table)
    }

    /// The table whose records are at `entity_set` (`accounts` → `account`), remembered by
    /// this client (and its clones) after the first call.
    ///
    /// # Errors
    ///
    /// [`WebApiError`]; [`WebApiError::InvalidInput`] when no table has that entity set.
    pub async fn table_for_entity_set(
        &self,
        entity_set: &str,
    ) -> Result<Arc<TableDefinition>, WebApiError> {
        let set = checked_name("entity set name", entity_set)?;
        if let Some(table) = self.inner.tables.get(set) {
            return Ok(table);
        }
        let path =
            format!("EntityDefinitions?$select={TABLE_SELECT}&$filter=EntitySetName eq '{set}'");
        let found = self.metadata::<Collection<TableDefinition>>(&path).await?;
        let table = found.value.into_iter().next().ok_or_else(|| {
            WebApiError::InvalidInput(format!(
                "no table has the entity set `{set}`: `d365 tables` lists them (entity set names are plural, such as `accounts`)"
            ))
        })?;
        let table = Arc::new(table);
        self.inner.tables.remember(Arc::clone(&table));
        Ok(table)
    }

    /// A table's columns (`…/Attributes`), sorted by logical name, with the options of its
    /// choice, choices, state and status columns.
    ///
    /// ```no_run
    /// # async fn run(client: d365_webapi::Client) -> Result<(), d365_webapi::WebApiError> {
    /// let columns = client.columns("account").await?;
    /// let category = columns.iter().find(|c| c.logical_name == "accountcategorycode");
    /// assert_eq!(category.and_then(|c| c.option_value("Preferred Customer")), Some(1));
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// [`WebApiError`]; [`ErrorKind::NotFound`](crate::ErrorKind::NotFound) when there is no
    /// such table.
    pub async fn columns(&self, logical_name: &str) -> Result<Vec<ColumnDefinition>, WebApiError> {
        let name = checked_name("table's logical name", logical_name)?;
        let base = format!("EntityDefinitions(LogicalName='{name}')/Attributes");
        let all = self.metadata::<Collection<ColumnDefinition>>(&base);
        let paths = CHOICE_CASTS.map(|cast| {
            format!(
                "{base}/Microsoft.Dynamics.CRM.{cast}?$select=LogicalName&$expand=OptionSet($select=Options)"
            )
        });
        let choices = futures_util::future::try_join_all(
            paths
                .iter()
                .map(|path| self.metadata::<Collection<ChoiceColumn>>(path)),
        );
        let (all, choices) = futures_util::future::try_join(all, choices).await?;
        let mut options: HashMap<String, Vec<ChoiceOption>> = HashMap::new();
        for column in choices.into_iter().flat_map(|found| found.value) {
            let found = column
                .option_set
                .map(|set| set.options)
                .unwrap_or_default()
                .into_iter()
                .map(|option| ChoiceOption {
                    value: option.value,
                    label: option.label,
                });
            options
                .entry(column.logical_name)
                .or_default()
                .extend(found);
        }
        let mut columns = all.value;
        for column in &mut columns {
            if let Some(found) = options.remove(&column.logical_name) {
                column.options = found;
            }
        }
        columns.sort_by(|a, b| a.logical_name.cmp(&b.logical_name));
        Ok(columns)
    }

    /// The single-valued navigation property of each lookup column and target
    /// (`ManyToOneRelationships`): `(column, target table, navigation property)`, as an
    /// import binds `parentcustomerid` to an account through `parentcustomerid_account`.
    pub(crate) async fn lookup_navigations(
        &self,
        logical_name: &str,
    ) -> Result<Vec<(String, String, String)>, WebApiError> {
        #[derive(Deserialize)]
        #[serde(rename_all = "PascalCase")]
        struct Relationship {
            referencing_attribute: String,
            referenced_entity: String,
            #[serde(default)]
            referencing_entity_navigation_property_name: Option<String>,
        }
        let name = checked_name("table's logical name", logical_name)?;
        let path = format!(
            "EntityDefinitions(LogicalName='{name}')/ManyToOneRelationships?$select=ReferencingAttribute,ReferencedEntity,ReferencingEntityNavigationPropertyName"
        );
        let found = self.metadata::<Collection<Relationship>>(&path).await?;
        Ok(found
            .value
            .into_iter()
            .filter_map(|relationship| {
                let navigation = relationship.referencing_entity_navigation_property_name?;
                Some((
                    relationship.referencing_attribute,
                    relationship.referenced_entity,
                    navigation,
                ))
            })
            .collect())
    }

    /// GETs a metadata path and decodes it.
    async fn metadata<T: serde::de::DeserializeOwned>(&self, path: &str) -> Result<T, WebApiError> {
        let request = Prepared::new(Method::GET, self.url(path)?, Replay::Safe);
        let answer = self.send_get(request).await?;
        serde_json::from_slice(&answer.body).map_err(|error| {
            WebApiError::Decode(format!(
                "the metadata answer to `{path}` is not as expected: {error}"
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_and_managed_values_are_read_from_their_wrappers() {
        let column: ColumnDefinition = serde_json::from_value(serde_json::json!({
            "@odata.type": "#Microsoft.Dynamics.CRM.StringAttributeMetadata",
            "LogicalName": "name",
            "SchemaName": "Name",
            "AttributeType": "String",
            "AttributeTypeName": {"Value": "StringType"},
            "DisplayName": {"LocalizedLabels": [{"Label": "Account Name", "LanguageCode": 1033}],
                            "UserLocalizedLabel": {"Label": "Account Name", "LanguageCode": 1033}},
            "RequiredLevel": {"Value": "ApplicationRequired", "CanBeChanged": true},
            "IsValidForCreate": true,
            "IsValidForUpdate": true,
            "MaxLength": 160
        }))
        .unwrap();
        assert_eq!(column.display_name.as_deref(), Some("Account Name"));
        assert_eq!(
            column.required_level.as_deref(),
            Some("ApplicationRequired")
        );
        assert_eq!(column.attribute_type_name.as_deref(), Some("StringType"));
        assert_eq!(column.max_length, Some(160));
        assert!(column.is_writable());

        let empty: ColumnDefinition = serde_json::from_value(serde_json::json!({
            "LogicalName": "x",
            "DisplayName": {"LocalizedLabels": [], "UserLocalizedLabel": null},
            "AttributeOf": "parentid"
        }))
        .unwrap();
        assert_eq!(empty.display_name, None);
        assert!(!empty.is_writable());
    }

    #[test]
    fn names_that_could_leave_the_key_are_refused() {
        for hostile in ["", "account')", "a b", "account'or'1'='1", &"a".repeat(129)] {
            assert!(checked_name("table", hostile).is_err(), "{hostile}");
        }
        assert!(checked_name("table", "new_project_task").is_ok());
    }
}
