//! Associations between records, which Dataverse keeps as lookup columns: a single-valued
//! navigation property (`accounts(<id>)/primarycontactid`) reads the record a lookup points
//! at, and its `$ref` sets (`PUT`) or clears (`DELETE`) the lookup; a collection-valued one
//! (`accounts(<id>)/contact_customer_accounts`) lists the records whose lookup points here,
//! and its `$ref` associates (`POST`) or disassociates (`DELETE`, by key or `$id`) one of
//! them by setting or clearing that record's lookup.

use axum::http::{Method, StatusCode};
use rusqlite::types::Value as Sql;
use serde_json::Value;

use super::errors::{ApiError, ApiResult};
use super::odata::json::{Changes, etag, parse_select};
use super::odata::path::{self, Segment, resolve_reference};
use super::odata::query;
use super::org::Access;
use super::records::{Record, entity_body, existing_id};
use super::request::Call;
use super::response::DvResponse;
use super::schema::{CollectionNav, Column, Kind, LookupTarget, Table};
use super::store::{Db, Row, target_column};

/// A navigation property of a record's table, as a path segment names it.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Navigation<'a> {
    /// One of the table's lookups, toward one target table (`primarycontactid`).
    Single(Lookup<'a>),
    /// The rows of another table whose lookup points here (`contact_customer_accounts`),
    /// with the key of one of them when the segment has one.
    Collection {
        nav: &'a CollectionNav,
        key: Option<&'a str>,
    },
}

/// A lookup column and the target a single-valued navigation property reaches through it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Lookup<'a> {
    column: &'a Column,
    target: &'a LookupTarget,
}

impl<'a> Navigation<'a> {
    /// The navigation property `segment` names on `table`, if any. A single-valued property
    /// takes no key, so `primarycontactid(<id>)` is not one.
    pub(crate) fn of(table: &'a Table, segment: &'a Segment) -> Option<Self> {
        if segment.key.is_none()
            && let Some((column, target)) = table.navigation(&segment.name)
        {
            return Some(Self::Single(Lookup { column, target }));
        }
        table.collection(&segment.name).map(|nav| Self::Collection {
            nav,
            key: segment.key.as_deref(),
        })
    }
}

/// `$ref`, the segment that addresses the association itself rather than the record.
fn is_ref(segment: &Segment) -> bool {
    segment.name == "$ref" && segment.key.is_none()
}

/// Answers a request to `navigation` of `record`, with the segments after it (`tail`).
pub(crate) fn navigate(
    call: &Call<'_>,
    db: &mut Db,
    record: &Record<'_>,
    navigation: Navigation<'_>,
    tail: &[Segment],
) -> ApiResult<DvResponse> {
    match navigation {
        Navigation::Single(lookup) => match (tail, call.method()) {
            ([r], &Method::PUT) if is_ref(r) => set_lookup(call, db, record, lookup),
            ([r], &Method::DELETE) if is_ref(r) => clear_lookup(call, db, record, lookup),
            ([], &Method::GET) => follow_lookup(call, db, record, lookup),
            _ => Err(call.no_resource()),
        },
        Navigation::Collection { nav, key } => {
            let other = call
                .ctx
                .schema
                .by_name(&nav.table)
                .ok_or_else(|| ApiError::segment_not_found(&nav.name))?;
            let related = Related { record, nav, other };
            match (key, tail, call.method()) {
                (None, [], &Method::GET) => list_related(call, db, &related),
                (None, [r], &Method::POST) if is_ref(r) => associate(call, db, &related),
                (_, [r], &Method::DELETE) if is_ref(r) => disassociate(call, db, &related, key),
                _ => Err(call.no_resource()),
            }
        }
    }
}

/// The `@odata.id` of a `$ref` body.
fn reference_of(call: &Call<'_>) -> ApiResult<String> {
    let body = call.request.json_object()?;
    body.get("@odata.id")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| {
            ApiError::bad_request(
                "0x80048d19",
                "The $ref request body must have an '@odata.id' property.",
            )
        })
}

/// The table a stored lookup value points into (a lookup may have several targets).
fn lookup_target(table: &Table, row: &Row, column: &str) -> Option<String> {
    let index = table
        .columns
        .iter()
        .filter(|c| matches!(c.kind, Kind::Lookup(_)))
        .position(|c| c.name == column)?;
    row.targets.get(index).cloned().flatten()
}

/// `PUT …/<lookup>/$ref`: points the lookup at the record the body names, which must be of
/// the navigation property's target table.
fn set_lookup(
    call: &Call<'_>,
    db: &mut Db,
    record: &Record<'_>,
    lookup: Lookup<'_>,
) -> ApiResult<DvResponse> {
    let ctx = call.ctx;
    ctx.caller.require(record.table, Access::Write)?;
    let (other, other_id) = resolve_reference(db, ctx.schema, ctx.api_root, &reference_of(call)?)?;
    if other.logical_name != lookup.target.table {
        return Err(ApiError::bad_request(
            "0x80048d19",
            format!(
                "The navigation property '{}' cannot refer to a record of type '{}'.",
                lookup.target.navigation, other.logical_name
            ),
        ));
    }
    let mut changes = Changes::default();
    changes.set_lookup(&lookup.column.name, Some((&other.logical_name, &other_id)));
    db.update(record.table, &record.id, &changes.values)?;
    Ok(DvResponse::empty(StatusCode::NO_CONTENT))
}

/// `DELETE …/<lookup>/$ref`: clears the lookup.
fn clear_lookup(
    call: &Call<'_>,
    db: &mut Db,
    record: &Record<'_>,
    lookup: Lookup<'_>,
) -> ApiResult<DvResponse> {
    call.ctx.caller.require(record.table, Access::Write)?;
    let mut changes = Changes::default();
    changes.set_lookup(&lookup.column.name, None);
    db.update(record.table, &record.id, &changes.values)?;
    Ok(DvResponse::empty(StatusCode::NO_CONTENT))
}

/// `GET …/<lookup>`: the record the lookup points at, or `204` when it is empty or points
/// into another of its target tables.
fn follow_lookup(
    call: &Call<'_>,
    db: &Db,
    record: &Record<'_>,
    lookup: Lookup<'_>,
) -> ApiResult<DvResponse> {
    let ctx = call.ctx;
    let Some(other_id) = pointed_at(call, db, record, lookup)? else {
        return Ok(DvResponse::empty(StatusCode::NO_CONTENT));
    };
    let other = ctx
        .schema
        .by_name(&lookup.target.table)
        .ok_or_else(|| ApiError::segment_not_found(&lookup.target.navigation))?;
    ctx.caller.require(other, Access::Read)?;
    let select = parse_select(other, call.options.select.as_deref())?;
    let expansion = call.expansion(other)?;
    let (body, version) = entity_body(
        call,
        db,
        other,
        &other_id,
        select.as_deref(),
        expansion.as_ref(),
    )?;
    Ok(DvResponse::json(StatusCode::OK, &body).header("ETag", etag(version)))
}

/// The id the lookup of `record` holds when it points into the navigation property's
/// target table (the caller must be able to read `record`).
fn pointed_at(
    call: &Call<'_>,
    db: &Db,
    record: &Record<'_>,
    lookup: Lookup<'_>,
) -> ApiResult<Option<String>> {
    let ctx = call.ctx;
    let (table, id, column) = (record.table, &record.id, lookup.column);
    ctx.caller.require(table, Access::Read)?;
    let row = db
        .fetch(ctx.schema, table, id, false)?
        .ok_or_else(|| ApiError::record_not_found(&table.logical_name, id))?;
    let index = table
        .columns
        .iter()
        .position(|c| c.name == column.name)
        .unwrap_or_default();
    let pointing = matches!(&row.values[index], Sql::Text(_))
        && row.get(table, &column.name).is_some()
        && lookup_target(table, &row, &column.name).as_deref()
            == Some(lookup.target.table.as_str());
    match &row.values[index] {
        Sql::Text(other_id) if pointing => Ok(Some(other_id.clone())),
        _ => Ok(None),
    }
}

/// A record, one of its collection-valued navigation properties, and the table of the
/// records it holds.
struct Related<'a> {
    record: &'a Record<'a>,
    nav: &'a CollectionNav,
    other: &'a Table,
}

impl Related<'_> {
    /// Points the lookup of the `other` record `other_id` at this record (`on`), or clears it.
    fn link(&self, db: &mut Db, other_id: &str, on: bool) -> ApiResult<()> {
        let record = self.record;
        let mut changes = Changes::default();
        changes.set_lookup(
            &self.nav.column,
            on.then_some((record.table.logical_name.as_str(), record.id.as_str())),
        );
        db.update(self.other, other_id, &changes.values)?;
        Ok(())
    }
}

/// `GET …/<collection>`: a query over the records whose lookup points at this record.
fn list_related(call: &Call<'_>, db: &Db, related: &Related<'_>) -> ApiResult<DvResponse> {
    let Related { record, nav, other } = *related;
    call.ctx.caller.require(other, Access::Read)?;
    let restrict = vec![
        (nav.column.clone(), Sql::Text(record.id.clone())),
        (
            target_column(&nav.column),
            Sql::Text(record.table.logical_name.clone()),
        ),
    ];
    let expansion = call.expansion(other)?;
    query::collection(
        db,
        call.ctx.schema,
        other,
        restrict,
        &call.collection_request(expansion.as_ref()),
    )
}

/// `POST …/<collection>/$ref`: points the lookup of the record the body names at this record.
fn associate(call: &Call<'_>, db: &mut Db, related: &Related<'_>) -> ApiResult<DvResponse> {
    let ctx = call.ctx;
    let other = related.other;
    ctx.caller.require(other, Access::Write)?;
    let (found, other_id) = resolve_reference(db, ctx.schema, ctx.api_root, &reference_of(call)?)?;
    if found.logical_name != other.logical_name {
        return Err(ApiError::bad_request(
            "0x80048d19",
            format!(
                "The navigation property '{}' holds records of type '{}', not '{}'.",
                related.nav.name, other.logical_name, found.logical_name
            ),
        ));
    }
    related.link(db, &other_id, true)?;
    Ok(DvResponse::empty(StatusCode::NO_CONTENT))
}

/// `DELETE …/<collection>(<key>)/$ref` or `DELETE …/<collection>/$ref?$id=…`: clears the
/// lookup of that record when it points at this record (and does nothing otherwise).
fn disassociate(
    call: &Call<'_>,
    db: &mut Db,
    related: &Related<'_>,
    key: Option<&str>,
) -> ApiResult<DvResponse> {
    let ctx = call.ctx;
    let Related { record, nav, other } = *related;
    ctx.caller.require(other, Access::Write)?;
    let other_id = match key {
        Some(text) => {
            let key = path::resolve_key(db, other, text)?;
            existing_id(db, other, &key)?
        }
        None => {
            let reference = call.options.id.clone().ok_or_else(|| {
                ApiError::bad_request(
                    "0x80060888",
                    "Disassociating from a collection needs $id or a key.",
                )
            })?;
            resolve_reference(db, ctx.schema, ctx.api_root, &reference)?.1
        }
    };
    let row = db
        .fetch(ctx.schema, other, &other_id, false)?
        .ok_or_else(|| ApiError::record_not_found(&other.logical_name, &other_id))?;
    let points_here = matches!(row.get(other, &nav.column), Some(Sql::Text(v)) if *v == record.id)
        && lookup_target(other, &row, &nav.column).as_deref()
            == Some(record.table.logical_name.as_str());
    if points_here {
        related.link(db, &other_id, false)?;
    }
    Ok(DvResponse::empty(StatusCode::NO_CONTENT))
}
