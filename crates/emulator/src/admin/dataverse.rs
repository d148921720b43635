//! The Dataverse part of the admin API (`/_emulator/`): system users and their roles,
//! security roles, service protection limits, fault injection, the DOP hint, generated
//! rows and the throttling / fault / retry counters. JSON in and out; errors as
//! `{"error": kind, "message": …}` like the rest of the admin API.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use super::out_of_range;
use crate::dataverse::faults::FaultConfig;
use crate::dataverse::limits::ServiceLimits;
use crate::dataverse::org::{self, NewUser, OrgError};
use crate::dataverse::schema::Schema;
use crate::dataverse::store::Db;
use crate::dataverse::{self, DvState};

type Shared = State<Arc<DvState>>;

/// The most rows one `POST /_emulator/dataverse/generate` may add.
const MAX_GENERATED: u64 = 5_000_000;
/// The longest injected delay: ten minutes.
const MAX_DELAY_MS: u64 = 600_000;

/// The Dataverse routes.
pub(super) fn routes() -> Router<Arc<DvState>> {
    Router::new()
        .route("/dataverse/users", get(list_users).post(add_user))
        .route("/dataverse/users/{id}", delete(remove_user))
        .route("/dataverse/users/{id}/roles", put(set_roles))
        .route("/dataverse/roles", get(list_roles).post(add_role))
        .route(
            "/dataverse/settings",
            get(get_settings).patch(patch_settings),
        )
        .route("/dataverse/generate", post(generate))
        .route("/dataverse/stats", get(get_stats))
        .route("/limits", get(get_limits).put(put_default_limits))
        .route(
            "/limits/{caller}",
            put(put_caller_limits).delete(delete_caller_limits),
        )
        .route(
            "/faults",
            get(get_faults).put(put_faults).delete(delete_faults),
        )
}

fn error(status: StatusCode, kind: &str, message: String) -> Response {
    (status, Json(json!({"error": kind, "message": message}))).into_response()
}

impl IntoResponse for OrgError {
    fn into_response(self) -> Response {
        let (status, kind) = match &self {
            Self::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            Self::Duplicate(_) => (StatusCode::CONFLICT, "conflict"),
            Self::Invalid(_) => (StatusCode::BAD_REQUEST, "invalid"),
            Self::Store(_) => (StatusCode::INTERNAL_SERVER_ERROR, "store"),
        };
        error(status, kind, self.to_string())
    }
}

async fn on_store<T: Send + 'static>(
    state: &Arc<DvState>,
    work: impl FnOnce(&mut Db, &Schema) -> Result<T, OrgError> + Send + 'static,
) -> Result<T, Response> {
    match state.with_store(work).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(err)) => Err(err.into_response()),
        Err(err) => Err(error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "store",
            err.to_string(),
        )),
    }
}

/// A GUID from the admin API, or the message saying why it is not one.
fn guid(text: &str, what: &str) -> Result<String, String> {
    uuid::Uuid::parse_str(text.trim())
        .map(|id| id.hyphenated().to_string())
        .map_err(|_| format!("{what} '{text}' is not a GUID"))
}

fn invalid(message: String) -> Response {
    error(StatusCode::BAD_REQUEST, "invalid", message)
}

async fn list_users(State(state): Shared) -> Response {
    match on_store(&state, |db, _| org::users(db)).await {
        Ok(users) => Json(users).into_response(),
        Err(response) => response,
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewUserBody {
    systemuserid: Option<String>,
    /// An application user: the app's client id.
    application_id: Option<String>,
    /// A user: the Entra object id (or give `upn` of a directory user).
    object_id: Option<String>,
    upn: Option<String>,
    fullname: Option<String>,
    #[serde(default)]
    roles: Vec<String>,
}

async fn add_user(State(state): Shared, Json(body): Json<NewUserBody>) -> Response {
    let id = match body
        .systemuserid
        .as_deref()
        .map(|t| guid(t, "systemuserid"))
        .transpose()
    {
        Ok(id) => id.unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
        Err(message) => return invalid(message),
    };
    let application_id = match body
        .application_id
        .as_deref()
        .map(|t| guid(t, "application_id"))
        .transpose()
    {
        Ok(v) => v,
        Err(message) => return invalid(message),
    };
    let mut object_id = match body
        .object_id
        .as_deref()
        .map(|t| guid(t, "object_id"))
        .transpose()
    {
        Ok(v) => v,
        Err(message) => return invalid(message),
    };
    let mut full_name = body.fullname.clone();
    if object_id.is_none()
        && let Some(upn) = &body.upn
    {
        let directory = state.app.directory();
        let user = directory.tenants.iter().find_map(|t| t.user(upn));
        match user {
            Some(user) => {
                object_id = Some(user.object_id.clone());
                full_name = full_name.or_else(|| Some(user.display_name.clone()));
            }
            None => {
                return error(
                    StatusCode::NOT_FOUND,
                    "not_found",
                    format!("user '{upn}' not found"),
                );
            }
        }
    }
    if application_id.is_some() == object_id.is_some() {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid",
            "give exactly one of application_id (an application user) or object_id/upn (a user)"
                .into(),
        );
    }
    let user = NewUser {
        id: id.clone(),
        full_name: full_name.unwrap_or_else(|| {
            application_id
                .as_ref()
                .map_or_else(|| "user".to_owned(), |app| format!("# {app}"))
        }),
        application_id,
        object_id,
        domain_name: body.upn.clone(),
        roles: body.roles.clone(),
    };
    match on_store(&state, move |db, schema| org::add_user(db, schema, &user)).await {
        Ok(()) => (StatusCode::CREATED, Json(json!({"systemuserid": id}))).into_response(),
        Err(response) => response,
    }
}

async fn remove_user(State(state): Shared, Path(id): Path<String>) -> Response {
    let id = id.to_ascii_lowercase();
    match on_store(&state, move |db, schema| org::remove_user(db, schema, &id)).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(response) => response,
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RolesBody {
    roles: Vec<String>,
}

async fn set_roles(
    State(state): Shared,
    Path(id): Path<String>,
    Json(body): Json<RolesBody>,
) -> Response {
    let id = id.to_ascii_lowercase();
    match on_store(&state, move |db, _| org::set_roles(db, &id, &body.roles)).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(response) => response,
    }
}

async fn list_roles(State(state): Shared) -> Response {
    match on_store(&state, |db, _| org::roles(db)).await {
        Ok(roles) => Json(roles.iter().map(org::Role::to_json).collect::<Vec<_>>()).into_response(),
        Err(response) => response,
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RoleBody {
    roleid: Option<String>,
    name: String,
    privileges: HashMap<String, String>,
}

async fn add_role(State(state): Shared, Json(body): Json<RoleBody>) -> Response {
    let id = match body
        .roleid
        .as_deref()
        .map(|t| guid(t, "roleid"))
        .transpose()
    {
        Ok(id) => id.unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
        Err(message) => return invalid(message),
    };
    let role_id = id.clone();
    match on_store(&state, move |db, schema| {
        org::add_role(db, schema, &role_id, &body.name, &body.privileges)
    })
    .await
    {
        Ok(()) => (StatusCode::CREATED, Json(json!({"roleid": id}))).into_response(),
        Err(response) => response,
    }
}

async fn get_settings(State(state): Shared) -> Json<Value> {
    Json(json!({"dop_hint": state.dop_hint()}))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SettingsBody {
    dop_hint: Option<u32>,
}

async fn patch_settings(State(state): Shared, Json(body): Json<SettingsBody>) -> Response {
    if let Some(hint) = body.dop_hint {
        if let Some(problem) = out_of_range("dop_hint", hint, 1, 1024) {
            return error(StatusCode::BAD_REQUEST, "invalid", problem);
        }
        state.set_dop_hint(hint);
    }
    Json(json!({"dop_hint": state.dop_hint()})).into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GenerateBody {
    count: u64,
}

async fn generate(State(state): Shared, Json(body): Json<GenerateBody>) -> Response {
    let count = body.count;
    if let Some(problem) = out_of_range("count", count, 1, MAX_GENERATED) {
        return error(StatusCode::BAD_REQUEST, "invalid", problem);
    }
    match on_store(&state, move |db, schema| {
        dataverse::generate_accounts(db, schema, count).map_err(OrgError::from)
    })
    .await
    {
        Ok(total) => (
            StatusCode::CREATED,
            Json(json!({"generated": count, "total": total})),
        )
            .into_response(),
        Err(response) => response,
    }
}

/// The counters of [`DataverseStats`](crate::DataverseStats), by their field names.
async fn get_stats(State(state): Shared) -> Json<Value> {
    let stats = state.stats();
    Json(json!({
        "throttled_responses": stats.throttled_responses,
        "injected_unavailable": stats.injected_unavailable,
        "injected_cuts": stats.injected_cuts,
        "tracked_retries": stats.tracked_retries,
        "early_retries": stats.early_retries,
    }))
}

/// Limits as JSON: `{"max_requests", "window_secs", "max_concurrent", "max_execution_time_ms"}`;
/// fields left out take Dataverse's defaults.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LimitsBody {
    max_requests: Option<u32>,
    window_secs: Option<u64>,
    max_concurrent: Option<u32>,
    max_execution_time_ms: Option<u64>,
}

impl LimitsBody {
    /// What is wrong with the body, if anything.
    fn problem(&self) -> Option<String> {
        // Zero (requests, concurrency, execution time) is a limit tests use: every request
        // throttled.
        let check = |name, value: Option<u64>, min, max| {
            value.and_then(|value| out_of_range(name, value, min, max))
        };
        let requests = self.max_requests.map(u64::from);
        let concurrent = self.max_concurrent.map(u64::from);
        let day_ms = 24 * 3600 * 1000;
        check("max_requests", requests, 0, 1_000_000_000)
            .or_else(|| check("window_secs", self.window_secs, 1, 24 * 3600))
            .or_else(|| check("max_concurrent", concurrent, 0, 100_000))
            .or_else(|| {
                check(
                    "max_execution_time_ms",
                    self.max_execution_time_ms,
                    0,
                    day_ms,
                )
            })
    }

    fn apply(&self, base: ServiceLimits) -> ServiceLimits {
        let mut limits = base;
        if let Some(count) = self.max_requests {
            limits = limits.requests(count, limits.window);
        }
        if let Some(secs) = self.window_secs {
            limits = limits.requests(limits.max_requests, Duration::from_secs(secs));
        }
        if let Some(count) = self.max_concurrent {
            limits = limits.concurrent(count);
        }
        if let Some(ms) = self.max_execution_time_ms {
            limits = limits.execution_time(Duration::from_millis(ms));
        }
        limits
    }
}

fn limits_json(limits: &ServiceLimits) -> Value {
    json!({
        "max_requests": limits.max_requests,
        "window_secs": limits.window.as_secs(),
        "max_concurrent": limits.max_concurrent,
        "max_execution_time_ms": u64::try_from(limits.max_execution_time.as_millis()).unwrap_or(u64::MAX),
    })
}

fn all_limits(state: &DvState) -> Value {
    let callers: serde_json::Map<String, Value> = state
        .limiter
        .overrides()
        .iter()
        .map(|(k, v)| (k.clone(), limits_json(v)))
        .collect();
    json!({"default": limits_json(&state.limiter.default_limits()), "callers": callers})
}

async fn get_limits(State(state): Shared) -> Json<Value> {
    Json(all_limits(&state))
}

async fn put_default_limits(State(state): Shared, Json(body): Json<LimitsBody>) -> Response {
    if let Some(problem) = body.problem() {
        return error(StatusCode::BAD_REQUEST, "invalid", problem);
    }
    state
        .limiter
        .set_default(body.apply(ServiceLimits::default()));
    state.limiter.reset();
    Json(all_limits(&state)).into_response()
}

async fn put_caller_limits(
    State(state): Shared,
    Path(caller): Path<String>,
    Json(body): Json<LimitsBody>,
) -> Response {
    if let Some(problem) = body.problem() {
        return error(StatusCode::BAD_REQUEST, "invalid", problem);
    }
    state
        .limiter
        .set_override(&caller, Some(body.apply(ServiceLimits::default())));
    state.limiter.reset();
    Json(all_limits(&state)).into_response()
}

async fn delete_caller_limits(State(state): Shared, Path(caller): Path<String>) -> Response {
    if state.limiter.set_override(&caller, None) {
        StatusCode::NO_CONTENT.into_response()
    } else {
        error(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no limits for caller '{caller}'"),
        )
    }
}

fn faults_json(config: Option<&FaultConfig>) -> Value {
    match config {
        None => json!({"enabled": false}),
        Some(c) => json!({
            "enabled": true,
            "seed": c.seed,
            "unavailable_rate": c.unavailable_rate,
            "delay_rate": c.delay_rate,
            "delay_ms": u64::try_from(c.delay.as_millis()).unwrap_or(u64::MAX),
            "cut_rate": c.cut_rate,
        }),
    }
}

async fn get_faults(State(state): Shared) -> Json<Value> {
    Json(faults_json(state.faults.get().as_ref()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FaultsBody {
    #[serde(default)]
    seed: u64,
    #[serde(default)]
    unavailable_rate: f64,
    #[serde(default)]
    delay_rate: f64,
    #[serde(default)]
    delay_ms: u64,
    #[serde(default)]
    cut_rate: f64,
}

async fn put_faults(State(state): Shared, Json(body): Json<FaultsBody>) -> Response {
    let rates = [body.unavailable_rate, body.delay_rate, body.cut_rate];
    if rates.iter().any(|r| !(0.0..=1.0).contains(r)) {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid",
            "rates must be between 0 and 1".into(),
        );
    }
    if let Some(problem) = out_of_range("delay_ms", body.delay_ms, 0, MAX_DELAY_MS) {
        return error(StatusCode::BAD_REQUEST, "invalid", problem);
    }
    let config = FaultConfig::new(body.seed)
        .unavailable(body.unavailable_rate)
        .delayed(body.delay_rate, Duration::from_millis(body.delay_ms))
        .cut(body.cut_rate);
    state.faults.set(Some(config));
    Json(faults_json(state.faults.get().as_ref())).into_response()
}

async fn delete_faults(State(state): Shared) -> StatusCode {
    state.faults.set(None);
    StatusCode::NO_CONTENT
}
