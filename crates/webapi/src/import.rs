//! A streaming importer: rows of one table, from any [`Stream`], converted with the table's
//! metadata ([`RowConverter`]) and written with `CreateMultiple` / `UpsertMultiple` in chunks,
//! several at once, without ever applying a row twice.
//!
//! - **Bounded memory**: at most [`Client::parallelism`] chunks (each at most
//!   [`MAX_BULK_ROWS`] rows) are held, whatever the input's size.
//! - **No row applied twice**: in create mode each row gets a deterministic primary id
//!   (a name-based GUID of [`ImportOptions::id_seed`] and its row number). A chunk whose
//!   outcome is unknown (the connection broke after sending, a timeout, a 502/504) is sent
//!   again as `UpsertMultiple` by those ids, never as a second `CreateMultiple`; rows up to
//!   [`ImportOptions::resend_through`] (sent by an earlier run that stopped) are sent the same
//!   way.
//! - **Rows the service refuses** are found without giving up the rest: a chunk refused as a
//!   whole is sent again as a `$batch` of one upsert per row with `continue-on-error`, so the
//!   good rows are written and each bad row is reported with its own error. The same `$batch`
//!   is the fallback for a table without the bulk messages.
//! - **Load**: at most `min(Client::parallelism(), ImportOptions::max_parallelism)` requests
//!   at once (the `x-ms-dop-hint`, read before each chunk); throttling is retried by the
//!   pipeline, never multiplied here. A timeout or a `413` halves the chunk size.
//!
//! The caller learns of progress through an [`ImportObserver`] (what a checkpoint, a progress
//! bar or a rejects file needs), and gets an [`ImportSummary`].

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use futures_util::{Stream, StreamExt as _};
use http::Method;
use serde_json::{Map, Value};

use crate::bulk::key_literal;
use crate::{
    Batch, Client, ColumnDefinition, ErrorKind, Guid, Literal, MAX_BULK_ROWS, RecordKey,
    TableDefinition, WebApiError,
};

/// The chunk size an import starts with: half of Dataverse's advice (start near 1,000 rows
/// of small records without plug-ins, fewer when requests slow down), so that tables with
/// plug-ins rarely time out; a timeout halves it. On the emulator, 500-row chunks import
/// 100,000 rows about 13% faster than 200-row ones did, and within 5% of 1,000-row ones.
pub const DEFAULT_CHUNK_ROWS: usize = 500;

/// How often a chunk whose outcome is unknown is sent again before the import stops.
const MAX_RESENDS: u32 = 3;

/// The namespace of imported rows' name-based ids (a fixed, random GUID of d365's own).
const ID_NAMESPACE: &str = "5f0e7d2c-8a41-4f3b-9d6e-2b7c1a9e4d35";

/// One input row: its 1-based number in the input (what rejects and checkpoints name) and its
/// values by column name.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct ImportRow {
    /// The row's number in the input, from 1 (a CSV file's header row is not counted).
    pub number: u64,
    /// The values by column: text (CSV) or any JSON value (JSON lines).
    pub values: Map<String, Value>,
}

impl ImportRow {
    /// A row.
    #[must_use]
    pub fn new(number: u64, values: Map<String, Value>) -> Self {
        Self { number, values }
    }
}

/// What an import does with each row.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ImportMode {
    /// Create every row (`CreateMultiple`), each with a deterministic primary id.
    Create,
    /// Create or update each row found by the alternate key made of these columns
    /// (`UpsertMultiple`): sending the same input twice leaves the same records.
    Upsert {
        /// The key's columns.
        key: Vec<String>,
    },
}

/// How an import runs.
///
/// ```
/// use d365_webapi::ImportOptions;
///
/// let options = ImportOptions::new().upsert(["accountnumber"]).chunk_size(500);
/// # let _ = options;
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ImportOptions {
    /// Create or upsert.
    pub mode: ImportMode,
    /// The first chunk's size (halved on timeouts and `413`), at most [`MAX_BULK_ROWS`].
    pub chunk_size: usize,
    /// The most chunks in flight at once, below the service's `x-ms-dop-hint`.
    pub max_parallelism: usize,
    /// What row ids are derived from; the same seed and row number give the same id.
    pub id_seed: String,
    /// Rows up to this number may have been sent by an earlier run: create them by upsert.
    pub resend_through: u64,
    /// Convert and check every row, send nothing.
    pub dry_run: bool,
}

impl Default for ImportOptions {
    fn default() -> Self {
        Self {
            mode: ImportMode::Create,
            chunk_size: DEFAULT_CHUNK_ROWS,
            max_parallelism: 16,
            id_seed: Guid::new_random().to_string(),
            resend_through: 0,
            dry_run: false,
        }
    }
}

impl ImportOptions {
    /// Create mode, [`DEFAULT_CHUNK_ROWS`] rows a chunk, a random id seed.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Upsert by the alternate key made of `key`'s columns.
    #[must_use]
    pub fn upsert<I, S>(mut self, key: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.mode = ImportMode::Upsert {
            key: key.into_iter().map(Into::into).collect(),
        };
        self
    }

    /// The first chunk's size, 1 to [`MAX_BULK_ROWS`].
    #[must_use]
    pub fn chunk_size(mut self, rows: usize) -> Self {
        self.chunk_size = rows.clamp(1, MAX_BULK_ROWS);
        self
    }

    /// The most chunks in flight at once (at least 1).
    #[must_use]
    pub fn max_parallelism(mut self, chunks: usize) -> Self {
        self.max_parallelism = chunks.max(1);
        self
    }

    /// The seed of the rows' ids: give the same seed (a fingerprint of the input) to a run
    /// that resumes an earlier one, so a row gets the id it had.
    #[must_use]
    pub fn id_seed(mut self, seed: impl Into<String>) -> Self {
        self.id_seed = seed.into();
        self
    }

    /// Rows up to `row` may already be applied (an earlier run sent them and stopped before
    /// their outcome was known): they are created by upsert on their ids.
    #[must_use]
    pub fn resend_through(mut self, row: u64) -> Self {
        self.resend_through = row;
        self
    }

    /// Convert and check every row but send nothing.
    #[must_use]
    pub fn dry_run(mut self, dry_run: bool) -> Self {
        self.dry_run = dry_run;
        self
    }
}

/// What one finished chunk did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ChunkReport {
    /// Rows created.
    pub created: u64,
    /// Rows written by upsert (created or updated: the service does not say which).
    pub upserted: u64,
    /// Rows refused.
    pub rejected: u64,
}

/// What an import did.
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct ImportSummary {
    /// Rows created.
    pub created: u64,
    /// Rows written by upsert: created or updated (upserts, and rows sent again).
    pub upserted: u64,
    /// Rows refused, by conversion or by the service.
    pub rejected: u64,
    /// With [`ImportOptions::dry_run`]: rows that converted and would have been sent.
    pub validated: u64,
    /// Requests that wrote rows (bulk requests and `$batch`es).
    pub requests: u64,
    /// Whether the table refused the bulk messages, so `$batch` was used.
    pub used_batch_fallback: bool,
    /// How long it took.
    pub elapsed: Duration,
}

/// Hears what an import does, in order, from one task: what a checkpoint file, a rejects
/// file and a progress bar need. An error from it stops the import.
pub trait ImportObserver {
    /// Rows `first..=last` are about to be sent: from now on they may be applied.
    ///
    /// # Errors
    ///
    /// Any: the chunk is not sent and the import stops.
    fn sending(&mut self, first: u64, last: u64) -> std::io::Result<()> {
        let _ = (first, last);
        Ok(())
    }

    /// `row` was refused (by conversion, or by the service), for `reason`. Called before the
    /// [`finished`](Self::finished) that covers it.
    ///
    /// # Errors
    ///
    /// Any: the import stops.
    fn rejected(&mut self, row: &ImportRow, reason: &str) -> std::io::Result<()> {
        let _ = (row, reason);
        Ok(())
    }

    /// Every row of `first..=last` that is in this import is done: written or rejected.
    ///
    /// # Errors
    ///
    /// Any: the import stops (after the chunks in flight).
    fn finished(&mut self, first: u64, last: u64, report: &ChunkReport) -> std::io::Result<()> {
        let _ = (first, last, report);
        Ok(())
    }
}

/// An observer that hears nothing.
impl ImportObserver for () {}

/// Why an import stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImportError {
    /// The service failed in a way no row can be blamed for (sign-in, privileges,
    /// throttling beyond the retries, the network). Chunks finished before it were reported.
    #[error(transparent)]
    Service(#[from] WebApiError),
    /// The input could not be read.
    #[error("reading the input: {0}")]
    Input(std::io::Error),
    /// The observer failed (a checkpoint could not be written).
    #[error("{0}")]
    Observer(std::io::Error),
}

/// How a lookup column is written: the navigation property and entity set per target table.
#[derive(Clone, Debug)]
struct LookupColumn {
    /// Target logical name → (navigation property, entity set).
    targets: Vec<(String, String, String)>,
}

/// Converts input rows into Web API records with a table's metadata: numbers, booleans,
/// dates, choices by label or value, lookups by id or alternate key.
///
/// | column type | input |
/// |---|---|
/// | text | anything, at most the column's length |
/// | whole / decimal number, currency | a number, or text that is one (`1234.5`) |
/// | yes/no | `true`/`false`, `yes`/`no`, `1`/`0` (any case) |
/// | date and time | `2024-05-01`, `2024-05-01T09:30:00Z`, `2024-05-01 09:30` (no zone: UTC) |
/// | choice, status | a value (`1`) or a label (`Preferred Customer`, any case) |
/// | choices | values or labels separated by `;` |
/// | lookup | a GUID; `key=value[,key=value]` (an alternate key of the target); or `table(GUID)` / `table(key=value)` for a lookup with several targets |
/// | unique identifier | a GUID |
///
/// An empty text cell leaves the column out; a JSON `null` clears it.
#[derive(Clone, Debug)]
pub struct RowConverter {
    table: Arc<TableDefinition>,
    columns: HashMap<String, ColumnDefinition>,
    lookups: HashMap<String, LookupColumn>,
    /// Navigation properties from the relationships: (column, target) → navigation.
    navigations: HashMap<(String, String), String>,
    /// Input column names already checked.
    checked: HashSet<String>,
    create: bool,
}

impl RowConverter {
    /// Reads the metadata of `table`, given as logical name (`account`) or entity set
    /// (`accounts`), for create (`create`) or upsert.
    ///
    /// # Errors
    ///
    /// [`WebApiError`]; [`WebApiError::InvalidInput`] when there is no such table.
    pub async fn load(client: &Client, table: &str, create: bool) -> Result<Self, WebApiError> {
        let definition = match client.table_for_entity_set(table).await {
            Ok(found) => found,
            Err(by_set) => match client.table(table).await {
                Ok(found) => Arc::new(found),
                Err(error) if error.kind() == ErrorKind::NotFound => {
                    return Err(WebApiError::InvalidInput(format!(
                        "no table is named `{table}` (by logical name or entity set): `d365 tables` lists them"
                    )));
                }
                Err(_) => return Err(by_set),
            },
        };
        let columns = client.columns(&definition.logical_name).await?;
        let navigations = client
            .lookup_navigations(&definition.logical_name)
            .await?
            .into_iter()
            .map(|(column, target, navigation)| ((column, target), navigation))
            .collect();
        Ok(Self {
            table: definition,
            columns: columns
                .into_iter()
                .map(|column| (column.logical_name.clone(), column))
                .collect(),
            lookups: HashMap::new(),
            navigations,
            checked: HashSet::new(),
            create,
        })
    }

    /// The table.
    #[must_use]
    pub fn table(&self) -> &TableDefinition {
        &self.table
    }

    /// Checks input columns before any row is sent: each must be a column of the table that
    /// can be written, of a type an import can write (the error names it and lists close
    /// names). Reads the entity sets of the lookups' targets.
    ///
    /// # Errors
    ///
    /// [`WebApiError::InvalidInput`] naming the column; [`WebApiError`] reading metadata.
    pub async fn prepare<'a, I>(&mut self, client: &Client, columns: I) -> Result<(), WebApiError>
    where
        I: IntoIterator<Item = &'a str>,
    {
        for name in columns {
            if self.checked.contains(name) || name.starts_with('@') || name.contains("@odata.") {
                continue;
            }
            let Some(column) = self.columns.get(name) else {
                return Err(WebApiError::InvalidInput(format!(
                    "the table `{}` has no column `{name}`{}",
                    self.table.logical_name,
                    self.close_names(name)
                )));
            };
            let writable = column.attribute_of.is_none()
                && if self.create {
                    column.is_valid_for_create
                } else {
                    column.is_valid_for_create || column.is_valid_for_update
                };
            if !writable {
                return Err(WebApiError::InvalidInput(format!(
                    "the column `{name}` of `{}` cannot be written{}",
                    self.table.logical_name,
                    self.close_names(name)
                )));
            }
            match kind_of(column) {
                Kind::Unsupported => {
                    return Err(WebApiError::InvalidInput(format!(
                        "the column `{name}` is of type {}, which an import cannot write",
                        column.attribute_type
                    )));
                }
                Kind::Lookup => {
                    let mut targets = Vec::new();
                    for target in &column.targets {
                        let navigation = self
                            .navigations
                            .get(&(name.to_owned(), target.clone()))
                            .cloned()
                            .unwrap_or_else(|| {
                                // No relationship listed: Dataverse's own naming.
                                if column.targets.len() == 1 {
                                    name.to_owned()
                                } else {
                                    format!("{name}_{target}")
                                }
                            });
                        let set = client.table(target).await?.entity_set_name;
                        targets.push((target.clone(), navigation, set));
                    }
                    self.lookups
                        .insert(name.to_owned(), LookupColumn { targets });
                }
                _ => {}
            }
            self.checked.insert(name.to_owned());
        }
        Ok(())
    }

    /// Whether every column of `row` was checked by [`prepare`](Self::prepare).
    #[must_use]
    pub fn is_prepared_for(&self, row: &ImportRow) -> bool {
        row.values.keys().all(|name| {
            self.checked.contains(name) || name.starts_with('@') || name.contains("@odata.")
        })
    }

    /// ` (did you mean `a`, `b`?)`, or nothing.
    fn close_names(&self, name: &str) -> String {
        let mut scored: Vec<(usize, &str)> = self
            .columns
            .values()
            .filter(|column| column.is_writable())
            .map(|column| {
                let candidate = column.logical_name.as_str();
                let mut distance = edit_distance(name, candidate);
                if candidate.contains(name) || name.contains(candidate) {
                    distance = distance.min(1);
                }
                (distance, candidate)
            })
            .filter(|(distance, _)| *distance <= 3.max(name.len() / 3))
            .collect();
        scored.sort();
        let names: Vec<String> = scored
            .iter()
            .take(4)
            .map(|(_, name)| format!("`{name}`"))
            .collect();
        if names.is_empty() {
            "; `d365 columns` lists them".to_owned()
        } else {
            format!(" (close names: {})", names.join(", "))
        }
    }

    /// The record for `row`: each value converted for its column. Columns must have been
    /// [`prepare`](Self::prepare)d.
    ///
    /// # Errors
    ///
    /// Why a value cannot be written, naming the column.
    pub fn convert(&self, row: &ImportRow) -> Result<Map<String, Value>, String> {
        let mut record = Map::new();
        for (name, value) in &row.values {
            if name.starts_with('@') || name.contains("@odata.") {
                record.insert(name.clone(), value.clone());
                continue;
            }
            let column = self
                .columns
                .get(name)
                .ok_or_else(|| format!("`{name}`: not a column of the table"))?;
            if value.as_str().is_some_and(str::is_empty) {
                continue;
            }
            if let Some(lookup) = self.lookups.get(name) {
                let (navigation, reference) = lookup_bind(name, lookup, value)?;
                record.insert(format!("{navigation}@odata.bind"), reference);
                continue;
            }
            let converted =
                convert_value(column, value).map_err(|reason| format!("`{name}`: {reason}"))?;
            record.insert(name.clone(), converted);
        }
        Ok(record)
    }
}

/// The kinds of value conversion.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Text,
    Integer,
    Number,
    Boolean,
    DateTime,
    Choice,
    Choices,
    Lookup,
    Guid,
    Unsupported,
}

fn kind_of(column: &ColumnDefinition) -> Kind {
    if column.attribute_type_name.as_deref() == Some("MultiSelectPicklistType") {
        return Kind::Choices;
    }
    match column.attribute_type.as_str() {
        "String" | "Memo" | "EntityName" => Kind::Text,
        "Integer" | "BigInt" => Kind::Integer,
        "Decimal" | "Double" | "Money" => Kind::Number,
        "Boolean" => Kind::Boolean,
        "DateTime" => Kind::DateTime,
        "Picklist" | "State" | "Status" => Kind::Choice,
        "MultiSelectPicklist" => Kind::Choices,
        "Lookup" | "Customer" | "Owner" => Kind::Lookup,
        "Uniqueidentifier" => Kind::Guid,
        _ => Kind::Unsupported,
    }
}

/// A JSON value as text: strings as they are, numbers and booleans written out.
fn as_text(value: &Value) -> Result<String, String> {
    match value {
        Value::String(text) => Ok(text.clone()),
        Value::Number(number) => Ok(number.to_string()),
        Value::Bool(flag) => Ok(flag.to_string()),
        other => Err(format!("{other} is not a single value")),
    }
}

fn convert_value(column: &ColumnDefinition, value: &Value) -> Result<Value, String> {
    if value.is_null() {
        return Ok(Value::Null);
    }
    match kind_of(column) {
        Kind::Text => {
            let text = as_text(value)?;
            if let Some(max) = column.max_length {
                let length = text.chars().count();
                if i64::try_from(length).unwrap_or(i64::MAX) > max {
                    return Err(format!(
                        "{length} characters, more than the {max} the column holds"
                    ));
                }
            }
            Ok(Value::String(text))
        }
        Kind::Integer => match value {
            Value::Number(number) if number.is_i64() => Ok(value.clone()),
            _ => {
                let text = as_text(value)?;
                text.trim()
                    .parse::<i64>()
                    .map(Value::from)
                    .map_err(|_| format!("`{text}` is not a whole number"))
            }
        },
        Kind::Number => match value {
            Value::Number(_) => Ok(value.clone()),
            _ => {
                let text = as_text(value)?;
                text.trim()
                    .parse::<f64>()
                    .ok()
                    .filter(|number| number.is_finite())
                    .and_then(serde_json::Number::from_f64)
                    .map(Value::Number)
                    .ok_or_else(|| format!("`{text}` is not a number"))
            }
        },
        Kind::Boolean => match value {
            Value::Bool(_) => Ok(value.clone()),
            _ => {
                let text = as_text(value)?;
                match text.trim().to_ascii_lowercase().as_str() {
                    "true" | "yes" | "y" | "1" => Ok(Value::Bool(true)),
                    "false" | "no" | "n" | "0" => Ok(Value::Bool(false)),
                    _ => Err(format!("`{text}` is not true/false, yes/no or 1/0")),
                }
            }
        },
        Kind::DateTime => {
            let text = as_text(value)?;
            normalize_date_time(text.trim())
                .map(Value::String)
                .ok_or_else(|| {
                    format!(
                        "`{text}` is not a date (2024-05-01) or a date and time (2024-05-01T09:30:00Z)"
                    )
                })
        }
        Kind::Choice => choice_value(column, value).map(Value::from),
        Kind::Choices => {
            let text = as_text(value)?;
            let values = text
                .split(';')
                .map(str::trim)
                .filter(|part| !part.is_empty())
                .map(|part| choice_value(column, &Value::String(part.to_owned())))
                .collect::<Result<Vec<i64>, String>>()?;
            Ok(Value::String(
                values
                    .iter()
                    .map(i64::to_string)
                    .collect::<Vec<_>>()
                    .join(","),
            ))
        }
        Kind::Guid => {
            let text = as_text(value)?;
            text.trim()
                .parse::<Guid>()
                .map(|id| Value::String(id.to_string()))
                .map_err(|error| error.to_string())
        }
        Kind::Lookup | Kind::Unsupported => Err(format!(
            "a column of type {} cannot be imported",
            column.attribute_type
        )),
    }
}

/// A choice's value from a number or a label; a number must be one of the options.
fn choice_value(column: &ColumnDefinition, value: &Value) -> Result<i64, String> {
    let number = match value {
        Value::Number(number) => number.as_i64(),
        _ => as_text(value)?.trim().parse::<i64>().ok(),
    };
    let known = |candidate: i64| {
        column.options.is_empty() || column.options.iter().any(|o| o.value == candidate)
    };
    if let Some(number) = number {
        if known(number) {
            return Ok(number);
        }
    } else if let Some(found) = column.option_value(&as_text(value)?) {
        return Ok(found);
    }
    let options: Vec<String> = column
        .options
        .iter()
        .take(12)
        .map(|option| {
            format!(
                "{} ({})",
                option.label.as_deref().unwrap_or("?"),
                option.value
            )
        })
        .collect();
    Err(format!(
        "`{}` is not an option; the options are {}",
        as_text(value)?,
        options.join(", ")
    ))
}

/// `2024-05-01` as is; `2024-05-01T09:30[:00[.000]]` with `Z`, `+hh:mm` or no zone (then UTC,
/// `Z` added); a space may stand for the `T`.
fn normalize_date_time(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let digits = |range: std::ops::Range<usize>| {
        bytes
            .get(range.clone())?
            .iter()
            .all(u8::is_ascii_digit)
            .then(|| text[range].parse::<u32>().ok())?
    };
    let (year, month, day) = (digits(0..4)?, digits(5..7)?, digits(8..10)?);
    if bytes.get(4) != Some(&b'-') || bytes.get(7) != Some(&b'-') || year == 0 {
        return None;
    }
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    if bytes.len() == 10 {
        return Some(text.to_owned());
    }
    if !matches!(bytes.get(10), Some(b'T' | b't' | b' ')) {
        return None;
    }
    let (hour, minute) = (digits(11..13)?, digits(14..16)?);
    if bytes.get(13) != Some(&b':') || hour > 23 || minute > 59 {
        return None;
    }
    let mut rest = &text[16..];
    let mut time = format!("{}T{}", &text[..10], &text[11..16]);
    if let Some(after) = rest.strip_prefix(':') {
        let seconds: String = after.chars().take_while(char::is_ascii_digit).collect();
        if seconds.len() != 2 || seconds.parse::<u32>().ok()? > 59 {
            return None;
        }
        rest = &after[2..];
        time.push(':');
        time.push_str(&seconds);
        if let Some(after) = rest.strip_prefix('.') {
            let fraction: String = after.chars().take_while(char::is_ascii_digit).collect();
            if fraction.is_empty() {
                return None;
            }
            rest = &after[fraction.len()..];
            time.push('.');
            time.push_str(&fraction);
        }
    } else {
        time.push_str(":00");
    }
    match rest {
        "" | "Z" | "z" => time.push('Z'),
        zone => {
            let zone_bytes = zone.as_bytes();
            let valid = zone.len() == 6
                && matches!(zone_bytes[0], b'+' | b'-')
                && zone_bytes[3] == b':'
                && zone_bytes[1..3].iter().all(u8::is_ascii_digit)
                && zone_bytes[4..6].iter().all(u8::is_ascii_digit);
            if !valid {
                return None;
            }
            time.push_str(zone);
        }
    }
    Some(time)
}

/// A lookup's value as `(navigation property, "/set(key)")`: a GUID, `key=value[,…]`, or
/// `table(GUID)` / `table(key=value[,…])`.
fn lookup_bind(
    name: &str,
    lookup: &LookupColumn,
    value: &Value,
) -> Result<(String, Value), String> {
    let text = as_text(value).map_err(|reason| format!("`{name}`: {reason}"))?;
    let text = text.trim();
    let (table, inner) = match text.find('(') {
        Some(open) if text.ends_with(')') && !text[..open].contains('=') => {
            (Some(&text[..open]), &text[open + 1..text.len() - 1])
        }
        _ => (None, text),
    };
    let target = match table {
        Some(table) => lookup
            .targets
            .iter()
            .find(|(logical, _, set)| logical == table || set == table)
            .ok_or_else(|| {
                let names: Vec<&str> = lookup.targets.iter().map(|t| t.0.as_str()).collect();
                format!(
                    "`{name}`: `{table}` is not a table it can refer to ({})",
                    names.join(", ")
                )
            })?,
        None => match lookup.targets.as_slice() {
            [only] => only,
            targets => {
                let names: Vec<&str> = targets.iter().map(|t| t.0.as_str()).collect();
                return Err(format!(
                    "`{name}` can refer to several tables ({}): write `table(id)` or `table(key=value)`, such as `{}({text})`",
                    names.join(", "),
                    names.first().copied().unwrap_or("account")
                ));
            }
        },
    };
    let key = if let Ok(id) = inner.trim().parse::<Guid>() {
        RecordKey::Id(id)
    } else if inner.contains('=') {
        let mut columns = Vec::new();
        for part in inner.split(',') {
            let (column, value) = part
                .split_once('=')
                .ok_or_else(|| format!("`{name}`: `{part}` is not `column=value`"))?;
            let value = value.trim();
            let value = value
                .strip_prefix('\'')
                .and_then(|rest| rest.strip_suffix('\''))
                .unwrap_or(value);
            let literal = match value.parse::<Guid>() {
                Ok(id) => Literal::Guid(id),
                Err(_) => Literal::String(value.to_owned()),
            };
            columns.push((column.trim().to_owned(), literal));
        }
        RecordKey::Alternate(columns)
    } else {
        return Err(format!(
            "`{name}`: `{text}` is not a GUID, `key=value` or `table(id)`"
        ));
    };
    Ok((
        target.1.clone(),
        Value::String(format!("/{}{}", target.2, key.to_segment())),
    ))
}

/// Levenshtein distance, for "close names".
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            current.push(
                (previous[j] + cost)
                    .min(previous[j + 1] + 1)
                    .min(current[j] + 1),
            );
        }
        previous = current;
    }
    previous[b.len()]
}

/// A converted row waiting to be sent.
#[derive(Debug)]
struct Pending {
    row: ImportRow,
    record: Map<String, Value>,
}

/// What the chunk tasks share.
struct Shared {
    client: Client,
    entity_set: String,
    primary_id: String,
    mode: ImportMode,
    /// Cleared when the table refuses the bulk messages: `$batch` from then on.
    bulk: AtomicBool,
}

/// The outcome of one chunk.
#[derive(Debug, Default)]
struct Outcome {
    created: u64,
    upserted: u64,
    rejects: Vec<(ImportRow, String)>,
    requests: u64,
    shrink: bool,
}

impl Outcome {
    fn add(&mut self, other: Self) {
        self.created += other.created;
        self.upserted += other.upserted;
        self.rejects.extend(other.rejects);
        self.requests += other.requests;
        self.shrink |= other.shrink;
    }
}

/// Whether an error leaves the request's outcome unknown: it may have been applied.
fn outcome_unknown(error: &WebApiError) -> bool {
    matches!(error.kind(), ErrorKind::MaybeApplied | ErrorKind::Timeout)
        || error
            .service()
            .is_some_and(|service| matches!(service.status().as_u16(), 502 | 504))
}

/// Whether the answer says the request was too large.
fn too_large(error: &WebApiError) -> bool {
    error
        .service()
        .is_some_and(|service| service.status().as_u16() == 413)
}

/// Whether the service refused `action` itself for this table (rather than a row): a `404`
/// "Resource not found for the segment '…CreateMultiple'" (`0x8006088a`, a server without
/// the bulk messages), or an answer whose message names the action and says it is not
/// supported, enabled or implemented for the table.
pub(crate) fn unsupported_message(error: &WebApiError, action: &str) -> bool {
    let Some(service) = error.service() else {
        return false;
    };
    let message = service.message().to_ascii_lowercase();
    let names_action = message.contains(&action.to_ascii_lowercase());
    if service.status().as_u16() == 404 && service.code().eq_ignore_ascii_case("0x8006088a") {
        return names_action || message.contains("segment");
    }
    names_action
        && [
            "not supported",
            "does not support",
            "not enabled",
            "not implemented",
            "not yet implemented",
        ]
        .iter()
        .any(|phrase| message.contains(phrase))
}

/// Whether a refusal of a whole chunk may be a bad row (rather than the service or the
/// caller): worth sending the rows one by one to find out.
fn may_be_a_row(error: &WebApiError) -> bool {
    matches!(
        error.kind(),
        ErrorKind::BadRequest
            | ErrorKind::PreconditionFailed
            | ErrorKind::NotFound
            | ErrorKind::ServerError
    )
}

impl Shared {
    /// Sends `rows`: by bulk request while the table takes them, else by `$batch`;
    /// `as_upsert` sends a create-mode chunk as an upsert on its ids.
    fn send(
        self: Arc<Self>,
        mut rows: Vec<Pending>,
        as_upsert: bool,
        attempt: u32,
    ) -> futures_util::future::BoxFuture<'static, Result<Outcome, WebApiError>> {
        Box::pin(async move {
            if !self.bulk.load(Ordering::Relaxed) {
                return self.send_batch(rows, as_upsert).await;
            }
            let records: Vec<Value> = rows
                .iter()
                .map(|pending| Value::Object(pending.record.clone()))
                .collect();
            let (action, sent) = match &self.mode {
                ImportMode::Create if !as_upsert => (
                    "CreateMultiple",
                    self.client
                        .create_multiple(&self.entity_set, &records)
                        .await
                        .map(drop),
                ),
                ImportMode::Create => (
                    "UpsertMultiple",
                    self.client
                        .upsert_multiple(&self.entity_set, &[], &records)
                        .await,
                ),
                ImportMode::Upsert { key } => {
                    let key: Vec<&str> = key.iter().map(String::as_str).collect();
                    (
                        "UpsertMultiple",
                        self.client
                            .upsert_multiple(&self.entity_set, &key, &records)
                            .await,
                    )
                }
            };
            drop(records);
            let count = rows.len() as u64;
            match sent {
                Ok(()) => Ok(if action == "CreateMultiple" {
                    Outcome {
                        created: count,
                        requests: 1,
                        ..Outcome::default()
                    }
                } else {
                    Outcome {
                        upserted: count,
                        requests: 1,
                        ..Outcome::default()
                    }
                }),
                Err(error) if outcome_unknown(&error) => {
                    if attempt >= MAX_RESENDS {
                        return Err(error);
                    }
                    tracing::warn!(rows = count, %error, "a chunk's outcome is unknown: sending it again as an upsert on the rows' ids");
                    // A timeout says the chunk was too slow: smaller halves, and smaller chunks
                    // from now on. A connection that broke says nothing of the chunk's size
                    // (shrinking on it took a run with 5% cut connections down to chunks of one
                    // row, and 20 times the requests).
                    let timed_out = error.kind() == ErrorKind::Timeout;
                    let mut outcome = Outcome {
                        requests: 1,
                        shrink: timed_out,
                        ..Outcome::default()
                    };
                    if rows.len() > 1 && timed_out {
                        let right = rows.split_off(rows.len() / 2);
                        outcome.add(Arc::clone(&self).send(rows, true, attempt + 1).await?);
                        outcome.add(self.send(right, true, attempt + 1).await?);
                    } else {
                        outcome.add(self.send(rows, true, attempt + 1).await?);
                    }
                    Ok(outcome)
                }
                Err(error) if too_large(&error) && rows.len() > 1 => {
                    let right = rows.split_off(rows.len() / 2);
                    let mut outcome = Outcome {
                        requests: 1,
                        shrink: true,
                        ..Outcome::default()
                    };
                    outcome.add(Arc::clone(&self).send(rows, as_upsert, attempt).await?);
                    outcome.add(self.send(right, as_upsert, attempt).await?);
                    Ok(outcome)
                }
                Err(error) if unsupported_message(&error, action) => {
                    tracing::warn!(%error, "the table does not take {action}: sending rows in $batch requests");
                    self.bulk.store(false, Ordering::Relaxed);
                    let mut outcome = self.send_batch(rows, as_upsert).await?;
                    outcome.requests += 1;
                    Ok(outcome)
                }
                Err(error) if may_be_a_row(&error) => {
                    tracing::debug!(rows = count, %error, "a chunk was refused: sending its rows one by one to find the bad ones");
                    let mut outcome = self.send_batch(rows, as_upsert).await?;
                    outcome.requests += 1;
                    Ok(outcome)
                }
                Err(error) => Err(error),
            }
        })
    }

    /// The row's key and body for a single upsert: its id (create mode) or its alternate key,
    /// taken out of the body.
    fn single(&self, pending: &Pending) -> Result<(RecordKey, Value), String> {
        let mut body = pending.record.clone();
        let key = match &self.mode {
            ImportMode::Create => {
                let id = body
                    .remove(&self.primary_id)
                    .and_then(|id| id.as_str().and_then(|id| id.parse::<Guid>().ok()))
                    .ok_or_else(|| format!("the row has no id `{}`", self.primary_id))?;
                RecordKey::Id(id)
            }
            ImportMode::Upsert { key } => {
                let mut columns = Vec::new();
                for column in key {
                    let value = body.remove(column).ok_or_else(|| {
                        format!("the row has no value for the key column `{column}`")
                    })?;
                    let literal =
                        key_literal(0, column, &value).map_err(|error| error.to_string())?;
                    columns.push((column.clone(), literal));
                }
                RecordKey::Alternate(columns)
            }
        };
        Ok((key, Value::Object(body)))
    }

    /// Sends `rows` as one `$batch` of upserts with continue-on-error: each row succeeds or
    /// fails on its own. Upserts (`PATCH set(key)`) can be sent again safely, so an unknown
    /// outcome is resent.
    async fn send_batch(
        &self,
        rows: Vec<Pending>,
        as_upsert: bool,
    ) -> Result<Outcome, WebApiError> {
        let mut outcome = Outcome::default();
        let mut batch = Batch::new().continue_on_error();
        let mut sent = Vec::with_capacity(rows.len());
        for pending in rows {
            match self.single(&pending) {
                Ok((key, body)) => {
                    batch.request(
                        Method::PATCH,
                        &format!("{}{}", self.entity_set, key.to_segment()),
                        Some(body),
                    );
                    sent.push(pending.row);
                }
                Err(reason) => outcome.rejects.push((pending.row, reason)),
            }
        }
        if sent.is_empty() {
            return Ok(outcome);
        }
        let mut attempt = 0;
        let answers = loop {
            attempt += 1;
            outcome.requests += 1;
            match self.client.execute_batch(&batch).await {
                Ok(answers) => break answers,
                Err(error) if outcome_unknown(&error) && attempt <= MAX_RESENDS => {
                    tracing::warn!(%error, "a $batch's outcome is unknown: sending it again (its upserts can be repeated)");
                }
                Err(error) => return Err(error),
            }
        };
        let creates = matches!(self.mode, ImportMode::Create) && !as_upsert;
        let mut answers = answers.into_iter();
        for row in sent {
            match answers.next() {
                Some(answer) if answer.is_success() => {
                    if creates {
                        outcome.created += 1;
                    } else {
                        outcome.upserted += 1;
                    }
                }
                Some(answer) => {
                    let reason = answer.error.map_or_else(
                        || format!("HTTP {}", answer.status),
                        |error| format!("{} {}: {}", error.status(), error.code(), error.message()),
                    );
                    outcome.rejects.push((row, reason));
                }
                None => {
                    return Err(WebApiError::Decode(
                        "the $batch answered fewer operations than it was sent".to_owned(),
                    ));
                }
            }
        }
        Ok(outcome)
    }
}

impl Client {
    /// Imports `rows` into the converter's table: each converted (a row that cannot be is
    /// rejected), then sent in chunks, several at once, as the module documentation says.
    /// The observer hears of every chunk sent and finished and every row rejected.
    ///
    /// ```no_run
    /// # async fn run(client: d365_webapi::Client) -> Result<(), Box<dyn std::error::Error>> {
    /// use d365_webapi::{ImportOptions, ImportRow, RowConverter};
    /// use serde_json::json;
    ///
    /// let mut converter = RowConverter::load(&client, "accounts", true).await?;
    /// converter.prepare(&client, ["name", "accountcategorycode"]).await?;
    /// let rows = (1..=3).map(|n| {
    ///     let values = json!({"name": format!("Account {n}"), "accountcategorycode": "Standard"});
    ///     Ok(ImportRow::new(n, values.as_object().unwrap().clone()))
    /// });
    /// let summary = client
    ///     .import(&mut converter, &ImportOptions::new(), futures_util::stream::iter(rows), &mut ())
    ///     .await?;
    /// assert_eq!(summary.created, 3);
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// [`ImportError`]: a failure no row can be blamed for (after the chunks in flight
    /// finished and were reported), the input, or the observer.
    pub async fn import<S>(
        &self,
        converter: &mut RowConverter,
        options: &ImportOptions,
        rows: S,
        observer: &mut dyn ImportObserver,
    ) -> Result<ImportSummary, ImportError>
    where
        S: Stream<Item = Result<ImportRow, std::io::Error>>,
    {
        let started = Instant::now();
        let table = converter.table().clone();
        if let ImportMode::Upsert { key } = &options.mode {
            if key.is_empty() {
                return Err(
                    WebApiError::InvalidInput("an upsert needs the key's columns".into()).into(),
                );
            }
            converter
                .prepare(self, key.iter().map(String::as_str))
                .await?;
        }
        let shared = Arc::new(Shared {
            client: self.clone(),
            entity_set: table.entity_set_name.clone(),
            primary_id: table.primary_id_attribute.clone(),
            mode: options.mode.clone(),
            bulk: AtomicBool::new(true),
        });
        let namespace: Guid = ID_NAMESPACE.parse().expect("a GUID");
        let mut run = Run {
            shared,
            observer,
            tasks: tokio::task::JoinSet::new(),
            summary: ImportSummary::default(),
            chunk_size: options.chunk_size.clamp(1, MAX_BULK_ROWS),
            max_parallelism: options.max_parallelism.max(1),
            failure: None,
        };
        let mut chunk: Vec<Pending> = Vec::new();
        futures_util::pin_mut!(rows);
        let outcome: Result<(), ImportError> = async {
            while let Some(row) = rows.next().await {
                let row = row.map_err(ImportError::Input)?;
                run.collect_finished()?;
                if !converter.is_prepared_for(&row) {
                    let names: Vec<String> = row.values.keys().cloned().collect();
                    converter
                        .prepare(self, names.iter().map(String::as_str))
                        .await?;
                }
                let mut record = match converter.convert(&row) {
                    Ok(record) => record,
                    Err(reason) => {
                        run.summary.rejected += 1;
                        let number = row.number;
                        run.observer
                            .rejected(&row, &reason)
                            .map_err(ImportError::Observer)?;
                        if !options.dry_run {
                            let report = ChunkReport {
                                rejected: 1,
                                ..ChunkReport::default()
                            };
                            run.observer
                                .finished(number, number, &report)
                                .map_err(ImportError::Observer)?;
                        }
                        continue;
                    }
                };
                if options.dry_run {
                    run.summary.validated += 1;
                    continue;
                }
                if options.mode == ImportMode::Create
                    && !record.contains_key(&table.primary_id_attribute)
                {
                    let id = Guid::from_name(
                        namespace,
                        format!("{}\u{0}{}", options.id_seed, row.number).as_bytes(),
                    );
                    record.insert(
                        table.primary_id_attribute.clone(),
                        Value::String(id.to_string()),
                    );
                }
                chunk.push(Pending { row, record });
                if chunk.len() >= run.chunk_size {
                    let full = std::mem::take(&mut chunk);
                    run.dispatch(full, options.resend_through).await?;
                }
            }
            if !chunk.is_empty() {
                let last = std::mem::take(&mut chunk);
                run.dispatch(last, options.resend_through).await?;
            }
            Ok(())
        }
        .await;
        // Whatever happened, the chunks in flight finish and are reported, so a checkpoint
        // knows their outcome.
        let drained = run.drain().await;
        outcome?;
        drained?;
        if let Some(error) = run.failure.take() {
            return Err(error.into());
        }
        run.summary.used_batch_fallback = !run.shared.bulk.load(Ordering::Relaxed);
        run.summary.elapsed = started.elapsed();
        Ok(run.summary)
    }
}

/// One import's moving parts.
struct Run<'o> {
    shared: Arc<Shared>,
    observer: &'o mut dyn ImportObserver,
    tasks: tokio::task::JoinSet<(u64, u64, Result<Outcome, WebApiError>)>,
    summary: ImportSummary,
    chunk_size: usize,
    max_parallelism: usize,
    /// The first service failure: no chunk is sent after it.
    failure: Option<WebApiError>,
}

impl Run<'_> {
    /// Sends a chunk once fewer than the allowed chunks are in flight.
    async fn dispatch(
        &mut self,
        chunk: Vec<Pending>,
        resend_through: u64,
    ) -> Result<(), ImportError> {
        loop {
            if let Some(error) = self.failure.take() {
                return Err(error.into());
            }
            let allowed = self.shared.client.parallelism().min(self.max_parallelism);
            if self.tasks.len() < allowed {
                break;
            }
            if let Some(joined) = self.tasks.join_next().await {
                self.record(joined)?;
            }
        }
        let first = chunk.first().map_or(0, |pending| pending.row.number);
        let last = chunk.last().map_or(0, |pending| pending.row.number);
        self.observer
            .sending(first, last)
            .map_err(ImportError::Observer)?;
        let as_upsert = first <= resend_through;
        let shared = Arc::clone(&self.shared);
        self.tasks
            .spawn(async move { (first, last, shared.send(chunk, as_upsert, 0).await) });
        Ok(())
    }

    /// Records the chunks that finished, without waiting.
    fn collect_finished(&mut self) -> Result<(), ImportError> {
        while let Some(joined) = self.tasks.try_join_next() {
            self.record(joined)?;
        }
        if let Some(error) = self.failure.take() {
            return Err(error.into());
        }
        Ok(())
    }

    /// Waits for every chunk in flight and records it.
    async fn drain(&mut self) -> Result<(), ImportError> {
        let mut first_error = None;
        while let Some(joined) = self.tasks.join_next().await {
            if let Err(error) = self.record(joined) {
                first_error.get_or_insert(error);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// One finished chunk: its rejects and its report to the observer, into the summary.
    fn record(
        &mut self,
        joined: Result<(u64, u64, Result<Outcome, WebApiError>), tokio::task::JoinError>,
    ) -> Result<(), ImportError> {
        let (first, last, outcome) = joined.map_err(|error| {
            ImportError::Observer(std::io::Error::other(format!(
                "a chunk's task failed: {error}"
            )))
        })?;
        let outcome = match outcome {
            Ok(outcome) => outcome,
            Err(error) => {
                // Its rows stay not done: a later run sends them again (by upsert).
                self.failure.get_or_insert(error);
                return Ok(());
            }
        };
        for (row, reason) in &outcome.rejects {
            self.observer
                .rejected(row, reason)
                .map_err(ImportError::Observer)?;
        }
        let report = ChunkReport {
            created: outcome.created,
            upserted: outcome.upserted,
            rejected: outcome.rejects.len() as u64,
        };
        self.summary.created += report.created;
        self.summary.upserted += report.upserted;
        self.summary.rejected += report.rejected;
        self.summary.requests += outcome.requests;
        if outcome.shrink && self.chunk_size > 1 {
            self.chunk_size /= 2;
            tracing::info!(
                rows = self.chunk_size,
                "chunks shrunk after a timeout or a 413"
            );
        }
        self.observer
            .finished(first, last, &report)
            .map_err(ImportError::Observer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ChoiceOption;
    use serde_json::json;

    fn column(name: &str, attribute_type: &str) -> ColumnDefinition {
        let mut column: ColumnDefinition = serde_json::from_value(json!({
            "LogicalName": name,
            "AttributeType": attribute_type,
            "IsValidForCreate": true,
            "IsValidForUpdate": true,
        }))
        .unwrap();
        if attribute_type == "Picklist" {
            column.options = vec![
                ChoiceOption {
                    value: 1,
                    label: Some("Preferred Customer".into()),
                },
                ChoiceOption {
                    value: 2,
                    label: Some("Standard".into()),
                },
            ];
        }
        column
    }

    #[test]
    fn values_convert_by_type() {
        let int = column("n", "Integer");
        assert_eq!(convert_value(&int, &json!("42")).unwrap(), json!(42));
        assert!(convert_value(&int, &json!("4.2")).is_err());
        let money = column("m", "Money");
        assert_eq!(convert_value(&money, &json!("12.5")).unwrap(), json!(12.5));
        let flag = column("b", "Boolean");
        assert_eq!(convert_value(&flag, &json!("Yes")).unwrap(), json!(true));
        assert_eq!(convert_value(&flag, &json!("0")).unwrap(), json!(false));
        assert!(convert_value(&flag, &json!("maybe")).is_err());
        let choice = column("c", "Picklist");
        assert_eq!(
            convert_value(&choice, &json!("standard")).unwrap(),
            json!(2)
        );
        assert_eq!(convert_value(&choice, &json!("1")).unwrap(), json!(1));
        let error = convert_value(&choice, &json!("Gold")).unwrap_err();
        assert!(error.contains("Standard (2)"), "{error}");
        assert!(convert_value(&choice, &json!(7)).is_err());
        assert_eq!(convert_value(&choice, &Value::Null).unwrap(), Value::Null);
    }

    #[test]
    fn dates_are_checked_and_given_a_zone() {
        assert_eq!(
            normalize_date_time("2024-05-01").as_deref(),
            Some("2024-05-01")
        );
        assert_eq!(
            normalize_date_time("2024-05-01 09:30").as_deref(),
            Some("2024-05-01T09:30:00Z")
        );
        assert_eq!(
            normalize_date_time("2024-05-01T09:30:15.25+02:00").as_deref(),
            Some("2024-05-01T09:30:15.25+02:00")
        );
        for bad in [
            "2024-13-01",
            "01/05/2024",
            "2024-05-01T25:00",
            "2024-05-01Tnoon",
            "2024-05-01T09:30+2",
        ] {
            assert_eq!(normalize_date_time(bad), None, "{bad}");
        }
    }

    #[test]
    fn lookups_bind_by_id_or_key() {
        let single = LookupColumn {
            targets: vec![(
                "account".into(),
                "parentaccountid".into(),
                "accounts".into(),
            )],
        };
        let id = "6c1d2e3f-0000-0000-0000-00000000a001";
        assert_eq!(
            lookup_bind("parentaccountid", &single, &json!(id)).unwrap(),
            ("parentaccountid".into(), json!(format!("/accounts({id})")))
        );
        assert_eq!(
            lookup_bind("parentaccountid", &single, &json!("accountnumber=A'1"))
                .unwrap()
                .1,
            json!("/accounts(accountnumber='A''1')")
        );
        let customer = LookupColumn {
            targets: vec![
                (
                    "account".into(),
                    "parentcustomerid_account".into(),
                    "accounts".into(),
                ),
                (
                    "contact".into(),
                    "parentcustomerid_contact".into(),
                    "contacts".into(),
                ),
            ],
        };
        assert!(lookup_bind("parentcustomerid", &customer, &json!(id)).is_err());
        assert_eq!(
            lookup_bind(
                "parentcustomerid",
                &customer,
                &json!("account(accountnumber=A-1)")
            )
            .unwrap(),
            (
                "parentcustomerid_account".into(),
                json!("/accounts(accountnumber='A-1')")
            )
        );
        assert!(lookup_bind("parentcustomerid", &customer, &json!("lead(x=1)")).is_err());
    }

    #[test]
    fn close_names_are_near() {
        assert_eq!(edit_distance("nmae", "name"), 2);
        assert_eq!(edit_distance("", "abc"), 3);
    }

    #[test]
    fn ids_are_deterministic() {
        let namespace: Guid = ID_NAMESPACE.parse().unwrap();
        let a = Guid::from_name(namespace, b"seed\x001");
        assert_eq!(a, Guid::from_name(namespace, b"seed\x001"));
        assert_ne!(a, Guid::from_name(namespace, b"seed\x002"));
        assert_eq!(a.to_string().as_bytes()[14], b'5', "version 5: {a}");
    }
}
