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
mod windows;

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

pub(crate) use auth::{adfs_challenge_value, challenge_value};
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
    /// On-premises: the Windows sign-ins (NTLM) of each connection.
    pub(crate) windows: windows::WindowsSignIns,
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
            windows: windows::WindowsSignIns::default(),
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

/// The Web API routes: `/api/data/v9.2/` online; on-premises the organization's path and
/// any version (the handler answers the server's versions and refuses the others).
pub(crate) fn routes(state: Arc<DvState>) -> Router {
    let router = if state.app.on_premises.is_some() {
        // `{tenant}` as the identity routes name their first segment: one name per
        // position in the merged router.
        Router::new()
            .route("/{tenant}/api/data/{version}", any(handle))
            .route("/{tenant}/api/data/{version}/", any(handle))
            .route("/{tenant}/api/data/{version}/{*rest}", any(handle))
    } else {
        Router::new()
            .route("/api/data/v9.2", any(handle))
            .route("/api/data/v9.2/", any(handle))
            .route("/api/data/v9.2/{*rest}", any(handle))
    };
    router.with_state(state)
}

/// The Web API root a request path is under (`{base}/api/data/v9.2/`, or on-premises
/// `{base}/Contoso/api/data/v8.2/`) and the path below it; `Err` with Dataverse's 404 when
/// the organization or the version is not this server's.
fn api_root_of<'p>(state: &DvState, path: &'p str) -> Result<(String, &'p str), ApiError> {
    let Some(on_premises) = &state.app.on_premises else {
        let rest = path.strip_prefix("/api/data/v9.2").unwrap_or_default();
        return Ok((
            state.api_root.clone(),
            rest.strip_prefix('/').unwrap_or(rest),
        ));
    };
    let not_found = |segment: &str| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "0x8006088a",
            format!("Resource not found for the segment '{segment}'."),
        )
    };
    let first = path
        .trim_start_matches('/')
        .split('/')
        .next()
        .unwrap_or_default();
    let (version, rest) = on_premises
        .split_path(path)
        .ok_or_else(|| not_found(first))?;
    if !on_premises
        .web_api_versions()
        .iter()
        .any(|served| served == version)
    {
        return Err(not_found(version));
    }
    let api_root = format!(
        "{}/{}/api/data/{version}/",
        state.base_url(),
        on_premises.organization()
    );
    Ok((api_root, rest))
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
    // Authentication comes first, as on the real servers (IIS or the front door answer
    // 401 before the Web API sees the path): an unauthenticated probe at any version gets
    // the challenge.
    let connection = parts
        .extensions
        .get::<crate::server::ConnectionId>()
        .copied();
    let identity = match auth::authenticate(&state, &parts.headers, connection) {
        Ok(identity) => identity,
        Err(response) => return finish(&state, *response),
    };
    let (api_root, path) = match api_root_of(&state, parts.uri.path()) {
        Ok((api_root, path)) => (api_root, path.to_owned()),
        Err(error) => return finish(&state, error.into_response().into_http()),
    };
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
    let server_version = state.app.on_premises.as_ref().map_or_else(
        || org::ONLINE_VERSION.to_owned(),
        |on_premises| on_premises.version().to_owned(),
    );
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
                server_version: &server_version,
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
