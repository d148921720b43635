//! The Dataverse half of the emulator: `/api/data/v9.2/` on the emulator's base URL, so the
//! organization URL a client uses is the base URL, and tokens the Entra half issues for that
//! audience are accepted.
//!
//! A request goes: fault injection (`faults`) → authentication (`auth`, 401 challenge) →
//! service protection limits (`limits`, 429) → on the store's thread: the caller's system
//! user and roles (`org`, 403) → `dispatch`, which hands it to its resource family
//! (`metadata`, `queries`, `records`, `associations`), or, for `$batch` alone, `batch`, which
//! runs each part through `dispatch` → a [`DvResponse`] with `x-ms-dop-hint` and the
//! rate-limit headers.
//!
//! [`DvResponse`]: response::DvResponse

mod associations;
mod auth;
mod batch;
mod bulk;
mod definitions;
mod dispatch;
mod errors;
mod expansion;
pub(crate) mod faults;
mod fetchxml;
mod generate;
pub(crate) mod ledger;
pub(crate) mod limits;
mod metadata;
mod odata;
pub(crate) mod org;
mod queries;
mod records;
mod request;
mod response;
pub(crate) mod schema;
pub(crate) mod store;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;
use axum::routing::any;

use self::errors::ApiError;
use self::faults::{FaultConfig, Faults};
use self::ledger::{CLIENT_REQUEST_ID, DataverseStats, RetryLedger};
use self::limits::{Limiter, ServiceLimits};
use self::org::NewUser;
use self::request::{Ctx, DvRequest};
use self::schema::{Schema, TableConfig};
use self::store::{Db, Store};
use crate::error::EmulatorError;
use crate::state::AppState;

pub(crate) use auth::challenge_value;
pub(crate) use generate::accounts as generate_accounts;

/// Largest request body accepted (a `$batch` of 1000 requests fits easily).
const MAX_BODY: usize = 64 * 1024 * 1024;

/// Default `x-ms-dop-hint`.
pub(crate) const DEFAULT_DOP_HINT: u32 = 4;

/// What the builder collected for the Dataverse half.
#[derive(Debug, Clone)]
pub(crate) struct DvSettings {
    pub(crate) data_file: Option<PathBuf>,
    pub(crate) tables: Vec<TableConfig>,
    pub(crate) limits: ServiceLimits,
    pub(crate) caller_limits: HashMap<String, ServiceLimits>,
    pub(crate) dop_hint: u32,
    pub(crate) faults: Option<FaultConfig>,
    pub(crate) generated_accounts: u64,
    pub(crate) organization_name: String,
}

/// Everything a Web API request handler reaches.
#[derive(Debug)]
pub(crate) struct DvState {
    pub(crate) app: Arc<AppState>,
    store: Arc<Store>,
    schema: Arc<Schema>,
    pub(crate) limiter: Arc<Limiter>,
    pub(crate) faults: Faults,
    pub(crate) ledger: RetryLedger,
    dop_hint: AtomicU32,
    pub(crate) tenant_id: String,
    api_root: String,
}

impl DvState {
    /// Builds the schema, opens the store, seeds the organization and its users.
    pub(crate) fn open(
        app: Arc<AppState>,
        tenant_id: String,
        settings: &DvSettings,
        users: &[NewUser],
    ) -> Result<Self, EmulatorError> {
        let schema = Schema::build(&settings.tables)?;
        let store = Store::open(settings.data_file.as_deref(), &schema)?;
        {
            let mut db = store.lock();
            let fail = |err: String| EmulatorError::Store(err);
            org::seed_organization(&mut db, &schema, &settings.organization_name)
                .map_err(|e| fail(e.to_string()))?;
            for user in users {
                org::add_user(&mut db, &schema, user).map_err(|e| fail(e.to_string()))?;
            }
            if settings.generated_accounts > 0 {
                generate::accounts(&mut db, &schema, settings.generated_accounts)
                    .map_err(|e| fail(e.to_string()))?;
            }
        }
        let api_root = format!("{}/api/data/v9.2/", app.base_url);
        Ok(Self {
            app,
            store: Arc::new(store),
            schema: Arc::new(schema),
            limiter: Arc::new(Limiter::new(
                settings.limits,
                settings.caller_limits.clone(),
            )),
            faults: Faults::new(settings.faults.clone()),
            ledger: RetryLedger::default(),
            dop_hint: AtomicU32::new(settings.dop_hint),
            tenant_id,
            api_root,
        })
    }

    pub(crate) fn base_url(&self) -> &str {
        &self.app.base_url
    }

    pub(crate) fn dop_hint(&self) -> u32 {
        self.dop_hint.load(Ordering::Relaxed)
    }

    pub(crate) fn set_dop_hint(&self, hint: u32) {
        self.dop_hint.store(hint, Ordering::Relaxed);
    }

    /// What was throttled and injected, and how clients retried.
    pub(crate) fn stats(&self) -> DataverseStats {
        let (unavailable, cuts) = self.faults.injected();
        DataverseStats {
            injected_unavailable: unavailable,
            injected_cuts: cuts,
            ..self.ledger.stats()
        }
    }

    /// Runs `work` on a blocking thread with the store locked, so SQLite never stalls the
    /// async runtime.
    pub(crate) async fn with_store<T: Send + 'static>(
        self: &Arc<Self>,
        work: impl FnOnce(&mut Db, &Schema) -> T + Send + 'static,
    ) -> Result<T, tokio::task::JoinError> {
        let state = Arc::clone(self);
        tokio::task::spawn_blocking(move || {
            let mut db = state.store.lock();
            work(&mut db, &state.schema)
        })
        .await
    }
}

/// The Web API routes.
pub(crate) fn routes(state: Arc<DvState>) -> Router {
    Router::new()
        .route("/api/data/v9.2", any(handle))
        .route("/api/data/v9.2/", any(handle))
        .route("/api/data/v9.2/{*rest}", any(handle))
        .with_state(state)
}

fn finish(state: &DvState, mut response: Response) -> Response {
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&state.dop_hint().to_string()) {
        headers.insert("x-ms-dop-hint", value);
    }
    let request_id = uuid::Uuid::new_v4().to_string();
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        headers.insert("REQ_ID", value.clone());
        headers.insert("x-ms-service-request-id", value);
    }
    response
}

/// Runs a submitted bulk delete in chunks, each on the store's thread, so requests are
/// answered between them.
async fn run_bulk_delete(state: Arc<DvState>, job: bulk::BulkDeleteJob) {
    let mut started = false;
    loop {
        let chunk = job.clone();
        let progress = state
            .with_store(move |db, schema| bulk::run_chunk(db, schema, &chunk, started))
            .await;
        started = true;
        match progress {
            Ok(bulk::Progress::More) => tokio::task::yield_now().await,
            Ok(bulk::Progress::Done) => break,
            Err(err) => {
                tracing::error!(%err, job = %job.job_id, "a bulk delete stopped");
                break;
            }
        }
    }
}

async fn handle(State(state): State<Arc<DvState>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let path = parts
        .uri
        .path()
        .strip_prefix("/api/data/v9.2")
        .unwrap_or_default();
    let path = path.strip_prefix('/').unwrap_or(path).to_owned();
    let query = parts.uri.query().unwrap_or_default().to_owned();
    let url_len = parts.uri.path().len() + query.len() + 1;
    if url_len > odata::MAX_URL_LEN {
        let response = ApiError::bad_request(
            "0x80060888",
            format!(
                "The request URL is {url_len} characters long, more than the {} Dataverse accepts; send the query inside a $batch (a part may be 64 KB) or shorten it.",
                odata::MAX_URL_LEN
            ),
        )
        .into_response()
        .into_http();
        return finish(&state, response);
    }
    let identity = match auth::authenticate(&state, &parts.headers) {
        Ok(identity) => identity,
        Err(response) => return finish(&state, *response),
    };
    let permit = match state.limiter.acquire(&identity.limit_keys) {
        Ok(permit) => permit,
        Err(throttled) => {
            tracing::debug!(code = throttled.code, "request throttled");
            state.ledger.throttled();
            state.ledger.record(
                parts
                    .headers
                    .get(CLIENT_REQUEST_ID)
                    .and_then(|value| value.to_str().ok()),
                Duration::from_secs(throttled.retry_after_secs),
                Instant::now(),
            );
            let response = ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                throttled.code,
                throttled.message,
            )
            .with_header("Retry-After", throttled.retry_after_secs.to_string())
            .into_response()
            .into_http();
            return finish(&state, response);
        }
    };
    let body = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(body) => body.to_vec(),
        Err(_) => {
            let response = ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "0x80040216",
                "The request body is too large.",
            )
            .into_response()
            .into_http();
            return finish(&state, response);
        }
    };
    let request = DvRequest {
        method: parts.method,
        path,
        query,
        headers: parts.headers,
        body,
    };
    let api_root = state.api_root.clone();
    let outcome = state
        .with_store(move |db, schema| {
            let caller = match org::resolve(db, &identity.principal) {
                Ok(caller) => caller,
                Err(err) => return (err.into_response(), Vec::new()),
            };
            let ctx = Ctx {
                schema,
                api_root: &api_root,
                caller: &caller,
            };
            let response = if request.path == "$batch" {
                batch::respond(&ctx, db, &request)
            } else {
                dispatch::execute(&ctx, db, &request)
            };
            (response, std::mem::take(&mut db.pending_jobs))
        })
        .await;
    let response = match outcome {
        Ok((response, jobs)) => {
            for job in jobs {
                tokio::spawn(run_bulk_delete(Arc::clone(&state), job));
            }
            response
        }
        Err(err) => ApiError::internal(format!("The request failed inside the emulator: {err}"))
            .into_response(),
    };
    let mut http = response.into_http();
    let headers = http.headers_mut();
    for (name, value) in [
        (
            "x-ms-ratelimit-burst-remaining-xrm-requests",
            permit.remaining_requests.to_string(),
        ),
        (
            "x-ms-ratelimit-time-remaining-xrm-requests",
            permit.remaining_time_ms.to_string(),
        ),
    ] {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    }
    drop(permit);
    finish(&state, http)
}
