//! The answer to one Web API request, independent of how it travels: as an HTTP response, or
//! as a part of a `$batch` response.

use axum::body::Body;
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::Response;
use serde::Serialize;
use serde::ser::SerializeMap as _;
use serde_json::Value;

/// `Content-Type` of JSON answers, as Dataverse sends it.
pub(crate) const JSON: &str = "application/json; odata.metadata=minimal";

#[derive(Debug, Clone)]
pub(crate) struct DvResponse {
    pub(crate) status: StatusCode,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
}

impl DvResponse {
    pub(crate) fn empty(status: StatusCode) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    pub(crate) fn json_bytes(status: StatusCode, body: Vec<u8>) -> Self {
        Self {
            status,
            headers: vec![("Content-Type".into(), JSON.into())],
            body,
        }
    }

    pub(crate) fn json(status: StatusCode, body: &impl Serialize) -> Self {
        Self::json_bytes(status, serde_json::to_vec(body).unwrap_or_default())
    }

    pub(crate) fn text(status: StatusCode, content_type: &str, body: String) -> Self {
        Self {
            status,
            headers: vec![("Content-Type".into(), content_type.into())],
            body: body.into_bytes(),
        }
    }

    pub(crate) fn header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_owned(), value.into()));
        self
    }

    pub(crate) fn header_value(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub(crate) fn is_success(&self) -> bool {
        self.status.is_success() || self.status == StatusCode::NOT_MODIFIED
    }

    pub(crate) fn into_http(self) -> Response {
        let mut response = Response::new(Body::from(self.body));
        *response.status_mut() = self.status;
        let headers = response.headers_mut();
        headers.insert("OData-Version", HeaderValue::from_static("4.0"));
        for (name, value) in self.headers {
            if let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_str(&value),
            ) {
                headers.append(name, value);
            }
        }
        response
    }
}

/// A JSON object that keeps the order its members were added in, so records read like
/// Dataverse's (`@odata.etag` first, annotations before their property) without turning on
/// `serde_json`'s workspace-wide `preserve_order` feature.
#[derive(Debug, Default, Clone)]
pub(crate) struct Ordered(pub(crate) Vec<(String, Value)>);

impl Ordered {
    pub(crate) fn push(&mut self, name: impl Into<String>, value: Value) {
        self.0.push((name.into(), value));
    }
}

impl Serialize for Ordered {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (name, value) in &self.0 {
            map.serialize_entry(name, value)?;
        }
        map.end()
    }
}

/// A collection answer: its annotations, then `value`.
#[derive(Debug)]
pub(crate) struct Collection {
    pub(crate) head: Ordered,
    pub(crate) rows: Vec<Ordered>,
}

impl Serialize for Collection {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.head.0.len() + 1))?;
        for (name, value) in &self.head.0 {
            map.serialize_entry(name, value)?;
        }
        map.serialize_entry("value", &self.rows)?;
        map.end()
    }
}
