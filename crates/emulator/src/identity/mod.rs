//! The Entra ID half of the emulator: token endpoints (v1 and v2), the authorize endpoints
//! and their sign-in page, the device authorization endpoint and its verification page, OIDC
//! discovery, JWKS, instance discovery and user realm, shaped like
//! `login.microsoftonline.com`; AD FS's endpoints in the on-premises mode (`adfs.rs`); and
//! the managed identity endpoints of an Azure host (IMDS
//! and App Service shapes).

mod adfs;
mod authorization_code;
mod authorize;
mod client_auth;
mod device_code;
mod discovery;
mod error;
mod html;
mod managed_identity;
mod mint;
pub(crate) mod redirect_uri;
mod token;

use std::sync::Arc;

use axum::Router;
use axum::extract::Request;
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::{get, post};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::state::AppState;

pub(crate) use discovery::user_realm_fallback;
pub(crate) use mint::random_string;

/// Per-request diagnostics ids, as Entra reports them in headers and error bodies.
#[derive(Debug, Clone)]
pub(crate) struct RequestIds {
    trace_id: String,
    correlation_id: String,
}

/// What an error body needs to know about the request it answers.
#[derive(Debug, Clone)]
pub(crate) struct RequestContext {
    pub(crate) trace_id: String,
    pub(crate) correlation_id: String,
    pub(crate) now: OffsetDateTime,
}

impl RequestContext {
    pub(crate) fn new(ids: RequestIds) -> Self {
        Self {
            trace_id: ids.trace_id,
            correlation_id: ids.correlation_id,
            now: OffsetDateTime::now_utc(),
        }
    }

    /// `2026-01-01 00:00:00Z`, Entra's timestamp format.
    pub(crate) fn timestamp(&self) -> String {
        let format =
            time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]Z");
        self.now.format(format).unwrap_or_default()
    }
}

/// Gives every identity request a trace id (`x-ms-request-id`) and a correlation id (the
/// caller's `client-request-id` when it sent one, echoed back as Entra does).
async fn request_ids(mut request: Request, next: Next) -> Response {
    let trace_id = Uuid::new_v4().to_string();
    let client_request_id = request
        .headers()
        .get("client-request-id")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| Uuid::parse_str(value).ok())
        .map(|id| id.to_string());
    let correlation_id = client_request_id
        .clone()
        .unwrap_or_else(|| Uuid::new_v4().to_string());
    request.extensions_mut().insert(RequestIds {
        trace_id: trace_id.clone(),
        correlation_id,
    });
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&trace_id) {
        headers.insert("x-ms-request-id", value);
    }
    if let Some(value) = client_request_id.and_then(|id| HeaderValue::from_str(&id).ok()) {
        headers.insert("client-request-id", value);
    }
    response
}

/// The AD FS routes of the on-premises mode (`/adfs/...`: static segments, so they win over
/// the `{tenant}` routes).
pub(crate) fn adfs_routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/adfs/oauth2/token", post(adfs::token))
        .route("/adfs/oauth2/token/", post(adfs::token))
        .route(
            "/adfs/oauth2/authorize",
            get(adfs::authorize).post(authorize::sign_in_answer),
        )
        .route(
            "/adfs/oauth2/authorize/",
            get(adfs::authorize).post(authorize::sign_in_answer),
        )
        .route(
            "/adfs/.well-known/openid-configuration",
            get(adfs::openid_configuration),
        )
        .route("/adfs/discovery/keys", get(adfs::keys))
        .layer(axum::middleware::from_fn(request_ids))
}

/// The identity routes. Only `{tenant}` parameters start a tenant's paths (no static
/// `common` segment), so that a request for `/common/oauth2/v2.0/token` always reaches the
/// token endpoint and the Dataverse routes (`/api/data/...`) can be merged beside these. The
/// static paths (`/devicelogin`, `/metadata/identity/...`, `/msi/token`) have other segment
/// counts or second segments than any tenant path.
pub(crate) fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/{tenant}/oauth2/token", post(token::token_v1))
        .route(
            "/{tenant}/oauth2/v2.0/authorize",
            get(authorize::authorize_v2).post(authorize::sign_in_answer),
        )
        .route(
            "/{tenant}/oauth2/authorize",
            get(authorize::authorize_v1).post(authorize::sign_in_answer),
        )
        .route(
            "/metadata/identity/oauth2/token",
            get(managed_identity::imds),
        )
        .route("/msi/token", get(managed_identity::app_service))
        .route("/MSI/token", get(managed_identity::app_service))
        .route("/{tenant}/oauth2/v2.0/token", post(token::token_v2))
        .route(
            "/{tenant}/oauth2/v2.0/devicecode",
            post(device_code::device_authorization_v2),
        )
        .route(
            "/{tenant}/oauth2/devicecode",
            post(device_code::device_authorization_v1),
        )
        .route(
            "/devicelogin",
            get(device_code::verification_page).post(device_code::verification_answer),
        )
        .route(
            "/{tenant}/v2.0/.well-known/openid-configuration",
            get(discovery::openid_configuration_v2),
        )
        .route(
            "/{tenant}/.well-known/openid-configuration",
            get(discovery::openid_configuration_v1),
        )
        .route("/{tenant}/discovery/v2.0/keys", get(discovery::keys_v2))
        .route("/{tenant}/discovery/keys", get(discovery::keys_v1))
        .route("/{tenant}/discovery/instance", get(discovery::instance))
        .layer(axum::middleware::from_fn(request_ids))
}
