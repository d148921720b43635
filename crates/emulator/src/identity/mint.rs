//! Building and signing tokens: access tokens with Entra's v1 or v2 claim set, v2 id tokens,
//! opaque refresh tokens, and the JSON token response in the version's exact field types.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, Header};
use serde_json::{Map, Value, json};
use sha2::Digest as _;
use uuid::Uuid;

use super::error::AadError;
use crate::directory::{App, ManagedIdentity, Tenant, User};
use crate::on_premises::OnPremises;
use crate::state::{AppState, RefreshGrant};

/// Which token endpoint a request came to; it decides the claim set and response field types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Endpoint {
    V1,
    V2,
    /// On-premises AD FS (`/adfs/oauth2/token`): v1 style (`resource=`), AD FS's claims and
    /// answer.
    Adfs,
}

/// How the client proved who it is: Entra's `appidacr`/`azpacr` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ClientAuth {
    Public,
    Secret,
    Certificate,
}

impl ClientAuth {
    fn acr(self) -> &'static str {
        match self {
            Self::Public => "0",
            Self::Secret => "1",
            Self::Certificate => "2",
        }
    }
}

/// The authenticated client a token is issued to.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Caller<'a> {
    pub(crate) tenant: &'a Tenant,
    pub(crate) app: &'a App,
    pub(crate) auth: ClientAuth,
}

/// Entra back-dates `iat`/`nbf` by five minutes to absorb clock skew between its servers and
/// the resource; the emulator copies that so clients meet the same numbers.
const BACKDATE_SECS: i64 = 300;
/// Refresh tokens of confidential and public clients live for 90 days.
const REFRESH_TOKEN_LIFETIME_SECS: i64 = 90 * 24 * 3600;
/// AD FS's refresh tokens live for eight hours by default.
const ADFS_REFRESH_TOKEN_LIFETIME_SECS: i64 = 8 * 3600;

#[derive(Debug, Clone, Copy)]
pub(crate) struct Times {
    pub(crate) now: i64,
    pub(crate) lifetime: u64,
}

impl Times {
    fn issued_at(self) -> i64 {
        self.now - BACKDATE_SECS
    }

    fn expires_at(self) -> i64 {
        self.now + i64::try_from(self.lifetime).unwrap_or(i64::MAX / 2)
    }
}

/// A random base64url string of `16 * chunks` random bytes.
pub(crate) fn random_string(chunks: usize) -> String {
    let bytes: Vec<u8> = (0..chunks)
        .flat_map(|_| Uuid::new_v4().into_bytes())
        .collect();
    URL_SAFE_NO_PAD.encode(bytes)
}

fn sign(state: &AppState, claims: &Value) -> Result<String, AadError> {
    let mut header = Header::new(Algorithm::RS256);
    header.typ = Some("JWT".to_owned());
    header.kid = Some(state.signing.kid.clone());
    header.x5t = Some(state.signing.kid.clone());
    jsonwebtoken::encode(&header, claims, &state.signing.encoding)
        .map_err(|err| AadError::server_error(&err.to_string()))
}

fn issuer(state: &AppState, endpoint: Endpoint, tenant_id: &str) -> String {
    match endpoint {
        Endpoint::V1 => format!("https://sts.windows.net/{tenant_id}/"),
        Endpoint::V2 => format!("{}/{tenant_id}/v2.0", state.base_url),
        Endpoint::Adfs => OnPremises::access_token_issuer(&state.base_url),
    }
}

/// The `aud` of an access token: the resource without its trailing slash, as Entra emits it.
fn audience(resource: &str) -> String {
    resource.trim_end_matches('/').to_owned()
}

/// The claim set a token for `resource` carries: Dataverse's resource asks for v1 tokens, so
/// a token for an organization is v1-shaped whichever endpoint issued it; other resources
/// get the endpoint's version.
fn claims_version(state: &AppState, endpoint: Endpoint, resource: &str) -> Endpoint {
    // AD FS shapes its own tokens; Entra ID's Dataverse tokens are v1 from either endpoint.
    if endpoint != Endpoint::Adfs && state.is_organization(resource) {
        Endpoint::V1
    } else {
        endpoint
    }
}

fn common_claims(
    state: &AppState,
    endpoint: Endpoint,
    caller: Caller<'_>,
    resource: &str,
    times: Times,
) -> Map<String, Value> {
    let endpoint = claims_version(state, endpoint, resource);
    let Caller { tenant, app, auth } = caller;
    let mut claims = Map::new();
    if endpoint == Endpoint::Adfs {
        return adfs_claims(state, caller, resource, times);
    }
    claims.insert("aud".into(), json!(audience(resource)));
    claims.insert("iss".into(), json!(issuer(state, endpoint, &tenant.id)));
    claims.insert("iat".into(), json!(times.issued_at()));
    claims.insert("nbf".into(), json!(times.issued_at()));
    claims.insert("exp".into(), json!(times.expires_at()));
    claims.insert("aio".into(), json!(random_string(3)));
    match endpoint {
        Endpoint::V1 => {
            claims.insert("appid".into(), json!(app.client_id));
            claims.insert("appidacr".into(), json!(auth.acr()));
            claims.insert(
                "idp".into(),
                json!(format!("https://sts.windows.net/{}/", tenant.id)),
            );
        }
        Endpoint::V2 | Endpoint::Adfs => {
            claims.insert("azp".into(), json!(app.client_id));
            claims.insert("azpacr".into(), json!(auth.acr()));
        }
    }
    claims.insert("rh".into(), json!(format!("0.{}", random_string(2))));
    claims.insert("tid".into(), json!(tenant.id));
    claims.insert("uti".into(), json!(random_string(1)));
    claims.insert(
        "ver".into(),
        json!(match endpoint {
            Endpoint::V1 | Endpoint::Adfs => "1.0",
            Endpoint::V2 => "2.0",
        }),
    );
    claims
}

/// The claims AD FS puts in every access token: `aud` the resource exactly as asked (with its
/// trailing slash), its own issuer, `appid` and `apptype`, how the caller signed in, `ver`
/// 1.0 — and no `tid`, `oid` or `roles`.
fn adfs_claims(
    state: &AppState,
    caller: Caller<'_>,
    resource: &str,
    times: Times,
) -> Map<String, Value> {
    let Caller { app, auth, .. } = caller;
    let mut claims = Map::new();
    claims.insert("aud".into(), json!(resource));
    claims.insert("iss".into(), json!(issuer(state, Endpoint::Adfs, "")));
    claims.insert("iat".into(), json!(times.issued_at()));
    claims.insert("nbf".into(), json!(times.issued_at()));
    claims.insert("exp".into(), json!(times.expires_at()));
    claims.insert("appid".into(), json!(app.client_id));
    claims.insert(
        "apptype".into(),
        json!(if auth == ClientAuth::Public {
            "Public"
        } else {
            "Confidential"
        }),
    );
    claims.insert(
        "authmethod".into(),
        json!(match auth {
            ClientAuth::Public =>
                "http://schemas.microsoft.com/ws/2008/06/identity/authenticationmethod/password",
            ClientAuth::Secret | ClientAuth::Certificate =>
                "http://schemas.microsoft.com/ws/2008/06/identity/authenticationmethod/tlsclient",
        }),
    );
    let auth_time = time::OffsetDateTime::from_unix_timestamp(times.now)
        .ok()
        .and_then(|at| {
            at.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default();
    claims.insert("auth_time".into(), json!(auth_time));
    claims.insert("ver".into(), json!("1.0"));
    claims
}

/// The token response body with the field types of the endpoint version: v1 sends every
/// number as a string and echoes `resource`, v2 sends numbers.
fn response_body(
    endpoint: Endpoint,
    access_token: String,
    times: Times,
    resource: &str,
) -> Map<String, Value> {
    let mut body = Map::new();
    if endpoint == Endpoint::Adfs {
        // AD FS: `bearer` in lower case, `expires_in` a number, nothing else.
        body.insert("access_token".into(), json!(access_token));
        body.insert("token_type".into(), json!("bearer"));
        body.insert("expires_in".into(), json!(times.lifetime));
        return body;
    }
    body.insert("token_type".into(), json!("Bearer"));
    match endpoint {
        Endpoint::V1 => {
            body.insert("expires_in".into(), json!(times.lifetime.to_string()));
            body.insert("ext_expires_in".into(), json!(times.lifetime.to_string()));
            body.insert("expires_on".into(), json!(times.expires_at().to_string()));
            body.insert("not_before".into(), json!(times.issued_at().to_string()));
            body.insert("resource".into(), json!(resource));
        }
        Endpoint::V2 | Endpoint::Adfs => {
            body.insert("expires_in".into(), json!(times.lifetime));
            body.insert("ext_expires_in".into(), json!(times.lifetime));
            // Entra adds a refresh hint to long-lived tokens only.
            if times.lifetime >= 7200 {
                body.insert("refresh_in".into(), json!(times.lifetime / 2));
            }
        }
    }
    body.insert("access_token".into(), json!(access_token));
    body
}

/// Issues an app-only (client credentials) token.
pub(crate) fn app_only(
    state: &AppState,
    endpoint: Endpoint,
    caller: Caller<'_>,
    resource: &str,
    times: Times,
) -> Result<Value, AadError> {
    let claims = app_claims(state, endpoint, caller, resource, times);
    let token = sign(state, &Value::Object(claims))?;
    Ok(Value::Object(response_body(
        endpoint, token, times, resource,
    )))
}

fn app_claims(
    state: &AppState,
    endpoint: Endpoint,
    caller: Caller<'_>,
    resource: &str,
    times: Times,
) -> Map<String, Value> {
    let app = caller.app;
    let mut claims = common_claims(state, endpoint, caller, resource, times);
    if endpoint == Endpoint::Adfs {
        claims.insert("sub".into(), json!(app.client_id));
        return claims;
    }
    claims.insert("idtyp".into(), json!("app"));
    claims.insert("oid".into(), json!(app.service_principal_id));
    claims.insert("sub".into(), json!(app.service_principal_id));
    if !app.roles.is_empty() {
        claims.insert("roles".into(), json!(app.roles));
    }
    claims
}

/// Issues a managed identity's token, as IMDS does: a v1 app-only token (`appid` = its
/// client id, `oid` = its object id, `appidacr` 2, `xms_mirid` = its resource id) and the
/// v1 response body, every number a string.
pub(crate) fn managed_identity(
    state: &AppState,
    tenant: &Tenant,
    identity: &ManagedIdentity,
    resource: &str,
    times: Times,
) -> Result<Map<String, Value>, AadError> {
    let app = identity.as_app();
    let caller = Caller {
        tenant,
        app: &app,
        auth: ClientAuth::Certificate,
    };
    let mut claims = app_claims(state, Endpoint::V1, caller, resource, times);
    claims.insert("xms_mirid".into(), json!(identity.resource_id));
    let token = sign(state, &Value::Object(claims))?;
    Ok(response_body(Endpoint::V1, token, times, resource))
}

/// What a delegated (user) token is for.
#[derive(Debug, Clone)]
pub(crate) struct Delegation {
    pub(crate) resource: String,
    /// Permission names without the resource prefix, e.g. `user_impersonation`.
    pub(crate) permissions: Vec<String>,
    pub(crate) openid: bool,
    pub(crate) profile: bool,
    pub(crate) offline_access: bool,
    pub(crate) client_info: bool,
    /// The `nonce` of the authorization request, echoed in the ID token.
    pub(crate) nonce: Option<String>,
}

/// Entra's `sub` is pairwise: stable for one user and one app, different across apps.
fn pairwise_subject(user: &User, app: &App) -> String {
    let digest = sha2::Sha256::digest(format!("{}|{}", user.object_id, app.client_id));
    URL_SAFE_NO_PAD.encode(&digest[..32])[..43].to_owned()
}

/// Issues a delegated token (password, device code, authorization code or refresh grant),
/// with a refresh token and an ID token when due.
pub(crate) fn delegated(
    state: &AppState,
    endpoint: Endpoint,
    caller: Caller<'_>,
    user: &User,
    delegation: &Delegation,
    times: Times,
) -> Result<Value, AadError> {
    let Caller { tenant, app, .. } = caller;
    let resource = &delegation.resource;
    let mut claims = common_claims(state, endpoint, caller, resource, times);
    if endpoint == Endpoint::Adfs {
        let domain = state
            .on_premises
            .as_ref()
            .map_or("CONTOSO", OnPremises::domain_name);
        let account = user.upn.split('@').next().unwrap_or_default();
        claims.insert("upn".into(), json!(user.upn));
        claims.insert("unique_name".into(), json!(format!("{domain}\\{account}")));
        claims.insert("scp".into(), json!(delegation.permissions.join(" ")));
        claims.insert("sid".into(), json!(format!("S-1-5-21-{}", user.object_id)));
        let access_token = sign(state, &Value::Object(claims))?;
        let mut body = response_body(endpoint, access_token, times, resource);
        body.insert("scope".into(), json!(delegation.permissions.join(" ")));
        let refresh_token = format!("adfs.{}", random_string(4));
        state.refresh_tokens().insert(
            refresh_token.clone(),
            RefreshGrant {
                tenant_id: tenant.id.clone(),
                client_id: app.client_id.clone(),
                user_object_id: user.object_id.clone(),
                resource: delegation.resource.clone(),
                permissions: delegation.permissions.clone(),
                expires_at: times.now + ADFS_REFRESH_TOKEN_LIFETIME_SECS,
            },
        );
        body.insert("refresh_token".into(), json!(refresh_token));
        body.insert(
            "refresh_token_expires_in".into(),
            json!(ADFS_REFRESH_TOKEN_LIFETIME_SECS),
        );
        if delegation.openid {
            body.insert(
                "id_token".into(),
                json!(adfs_id_token(state, caller, user, delegation, times)?),
            );
        }
        return Ok(Value::Object(body));
    }
    if claims_version(state, endpoint, resource) == Endpoint::V1 {
        claims.insert("amr".into(), json!(["pwd"]));
        claims.insert("unique_name".into(), json!(user.upn));
        claims.insert("upn".into(), json!(user.upn));
        claims.insert("ipaddr".into(), json!("127.0.0.1"));
    } else {
        claims.insert("preferred_username".into(), json!(user.upn));
    }
    claims.insert("name".into(), json!(user.display_name));
    claims.insert("oid".into(), json!(user.object_id));
    claims.insert("scp".into(), json!(delegation.permissions.join(" ")));
    claims.insert("sub".into(), json!(pairwise_subject(user, app)));
    let access_token = sign(state, &Value::Object(claims))?;
    let mut body = response_body(endpoint, access_token, times, resource);

    let resource_prefix = audience(resource);
    let mut granted: Vec<String> = match endpoint {
        Endpoint::V1 | Endpoint::Adfs => delegation.permissions.clone(),
        Endpoint::V2 => delegation
            .permissions
            .iter()
            .map(|permission| format!("{resource_prefix}/{permission}"))
            .collect(),
    };
    if endpoint == Endpoint::V2 {
        for (flag, name) in [
            (delegation.openid, "openid"),
            (delegation.profile, "profile"),
            (delegation.offline_access, "offline_access"),
        ] {
            if flag {
                granted.push(name.to_owned());
            }
        }
    }
    body.insert("scope".into(), json!(granted.join(" ")));

    // v1 always hands out a refresh token for user flows; v2 only for `offline_access`.
    if endpoint == Endpoint::V1 || delegation.offline_access {
        let refresh_token = format!("1.{}", random_string(4));
        state.refresh_tokens().insert(
            refresh_token.clone(),
            RefreshGrant {
                tenant_id: tenant.id.clone(),
                client_id: app.client_id.clone(),
                user_object_id: user.object_id.clone(),
                resource: delegation.resource.clone(),
                permissions: delegation.permissions.clone(),
                expires_at: times.now + REFRESH_TOKEN_LIFETIME_SECS,
            },
        );
        body.insert("refresh_token".into(), json!(refresh_token));
    }
    if endpoint == Endpoint::V2 && delegation.openid {
        let mut id_claims = Map::new();
        id_claims.insert("aud".into(), json!(app.client_id));
        id_claims.insert("iss".into(), json!(issuer(state, Endpoint::V2, &tenant.id)));
        id_claims.insert("iat".into(), json!(times.issued_at()));
        id_claims.insert("nbf".into(), json!(times.issued_at()));
        id_claims.insert("exp".into(), json!(times.expires_at()));
        id_claims.insert("oid".into(), json!(user.object_id));
        id_claims.insert("sub".into(), json!(pairwise_subject(user, app)));
        id_claims.insert("tid".into(), json!(tenant.id));
        id_claims.insert("ver".into(), json!("2.0"));
        if let Some(nonce) = &delegation.nonce {
            id_claims.insert("nonce".into(), json!(nonce));
        }
        if delegation.profile {
            id_claims.insert("name".into(), json!(user.display_name));
            id_claims.insert("preferred_username".into(), json!(user.upn));
        }
        body.insert(
            "id_token".into(),
            json!(sign(state, &Value::Object(id_claims))?),
        );
    }
    if delegation.client_info {
        let info = json!({ "uid": user.object_id, "utid": tenant.id }).to_string();
        body.insert("client_info".into(), json!(URL_SAFE_NO_PAD.encode(info)));
    }
    Ok(Value::Object(body))
}

/// AD FS's ID token: `aud` the client, its issuer (`{base}/adfs`), `upn`, `unique_name`,
/// `auth_time` a number (unlike the access token's), and the `nonce` of the sign-in.
fn adfs_id_token(
    state: &AppState,
    caller: Caller<'_>,
    user: &User,
    delegation: &Delegation,
    times: Times,
) -> Result<String, AadError> {
    let mut claims = Map::new();
    claims.insert("aud".into(), json!(caller.app.client_id));
    claims.insert("iss".into(), json!(format!("{}/adfs", state.base_url)));
    claims.insert("iat".into(), json!(times.issued_at()));
    claims.insert("nbf".into(), json!(times.issued_at()));
    claims.insert("exp".into(), json!(times.expires_at()));
    claims.insert("auth_time".into(), json!(times.now));
    claims.insert("sub".into(), json!(pairwise_subject(user, caller.app)));
    claims.insert("upn".into(), json!(user.upn));
    claims.insert("unique_name".into(), json!(user.upn));
    claims.insert("ver".into(), json!("1.0"));
    if let Some(nonce) = &delegation.nonce {
        claims.insert("nonce".into(), json!(nonce));
    }
    sign(state, &Value::Object(claims))
}
