//! The browser sign-in's second half: `grant_type=authorization_code` at the v1 and v2 token
//! endpoints, for the client the token endpoint authenticated. The code must be this
//! emulator's, this tenant's and this client's, unspent and unexpired; `redirect_uri` must
//! be the authorize request's; `code_verifier` must match the PKCE challenge. Then the user
//! gets a delegated token exactly like the password and device code grants give (with a
//! refresh token, and on v2 an ID token that echoes the `nonce`).

use std::time::Instant;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;
use sha2::Digest as _;

use super::authorize::{code_key, verifier_is_well_formed};
use super::error::AadError;
use super::mint::{self, Caller, Delegation, Endpoint, Times};
use super::redirect_uri;
use super::token::{self, Form};
use crate::directory::secrets_equal;
use crate::state::{AppState, AuthorizationCodeGrant, Pkce, PkceMethod};

/// The `grant_type` of a code redemption.
pub(crate) const GRANT_TYPE: &str = "authorization_code";

/// Redeems `code` for the client `caller` authenticated as.
pub(crate) fn redeem(
    state: &AppState,
    endpoint: Endpoint,
    caller: Caller<'_>,
    form: &Form,
    times: Times,
) -> Result<Value, AadError> {
    let code = form.require("code")?;
    let redirect = form.require("redirect_uri")?;
    let asked_resource = requested_resource(endpoint, form)?;
    let grant = spend(
        state,
        caller,
        code,
        redirect,
        form.get("code_verifier"),
        asked_resource.as_deref(),
    )?;
    let user = caller
        .tenant
        .user_by_object_id(&grant.user_object_id)
        .ok_or_else(|| AadError::user_not_found(&caller.tenant.domain))?;
    if user.disabled {
        return Err(AadError::user_disabled());
    }
    let target = grant.target;
    let delegation = Delegation {
        resource: target.resource,
        permissions: target.permissions,
        openid: target.openid,
        profile: target.profile,
        offline_access: target.offline_access,
        client_info: form.get("client_info") == Some("1"),
        nonce: grant.nonce,
    };
    mint::delegated(state, endpoint, caller, user, &delegation, times)
}

/// The resource the redemption names, if it names one (`scope` on v2, `resource` on v1); it
/// must be the one signed in for. Scopes with no resource (`openid offline_access`) name
/// none.
fn requested_resource(endpoint: Endpoint, form: &Form) -> Result<Option<String>, AadError> {
    match endpoint {
        Endpoint::V1 | Endpoint::Adfs => Ok(form.get("resource").map(str::to_owned)),
        Endpoint::V2 => {
            if form.get("resource").is_some() {
                return Err(AadError::resource_on_v2());
            }
            let Some(scope) = form.get("scope") else {
                return Ok(None);
            };
            let names_resource = scope.split_whitespace().any(|item| {
                !matches!(
                    item.to_ascii_lowercase().as_str(),
                    "openid" | "profile" | "offline_access" | "email"
                )
            });
            if !names_resource {
                return Ok(None);
            }
            Ok(Some(token::parse_delegated_scope(scope, false)?.resource))
        }
    }
}

fn same_resource(a: &str, b: &str) -> bool {
    a.trim_end_matches('/')
        .eq_ignore_ascii_case(b.trim_end_matches('/'))
}

/// Checks the code against everything it is bound to, in this order, and marks it spent:
/// unknown → 70000; another tenant's → 700005; another client's → 70000; spent → 54005;
/// expired → 70008; another redirect URI → 50011; another resource → 70011; PKCE → 501481.
/// A failed check leaves the code unspent.
fn spend(
    state: &AppState,
    caller: Caller<'_>,
    code: &str,
    redirect: &str,
    verifier: Option<&str>,
    asked_resource: Option<&str>,
) -> Result<AuthorizationCodeGrant, AadError> {
    let mut codes = state.authorization_codes();
    let grant = codes.get_mut(&code_key(code)).ok_or_else(|| {
        AadError::invalid_authorization_code("The authorization code is not recognized.")
    })?;
    if grant.tenant_id != caller.tenant.id {
        return Err(AadError::authorization_code_other_tenant());
    }
    if !grant.client_id.eq_ignore_ascii_case(&caller.app.client_id) {
        return Err(AadError::invalid_authorization_code(
            "The authorization code was issued to another client.",
        ));
    }
    if grant.redeemed {
        return Err(AadError::authorization_code_redeemed());
    }
    if Instant::now() >= grant.expires_at {
        return Err(AadError::authorization_code_expired());
    }
    let same_redirect = redirect_uri::parse_requested(redirect)
        .is_some_and(|url| url.as_str() == grant.redirect_uri);
    if !same_redirect {
        return Err(AadError::authorization_code_redirect_mismatch(redirect));
    }
    if let Some(asked) = asked_resource
        && !same_resource(asked, &grant.target.resource)
    {
        return Err(AadError::authorization_code_target_mismatch(
            asked,
            &grant.target.resource,
        ));
    }
    check_verifier(grant.pkce.as_ref(), verifier)?;
    grant.redeemed = true;
    Ok(grant.clone())
}

/// RFC 7636 §4.6. A verifier without a challenge is refused too (OAuth 2.1 §4.1.3): it
/// means the client believes it used PKCE when it did not.
fn check_verifier(pkce: Option<&Pkce>, verifier: Option<&str>) -> Result<(), AadError> {
    match (pkce, verifier) {
        (None, None) => Ok(()),
        (None, Some(_)) => Err(AadError::code_verifier_mismatch(
            "A code_verifier was sent, but the authorization request had no code_challenge.",
        )),
        (Some(_), None) => Err(AadError::missing_parameter("code_verifier")),
        (Some(pkce), Some(verifier)) => {
            if !verifier_is_well_formed(verifier) {
                return Err(AadError::code_verifier_mismatch(
                    "A code_verifier is 43 to 128 characters of [A-Za-z0-9-._~].",
                ));
            }
            let derived = match pkce.method {
                PkceMethod::Plain => verifier.to_owned(),
                PkceMethod::S256 => URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier)),
            };
            if secrets_equal(&derived, &pkce.challenge) {
                Ok(())
            } else {
                Err(AadError::code_verifier_mismatch(""))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s256_follows_rfc_7636_appendix_b() {
        let pkce = Pkce {
            challenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".to_owned(),
            method: PkceMethod::S256,
        };
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        assert!(check_verifier(Some(&pkce), Some(verifier)).is_ok());
        let wrong = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXK";
        assert_eq!(
            check_verifier(Some(&pkce), Some(wrong)).map_err(|e| e.code),
            Err(501_481)
        );
        assert_eq!(
            check_verifier(Some(&pkce), None).map_err(|e| e.code),
            Err(900_144)
        );
        assert_eq!(
            check_verifier(None, Some(verifier)).map_err(|e| e.code),
            Err(501_481)
        );
    }

    #[test]
    fn plain_compares_the_verifier_itself() {
        let verifier = "x".repeat(50);
        let pkce = Pkce {
            challenge: verifier.clone(),
            method: PkceMethod::Plain,
        };
        assert!(check_verifier(Some(&pkce), Some(&verifier)).is_ok());
        assert!(check_verifier(Some(&pkce), Some(&"y".repeat(50))).is_err());
    }
}
