//! Records as JSON: stored rows into Dataverse's record shape (ETag, `_x_value` lookups,
//! FormattedValue and lookup annotations) and request bodies into typed column values
//! (`@odata.bind` included), with Dataverse's errors for bad names and values.

use rusqlite::types::Value as Sql;
use serde_json::{Map, Value, json};

use super::filter::{normalize_datetime, parse_guid};
use super::path::{lookup_accepts, resolve_reference};
use super::{ASSOCIATED_NAVIGATION, FORMATTED, LOOKUP_LOGICAL_NAME, Prefer};
use crate::dataverse::errors::{ApiError, ApiResult};
use crate::dataverse::response::Ordered;
use crate::dataverse::schema::{Column, Kind, Schema, Table};
use crate::dataverse::store::{Db, Row, target_column};

/// `W/"<versionnumber>"`.
pub(crate) fn etag(version: i64) -> String {
    format!("W/\"{version}\"")
}

fn group_thousands(digits: &str) -> String {
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn format_number(value: f64, decimals: usize) -> String {
    let text = format!("{:.*}", decimals, value.abs());
    let (whole, fraction) = text
        .split_once('.')
        .map_or((text.as_str(), ""), |(w, f)| (w, f));
    let sign = if value < 0.0 { "-" } else { "" };
    if fraction.is_empty() {
        format!("{sign}{}", group_thousands(whole))
    } else {
        format!("{sign}{}.{fraction}", group_thousands(whole))
    }
}

/// `2024-01-02T15:04:05Z` → `1/2/2024 3:04 PM` (en-US, UTC).
fn format_datetime(text: &str) -> Option<String> {
    let date = text.get(..10)?;
    let mut parts = date.split('-');
    let (year, month, day) = (parts.next()?, parts.next()?, parts.next()?);
    let hour: u32 = text.get(11..13)?.parse().ok()?;
    let minute = text.get(14..16)?;
    let (h12, suffix) = match hour {
        0 => (12, "AM"),
        1..=11 => (hour, "AM"),
        12 => (12, "PM"),
        _ => (hour - 12, "PM"),
    };
    Some(format!(
        "{}/{}/{year} {h12}:{minute} {suffix}",
        month.trim_start_matches('0'),
        day.trim_start_matches('0')
    ))
}

/// The FormattedValue of a non-lookup value, as an en-US Dataverse shows it.
fn formatted(kind: &Kind, value: &Sql) -> Option<String> {
    match (kind, value) {
        (Kind::OptionSet(options), Sql::Integer(v)) => options
            .iter()
            .find(|(value, _)| value == v)
            .map(|(_, label)| label.clone()),
        (Kind::Bool, Sql::Integer(v)) => Some(if *v != 0 { "Yes" } else { "No" }.to_owned()),
        (Kind::Money, Sql::Real(v)) => Some(if *v < 0.0 {
            format!("-${}", format_number(-v, 2))
        } else {
            format!("${}", format_number(*v, 2))
        }),
        (Kind::Decimal, Sql::Real(v)) => Some(format_number(*v, 2)),
        (Kind::Int | Kind::BigInt, Sql::Integer(v)) => Some(format_number(*v as f64, 0)),
        (Kind::DateTime, Sql::Text(t)) => format_datetime(t),
        _ => None,
    }
}

fn plain_value(kind: &Kind, value: &Sql) -> Value {
    match (kind, value) {
        (_, Sql::Null) => Value::Null,
        (Kind::Bool, Sql::Integer(v)) => Value::Bool(*v != 0),
        (Kind::Decimal | Kind::Money, Sql::Integer(v)) => json!(*v as f64),
        (_, Sql::Integer(v)) => json!(v),
        (_, Sql::Real(v)) => json!(v),
        (_, Sql::Text(t)) => Value::String(t.clone()),
        (_, Sql::Blob(_)) => Value::Null,
    }
}

/// How a record is rendered.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Shape<'a> {
    pub(crate) select: Option<&'a [String]>,
    pub(crate) prefer: &'a Prefer,
    /// FetchXML results leave out null columns.
    pub(crate) omit_nulls: bool,
}

/// Renders one row.
pub(crate) fn record(table: &Table, row: &Row, shape: Shape<'_>) -> Ordered {
    let mut out = Ordered::default();
    out.push("@odata.etag", Value::String(etag(row.version(table))));
    let want_formatted = shape.prefer.wants(FORMATTED);
    let want_navigation = shape.prefer.wants(ASSOCIATED_NAVIGATION);
    let want_logical = shape.prefer.wants(LOOKUP_LOGICAL_NAME);
    let mut lookup_index = 0;
    for (index, column) in table.columns.iter().enumerate() {
        let is_lookup = matches!(column.kind, Kind::Lookup(_));
        let this_lookup = lookup_index;
        if is_lookup {
            lookup_index += 1;
        }
        let name = Table::property_name(column);
        let selected = match shape.select {
            None => true,
            Some(list) => column.name == table.primary_id || list.contains(&name),
        };
        if !selected {
            continue;
        }
        let value = &row.values[index];
        if shape.omit_nulls && matches!(value, Sql::Null) {
            continue;
        }
        if let Kind::Lookup(targets) = &column.kind {
            if !matches!(value, Sql::Null) {
                let target = row.targets.get(this_lookup).cloned().flatten();
                if want_formatted && let Some(Some(label)) = row.lookup_names.get(this_lookup) {
                    out.push(format!("{name}@{FORMATTED}"), Value::String(label.clone()));
                }
                if let Some(target) = &target {
                    if want_navigation && let Some(t) = targets.iter().find(|t| &t.table == target)
                    {
                        out.push(
                            format!("{name}@{ASSOCIATED_NAVIGATION}"),
                            Value::String(t.navigation.clone()),
                        );
                    }
                    if want_logical {
                        out.push(
                            format!("{name}@{LOOKUP_LOGICAL_NAME}"),
                            Value::String(target.clone()),
                        );
                    }
                }
            }
        } else if want_formatted && let Some(text) = formatted(&column.kind, value) {
            out.push(format!("{name}@{FORMATTED}"), Value::String(text));
        }
        out.push(name, plain_value(&column.kind, value));
    }
    out
}

/// Validates `$select` against the table: every name a property.
pub(crate) fn parse_select(table: &Table, select: Option<&str>) -> ApiResult<Option<Vec<String>>> {
    let Some(text) = select else { return Ok(None) };
    let mut names = Vec::new();
    for name in text.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        if names.len() >= super::MAX_SELECT {
            return Err(ApiError::bad_request(
                "0x80060888",
                format!("$select may name at most {} columns.", super::MAX_SELECT),
            ));
        }
        if table.property(name).is_none() {
            return Err(ApiError::unknown_property(name, &table.logical_name));
        }
        names.push(name.to_owned());
    }
    Ok(Some(names))
}

/// Converts one JSON value to the stored form of `column`.
pub(crate) fn json_to_sql(table: &Table, column: &Column, value: &Value) -> ApiResult<Sql> {
    let literal = || match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let bad = |edm: &str| ApiError::bad_literal(&literal(), edm);
    Ok(match (&column.kind, value) {
        (_, Value::Null) => Sql::Null,
        (Kind::String { max_length }, Value::String(s)) => {
            if s.chars().count() > *max_length as usize {
                return Err(ApiError::too_long(
                    &column.name,
                    &table.logical_name,
                    *max_length,
                ));
            }
            Sql::Text(s.clone())
        }
        (Kind::Int, Value::Number(n)) => n
            .as_i64()
            .filter(|v| i32::try_from(*v).is_ok())
            .map(Sql::Integer)
            .ok_or_else(|| bad("Edm.Int32"))?,
        (Kind::BigInt, Value::Number(n)) => n
            .as_i64()
            .map(Sql::Integer)
            .ok_or_else(|| bad("Edm.Int64"))?,
        (Kind::OptionSet(options), Value::Number(n)) => {
            let v = n.as_i64().ok_or_else(|| bad("Edm.Int32"))?;
            if !options.iter().any(|(value, _)| *value == v) {
                let accepted: Vec<String> = options.iter().map(|(v, _)| v.to_string()).collect();
                return Err(ApiError::bad_request(
                    "0x8004431a",
                    format!(
                        "A validation error occurred.  The value {v} of '{}' on record of type '{}' is outside the valid range. Accepted Values: {}",
                        column.name,
                        table.logical_name,
                        accepted.join(",")
                    ),
                ));
            }
            Sql::Integer(v)
        }
        (Kind::Decimal | Kind::Money, Value::Number(n)) => n
            .as_f64()
            .map(Sql::Real)
            .ok_or_else(|| bad("Edm.Decimal"))?,
        (Kind::Bool, Value::Bool(b)) => Sql::Integer(i64::from(*b)),
        (Kind::DateTime, Value::String(s)) => normalize_datetime(s)
            .map(Sql::Text)
            .ok_or_else(|| bad("Edm.DateTimeOffset"))?,
        (Kind::Guid | Kind::PrimaryId, Value::String(s)) => parse_guid(s)
            .map(Sql::Text)
            .ok_or_else(|| bad("Edm.Guid"))?,
        (kind, _) => return Err(bad(kind.edm())),
    })
}

/// The column values a create or update body sets.
#[derive(Debug, Default)]
pub(crate) struct Changes {
    /// A primary key given in the body (honoured on create).
    pub(crate) id: Option<String>,
    pub(crate) values: Vec<(String, Sql)>,
}

impl Changes {
    pub(crate) fn set(&mut self, column: &str, value: Sql) {
        self.values.retain(|(c, _)| c != column);
        self.values.push((column.to_owned(), value));
    }

    pub(crate) fn has(&self, column: &str) -> bool {
        self.values.iter().any(|(c, _)| c == column)
    }

    /// Sets a lookup (and the hidden target column).
    pub(crate) fn set_lookup(&mut self, column: &str, target: Option<(&str, &str)>) {
        match target {
            Some((table, id)) => {
                self.set(column, Sql::Text(id.to_owned()));
                self.set(&target_column(column), Sql::Text(table.to_owned()));
            }
            None => {
                self.set(column, Sql::Null);
                self.set(&target_column(column), Sql::Null);
            }
        }
    }
}

/// Reads a create/update body.
pub(crate) fn parse_body(
    db: &Db,
    schema: &Schema,
    api_root: &str,
    table: &Table,
    body: &Map<String, Value>,
) -> ApiResult<Changes> {
    let mut changes = Changes::default();
    for (key, value) in body {
        if key.starts_with('@') {
            continue;
        }
        if let Some(navigation) = key.strip_suffix("@odata.bind") {
            let Some((column, _)) = table.navigation(navigation) else {
                return Err(ApiError::undeclared_navigation(
                    navigation,
                    &table.entity_set,
                ));
            };
            if column.read_only {
                // Set by the service (createdby, owningbusinessunit): ignored, as on Dataverse.
                continue;
            }
            match value {
                Value::Null => changes.set_lookup(&column.name, None),
                Value::String(reference) => {
                    let (target, id) = resolve_reference(db, schema, api_root, reference)?;
                    if !lookup_accepts(&column.kind, &target.logical_name) {
                        return Err(ApiError::bad_request(
                            "0x80048d19",
                            format!(
                                "Error identified in Payload provided by the user for Entity :'{}': the navigation property '{navigation}' cannot refer to a record of type '{}'.",
                                table.entity_set, target.logical_name
                            ),
                        ));
                    }
                    changes.set_lookup(&column.name, Some((&target.logical_name, &id)));
                }
                _ => {
                    return Err(ApiError::bad_request(
                        "0x80048d19",
                        format!("The value of '{key}' must be an entity reference URI."),
                    ));
                }
            }
            continue;
        }
        if key.contains('@') {
            // Instance annotations on properties (FormattedValue sent back, ...) are ignored.
            continue;
        }
        let Some(column) = table.column(key) else {
            return Err(ApiError::invalid_body_property(key, &table.logical_name));
        };
        if matches!(column.kind, Kind::Lookup(_)) {
            return Err(ApiError::invalid_body_property(key, &table.logical_name));
        }
        if column.read_only {
            continue;
        }
        let sql = json_to_sql(table, column, value)?;
        if column.name == table.primary_id {
            match sql {
                Sql::Text(id) => changes.id = Some(id),
                _ => return Err(ApiError::bad_literal("null", "Edm.Guid")),
            }
            continue;
        }
        changes.set(&column.name, sql);
    }
    Ok(changes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_format_like_dataverse() {
        let cases: &[(Kind, Sql, &str)] = &[
            (Kind::Money, Sql::Real(1234.5), "$1,234.50"),
            (Kind::Money, Sql::Real(-3.0), "-$3.00"),
            (Kind::Int, Sql::Integer(1234567), "1,234,567"),
            (Kind::Bool, Sql::Integer(1), "Yes"),
            (Kind::Bool, Sql::Integer(0), "No"),
            (
                Kind::OptionSet(vec![(1, "Preferred Customer".into())]),
                Sql::Integer(1),
                "Preferred Customer",
            ),
            (
                Kind::DateTime,
                Sql::Text("2024-01-02T15:04:05Z".into()),
                "1/2/2024 3:04 PM",
            ),
            (
                Kind::DateTime,
                Sql::Text("2024-11-12T00:30:00Z".into()),
                "11/12/2024 12:30 AM",
            ),
        ];
        for (kind, value, expected) in cases {
            assert_eq!(
                formatted(kind, value).as_deref(),
                Some(*expected),
                "{kind:?}"
            );
        }
    }
}
