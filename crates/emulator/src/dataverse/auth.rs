//! Authentication as Dataverse does it: a bearer token issued by this emulator's Entra half
//! for the organization URL (the emulator's base URL) and the organization's tenant. Anything
//! else gets 401 with the `WWW-Authenticate` challenge clients discover the authority from.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::DvState;
use super::org::Principal;
use super::windows::Answer;
use crate::on_premises::OnPremises;
use crate::server::ConnectionId;
use crate::validation::{TokenRejection, TokenValidator, TokenVersion, ValidatedToken};

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

fn challenge(state: &DvState, message: Option<String>) -> Response {
    let mut response = match message {
        // A token for another organization: say so, as Dataverse does, beside the challenge.
        Some(message) => super::errors::ApiError::new(StatusCode::UNAUTHORIZED, "", message)
            .into_response()
            .into_http(),
        None => StatusCode::UNAUTHORIZED.into_response(),
    };
    if let Ok(value) = HeaderValue::from_str(&organization_challenge(state)) {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, value);
    }
    // IIS lists its Windows schemes after the Bearer challenge, each on a line of its own.
    if takes_windows_sign_in(state) {
        for scheme in ["Negotiate", "NTLM"] {
            response
                .headers_mut()
                .append(header::WWW_AUTHENTICATE, HeaderValue::from_static(scheme));
        }
    }
    response
}

fn takes_windows_sign_in(state: &DvState) -> bool {
    state
        .app
        .on_premises
        .as_ref()
        .is_some_and(OnPremises::takes_windows_sign_in)
}

/// The Windows scheme and token of an `Authorization` header, if it is one.
fn windows_authorization(headers: &HeaderMap) -> Option<(&str, &str)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, token) = value.split_once(' ')?;
    (scheme.eq_ignore_ascii_case("ntlm") || scheme.eq_ignore_ascii_case("negotiate"))
        .then_some((scheme, token))
}

/// Windows sign-in on-premises: the NTLM handshake on this connection, or the account
/// the connection signed in as. `None` when the request uses neither.
fn windows_identity(
    state: &DvState,
    headers: &HeaderMap,
    connection: Option<ConnectionId>,
) -> Option<Result<Identity, Box<Response>>> {
    if !takes_windows_sign_in(state) {
        return None;
    }
    let connection = connection?.0;
    let user = match windows_authorization(headers) {
        Some((scheme, token)) => {
            let domain = state
                .app
                .on_premises
                .as_ref()
                .map_or("CONTOSO", OnPremises::domain_name)
                .to_owned();
            let answer = state
                .windows
                .answer(connection, token, &state.app.directory(), &domain);
            match answer {
                Answer::Challenge(challenge) => {
                    let mut response = StatusCode::UNAUTHORIZED.into_response();
                    if let Ok(value) = HeaderValue::from_str(&format!("{scheme} {challenge}")) {
                        response
                            .headers_mut()
                            .insert(header::WWW_AUTHENTICATE, value);
                    }
                    return Some(Err(Box::new(response)));
                }
                Answer::Refused(why) => {
                    tracing::debug!(why, "Windows sign-in refused");
                    return Some(Err(Box::new(challenge(state, None))));
                }
                Answer::SignedIn(user) => user,
            }
        }
        None if headers.get(header::AUTHORIZATION).is_none() => {
            state.windows.connection_user(connection)?
        }
        None => return None,
    };
    Some(Ok(Identity {
        principal: Principal::User {
            object_id: user.object_id.clone(),
        },
        limit_keys: vec![
            user.object_id.to_ascii_lowercase(),
            user.upn.to_ascii_lowercase(),
        ],
    }))
}

/// Authenticates a request: its bearer token, or on-premises its Windows sign-in on
/// `connection`.
pub(crate) fn authenticate(
    state: &DvState,
    headers: &HeaderMap,
    connection: Option<ConnectionId>,
) -> Result<Identity, Box<Response>> {
    if let Some(outcome) = windows_identity(state, headers, connection) {
        return outcome;
    }
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
    );
    let validator = if state.app.on_premises.is_some() {
        validator.adfs(OnPremises::access_token_issuer(state.base_url()))
    } else {
        validator.require_tenant(state.tenant_id.clone())
    };
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
    if validated.version() == TokenVersion::Adfs {
        return adfs_identity(state, &validated);
    }
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

/// The caller of an AD FS token: a user by `upn` (as Dynamics 365 on-premises maps users),
/// or, without one, the application by `appid`.
fn adfs_identity(state: &DvState, validated: &ValidatedToken) -> Result<Identity, Option<String>> {
    let Some(upn) = validated.user_principal_name() else {
        let client_id = validated.client_id().ok_or(None)?;
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
        .ok_or(None)?;
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
