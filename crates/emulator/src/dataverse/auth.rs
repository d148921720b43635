//! Authentication as Dataverse does it: a bearer token issued by this emulator's Entra half
//! for the organization URL (the emulator's base URL) and the organization's tenant. Anything
//! else gets 401 with the `WWW-Authenticate` challenge clients discover the authority from.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::DvState;
use super::org::Principal;
use crate::validation::{TokenRejection, TokenValidator};

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

fn challenge(state: &DvState, message: Option<String>) -> Response {
    let mut response = match message {
        // A token for another organization: say so, as Dataverse does, beside the challenge.
        Some(message) => {
            super::errors::ApiError::new(StatusCode::UNAUTHORIZED, "", message)
                .into_response()
                .into_http()
        }
        None => StatusCode::UNAUTHORIZED.into_response(),
    };
    if let Ok(value) = HeaderValue::from_str(&challenge_value(state.base_url(), &state.tenant_id)) {
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
    identify(state, headers).map_err(|message| Box::new(challenge(state, message)))
}

/// The caller of a valid token; else the message a refusal carries (`None`: the bare
/// challenge, as for a missing or unreadable token).
fn identify(state: &DvState, headers: &HeaderMap) -> Result<Identity, Option<String>> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, token) = v.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        })
        .filter(|t| !t.is_empty());
    let Some(token) = token else {
        return Err(None);
    };
    let validator = TokenValidator::new(
        std::sync::Arc::clone(&state.app.signing),
        state.base_url().to_owned(),
    )
    .require_tenant(state.tenant_id.clone());
    let validated = match validator.validate(token, state.base_url()) {
        Ok(validated) => validated,
        Err(TokenRejection::InvalidAudience(audience)) => {
            tracing::debug!(%audience, "Web API token for another organization refused");
            return Err(Some(format!(
                "Bearer token audience '{audience}' is not valid for this organization '{}': request the token for the resource '{}/'.",
                state.base_url(),
                state.base_url()
            )));
        }
        Err(rejection) => {
            tracing::debug!(%rejection, "Web API token refused");
            return Err(None);
        }
    };
    if validated.is_app_only() {
        let Some(client_id) = validated.client_id() else {
            return Err(None);
        };
        return Ok(Identity {
            principal: Principal::App {
                client_id: client_id.to_owned(),
            },
            limit_keys: vec![client_id.to_ascii_lowercase()],
        });
    }
    let Some(object_id) = validated.object_id() else {
        return Err(None);
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
