//! Managed identities through the admin API: the host's endpoints and request count, the
//! fault queue (answer the next N requests with 404, 410, 429 or 500), and adding or removing
//! identities in a tenant — with an application user in the Dataverse organization when the
//! tenant is the organization's. The identity header (a secret) is never shown.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use super::identity::managed_identity_summary;
use super::{AdminError, AdminResult, out_of_range};
use crate::builder::identity_user;
use crate::config::ManagedIdentityConfig;
use crate::dataverse::DvState;
use crate::dataverse::org;
use crate::directory::{DirectoryError, ManagedIdentity};
use crate::managed_identity::{MAX_PENDING_FAULTS, MAX_RETRY_AFTER, ManagedIdentityFault};

type Shared = State<Arc<DvState>>;

/// The managed identity routes.
pub(super) fn routes() -> Router<Arc<DvState>> {
    Router::new()
        .route("/managed-identity", get(host))
        .route(
            "/managed-identity/faults",
            post(add_faults).delete(clear_faults),
        )
        .route(
            "/tenants/{tenant}/managed-identities",
            post(add_managed_identity),
        )
        .route(
            "/tenants/{tenant}/managed-identities/{client_id}",
            delete(remove_managed_identity),
        )
}

fn fault_body(fault: ManagedIdentityFault) -> Value {
    match fault {
        ManagedIdentityFault::TooManyRequests { retry_after } => {
            json!({"status": fault.status(), "retry_after_secs": retry_after.as_secs()})
        }
        _ => json!({"status": fault.status()}),
    }
}

fn host_body(state: &DvState) -> Value {
    let host = &state.app.managed_identity;
    json!({
        "imds_endpoint": format!("{}/metadata/identity/oauth2/token", state.app.base_url),
        "app_service_endpoint": format!("{}/msi/token", state.app.base_url),
        "requests": host.requests(),
        "faults": host.pending_faults().into_iter().map(fault_body).collect::<Vec<_>>(),
    })
}

async fn host(State(state): Shared) -> Json<Value> {
    Json(host_body(&state))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewFaults {
    /// 404, 410, 429 or 500.
    status: u16,
    /// How many requests to answer so (default 1).
    count: Option<usize>,
    /// The `Retry-After` of a 429, in seconds (default 1).
    retry_after_secs: Option<u64>,
}

fn invalid(message: String) -> AdminError {
    AdminError(DirectoryError::Invalid(message))
}

async fn add_faults(State(state): Shared, Json(body): Json<NewFaults>) -> AdminResult {
    let count = body.count.unwrap_or(1);
    if let Some(problem) = out_of_range("count", count, 1, MAX_PENDING_FAULTS) {
        return Err(invalid(problem));
    }
    if body.retry_after_secs.is_some() && body.status != 429 {
        return Err(invalid("retry_after_secs goes with status 429 only".into()));
    }
    let fault = match body.status {
        404 => ManagedIdentityFault::NotFound,
        410 => ManagedIdentityFault::Gone,
        429 => {
            let seconds = body.retry_after_secs.unwrap_or(1);
            if let Some(problem) =
                out_of_range("retry_after_secs", seconds, 0, MAX_RETRY_AFTER.as_secs())
            {
                return Err(invalid(problem));
            }
            ManagedIdentityFault::TooManyRequests {
                retry_after: Duration::from_secs(seconds),
            }
        }
        500 => ManagedIdentityFault::ServerError,
        other => {
            return Err(invalid(format!(
                "status must be 404, 410, 429 or 500 (got {other})"
            )));
        }
    };
    if !state.app.managed_identity.add_faults(fault, count) {
        return Err(invalid(format!(
            "at most {MAX_PENDING_FAULTS} faults may wait at once"
        )));
    }
    Ok(Json(host_body(&state)).into_response())
}

async fn clear_faults(State(state): Shared) -> Json<Value> {
    state.app.managed_identity.clear_faults();
    Json(host_body(&state))
}

/// Adds an identity; its application user is made when it asks for one and its tenant is
/// the organization's (otherwise `application_user_id` is null). If the user cannot be
/// made, the identity is not added either.
async fn add_managed_identity(
    State(state): Shared,
    Path(segment): Path<String>,
    Json(config): Json<ManagedIdentityConfig>,
) -> AdminResult {
    let mut identity = ManagedIdentity::from_config(&config)?;
    let tenant_id = {
        let mut directory = state.app.directory_mut();
        let tenant = directory
            .tenant_mut(&segment)
            .ok_or_else(|| DirectoryError::NotFound(format!("tenant '{segment}'")))?;
        if tenant.id != state.tenant_id {
            identity.application_user_id = None;
        }
        tenant.add_managed_identity(identity.clone())?;
        tenant.id.clone()
    };
    if let Some(user_id) = identity.application_user_id.clone() {
        let user = identity_user(&identity, &user_id);
        let added = state
            .with_store(move |db, schema| org::add_user(db, schema, &user))
            .await;
        let problem = match added {
            Ok(Ok(())) => None,
            Ok(Err(err)) => Some(err.to_string()),
            Err(err) => Some(err.to_string()),
        };
        if let Some(problem) = problem {
            if let Some(tenant) = state.app.directory_mut().tenant_mut(&tenant_id) {
                tenant
                    .managed_identities
                    .retain(|m| m.client_id != identity.client_id);
            }
            return Err(AdminError(DirectoryError::Conflict(format!(
                "the managed identity's application user could not be made: {problem}"
            ))));
        }
    }
    Ok((
        StatusCode::CREATED,
        Json(managed_identity_summary(&identity)),
    )
        .into_response())
}

/// Removes an identity from the directory (its application user, if any, stays: remove it
/// with `DELETE /_emulator/dataverse/users/{id}`).
async fn remove_managed_identity(
    State(state): Shared,
    Path((segment, client_id)): Path<(String, String)>,
) -> AdminResult {
    let mut directory = state.app.directory_mut();
    let tenant = directory
        .tenant_mut(&segment)
        .ok_or_else(|| DirectoryError::NotFound(format!("tenant '{segment}'")))?;
    let before = tenant.managed_identities.len();
    tenant
        .managed_identities
        .retain(|m| !m.client_id.eq_ignore_ascii_case(client_id.trim()));
    if tenant.managed_identities.len() == before {
        return Err(DirectoryError::NotFound(format!("managed identity '{client_id}'")).into());
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}
