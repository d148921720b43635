//! Resource paths under the service root: `accounts`, `accounts(<id>)`,
//! `accounts(accountnumber='A1')`, `accounts(<id>)/name`, `…/primarycontactid/$ref`,
//! `…/contact_customer_accounts(<id>)/$ref`, and entity references in bodies
//! (`/contacts(<id>)`, absolute URLs).

use rusqlite::types::Value as Sql;

use super::filter::{self, Literal, Op};
use super::percent_decode;
use crate::dataverse::errors::{ApiError, ApiResult};
use crate::dataverse::schema::{Kind, Schema, Table};
use crate::dataverse::store::Db;

/// One path segment: a name and, optionally, what stood in parentheses after it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Segment {
    pub(crate) name: String,
    pub(crate) key: Option<String>,
}

/// Splits a raw (percent-encoded) path into decoded segments; a `/` inside a quoted key
/// value does not split.
pub(crate) fn segments(raw: &str) -> Vec<Segment> {
    let decoded = percent_decode(raw, false);
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    for ch in decoded.chars() {
        match ch {
            '\'' => {
                quoted = !quoted;
                current.push(ch);
            }
            '/' if !quoted => parts.push(std::mem::take(&mut current)),
            _ => current.push(ch),
        }
    }
    parts.push(current);
    parts
        .into_iter()
        .map(|part| match (part.find('('), part.ends_with(')')) {
            (Some(open), true) => Segment {
                name: part[..open].to_owned(),
                key: Some(part[open + 1..part.len() - 1].to_owned()),
            },
            _ => Segment {
                name: part,
                key: None,
            },
        })
        .collect()
}

/// A key segment resolved against a table.
#[derive(Debug, Clone)]
pub(crate) struct Key {
    /// The primary id: given in the URL, or found through the alternate key.
    pub(crate) id: Option<String>,
    /// Alternate key columns and values (empty for a primary key), set on upsert-create.
    pub(crate) values: Vec<(String, Sql)>,
}

impl Key {
    pub(crate) fn not_found(&self, table: &Table) -> ApiError {
        match &self.id {
            Some(id) if self.values.is_empty() => {
                ApiError::record_not_found(&table.logical_name, id)
            }
            _ => ApiError::key_not_found(&table.logical_name),
        }
    }
}

/// Resolves `(…)`: a GUID, `accountid=<guid>`, or the columns of one alternate key
/// (lookup columns named `_x_value`).
pub(crate) fn resolve_key(db: &Db, table: &Table, text: &str) -> ApiResult<Key> {
    let pairs = filter::parse_key(text)?;
    if let [(name, Literal::Guid(id))] = pairs.as_slice()
        && name.as_deref().is_none_or(|n| n == table.primary_id)
    {
        return Ok(Key {
            id: Some(id.clone()),
            values: Vec::new(),
        });
    }
    if pairs.iter().any(|(name, _)| name.is_none()) {
        return Err(ApiError::invalid_key(&table.logical_name));
    }
    let mut values = Vec::new();
    for (name, literal) in &pairs {
        let name = name.as_deref().unwrap_or_default();
        let column = table
            .property(name)
            .map(|p| p.column)
            .ok_or_else(|| ApiError::invalid_key(&table.logical_name))?;
        if matches!(literal, Literal::Null) {
            return Err(ApiError::invalid_key(&table.logical_name));
        }
        values.push((
            column.name.clone(),
            filter::literal_to_sql(&column.kind, literal, Op::Eq)?,
        ));
    }
    let matches_key = table.keys.iter().any(|key| {
        key.columns.len() == values.len()
            && key
                .columns
                .iter()
                .all(|c| values.iter().any(|(v, _)| v == c))
    });
    if !matches_key {
        return Err(ApiError::invalid_key(&table.logical_name));
    }
    let id = db.find_by_key(table, &values)?;
    Ok(Key { id, values })
}

/// What follows the Web API root in a URL or path of any version and organization
/// (`…/api/data/v9.2/accounts(1)` or `…/Contoso/api/data/v8.2/accounts(1)` →
/// `accounts(1)`).
pub(crate) fn after_api_root(reference: &str) -> Option<&str> {
    let index = reference.find("/api/data/v")?;
    let rest = &reference[index + "/api/data/".len()..];
    let slash = rest.find('/')?;
    Some(&rest[slash + 1..])
}

/// Resolves an entity reference (`/contacts(<id>)`, `contacts(<id>)`, an absolute URL on
/// this service) to an existing row.
pub(crate) fn resolve_reference<'a>(
    db: &Db,
    schema: &'a Schema,
    api_root: &str,
    reference: &str,
) -> ApiResult<(&'a Table, String)> {
    let relative = reference
        .strip_prefix(api_root)
        .or_else(|| after_api_root(reference))
        .unwrap_or(reference)
        .trim_start_matches('/');
    let segments = segments(relative);
    let bad = || {
        ApiError::bad_request(
            "0x80048d19",
            format!("The entity reference '{reference}' is not a valid URI of a record."),
        )
    };
    let [segment] = segments.as_slice() else {
        return Err(bad());
    };
    let table = schema
        .by_set(&segment.name)
        .ok_or_else(|| ApiError::segment_not_found(&segment.name))?;
    let key = resolve_key(db, table, segment.key.as_deref().ok_or_else(bad)?)?;
    match &key.id {
        Some(id) if db.exists(table, id)? => Ok((table, id.clone())),
        _ => Err(key.not_found(table)),
    }
}

/// Whether a column can hold a lookup to `table`.
pub(crate) fn lookup_accepts(kind: &Kind, table: &str) -> bool {
    matches!(kind, Kind::Lookup(targets) if targets.iter().any(|t| t.table == table))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_split_into_segments() {
        type Expected<'a> = &'a [(&'a str, Option<&'a str>)];
        let cases: &[(&str, Expected<'_>)] = &[
            ("accounts", &[("accounts", None)]),
            (
                "accounts(accountnumber='A%2F1')/name",
                &[("accounts", Some("accountnumber='A/1'")), ("name", None)],
            ),
            (
                "accounts(1)/primarycontactid/$ref",
                &[
                    ("accounts", Some("1")),
                    ("primarycontactid", None),
                    ("$ref", None),
                ],
            ),
            ("WhoAmI()", &[("WhoAmI", Some(""))]),
            ("", &[("", None)]),
        ];
        for (raw, expected) in cases {
            let got = segments(raw);
            let got: Vec<(&str, Option<&str>)> = got
                .iter()
                .map(|s| (s.name.as_str(), s.key.as_deref()))
                .collect();
            assert_eq!(&got, expected, "{raw}");
        }
    }
}
