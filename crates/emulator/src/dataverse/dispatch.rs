//! One Web API request against the store: the resource path decides the operation and hands
//! it to its family — the service root (service document, `$metadata`, WhoAmI), `queries`,
//! `records` (and their single properties) or `associations` (navigation properties and
//! `$ref`) — and errors become Dataverse error responses. Synchronous on purpose: it runs on
//! the store's thread, and `$batch` runs many of these inside one SQLite transaction.

use axum::http::{Method, StatusCode};

use super::associations::{self, Navigation};
use super::bulk;
use super::definitions;
use super::errors::{ApiError, ApiResult};
use super::metadata;
use super::odata::path::{self, Segment};
use super::org;
use super::queries;
use super::records::{self, Property, Record};
use super::request::{Call, Ctx, DvRequest};
use super::response::DvResponse;
use super::store::Db;

/// Runs one request; errors become Dataverse error responses.
pub(crate) fn execute(ctx: &Ctx<'_>, db: &mut Db, request: &DvRequest) -> DvResponse {
    dispatch(ctx, db, request).unwrap_or_else(ApiError::into_response)
}

fn dispatch(ctx: &Ctx<'_>, db: &mut Db, request: &DvRequest) -> ApiResult<DvResponse> {
    let segments = path::segments(&request.path);
    let call = Call::new(ctx, request)?;
    let first = &segments[0];
    if let Some(answer) = service_root(&call, first, segments.len()) {
        return answer;
    }
    if definitions::SETS.contains(&first.name.as_str()) {
        return definitions::respond(&call, &segments);
    }
    if first.name == "BulkDelete" && first.key.is_none() && segments.len() == 1 {
        return match request.method {
            Method::POST => bulk::bulk_delete(&call, db),
            _ => Err(call.no_resource()),
        };
    }
    let table = ctx
        .schema
        .by_set(&first.name)
        .ok_or_else(|| ApiError::segment_not_found(&first.name))?;
    let get = request.method == Method::GET;
    match (&first.key, &segments[1..]) {
        (None, []) => match request.method {
            Method::GET => queries::collection(&call, db, table),
            Method::POST => records::create(&call, db, table),
            _ => Err(call.no_resource()),
        },
        (None, [Segment { name, key: None }]) if name == "$count" && get => {
            queries::count(&call, db, table)
        }
        (None, [Segment { name, key: None }]) if name.starts_with("Microsoft.Dynamics.CRM.") => {
            let action = &name["Microsoft.Dynamics.CRM.".len()..];
            match request.method {
                Method::POST => bulk::multiple(&call, db, table, action),
                _ => Err(call.no_resource()),
            }
        }
        (None, [next, ..]) => Err(ApiError::segment_not_found(&next.name)),
        (Some(key), []) => {
            let key = path::resolve_key(db, table, key)?;
            match request.method {
                Method::GET => records::retrieve(&call, db, table, &key),
                Method::PATCH => records::upsert(&call, db, table, &key),
                Method::DELETE => records::delete(&call, db, table, &key),
                _ => Err(call.no_resource()),
            }
        }
        (Some(key), rest) => {
            let key = path::resolve_key(db, table, key)?;
            let record = Record::existing(db, table, &key)?;
            below_record(&call, db, &record, rest)
        }
    }
}

/// The resources of the service root itself — the service document, `$metadata`,
/// WhoAmI and RetrieveVersion — or `None` when the first segment names none of them (an entity set, then).
fn service_root(
    call: &Call<'_>,
    first: &Segment,
    segments: usize,
) -> Option<ApiResult<DvResponse>> {
    let ctx = call.ctx;
    let get = *call.method() == Method::GET;
    let answer = match (first.name.as_str(), &first.key, segments) {
        ("", None, 1) if get => Ok(metadata::service_document(ctx.schema, ctx.api_root)),
        ("$metadata", None, 1) if get => Ok(DvResponse::text(
            StatusCode::OK,
            "application/xml",
            metadata::csdl(ctx.schema),
        )),
        // `WhoAmI` and `WhoAmI()`.
        ("WhoAmI", None | Some(_), 1) if first.key.as_deref().unwrap_or_default().is_empty() => {
            if get {
                Ok(org::who_am_i(ctx.caller, ctx.api_root))
            } else {
                Err(call.no_resource())
            }
        }
        // `RetrieveVersion()`: the server's version, as Dataverse online answers it.
        ("RetrieveVersion", None | Some(_), 1)
            if first.key.as_deref().unwrap_or_default().is_empty() =>
        {
            if get {
                Ok(org::retrieve_version(ctx.api_root, ctx.server_version))
            } else {
                Err(call.no_resource())
            }
        }
        ("" | "$metadata", _, 1) => Err(call.no_resource()),
        // Only a part of a batch (or a path below `$batch`) gets here: the top-level
        // `$batch` never reaches the dispatcher.
        ("$batch", _, _) => Err(ApiError::bad_request(
            "0x80060888",
            "Nested $batch requests are not supported.",
        )),
        _ => return None,
    };
    Some(answer)
}

/// A path below an existing record: a navigation property (with `$ref` or not) or a single
/// property.
fn below_record(
    call: &Call<'_>,
    db: &mut Db,
    record: &Record<'_>,
    rest: &[Segment],
) -> ApiResult<DvResponse> {
    let Some((first, tail)) = rest.split_first() else {
        return Err(call.no_resource());
    };
    if let Some(navigation) = Navigation::of(record.table, first) {
        return associations::navigate(call, db, record, navigation, tail);
    }
    if first.key.is_none()
        && tail.is_empty()
        && let Some(property) = record.table.property(&first.name)
    {
        let property = Property {
            name: &first.name,
            column: property.column,
        };
        return records::property(call, db, record, property);
    }
    Err(ApiError::segment_not_found(&first.name))
}
