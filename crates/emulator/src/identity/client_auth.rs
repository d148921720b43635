//! Client authentication at the token endpoint: `client_secret_post`, `client_secret_basic`
//! (RFC 6749 §2.3.1: form-urlencoded id and secret inside the Basic header), `private_key_jwt`
//! client assertions, and public clients that must not send any credential.

use std::collections::HashSet;

use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use rsa::traits::PublicKeyParts as _;
use secrecy::ExposeSecret as _;
use serde_json::Value;

use super::error::AadError;
use super::mint::ClientAuth;
use crate::directory::{App, secrets_equal};
use crate::keys::decode_thumbprint;
use crate::state::AppState;

const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// Clock skew tolerated on a client assertion's `nbf`/`exp`. Entra's own tolerance is not
/// documented; five minutes is the common choice of Microsoft's token validators.
pub(crate) const ASSERTION_SKEW_SECS: i64 = 300;

/// Client id and secret from an `Authorization: Basic` header.
#[derive(Clone)]
pub(crate) struct BasicCredentials {
    pub(crate) client_id: String,
    pub(crate) secret: String,
}

/// Decodes `Authorization: Basic`; `None` when the header is absent or not Basic.
///
/// RFC 6749 has the client form-urlencode id and secret before joining them with `:`, so a
/// secret containing `:` or `+` survives; undo that here.
pub(crate) fn basic_credentials(headers: &HeaderMap) -> Result<Option<BasicCredentials>, AadError> {
    let Some(value) = headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok()) else {
        return Ok(None);
    };
    let Some((scheme, encoded)) = value.split_once(' ') else {
        return Ok(None);
    };
    if !scheme.eq_ignore_ascii_case("basic") {
        return Ok(None);
    }
    let malformed = || AadError::missing_parameter("client_id");
    let decoded = STANDARD.decode(encoded.trim()).map_err(|_| malformed())?;
    let decoded = String::from_utf8(decoded).map_err(|_| malformed())?;
    let (id, secret) = decoded.split_once(':').ok_or_else(malformed)?;
    let decode = |part: &str| -> Result<String, AadError> {
        let pairs: Vec<(String, String)> =
            serde_urlencoded::from_str(&format!("v={part}")).map_err(|_| malformed())?;
        Ok(pairs.into_iter().next().map(|(_, v)| v).unwrap_or_default())
    };
    Ok(Some(BasicCredentials {
        client_id: decode(id)?,
        secret: decode(secret)?,
    }))
}

/// What the token endpoint knows when it authenticates a client.
pub(crate) struct ClientRequest<'a> {
    pub(crate) app: &'a App,
    pub(crate) secret: Option<&'a str>,
    pub(crate) assertion: Option<&'a str>,
    pub(crate) assertion_type: Option<&'a str>,
    pub(crate) client_credentials_grant: bool,
    /// AD FS: assertions signed RS256 with the SHA-1 `x5t` only.
    pub(crate) rs256_only: bool,
    /// The URLs the assertion's `aud` may name: the endpoint as posted to, and its
    /// tenant-GUID form.
    pub(crate) audiences: Vec<String>,
    pub(crate) now: i64,
}

pub(crate) fn authenticate(
    state: &AppState,
    request: &ClientRequest<'_>,
) -> Result<ClientAuth, AadError> {
    let app = request.app;
    if app.public_client {
        if request.secret.is_some() || request.assertion.is_some() {
            return Err(AadError::public_client_with_credential());
        }
        if request.client_credentials_grant {
            return Err(AadError::client_credentials_need_credential());
        }
        return Ok(ClientAuth::Public);
    }
    if let Some(secret) = request.secret {
        check_secret(app, secret, request.now)?;
        return Ok(ClientAuth::Secret);
    }
    if let Some(assertion) = request.assertion {
        check_assertion(state, request, assertion)?;
        return Ok(ClientAuth::Certificate);
    }
    if request.client_credentials_grant {
        Err(AadError::client_credentials_need_credential())
    } else {
        Err(AadError::confidential_client_needs_credential())
    }
}

fn check_secret(app: &App, presented: &str, now: i64) -> Result<(), AadError> {
    let matching = app
        .secrets
        .iter()
        .find(|secret| secrets_equal(secret.value.expose_secret(), presented));
    match matching {
        Some(secret) if secret.expires_at.unix_timestamp() < now => {
            Err(AadError::expired_secret(&app.client_id))
        }
        Some(_) => Ok(()),
        None => Err(AadError::invalid_secret(&app.client_id)),
    }
}

fn claim_i64(claims: &Value, name: &str) -> Option<i64> {
    claims
        .get(name)
        .and_then(|value| value.as_i64().or_else(|| value.as_f64().map(|f| f as i64)))
}

fn check_assertion(
    state: &AppState,
    request: &ClientRequest<'_>,
    assertion: &str,
) -> Result<(), AadError> {
    let app = request.app;
    match request.assertion_type {
        None => return Err(AadError::missing_parameter("client_assertion_type")),
        Some(JWT_BEARER) => {}
        Some(_) => {
            return Err(AadError::assertion_malformed(
                "client_assertion_type must be 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer'",
            ));
        }
    }
    let header = jsonwebtoken::decode_header(assertion)
        .map_err(|_| AadError::assertion_malformed("the JOSE header cannot be read"))?;
    let accepted = if request.rs256_only {
        matches!(header.alg, Algorithm::RS256)
    } else {
        matches!(header.alg, Algorithm::RS256 | Algorithm::PS256)
    };
    if !accepted {
        return Err(AadError::assertion_signature());
    }
    let by_sha256 = header
        .x5t_s256
        .as_deref()
        .filter(|_| !request.rs256_only)
        .and_then(decode_thumbprint);
    let by_sha1 = header.x5t.as_deref().and_then(decode_thumbprint);
    let certificate = app
        .certificates
        .iter()
        .find(|c| {
            by_sha256.as_deref() == Some(&c.thumbprints.sha256[..])
                || by_sha1.as_deref() == Some(&c.thumbprints.sha1[..])
        })
        .ok_or_else(|| AadError::assertion_key_not_registered(&app.client_id))?;
    let key = DecodingKey::from_rsa_raw_components(
        &certificate.public_key.n().to_bytes_be(),
        &certificate.public_key.e().to_bytes_be(),
    );
    // Only the signature is checked by the library; every claim is checked below so that
    // each failure gets its own AADSTS code.
    let mut validation = Validation::new(header.alg);
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    validation.required_spec_claims = HashSet::new();
    let claims = jsonwebtoken::decode::<Value>(assertion, &key, &validation)
        .map_err(|err| match err.kind() {
            ErrorKind::InvalidSignature | ErrorKind::InvalidAlgorithm => {
                AadError::assertion_signature()
            }
            _ => AadError::assertion_malformed("the payload cannot be read"),
        })?
        .claims;

    let now = request.now;
    let exp = claim_i64(&claims, "exp");
    let nbf = claim_i64(&claims, "nbf");
    let expired = exp.is_none_or(|exp| now > exp + ASSERTION_SKEW_SECS);
    let early = nbf.is_some_and(|nbf| nbf > now + ASSERTION_SKEW_SECS);
    if expired || early {
        return Err(AadError::assertion_time(now, nbf, exp));
    }

    let audiences: Vec<&str> = match claims.get("aud") {
        Some(Value::String(aud)) => vec![aud.as_str()],
        Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    let normalize = |url: &str| url.trim_end_matches('/').to_ascii_lowercase();
    let audience_ok = audiences.iter().any(|aud| {
        request
            .audiences
            .iter()
            .any(|expected| normalize(aud) == normalize(expected))
    });
    if !audience_ok {
        let expected = request.audiences.first().map_or("", String::as_str);
        return Err(AadError::assertion_audience(expected));
    }

    let is_client = |name: &str| {
        claims
            .get(name)
            .and_then(Value::as_str)
            .is_some_and(|value| value.eq_ignore_ascii_case(&app.client_id))
    };
    if !is_client("iss") || !is_client("sub") {
        return Err(AadError::assertion_issuer());
    }

    let jti = claims
        .get("jti")
        .and_then(Value::as_str)
        .filter(|jti| !jti.is_empty())
        .ok_or_else(|| AadError::assertion_malformed("the 'jti' claim is missing"))?;
    let remembered_until = exp.unwrap_or(now) + ASSERTION_SKEW_SECS;
    if !state.remember_assertion(&format!("{}|{jti}", app.client_id), remembered_until, now) {
        return Err(AadError::assertion_replayed());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn basic(raw: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        let value = format!("Basic {}", STANDARD.encode(raw));
        headers.insert(
            AUTHORIZATION,
            HeaderValue::from_str(&value).expect("header"),
        );
        headers
    }

    #[test]
    fn basic_credentials_are_form_decoded() {
        let parsed = basic_credentials(&basic("my%20app:a%3Ab%2Bc+d"))
            .expect("valid")
            .expect("present");
        assert_eq!(parsed.client_id, "my app");
        assert_eq!(parsed.secret, "a:b+c d");
    }

    #[test]
    fn bearer_is_not_basic() {
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, HeaderValue::from_static("Bearer x"));
        assert!(basic_credentials(&headers).expect("valid").is_none());
    }

    #[test]
    fn broken_basic_is_an_error() {
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, HeaderValue::from_static("Basic !!!"));
        assert!(basic_credentials(&headers).is_err());
    }
}
