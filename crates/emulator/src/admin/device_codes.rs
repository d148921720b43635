//! Device codes through the admin API: list them, and approve (as a user of the code's
//! tenant, without a password), decline, slow down or expire one. The operations are those of
//! [`crate::DeviceCodes`] and the verification page; the device code itself (the client's
//! secret) is never shown.

use std::sync::Arc;

use axum::extract::State;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{AdminError, AdminResult};
use crate::device_codes::{self, DeviceCodeInfo, DeviceCodeProblem};
use crate::directory::DirectoryError;
use crate::state::AppState;

type Shared = State<Arc<AppState>>;

/// The device code routes.
pub(super) fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/device-codes", get(list_device_codes))
        .route("/device-codes/approve", post(approve_device_code))
        .route("/device-codes/decline", post(decline_device_code))
        .route("/device-codes/slow-down", post(slow_down_device_code))
        .route("/device-codes/expire", post(expire_device_code))
}

impl From<DeviceCodeProblem> for AdminError {
    fn from(problem: DeviceCodeProblem) -> Self {
        let message = problem.to_string();
        Self(match problem {
            DeviceCodeProblem::Unknown(_) | DeviceCodeProblem::UnknownUser { .. } => {
                DirectoryError::NotFound(message)
            }
            _ => DirectoryError::Conflict(message),
        })
    }
}

fn device_code_body(info: &DeviceCodeInfo) -> Value {
    json!({
        "user_code": info.user_code,
        "client_id": info.client_id,
        "tenant_id": info.tenant_id,
        "scope": info.scope,
        "status": info.status.as_str(),
        "approved_by": info.approved_by,
        "interval_secs": info.interval.as_secs(),
        "expires_in_secs": info.expires_in.as_secs(),
        "polls": info.polls,
        "slow_downs": info.slow_downs,
    })
}

async fn list_device_codes(State(state): Shared) -> Json<Value> {
    Json(json!(
        device_codes::list(&state)
            .iter()
            .map(device_code_body)
            .collect::<Vec<_>>()
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DeviceCodeApproval {
    user_code: String,
    /// The approving user's UPN.
    user: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DeviceCodeRef {
    user_code: String,
}

async fn approve_device_code(
    State(state): Shared,
    Json(body): Json<DeviceCodeApproval>,
) -> AdminResult {
    let info = device_codes::approve(&state, &body.user_code, &body.user)?;
    Ok(Json(device_code_body(&info)).into_response())
}

async fn decline_device_code(State(state): Shared, Json(body): Json<DeviceCodeRef>) -> AdminResult {
    let info = device_codes::decline(&state, &body.user_code)?;
    Ok(Json(device_code_body(&info)).into_response())
}

async fn slow_down_device_code(
    State(state): Shared,
    Json(body): Json<DeviceCodeRef>,
) -> AdminResult {
    let info = device_codes::slow_down(&state, &body.user_code)?;
    Ok(Json(device_code_body(&info)).into_response())
}

async fn expire_device_code(State(state): Shared, Json(body): Json<DeviceCodeRef>) -> AdminResult {
    let info = device_codes::expire(&state, &body.user_code)?;
    Ok(Json(device_code_body(&info)).into_response())
}
