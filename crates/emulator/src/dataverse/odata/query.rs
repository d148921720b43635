//! The query engine: a condition, an order and a cursor become one SQL statement over the
//! table (`ORDER BY <sort keys>, <primary id> LIMIT n + 1`), and the OData collection answer
//! (`@odata.context`, `@odata.count`, `@odata.nextLink` with a keyset `$skiptoken`).

use axum::http::StatusCode;
use rusqlite::params_from_iter;
use rusqlite::types::Value as Sql;
use serde_json::{Value, json};

use super::filter::{self, Expr};
use super::json::{Shape, parse_select, record};
use super::paging::{self, Cursor};
use super::{Prefer, QueryOptions, TOTAL_COUNT, TOTAL_COUNT_EXCEEDED};
use crate::dataverse::errors::{ApiError, ApiResult};
use crate::dataverse::expansion::Expansion;
use crate::dataverse::response::{Collection, DvResponse, Ordered};
use crate::dataverse::schema::{Kind, Schema, Table};
use crate::dataverse::store::{Db, Row, ident, read_row, select_list};

/// Dataverse's default and largest page.
pub(crate) const MAX_PAGE: usize = 5000;

/// One sort key.
#[derive(Debug, Clone)]
pub(crate) struct SortKey {
    pub(crate) column: String,
    /// The OData name, as it appears in cookies.
    pub(crate) property: String,
    pub(crate) descending: bool,
}

/// What to read.
#[derive(Debug, Clone)]
pub(crate) struct Plan<'a> {
    pub(crate) table: &'a Table,
    pub(crate) condition: Option<Expr>,
    /// `column = value` restrictions (the rows of a collection-valued navigation property).
    pub(crate) restrict: Vec<(String, Sql)>,
    /// Sort keys; the primary id is appended as the last tie-breaker.
    pub(crate) order: Vec<SortKey>,
    pub(crate) limit: usize,
    pub(crate) cursor: Option<Cursor>,
    pub(crate) offset: usize,
    pub(crate) names: bool,
}

/// One page of rows, and whether more follow.
#[derive(Debug)]
pub(crate) struct Page {
    pub(crate) rows: Vec<Row>,
    pub(crate) more: bool,
}

impl Plan<'_> {
    fn keys(&self) -> Vec<SortKey> {
        let mut keys = self.order.clone();
        if !keys.iter().any(|k| k.column == self.table.primary_id) {
            keys.push(SortKey {
                column: self.table.primary_id.clone(),
                property: self.table.primary_id.clone(),
                descending: false,
            });
        }
        keys
    }

    fn condition_sql(&self, params: &mut Vec<Sql>) -> ApiResult<Vec<String>> {
        let mut conditions = Vec::new();
        if let Some(expr) = &self.condition {
            conditions.push(filter::to_sql(expr, self.table, params)?);
        }
        for (column, value) in &self.restrict {
            params.push(value.clone());
            conditions.push(format!("t.{} = ?{}", ident(column), params.len()));
        }
        Ok(conditions)
    }

    /// Rows strictly after the cursor in `ORDER BY` order (SQLite sorts nulls first).
    fn keyset_sql(&self, cursor: &Cursor, params: &mut Vec<Sql>) -> ApiResult<String> {
        let keys = self.keys();
        let invalid = || {
            ApiError::bad_request(
                "0x80040203",
                "The paging cookie does not match the query's sort order.",
            )
        };
        if cursor.values.len() != keys.len()
            || keys
                .iter()
                .zip(&cursor.values)
                .any(|(k, (name, _))| &k.property != name)
        {
            return Err(invalid());
        }
        let mut typed = Vec::new();
        for (key, (_, text)) in keys.iter().zip(&cursor.values) {
            let kind = &self.table.column(&key.column).ok_or_else(invalid)?.kind;
            typed.push(match text {
                None => Sql::Null,
                Some(text) => cookie_to_sql(kind, text).ok_or_else(invalid)?,
            });
        }
        let mut alternatives = Vec::new();
        for i in 0..keys.len() {
            let mut parts = Vec::new();
            for j in 0..i {
                let column = format!("t.{}", ident(&keys[j].column));
                match &typed[j] {
                    Sql::Null => parts.push(format!("{column} IS NULL")),
                    value => {
                        params.push(value.clone());
                        parts.push(format!("{column} = ?{}", params.len()));
                    }
                }
            }
            let column = format!("t.{}", ident(&keys[i].column));
            let after = match (&typed[i], keys[i].descending) {
                (Sql::Null, false) => format!("{column} IS NOT NULL"),
                (Sql::Null, true) => "0".to_owned(),
                (value, false) => {
                    params.push(value.clone());
                    format!("{column} > ?{}", params.len())
                }
                (value, true) => {
                    params.push(value.clone());
                    format!("({column} < ?{} OR {column} IS NULL)", params.len())
                }
            };
            parts.push(after);
            alternatives.push(format!("({})", parts.join(" AND ")));
        }
        Ok(format!("({})", alternatives.join(" OR ")))
    }

    pub(crate) fn run(&self, db: &Db, schema: &Schema) -> ApiResult<Page> {
        let mut params = Vec::new();
        let mut conditions = self.condition_sql(&mut params)?;
        if let Some(cursor) = &self.cursor {
            conditions.push(self.keyset_sql(cursor, &mut params)?);
        }
        let order: Vec<String> = self
            .keys()
            .iter()
            .map(|k| {
                format!(
                    "t.{}{}",
                    ident(&k.column),
                    if k.descending { " DESC" } else { "" }
                )
            })
            .collect();
        let sql = format!(
            "SELECT {} FROM {} t{} ORDER BY {} LIMIT {} OFFSET {}",
            select_list(schema, self.table, "t", self.names),
            ident(&self.table.logical_name),
            if conditions.is_empty() {
                String::new()
            } else {
                format!(" WHERE {}", conditions.join(" AND "))
            },
            order.join(", "),
            self.limit + 1,
            self.offset
        );
        let mut statement = db.conn.prepare_cached(&sql)?;
        let mut rows = statement.query(params_from_iter(params.iter()))?;
        let mut out = Vec::with_capacity(self.limit.min(MAX_PAGE) + 1);
        while let Some(row) = rows.next()? {
            out.push(read_row(self.table, row, self.names)?);
        }
        let more = out.len() > self.limit;
        out.truncate(self.limit);
        Ok(Page { rows: out, more })
    }

    /// Counts matching rows, stopping at `cap + 1`.
    pub(crate) fn count(&self, db: &Db, cap: usize) -> ApiResult<usize> {
        let mut params = Vec::new();
        let conditions = self.condition_sql(&mut params)?;
        let sql = format!(
            "SELECT COUNT(*) FROM (SELECT 1 FROM {} t{} LIMIT {})",
            ident(&self.table.logical_name),
            if conditions.is_empty() {
                String::new()
            } else {
                format!(" WHERE {}", conditions.join(" AND "))
            },
            cap + 1
        );
        let count: i64 = db
            .conn
            .query_row(&sql, params_from_iter(params.iter()), |row| row.get(0))?;
        Ok(usize::try_from(count).unwrap_or(0))
    }

    /// The cursor after `row`.
    pub(crate) fn cursor_after(&self, row: &Row) -> Vec<(String, Option<String>)> {
        self.keys()
            .iter()
            .map(|k| {
                let value = row
                    .get(self.table, &k.column)
                    .and_then(paging::cookie_value);
                (k.property.clone(), value)
            })
            .collect()
    }
}

fn cookie_to_sql(kind: &Kind, text: &str) -> Option<Sql> {
    Some(match kind {
        Kind::Int | Kind::BigInt | Kind::Bool | Kind::OptionSet(_) => {
            Sql::Integer(text.parse().ok()?)
        }
        Kind::Decimal | Kind::Money => Sql::Real(text.parse().ok()?),
        _ => Sql::Text(text.to_owned()),
    })
}

/// Parses `$orderby` (`name asc,createdon desc`).
pub(crate) fn parse_orderby(table: &Table, text: Option<&str>) -> ApiResult<Vec<SortKey>> {
    let Some(text) = text else {
        return Ok(Vec::new());
    };
    let mut keys = Vec::new();
    for item in text.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let mut words = item.split_whitespace();
        let name = words.next().unwrap_or_default();
        let descending = match words.next() {
            None | Some("asc") => false,
            Some("desc") => true,
            Some(other) => {
                return Err(ApiError::bad_request(
                    "0x80060888",
                    format!(
                        "Syntax error: '{other}' is not a sort direction in '$orderby={text}'."
                    ),
                ));
            }
        };
        let property = table
            .property(name)
            .ok_or_else(|| ApiError::unknown_property(name, &table.logical_name))?;
        keys.push(SortKey {
            column: property.column.name.clone(),
            property: name.to_owned(),
            descending,
        });
    }
    Ok(keys)
}

/// Parses `Prefer: odata.maxpagesize` (1..=5000).
pub(crate) fn page_size(prefer: &Prefer) -> ApiResult<Option<usize>> {
    match &prefer.max_page_size {
        None => Ok(None),
        Some(text) => match text.parse::<usize>() {
            Ok(size) if size > 0 => Ok(Some(size.min(MAX_PAGE))),
            _ => Err(ApiError::bad_request(
                "0x80060888",
                format!("The value '{text}' of odata.maxpagesize is not a positive integer."),
            )),
        },
    }
}

/// Where a collection request came from, for `@odata.context` and `@odata.nextLink`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Origin<'a> {
    /// `{base}/api/data/v9.2/`.
    pub(crate) api_root: &'a str,
    /// The raw request path below the root (`accounts`, `accounts(<id>)/contact_customer_accounts`).
    pub(crate) path: &'a str,
}

/// A collection request as the query engine answers it: the query options and `Prefer`
/// header it came with, and where it came from.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CollectionRequest<'a> {
    pub(crate) options: &'a QueryOptions,
    pub(crate) prefer: &'a Prefer,
    pub(crate) origin: Origin<'a>,
    /// `$expand`, checked against the table.
    pub(crate) expansion: Option<&'a Expansion<'a>>,
}

/// Answers an OData collection request over `table`, restricted to the rows where each
/// `restrict` column holds its value (the rows of a collection-valued navigation property)
/// besides `$filter`.
pub(crate) fn collection(
    db: &Db,
    schema: &Schema,
    table: &Table,
    restrict: Vec<(String, Sql)>,
    request: &CollectionRequest<'_>,
) -> ApiResult<DvResponse> {
    let CollectionRequest {
        options,
        prefer,
        origin,
        expansion,
    } = *request;
    let select = parse_select(table, options.select.as_deref())?;
    let condition = options
        .filter
        .as_deref()
        .map(|f| filter::parse(f, &options.aliases))
        .transpose()?;
    let order = parse_orderby(table, options.orderby.as_deref())?;
    let top = options
        .top
        .as_deref()
        .map(|t| {
            t.parse::<usize>().map_err(|_| {
                ApiError::bad_request(
                    "0x80060888",
                    format!("Invalid value '{t}' for $top query option found."),
                )
            })
        })
        .transpose()?;
    let count = match options.count.as_deref() {
        None | Some("false") => false,
        Some("true") => true,
        Some(other) => {
            return Err(ApiError::bad_request(
                "0x80060888",
                format!("'{other}' is not a valid count option."),
            ));
        }
    };
    let max_page = page_size(prefer)?;
    // `$top` is ignored when the client asks for pages.
    let (limit, paged) = match (max_page, top) {
        (Some(size), _) => (size, true),
        (None, Some(top)) => (top.min(MAX_PAGE), false),
        (None, None) => (MAX_PAGE, true),
    };
    let cursor = options
        .skiptoken
        .as_deref()
        .map(paging::parse_skiptoken)
        .transpose()?;
    let page_number = cursor.as_ref().map_or(1, |c| c.page + 1);
    let plan = Plan {
        table,
        condition,
        restrict,
        order,
        limit,
        cursor,
        offset: 0,
        names: prefer.wants(super::FORMATTED),
    };
    let page = plan.run(db, schema)?;
    let mut head = Ordered::default();
    let list = match expansion {
        Some(expansion) if !expansion.is_empty() => expansion.context(select.as_deref()),
        _ => select
            .as_ref()
            .map(|names| names.join(","))
            .unwrap_or_default(),
    };
    let context = if select.is_some() || !list.is_empty() {
        format!("{}$metadata#{}({list})", origin.api_root, table.entity_set)
    } else {
        format!("{}$metadata#{}", origin.api_root, table.entity_set)
    };
    head.push("@odata.context", Value::String(context));
    // Dataverse counts up to 5,000: past that `@odata.count` stays 5000, the total record
    // count annotation is -1 and the limit-exceeded annotation true; without `$count=true`
    // the total is -1 (not counted).
    let total = if count {
        Some(plan.count(db, MAX_PAGE)?)
    } else {
        None
    };
    if let Some(total) = total {
        head.push("@odata.count", json!(total.min(MAX_PAGE)));
    }
    if prefer.wants(TOTAL_COUNT) {
        let shown = match total {
            Some(total) if total <= MAX_PAGE => i64::try_from(total).unwrap_or(-1),
            _ => -1,
        };
        head.push(format!("@{TOTAL_COUNT}"), json!(shown));
    }
    if prefer.wants(TOTAL_COUNT_EXCEEDED) {
        head.push(
            format!("@{TOTAL_COUNT_EXCEEDED}"),
            json!(total.is_some_and(|t| t > MAX_PAGE)),
        );
    }
    if page.more
        && paged
        && let Some(last) = page.rows.last()
    {
        let cursor = plan.cursor_after(last);
        let first = page
            .rows
            .first()
            .and_then(|r| r.get(table, &table.primary_id))
            .and_then(paging::cookie_value);
        let inner = paging::inner_cookie(page_number, &cursor, first.as_deref());
        let token = paging::skiptoken(page_number + 1, &inner);
        let mut query = options.raw_without_skiptoken();
        query.push(format!("$skiptoken={}", paging::skiptoken_in_url(&token)));
        head.push(
            "@odata.nextLink",
            Value::String(format!(
                "{}{}?{}",
                origin.api_root,
                origin.path,
                query.join("&")
            )),
        );
    }
    let shape = Shape {
        select: select.as_deref(),
        prefer,
        omit_nulls: false,
    };
    let mut rows = Vec::with_capacity(page.rows.len());
    for row in &page.rows {
        let mut rendered = record(table, row, shape);
        if let Some(expansion) = expansion {
            expansion.apply(db, table, row, &mut rendered)?;
        }
        rows.push(rendered);
    }
    let mut response = DvResponse::json(StatusCode::OK, &Collection { head, rows });
    let mut applied = Vec::new();
    if let Some(size) = max_page {
        applied.push(format!("odata.maxpagesize={size}"));
    }
    if let Some(annotations) = &prefer.annotations {
        applied.push(format!("odata.include-annotations=\"{annotations}\""));
    }
    if !applied.is_empty() {
        response = response.header("Preference-Applied", applied.join(","));
    }
    Ok(response)
}
