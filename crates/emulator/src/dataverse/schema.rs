//! Tables: the public schema-file types (TOML), the built-in tables (account, contact,
//! systemuser, businessunit, organization) and the resolved model every other module reads.

use std::collections::HashMap;
use std::path::Path;

use serde::Deserialize;

use crate::error::EmulatorError;

/// A schema file: the tables the emulator serves beside the built-in ones.
///
/// ```toml
/// [[tables]]
/// logical_name = "new_project"
/// entity_set_name = "new_projects"
/// primary_id = "new_projectid"
/// primary_name = "new_name"
/// columns = [
///   { name = "new_code", type = "string", max_length = 20 },
///   { name = "new_budget", type = "money" },
///   { name = "new_stage", type = "optionset", options = [{ value = 1, label = "Draft" }] },
///   { name = "new_accountid", type = "lookup", target = "account" },
/// ]
/// keys = [{ name = "new_code_key", columns = ["new_code"] }]
/// ```
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct SchemaConfig {
    /// The tables.
    #[serde(default)]
    pub tables: Vec<TableConfig>,
}

impl SchemaConfig {
    /// Parses a TOML schema document.
    pub fn from_toml_str(text: &str) -> Result<Self, EmulatorError> {
        toml::from_str(text).map_err(|err| EmulatorError::InvalidConfig(err.to_string()))
    }

    /// Reads and parses a TOML schema file.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, EmulatorError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| EmulatorError::ReadConfig {
            path: path.to_owned(),
            source,
        })?;
        Self::from_toml_str(&text)
    }
}

/// One table (entity).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct TableConfig {
    /// Logical name, e.g. `new_project` (lower case).
    pub logical_name: String,
    /// Entity set name used in URLs, e.g. `new_projects`.
    pub entity_set_name: String,
    /// Primary key column (a GUID), e.g. `new_projectid`.
    pub primary_id: String,
    /// Primary name column (a string), e.g. `new_name`.
    pub primary_name: String,
    /// Further columns.
    #[serde(default)]
    pub columns: Vec<ColumnConfig>,
    /// Alternate keys.
    #[serde(default)]
    pub keys: Vec<KeyConfig>,
}

/// A column.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct ColumnConfig {
    /// Logical name (lower case).
    pub name: String,
    /// Its type.
    #[serde(rename = "type")]
    pub kind: ColumnType,
    /// Strings: maximum length (default 100; longer values fail with 0x80044331).
    #[serde(default)]
    pub max_length: Option<u32>,
    /// Option sets: the values and their labels (the FormattedValue).
    #[serde(default)]
    pub options: Vec<OptionConfig>,
    /// Lookups: the logical name of the table it points to; several, comma-separated, for a
    /// customer-style lookup (`"account,contact"` → `parentcustomerid_account`, ...).
    #[serde(default)]
    pub target: Option<String>,
    /// Lookups: the relationship (schema) name, which is the collection-valued navigation
    /// property on the target table; comma-separated, one per target. Default
    /// `{table}_{column}` (`{table}_{column}_{target}` with several targets).
    #[serde(default)]
    pub relationship: Option<String>,
}

/// A column type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum ColumnType {
    /// `Edm.String`.
    String,
    /// `Edm.Int32`.
    Int,
    /// `Edm.Decimal`.
    Decimal,
    /// `Edm.Decimal` with a currency FormattedValue.
    Money,
    /// `Edm.Boolean` (FormattedValue Yes/No).
    Bool,
    /// `Edm.DateTimeOffset`, stored in UTC.
    DateTime,
    /// `Edm.Guid`.
    Guid,
    /// `Edm.Int32` with labels.
    OptionSet,
    /// A reference to a row of another table (`_x_value`, `x@odata.bind`).
    Lookup,
}

/// An option set value and its label.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct OptionConfig {
    /// The integer value.
    pub value: i64,
    /// The label.
    pub label: String,
}

/// An alternate key: one or more columns whose values are unique together.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct KeyConfig {
    /// Key name.
    pub name: String,
    /// Its columns (logical names).
    pub columns: Vec<String>,
}

/// How a value of a column is typed.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Kind {
    PrimaryId,
    String {
        max_length: u32,
    },
    Int,
    BigInt,
    Decimal,
    Money,
    Bool,
    DateTime,
    Guid,
    OptionSet(Vec<(i64, String)>),
    /// Targets (logical names), with the relationship name of each.
    Lookup(Vec<LookupTarget>),
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct LookupTarget {
    pub(crate) table: String,
    pub(crate) relationship: String,
    /// The single-valued navigation property: the column name, or `{column}_{table}` when
    /// the lookup has several targets (`parentcustomerid_account`).
    pub(crate) navigation: String,
}

impl Kind {
    pub(crate) fn edm(&self) -> &'static str {
        match self {
            Self::PrimaryId | Self::Guid | Self::Lookup(_) => "Edm.Guid",
            Self::String { .. } => "Edm.String",
            Self::Int | Self::OptionSet(_) => "Edm.Int32",
            Self::BigInt => "Edm.Int64",
            Self::Decimal | Self::Money => "Edm.Decimal",
            Self::Bool => "Edm.Boolean",
            Self::DateTime => "Edm.DateTimeOffset",
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Column {
    pub(crate) name: String,
    pub(crate) kind: Kind,
    /// Set by the service (createdon, modifiedon, versionnumber): ignored in bodies.
    pub(crate) read_only: bool,
}

#[derive(Debug, Clone)]
pub(crate) struct AltKey {
    pub(crate) name: String,
    pub(crate) columns: Vec<String>,
}

/// A collection-valued navigation property: the rows of `table` whose lookup `column`
/// points at this row.
#[derive(Debug, Clone)]
pub(crate) struct CollectionNav {
    pub(crate) name: String,
    pub(crate) table: String,
    pub(crate) column: String,
}

#[derive(Debug, Clone)]
pub(crate) struct Table {
    pub(crate) logical_name: String,
    pub(crate) entity_set: String,
    pub(crate) primary_id: String,
    pub(crate) primary_name: String,
    /// Every column, the primary id first.
    pub(crate) columns: Vec<Column>,
    pub(crate) keys: Vec<AltKey>,
    pub(crate) collections: Vec<CollectionNav>,
}

/// What a name in `$select`, `$filter` or `$orderby` stands for.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Prop<'a> {
    pub(crate) column: &'a Column,
}

impl Table {
    pub(crate) fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }

    /// Resolves an OData property name (case-sensitive, as Dataverse is).
    pub(crate) fn property(&self, name: &str) -> Option<Prop<'_>> {
        if let Some(inner) = name
            .strip_prefix('_')
            .and_then(|rest| rest.strip_suffix("_value"))
        {
            return self
                .column(inner)
                .filter(|c| matches!(c.kind, Kind::Lookup(_)))
                .map(|column| Prop { column });
        }
        self.column(name)
            .filter(|c| !matches!(c.kind, Kind::Lookup(_)))
            .map(|column| Prop { column })
    }

    /// The OData name of a column (`_x_value` for lookups).
    pub(crate) fn property_name(column: &Column) -> String {
        match column.kind {
            Kind::Lookup(_) => format!("_{}_value", column.name),
            _ => column.name.clone(),
        }
    }

    /// The lookup column and target behind a single-valued navigation property.
    pub(crate) fn navigation(&self, name: &str) -> Option<(&Column, &LookupTarget)> {
        self.columns.iter().find_map(|column| match &column.kind {
            Kind::Lookup(targets) => targets
                .iter()
                .find(|t| t.navigation == name)
                .map(|t| (column, t)),
            _ => None,
        })
    }

    pub(crate) fn collection(&self, name: &str) -> Option<&CollectionNav> {
        self.collections.iter().find(|c| c.name == name)
    }
}

/// All tables, by entity set and by logical name.
#[derive(Debug, Clone)]
pub(crate) struct Schema {
    pub(crate) tables: Vec<Table>,
    by_set: HashMap<String, usize>,
    by_name: HashMap<String, usize>,
}

impl Schema {
    pub(crate) fn by_set(&self, set: &str) -> Option<&Table> {
        self.by_set.get(set).map(|&i| &self.tables[i])
    }

    pub(crate) fn by_name(&self, name: &str) -> Option<&Table> {
        self.by_name.get(name).map(|&i| &self.tables[i])
    }

    /// The built-in tables plus the configured ones.
    pub(crate) fn build(extra: &[TableConfig]) -> Result<Self, EmulatorError> {
        let mut configs = builtin();
        for table in extra {
            if configs.iter().any(|t| {
                t.logical_name == table.logical_name || t.entity_set_name == table.entity_set_name
            }) {
                return Err(invalid(format!(
                    "table '{}' ({}) is defined twice",
                    table.logical_name, table.entity_set_name
                )));
            }
            configs.push(table.clone());
        }
        let names: Vec<String> = configs.iter().map(|t| t.logical_name.clone()).collect();
        let mut tables = Vec::new();
        for config in &configs {
            tables.push(resolve(config, &names)?);
        }
        // Collection-valued navigation properties are the other side of each lookup.
        let mut collections: Vec<(String, CollectionNav)> = Vec::new();
        for table in &tables {
            for column in &table.columns {
                if let Kind::Lookup(targets) = &column.kind {
                    for target in targets {
                        collections.push((
                            target.table.clone(),
                            CollectionNav {
                                name: target.relationship.clone(),
                                table: table.logical_name.clone(),
                                column: column.name.clone(),
                            },
                        ));
                    }
                }
            }
        }
        for (target, nav) in collections {
            if let Some(table) = tables.iter_mut().find(|t| t.logical_name == target) {
                table.collections.push(nav);
            }
        }
        let by_set = tables
            .iter()
            .enumerate()
            .map(|(i, t)| (t.entity_set.clone(), i))
            .collect();
        let by_name = tables
            .iter()
            .enumerate()
            .map(|(i, t)| (t.logical_name.clone(), i))
            .collect();
        Ok(Self {
            tables,
            by_set,
            by_name,
        })
    }
}

fn invalid(message: String) -> EmulatorError {
    EmulatorError::InvalidConfig(message)
}

fn is_identifier(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && !name.starts_with(|c: char| c.is_ascii_digit())
}

fn resolve(config: &TableConfig, tables: &[String]) -> Result<Table, EmulatorError> {
    for name in [
        &config.logical_name,
        &config.primary_id,
        &config.primary_name,
    ] {
        if !is_identifier(name) {
            return Err(invalid(format!(
                "'{name}' is not a logical name (lower-case letters, digits, _)"
            )));
        }
    }
    if config.entity_set_name.is_empty()
        || !config
            .entity_set_name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_')
    {
        return Err(invalid(format!(
            "'{}' is not an entity set name",
            config.entity_set_name
        )));
    }
    let mut columns = vec![Column {
        name: config.primary_id.clone(),
        kind: Kind::PrimaryId,
        read_only: false,
    }];
    if !config.columns.iter().any(|c| c.name == config.primary_name) {
        columns.push(Column {
            name: config.primary_name.clone(),
            kind: Kind::String { max_length: 160 },
            read_only: false,
        });
    }
    for column in &config.columns {
        if !is_identifier(&column.name) {
            return Err(invalid(format!(
                "'{}' is not a logical name (lower-case letters, digits, _)",
                column.name
            )));
        }
        let kind = match column.kind {
            ColumnType::String => Kind::String {
                max_length: column.max_length.unwrap_or(100),
            },
            ColumnType::Int => Kind::Int,
            ColumnType::Decimal => Kind::Decimal,
            ColumnType::Money => Kind::Money,
            ColumnType::Bool => Kind::Bool,
            ColumnType::DateTime => Kind::DateTime,
            ColumnType::Guid => Kind::Guid,
            ColumnType::OptionSet => {
                if column.options.is_empty() {
                    return Err(invalid(format!(
                        "option set column '{}' needs options",
                        column.name
                    )));
                }
                Kind::OptionSet(
                    column
                        .options
                        .iter()
                        .map(|o| (o.value, o.label.clone()))
                        .collect(),
                )
            }
            ColumnType::Lookup => {
                let targets: Vec<&str> = column
                    .target
                    .as_deref()
                    .map(|t| t.split(',').map(str::trim).collect())
                    .unwrap_or_default();
                if targets.is_empty() {
                    return Err(invalid(format!(
                        "lookup column '{}' needs a target table",
                        column.name
                    )));
                }
                let several = targets.len() > 1;
                let relationships: Vec<&str> = column
                    .relationship
                    .as_deref()
                    .map(|r| r.split(',').map(str::trim).collect())
                    .unwrap_or_default();
                if !relationships.is_empty() && relationships.len() != targets.len() {
                    return Err(invalid(format!(
                        "lookup column '{}' needs one relationship name per target",
                        column.name
                    )));
                }
                let mut resolved = Vec::new();
                for (index, target) in targets.iter().enumerate() {
                    if !tables.iter().any(|t| t == target) {
                        return Err(invalid(format!(
                            "lookup column '{}' points at unknown table '{target}'",
                            column.name
                        )));
                    }
                    let relationship = relationships.get(index).map_or_else(
                        || {
                            if several {
                                format!("{}_{}_{target}", config.logical_name, column.name)
                            } else {
                                format!("{}_{}", config.logical_name, column.name)
                            }
                        },
                        |name| (*name).to_owned(),
                    );
                    resolved.push(LookupTarget {
                        table: (*target).to_owned(),
                        relationship,
                        navigation: if several {
                            format!("{}_{target}", column.name)
                        } else {
                            column.name.clone()
                        },
                    });
                }
                Kind::Lookup(resolved)
            }
        };
        if columns.iter().any(|c| c.name == column.name) {
            return Err(invalid(format!(
                "column '{}' of '{}' is defined twice",
                column.name, config.logical_name
            )));
        }
        columns.push(Column {
            name: column.name.clone(),
            kind,
            read_only: false,
        });
    }
    for (name, kind) in [
        ("createdon", Kind::DateTime),
        ("modifiedon", Kind::DateTime),
        ("versionnumber", Kind::BigInt),
    ] {
        if !columns.iter().any(|c| c.name == name) {
            columns.push(Column {
                name: name.to_owned(),
                kind,
                read_only: true,
            });
        }
    }
    let mut keys = Vec::new();
    for key in &config.keys {
        if key.columns.is_empty() {
            return Err(invalid(format!("key '{}' has no columns", key.name)));
        }
        for column in &key.columns {
            if !columns.iter().any(|c| &c.name == column) {
                return Err(invalid(format!(
                    "key '{}' names unknown column '{column}'",
                    key.name
                )));
            }
        }
        keys.push(AltKey {
            name: key.name.clone(),
            columns: key.columns.clone(),
        });
    }
    Ok(Table {
        logical_name: config.logical_name.clone(),
        entity_set: config.entity_set_name.clone(),
        primary_id: config.primary_id.clone(),
        primary_name: config.primary_name.clone(),
        columns,
        keys,
        collections: Vec::new(),
    })
}

/// The built-in tables, written in the schema-file format they document.
const BUILTIN: &str = r#"
[[tables]]
logical_name = "organization"
entity_set_name = "organizations"
primary_id = "organizationid"
primary_name = "name"
columns = [{ name = "name", type = "string", max_length = 160 }]

[[tables]]
logical_name = "businessunit"
entity_set_name = "businessunits"
primary_id = "businessunitid"
primary_name = "name"
columns = [
  { name = "name", type = "string", max_length = 160 },
  { name = "parentbusinessunitid", type = "lookup", target = "businessunit", relationship = "business_unit_parent_business_unit" },
]

[[tables]]
logical_name = "systemuser"
entity_set_name = "systemusers"
primary_id = "systemuserid"
primary_name = "fullname"
columns = [
  { name = "fullname", type = "string", max_length = 200 },
  { name = "domainname", type = "string", max_length = 1024 },
  { name = "internalemailaddress", type = "string", max_length = 100 },
  { name = "applicationid", type = "guid" },
  { name = "azureactivedirectoryobjectid", type = "guid" },
  { name = "isdisabled", type = "bool" },
  { name = "accessmode", type = "optionset", options = [
      { value = 0, label = "Read-Write" }, { value = 1, label = "Administrative" },
      { value = 2, label = "Read" }, { value = 3, label = "Support User" },
      { value = 4, label = "Non-interactive" }, { value = 5, label = "Delegated Admin" } ] },
  { name = "businessunitid", type = "lookup", target = "businessunit", relationship = "business_unit_system_users" },
]

[[tables]]
logical_name = "account"
entity_set_name = "accounts"
primary_id = "accountid"
primary_name = "name"
columns = [
  { name = "name", type = "string", max_length = 160 },
  { name = "accountnumber", type = "string", max_length = 20 },
  { name = "telephone1", type = "string", max_length = 50 },
  { name = "emailaddress1", type = "string", max_length = 100 },
  { name = "websiteurl", type = "string", max_length = 200 },
  { name = "address1_city", type = "string", max_length = 80 },
  { name = "description", type = "string", max_length = 2000 },
  { name = "numberofemployees", type = "int" },
  { name = "revenue", type = "money" },
  { name = "creditlimit", type = "money" },
  { name = "creditonhold", type = "bool" },
  { name = "lastonholdtime", type = "datetime" },
  { name = "industrycode", type = "optionset", options = [
      { value = 1, label = "Accounting" }, { value = 2, label = "Agriculture and Non-petrol Natural Resource Extraction" },
      { value = 3, label = "Broadcasting Printing and Publishing" }, { value = 4, label = "Brokers" },
      { value = 5, label = "Building Supply Retail" }, { value = 6, label = "Business Services" },
      { value = 7, label = "Consulting" }, { value = 8, label = "Consumer Services" } ] },
  { name = "accountcategorycode", type = "optionset", options = [
      { value = 1, label = "Preferred Customer" }, { value = 2, label = "Standard" } ] },
  { name = "statecode", type = "optionset", options = [
      { value = 0, label = "Active" }, { value = 1, label = "Inactive" } ] },
  { name = "primarycontactid", type = "lookup", target = "contact", relationship = "account_primary_contact" },
  { name = "parentaccountid", type = "lookup", target = "account", relationship = "account_parent_account" },
]
keys = [{ name = "accountnumber_key", columns = ["accountnumber"] }]

[[tables]]
logical_name = "contact"
entity_set_name = "contacts"
primary_id = "contactid"
primary_name = "fullname"
columns = [
  { name = "firstname", type = "string", max_length = 50 },
  { name = "lastname", type = "string", max_length = 50 },
  { name = "fullname", type = "string", max_length = 160 },
  { name = "emailaddress1", type = "string", max_length = 100 },
  { name = "telephone1", type = "string", max_length = 50 },
  { name = "jobtitle", type = "string", max_length = 100 },
  { name = "birthdate", type = "datetime" },
  { name = "gendercode", type = "optionset", options = [
      { value = 1, label = "Male" }, { value = 2, label = "Female" } ] },
  { name = "statecode", type = "optionset", options = [
      { value = 0, label = "Active" }, { value = 1, label = "Inactive" } ] },
  { name = "parentcustomerid", type = "lookup", target = "account,contact", relationship = "contact_customer_accounts,contact_customer_contacts" },
]
keys = [{ name = "contact_name_email_key", columns = ["firstname", "emailaddress1"] }]
"#;

fn builtin() -> Vec<TableConfig> {
    SchemaConfig::from_toml_str(BUILTIN)
        .map(|s| s.tables)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_tables_resolve() {
        let schema = Schema::build(&[]).expect("schema");
        let account = schema.by_set("accounts").expect("accounts");
        assert_eq!(account.primary_id, "accountid");
        assert!(account.property("_primarycontactid_value").is_some());
        assert!(account.property("primarycontactid").is_none());
        assert!(account.collection("contact_customer_accounts").is_some());
        let contact = schema.by_name("contact").expect("contact");
        assert!(contact.navigation("parentcustomerid_account").is_some());
        assert!(contact.navigation("parentcustomerid").is_none());
        assert!(contact.collection("account_primary_contact").is_some());
    }

    #[test]
    fn bad_schemas_are_refused() {
        let cases = [
            (
                r#"[[tables]]
logical_name = "Bad"
entity_set_name = "bads"
primary_id = "badid"
primary_name = "name""#,
                "logical name",
            ),
            (
                r#"[[tables]]
logical_name = "x"
entity_set_name = "xs"
primary_id = "xid"
primary_name = "name"
columns = [{ name = "y", type = "lookup", target = "nope" }]"#,
                "unknown table",
            ),
            (
                r#"[[tables]]
logical_name = "account"
entity_set_name = "accounts2"
primary_id = "xid"
primary_name = "name""#,
                "twice",
            ),
            (
                r#"[[tables]]
logical_name = "x"
entity_set_name = "xs"
primary_id = "xid"
primary_name = "name"
keys = [{ name = "k", columns = ["nope"] }]"#,
                "unknown column",
            ),
        ];
        for (text, expected) in cases {
            let config = SchemaConfig::from_toml_str(text).expect("parses");
            let err = Schema::build(&config.tables).expect_err(expected);
            assert!(err.to_string().contains(expected), "{err}");
        }
    }
}
