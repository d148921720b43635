//! Queries over an entity set: `GET /{set}` with OData query options or `fetchXml=`, and
//! `GET /{set}/$count`. The parsing and the SQL are the query engine's (`odata::query`,
//! `odata::filter`, `fetchxml`); this is where a request becomes one of its queries, after
//! the caller's read privilege is checked.

use axum::http::StatusCode;

use super::errors::ApiResult;
use super::fetchxml;
use super::odata::filter;
use super::odata::query::{self, Plan};
use super::org::Access;
use super::request::Call;
use super::response::DvResponse;
use super::schema::Table;
use super::store::Db;

/// `GET /{set}`: a page of records, by OData query options or by FetchXML.
pub(crate) fn collection(call: &Call<'_>, db: &Db, table: &Table) -> ApiResult<DvResponse> {
    let ctx = call.ctx;
    ctx.caller.require(table, Access::Read)?;
    let expansion = call.expansion(table)?;
    let request = call.collection_request(expansion.as_ref());
    match &call.options.fetch_xml {
        Some(xml) => fetchxml::execute(db, ctx.schema, table, xml, &request),
        None => query::collection(db, ctx.schema, table, Vec::new(), &request),
    }
}

/// `GET /{set}/$count`: how many records match `$filter`, as plain text, at most a page's
/// worth (as Dataverse counts).
pub(crate) fn count(call: &Call<'_>, db: &Db, table: &Table) -> ApiResult<DvResponse> {
    call.ctx.caller.require(table, Access::Read)?;
    let options = &call.options;
    let condition = options
        .filter
        .as_deref()
        .map(|f| filter::parse(f, &options.aliases))
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
