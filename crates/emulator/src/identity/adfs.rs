//! AD FS, for the on-premises mode: `/adfs/oauth2/token` (the password, client credentials,
//! authorization code and refresh grants, v1 style with `resource=`), `/adfs/oauth2/authorize`
//! (the browser sign-in with PKCE, as AD FS 2019 has it), `/adfs/.well-known/openid-configuration`
//! and `/adfs/discovery/keys`, shaped as AD FS 2019 shapes them. The grants themselves are the
//! Entra endpoints' (`token.rs`, with [`Endpoint::Adfs`]): only the claims, the answer and the
//! errors (`MSISnnnn`, no `error_codes`) differ.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Extension, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse as _, Response};
use serde_json::json;

use super::mint::Endpoint;
use super::{RequestContext, RequestIds, authorize, token};
use crate::state::AppState;

/// The tenant the AD FS endpoints serve: the emulator's default one.
fn default_tenant(state: &AppState) -> Option<String> {
    state
        .directory()
        .tenants
        .first()
        .map(|tenant| tenant.id.clone())
}

/// `POST /adfs/oauth2/token`.
pub(crate) async fn token(
    State(state): State<Arc<AppState>>,
    Extension(ids): Extension<RequestIds>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let context = RequestContext::new(ids);
    token::count(&state, &headers, &body);
    let Some(tenant) = default_tenant(&state) else {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    };
    let mut response =
        match token::issue(Endpoint::Adfs, &state, &tenant, &headers, &body, &context) {
            Ok(answer) => (StatusCode::OK, Json(answer)).into_response(),
            Err(error) => error.into_adfs_response(),
        };
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    response
}

/// `GET /adfs/oauth2/authorize`: the sign-in page, as Entra's v1 authorize endpoint serves
/// it (PKCE required of public clients, as AD FS 2019 allows it).
pub(crate) async fn authorize(
    State(state): State<Arc<AppState>>,
    Extension(ids): Extension<RequestIds>,
    query: RawQuery,
) -> Response {
    let Some(tenant) = default_tenant(&state) else {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    };
    authorize::authorize_v1(
        State(state),
        axum::extract::Path(tenant),
        Extension(ids),
        query,
    )
    .await
}

/// `GET /adfs/.well-known/openid-configuration`: AD FS 2019's discovery document.
pub(crate) async fn openid_configuration(State(state): State<Arc<AppState>>) -> Response {
    let base = &state.base_url;
    Json(json!({
        "issuer": format!("{base}/adfs"),
        "authorization_endpoint": format!("{base}/adfs/oauth2/authorize/"),
        "token_endpoint": format!("{base}/adfs/oauth2/token/"),
        "jwks_uri": format!("{base}/adfs/discovery/keys"),
        "token_endpoint_auth_methods_supported": [
            "client_secret_post", "client_secret_basic", "private_key_jwt",
            "windows_client_authentication"
        ],
        "response_types_supported": [
            "code", "id_token", "code id_token", "id_token token", "code token",
            "code id_token token"
        ],
        "response_modes_supported": ["query", "fragment", "form_post"],
        "grant_types_supported": [
            "authorization_code", "refresh_token", "client_credentials",
            "urn:ietf:params:oauth:grant-type:jwt-bearer", "implicit", "password",
            "srv_challenge"
        ],
        "subject_types_supported": ["pairwise"],
        "scopes_supported": [
            "openid", "profile", "email", "allatclaims", "user_impersonation", "logon_cert",
            "aza", "vpn_cert", "winhello_cert"
        ],
        "id_token_signing_alg_values_supported": ["RS256"],
        "token_endpoint_auth_signing_alg_values_supported": ["RS256"],
        "access_token_issuer": crate::on_premises::OnPremises::access_token_issuer(base),
        "claims_supported": [
            "aud", "iss", "iat", "exp", "auth_time", "nonce", "at_hash", "c_hash", "sub",
            "upn", "unique_name", "pwd_url", "pwd_exp", "mfa_auth_time", "sid", "nbf"
        ],
        "microsoft_multi_refresh_token": true,
        "userinfo_endpoint": format!("{base}/adfs/userinfo"),
        "capabilities": [],
        "end_session_endpoint": format!("{base}/adfs/oauth2/logout"),
        "as_access_token_token_binding_supported": true,
        "as_refresh_token_token_binding_supported": true,
        "resource_access_token_token_binding_supported": true,
        "op_id_token_token_binding_supported": true,
        "rp_id_token_token_binding_supported": true,
        "frontchannel_logout_supported": true,
        "frontchannel_logout_session_supported": true,
        "code_challenge_methods_supported": ["plain", "S256"],
    }))
    .into_response()
}

/// `GET /adfs/discovery/keys`: the signing key, `kid` = `x5t`.
pub(crate) async fn keys(State(state): State<Arc<AppState>>) -> Response {
    Json(json!({ "keys": [state.signing.jwk(None)] })).into_response()
}
