//! Dataverse-shaped errors: `{"error":{"code":"0x…","message":"…"}}` with the codes and
//! statuses the real service uses (`reference/dataverse-webapi.md` §12), built in one place so
//! every endpoint says the same thing for the same failure.

use axum::http::StatusCode;
use serde_json::json;

use super::response::DvResponse;

/// A failed Web API request: HTTP status, Dataverse error code and message.
#[derive(Debug, Clone)]
pub(crate) struct ApiError {
    pub(crate) status: StatusCode,
    pub(crate) code: String,
    pub(crate) message: String,
    /// Extra response headers (`Retry-After` on 429).
    pub(crate) headers: Vec<(&'static str, String)>,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            code: code.to_owned(),
            message: message.into(),
            headers: Vec::new(),
        }
    }

    pub(crate) fn bad_request(code: &str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// Unknown entity set, function or action (names are case-sensitive).
    pub(crate) fn segment_not_found(segment: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "0x8006088a",
            format!("Resource not found for the segment '{segment}'."),
        )
    }

    /// A property name in `$select`, `$filter`, `$orderby` or a path that the type lacks.
    pub(crate) fn unknown_property(property: &str, table: &str) -> Self {
        Self::bad_request(
            "0x0",
            format!(
                "Could not find a property named '{property}' on type 'Microsoft.Dynamics.CRM.{table}'."
            ),
        )
    }

    /// A property in a request body that the type lacks.
    pub(crate) fn invalid_body_property(property: &str, table: &str) -> Self {
        Self::bad_request(
            "0x0",
            format!(
                "Invalid property '{property}' was found in entity 'Microsoft.Dynamics.CRM.{table}'."
            ),
        )
    }

    /// `x@odata.bind` where `x` is not a declared navigation property.
    pub(crate) fn undeclared_navigation(property: &str, entity_set: &str) -> Self {
        Self::bad_request(
            "0x80048d19",
            format!(
                "Error identified in Payload provided by the user for Entity :'{entity_set}', For more information on this error please follow this help link https://go.microsoft.com/fwlink/?linkid=2195293  ---->  InnerException : Microsoft.OData.ODataException: An undeclared property '{property}' which only has property annotations in the payload but no property value was found in the payload. In OData, only declared navigation properties and declared named streams can be represented as properties without values."
            ),
        )
    }

    /// A `$batch` body that is not CRLF-framed multipart.
    pub(crate) fn unreadable_batch(detail: &str) -> Self {
        Self::bad_request(
            "0x80048d19",
            format!(
                "Error identified in Payload provided by the user for Entity :'', For more information on this error please follow this help link https://go.microsoft.com/fwlink/?linkid=2195293  ---->  InnerException : System.ArgumentException: Stream was not readable. ({detail})"
            ),
        )
    }

    pub(crate) fn record_not_found(table: &str, id: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "0x80040217",
            format!("{table} With Id = {id} Does Not Exist"),
        )
    }

    pub(crate) fn key_not_found(table: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "0x80040217",
            format!("A record with the specified key values does not exist in {table} entity"),
        )
    }

    /// The key named in the URL is neither the primary key nor a declared alternate key.
    pub(crate) fn invalid_key(table: &str) -> Self {
        Self::bad_request(
            "0x80060888",
            format!(
                "The key in the request URI is not valid for resource 'Microsoft.Dynamics.CRM.{table}'. Ensure that the names and number of key properties match the declared or alternate key properties for the resource 'Microsoft.Dynamics.CRM.{table}'."
            ),
        )
    }

    pub(crate) fn privilege_denied(user_id: &str, privilege: &str, table: &str) -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "0x80040220",
            format!(
                "Principal user (Id={user_id}, type=8) is missing {privilege} privilege on entity '{table}'."
            ),
        )
    }

    pub(crate) fn not_a_member() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "0x80072560",
            "The user is not a member of the organization.",
        )
    }

    /// `If-Match` with an ETag that is not the record's.
    pub(crate) fn version_mismatch() -> Self {
        Self::new(
            StatusCode::PRECONDITION_FAILED,
            "",
            "The version of the existing record doesn't match the RowVersion property provided.",
        )
    }

    /// `If-None-Match: *` on an existing record, or a duplicate primary or alternate key.
    pub(crate) fn duplicate() -> Self {
        Self::new(
            StatusCode::PRECONDITION_FAILED,
            "0x80040237",
            "A record with matching key values already exists.",
        )
    }

    /// A method the resource does not answer (e.g. `POST WhoAmI`).
    pub(crate) fn no_resource(url: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "",
            format!("No HTTP resource was found that matches the request URI '{url}'."),
        )
    }

    pub(crate) fn unsupported_query_option(option: &str) -> Self {
        Self::bad_request(
            "0x80060888",
            format!("The query parameter {option} is not supported"),
        )
    }

    /// A literal that does not convert to the property's type.
    pub(crate) fn bad_literal(literal: &str, edm_type: &str) -> Self {
        Self::bad_request(
            "0x0",
            format!("Cannot convert the literal '{literal}' to the expected type '{edm_type}'."),
        )
    }

    pub(crate) fn too_long(column: &str, table: &str, max: u32) -> Self {
        Self::bad_request(
            "0x80044331",
            format!(
                "A validation error occurred.  The length of the '{column}' attribute of the '{table}' entity exceeded the maximum allowed length of '{max}'."
            ),
        )
    }

    pub(crate) fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "0x80040216", message)
    }

    pub(crate) fn with_header(mut self, name: &'static str, value: String) -> Self {
        self.headers.push((name, value));
        self
    }

    pub(crate) fn body(&self) -> Vec<u8> {
        serde_json::to_vec(&json!({"error": {"code": self.code, "message": self.message}}))
            .unwrap_or_default()
    }

    pub(crate) fn into_response(self) -> DvResponse {
        let mut response = DvResponse::json_bytes(self.status, self.body());
        for (name, value) in &self.headers {
            response.headers.push(((*name).to_owned(), value.clone()));
        }
        response
    }
}

impl From<rusqlite::Error> for ApiError {
    fn from(err: rusqlite::Error) -> Self {
        if let rusqlite::Error::SqliteFailure(failure, _) = &err
            && failure.code == rusqlite::ErrorCode::ConstraintViolation
        {
            return Self::duplicate();
        }
        tracing::error!(%err, "SQLite error");
        Self::internal(format!("The emulator's store failed: {err}"))
    }
}

pub(crate) type ApiResult<T> = Result<T, ApiError>;
