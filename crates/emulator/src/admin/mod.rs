//! The admin API under `/_emulator/`: inspect and change a running emulator with JSON
//! requests. One router, guarded by [`loopback_only`], gathers the parts: `identity` (the
//! Entra half's settings and directory), `device_codes` (approving, declining, slowing down
//! and expiring device codes), `managed_identity` (the managed identity host's faults and
//! identities) and `dataverse` (system users, roles, limits, faults, generated rows and
//! counters). Errors are `{"error": kind, "message": …}` everywhere. No
//! secret is ever returned except a secret value the caller asked the emulator to generate,
//! once, in the response that created it (device codes themselves are never shown).

mod dataverse;
mod device_codes;
mod identity;
mod managed_identity;

use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

use crate::dataverse::DvState;
use crate::directory::DirectoryError;
use crate::state::AppState;

/// Every admin route, to be nested under `/_emulator`, behind [`loopback_only`]. The admin
/// API sits outside fault injection: tests must reach it while the Web API is failing.
pub(crate) fn routes(state: Arc<AppState>, dv: Arc<DvState>) -> Router {
    Router::new()
        .route("/health", get(health))
        .merge(identity::routes())
        .merge(device_codes::routes())
        .with_state(state)
        .merge(managed_identity::routes().with_state(Arc::clone(&dv)))
        .merge(dataverse::routes().with_state(dv))
        .layer(axum::middleware::from_fn(loopback_only))
}

async fn health() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// Lets only loopback callers through: the `Host` header must name a loopback address
/// (`127.0.0.1`, `localhost`, `[::1]`, any port). The emulator listens on loopback alone,
/// but a web page can still reach it through DNS rebinding (a name of the attacker's that
/// resolves to 127.0.0.1): such a request carries the attacker's name in `Host`, and is
/// refused with `403` before it can change the directory or read what it holds.
async fn loopback_only(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let host = request
        .headers()
        .get(axum::http::header::HOST)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    if is_loopback_host(host) {
        return next.run(request).await;
    }
    (
        StatusCode::FORBIDDEN,
        Json(json!({
            "error": "forbidden",
            "message": format!(
                "the admin API answers loopback callers only: Host `{}` is not 127.0.0.1, localhost or [::1]",
                host.escape_debug()
            ),
        })),
    )
        .into_response()
}

/// Whether `host` (a `Host` header: a name and an optional port) is a loopback address.
fn is_loopback_host(host: &str) -> bool {
    let name = if let Some(rest) = host.strip_prefix('[') {
        match rest.split_once(']') {
            Some((inside, port)) if port.is_empty() || is_port(port) => inside,
            _ => return false,
        }
    } else {
        match host.rsplit_once(':') {
            Some((name, port)) if is_port(port) => name,
            Some(_) => return false,
            None => host,
        }
    };
    let name = name.to_ascii_lowercase();
    name == "localhost"
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|address| address.is_loopback())
}

fn is_port(text: &str) -> bool {
    text.strip_prefix(':')
        .unwrap_or(text)
        .parse::<u16>()
        .is_ok()
}

/// The message for a number outside `min..=max`, or `None` when it is inside: the admin
/// API refuses absurd values (negative or enormous lifetimes, counts, delays) with a `400`
/// instead of overflowing a clock or filling memory.
fn out_of_range<T: PartialOrd + std::fmt::Display>(
    name: &str,
    value: T,
    min: T,
    max: T,
) -> Option<String> {
    (value < min || value > max)
        .then(|| format!("{name} must be between {min} and {max} (got {value})"))
}

/// An admin API failure as JSON: `{"error": "not_found", "message": "..."}`.
struct AdminError(DirectoryError);

impl From<DirectoryError> for AdminError {
    fn from(err: DirectoryError) -> Self {
        Self(err)
    }
}

impl IntoResponse for AdminError {
    fn into_response(self) -> Response {
        let (status, kind) = match &self.0 {
            DirectoryError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            DirectoryError::Duplicate(_) => (StatusCode::CONFLICT, "conflict"),
            DirectoryError::Invalid(_) => (StatusCode::BAD_REQUEST, "invalid"),
            DirectoryError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
        };
        (
            status,
            Json(json!({"error": kind, "message": self.0.to_string()})),
        )
            .into_response()
    }
}

type AdminResult = Result<Response, AdminError>;
