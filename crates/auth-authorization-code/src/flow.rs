//! One browser sign-in: a fresh PKCE verifier, `state` and `nonce`; the loopback listener;
//! the browser (or the program's callback) on the authorize URL; the redirect, awaited for
//! at most the sign-in timeout; the code redeemed with the verifier; the ID token's nonce
//! checked.

use d365_auth_core::grant::{ClientKind, TargetParameter, TokenForm, classify_error_response};
use d365_auth_core::{AccessToken, AuthError, TokenRequest};
use http::{HeaderMap, StatusCode};

use crate::authorize::AuthorizeRequest;
use crate::browser::{self, SignInUrl};
use crate::id_token;
use crate::listener::{Listener, Redirect};
use crate::pkce::{Pkce, random_nonce};
use crate::provider::Inner;

/// The grant's `grant_type`.
pub(crate) const GRANT_TYPE: &str = "authorization_code";

/// The OpenID Connect scopes asked for beside the organization's: the ID token (for the
/// nonce and who signed in) and a refresh token.
pub(crate) const USER_SCOPES: [&str; 3] = ["offline_access", "openid", "profile"];

/// Signs the person in and redeems the code.
pub(crate) async fn sign_in(
    inner: &Inner,
    request: &TokenRequest,
) -> Result<AccessToken, AuthError> {
    let pkce = Pkce::new()?;
    let state = random_nonce()?;
    let nonce = random_nonce()?;
    let listener = Listener::bind(inner.redirect_port, &inner.redirect_path).await?;
    let redirect_uri = listener.redirect_uri().to_owned();
    let target = if inner.endpoint.target() == TargetParameter::Resource {
        request.resource().v1_resource()
    } else {
        scopes(inner, request).join(" ")
    };
    let url = AuthorizeRequest {
        endpoint: &inner.authorize_endpoint,
        target: inner.endpoint.target(),
        client_id: &inner.client_id,
        redirect_uri: &redirect_uri,
        scope_or_resource: &target,
        state: &state,
        nonce: &nonce,
        code_challenge: &pkce.challenge,
        login_hint: inner.login_hint.as_deref(),
        domain_hint: inner.domain_hint.as_deref(),
        prompt: inner.prompt,
    }
    .url();
    let browser_opened = inner.open_browser && browser::open(&url);
    let shown = SignInUrl {
        url,
        browser_opened,
        redirect_uri: redirect_uri.clone(),
    };
    match &inner.on_sign_in_url {
        Some(show) => show(&shown),
        None if !browser_opened => {
            return Err(AuthError::unavailable(
                "the browser sign-in",
                "no browser could be opened here, and nothing shows the sign-in address",
                "sign in with the device code grant (it works without a browser here), or give on_sign_in_url to show the address to the person",
            ));
        }
        None => {}
    }
    tracing::debug!(redirect_uri = %redirect_uri, browser_opened, "waiting for the browser sign-in");
    let redirect = tokio::time::timeout(inner.sign_in_timeout, listener.wait(&state))
        .await
        .map_err(|_| AuthError::Cancelled {
            operation: format!(
                "the browser sign-in (not finished within {} s)",
                inner.sign_in_timeout.as_secs()
            ),
        })??;
    drop(listener);
    let code = match redirect {
        Redirect::Code(code) => code,
        Redirect::Error { error, description } => {
            return Err(refusal(inner, &error, description.as_deref()));
        }
    };
    let mut form = TokenForm::new(GRANT_TYPE, &inner.client_id)
        .credential(inner.credential())
        .target(request, ClientKind::Confidential, &inner.endpoint)
        .secret_param("code", &code)
        .param("redirect_uri", redirect_uri.as_str())
        .secret_param("code_verifier", &pkce.verifier);
    for scope in USER_SCOPES
        .iter()
        .copied()
        .chain(inner.scopes.iter().map(String::as_str))
    {
        form = form.scope(scope);
    }
    let response = inner.http.send(&inner.endpoint, &form).await?;
    if let Some(id_token) = response.id_token() {
        id_token::check_nonce(id_token, &nonce)?;
    }
    response.into_access_token(request)
}

/// The v2 scopes of a sign-in: the organization's `.default` (every permission the
/// application was granted, as MSAL and azure-identity ask), the OpenID Connect scopes and
/// the caller's extra ones.
fn scopes(inner: &Inner, request: &TokenRequest) -> Vec<String> {
    std::iter::once(request.resource().v2_scope(ClientKind::Confidential))
        .chain(USER_SCOPES.iter().map(|scope| (*scope).to_owned()))
        .chain(inner.scopes.iter().cloned())
        .collect()
}

/// The identity provider's refusal on the redirect, classified like a token endpoint's
/// (`access_denied` → the person declined; an `AADSTSnnnnn:` description → its code).
fn refusal(inner: &Inner, error: &str, description: Option<&str>) -> AuthError {
    let codes: Vec<u32> = description
        .and_then(|text| text.strip_prefix("AADSTS"))
        .map(|rest| {
            rest.chars()
                .take_while(char::is_ascii_digit)
                .collect::<String>()
        })
        .and_then(|digits| digits.parse().ok())
        .into_iter()
        .collect();
    let body = serde_json::json!({
        "error": error,
        "error_description": description,
        "error_codes": codes,
    });
    classify_error_response(
        &inner.authorize_endpoint,
        StatusCode::BAD_REQUEST,
        &HeaderMap::new(),
        body.to_string().as_bytes(),
    )
}
