//! Records: create (`POST /{set}`), retrieve (`GET /{set}(<key>)`, with `If-None-Match`),
//! update and upsert (`PATCH`, with `If-Match` / `If-None-Match`), delete, and a single
//! property (`GET`, `PUT` or `DELETE /{set}(<key>)/<property>`), by primary or alternate key,
//! with the caller's privileges checked and ETags on every answer that has a body.

use axum::http::{Method, StatusCode};
use rusqlite::types::Value as Sql;
use serde_json::Value;

use super::definitions;
use super::errors::{ApiError, ApiResult};
use super::expansion::Expansion;
use super::odata::FORMATTED;
use super::odata::json::{self, Changes, Shape, etag, json_to_sql, parse_body, parse_select};
use super::odata::path::Key;
use super::org::Access;
use super::request::{Call, Ctx};
use super::response::{DvResponse, Ordered};
use super::schema::{Column, Kind, Table};
use super::store::Db;

/// An existing record a path addresses: `accounts(<id>)`, or an alternate key that found one.
#[derive(Debug)]
pub(crate) struct Record<'a> {
    pub(crate) table: &'a Table,
    pub(crate) id: String,
}

impl<'a> Record<'a> {
    /// The record `key` finds in `table`, or Dataverse's not-found error for that key.
    pub(crate) fn existing(db: &Db, table: &'a Table, key: &Key) -> ApiResult<Self> {
        Ok(Self {
            table,
            id: existing_id(db, table, key)?,
        })
    }
}

/// A single property of a record's table, as the path names it (`name`, `_x_value`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Property<'a> {
    pub(crate) name: &'a str,
    pub(crate) column: &'a Column,
}

/// The primary id `key` finds, when that record exists.
pub(crate) fn existing_id(db: &Db, table: &Table, key: &Key) -> ApiResult<String> {
    match &key.id {
        Some(id) if db.exists(table, id)? => Ok(id.clone()),
        _ => Err(key.not_found(table)),
    }
}

fn entity_url(ctx: &Ctx<'_>, table: &Table, id: &str) -> String {
    format!("{}{}({id})", ctx.api_root, table.entity_set)
}

/// A single record with `@odata.context` first, and its version for the ETag.
pub(crate) fn entity_body(
    call: &Call<'_>,
    db: &Db,
    table: &Table,
    id: &str,
    select: Option<&[String]>,
    expansion: Option<&Expansion<'_>>,
) -> ApiResult<(Ordered, i64)> {
    let ctx = call.ctx;
    let prefer = &call.prefer;
    let row = db
        .fetch(ctx.schema, table, id, prefer.wants(FORMATTED))?
        .ok_or_else(|| ApiError::record_not_found(&table.logical_name, id))?;
    let list = match expansion {
        Some(expansion) if !expansion.is_empty() => expansion.context(select),
        _ => select.map(|names| names.join(",")).unwrap_or_default(),
    };
    let context = if select.is_some() || !list.is_empty() {
        format!(
            "{}$metadata#{}({list})/$entity",
            ctx.api_root, table.entity_set
        )
    } else {
        format!("{}$metadata#{}/$entity", ctx.api_root, table.entity_set)
    };
    let mut body = Ordered::default();
    body.push("@odata.context", Value::String(context));
    let shape = Shape {
        select,
        prefer,
        omit_nulls: false,
    };
    body.0.extend(json::record(table, &row, shape).0);
    if let Some(expansion) = expansion {
        expansion.apply(db, table, &row, &mut body)?;
    }
    Ok((body, row.version(table)))
}

/// `GET /{set}(<key>)`.
pub(crate) fn retrieve(
    call: &Call<'_>,
    db: &Db,
    table: &Table,
    key: &Key,
) -> ApiResult<DvResponse> {
    call.ctx.caller.require(table, Access::Read)?;
    let select = parse_select(table, call.options.select.as_deref())?;
    let id = existing_id(db, table, key)?;
    let expansion = call.expansion(table)?;
    let (body, version) = entity_body(call, db, table, &id, select.as_deref(), expansion.as_ref())?;
    let tag = etag(version);
    // Dataverse never answers 304 when annotations were asked for, nor with `$expand`: the
    // record's ETag does not change when its related rows do.
    if call.request.if_none_match() == Some(tag.as_str())
        && !call.prefer.any_annotations()
        && expansion.is_none()
    {
        return Ok(DvResponse::empty(StatusCode::NOT_MODIFIED).header("ETag", tag));
    }
    Ok(DvResponse::json(StatusCode::OK, &body).header("ETag", tag))
}

/// The value a body sets for `column`, when it is an integer.
fn integer(changes: &Changes, column: &str) -> Option<Option<i64>> {
    changes
        .values
        .iter()
        .find(|(c, _)| c == column)
        .map(|(_, v)| match v {
            Sql::Integer(i) => Some(*i),
            _ => None,
        })
}

/// `2 is not a valid status code for state code AccountState.Active on account with Id …`.
fn invalid_status(table: &Table, status: i64, state: i64, id: &str) -> ApiError {
    let label = match table.column("statecode").map(|c| &c.kind) {
        Some(Kind::OptionSet(options)) => options
            .iter()
            .find(|(v, _)| *v == state)
            .map_or_else(|| state.to_string(), |(_, l)| l.replace(' ', "")),
        _ => state.to_string(),
    };
    ApiError::bad_request(
        "0x80048408",
        format!(
            "{status} is not a valid status code for state code {}State.{label} on {} with Id {id}.",
            definitions::schema_name(&table.logical_name, !table.custom),
            table.logical_name
        ),
    )
}

/// The business unit of a system user.
fn business_unit_of(db: &Db, user_id: &str) -> ApiResult<Option<String>> {
    use rusqlite::OptionalExtension as _;
    Ok(db
        .conn
        .query_row(
            "SELECT businessunitid FROM systemuser WHERE systemuserid = ?1",
            [user_id],
            |row| row.get::<_, Option<String>>(0),
        )
        .optional()?
        .flatten())
}

/// The owner's business unit follows the owner.
fn stamp_owner(ctx: &Ctx<'_>, db: &Db, table: &Table, changes: &mut Changes) -> ApiResult<()> {
    if table.column("owningbusinessunit").is_none() {
        return Ok(());
    }
    let owner = changes
        .values
        .iter()
        .find(|(c, _)| c == "ownerid")
        .map(|(_, v)| v.clone());
    let business_unit = match owner {
        Some(Sql::Text(owner)) if owner != ctx.caller.user_id => business_unit_of(db, &owner)?,
        Some(Sql::Null) => None,
        Some(_) => Some(ctx.caller.business_unit_id.clone()),
        None => return Ok(()),
    };
    changes.set_lookup(
        "owningbusinessunit",
        business_unit.as_deref().map(|bu| ("businessunit", bu)),
    );
    Ok(())
}

/// What Dataverse sets on create: who created and last changed the row, its owner (the
/// caller unless the body binds another) and the owner's business unit, and the state
/// (always Active) with the body's status or the state's default status.
pub(crate) fn stamp_create(
    ctx: &Ctx<'_>,
    db: &Db,
    table: &Table,
    changes: &mut Changes,
    id: &str,
) -> ApiResult<()> {
    let caller = ctx.caller.user_id.as_str();
    for column in ["createdby", "modifiedby"] {
        if table.column(column).is_some() {
            changes.set_lookup(column, Some(("systemuser", caller)));
        }
    }
    if table.column("ownerid").is_some() {
        if !changes.has("ownerid") {
            changes.set_lookup("ownerid", Some(("systemuser", caller)));
        }
        stamp_owner(ctx, db, table, changes)?;
    }
    if !table.status_states.is_empty() && table.column("statecode").is_some() {
        let state = 0;
        let status = match integer(changes, "statuscode") {
            Some(Some(status)) => status,
            _ => table.default_status(state).unwrap_or(state),
        };
        if table.state_of(status) != Some(state) {
            return Err(invalid_status(table, status, state, id));
        }
        changes.set("statecode", Sql::Integer(state));
        changes.set("statuscode", Sql::Integer(status));
    }
    Ok(())
}

/// What Dataverse sets on update: who changed the row; a state change brings its default
/// status, a status its state, and a pair must belong together.
pub(crate) fn stamp_update(
    ctx: &Ctx<'_>,
    db: &Db,
    table: &Table,
    changes: &mut Changes,
    id: &str,
) -> ApiResult<()> {
    if table.column("modifiedby").is_some() {
        changes.set_lookup(
            "modifiedby",
            Some(("systemuser", ctx.caller.user_id.as_str())),
        );
    }
    if changes.has("ownerid") {
        stamp_owner(ctx, db, table, changes)?;
    }
    if table.status_states.is_empty() {
        return Ok(());
    }
    match (
        integer(changes, "statecode"),
        integer(changes, "statuscode"),
    ) {
        (Some(Some(state)), Some(Some(status))) => {
            if table.state_of(status) != Some(state) {
                return Err(invalid_status(table, status, state, id));
            }
        }
        (Some(Some(state)), None) => {
            if let Some(status) = table.default_status(state) {
                changes.set("statuscode", Sql::Integer(status));
            }
        }
        (None, Some(Some(status))) => {
            if let Some(state) = table.state_of(status) {
                changes.set("statecode", Sql::Integer(state));
            }
        }
        (Some(None), _) | (_, Some(None)) => {
            return Err(ApiError::bad_request(
                "0x80040203",
                "statecode and statuscode cannot be cleared.",
            ));
        }
        (None, None) => {}
    }
    Ok(())
}

/// Dataverse computes a contact's full name.
fn computed_columns(db: &Db, table: &Table, id: &str, changes: &Changes) -> ApiResult<()> {
    if table.logical_name == "contact" && (changes.has("firstname") || changes.has("lastname")) {
        db.conn.execute(
            "UPDATE contact SET fullname = trim(coalesce(firstname, '') || ' ' || coalesce(lastname, '')) WHERE contactid = ?1",
            [id],
        )?;
    }
    Ok(())
}

/// The answer to a create or an update: `204` with `OData-EntityId`, or the record with
/// `return=representation`.
fn written(
    call: &Call<'_>,
    db: &Db,
    table: &Table,
    id: &str,
    created: bool,
) -> ApiResult<DvResponse> {
    let url = entity_url(call.ctx, table, id);
    if call.prefer.return_representation {
        let select = parse_select(table, call.options.select.as_deref())?;
        let (body, version) = entity_body(call, db, table, id, select.as_deref(), None)?;
        let status = if created {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        };
        let mut response = DvResponse::json(status, &body)
            .header("ETag", etag(version))
            .header("Preference-Applied", "return=representation");
        if !created {
            response = response.header("OData-EntityId", url);
        }
        return Ok(response);
    }
    Ok(DvResponse::empty(StatusCode::NO_CONTENT).header("OData-EntityId", url))
}

/// `POST /{set}`.
pub(crate) fn create(call: &Call<'_>, db: &mut Db, table: &Table) -> ApiResult<DvResponse> {
    let ctx = call.ctx;
    ctx.caller.require(table, Access::Create)?;
    let body = call.request.json_object()?;
    let id = insert_record(ctx, db, table, &body, Vec::new())?;
    written(call, db, table, &id, true)
}

/// Creates a record from a body (plus `extra` column values, such as an alternate key's),
/// with what Dataverse sets on create; the caller's privilege is checked by the caller.
pub(crate) fn insert_record(
    ctx: &Ctx<'_>,
    db: &mut Db,
    table: &Table,
    body: &serde_json::Map<String, Value>,
    extra: Vec<(String, Sql)>,
) -> ApiResult<String> {
    let mut changes = parse_body(db, ctx.schema, ctx.api_root, table, body)?;
    for (column, value) in extra {
        if !changes.has(&column) {
            changes.set(&column, value);
        }
    }
    let id = changes
        .id
        .clone()
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    if db.exists(table, &id)? {
        return Err(ApiError::duplicate());
    }
    stamp_create(ctx, db, table, &mut changes, &id)?;
    db.insert(table, &id, &changes.values)?;
    computed_columns(db, table, &id, &changes)?;
    Ok(id)
}

/// Creates the record an upsert's key did not find: the key's id or column values, then the
/// body's.
pub(crate) fn insert_at_key(
    ctx: &Ctx<'_>,
    db: &mut Db,
    table: &Table,
    key: &Key,
    body: &serde_json::Map<String, Value>,
) -> ApiResult<String> {
    let mut changes = parse_body(db, ctx.schema, ctx.api_root, table, body)?;
    for (column, value) in &key.values {
        if !changes.has(column) {
            changes.set(column, value.clone());
        }
    }
    let id = key
        .id
        .clone()
        .or_else(|| changes.id.clone())
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    stamp_create(ctx, db, table, &mut changes, &id)?;
    db.insert(table, &id, &changes.values)?;
    computed_columns(db, table, &id, &changes)?;
    Ok(id)
}

/// Updates an existing record from a body, with what Dataverse sets on update.
pub(crate) fn update_record(
    ctx: &Ctx<'_>,
    db: &mut Db,
    table: &Table,
    id: &str,
    body: &serde_json::Map<String, Value>,
) -> ApiResult<()> {
    let mut changes = parse_body(db, ctx.schema, ctx.api_root, table, body)?;
    stamp_update(ctx, db, table, &mut changes, id)?;
    db.update(table, id, &changes.values)?;
    computed_columns(db, table, id, &changes)
}

/// `PATCH /{set}(<key>)`: an update when the record exists, else a create (upsert), as
/// `If-Match` and `If-None-Match` allow.
pub(crate) fn upsert(
    call: &Call<'_>,
    db: &mut Db,
    table: &Table,
    key: &Key,
) -> ApiResult<DvResponse> {
    let ctx = call.ctx;
    let existing = match &key.id {
        Some(id) => db.fetch(ctx.schema, table, id, false)?,
        None => None,
    };
    let if_match = call.request.header("if-match");
    let if_none_match = call.request.if_none_match();
    match existing {
        Some(row) => {
            if if_none_match == Some("*") {
                return Err(ApiError::duplicate());
            }
            if let Some(expected) = if_match
                && expected != "*"
                && expected != etag(row.version(table))
            {
                return Err(ApiError::version_mismatch());
            }
            ctx.caller.require(table, Access::Write)?;
            let id = key.id.clone().unwrap_or_default();
            let body = call.request.json_object()?;
            update_record(ctx, db, table, &id, &body)?;
            written(call, db, table, &id, false)
        }
        None => {
            if if_match.is_some() {
                return Err(key.not_found(table));
            }
            ctx.caller.require(table, Access::Create)?;
            let body = call.request.json_object()?;
            let id = insert_at_key(ctx, db, table, key, &body)?;
            let mut response = written(call, db, table, &id, true)?;
            if call.prefer.return_representation {
                response = response.header("OData-EntityId", entity_url(ctx, table, &id));
            }
            Ok(response)
        }
    }
}

/// `DELETE /{set}(<key>)`, as `If-Match` allows.
pub(crate) fn delete(
    call: &Call<'_>,
    db: &mut Db,
    table: &Table,
    key: &Key,
) -> ApiResult<DvResponse> {
    let ctx = call.ctx;
    ctx.caller.require(table, Access::Delete)?;
    let id = key.id.clone().ok_or_else(|| key.not_found(table))?;
    let row = db
        .fetch(ctx.schema, table, &id, false)?
        .ok_or_else(|| key.not_found(table))?;
    if let Some(expected) = call.request.header("if-match")
        && expected != "*"
        && expected != etag(row.version(table))
    {
        return Err(ApiError::version_mismatch());
    }
    db.delete(table, &id)?;
    Ok(DvResponse::empty(StatusCode::NO_CONTENT))
}

/// `/{set}(<key>)/<property>`: read it, set it (`PUT`) or clear it (`DELETE`).
pub(crate) fn property(
    call: &Call<'_>,
    db: &mut Db,
    record: &Record<'_>,
    property: Property<'_>,
) -> ApiResult<DvResponse> {
    match call.method() {
        &Method::GET => read_property(call, db, record, property),
        &Method::PUT | &Method::DELETE => write_property(call, db, record, property),
        _ => Err(call.no_resource()),
    }
}

/// `GET …/<property>`: `{"value": …}`, or `204` when it is null.
fn read_property(
    call: &Call<'_>,
    db: &Db,
    record: &Record<'_>,
    property: Property<'_>,
) -> ApiResult<DvResponse> {
    let ctx = call.ctx;
    let (table, id, name) = (record.table, &record.id, property.name);
    ctx.caller.require(table, Access::Read)?;
    let row = db
        .fetch(ctx.schema, table, id, false)?
        .ok_or_else(|| ApiError::record_not_found(&table.logical_name, id))?;
    let name = name.to_owned();
    let shape = Shape {
        select: Some(std::slice::from_ref(&name)),
        prefer: &call.prefer,
        omit_nulls: false,
    };
    let value = json::record(table, &row, shape)
        .0
        .into_iter()
        .find(|(n, _)| *n == name)
        .map_or(Value::Null, |(_, v)| v);
    if value.is_null() {
        return Ok(DvResponse::empty(StatusCode::NO_CONTENT));
    }
    let mut body = Ordered::default();
    body.push(
        "@odata.context",
        Value::String(format!(
            "{}$metadata#{}({id})/{name}",
            ctx.api_root, table.entity_set
        )),
    );
    body.push("value", value);
    Ok(DvResponse::json(StatusCode::OK, &body))
}

/// `PUT …/<property>` with `{"value": …}`, or `DELETE …/<property>` to clear it; lookups,
/// the primary id and read-only columns cannot be set this way.
fn write_property(
    call: &Call<'_>,
    db: &mut Db,
    record: &Record<'_>,
    property: Property<'_>,
) -> ApiResult<DvResponse> {
    let (table, id, column) = (record.table, &record.id, property.column);
    if matches!(column.kind, Kind::Lookup(_)) || column.name == table.primary_id || column.read_only
    {
        return Err(ApiError::bad_request(
            "0x80060888",
            format!("The property '{}' cannot be set this way.", property.name),
        ));
    }
    call.ctx.caller.require(table, Access::Write)?;
    let value = if call.method() == Method::PUT {
        let body = call.request.json_object()?;
        let value = body.get("value").cloned().unwrap_or(Value::Null);
        json_to_sql(table, column, &value)?
    } else {
        Sql::Null
    };
    let mut changes = Changes::default();
    changes.set(&column.name, value);
    stamp_update(call.ctx, db, table, &mut changes, id)?;
    db.update(table, id, &changes.values)?;
    computed_columns(db, table, id, &changes)?;
    Ok(DvResponse::empty(StatusCode::NO_CONTENT))
}
