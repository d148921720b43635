//! `POST /{tenant}/oauth2/token` (v1, `resource=`) and `POST /{tenant}/oauth2/v2.0/token`
//! (v2, `scope=`): request parsing, the checks in Entra's order, and the grants
//! (`client_credentials`, `password`, `refresh_token`, `authorization_code` — redeemed in
//! `authorization_code.rs` — and on v2 the device code grant, whose redemption is in
//! `device_code.rs`).

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Extension, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse as _, Response};
use secrecy::ExposeSecret as _;
use serde_json::Value;

use super::authorization_code;
use super::client_auth::{self, BasicCredentials, ClientRequest};
use super::device_code;
use super::error::AadError;
use super::mint::{self, Caller, Delegation, Endpoint, Times};
use super::{RequestContext, RequestIds};
use crate::directory::{Directory, Tenant, secrets_equal};
use crate::state::AppState;

pub(crate) async fn token_v1(
    State(state): State<Arc<AppState>>,
    Path(segment): Path<String>,
    Extension(ids): Extension<RequestIds>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    handle(Endpoint::V1, &state, &segment, ids, &headers, &body)
}

pub(crate) async fn token_v2(
    State(state): State<Arc<AppState>>,
    Path(segment): Path<String>,
    Extension(ids): Extension<RequestIds>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    handle(Endpoint::V2, &state, &segment, ids, &headers, &body)
}

fn handle(
    endpoint: Endpoint,
    state: &AppState,
    segment: &str,
    ids: RequestIds,
    headers: &HeaderMap,
    body: &[u8],
) -> Response {
    let context = RequestContext::new(ids);
    count(state, headers, body);
    json_answer(
        issue(endpoint, state, segment, headers, body, &context),
        &context,
    )
}

/// Counts a token request by the client it names (form or Basic credentials), for the
/// admin API's statistics.
pub(crate) fn count(state: &AppState, headers: &HeaderMap, body: &[u8]) {
    let from_form = Form::parse(body)
        .ok()
        .and_then(|form| form.get("client_id").map(str::to_owned));
    let from_basic = || {
        client_auth::basic_credentials(headers)
            .ok()
            .flatten()
            .map(|basic| basic.client_id)
    };
    state.count_token_request(from_form.or_else(from_basic).as_deref());
}

/// A token-endpoint style answer: the JSON or the Entra error, never cached.
pub(crate) fn json_answer(outcome: Result<Value, AadError>, context: &RequestContext) -> Response {
    let mut response = match outcome {
        Ok(json) => (StatusCode::OK, axum::Json(json)).into_response(),
        Err(error) => error.into_response(context),
    };
    let headers = response.headers_mut();
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-store, no-cache"),
    );
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    response
}

/// The form body; empty values count as absent, as they do for Entra.
pub(crate) struct Form(HashMap<String, String>);

impl Form {
    pub(crate) fn parse(body: &[u8]) -> Result<Self, AadError> {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(body)
            .map_err(|_| AadError::missing_parameter("grant_type"))?;
        Ok(Self::from_pairs(pairs))
    }

    /// A URL query (`a=1&b=2`, no `?`) read the same way; `None` when it is not
    /// form-urlencoded.
    pub(crate) fn parse_query(query: &str) -> Option<Self> {
        serde_urlencoded::from_str::<Vec<(String, String)>>(query)
            .ok()
            .map(Self::from_pairs)
    }

    /// The first value of each name wins.
    fn from_pairs(pairs: Vec<(String, String)>) -> Self {
        let mut map = HashMap::new();
        for (key, value) in pairs {
            map.entry(key).or_insert(value);
        }
        Self(map)
    }

    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.0
            .get(name)
            .map(String::as_str)
            .filter(|value| !value.is_empty())
    }

    pub(crate) fn require(&self, name: &str) -> Result<&str, AadError> {
        self.get(name)
            .ok_or_else(|| AadError::missing_parameter(name))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Grant {
    ClientCredentials,
    Password,
    RefreshToken,
    DeviceCode,
    AuthorizationCode,
}

/// The tenant path segment.
pub(crate) enum Segment<'a> {
    Named(&'a str),
    Organizations,
    /// `common` or `consumers`.
    Common(&'a str),
}

pub(crate) fn classify(segment: &str) -> Segment<'_> {
    if segment.eq_ignore_ascii_case("organizations") {
        Segment::Organizations
    } else if segment.eq_ignore_ascii_case("common") || segment.eq_ignore_ascii_case("consumers") {
        Segment::Common(segment)
    } else {
        Segment::Named(segment)
    }
}

fn endpoint_path(endpoint: Endpoint) -> &'static str {
    match endpoint {
        Endpoint::V1 | Endpoint::Adfs => "oauth2/token",
        Endpoint::V2 => "oauth2/v2.0/token",
    }
}

/// The token endpoint URLs a client assertion may name in `aud`: the URL actually posted to
/// (by the emulator's base URL and by the `Host` the client used), in the path form used and
/// in tenant-GUID form.
fn assertion_audiences(
    state: &AppState,
    endpoint: Endpoint,
    segment: &str,
    tenant_id: &str,
    headers: &HeaderMap,
) -> Vec<String> {
    let path = endpoint_path(endpoint);
    // AD FS names its token endpoint `{base}/adfs/oauth2/token` (with or without the
    // trailing slash, compared without it).
    let segment = if endpoint == Endpoint::Adfs {
        "adfs"
    } else {
        segment
    };
    let mut bases = vec![state.base_url.clone()];
    if let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) {
        let scheme = state.base_url.split("://").next().unwrap_or("http");
        bases.push(format!("{scheme}://{host}"));
    }
    let mut audiences = Vec::new();
    for base in &bases {
        audiences.push(format!("{base}/{segment}/{path}"));
        audiences.push(format!("{base}/{tenant_id}/{path}"));
    }
    audiences
}

pub(crate) fn issue(
    endpoint: Endpoint,
    state: &AppState,
    segment: &str,
    headers: &HeaderMap,
    body: &[u8],
    context: &RequestContext,
) -> Result<Value, AadError> {
    let directory = state.directory();
    let kind = classify(segment);
    if let Segment::Named(name) = kind
        && directory.tenant(name).is_none()
    {
        return Err(AadError::tenant_not_found(name));
    }
    let form = Form::parse(body)?;
    let grant = match form.require("grant_type")? {
        "client_credentials" => Grant::ClientCredentials,
        "password" => Grant::Password,
        "refresh_token" => Grant::RefreshToken,
        authorization_code::GRANT_TYPE => Grant::AuthorizationCode,
        device_code::GRANT_TYPE if endpoint == Endpoint::Adfs => {
            return Err(AadError::unsupported_grant_type(device_code::GRANT_TYPE));
        }
        device_code::GRANT_TYPE => Grant::DeviceCode,
        // ADAL's v1 spelling.
        "device_code" if endpoint == Endpoint::V1 => Grant::DeviceCode,
        other => return Err(AadError::unsupported_grant_type(other)),
    };
    if endpoint == Endpoint::V2 && form.get("resource").is_some() {
        return Err(AadError::resource_on_v2());
    }
    if let Segment::Common(name) = kind
        && grant == Grant::Password
    {
        return Err(AadError::grant_on_common(name));
    }
    let basic = client_auth::basic_credentials(headers)?;
    let client_id = form
        .get("client_id")
        .or(basic.as_ref().map(|b| b.client_id.as_str()))
        .filter(|id| !id.is_empty())
        .ok_or_else(|| AadError::missing_parameter("client_id"))?;
    let tenant = resolve_tenant(&directory, kind, grant, client_id)?;
    let app = tenant
        .app(client_id)
        .ok_or_else(|| AadError::app_not_found(client_id, &tenant.id))?;

    let now = context.now.unix_timestamp();
    let client = ClientRequest {
        app,
        secret: form
            .get("client_secret")
            .or(basic.as_ref().map(|b: &BasicCredentials| b.secret.as_str())),
        assertion: form.get("client_assertion"),
        assertion_type: form.get("client_assertion_type"),
        client_credentials_grant: grant == Grant::ClientCredentials,
        rs256_only: endpoint == Endpoint::Adfs,
        audiences: assertion_audiences(state, endpoint, segment, &tenant.id, headers),
        now,
    };
    let auth = client_auth::authenticate(state, &client)?;
    let caller = Caller { tenant, app, auth };
    let times = Times {
        now,
        lifetime: state.settings().token_lifetime_secs,
    };
    match grant {
        Grant::ClientCredentials => client_credentials(state, endpoint, caller, &form, times),
        Grant::Password => password(state, endpoint, caller, &form, times),
        Grant::RefreshToken => refresh(state, endpoint, caller, &form, times),
        Grant::AuthorizationCode => {
            authorization_code::redeem(state, endpoint, caller, &form, times)
        }
        Grant::DeviceCode => {
            let client_info = form.get("client_info") == Some("1");
            let presented = match endpoint {
                Endpoint::V1 => form
                    .get("code")
                    .map_or_else(|| form.require("device_code"), Ok)?,
                Endpoint::V2 | Endpoint::Adfs => form.require("device_code")?,
            };
            device_code::redeem(state, endpoint, caller, presented, client_info, times)
        }
    }
}

fn resolve_tenant<'d>(
    directory: &'d Directory,
    kind: Segment<'_>,
    grant: Grant,
    client_id: &str,
) -> Result<&'d Tenant, AadError> {
    match kind {
        Segment::Named(name) => directory
            .tenant(name)
            .ok_or_else(|| AadError::tenant_not_found(name)),
        Segment::Common(_) if grant == Grant::ClientCredentials => {
            Err(AadError::no_tenant_information())
        }
        Segment::Organizations | Segment::Common(_) => directory
            .tenant_of_app(client_id)
            .ok_or_else(|| AadError::app_not_found(client_id, "organizations")),
    }
}

fn client_credentials(
    state: &AppState,
    endpoint: Endpoint,
    caller: Caller<'_>,
    form: &Form,
    times: Times,
) -> Result<Value, AadError> {
    let resource = match endpoint {
        Endpoint::V1 => form.require("resource")?.to_owned(),
        Endpoint::Adfs => adfs_resource(state, form)?,
        Endpoint::V2 => {
            let scope = form.require("scope")?;
            let scopes: Vec<&str> = scope.split_whitespace().collect();
            match scopes.as_slice() {
                [only] if only.len() > "/.default".len() && only.ends_with("/.default") => {
                    only[..only.len() - "/.default".len()].to_owned()
                }
                _ => return Err(AadError::scope_without_default(scope)),
            }
        }
    };
    check_resource(state, caller, &resource)?;
    mint::app_only(state, endpoint, caller, &resource, times)
}

/// Refuses a token for a resource the emulator does not know (AADSTS500011): tokens are
/// issued for the registered organizations (and Microsoft Graph) only.
pub(crate) fn check_resource(
    state: &AppState,
    caller: Caller<'_>,
    resource: &str,
) -> Result<(), AadError> {
    if state.is_known_resource(resource) {
        Ok(())
    } else {
        Err(AadError::resource_not_found(
            resource,
            &caller.tenant.display_name,
        ))
    }
}

/// Splits a v2 `scope` into one resource, its permissions and the OpenID Connect flags.
pub(crate) fn parse_delegated_scope(
    scope: &str,
    client_info: bool,
) -> Result<Delegation, AadError> {
    let mut delegation = Delegation {
        resource: String::new(),
        permissions: Vec::new(),
        openid: false,
        profile: false,
        offline_access: false,
        client_info,
        nonce: None,
    };
    let mut resource: Option<String> = None;
    for item in scope.split_whitespace() {
        match item.to_ascii_lowercase().as_str() {
            "openid" => delegation.openid = true,
            "profile" => delegation.profile = true,
            "offline_access" => delegation.offline_access = true,
            "email" => {}
            _ => {
                // `https://org.crm.dynamics.com/user_impersonation`; a bare name such as
                // `User.Read` belongs to Microsoft Graph.
                let (item_resource, permission) = match item.rsplit_once('/') {
                    Some((res, permission)) if res.contains("://") || res.starts_with("api:") => {
                        (res.trim_end_matches('/').to_owned(), permission)
                    }
                    _ => ("https://graph.microsoft.com".to_owned(), item),
                };
                if permission.is_empty() {
                    return Err(AadError::invalid_scope(
                        item,
                        "The permission name is empty.",
                    ));
                }
                match &resource {
                    Some(existing) if !existing.eq_ignore_ascii_case(&item_resource) => {
                        return Err(AadError::multiple_resources());
                    }
                    Some(_) => {}
                    None => resource = Some(item_resource),
                }
                // `.default` stands for everything consented; for Dataverse that is
                // `user_impersonation`.
                let permission = if permission == ".default" {
                    "user_impersonation"
                } else {
                    permission
                };
                if !delegation.permissions.iter().any(|p| p == permission) {
                    delegation.permissions.push(permission.to_owned());
                }
            }
        }
    }
    delegation.resource = resource.ok_or_else(|| {
        AadError::invalid_scope(scope, "The request names no resource to issue a token for.")
    })?;
    Ok(delegation)
}

/// The relying party an AD FS request names: its `resource` (without one AD FS issues a
/// token for its own `urn:microsoft:userinfo`), which must be the organization's.
fn adfs_resource(state: &AppState, form: &Form) -> Result<String, AadError> {
    let Some(resource) = form.get("resource") else {
        return Ok("urn:microsoft:userinfo".to_owned());
    };
    let relying_party = |url: &str| url.trim_end_matches('/').to_ascii_lowercase();
    if relying_party(resource) == relying_party(&state.base_url) {
        Ok(resource.to_owned())
    } else {
        Err(AadError::adfs_unknown_resource(resource))
    }
}

fn delegation_for(
    state: &AppState,
    endpoint: Endpoint,
    form: &Form,
) -> Result<Delegation, AadError> {
    let client_info = form.get("client_info") == Some("1");
    match endpoint {
        Endpoint::Adfs => Ok(Delegation {
            resource: adfs_resource(state, form)?,
            permissions: vec!["user_impersonation".to_owned()],
            openid: form
                .get("scope")
                .unwrap_or_default()
                .split_whitespace()
                .any(|scope| scope == "openid"),
            profile: false,
            offline_access: true,
            client_info: false,
            nonce: None,
        }),
        Endpoint::V1 => {
            let resource = form.require("resource")?;
            let oidc = form.get("scope").unwrap_or_default();
            Ok(Delegation {
                resource: resource.to_owned(),
                permissions: vec!["user_impersonation".to_owned()],
                openid: oidc.split_whitespace().any(|s| s == "openid"),
                profile: false,
                offline_access: true,
                client_info,
                nonce: None,
            })
        }
        Endpoint::V2 => parse_delegated_scope(form.require("scope")?, client_info),
    }
}

/// The UPN an AD FS user name stands for: `DOMAIN\\user` (the emulated domain, any case)
/// is the tenant user whose UPN starts with `user@`; a UPN is itself.
fn adfs_user_name(state: &AppState, tenant: &Tenant, username: &str) -> String {
    let Some((domain, account)) = username.split_once('\\') else {
        return username.to_owned();
    };
    let ours = state
        .on_premises
        .as_ref()
        .is_some_and(|on_premises| on_premises.domain_name().eq_ignore_ascii_case(domain));
    match tenant.user_by_account(account) {
        Some(user) if ours => user.upn.clone(),
        _ => username.to_owned(),
    }
}

/// An identifier for the Conditional Access policy named in an MFA claims challenge.
const MFA_POLICY_ID: &str = "d3650000-cafe-4000-8000-000000000050";

fn password(
    state: &AppState,
    endpoint: Endpoint,
    caller: Caller<'_>,
    form: &Form,
    times: Times,
) -> Result<Value, AadError> {
    let username = form.require("username")?;
    let password = form.require("password")?;
    let delegation = delegation_for(state, endpoint, form)?;
    check_resource(state, caller, &delegation.resource)?;
    let username = if endpoint == Endpoint::Adfs {
        adfs_user_name(state, caller.tenant, username)
    } else {
        username.to_owned()
    };
    let user = caller
        .tenant
        .user(&username)
        .ok_or_else(|| AadError::user_not_found(&caller.tenant.domain))?;
    // Entra validates federated users' passwords at their own IdP, never in ROPC.
    if user.federated || !secrets_equal(user.password.expose_secret(), password) {
        return Err(AadError::bad_password());
    }
    if user.disabled {
        return Err(AadError::user_disabled());
    }
    if user.mfa_required {
        return Err(AadError::mfa_required(&delegation.resource, MFA_POLICY_ID));
    }
    mint::delegated(state, endpoint, caller, user, &delegation, times)
}

fn refresh(
    state: &AppState,
    endpoint: Endpoint,
    caller: Caller<'_>,
    form: &Form,
    times: Times,
) -> Result<Value, AadError> {
    let presented = form.require("refresh_token")?;
    let grant = state
        .refresh_tokens()
        .get(presented)
        .cloned()
        .filter(|grant| {
            grant.client_id.eq_ignore_ascii_case(&caller.app.client_id)
                && grant.tenant_id == caller.tenant.id
                && grant.expires_at > times.now
        })
        .ok_or_else(AadError::invalid_refresh_token)?;
    let user = caller
        .tenant
        .user_by_object_id(&grant.user_object_id)
        .ok_or_else(AadError::invalid_refresh_token)?;
    if user.disabled {
        return Err(AadError::user_disabled());
    }
    let client_info = form.get("client_info") == Some("1");
    let mut delegation = match (endpoint, form.get("scope"), form.get("resource")) {
        (Endpoint::V2, Some(scope), _) => parse_delegated_scope(scope, client_info)?,
        (Endpoint::V1 | Endpoint::Adfs, _, Some(resource)) => Delegation {
            resource: resource.to_owned(),
            permissions: vec!["user_impersonation".to_owned()],
            openid: false,
            profile: false,
            offline_access: true,
            client_info,
            nonce: None,
        },
        _ => Delegation {
            resource: grant.resource.clone(),
            permissions: grant.permissions.clone(),
            openid: false,
            profile: false,
            offline_access: true,
            client_info,
            nonce: None,
        },
    };
    // A refresh token keeps being renewed on refresh, whatever the new scope says.
    delegation.offline_access = true;
    check_resource(state, caller, &delegation.resource)?;
    mint::delegated(state, endpoint, caller, user, &delegation, times)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delegated_scopes_split_into_resource_and_flags() {
        let delegation = parse_delegated_scope(
            "https://org.crm.dynamics.com/user_impersonation offline_access openid profile",
            true,
        )
        .expect("valid");
        assert_eq!(delegation.resource, "https://org.crm.dynamics.com");
        assert_eq!(delegation.permissions, vec!["user_impersonation"]);
        assert!(delegation.openid && delegation.profile && delegation.offline_access);
    }

    #[test]
    fn default_scope_means_user_impersonation() {
        let delegation =
            parse_delegated_scope("https://org.crm.dynamics.com//.default", false).expect("valid");
        assert_eq!(delegation.resource, "https://org.crm.dynamics.com");
        assert_eq!(delegation.permissions, vec!["user_impersonation"]);
        assert!(!delegation.offline_access);
    }

    #[test]
    fn two_resources_are_refused() {
        let err = parse_delegated_scope("https://a.example/x https://b.example/y", false)
            .expect_err("two resources");
        assert_eq!(err.code, 700_022);
    }

    #[test]
    fn only_oidc_scopes_name_no_resource() {
        let err = parse_delegated_scope("openid profile", false).expect_err("no resource");
        assert_eq!(err.code, 70011);
    }
}
