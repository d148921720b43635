//! The managed identity endpoints of the emulated Azure host, on the emulator's own loopback
//! base URL, so that client tests never reach 169.254.169.254:
//!
//! - IMDS: `GET /metadata/identity/oauth2/token?api-version=…&resource=…` with
//!   `Metadata: true`, and `client_id`, `object_id` or `msi_res_id` for a user-assigned
//!   identity; the answer has every number as a string and `refresh_token: ""`;
//! - App Service: `GET /msi/token?api-version=…&resource=…` with `X-IDENTITY-HEADER`, and
//!   `client_id`, `principal_id` (or `object_id`) or `mi_res_id`; the answer has
//!   `expires_on` as a string and no `expires_in`.
//!
//! Both first answer the faults queued through [`crate::ManagedIdentityHost`] or the admin
//! API, whatever the request. Errors are `{"error", "error_description"}`.

use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse as _, Response};
use secrecy::ExposeSecret as _;
use serde_json::{Value, json};
use time::OffsetDateTime;

use super::mint::{self, Times};
use super::token::Form;
use crate::directory::{IdentitySelector, secrets_equal};
use crate::managed_identity::ManagedIdentityFault;
use crate::state::AppState;

/// The longest query accepted (a resource id is the longest thing in it).
const MAX_QUERY: usize = 8 * 1024;

/// Which host's endpoint a request came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    Imds,
    AppService,
}

/// `GET /metadata/identity/oauth2/token`.
pub(crate) async fn imds(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    serve(
        &state,
        Shape::Imds,
        &headers,
        query.as_deref().unwrap_or(""),
    )
}

/// `GET /msi/token`.
pub(crate) async fn app_service(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    serve(
        &state,
        Shape::AppService,
        &headers,
        query.as_deref().unwrap_or(""),
    )
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    let mut response = (status, axum::Json(body)).into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-store, no-cache"),
    );
    response
}

fn refuse(status: StatusCode, error: &str, description: &str) -> Response {
    tracing::debug!(%status, error, description, "managed identity request refused");
    json_response(
        status,
        &json!({"error": error, "error_description": description}),
    )
}

fn fault_response(fault: ManagedIdentityFault) -> Response {
    tracing::debug!(status = fault.status(), "managed identity fault injected");
    match fault {
        ManagedIdentityFault::NotFound => refuse(
            StatusCode::NOT_FOUND,
            "not_found",
            "The identity endpoint is being updated. Retry with exponential back-off.",
        ),
        ManagedIdentityFault::Gone => refuse(
            StatusCode::GONE,
            "gone",
            "The identity endpoint is being updated and will be back within 70 seconds.",
        ),
        ManagedIdentityFault::TooManyRequests { retry_after } => {
            let mut response = refuse(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_requests",
                "Too many requests to the identity endpoint. Retry after the time in \
                 Retry-After.",
            );
            response.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from(retry_after.as_secs()),
            );
            response
        }
        ManagedIdentityFault::ServerError => refuse(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "The identity endpoint failed. Retry after at least one second.",
        ),
    }
}

fn serve(state: &AppState, shape: Shape, headers: &HeaderMap, query: &str) -> Response {
    let client_id = super::token::Form::parse_query(query)
        .and_then(|form| form.get("client_id").map(str::to_owned));
    state.count_token_request(Some(client_id.as_deref().unwrap_or("(managed identity)")));
    if let Some(fault) = state.managed_identity.next_request() {
        return fault_response(fault);
    }
    let header = |name: &str| headers.get(name).and_then(|value| value.to_str().ok());
    match shape {
        Shape::Imds => {
            if !header("metadata").is_some_and(|value| value.eq_ignore_ascii_case("true")) {
                return refuse(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "Required metadata header not specified",
                );
            }
        }
        Shape::AppService => match header("x-identity-header") {
            None => {
                return refuse(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "Required header X-IDENTITY-HEADER not specified",
                );
            }
            Some(value)
                if !secrets_equal(
                    value,
                    state.managed_identity.identity_header().expose_secret(),
                ) =>
            {
                return refuse(
                    StatusCode::UNAUTHORIZED,
                    "unauthorized",
                    "The X-IDENTITY-HEADER value is not this host's IDENTITY_HEADER",
                );
            }
            Some(_) => {}
        },
    }
    if query.len() > MAX_QUERY {
        return refuse(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "The query is too long",
        );
    }
    let Some(params) = Form::parse_query(query) else {
        return refuse(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "The query is not form-urlencoded",
        );
    };
    if params.get("api-version").is_none() {
        return refuse(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Required query variable 'api-version' is missing",
        );
    }
    let Some(resource) = params.get("resource") else {
        return refuse(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Required query variable 'resource' is missing",
        );
    };
    let candidates = match shape {
        Shape::Imds => [
            params.get("client_id").map(IdentitySelector::ClientId),
            params.get("object_id").map(IdentitySelector::ObjectId),
            params.get("msi_res_id").map(IdentitySelector::ResourceId),
            None,
        ],
        Shape::AppService => [
            params.get("client_id").map(IdentitySelector::ClientId),
            params.get("principal_id").map(IdentitySelector::ObjectId),
            params.get("object_id").map(IdentitySelector::ObjectId),
            params.get("mi_res_id").map(IdentitySelector::ResourceId),
        ],
    };
    let mut named = candidates.into_iter().flatten();
    let selector = named.next().unwrap_or(IdentitySelector::SystemAssigned);
    if named.next().is_some() {
        return refuse(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Only one of the identity parameters may be given",
        );
    }
    let directory = state.directory();
    let Some((tenant, identity)) = directory.managed_identity(selector) else {
        return refuse(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Identity not found",
        );
    };
    if !state.is_known_resource(resource) {
        let error = super::error::AadError::resource_not_found(resource, &tenant.display_name);
        return refuse(
            StatusCode::BAD_REQUEST,
            "invalid_resource",
            &error.headline(),
        );
    }
    let times = Times {
        now: OffsetDateTime::now_utc().unix_timestamp(),
        lifetime: state.settings().token_lifetime_secs,
    };
    let mut body = match mint::managed_identity(state, tenant, identity, resource, times) {
        Ok(body) => body,
        Err(error) => {
            tracing::warn!(code = error.code, "managed identity token not signed");
            return refuse(
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                "The token could not be issued",
            );
        }
    };
    body.insert("client_id".into(), json!(identity.client_id));
    match shape {
        Shape::Imds => {
            body.insert("refresh_token".into(), json!(""));
        }
        Shape::AppService => {
            body.remove("expires_in");
            body.remove("ext_expires_in");
        }
    }
    tracing::debug!(client_id = %identity.client_id, ?shape, "managed identity token issued");
    json_response(StatusCode::OK, &Value::Object(body))
}
