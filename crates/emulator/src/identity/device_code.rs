//! The device authorization grant (RFC 8628) as Entra ID serves it: the device
//! authorization endpoints (`POST /{tenant}/oauth2/v2.0/devicecode`, and v1's
//! `/{tenant}/oauth2/devicecode` with `resource=`, which v1 discovery advertises), the
//! redemption of a device code at the token endpoints (pending, `slow_down`, declined,
//! expired, approved once), and the verification page (`/devicelogin`) where a person types
//! the user code, signs in and approves or declines.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Extension, Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use secrecy::ExposeSecret as _;
use serde_json::{Value, json};

use super::error::AadError;
use super::html::{self, escape};
use super::mint::{self, Caller, Endpoint, Times};
use super::token::{self, Form, Segment};
use super::{RequestContext, RequestIds};
use crate::device_codes::{self, DeviceCodeProblem, SLOW_DOWN_STEP, normalize_user_code};
use crate::directory::secrets_equal;
use crate::state::{AppState, DeviceCodeGrant, DeviceCodeState};

/// The `grant_type` of a device code redemption.
pub(crate) const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// Letters and digits people read without mistakes (no 0/O, 1/I).
const USER_CODE_ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
/// Entra's user codes are nine characters, such as `BPPVYQZMA`.
const USER_CODE_LENGTH: usize = 9;

/// `POST /{tenant}/oauth2/v2.0/devicecode`.
pub(crate) async fn device_authorization_v2(
    State(state): State<Arc<AppState>>,
    Path(segment): Path<String>,
    Extension(ids): Extension<RequestIds>,
    body: Bytes,
) -> Response {
    let context = RequestContext::new(ids);
    token::json_answer(authorize(&state, &segment, &body, Endpoint::V2), &context)
}

/// `POST /{tenant}/oauth2/devicecode` (v1: `resource=`; the answer's numbers are strings and
/// the page is `verification_url`, as ADAL reads it).
pub(crate) async fn device_authorization_v1(
    State(state): State<Arc<AppState>>,
    Path(segment): Path<String>,
    Extension(ids): Extension<RequestIds>,
    body: Bytes,
) -> Response {
    let context = RequestContext::new(ids);
    token::json_answer(authorize(&state, &segment, &body, Endpoint::V1), &context)
}

fn authorize(
    state: &AppState,
    segment: &str,
    body: &[u8],
    endpoint: Endpoint,
) -> Result<Value, AadError> {
    let kind = token::classify(segment);
    if let Segment::Named(name) = kind
        && state.directory().tenant(name).is_none()
    {
        return Err(AadError::tenant_not_found(name));
    }
    let form = Form::parse(body)?;
    let client_id = form.require("client_id")?;
    let scope = match endpoint {
        Endpoint::V2 => {
            if form.get("resource").is_some() {
                return Err(AadError::resource_on_v2());
            }
            form.require("scope")?.to_owned()
        }
        // AD FS's device endpoint is not routed here; its requests would be v1-shaped.
        Endpoint::V1 | Endpoint::Adfs => format!(
            "{}/user_impersonation",
            form.require("resource")?.trim_end_matches('/')
        ),
    };
    let scope = scope.as_str();
    let (tenant_id, app_name) = {
        let directory = state.directory();
        let tenant = match kind {
            Segment::Named(name) => directory
                .tenant(name)
                .ok_or_else(|| AadError::tenant_not_found(name))?,
            Segment::Common(name) if name.eq_ignore_ascii_case("consumers") => {
                return Err(AadError::consumers_not_allowed(client_id));
            }
            Segment::Organizations | Segment::Common(_) => directory
                .tenant_of_app(client_id)
                .ok_or_else(|| AadError::app_not_found(client_id, "organizations"))?,
        };
        let app = tenant
            .app(client_id)
            .ok_or_else(|| AadError::app_not_found(client_id, &tenant.id))?;
        // The scope must name one resource the tenant knows, as it will at redemption.
        let delegation = token::parse_delegated_scope(scope, false)?;
        if !state.is_known_resource(&delegation.resource) {
            return Err(AadError::resource_not_found(
                &delegation.resource,
                &tenant.display_name,
            ));
        }
        (tenant.id.clone(), app.display_name.clone())
    };
    let settings = state.settings();
    let interval = settings.device_code_interval_secs.max(1);
    let lifetime = settings.device_code_lifetime_secs.max(1);
    let device_code = format!("DAQABIQEAAAD{}", mint::random_string(8));
    let user_code = {
        let mut codes = state.device_codes();
        let user_code = loop {
            let candidate = new_user_code();
            if !codes.iter().any(|grant| grant.user_code == candidate) {
                break candidate;
            }
        };
        codes.push(DeviceCodeGrant {
            device_code: device_code.clone(),
            user_code: user_code.clone(),
            tenant_id,
            client_id: client_id.to_owned(),
            scope: scope.to_owned(),
            issued: Instant::now(),
            lifetime: Duration::from_secs(lifetime),
            interval: Duration::from_secs(interval),
            last_poll: None,
            polls: 0,
            slow_downs: 0,
            slow_down_next: false,
            state: DeviceCodeState::Pending,
        });
        user_code
    };
    let verification_uri = format!("{}/devicelogin", state.base_url);
    tracing::debug!(%client_id, app = %app_name, expires_in = lifetime, interval, "device code issued");
    let message = format!(
        "To sign in, use a web browser to open the page {verification_uri} and enter the code \
         {user_code} to authenticate."
    );
    if endpoint == Endpoint::V1 {
        return Ok(json!({
            "user_code": user_code,
            "device_code": device_code,
            "verification_url": verification_uri,
            "expires_in": lifetime.to_string(),
            "interval": interval.to_string(),
            "message": message,
        }));
    }
    Ok(json!({
        "user_code": user_code,
        "device_code": device_code,
        "verification_uri": verification_uri,
        "expires_in": lifetime,
        "interval": interval,
        "message": format!(
            "To sign in, use a web browser to open the page {verification_uri} and enter the \
             code {user_code} to authenticate."
        ),
    }))
}

fn new_user_code() -> String {
    let bytes = uuid::Uuid::new_v4().into_bytes();
    bytes
        .iter()
        .take(USER_CODE_LENGTH)
        .map(|byte| char::from(USER_CODE_ALPHABET[usize::from(*byte) % USER_CODE_ALPHABET.len()]))
        .collect()
}

/// What an approved code redeems to, taken out of the lock before minting.
struct Approved {
    user_object_id: String,
    scope: String,
}

/// `grant_type=urn:ietf:params:oauth:grant-type:device_code` at the v2 token endpoint, for
/// the client `caller` authenticated as. In this order: an unknown code (or another
/// client's), a redeemed one, an expired one, polling too often, then where the code
/// stands.
pub(crate) fn redeem(
    state: &AppState,
    endpoint: Endpoint,
    caller: Caller<'_>,
    presented: &str,
    client_info: bool,
    times: Times,
) -> Result<Value, AadError> {
    let approved = check_poll(state, caller, presented, Instant::now())?;
    let user = caller
        .tenant
        .user_by_object_id(&approved.user_object_id)
        .ok_or_else(|| AadError::user_not_found(&caller.tenant.domain))?;
    if user.disabled {
        return Err(AadError::user_disabled());
    }
    let delegation = token::parse_delegated_scope(&approved.scope, client_info)?;
    mint::delegated(state, endpoint, caller, user, &delegation, times)
}

fn check_poll(
    state: &AppState,
    caller: Caller<'_>,
    presented: &str,
    now: Instant,
) -> Result<Approved, AadError> {
    let mut codes = state.device_codes();
    let grant = codes
        .iter_mut()
        .find(|grant| secrets_equal(&grant.device_code, presented))
        .filter(|grant| {
            grant.client_id.eq_ignore_ascii_case(&caller.app.client_id)
                && grant.tenant_id == caller.tenant.id
        })
        .ok_or_else(AadError::bad_verification_code)?;
    if let DeviceCodeState::Redeemed { .. } = grant.state {
        return Err(AadError::device_code_redeemed());
    }
    if grant.is_expired(now) {
        return Err(AadError::device_code_expired());
    }
    let too_soon = grant
        .last_poll
        .is_some_and(|last| now.saturating_duration_since(last) < grant.interval);
    grant.last_poll = Some(now);
    grant.polls += 1;
    if grant.slow_down_next || too_soon {
        grant.slow_down_next = false;
        grant.slow_downs += 1;
        grant.interval += SLOW_DOWN_STEP;
        return Err(AadError::slow_down(grant.interval.as_secs()));
    }
    match &grant.state {
        DeviceCodeState::Pending => Err(AadError::authorization_pending()),
        DeviceCodeState::Declined => Err(AadError::authorization_declined()),
        DeviceCodeState::Redeemed { .. } => Err(AadError::device_code_redeemed()),
        DeviceCodeState::Approved {
            user_object_id,
            upn,
        } => {
            let approved = Approved {
                user_object_id: user_object_id.clone(),
                scope: grant.scope.clone(),
            };
            grant.state = DeviceCodeState::Redeemed { upn: upn.clone() };
            Ok(approved)
        }
    }
}

/// `GET /devicelogin`: the page a person opens to type the user code.
pub(crate) async fn verification_page() -> Response {
    page(StatusCode::OK, None, "")
}

/// `POST /devicelogin` (`user_code`, `username`, `password`, `action=approve|decline`): the
/// person's answer. Approving needs the user's password; declining needs only the code.
pub(crate) async fn verification_answer(
    State(state): State<Arc<AppState>>,
    body: Bytes,
) -> Response {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(&body).unwrap_or_default();
    let field = |name: &str| {
        pairs
            .iter()
            .find(|(key, _)| key == name)
            .map_or("", |(_, value)| value.as_str())
    };
    let user_code = normalize_user_code(field("user_code"));
    if user_code.is_empty() {
        return page(
            StatusCode::BAD_REQUEST,
            Some("Enter the code your device shows."),
            "",
        );
    }
    let outcome = match field("action") {
        "decline" => device_codes::decline(&state, &user_code).map(|_| {
            "You declined the sign-in. The device will be told; you can close this window."
                .to_owned()
        }),
        _ => approve_with_password(&state, &user_code, field("username"), field("password")),
    };
    match outcome {
        Ok(done) => done_page(&done),
        Err(problem) => page(
            StatusCode::BAD_REQUEST,
            Some(&problem.to_string()),
            &user_code,
        ),
    }
}

fn approve_with_password(
    state: &AppState,
    user_code: &str,
    username: &str,
    password: &str,
) -> Result<String, DeviceCodeProblem> {
    let tenant_id = device_codes::pending_tenant(state, user_code)?;
    {
        let directory = state.directory();
        let user = directory
            .tenant(&tenant_id)
            .and_then(|tenant| tenant.user(username))
            .ok_or_else(|| DeviceCodeProblem::UnknownUser {
                upn: username.to_owned(),
                tenant: tenant_id.clone(),
            })?;
        if !user.federated && !secrets_equal(user.password.expose_secret(), password) {
            return Err(DeviceCodeProblem::BadPassword);
        }
    }
    // A user for whom Conditional Access demands MFA completes it here, in the browser:
    // that is what the device code grant is for.
    let info = device_codes::approve(state, user_code, username)?;
    let app = state
        .directory()
        .tenant(&info.tenant_id)
        .and_then(|tenant| tenant.app(&info.client_id))
        .map_or_else(|| info.client_id.clone(), |app| app.display_name.clone());
    Ok(format!(
        "You signed in to {app} as {}. You can close this window and return to your device.",
        info.approved_by.unwrap_or_default()
    ))
}

fn page(status: StatusCode, error: Option<&str>, user_code: &str) -> Response {
    let error = error
        .map(|text| format!("<p class=\"error\" role=\"alert\">{}</p>", escape(text)))
        .unwrap_or_default();
    let body = format!(
        "<h1>Enter code</h1>\
         <p>Enter the code displayed on your app or device, then sign in to approve it, or \
         decline it.</p>{error}\
         <form method=\"post\" action=\"/devicelogin\">\
         <label>Code<input name=\"user_code\" value=\"{}\" autocomplete=\"off\" autofocus required></label>\
         <label>User name<input name=\"username\" autocomplete=\"username\" placeholder=\"alice@contoso.onmicrosoft.com\"></label>\
         <label>Password<input name=\"password\" type=\"password\" autocomplete=\"current-password\"></label>\
         <button name=\"action\" value=\"approve\">Sign in and approve</button>\
         <button name=\"action\" value=\"decline\" formnovalidate>Decline</button>\
         </form>",
        escape(user_code)
    );
    html::page(status, "Enter code", &body)
}

fn done_page(text: &str) -> Response {
    html::page(
        StatusCode::OK,
        "Done",
        &format!("<h1>Done</h1><p>{}</p>", escape(text)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_codes_are_nine_unambiguous_characters() {
        for _ in 0..100 {
            let code = new_user_code();
            assert_eq!(code.len(), USER_CODE_LENGTH);
            assert!(
                code.bytes().all(|b| USER_CODE_ALPHABET.contains(&b)),
                "{code}"
            );
            assert_eq!(normalize_user_code(&code), code);
        }
    }
}
