//! Authentication as Dataverse does it: a bearer token issued by this emulator's Entra half
//! for the organization URL (the emulator's base URL) and the organization's tenant. Anything
//! else gets 401 with the `WWW-Authenticate` challenge clients discover the authority from.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::DvState;
use super::org::Principal;
use crate::on_premises::OnPremises;
use crate::validation::{TokenValidator, TokenVersion, ValidatedToken};

/// The caller a valid token stands for, and the keys its service protection limits go by.
#[derive(Debug, Clone)]
pub(crate) struct Identity {
    pub(crate) principal: Principal,
    pub(crate) limit_keys: Vec<String>,
}

/// `WWW-Authenticate: Bearer authorization_uri={base}/{tenant}/oauth2/authorize, resource_id={base}/`.
pub(crate) fn challenge_value(base_url: &str, tenant_id: &str) -> String {
    format!(
        "Bearer authorization_uri={base_url}/{tenant_id}/oauth2/authorize, resource_id={base_url}/"
    )
}

/// On-premises with AD FS:
/// `WWW-Authenticate: Bearer authorization_uri={base}/adfs/oauth2/authorize, resource_id={base}/`.
pub(crate) fn adfs_challenge_value(base_url: &str) -> String {
    format!("Bearer authorization_uri={base_url}/adfs/oauth2/authorize, resource_id={base_url}/")
}

/// The challenge this organization answers unauthenticated requests with.
pub(crate) fn organization_challenge(state: &DvState) -> String {
    if state.app.on_premises.is_some() {
        adfs_challenge_value(state.base_url())
    } else {
        challenge_value(state.base_url(), &state.tenant_id)
    }
}

fn challenge(state: &DvState) -> Response {
    let mut response = StatusCode::UNAUTHORIZED.into_response();
    if let Ok(value) = HeaderValue::from_str(&organization_challenge(state)) {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, value);
    }
    response
}

/// Validates the bearer token of a request.
pub(crate) fn authenticate(
    state: &DvState,
    headers: &HeaderMap,
) -> Result<Identity, Box<Response>> {
    identify(state, headers).map_err(|()| Box::new(challenge(state)))
}

fn identify(state: &DvState, headers: &HeaderMap) -> Result<Identity, ()> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, token) = v.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        })
        .filter(|t| !t.is_empty());
    let Some(token) = token else {
        return Err(());
    };
    let validator = TokenValidator::new(
        std::sync::Arc::clone(&state.app.signing),
        state.base_url().to_owned(),
    );
    let validator = if state.app.on_premises.is_some() {
        validator.adfs(OnPremises::access_token_issuer(state.base_url()))
    } else {
        validator.require_tenant(state.tenant_id.clone())
    };
    let validated = match validator.validate(token, state.base_url()) {
        Ok(validated) => validated,
        Err(rejection) => {
            tracing::debug!(%rejection, "Web API token refused");
            return Err(());
        }
    };
    if validated.version() == TokenVersion::Adfs {
        return adfs_identity(state, &validated);
    }
    if validated.is_app_only() {
        let Some(client_id) = validated.client_id() else {
            return Err(());
        };
        return Ok(Identity {
            principal: Principal::App {
                client_id: client_id.to_owned(),
            },
            limit_keys: vec![client_id.to_ascii_lowercase()],
        });
    }
    let Some(object_id) = validated.object_id() else {
        return Err(());
    };
    let mut limit_keys = vec![object_id.to_ascii_lowercase()];
    if let Some(upn) = validated.user_principal_name() {
        limit_keys.push(upn.to_ascii_lowercase());
    }
    Ok(Identity {
        principal: Principal::User {
            object_id: object_id.to_owned(),
        },
        limit_keys,
    })
}

/// The caller of an AD FS token: a user by `upn` (as Dynamics 365 on-premises maps users),
/// or, without one, the application by `appid`.
fn adfs_identity(state: &DvState, validated: &ValidatedToken) -> Result<Identity, ()> {
    let Some(upn) = validated.user_principal_name() else {
        let client_id = validated.client_id().ok_or(())?;
        return Ok(Identity {
            principal: Principal::App {
                client_id: client_id.to_owned(),
            },
            limit_keys: vec![client_id.to_ascii_lowercase()],
        });
    };
    let directory = state.app.directory();
    let user = directory
        .tenants
        .iter()
        .find_map(|tenant| tenant.user(upn))
        .ok_or(())?;
    Ok(Identity {
        principal: Principal::User {
            object_id: user.object_id.clone(),
        },
        limit_keys: vec![
            user.object_id.to_ascii_lowercase(),
            upn.to_ascii_lowercase(),
        ],
    })
}
