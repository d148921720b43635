//! A Web API request below the service root, however it arrived (an HTTP request or a part of
//! a `$batch`), and what every operation needs alongside it: [`Ctx`] (schema, service root,
//! caller) and [`Call`] (the request with its query options and preferences parsed once).

use axum::http::{HeaderMap, Method};
use serde_json::{Map, Value};

use super::errors::{ApiError, ApiResult};
use super::expansion::Expansion;
use super::odata::expand;
use super::odata::query::{CollectionRequest, Origin};
use super::odata::{Prefer, QueryOptions};
use super::org::Caller;
use super::schema::{Schema, Table};

/// What every operation needs to know besides the request.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ctx<'a> {
    pub(crate) schema: &'a Schema,
    /// `{base}/api/data/v9.2/` (on-premises `{base}/{org}/api/data/v{version}/`).
    pub(crate) api_root: &'a str,
    pub(crate) caller: &'a Caller,
    /// The server's version, as `RetrieveVersion()` answers it.
    pub(crate) server_version: &'a str,
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
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    }

    /// `If-None-Match`, ignoring the `null` Dataverse recommends sending on every request.
    pub(crate) fn if_none_match(&self) -> Option<&str> {
        self.header("if-none-match").filter(|v| *v != "null")
    }

    pub(crate) fn url(&self, ctx: &Ctx<'_>) -> String {
        if self.query.is_empty() {
            format!("{}{}", ctx.api_root, self.path)
        } else {
            format!("{}{}?{}", ctx.api_root, self.path, self.query)
        }
    }

    pub(crate) fn json_object(&self) -> ApiResult<Map<String, Value>> {
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

/// One request being answered: the context, the request, and its query options and
/// `Prefer` header, parsed once so no operation takes them as separate arguments.
#[derive(Debug)]
pub(crate) struct Call<'a> {
    pub(crate) ctx: &'a Ctx<'a>,
    pub(crate) request: &'a DvRequest,
    pub(crate) options: QueryOptions,
    pub(crate) prefer: Prefer,
}

impl<'a> Call<'a> {
    /// Parses the query options (refusing those Dataverse refuses) and `Prefer`.
    pub(crate) fn new(ctx: &'a Ctx<'a>, request: &'a DvRequest) -> ApiResult<Self> {
        let options = QueryOptions::parse(&request.query)?;
        let prefer = Prefer::from_headers(&request.headers);
        Ok(Self {
            ctx,
            request,
            options,
            prefer,
        })
    }

    pub(crate) fn method(&self) -> &Method {
        &self.request.method
    }

    /// This request as the query engine sees a collection request: its query options, its
    /// `Prefer` header, and where it came from (for `@odata.context` and `@odata.nextLink`).
    pub(crate) fn collection_request<'s>(
        &'s self,
        expansion: Option<&'s Expansion<'s>>,
    ) -> CollectionRequest<'s> {
        CollectionRequest {
            options: &self.options,
            prefer: &self.prefer,
            origin: Origin {
                api_root: self.ctx.api_root,
                path: &self.request.path,
            },
            expansion,
        }
    }

    /// `$expand` of this request, checked against `table` (`None` without one).
    pub(crate) fn expansion<'s>(&'s self, table: &'s Table) -> ApiResult<Option<Expansion<'s>>> {
        let Some(text) = self.options.expand.as_deref() else {
            return Ok(None);
        };
        let items = expand::parse(text)?;
        let ctx = self.ctx;
        Expansion::new(
            ctx.schema,
            ctx.api_root,
            ctx.caller,
            &self.prefer,
            table,
            &items,
        )
        .map(Some)
    }

    /// The answer to a method the addressed resource does not support.
    pub(crate) fn no_resource(&self) -> ApiError {
        ApiError::no_resource(&self.request.url(self.ctx))
    }
}
