//! `$expand` on records: single-valued navigation properties (a lookup: the related record,
//! or `null`; `nav/$ref` for its reference only) and collection-valued ones (the records
//! whose lookup points here, with nested `$select`, `$filter`, `$orderby` and `$top`), nested
//! as Dataverse allows, checked once against the schema before any row is read.
//!
//! Dataverse's rules: `$ref` only on single-valued properties; `$orderby`/`$top` only on a
//! collection-valued property of a query without nested `$expand`; at most 5,000 related
//! records per collection. A response holds at most [`MAX_EXPANDED_ROWS`] related records in
//! all, so one request cannot make the emulator build an unbounded answer.

use std::cell::Cell;

use rusqlite::types::Value as Sql;
use serde_json::{Map, Value};

use super::errors::{ApiError, ApiResult};
use super::odata::expand::ExpandItem;
use super::odata::filter::{self, Expr};
use super::odata::json::{Shape, parse_select, record};
use super::odata::query::{MAX_PAGE, Plan, SortKey, parse_orderby};
use super::odata::{FORMATTED, Prefer};
use super::org::{Access, Caller};
use super::response::Ordered;
use super::schema::{CollectionNav, Column, Kind, LookupTarget, Schema, Table};
use super::store::{Db, Row, target_column};

/// The most related records one response may carry across all its expansions.
pub(crate) const MAX_EXPANDED_ROWS: usize = 50_000;

/// Which navigation property an item expands.
#[derive(Debug)]
enum Via<'a> {
    Single {
        column: &'a Column,
        target: &'a LookupTarget,
    },
    Collection(&'a CollectionNav),
}

/// One checked `$expand` item: the navigation property, the related table and the options.
#[derive(Debug)]
struct Node<'a> {
    name: String,
    via: Via<'a>,
    other: &'a Table,
    is_ref: bool,
    select: Option<Vec<String>>,
    condition: Option<Expr>,
    order: Vec<SortKey>,
    top: Option<usize>,
    /// The raw nested options, for the collection's `@odata.nextLink`.
    raw: ExpandItem,
    children: Vec<Node<'a>>,
}

/// A checked `$expand` tree for a table, ready to apply to its rows.
#[derive(Debug)]
pub(crate) struct Expansion<'a> {
    schema: &'a Schema,
    api_root: &'a str,
    prefer: &'a Prefer,
    nodes: Vec<Node<'a>>,
    /// `odata.maxpagesize`, which pages expanded collections when the query nests expands.
    page_size: Option<usize>,
    rows: Cell<usize>,
}

const ONLY_SELECT_AND_FILTER: &str = "Only $select and $filter clause can be provided while doing $expand on many-to-one relationship or nested one-to-many relationship.";

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::bad_request("0x80060888", message)
}

impl<'a> Expansion<'a> {
    /// Checks `items` against `table`: names, options, Dataverse's rules, the caller's read
    /// privilege on every related table.
    pub(crate) fn new(
        schema: &'a Schema,
        api_root: &'a str,
        caller: &Caller,
        prefer: &'a Prefer,
        table: &'a Table,
        items: &[ExpandItem],
    ) -> ApiResult<Self> {
        let nested = items.iter().any(|i| !i.expand.is_empty());
        let page_size = super::odata::query::page_size(prefer)?;
        let nodes = items
            .iter()
            .map(|item| check(schema, caller, table, item, nested, 1))
            .collect::<ApiResult<Vec<_>>>()?;
        Ok(Self {
            schema,
            api_root,
            prefer,
            nodes,
            page_size: if nested { page_size } else { None },
            rows: Cell::new(0),
        })
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// The `@odata.context` list for these expansions beside `select`
    /// (`name,primarycontactid(fullname)`).
    pub(crate) fn context(&self, select: Option<&[String]>) -> String {
        let items: Vec<ExpandItem> = self.nodes.iter().map(|n| n.raw.clone()).collect();
        let select = select.map(|names| names.join(","));
        super::odata::expand::context_list(select.as_deref(), &items)
    }

    /// Appends the expanded navigation properties of `row` (a row of the expansion's table).
    pub(crate) fn apply(
        &self,
        db: &Db,
        table: &Table,
        row: &Row,
        out: &mut Ordered,
    ) -> ApiResult<()> {
        for node in &self.nodes {
            self.expand(db, table, row, node, out)?;
        }
        Ok(())
    }

    fn count(&self, rows: usize) -> ApiResult<()> {
        let total = self.rows.get() + rows;
        self.rows.set(total);
        if total > MAX_EXPANDED_ROWS {
            return Err(invalid(format!(
                "The $expand would return more than {MAX_EXPANDED_ROWS} related records in one response; narrow it with $filter or $top, or page the query with odata.maxpagesize."
            )));
        }
        Ok(())
    }

    fn shape<'s>(&'s self, select: Option<&'s [String]>) -> Shape<'s> {
        Shape {
            select,
            prefer: self.prefer,
            omit_nulls: false,
        }
    }

    fn expand(
        &self,
        db: &Db,
        table: &Table,
        row: &Row,
        node: &Node<'_>,
        out: &mut Ordered,
    ) -> ApiResult<()> {
        let names = self.prefer.wants(FORMATTED);
        let id = match row.get(table, &table.primary_id) {
            Some(Sql::Text(id)) => id.clone(),
            _ => return Ok(()),
        };
        match &node.via {
            Via::Single { column, target } => {
                let related = match (
                    row.get(table, &column.name),
                    lookup_target(table, row, &column.name),
                ) {
                    (Some(Sql::Text(other_id)), Some(points_to)) if points_to == target.table => {
                        Some(other_id.clone())
                    }
                    _ => None,
                };
                let Some(other_id) = related else {
                    out.push(node.name.clone(), Value::Null);
                    return Ok(());
                };
                if node.is_ref {
                    let mut reference = Map::new();
                    reference.insert(
                        "@odata.id".into(),
                        Value::String(format!(
                            "{}{}({other_id})",
                            self.api_root, node.other.entity_set
                        )),
                    );
                    out.push(node.name.clone(), Value::Object(reference));
                    return Ok(());
                }
                let plan = Plan {
                    table: node.other,
                    condition: node.condition.clone(),
                    restrict: vec![(node.other.primary_id.clone(), Sql::Text(other_id))],
                    order: Vec::new(),
                    limit: 1,
                    cursor: None,
                    offset: 0,
                    names,
                };
                let page = plan.run(db, self.schema)?;
                self.count(page.rows.len())?;
                let value = match page.rows.first() {
                    Some(related) => self.render(db, node, related)?,
                    None => Value::Null,
                };
                out.push(node.name.clone(), value);
            }
            Via::Collection(nav) => {
                let mut limit = node.top.unwrap_or(MAX_PAGE).min(MAX_PAGE);
                if let Some(size) = self.page_size {
                    limit = limit.min(size);
                }
                let plan = Plan {
                    table: node.other,
                    condition: node.condition.clone(),
                    restrict: vec![
                        (nav.column.clone(), Sql::Text(id.clone())),
                        (
                            target_column(&nav.column),
                            Sql::Text(table.logical_name.clone()),
                        ),
                    ],
                    order: node.order.clone(),
                    limit,
                    cursor: None,
                    offset: 0,
                    names,
                };
                let page = plan.run(db, self.schema)?;
                self.count(page.rows.len())?;
                let mut items = Vec::with_capacity(page.rows.len());
                for related in &page.rows {
                    items.push(self.render(db, node, related)?);
                }
                out.push(node.name.clone(), Value::Array(items));
                out.push(
                    format!("{}@odata.nextLink", node.name),
                    Value::String(self.next_link(table, &id, node)),
                );
            }
        }
        Ok(())
    }

    /// A related record as JSON, with its own nested expansions.
    fn render(&self, db: &Db, node: &Node<'_>, related: &Row) -> ApiResult<Value> {
        let mut ordered = record(node.other, related, self.shape(node.select.as_deref()));
        for child in &node.children {
            self.expand(db, node.other, related, child, &mut ordered)?;
        }
        let mut map = Map::new();
        for (name, value) in ordered.0 {
            map.insert(name, value);
        }
        Ok(Value::Object(map))
    }

    /// `…/accounts(<id>)/<nav>?$select=…`: where the related records are read on their own.
    fn next_link(&self, table: &Table, id: &str, node: &Node<'_>) -> String {
        let raw = &node.raw;
        let mut query = Vec::new();
        for (name, value) in [
            ("$select", &raw.select),
            ("$filter", &raw.filter),
            ("$orderby", &raw.orderby),
            ("$top", &raw.top),
        ] {
            if let Some(value) = value {
                query.push(format!(
                    "{name}={}",
                    super::odata::percent_encode(value, b"$,'()/:=", true)
                ));
            }
        }
        let mut link = format!("{}{}({id})/{}", self.api_root, table.entity_set, node.name);
        if !query.is_empty() {
            link.push('?');
            link.push_str(&query.join("&"));
        }
        link
    }
}

/// The table a stored lookup value points into.
fn lookup_target(table: &Table, row: &Row, column: &str) -> Option<String> {
    let index = table
        .columns
        .iter()
        .filter(|c| matches!(c.kind, Kind::Lookup(_)))
        .position(|c| c.name == column)?;
    row.targets.get(index).cloned().flatten()
}

fn check<'a>(
    schema: &'a Schema,
    caller: &Caller,
    table: &'a Table,
    item: &ExpandItem,
    nested_query: bool,
    depth: usize,
) -> ApiResult<Node<'a>> {
    let (via, other_name) = if let Some((column, target)) = table.navigation(&item.name) {
        (Via::Single { column, target }, target.table.as_str())
    } else if let Some(nav) = table.collection(&item.name) {
        (Via::Collection(nav), nav.table.as_str())
    } else {
        return Err(ApiError::unknown_property(&item.name, &table.logical_name));
    };
    let other = schema
        .by_name(other_name)
        .ok_or_else(|| ApiError::unknown_property(&item.name, &table.logical_name))?;
    match via {
        Via::Collection(_) if item.is_ref => {
            return Err(invalid(
                "Expand with $ref is only supported on lookup type navigation property.",
            ));
        }
        Via::Single { .. } if item.orderby.is_some() || item.top.is_some() => {
            return Err(invalid(ONLY_SELECT_AND_FILTER));
        }
        Via::Collection(_)
            if (nested_query || depth > 1) && (item.orderby.is_some() || item.top.is_some()) =>
        {
            return Err(invalid(ONLY_SELECT_AND_FILTER));
        }
        _ => {}
    }
    caller.require(other, Access::Read)?;
    let select = parse_select(other, item.select.as_deref())?;
    let condition = item
        .filter
        .as_deref()
        .map(|f| filter::parse(f, &[]))
        .transpose()?;
    if let Some(condition) = &condition {
        // Type-check the condition against the related table now, not per row.
        filter::to_sql(condition, other, &mut Vec::new())?;
    }
    let order = parse_orderby(other, item.orderby.as_deref())?;
    let top = item
        .top
        .as_deref()
        .map(|t| {
            t.parse::<usize>()
                .map_err(|_| invalid(format!("Invalid value '{t}' for $top query option found.")))
        })
        .transpose()?;
    let children = item
        .expand
        .iter()
        .map(|child| check(schema, caller, other, child, nested_query, depth + 1))
        .collect::<ApiResult<Vec<_>>>()?;
    Ok(Node {
        name: item.name.clone(),
        via,
        other,
        is_ref: item.is_ref,
        select,
        condition,
        order,
        top,
        raw: item.clone(),
        children,
    })
}
