//! The identity part of the admin API: the settings of the Entra half (token lifetime,
//! device code interval and lifetime) and the directory (tenants, apps with their secrets
//! and certificates, users). A secret value is returned only when the emulator generated
//! it, once, in the response that created it.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use secrecy::SecretString;
use serde::Deserialize;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::{AdminError, AdminResult, out_of_range};
use crate::config::{AppConfig, UserConfig};
use crate::directory::{
    App, ClientCertificate, ClientSecret, DirectoryError, MAX_REDIRECT_URIS, ManagedIdentity,
    Tenant, User, parse_guid, parse_time,
};
use crate::identity::random_string;
use crate::identity::redirect_uri;
use crate::state::AppState;

type Shared = State<Arc<AppState>>;

/// The settings and directory routes.
pub(super) fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/settings", get(get_settings).patch(patch_settings))
        .route(
            "/identity/stats",
            get(token_stats).delete(reset_token_stats),
        )
        .route("/tenants", get(list_tenants).post(add_tenant))
        .route("/tenants/{tenant}", get(get_tenant).delete(remove_tenant))
        .route("/tenants/{tenant}/apps", post(add_app))
        .route("/tenants/{tenant}/apps/{client_id}", delete(remove_app))
        .route(
            "/tenants/{tenant}/apps/{client_id}/secrets",
            post(add_secret),
        )
        .route(
            "/tenants/{tenant}/apps/{client_id}/secrets/{secret_id}",
            delete(remove_secret),
        )
        .route(
            "/tenants/{tenant}/apps/{client_id}/certificates",
            post(add_certificate),
        )
        .route(
            "/tenants/{tenant}/apps/{client_id}/redirect-uris",
            put(set_redirect_uris),
        )
        .route("/tenants/{tenant}/users", post(add_user))
        .route(
            "/tenants/{tenant}/users/{upn}",
            delete(remove_user).patch(patch_user),
        )
}

/// `GET /_emulator/identity/stats`: `{"token_requests": N, "by_client": {client_id: n}}`,
/// every request to a token endpoint counted, so tests and benchmarks count from the
/// server's side.
async fn token_stats(State(state): State<Arc<AppState>>) -> Json<Value> {
    let by_client = state.token_requests();
    let total: u64 = by_client.values().sum();
    Json(json!({ "token_requests": total, "by_client": by_client }))
}

/// `DELETE /_emulator/identity/stats`: starts counting again from zero.
async fn reset_token_stats(State(state): State<Arc<AppState>>) -> StatusCode {
    state.reset_token_requests();
    StatusCode::NO_CONTENT
}

fn created(body: Value) -> AdminResult {
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

fn no_content() -> AdminResult {
    Ok(StatusCode::NO_CONTENT.into_response())
}

fn rfc3339(time: OffsetDateTime) -> String {
    time.format(&Rfc3339).unwrap_or_default()
}

fn tenant_summary(tenant: &Tenant) -> Value {
    json!({
        "id": tenant.id,
        "domain": tenant.domain,
        "display_name": tenant.display_name,
        "apps": tenant.apps.iter().map(app_summary).collect::<Vec<_>>(),
        "users": tenant.users.iter().map(user_summary).collect::<Vec<_>>(),
        "managed_identities": tenant
            .managed_identities
            .iter()
            .map(managed_identity_summary)
            .collect::<Vec<_>>(),
    })
}

pub(super) fn managed_identity_summary(identity: &ManagedIdentity) -> Value {
    json!({
        "client_id": identity.client_id,
        "object_id": identity.object_id,
        "resource_id": identity.resource_id,
        "display_name": identity.display_name,
        "system_assigned": identity.system_assigned,
        "roles": identity.roles,
        "application_user_id": identity.application_user_id,
    })
}

fn app_summary(app: &App) -> Value {
    json!({
        "client_id": app.client_id,
        "display_name": app.display_name,
        "service_principal_id": app.service_principal_id,
        "public_client": app.public_client,
        "roles": app.roles,
        "secrets": app.secrets.iter().map(|s| json!({
            "id": s.id,
            "expires_at": rfc3339(s.expires_at),
        })).collect::<Vec<_>>(),
        "certificates": app.certificates.iter().map(|c| json!({
            "thumbprint": c.thumbprints.sha1_hex(),
            "x5t": c.thumbprints.x5t(),
            "x5t#S256": c.thumbprints.x5t_s256(),
        })).collect::<Vec<_>>(),
        "redirect_uris": app.redirect_uris,
    })
}

fn user_summary(user: &User) -> Value {
    json!({
        "upn": user.upn,
        "object_id": user.object_id,
        "display_name": user.display_name,
        "mfa_required": user.mfa_required,
        "federated": user.federated,
        "disabled": user.disabled,
    })
}

fn not_found(what: &str) -> DirectoryError {
    DirectoryError::NotFound(what.to_owned())
}

fn settings_body(state: &AppState) -> Value {
    let settings = state.settings();
    json!({
        "token_lifetime_secs": settings.token_lifetime_secs,
        "device_code_interval_secs": settings.device_code_interval_secs,
        "device_code_lifetime_secs": settings.device_code_lifetime_secs,
        "authorization_code_lifetime_secs": settings.authorization_code_lifetime_secs,
    })
}

async fn get_settings(State(state): Shared) -> Json<Value> {
    Json(settings_body(&state))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SettingsPatch {
    token_lifetime_secs: Option<u64>,
    device_code_interval_secs: Option<u64>,
    device_code_lifetime_secs: Option<u64>,
    authorization_code_lifetime_secs: Option<u64>,
}

async fn patch_settings(State(state): Shared, Json(patch): Json<SettingsPatch>) -> AdminResult {
    for (name, value, max) in [
        (
            "token_lifetime_secs",
            patch.token_lifetime_secs,
            30 * 24 * 3600,
        ),
        (
            "device_code_interval_secs",
            patch.device_code_interval_secs,
            3600,
        ),
        (
            "device_code_lifetime_secs",
            patch.device_code_lifetime_secs,
            24 * 3600,
        ),
        (
            "authorization_code_lifetime_secs",
            patch.authorization_code_lifetime_secs,
            3600,
        ),
    ] {
        if let Some(problem) = value.and_then(|value| out_of_range(name, value, 1, max)) {
            return Err(DirectoryError::Invalid(problem).into());
        }
    }
    if let Some(seconds) = patch.token_lifetime_secs {
        state.set_token_lifetime(seconds);
    }
    if let Some(seconds) = patch.device_code_interval_secs {
        state.set_device_code_interval(seconds);
    }
    if let Some(seconds) = patch.device_code_lifetime_secs {
        state.set_device_code_lifetime(seconds);
    }
    if let Some(seconds) = patch.authorization_code_lifetime_secs {
        state.set_authorization_code_lifetime(seconds);
    }
    Ok(Json(settings_body(&state)).into_response())
}

async fn list_tenants(State(state): Shared) -> Json<Value> {
    let directory = state.directory();
    Json(json!(
        directory
            .tenants
            .iter()
            .map(tenant_summary)
            .collect::<Vec<_>>()
    ))
}

async fn get_tenant(State(state): Shared, Path(segment): Path<String>) -> AdminResult {
    let directory = state.directory();
    let tenant = directory
        .tenant(&segment)
        .ok_or_else(|| not_found(&format!("tenant '{segment}'")))?;
    Ok(Json(tenant_summary(tenant)).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewTenant {
    id: Option<String>,
    domain: String,
    display_name: Option<String>,
}

async fn add_tenant(State(state): Shared, Json(body): Json<NewTenant>) -> AdminResult {
    let tenant = Tenant::new(
        body.id.as_deref(),
        &body.domain,
        body.display_name.as_deref(),
    )?;
    let summary = tenant_summary(&tenant);
    state.directory_mut().add_tenant(tenant)?;
    created(summary)
}

async fn remove_tenant(State(state): Shared, Path(segment): Path<String>) -> AdminResult {
    let mut directory = state.directory_mut();
    let id = directory
        .tenant(&segment)
        .map(|t| t.id.clone())
        .ok_or_else(|| not_found(&format!("tenant '{segment}'")))?;
    directory.tenants.retain(|t| t.id != id);
    no_content()
}

fn with_tenant<T>(
    state: &AppState,
    segment: &str,
    change: impl FnOnce(&mut Tenant) -> Result<T, DirectoryError>,
) -> Result<T, AdminError> {
    let mut directory = state.directory_mut();
    let tenant = directory
        .tenant_mut(segment)
        .ok_or_else(|| not_found(&format!("tenant '{segment}'")))?;
    Ok(change(tenant)?)
}

fn with_app<T>(
    state: &AppState,
    segment: &str,
    client_id: &str,
    change: impl FnOnce(&mut App) -> Result<T, DirectoryError>,
) -> Result<T, AdminError> {
    with_tenant(state, segment, |tenant| {
        let app = tenant
            .app_mut(client_id)
            .ok_or_else(|| not_found(&format!("app '{client_id}'")))?;
        change(app)
    })
}

async fn add_app(
    State(state): Shared,
    Path(segment): Path<String>,
    Json(config): Json<AppConfig>,
) -> AdminResult {
    let app = App::from_config(&config)?;
    let summary = app_summary(&app);
    with_tenant(&state, &segment, |tenant| tenant.add_app(app))?;
    created(summary)
}

async fn remove_app(
    State(state): Shared,
    Path((segment, client_id)): Path<(String, String)>,
) -> AdminResult {
    with_tenant(&state, &segment, |tenant| {
        let id = tenant
            .app(&client_id)
            .map(|a| a.client_id.clone())
            .ok_or_else(|| not_found(&format!("app '{client_id}'")))?;
        tenant.apps.retain(|a| a.client_id != id);
        Ok(())
    })?;
    no_content()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewSecret {
    id: Option<String>,
    /// Generated when absent, and then returned once.
    value: Option<SecretString>,
    expires_at: Option<String>,
    /// Alternative to `expires_at`; negative values make an already expired secret.
    expires_in_secs: Option<i64>,
}

async fn add_secret(
    State(state): Shared,
    Path((segment, client_id)): Path<(String, String)>,
    Json(body): Json<NewSecret>,
) -> AdminResult {
    const CENTURY_SECS: i64 = 100 * 366 * 24 * 3600;
    let expires_at = match (&body.expires_at, body.expires_in_secs) {
        (Some(text), _) => parse_time(text)?,
        (None, Some(seconds)) => {
            if let Some(problem) =
                out_of_range("expires_in_secs", seconds, -CENTURY_SECS, CENTURY_SECS)
            {
                return Err(DirectoryError::Invalid(problem).into());
            }
            OffsetDateTime::now_utc() + time::Duration::seconds(seconds)
        }
        (None, None) => OffsetDateTime::now_utc() + time::Duration::days(730),
    };
    let generated = body.value.is_none();
    let value = body
        .value
        .unwrap_or_else(|| SecretString::from(random_string(2)));
    let id = match body.id.as_deref() {
        Some(id) => parse_guid(id, "secret id")?,
        None => uuid::Uuid::new_v4().to_string(),
    };
    let mut response = json!({"id": id, "expires_at": rfc3339(expires_at)});
    if generated {
        use secrecy::ExposeSecret as _;
        response["value"] = json!(value.expose_secret());
    }
    let secret = ClientSecret {
        id,
        value,
        expires_at,
    };
    with_app(&state, &segment, &client_id, |app| {
        if app.secrets.iter().any(|s| s.id == secret.id) {
            return Err(DirectoryError::Duplicate(format!("secret '{}'", secret.id)));
        }
        app.secrets.push(secret);
        Ok(())
    })?;
    created(response)
}

async fn remove_secret(
    State(state): Shared,
    Path((segment, client_id, secret_id)): Path<(String, String, String)>,
) -> AdminResult {
    with_app(&state, &segment, &client_id, |app| {
        let before = app.secrets.len();
        app.secrets
            .retain(|s| !s.id.eq_ignore_ascii_case(&secret_id));
        if app.secrets.len() == before {
            return Err(not_found(&format!("secret '{secret_id}'")));
        }
        Ok(())
    })?;
    no_content()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewCertificate {
    certificate_pem: String,
}

async fn add_certificate(
    State(state): Shared,
    Path((segment, client_id)): Path<(String, String)>,
    Json(body): Json<NewCertificate>,
) -> AdminResult {
    let certificate = ClientCertificate::from_pem(&body.certificate_pem)?;
    let response = json!({
        "thumbprint": certificate.thumbprints.sha1_hex(),
        "x5t": certificate.thumbprints.x5t(),
        "x5t#S256": certificate.thumbprints.x5t_s256(),
    });
    with_app(&state, &segment, &client_id, |app| {
        app.certificates.push(certificate);
        Ok(())
    })?;
    created(response)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RedirectUris {
    redirect_uris: Vec<String>,
}

async fn set_redirect_uris(
    State(state): Shared,
    Path((segment, client_id)): Path<(String, String)>,
    Json(body): Json<RedirectUris>,
) -> AdminResult {
    if body.redirect_uris.len() > MAX_REDIRECT_URIS {
        return Err(DirectoryError::Invalid(format!(
            "an app has at most {MAX_REDIRECT_URIS} redirect URIs"
        ))
        .into());
    }
    let uris = body
        .redirect_uris
        .iter()
        .map(|uri| redirect_uri::register(uri).map_err(DirectoryError::Invalid))
        .collect::<Result<Vec<_>, _>>()?;
    let summary = with_app(&state, &segment, &client_id, |app| {
        app.redirect_uris = uris;
        Ok(app_summary(app))
    })?;
    Ok(Json(summary).into_response())
}

async fn add_user(
    State(state): Shared,
    Path(segment): Path<String>,
    Json(config): Json<UserConfig>,
) -> AdminResult {
    let user = User::from_config(&config)?;
    let summary = user_summary(&user);
    with_tenant(&state, &segment, |tenant| tenant.add_user(user))?;
    created(summary)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UserPatch {
    password: Option<SecretString>,
    display_name: Option<String>,
    mfa_required: Option<bool>,
    federated: Option<bool>,
    disabled: Option<bool>,
}

async fn patch_user(
    State(state): Shared,
    Path((segment, upn)): Path<(String, String)>,
    Json(patch): Json<UserPatch>,
) -> AdminResult {
    let summary = with_tenant(&state, &segment, |tenant| {
        let user = tenant
            .user_mut(&upn)
            .ok_or_else(|| not_found(&format!("user '{upn}'")))?;
        if let Some(password) = patch.password {
            user.password = password;
        }
        if let Some(name) = patch.display_name {
            user.display_name = name;
        }
        if let Some(flag) = patch.mfa_required {
            user.mfa_required = flag;
        }
        if let Some(flag) = patch.federated {
            user.federated = flag;
        }
        if let Some(flag) = patch.disabled {
            user.disabled = flag;
        }
        Ok(user_summary(user))
    })?;
    Ok(Json(summary).into_response())
}

async fn remove_user(
    State(state): Shared,
    Path((segment, upn)): Path<(String, String)>,
) -> AdminResult {
    with_tenant(&state, &segment, |tenant| {
        let before = tenant.users.len();
        tenant.users.retain(|u| !u.upn.eq_ignore_ascii_case(&upn));
        if tenant.users.len() == before {
            return Err(not_found(&format!("user '{upn}'")));
        }
        Ok(())
    })?;
    no_content()
}
