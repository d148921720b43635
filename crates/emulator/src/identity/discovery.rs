//! Discovery endpoints Microsoft's clients call before they ask for a token: the OIDC
//! configuration (v1 and v2), the signing keys, instance discovery and user realm.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Extension, Path, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse as _, Response};
use serde_json::{Value, json};

use super::error::AadError;
use super::{RequestContext, RequestIds};
use crate::state::AppState;

/// How a tenant path segment resolves for discovery documents.
enum Resolved {
    /// A known tenant: its GUID.
    Tenant(String),
    /// `common`, `organizations` or `consumers`: documents keep the segment and use Entra's
    /// `{tenantid}` placeholder in the issuer.
    Multi(String),
}

fn resolve(state: &AppState, segment: &str) -> Option<Resolved> {
    let lower = segment.to_ascii_lowercase();
    if matches!(lower.as_str(), "common" | "organizations" | "consumers") {
        return Some(Resolved::Multi(lower));
    }
    state
        .directory()
        .tenant(segment)
        .map(|tenant| Resolved::Tenant(tenant.id.clone()))
}

fn tenant_not_found(segment: &str, ids: RequestIds) -> Response {
    AadError::tenant_not_found(segment)
        .with_error("invalid_tenant")
        .into_response(&RequestContext::new(ids))
}

/// The tenant a discovery document names in its endpoint paths and in its issuer: a
/// specific tenant names itself in both; `common`/`organizations` keep their name in paths
/// and put Entra's `{tenantid}` placeholder in the issuer.
fn document_tenants(state: &AppState, segment: &str) -> Option<(String, String)> {
    match resolve(state, segment)? {
        Resolved::Tenant(id) => Some((id.clone(), id)),
        Resolved::Multi(name) => Some((name, "{tenantid}".to_owned())),
    }
}

pub(crate) async fn openid_configuration_v2(
    State(state): State<Arc<AppState>>,
    Path(segment): Path<String>,
    Extension(ids): Extension<RequestIds>,
) -> Response {
    let Some((path_tenant, issuer_tenant)) = document_tenants(&state, &segment) else {
        return tenant_not_found(&segment, ids);
    };
    let base = &state.base_url;
    Json(json!({
        "token_endpoint": format!("{base}/{path_tenant}/oauth2/v2.0/token"),
        "token_endpoint_auth_methods_supported":
            ["client_secret_post", "private_key_jwt", "client_secret_basic"],
        "jwks_uri": format!("{base}/{path_tenant}/discovery/v2.0/keys"),
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "issuer": format!("{base}/{issuer_tenant}/v2.0"),
        "request_uri_parameter_supported": false,
        "userinfo_endpoint": "https://graph.microsoft.com/oidc/userinfo",
        "authorization_endpoint": format!("{base}/{path_tenant}/oauth2/v2.0/authorize"),
        "device_authorization_endpoint": format!("{base}/{path_tenant}/oauth2/v2.0/devicecode"),
        "http_logout_supported": true,
        "frontchannel_logout_supported": true,
        "end_session_endpoint": format!("{base}/{path_tenant}/oauth2/v2.0/logout"),
        "claims_supported": [
            "sub", "iss", "cloud_instance_name", "cloud_instance_host_name", "cloud_graph_host_name",
            "msgraph_host", "aud", "exp", "iat", "auth_time", "acr", "nonce", "preferred_username",
            "name", "tid", "ver", "at_hash", "c_hash", "email"
        ],
        "kerberos_endpoint": format!("{base}/{path_tenant}/kerberos"),
        "tenant_region_scope": null,
        "cloud_instance_name": "microsoftonline.com",
        "cloud_graph_host_name": "graph.windows.net",
        "msgraph_host": "graph.microsoft.com",
        "rbac_url": "https://pas.windows.net",
    }))
    .into_response()
}

pub(crate) async fn openid_configuration_v1(
    State(state): State<Arc<AppState>>,
    Path(segment): Path<String>,
    Extension(ids): Extension<RequestIds>,
) -> Response {
    let Some((path_tenant, issuer_tenant)) = document_tenants(&state, &segment) else {
        return tenant_not_found(&segment, ids);
    };
    let base = &state.base_url;
    Json(json!({
        "token_endpoint": format!("{base}/{path_tenant}/oauth2/token"),
        "token_endpoint_auth_methods_supported":
            ["client_secret_post", "private_key_jwt", "client_secret_basic"],
        "jwks_uri": format!("{base}/common/discovery/keys"),
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "response_types_supported": ["code", "id_token", "code id_token", "token id_token", "token"],
        "scopes_supported": ["openid"],
        "issuer": format!("https://sts.windows.net/{issuer_tenant}/"),
        "microsoft_multi_refresh_token": true,
        "authorization_endpoint": format!("{base}/{path_tenant}/oauth2/authorize"),
        "device_authorization_endpoint": format!("{base}/{path_tenant}/oauth2/devicecode"),
        "http_logout_supported": true,
        "frontchannel_logout_supported": true,
        "end_session_endpoint": format!("{base}/{path_tenant}/oauth2/logout"),
        "claims_supported": [
            "sub", "iss", "cloud_instance_name", "cloud_instance_host_name", "cloud_graph_host_name",
            "msgraph_host", "aud", "exp", "iat", "auth_time", "acr", "amr", "nonce", "email",
            "given_name", "family_name", "nickname"
        ],
        "check_session_iframe": format!("{base}/{path_tenant}/oauth2/checksession"),
        "userinfo_endpoint": format!("{base}/{path_tenant}/openid/userinfo"),
        "kerberos_endpoint": format!("{base}/{path_tenant}/kerberos"),
        "tenant_region_scope": null,
        "cloud_instance_name": "microsoftonline.com",
        "cloud_graph_host_name": "graph.windows.net",
        "msgraph_host": "graph.microsoft.com",
        "rbac_url": "https://pas.windows.net",
    }))
    .into_response()
}

pub(crate) async fn keys_v2(
    State(state): State<Arc<AppState>>,
    Path(segment): Path<String>,
    Extension(ids): Extension<RequestIds>,
) -> Response {
    let issuer = match resolve(&state, &segment) {
        Some(Resolved::Tenant(id)) => format!("{}/{id}/v2.0", state.base_url),
        Some(Resolved::Multi(_)) => format!("{}/{{tenantid}}/v2.0", state.base_url),
        None => return tenant_not_found(&segment, ids),
    };
    Json(json!({ "keys": [state.signing.jwk(Some(&issuer))] })).into_response()
}

pub(crate) async fn keys_v1(
    State(state): State<Arc<AppState>>,
    Path(segment): Path<String>,
    Extension(ids): Extension<RequestIds>,
) -> Response {
    if resolve(&state, &segment).is_none() {
        return tenant_not_found(&segment, ids);
    }
    Json(json!({ "keys": [state.signing.jwk(None)] })).into_response()
}

/// The `host[:port]` part of an absolute URL.
fn authority_of(url: &str) -> Option<&str> {
    let rest = url.split_once("://")?.1;
    Some(rest.split(['/', '?', '#']).next().unwrap_or(rest))
}

pub(crate) async fn instance(
    State(state): State<Arc<AppState>>,
    Path(segment): Path<String>,
    Extension(ids): Extension<RequestIds>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    if !segment.eq_ignore_ascii_case("common") {
        return StatusCode::NOT_FOUND.into_response();
    }
    let own = authority_of(&state.base_url).unwrap_or_default().to_owned();
    let requested = query.get("authorization_endpoint").map(String::as_str);
    let tenant = match requested {
        Some(url) => {
            let host_matches = authority_of(url).is_some_and(|host| is_own_host(host, &own));
            if !host_matches {
                let context = RequestContext::new(ids);
                return AadError::unknown_instance().into_response(&context);
            }
            url.split_once("://")
                .and_then(|(_, rest)| rest.split('/').nth(1))
                .filter(|tenant| !tenant.is_empty())
                .unwrap_or("common")
                .to_owned()
        }
        None => "common".to_owned(),
    };
    Json(json!({
        "tenant_discovery_endpoint":
            format!("{}/{tenant}/v2.0/.well-known/openid-configuration", state.base_url),
        "api-version": "1.1",
        "metadata": [{
            "preferred_network": own,
            "preferred_cache": own,
            "aliases": [own],
        }],
    }))
    .into_response()
}

/// Whether `host` (`host[:port]`) names this emulator: its own host and port, or its host
/// without the port, as MSAL writes an authority it normalized (127.0.0.1 and localhost
/// alike).
fn is_own_host(host: &str, own: &str) -> bool {
    let strip = |text: &str| -> String {
        let lower = text.to_ascii_lowercase();
        let bare = match lower.rsplit_once(':') {
            Some((name, port)) if port.chars().all(|c| c.is_ascii_digit()) => name.to_owned(),
            _ => lower,
        };
        if bare == "localhost" {
            "127.0.0.1".to_owned()
        } else {
            bare
        }
    };
    let same_port = match (host.rsplit_once(':'), own.rsplit_once(':')) {
        (Some((_, port)), Some((_, own_port))) => port == own_port,
        // No port: the authority as MSAL normalized it.
        (None, _) => true,
        (Some(_), None) => false,
    };
    same_port && strip(host) == strip(own)
}

/// Serves `/common/userrealm/{upn}` in any letter case (MSAL Go writes `UserRealm`), which a
/// route pattern cannot express; everything else is a plain 404.
pub(crate) async fn user_realm_fallback(
    State(state): State<Arc<AppState>>,
    request: Request,
) -> Response {
    const PREFIX: &str = "/common/userrealm/";
    let path = request.uri().path();
    let is_realm = path.len() > PREFIX.len()
        && path.is_char_boundary(PREFIX.len())
        && path[..PREFIX.len()].eq_ignore_ascii_case(PREFIX);
    if request.method() != axum::http::Method::GET || !is_realm {
        return StatusCode::NOT_FOUND.into_response();
    }
    let raw = &path[PREFIX.len()..];
    let upn = percent_decode(raw);
    let realm = user_realm(&state, &upn);
    ([(header::CACHE_CONTROL, "no-store, no-cache")], Json(realm)).into_response()
}

fn user_realm(state: &AppState, upn: &str) -> Value {
    let directory = state.directory();
    let domain = upn.rsplit_once('@').map_or("", |(_, domain)| domain);
    let Some(tenant) = directory.tenant(domain) else {
        return json!({
            "ver": "1.0",
            "account_type": "Unknown",
            "cloud_instance_name": "microsoftonline.com",
        });
    };
    let federated = tenant.user(upn).is_some_and(|user| user.federated);
    let mut realm = json!({
        "ver": "1.0",
        "account_type": if federated { "Federated" } else { "Managed" },
        "domain_name": tenant.domain,
        "cloud_instance_name": "microsoftonline.com",
        "cloud_audience_urn": "urn:federation:MicrosoftOnline",
    });
    if federated {
        let base = &state.base_url;
        realm["federation_protocol"] = json!("WSTrust");
        realm["federation_metadata_url"] = json!(format!("{base}/adfs/services/trust/mex"));
        realm["federation_active_auth_url"] =
            json!(format!("{base}/adfs/services/trust/2005/usernamemixed"));
    }
    realm
}

/// Minimal `%XX` decoding for a path segment (a UPN's `@` may arrive as `%40`).
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        let hex = |b: u8| char::from(b).to_digit(16);
        if bytes[index] == b'%'
            && let (Some(hi), Some(lo)) = (
                bytes.get(index + 1).copied().and_then(hex),
                bytes.get(index + 2).copied().and_then(hex),
            )
        {
            out.push(u8::try_from(hi * 16 + lo).unwrap_or(b'?'));
            index += 3;
            continue;
        }
        out.push(bytes[index]);
        index += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_decoding_handles_the_at_sign_and_stray_percent() {
        assert_eq!(percent_decode("a%40b.com"), "a@b.com");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("plain"), "plain");
    }

    #[test]
    fn the_own_host_is_recognized_with_or_without_its_port() {
        let own = "127.0.0.1:8443";
        for host in ["127.0.0.1:8443", "127.0.0.1", "localhost:8443", "LOCALHOST"] {
            assert!(is_own_host(host, own), "{host}");
        }
        for host in ["127.0.0.1:9999", "login.microsoftonline.com", "10.0.0.1"] {
            assert!(!is_own_host(host, own), "{host}");
        }
    }

    #[test]
    fn authority_is_host_and_port() {
        assert_eq!(
            authority_of("https://127.0.0.1:8443/t/oauth2"),
            Some("127.0.0.1:8443")
        );
        assert_eq!(authority_of("nonsense"), None);
    }
}
