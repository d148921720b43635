//! One Web API request against the store: the resource path decides the operation (service
//! document, `$metadata`, WhoAmI, query, create, retrieve, upsert, delete, single property,
//! navigation and `$ref`), the caller's privileges are checked, and the answer is a
//! [`DvResponse`]. Synchronous on purpose: it runs on the store's thread, and `$batch` runs
//! many of these inside one SQLite transaction.

use axum::http::{HeaderMap, Method, StatusCode};
use rusqlite::types::Value as Sql;
use serde_json::{Map, Value, json};

use super::errors::{ApiError, ApiResult};
use super::fetchxml;
use super::metadata;
use super::odata::json::{Changes, Shape, etag, json_to_sql, parse_body, parse_select, record};
use super::odata::path::{self, Key, Segment, resolve_reference};
use super::odata::query::{self, Origin, Plan};
use super::odata::{FORMATTED, Prefer, QueryOptions};
use super::org::{Access, Caller};
use super::response::{DvResponse, Ordered};
use super::schema::{Kind, Schema, Table};
use super::store::{Db, target_column};

/// What every operation needs to know besides the request.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ctx<'a> {
    pub(crate) schema: &'a Schema,
    /// `{base}/api/data/v9.2/`.
    pub(crate) api_root: &'a str,
    pub(crate) caller: &'a Caller,
}

/// A request below the service root.
#[derive(Debug, Clone)]
pub(crate) struct DvRequest {
    pub(crate) method: Method,
    /// Raw (percent-encoded) path below `/api/data/v9.2/`, no leading slash.
    pub(crate) path: String,
    /// Raw query string, without `?`.
    pub(crate) query: String,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Vec<u8>,
}

impl DvRequest {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    }

    /// `If-None-Match`, ignoring the `null` Dataverse recommends sending on every request.
    fn if_none_match(&self) -> Option<&str> {
        self.header("if-none-match").filter(|v| *v != "null")
    }

    fn url(&self, ctx: &Ctx<'_>) -> String {
        if self.query.is_empty() {
            format!("{}{}", ctx.api_root, self.path)
        } else {
            format!("{}{}?{}", ctx.api_root, self.path, self.query)
        }
    }

    fn json_object(&self) -> ApiResult<Map<String, Value>> {
        match serde_json::from_slice::<Value>(&self.body) {
            Ok(Value::Object(map)) => Ok(map),
            Ok(_) => Err(ApiError::bad_request(
                "0x80048d19",
                "Error identified in Payload provided by the user: the request body must be a JSON object.",
            )),
            Err(err) => Err(ApiError::bad_request(
                "0x80048d19",
                format!(
                    "Error identified in Payload provided by the user: the request body is not valid JSON ({err})."
                ),
            )),
        }
    }
}

/// Runs one request; errors become Dataverse error responses.
pub(crate) fn execute(ctx: &Ctx<'_>, db: &mut Db, request: &DvRequest) -> DvResponse {
    dispatch(ctx, db, request).unwrap_or_else(ApiError::into_response)
}

fn entity_url(ctx: &Ctx<'_>, table: &Table, id: &str) -> String {
    format!("{}{}({id})", ctx.api_root, table.entity_set)
}

fn dispatch(ctx: &Ctx<'_>, db: &mut Db, request: &DvRequest) -> ApiResult<DvResponse> {
    let segments = path::segments(&request.path);
    let options = QueryOptions::parse(&request.query)?;
    let prefer = Prefer::from_headers(&request.headers);
    let first = &segments[0];
    let get = request.method == Method::GET;
    match (first.name.as_str(), &first.key, segments.len()) {
        ("", None, 1) if get => return Ok(service_document(ctx)),
        ("$metadata", None, 1) if get => {
            return Ok(DvResponse::text(
                StatusCode::OK,
                "application/xml",
                metadata::csdl(ctx.schema),
            ));
        }
        ("WhoAmI", None | Some(_), 1) if first.key.as_deref().unwrap_or_default().is_empty() => {
            if !get {
                return Err(ApiError::no_resource(&request.url(ctx)));
            }
            return Ok(who_am_i(ctx));
        }
        ("" | "$metadata", _, 1) => return Err(ApiError::no_resource(&request.url(ctx))),
        ("$batch", _, _) => {
            return Err(ApiError::bad_request(
                "0x80060888",
                "Nested $batch requests are not supported.",
            ));
        }
        _ => {}
    }
    let table = ctx
        .schema
        .by_set(&first.name)
        .ok_or_else(|| ApiError::segment_not_found(&first.name))?;
    let origin = Origin {
        api_root: ctx.api_root,
        path: &request.path,
    };
    match (&first.key, &segments[1..]) {
        (None, []) => match request.method {
            Method::GET => {
                ctx.caller.require(table, Access::Read)?;
                match &options.fetch_xml {
                    Some(xml) => {
                        fetchxml::execute(db, ctx.schema, table, xml, &prefer, ctx.api_root)
                    }
                    None => query::collection(
                        db,
                        ctx.schema,
                        table,
                        Vec::new(),
                        &options,
                        &prefer,
                        &origin,
                    ),
                }
            }
            Method::POST => create(ctx, db, table, request, &prefer, &options),
            _ => Err(ApiError::no_resource(&request.url(ctx))),
        },
        (None, [Segment { name, key: None }]) if name == "$count" && get => {
            ctx.caller.require(table, Access::Read)?;
            let condition = options
                .filter
                .as_deref()
                .map(|f| super::odata::filter::parse(f, &options.aliases))
                .transpose()?;
            let plan = Plan {
                table,
                condition,
                restrict: Vec::new(),
                order: Vec::new(),
                limit: 0,
                cursor: None,
                offset: 0,
                names: false,
            };
            let count = plan.count(db, query::MAX_PAGE)?.min(query::MAX_PAGE);
            Ok(DvResponse::text(
                StatusCode::OK,
                "text/plain;charset=utf-8",
                count.to_string(),
            ))
        }
        (None, [next, ..]) => Err(ApiError::segment_not_found(&next.name)),
        (Some(key), []) => {
            let key = path::resolve_key(db, table, key)?;
            match request.method {
                Method::GET => retrieve(ctx, db, table, &key, request, &options, &prefer),
                Method::PATCH => upsert(ctx, db, table, &key, request, &prefer, &options),
                Method::DELETE => delete(ctx, db, table, &key, request),
                _ => Err(ApiError::no_resource(&request.url(ctx))),
            }
        }
        (Some(key), rest) => {
            let key = path::resolve_key(db, table, key)?;
            related(
                ctx, db, table, &key, rest, request, &options, &prefer, &origin,
            )
        }
    }
}

fn service_document(ctx: &Ctx<'_>) -> DvResponse {
    let value: Vec<Value> = ctx
        .schema
        .tables
        .iter()
        .map(|t| json!({"name": t.entity_set, "kind": "EntitySet", "url": t.entity_set}))
        .collect();
    let mut body = Ordered::default();
    body.push(
        "@odata.context",
        Value::String(format!("{}$metadata", ctx.api_root)),
    );
    body.push("value", Value::Array(value));
    DvResponse::json(StatusCode::OK, &body)
}

fn who_am_i(ctx: &Ctx<'_>) -> DvResponse {
    let mut body = Ordered::default();
    body.push(
        "@odata.context",
        Value::String(format!(
            "{}$metadata#Microsoft.Dynamics.CRM.WhoAmIResponse",
            ctx.api_root
        )),
    );
    body.push(
        "BusinessUnitId",
        Value::String(ctx.caller.business_unit_id.clone()),
    );
    body.push("UserId", Value::String(ctx.caller.user_id.clone()));
    body.push(
        "OrganizationId",
        Value::String(ctx.caller.organization_id.clone()),
    );
    DvResponse::json(StatusCode::OK, &body)
}

fn existing_id(db: &Db, table: &Table, key: &Key) -> ApiResult<String> {
    match &key.id {
        Some(id) if db.exists(table, id)? => Ok(id.clone()),
        _ => Err(key.not_found(table)),
    }
}

/// A single record with `@odata.context` first.
fn entity_body(
    ctx: &Ctx<'_>,
    db: &Db,
    table: &Table,
    id: &str,
    select: Option<&[String]>,
    prefer: &Prefer,
) -> ApiResult<(Ordered, i64)> {
    let row = db
        .fetch(ctx.schema, table, id, prefer.wants(FORMATTED))?
        .ok_or_else(|| ApiError::record_not_found(&table.logical_name, id))?;
    let context = match select {
        Some(names) => format!(
            "{}$metadata#{}({})/$entity",
            ctx.api_root,
            table.entity_set,
            names.join(",")
        ),
        None => format!("{}$metadata#{}/$entity", ctx.api_root, table.entity_set),
    };
    let mut body = Ordered::default();
    body.push("@odata.context", Value::String(context));
    let shape = Shape {
        select,
        prefer,
        omit_nulls: false,
    };
    body.0.extend(record(table, &row, shape).0);
    Ok((body, row.version(table)))
}

fn retrieve(
    ctx: &Ctx<'_>,
    db: &Db,
    table: &Table,
    key: &Key,
    request: &DvRequest,
    options: &QueryOptions,
    prefer: &Prefer,
) -> ApiResult<DvResponse> {
    ctx.caller.require(table, Access::Read)?;
    let select = parse_select(table, options.select.as_deref())?;
    let id = existing_id(db, table, key)?;
    let (body, version) = entity_body(ctx, db, table, &id, select.as_deref(), prefer)?;
    let tag = etag(version);
    // Dataverse never answers 304 when annotations were asked for.
    if request.if_none_match() == Some(tag.as_str()) && !prefer.any_annotations() {
        return Ok(DvResponse::empty(StatusCode::NOT_MODIFIED).header("ETag", tag));
    }
    Ok(DvResponse::json(StatusCode::OK, &body).header("ETag", tag))
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

fn written(
    ctx: &Ctx<'_>,
    db: &Db,
    table: &Table,
    id: &str,
    created: bool,
    prefer: &Prefer,
    options: &QueryOptions,
) -> ApiResult<DvResponse> {
    let url = entity_url(ctx, table, id);
    if prefer.return_representation {
        let select = parse_select(table, options.select.as_deref())?;
        let (body, version) = entity_body(ctx, db, table, id, select.as_deref(), prefer)?;
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

fn create(
    ctx: &Ctx<'_>,
    db: &mut Db,
    table: &Table,
    request: &DvRequest,
    prefer: &Prefer,
    options: &QueryOptions,
) -> ApiResult<DvResponse> {
    ctx.caller.require(table, Access::Create)?;
    let body = request.json_object()?;
    let changes = parse_body(db, ctx.schema, ctx.api_root, table, &body)?;
    let id = changes
        .id
        .clone()
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    if db.exists(table, &id)? {
        return Err(ApiError::duplicate());
    }
    db.insert(table, &id, &changes.values)?;
    computed_columns(db, table, &id, &changes)?;
    written(ctx, db, table, &id, true, prefer, options)
}

fn upsert(
    ctx: &Ctx<'_>,
    db: &mut Db,
    table: &Table,
    key: &Key,
    request: &DvRequest,
    prefer: &Prefer,
    options: &QueryOptions,
) -> ApiResult<DvResponse> {
    let existing = match &key.id {
        Some(id) => db.fetch(ctx.schema, table, id, false)?,
        None => None,
    };
    let if_match = request.header("if-match");
    let if_none_match = request.if_none_match();
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
            let body = request.json_object()?;
            let changes = parse_body(db, ctx.schema, ctx.api_root, table, &body)?;
            db.update(table, &id, &changes.values)?;
            computed_columns(db, table, &id, &changes)?;
            written(ctx, db, table, &id, false, prefer, options)
        }
        None => {
            if if_match.is_some() {
                return Err(key.not_found(table));
            }
            ctx.caller.require(table, Access::Create)?;
            let body = request.json_object()?;
            let mut changes = parse_body(db, ctx.schema, ctx.api_root, table, &body)?;
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
            db.insert(table, &id, &changes.values)?;
            computed_columns(db, table, &id, &changes)?;
            let mut response = written(ctx, db, table, &id, true, prefer, options)?;
            if prefer.return_representation {
                response = response.header("OData-EntityId", entity_url(ctx, table, &id));
            }
            Ok(response)
        }
    }
}

fn delete(
    ctx: &Ctx<'_>,
    db: &mut Db,
    table: &Table,
    key: &Key,
    request: &DvRequest,
) -> ApiResult<DvResponse> {
    ctx.caller.require(table, Access::Delete)?;
    let id = key.id.clone().ok_or_else(|| key.not_found(table))?;
    let row = db
        .fetch(ctx.schema, table, &id, false)?
        .ok_or_else(|| key.not_found(table))?;
    if let Some(expected) = request.header("if-match")
        && expected != "*"
        && expected != etag(row.version(table))
    {
        return Err(ApiError::version_mismatch());
    }
    db.delete(table, &id)?;
    Ok(DvResponse::empty(StatusCode::NO_CONTENT))
}

/// The `@odata.id` of a `$ref` body, or `$id` of a disassociation.
fn reference_of(request: &DvRequest) -> ApiResult<String> {
    let body = request.json_object()?;
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

#[allow(clippy::too_many_arguments)]
fn related(
    ctx: &Ctx<'_>,
    db: &mut Db,
    table: &Table,
    key: &Key,
    rest: &[Segment],
    request: &DvRequest,
    options: &QueryOptions,
    prefer: &Prefer,
    origin: &Origin<'_>,
) -> ApiResult<DvResponse> {
    let id = existing_id(db, table, key)?;
    let method = &request.method;
    let is_ref = |s: &Segment| s.name == "$ref" && s.key.is_none();
    match rest {
        // A single-valued navigation property.
        [Segment { name, key: None }, tail @ ..] if table.navigation(name).is_some() => {
            let (column, target) = table
                .navigation(name)
                .unwrap_or_else(|| unreachable!("checked above"));
            match (tail, method) {
                ([r], &Method::PUT) if is_ref(r) => {
                    ctx.caller.require(table, Access::Write)?;
                    let (other, other_id) =
                        resolve_reference(db, ctx.schema, ctx.api_root, &reference_of(request)?)?;
                    if other.logical_name != target.table {
                        return Err(ApiError::bad_request(
                            "0x80048d19",
                            format!(
                                "The navigation property '{name}' cannot refer to a record of type '{}'.",
                                other.logical_name
                            ),
                        ));
                    }
                    let mut changes = Changes::default();
                    changes.set_lookup(&column.name, Some((&other.logical_name, &other_id)));
                    db.update(table, &id, &changes.values)?;
                    Ok(DvResponse::empty(StatusCode::NO_CONTENT))
                }
                ([r], &Method::DELETE) if is_ref(r) => {
                    ctx.caller.require(table, Access::Write)?;
                    let mut changes = Changes::default();
                    changes.set_lookup(&column.name, None);
                    db.update(table, &id, &changes.values)?;
                    Ok(DvResponse::empty(StatusCode::NO_CONTENT))
                }
                ([], &Method::GET) => {
                    ctx.caller.require(table, Access::Read)?;
                    let row = db
                        .fetch(ctx.schema, table, &id, false)?
                        .ok_or_else(|| ApiError::record_not_found(&table.logical_name, &id))?;
                    let index = table
                        .columns
                        .iter()
                        .position(|c| c.name == column.name)
                        .unwrap_or_default();
                    let pointing = matches!(&row.values[index], Sql::Text(_))
                        && row.get(table, &column.name).is_some()
                        && lookup_target(table, &row, &column.name).as_deref()
                            == Some(target.table.as_str());
                    let Sql::Text(other_id) = &row.values[index] else {
                        return Ok(DvResponse::empty(StatusCode::NO_CONTENT));
                    };
                    if !pointing {
                        return Ok(DvResponse::empty(StatusCode::NO_CONTENT));
                    }
                    let other = ctx
                        .schema
                        .by_name(&target.table)
                        .ok_or_else(|| ApiError::segment_not_found(name))?;
                    ctx.caller.require(other, Access::Read)?;
                    let select = parse_select(other, options.select.as_deref())?;
                    let (body, version) =
                        entity_body(ctx, db, other, other_id, select.as_deref(), prefer)?;
                    Ok(DvResponse::json(StatusCode::OK, &body).header("ETag", etag(version)))
                }
                _ => Err(ApiError::no_resource(&request.url(ctx))),
            }
        }
        // A collection-valued navigation property.
        [Segment { name, key: nav_key }, tail @ ..] if table.collection(name).is_some() => {
            let nav = table
                .collection(name)
                .unwrap_or_else(|| unreachable!("checked above"));
            let other = ctx
                .schema
                .by_name(&nav.table)
                .ok_or_else(|| ApiError::segment_not_found(name))?;
            let link = |db: &mut Db, other_id: &str, on: bool| -> ApiResult<()> {
                let mut changes = Changes::default();
                changes.set_lookup(
                    &nav.column,
                    on.then_some((table.logical_name.as_str(), id.as_str())),
                );
                db.update(other, other_id, &changes.values)?;
                Ok(())
            };
            match (nav_key, tail, method) {
                (None, [], &Method::GET) => {
                    ctx.caller.require(other, Access::Read)?;
                    let restrict = vec![
                        (nav.column.clone(), Sql::Text(id.clone())),
                        (
                            target_column(&nav.column),
                            Sql::Text(table.logical_name.clone()),
                        ),
                    ];
                    query::collection(db, ctx.schema, other, restrict, options, prefer, origin)
                }
                (None, [r], &Method::POST) if is_ref(r) => {
                    ctx.caller.require(other, Access::Write)?;
                    let (found, other_id) =
                        resolve_reference(db, ctx.schema, ctx.api_root, &reference_of(request)?)?;
                    if found.logical_name != other.logical_name {
                        return Err(ApiError::bad_request(
                            "0x80048d19",
                            format!(
                                "The navigation property '{name}' holds records of type '{}', not '{}'.",
                                other.logical_name, found.logical_name
                            ),
                        ));
                    }
                    link(db, &other_id, true)?;
                    Ok(DvResponse::empty(StatusCode::NO_CONTENT))
                }
                (Some(_) | None, [r], &Method::DELETE) if is_ref(r) => {
                    ctx.caller.require(other, Access::Write)?;
                    let other_id = match nav_key {
                        Some(text) => {
                            let key = path::resolve_key(db, other, text)?;
                            existing_id(db, other, &key)?
                        }
                        None => {
                            let reference = options.id.clone().ok_or_else(|| {
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
                        .ok_or_else(|| {
                            ApiError::record_not_found(&other.logical_name, &other_id)
                        })?;
                    let points_here = matches!(row.get(other, &nav.column), Some(Sql::Text(v)) if *v == id)
                        && lookup_target(other, &row, &nav.column).as_deref()
                            == Some(table.logical_name.as_str());
                    if points_here {
                        link(db, &other_id, false)?;
                    }
                    Ok(DvResponse::empty(StatusCode::NO_CONTENT))
                }
                _ => Err(ApiError::no_resource(&request.url(ctx))),
            }
        }
        // A single property.
        [Segment { name, key: None }] if table.property(name).is_some() => {
            let property = table
                .property(name)
                .unwrap_or_else(|| unreachable!("checked above"));
            let column = property.column;
            match method {
                &Method::GET => {
                    ctx.caller.require(table, Access::Read)?;
                    let row = db
                        .fetch(ctx.schema, table, &id, false)?
                        .ok_or_else(|| ApiError::record_not_found(&table.logical_name, &id))?;
                    let shape = Shape {
                        select: Some(std::slice::from_ref(name)),
                        prefer,
                        omit_nulls: false,
                    };
                    let value = record(table, &row, shape)
                        .0
                        .into_iter()
                        .find(|(n, _)| n == name)
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
                &Method::PUT | &Method::DELETE => {
                    if matches!(column.kind, Kind::Lookup(_))
                        || column.name == table.primary_id
                        || column.read_only
                    {
                        return Err(ApiError::bad_request(
                            "0x80060888",
                            format!("The property '{name}' cannot be set this way."),
                        ));
                    }
                    ctx.caller.require(table, Access::Write)?;
                    let value = if method == Method::PUT {
                        let body = request.json_object()?;
                        let value = body.get("value").cloned().unwrap_or(Value::Null);
                        json_to_sql(table, column, &value)?
                    } else {
                        Sql::Null
                    };
                    let mut changes = Changes::default();
                    changes.set(&column.name, value);
                    db.update(table, &id, &changes.values)?;
                    computed_columns(db, table, &id, &changes)?;
                    Ok(DvResponse::empty(StatusCode::NO_CONTENT))
                }
                _ => Err(ApiError::no_resource(&request.url(ctx))),
            }
        }
        [Segment { name, .. }, ..] => Err(ApiError::segment_not_found(name)),
        [] => Err(ApiError::no_resource(&request.url(ctx))),
    }
}

fn lookup_target(table: &Table, row: &super::store::Row, column: &str) -> Option<String> {
    let index = table
        .columns
        .iter()
        .filter(|c| matches!(c.kind, Kind::Lookup(_)))
        .position(|c| c.name == column)?;
    row.targets.get(index).cloned().flatten()
}
