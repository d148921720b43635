//! The browser sign-in's first half, as Entra ID serves it: the authorize endpoints
//! (`GET /{tenant}/oauth2/v2.0/authorize`, v1 `GET /{tenant}/oauth2/authorize`), their checks
//! in Entra's order, the sign-in page (user name, password, the consent line, Accept and
//! Cancel), and the answer sent back to the app's redirect URI (`query`, `fragment` or an
//! auto-submitting `form_post` page) with an authorization code or an error.
//!
//! An unknown tenant or client, or a redirect URI the app did not register, is shown on the
//! emulator's own error page and never redirected to (RFC 6749 §4.1.2.1): nothing says the
//! URI belongs to the app. Every other problem goes back to the redirect URI as `error`,
//! `error_description` (`AADSTSnnnnn: …`), `error_uri` and `state`.
//!
//! The page carries only the random id of a server-side record of the request
//! ([`PendingSignIn`]); the parameters are never read back from the form. Everything the
//! page echoes is HTML-escaped. The code is redeemed in `authorization_code.rs`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Extension, Path, RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse as _, Response};
use secrecy::ExposeSecret as _;
use sha2::Digest as _;
use url::Url;
use uuid::Uuid;

use super::error::AadError;
use super::html::{self, escape};
use super::mint::random_string;
use super::redirect_uri;
use super::token::{self, Form, Segment};
use super::{RequestContext, RequestIds};
use crate::directory::secrets_equal;
use crate::state::{
    AppState, AuthorizationCodeGrant, PendingSignIn, Pkce, PkceMethod, ResponseMode, SignInTarget,
};

/// The longest authorize query accepted (Entra documents none; browsers send up to a few
/// tens of KiB).
const MAX_QUERY: usize = 32 * 1024;

/// `GET /{tenant}/oauth2/v2.0/authorize`.
pub(crate) async fn authorize_v2(
    State(state): State<Arc<AppState>>,
    Path(segment): Path<String>,
    Extension(ids): Extension<RequestIds>,
    RawQuery(query): RawQuery,
) -> Response {
    let context = RequestContext::new(ids);
    begin(
        &state,
        true,
        &segment,
        query.as_deref().unwrap_or(""),
        &context,
    )
}

/// `GET /{tenant}/oauth2/authorize` (v1: `resource=` instead of `scope=`).
pub(crate) async fn authorize_v1(
    State(state): State<Arc<AppState>>,
    Path(segment): Path<String>,
    Extension(ids): Extension<RequestIds>,
    RawQuery(query): RawQuery,
) -> Response {
    let context = RequestContext::new(ids);
    begin(
        &state,
        false,
        &segment,
        query.as_deref().unwrap_or(""),
        &context,
    )
}

/// The client and redirect URI of a request, checked: from here on, errors may be sent to
/// the redirect URI.
struct Client {
    tenant_id: String,
    client_id: String,
    app_name: String,
    public_client: bool,
    redirect: Url,
}

fn begin(
    state: &AppState,
    v2: bool,
    segment: &str,
    query: &str,
    context: &RequestContext,
) -> Response {
    if query.len() > MAX_QUERY {
        return error_page(
            &AadError::invalid_parameter("query", "(too long)", "at most 32 KiB of parameters"),
            context,
        );
    }
    let Some(params) = Form::parse_query(query) else {
        return error_page(&AadError::missing_parameter("client_id"), context);
    };
    let client = match check_client(state, segment, &params) {
        Ok(client) => client,
        Err(error) => return error_page(&error, context),
    };
    let client_state = params.get("state");
    let mode = match params.get("response_mode") {
        None | Some("query") => ResponseMode::Query,
        Some("fragment") => ResponseMode::Fragment,
        Some("form_post") => ResponseMode::FormPost,
        Some(other) => {
            let error =
                AadError::invalid_parameter("response_mode", other, "query, fragment or form_post");
            return redirect_error(
                &client.redirect,
                ResponseMode::Query,
                &error,
                client_state,
                context,
            );
        }
    };
    let pending = match check_request(v2, &params, &client, mode) {
        Ok(pending) => pending,
        Err(error) => {
            return redirect_error(&client.redirect, mode, &error, client_state, context);
        }
    };
    if !state.is_known_resource(&pending.target.resource) {
        let tenant = state
            .directory()
            .tenant(&client.tenant_id)
            .map(|t| t.display_name.clone())
            .unwrap_or_default();
        let error = AadError::resource_not_found(&pending.target.resource, &tenant);
        return redirect_error(&client.redirect, mode, &error, client_state, context);
    }
    if params.get("prompt") == Some("none") {
        // No browser session is kept, so a silent sign-in never finds anyone.
        let error = AadError::login_required();
        return redirect_error(&client.redirect, mode, &error, client_state, context);
    }
    let id = random_string(2);
    let view = PageView {
        id: &id,
        action: &action_path(v2, &client.tenant_id),
        app_name: &client.app_name,
        target: &pending.target,
        username: pending.login_hint.as_deref().unwrap_or_default(),
        error: None,
    };
    let page = sign_in_page(&view);
    tracing::debug!(client_id = %client.client_id, v2, "sign-in page shown");
    state.add_sign_in(id, pending);
    page
}

fn check_client(state: &AppState, segment: &str, params: &Form) -> Result<Client, AadError> {
    let client_id = params.require("client_id")?;
    let directory = state.directory();
    let tenant = match token::classify(segment) {
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
    let requested = params.require("redirect_uri")?;
    let redirect = redirect_uri::parse_requested(requested)
        .filter(|url| {
            app.redirect_uris
                .iter()
                .any(|registered| redirect_uri::matches(registered, url))
        })
        .ok_or_else(|| AadError::redirect_uri_not_registered(requested, &app.client_id))?;
    Ok(Client {
        tenant_id: tenant.id.clone(),
        client_id: app.client_id.clone(),
        app_name: app.display_name.clone(),
        public_client: app.public_client,
        redirect,
    })
}

/// The checks whose failures go back to the app, in Entra's order.
fn check_request(
    v2: bool,
    params: &Form,
    client: &Client,
    response_mode: ResponseMode,
) -> Result<PendingSignIn, AadError> {
    match params.get("response_type") {
        None => return Err(AadError::missing_parameter("response_type")),
        Some("code") => {}
        Some(other) => return Err(AadError::unsupported_response_type(other)),
    }
    let target = if v2 {
        if params.get("resource").is_some() {
            return Err(AadError::resource_on_v2());
        }
        let delegation = token::parse_delegated_scope(params.require("scope")?, false)?;
        SignInTarget {
            resource: delegation.resource,
            permissions: delegation.permissions,
            openid: delegation.openid,
            profile: delegation.profile,
            offline_access: delegation.offline_access,
        }
    } else {
        let resource = params.require("resource")?;
        let scope = params.get("scope").unwrap_or_default();
        let has = |name: &str| scope.split_whitespace().any(|s| s == name);
        SignInTarget {
            resource: resource.to_owned(),
            permissions: vec!["user_impersonation".to_owned()],
            openid: has("openid"),
            profile: has("profile"),
            // v1 hands out a refresh token with every user token.
            offline_access: true,
        }
    };
    let pkce = match (
        params.get("code_challenge"),
        params.get("code_challenge_method"),
    ) {
        (None, Some(_)) => return Err(AadError::missing_parameter("code_challenge")),
        (None, None) if client.public_client => return Err(AadError::pkce_required()),
        (None, None) => None,
        (Some(challenge), method) => {
            let method = match method {
                None | Some("plain") => PkceMethod::Plain,
                Some("S256") => PkceMethod::S256,
                Some(other) => {
                    return Err(AadError::invalid_parameter(
                        "code_challenge_method",
                        other,
                        "S256 or plain",
                    ));
                }
            };
            if !challenge_is_well_formed(challenge, method) {
                return Err(AadError::invalid_code_challenge());
            }
            Some(Pkce {
                challenge: challenge.to_owned(),
                method,
            })
        }
    };
    match params.get("prompt") {
        None | Some("login" | "none" | "consent" | "select_account") => {}
        Some("admin_consent") if !v2 => {}
        Some(other) => {
            return Err(AadError::invalid_parameter(
                "prompt",
                other,
                "login, none, consent or select_account",
            ));
        }
    }
    // `domain_hint` names the home realm to go to; the emulator has only itself.
    Ok(PendingSignIn {
        v2,
        tenant_id: client.tenant_id.clone(),
        client_id: client.client_id.clone(),
        redirect_uri: client.redirect.to_string(),
        response_mode,
        state: params.get("state").map(str::to_owned),
        nonce: params.get("nonce").map(str::to_owned),
        pkce,
        target,
        login_hint: params.get("login_hint").map(str::to_owned),
        created: Instant::now(),
    })
}

/// RFC 7636 §4.1–4.2: a verifier is 43 to 128 characters of `[A-Za-z0-9-._~]`; an S256
/// challenge is the 43-character base64url (no padding) of its SHA-256.
pub(crate) fn challenge_is_well_formed(challenge: &str, method: PkceMethod) -> bool {
    match method {
        PkceMethod::S256 => {
            challenge.len() == 43
                && challenge
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        }
        PkceMethod::Plain => verifier_is_well_formed(challenge),
    }
}

/// RFC 7636 §4.1.
pub(crate) fn verifier_is_well_formed(verifier: &str) -> bool {
    (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// Where the sign-in page posts: the authorize path of the app's tenant, by GUID.
fn action_path(v2: bool, tenant_id: &str) -> String {
    if v2 {
        format!("/{tenant_id}/oauth2/v2.0/authorize")
    } else {
        format!("/{tenant_id}/oauth2/authorize")
    }
}

/// The key an authorization code is remembered under: its SHA-256, hex.
pub(crate) fn code_key(code: &str) -> String {
    sha2::Sha256::digest(code.as_bytes())
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// `POST` to the authorize path: the sign-in page's answer (`sign_in_id`, `username`,
/// `password`, `action=accept|cancel`).
pub(crate) async fn sign_in_answer(
    State(state): State<Arc<AppState>>,
    Extension(ids): Extension<RequestIds>,
    body: Bytes,
) -> Response {
    let context = RequestContext::new(ids);
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(&body).unwrap_or_default();
    let field = |name: &str| {
        pairs
            .iter()
            .find(|(key, _)| key == name)
            .map_or("", |(_, value)| value.as_str())
    };
    let id = field("sign_in_id");
    let pending = state.sign_ins().get(id).cloned();
    let Some(pending) = pending else {
        return expired_page();
    };
    let Ok(redirect) = Url::parse(&pending.redirect_uri) else {
        return expired_page();
    };
    let client_state = pending.state.as_deref();
    if field("action") == "cancel" {
        if state.sign_ins().remove(id).is_none() {
            return expired_page();
        }
        let error = AadError::consent_declined();
        return redirect_error(
            &redirect,
            pending.response_mode,
            &error,
            client_state,
            &context,
        );
    }
    let username = field("username").trim();
    let user_object_id = match check_user(&state, &pending, username, field("password")) {
        Ok(object_id) => object_id,
        Err(error) => {
            tracing::debug!(code = error.code, "sign-in page: credentials refused");
            let app_name = state
                .directory()
                .tenant(&pending.tenant_id)
                .and_then(|tenant| tenant.app(&pending.client_id))
                .map_or_else(|| pending.client_id.clone(), |app| app.display_name.clone());
            let headline = error.headline();
            return sign_in_page(&PageView {
                id,
                action: &action_path(pending.v2, &pending.tenant_id),
                app_name: &app_name,
                target: &pending.target,
                username,
                error: Some(&headline),
            });
        }
    };
    // Removed only now, and only once: two answers racing for one page get one code.
    if state.sign_ins().remove(id).is_none() {
        return expired_page();
    }
    let code = format!("1.A{}", random_string(6));
    let lifetime = Duration::from_secs(state.settings().authorization_code_lifetime_secs);
    state.add_authorization_code(
        code_key(&code),
        AuthorizationCodeGrant {
            tenant_id: pending.tenant_id.clone(),
            client_id: pending.client_id.clone(),
            user_object_id,
            redirect_uri: pending.redirect_uri.clone(),
            target: pending.target.clone(),
            nonce: pending.nonce.clone(),
            pkce: pending.pkce.clone(),
            expires_at: Instant::now() + lifetime,
            redeemed: false,
        },
    );
    let session_state = Uuid::new_v4().to_string();
    let mut params = vec![("code", code.as_str())];
    if let Some(client_state) = client_state {
        params.push(("state", client_state));
    }
    params.push(("session_state", session_state.as_str()));
    tracing::debug!(client_id = %pending.client_id, "browser sign-in completed, code issued");
    respond(&redirect, pending.response_mode, &params)
}

/// The user's object id when the user name and password are right and the user may sign
/// in. A user flagged for MFA may: the browser is where MFA happens.
fn check_user(
    state: &AppState,
    pending: &PendingSignIn,
    username: &str,
    password: &str,
) -> Result<String, AadError> {
    let directory = state.directory();
    let tenant = directory
        .tenant(&pending.tenant_id)
        .ok_or_else(|| AadError::tenant_not_found(&pending.tenant_id))?;
    let user = tenant
        .user(username)
        .ok_or_else(|| AadError::user_not_found(&tenant.domain))?;
    // A federated user would be sent to their own identity provider, which the emulator
    // does not have.
    if user.federated || !secrets_equal(user.password.expose_secret(), password) {
        return Err(AadError::bad_password());
    }
    if user.disabled {
        return Err(AadError::user_disabled());
    }
    Ok(user.object_id.clone())
}

/// Sends the browser back to the app with `params`, as `response_mode` says.
fn respond(redirect: &Url, mode: ResponseMode, params: &[(&str, &str)]) -> Response {
    match mode {
        ResponseMode::FormPost => form_post_page(redirect, params),
        ResponseMode::Query | ResponseMode::Fragment => {
            let location =
                redirect_uri::with_params(redirect, params, mode == ResponseMode::Fragment);
            let mut response = StatusCode::FOUND.into_response();
            if let Ok(value) = HeaderValue::from_str(&location) {
                response.headers_mut().insert(header::LOCATION, value);
            }
            html::with_no_store(response)
        }
    }
}

/// An error sent back to the app: `error`, `error_description`, `error_uri`, `state`.
fn redirect_error(
    redirect: &Url,
    mode: ResponseMode,
    error: &AadError,
    client_state: Option<&str>,
    context: &RequestContext,
) -> Response {
    tracing::debug!(
        code = error.code,
        error = error.error,
        "authorization request refused"
    );
    let description = error.description(context);
    let error_uri = error.error_uri();
    let mut params = vec![
        ("error", error.error),
        ("error_description", description.as_str()),
    ];
    if let Some(uri) = &error_uri {
        params.push(("error_uri", uri.as_str()));
    }
    if let Some(client_state) = client_state {
        params.push(("state", client_state));
    }
    respond(redirect, mode, &params)
}

/// What the sign-in page shows.
struct PageView<'a> {
    id: &'a str,
    action: &'a str,
    app_name: &'a str,
    target: &'a SignInTarget,
    username: &'a str,
    error: Option<&'a str>,
}

/// The sign-in page. Its fields and buttons have stable ids for WebDriver tests:
/// `username`, `password`, `accept`, `cancel` (and the hidden `sign_in_id`).
fn sign_in_page(view: &PageView<'_>) -> Response {
    let error = view
        .error
        .map(|text| {
            format!(
                "<p class=\"error\" role=\"alert\" id=\"error\">{}</p>",
                escape(text)
            )
        })
        .unwrap_or_default();
    let app = escape(view.app_name);
    let mut grants = vec![format!(
        "<li>Access Dataverse (<code>{}</code>) as you: {}</li>",
        escape(&view.target.resource),
        escape(&view.target.permissions.join(", "))
    )];
    if view.target.openid || view.target.profile {
        grants.push("<li>Sign you in and read your profile</li>".to_owned());
    }
    if view.target.offline_access {
        grants.push("<li>Keep this access while you are not using it</li>".to_owned());
    }
    let body = format!(
        "<h1>Sign in</h1><p>to continue to <strong id=\"app\">{app}</strong></p>{error}\
         <form method=\"post\" action=\"{action}\">\
         <input type=\"hidden\" id=\"sign_in_id\" name=\"sign_in_id\" value=\"{id}\">\
         <label for=\"username\">User name<input id=\"username\" name=\"username\" value=\"{username}\" \
         autocomplete=\"username\" placeholder=\"alice@contoso.onmicrosoft.com\" autofocus required></label>\
         <label for=\"password\">Password<input id=\"password\" name=\"password\" type=\"password\" \
         autocomplete=\"current-password\"></label>\
         <div class=\"consent\" id=\"consent\"><p>{app} wants to access Dataverse as you. It asks to:</p>\
         <ul>{grants}</ul></div>\
         <button id=\"accept\" name=\"action\" value=\"accept\" type=\"submit\">Accept</button>\
         <button id=\"cancel\" name=\"action\" value=\"cancel\" type=\"submit\" formnovalidate>Cancel</button>\
         </form>",
        action = escape(view.action),
        id = escape(view.id),
        username = escape(view.username),
        grants = grants.concat(),
    );
    html::page(StatusCode::OK, "Sign in to your account", &body)
}

/// A problem that cannot go back to the app (unknown tenant or client, unregistered
/// redirect URI): shown here, never redirected.
fn error_page(error: &AadError, context: &RequestContext) -> Response {
    tracing::debug!(
        code = error.code,
        error = error.error,
        "authorization request refused on the error page"
    );
    let body = format!(
        "<h1>Sign in</h1><p>Sorry, but we're having trouble signing you in.</p>\
         <p class=\"error\" role=\"alert\" id=\"error\">{}</p>\
         <p class=\"detail\">Trace ID: {}\nCorrelation ID: {}\nTimestamp: {}</p>",
        escape(&error.headline()),
        escape(&context.trace_id),
        escape(&context.correlation_id),
        escape(&context.timestamp()),
    );
    html::page(StatusCode::BAD_REQUEST, "Sign in to your account", &body)
}

fn expired_page() -> Response {
    html::page(
        StatusCode::BAD_REQUEST,
        "Sign in to your account",
        "<h1>Sign in</h1><p class=\"error\" role=\"alert\" id=\"error\">This sign-in is unknown, \
         has expired or was already completed. Go back to the application and sign in \
         again.</p>",
    )
}

/// The `form_post` answer: a page that posts `params` to the redirect URI by itself (with
/// a button for browsers without scripts), as Entra's does.
fn form_post_page(redirect: &Url, params: &[(&str, &str)]) -> Response {
    let inputs: String = params
        .iter()
        .map(|(name, value)| {
            format!(
                "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
                escape(name),
                escape(value)
            )
        })
        .collect();
    let body = format!(
        "<form method=\"post\" name=\"hiddenform\" action=\"{}\">{inputs}\
         <noscript><p>Script is disabled. Click Submit to continue.</p>\
         <button type=\"submit\">Submit</button></noscript></form>\
         <script>document.forms[0].submit();</script>",
        escape(redirect.as_str())
    );
    html::page(StatusCode::OK, "Working...", &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_and_verifiers_are_checked_by_rfc_7636() {
        let verifier = "a".repeat(43);
        assert!(verifier_is_well_formed(&verifier));
        assert!(verifier_is_well_formed(&"~._-9".repeat(25)));
        assert!(!verifier_is_well_formed(&"a".repeat(42)));
        assert!(!verifier_is_well_formed(&"a".repeat(129)));
        assert!(!verifier_is_well_formed(&format!("{}+", "a".repeat(43))));
        assert!(challenge_is_well_formed(
            &"A_-".repeat(14).chars().chain(['x']).collect::<String>(),
            PkceMethod::S256
        ));
        assert!(!challenge_is_well_formed(&"a".repeat(44), PkceMethod::S256));
        assert!(!challenge_is_well_formed(
            &format!("{}=", "a".repeat(42)),
            PkceMethod::S256
        ));
        assert!(challenge_is_well_formed(&verifier, PkceMethod::Plain));
    }

    #[test]
    fn code_keys_are_sha256_hex() {
        assert_eq!(
            code_key("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
