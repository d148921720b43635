//! A client for the Microsoft Dataverse / Dynamics 365 Web API (OData v4).
//!
//! [`Client`] takes any [`TokenProvider`](d365_auth_core::TokenProvider) (it knows nothing
//! about how tokens are obtained) and holds it behind a
//! [`TokenCache`](d365_auth_core::TokenCache). It does what users of DynamicsWebApi, the
//! .NET ServiceClient and Microsoft's Python SDK rely on, and fixes what they complain
//! about:
//!
//! - **retries**: 429 and the service protection codes (hex *and* decimal) honouring
//!   `Retry-After`, 503, 502, with exponential backoff and jitter; a request that may have
//!   been applied is never replayed unless a replay is detectable
//!   ([`Client::create_with_id`], deletes);
//! - **tokens refreshed**: early, by the cache; a 401 invalidates the token and retries once;
//! - **paging** that follows `@odata.nextLink` verbatim with one page in memory
//!   ([`Client::query_all`]), and FetchXML paging cookies ([`Client::fetch_xml_all`]);
//! - **typed errors** with Dataverse's code, message, request ids and a hint.
//!
//! ```no_run
//! # async fn run(provider: impl d365_auth_core::TokenProvider + 'static) -> Result<(), d365_webapi::WebApiError> {
//! use d365_webapi::{Client, Filter, Query, RequestOptions};
//! use serde_json::json;
//!
//! let client = Client::builder("https://contoso.crm.dynamics.com", provider).build()?;
//! let created = client.create("accounts", &json!({"name": "Fabrikam"}), &RequestOptions::new()).await?;
//! let page = client
//!     .query_page::<serde_json::Value>(&Query::new("accounts").select(["name"]).filter(Filter::eq("name", "Fabrikam")))
//!     .await?;
//! # let _ = (created, page);
//! # Ok(()) }
//! ```

// docs.rs labels each feature-gated item with its feature (`doc_cfg`, which took in
// `doc_auto_cfg` in 2025).
#![cfg_attr(docsrs, feature(doc_cfg))]

mod batch;
mod bulk;
mod client;
mod error;
mod fetchxml;
mod guid;
mod import;
mod metadata;
mod ops;
mod options;
mod origin;
mod paging;
mod pipeline;
mod query;

pub use batch::{
    Batch, BatchResponse, ChangeSet, ContentRef, MAX_BATCH_OPERATIONS, MAX_GET_URL_LEN,
};
pub use bulk::MAX_BULK_ROWS;
pub use client::{Client, ClientBuilder, RetrySettings};
pub use error::{ErrorKind, ServiceError, WebApiError};
pub use fetchxml::FetchPage;
pub use guid::{Guid, GuidError};
pub use import::{
    ChunkReport, DEFAULT_CHUNK_ROWS, ImportError, ImportMode, ImportObserver, ImportOptions,
    ImportRow, ImportSummary, RowConverter,
};
pub use metadata::{ChoiceOption, ColumnDefinition, TableDefinition};
pub use ops::{Created, FORMATTED_VALUES, RawResponse, UpsertMode, WhoAmI, etag, formatted_value};
pub use options::RequestOptions;
pub use paging::Page;
pub use query::{Filter, Literal, Order, Query, RecordKey};

/// The guide `docs/webapi.md`, compiled as doc tests so its examples stay true.
#[cfg(doctest)]
#[doc = include_str!("../../../docs/webapi.md")]
struct WebApiGuide;

/// The README's examples, compiled (and run, unless marked `no_run`) as doctests so the
/// page a user reads first cannot drift from the API.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
