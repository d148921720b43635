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
    /// The display name the metadata API shows (`DisplayName`); default: the logical name.
    #[serde(default)]
    pub display_name: Option<String>,
    /// The plural display name (`DisplayCollectionName`); default: the entity set name.
    #[serde(default)]
    pub display_collection_name: Option<String>,
    /// Who owns the rows: `user` (default: `ownerid`, `owningbusinessunit`, `statecode` and
    /// `statuscode` are added), `organization`, `business` or `none`.
    #[serde(default)]
    pub ownership: Option<Ownership>,
    /// The bulk messages the table takes, of `CreateMultiple`, `UpdateMultiple` and
    /// `UpsertMultiple` (default: all three). Dataverse's tables differ here; one left out
    /// is refused as the service refuses a message a table has no processor for.
    #[serde(default)]
    pub bulk_messages: Option<Vec<String>>,
}

/// Who owns a table's rows (`OwnershipType` in the metadata API).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Ownership {
    /// `UserOwned`: rows have an owner (a system user) and a state.
    User,
    /// `OrganizationOwned`.
    Organization,
    /// `BusinessOwned` (business units, system users).
    Business,
    /// `None` (the organization itself).
    None,
}

impl Ownership {
    pub(crate) fn metadata_name(self) -> &'static str {
        match self {
            Self::User => "UserOwned",
            Self::Organization => "OrganizationOwned",
            Self::Business => "BusinessOwned",
            Self::None => "None",
        }
    }
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
    /// The display name the metadata API shows; default: the logical name.
    #[serde(default)]
    pub display_name: Option<String>,
    /// Option sets: the name of a global option set (`GlobalOptionSetDefinitions`). The
    /// first column naming it with `options` defines it; others may name it without options.
    #[serde(default)]
    pub option_set: Option<String>,
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
    /// `statuscode` options: the `statecode` value this status belongs to.
    #[serde(default)]
    pub state: Option<i64>,
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
    /// `DisplayName` in the metadata API.
    pub(crate) display_name: String,
    /// Declared by a schema file (`IsCustomAttribute`), not built in or added by the service.
    pub(crate) custom: bool,
    /// The global option set whose options this column uses.
    pub(crate) global_option_set: Option<String>,
}

impl Column {
    fn new(name: &str, kind: Kind, read_only: bool) -> Self {
        Self {
            name: name.to_owned(),
            kind,
            read_only,
            display_name: display_from(name),
            custom: false,
            global_option_set: None,
        }
    }
}

/// A display name from a logical name: `new_project` → `New Project`, `statecode` → `Statecode`.
fn display_from(name: &str) -> String {
    let bare = name.split_once('_').map_or(name, |(prefix, rest)| {
        if prefix.len() <= 5 && !rest.is_empty() && prefix != "address1" {
            rest
        } else {
            name
        }
    });
    bare.split('_')
        .filter(|w| !w.is_empty())
        .map(|word| {
            let mut chars = word.chars();
            chars.next().map_or_else(String::new, |first| {
                first.to_ascii_uppercase().to_string() + chars.as_str()
            })
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// A global option set: a name and its options, shared by the columns that name it.
#[derive(Debug, Clone)]
pub(crate) struct GlobalOptionSet {
    pub(crate) name: String,
    pub(crate) options: Vec<(i64, String)>,
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
    pub(crate) display_name: String,
    pub(crate) display_collection_name: String,
    pub(crate) ownership: Ownership,
    /// From a schema file (`IsCustomEntity`), not built in.
    pub(crate) custom: bool,
    /// `ObjectTypeCode`: Dataverse's for the built-in tables, 10000 and up for the others.
    pub(crate) object_type_code: i32,
    /// `statuscode` value → the `statecode` value it belongs to.
    pub(crate) status_states: Vec<(i64, i64)>,
    /// The bulk messages (`CreateMultiple`, …) the table takes.
    pub(crate) bulk_messages: Vec<String>,
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

    /// The default `statuscode` of a `statecode` (the first status of that state).
    pub(crate) fn default_status(&self, state: i64) -> Option<i64> {
        self.status_states
            .iter()
            .find(|(_, s)| *s == state)
            .map(|(status, _)| *status)
    }

    /// The `statecode` a `statuscode` belongs to.
    pub(crate) fn state_of(&self, status: i64) -> Option<i64> {
        self.status_states
            .iter()
            .find(|(s, _)| *s == status)
            .map(|(_, state)| *state)
    }
}

/// All tables, by entity set and by logical name, and the global option sets.
#[derive(Debug, Clone)]
pub(crate) struct Schema {
    pub(crate) tables: Vec<Table>,
    pub(crate) option_sets: Vec<GlobalOptionSet>,
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
        let builtin_count = configs.len();
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
        let option_sets = global_option_sets(&configs)?;
        let mut tables = Vec::new();
        for (index, config) in configs.iter().enumerate() {
            let origin = if index < builtin_count {
                Origin::Builtin
            } else {
                Origin::Custom(10_000 + i32::try_from(index - builtin_count).unwrap_or(0))
            };
            tables.push(resolve(config, &names, &option_sets, origin)?);
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
        let mut seen = std::collections::HashSet::new();
        for (_, nav) in &collections {
            if !seen.insert(nav.name.clone()) {
                return Err(invalid(format!(
                    "relationship '{}' is defined twice; name the lookups' relationships apart",
                    nav.name
                )));
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
            option_sets,
            by_set,
            by_name,
        })
    }

    pub(crate) fn option_set(&self, name: &str) -> Option<&GlobalOptionSet> {
        self.option_sets.iter().find(|o| o.name == name)
    }
}

/// Where a table comes from: built in (Dataverse's object type codes), or a schema file.
#[derive(Debug, Clone, Copy)]
enum Origin {
    Builtin,
    Custom(i32),
}

/// Dataverse's object type codes of the built-in tables.
fn builtin_object_type_code(logical_name: &str) -> i32 {
    match logical_name {
        "account" => 1,
        "contact" => 2,
        "systemuser" => 8,
        "businessunit" => 10,
        "organization" => 1019,
        "asyncoperation" => 4700,
        _ => 0,
    }
}

/// The global option sets the columns define (`option_set` with `options`).
fn global_option_sets(configs: &[TableConfig]) -> Result<Vec<GlobalOptionSet>, EmulatorError> {
    let mut sets: Vec<GlobalOptionSet> = Vec::new();
    for column in configs.iter().flat_map(|t| &t.columns) {
        let (Some(name), false) = (&column.option_set, column.options.is_empty()) else {
            continue;
        };
        if !is_identifier(name) {
            return Err(invalid(format!(
                "'{name}' is not an option set name (lower-case letters, digits, _)"
            )));
        }
        let options: Vec<(i64, String)> = column
            .options
            .iter()
            .map(|o| (o.value, o.label.clone()))
            .collect();
        match sets.iter().find(|s| &s.name == name) {
            Some(existing) if existing.options != options => {
                return Err(invalid(format!(
                    "global option set '{name}' is defined twice with different options; define its options once"
                )));
            }
            Some(_) => {}
            None => sets.push(GlobalOptionSet {
                name: name.clone(),
                options,
            }),
        }
    }
    Ok(sets)
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

/// The system columns Dataverse adds to a table: timestamps and row version everywhere,
/// who created and last changed a row, and for user-owned tables the owner, its business
/// unit and the state and status (with their default pairs).
fn add_system_columns(
    columns: &mut Vec<Column>,
    config: &TableConfig,
    tables: &[String],
    ownership: Ownership,
    builtin: bool,
) {
    let logical = &config.logical_name;
    let (created, modified, owner, business) = if builtin {
        (
            format!("lk_{logical}base_createdby"),
            format!("lk_{logical}base_modifiedby"),
            format!("user_{}", config.entity_set_name),
            format!("business_unit_{}", config.entity_set_name),
        )
    } else {
        (
            format!("lk_{logical}_createdby"),
            format!("lk_{logical}_modifiedby"),
            format!("user_{logical}"),
            format!("business_unit_{logical}"),
        )
    };
    let lookup = |target: &str, relationship: String, navigation: &str| {
        Kind::Lookup(vec![LookupTarget {
            table: target.to_owned(),
            relationship,
            navigation: navigation.to_owned(),
        }])
    };
    let mut system = vec![
        Column::new("createdon", Kind::DateTime, true),
        Column::new("modifiedon", Kind::DateTime, true),
        Column::new("versionnumber", Kind::BigInt, true),
    ];
    if tables.iter().any(|t| t == "systemuser") {
        system.push(Column::new(
            "createdby",
            lookup("systemuser", created, "createdby"),
            true,
        ));
        system.push(Column::new(
            "modifiedby",
            lookup("systemuser", modified, "modifiedby"),
            true,
        ));
    }
    if ownership == Ownership::User {
        system.push(Column::new(
            "ownerid",
            lookup("systemuser", owner, "ownerid"),
            false,
        ));
        system.push(Column::new(
            "owningbusinessunit",
            lookup("businessunit", business, "owningbusinessunit"),
            true,
        ));
        system.push(Column::new(
            "statecode",
            Kind::OptionSet(vec![(0, "Active".into()), (1, "Inactive".into())]),
            false,
        ));
        system.push(Column::new(
            "statuscode",
            Kind::OptionSet(vec![(1, "Active".into()), (2, "Inactive".into())]),
            false,
        ));
    }
    for mut column in system {
        if !columns.iter().any(|c| c.name == column.name) {
            column.display_name = match column.name.as_str() {
                "createdon" => "Created On".to_owned(),
                "modifiedon" => "Modified On".to_owned(),
                "versionnumber" => "Version Number".to_owned(),
                "createdby" => "Created By".to_owned(),
                "modifiedby" => "Modified By".to_owned(),
                "ownerid" => "Owner".to_owned(),
                "owningbusinessunit" => "Owning Business Unit".to_owned(),
                "statecode" => "Status".to_owned(),
                "statuscode" => "Status Reason".to_owned(),
                _ => column.display_name,
            };
            columns.push(column);
        }
    }
}

fn resolve(
    config: &TableConfig,
    tables: &[String],
    option_sets: &[GlobalOptionSet],
    origin: Origin,
) -> Result<Table, EmulatorError> {
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
    let custom = matches!(origin, Origin::Custom(_));
    let mut columns = vec![Column::new(&config.primary_id, Kind::PrimaryId, false)];
    if !config.columns.iter().any(|c| c.name == config.primary_name) {
        columns.push(Column {
            custom,
            ..Column::new(
                &config.primary_name,
                Kind::String { max_length: 160 },
                false,
            )
        });
    }
    let mut status_states = Vec::new();
    for column in &config.columns {
        if !is_identifier(&column.name) {
            return Err(invalid(format!(
                "'{}' is not a logical name (lower-case letters, digits, _)",
                column.name
            )));
        }
        let mut global_option_set = None;
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
                let options: Vec<(i64, String)> = match &column.option_set {
                    Some(name) => {
                        global_option_set = Some(name.clone());
                        option_sets
                            .iter()
                            .find(|s| &s.name == name)
                            .map(|s| s.options.clone())
                            .ok_or_else(|| {
                                invalid(format!(
                                    "column '{}' names global option set '{name}', which no column defines with options",
                                    column.name
                                ))
                            })?
                    }
                    None => column
                        .options
                        .iter()
                        .map(|o| (o.value, o.label.clone()))
                        .collect(),
                };
                if options.is_empty() {
                    return Err(invalid(format!(
                        "option set column '{}' needs options",
                        column.name
                    )));
                }
                if column.name == "statuscode" {
                    for option in &column.options {
                        if let Some(state) = option.state {
                            status_states.push((option.value, state));
                        }
                    }
                }
                Kind::OptionSet(options)
            }
            ColumnType::Lookup => lookup_kind(config, column, tables)?,
        };
        if columns.iter().any(|c| c.name == column.name) {
            return Err(invalid(format!(
                "column '{}' of '{}' is defined twice",
                column.name, config.logical_name
            )));
        }
        columns.push(Column {
            display_name: column
                .display_name
                .clone()
                .unwrap_or_else(|| display_from(&column.name)),
            custom,
            global_option_set,
            ..Column::new(&column.name, kind, false)
        });
    }
    if let Some(unknown) = config
        .bulk_messages
        .iter()
        .flatten()
        .find(|message| !BULK_MESSAGES.contains(&message.as_str()))
    {
        return Err(invalid(format!(
            "bulk_messages of '{}' names '{unknown}'; the bulk messages are {}",
            config.logical_name,
            BULK_MESSAGES.join(", ")
        )));
    }
    let ownership = config.ownership.unwrap_or(Ownership::User);
    let declared_status = columns.iter().any(|c| c.name == "statuscode");
    add_system_columns(&mut columns, config, tables, ownership, !custom);
    if !declared_status && ownership == Ownership::User {
        status_states = vec![(1, 0), (2, 1)];
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
        display_name: config
            .display_name
            .clone()
            .unwrap_or_else(|| display_from(&config.logical_name)),
        display_collection_name: config
            .display_collection_name
            .clone()
            .unwrap_or_else(|| display_from(&config.entity_set_name)),
        ownership,
        custom,
        object_type_code: match origin {
            Origin::Builtin => builtin_object_type_code(&config.logical_name),
            Origin::Custom(code) => code,
        },
        status_states,
        bulk_messages: config.bulk_messages.clone().unwrap_or_else(|| {
            BULK_MESSAGES
                .iter()
                .map(|&message| message.to_owned())
                .collect()
        }),
    })
}

/// The bulk messages a table takes unless its schema says otherwise.
pub(crate) const BULK_MESSAGES: [&str; 3] = ["CreateMultiple", "UpdateMultiple", "UpsertMultiple"];

/// A lookup column's targets, each with its relationship and navigation property names.
fn lookup_kind(
    config: &TableConfig,
    column: &ColumnConfig,
    tables: &[String],
) -> Result<Kind, EmulatorError> {
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
    Ok(Kind::Lookup(resolved))
}

/// The built-in tables, written in the schema-file format they document.
const BUILTIN: &str = r#"
[[tables]]
logical_name = "organization"
entity_set_name = "organizations"
primary_id = "organizationid"
primary_name = "name"
display_name = "Organization"
display_collection_name = "Organizations"
ownership = "none"
columns = [{ name = "name", type = "string", max_length = 160 }]

[[tables]]
logical_name = "businessunit"
entity_set_name = "businessunits"
primary_id = "businessunitid"
primary_name = "name"
display_name = "Business Unit"
display_collection_name = "Business Units"
ownership = "business"
columns = [
  { name = "name", type = "string", max_length = 160 },
  { name = "parentbusinessunitid", type = "lookup", target = "businessunit", relationship = "business_unit_parent_business_unit" },
]

[[tables]]
logical_name = "systemuser"
entity_set_name = "systemusers"
primary_id = "systemuserid"
primary_name = "fullname"
display_name = "User"
display_collection_name = "Users"
ownership = "business"
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
display_name = "Account"
display_collection_name = "Accounts"
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
  { name = "primarycontactid", type = "lookup", target = "contact", relationship = "account_primary_contact" },
  { name = "parentaccountid", type = "lookup", target = "account", relationship = "account_parent_account" },
]
keys = [{ name = "accountnumber_key", columns = ["accountnumber"] }]

[[tables]]
logical_name = "contact"
entity_set_name = "contacts"
primary_id = "contactid"
primary_name = "fullname"
display_name = "Contact"
display_collection_name = "Contacts"
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
  { name = "parentcustomerid", type = "lookup", target = "account,contact", relationship = "contact_customer_accounts,contact_customer_contacts" },
]
keys = [{ name = "contact_name_email_key", columns = ["firstname", "emailaddress1"] }]

[[tables]]
logical_name = "asyncoperation"
entity_set_name = "asyncoperations"
primary_id = "asyncoperationid"
primary_name = "name"
display_name = "System Job"
display_collection_name = "System Jobs"
columns = [
  { name = "name", type = "string", max_length = 256 },
  { name = "operationtype", type = "optionset", options = [
      { value = 1, label = "System Event" }, { value = 10, label = "Workflow" },
      { value = 13, label = "Bulk Delete" } ] },
  { name = "statecode", type = "optionset", options = [
      { value = 0, label = "Ready" }, { value = 1, label = "Suspended" },
      { value = 2, label = "Locked" }, { value = 3, label = "Completed" } ] },
  { name = "statuscode", type = "optionset", options = [
      { value = 0, label = "Waiting For Resources", state = 0 },
      { value = 10, label = "Waiting", state = 1 },
      { value = 20, label = "In Progress", state = 2 }, { value = 21, label = "Pausing", state = 2 },
      { value = 22, label = "Canceling", state = 2 },
      { value = 30, label = "Succeeded", state = 3 }, { value = 31, label = "Failed", state = 3 },
      { value = 32, label = "Canceled", state = 3 } ] },
  { name = "message", type = "string", max_length = 10000 },
  { name = "friendlymessage", type = "string", max_length = 10000 },
  { name = "errorcode", type = "int" },
  { name = "startedon", type = "datetime" },
  { name = "completedon", type = "datetime" },
]
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
