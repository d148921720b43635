//! Reading what a token endpoint answers: Entra's success responses (numbers that may be
//! strings, v1 and v2 fields), its error bodies, plain RFC 6749 errors, and everything
//! that is neither (an HTML page, an empty or truncated body, a proxy's 502).

use std::fmt;
use std::time::{Duration, SystemTime};

use http::{HeaderMap, StatusCode};
use secrecy::SecretString;
use serde::{Deserialize, Deserializer};
use url::Url;

use crate::error::{AuthError, IdentityError};
use crate::resource::TokenRequest;
use crate::token::AccessToken;

/// Lifetime assumed when a response has no `expires_in`, as MSAL assumes.
const DEFAULT_LIFETIME: Duration = Duration::from_secs(600);

/// A successful token response, read leniently: `expires_in` and its siblings may be
/// numbers (v2) or strings (v1, AD FS).
#[derive(Clone)]
pub struct TokenResponse {
    /// Where it came from, to name in errors.
    endpoint: Url,
    access_token: SecretString,
    token_type: String,
    expires_in: Option<Duration>,
    expires_on: Option<SystemTime>,
    ext_expires_in: Option<Duration>,
    refresh_in: Option<Duration>,
    refresh_token: Option<SecretString>,
    id_token: Option<SecretString>,
    scope: Option<String>,
    resource: Option<String>,
    received_at: SystemTime,
}

impl TokenResponse {
    pub(crate) fn from_wire(
        wire: WireTokenResponse,
        endpoint: &Url,
        received_at: SystemTime,
    ) -> Self {
        let seconds = |value: Option<u64>| value.map(Duration::from_secs);
        Self {
            endpoint: endpoint.clone(),
            access_token: wire.access_token.0,
            token_type: wire.token_type,
            expires_in: seconds(wire.expires_in),
            // An instant the clock cannot represent counts as absent (no panic on a
            // nonsense value).
            expires_on: wire
                .expires_on
                .and_then(|secs| SystemTime::UNIX_EPOCH.checked_add(Duration::from_secs(secs))),
            ext_expires_in: seconds(wire.ext_expires_in),
            refresh_in: seconds(wire.refresh_in),
            refresh_token: wire.refresh_token.map(|token| token.0),
            id_token: wire.id_token.map(|token| token.0),
            scope: wire.scope,
            resource: wire.resource,
            received_at,
        }
    }

    /// The access token.
    #[must_use]
    pub fn access_token(&self) -> &SecretString {
        &self.access_token
    }

    /// The token type, normally `Bearer`.
    #[must_use]
    pub fn token_type(&self) -> &str {
        &self.token_type
    }

    /// `expires_in`: seconds of validity from when the response was sent.
    #[must_use]
    pub fn expires_in(&self) -> Option<Duration> {
        self.expires_in
    }

    /// `expires_on` (v1): the expiry as an instant.
    #[must_use]
    pub fn expires_on(&self) -> Option<SystemTime> {
        self.expires_on
    }

    /// `ext_expires_in`: how long Entra would accept the token during an outage.
    #[must_use]
    pub fn ext_expires_in(&self) -> Option<Duration> {
        self.ext_expires_in
    }

    /// `refresh_in`: when Entra advises renewing.
    #[must_use]
    pub fn refresh_in(&self) -> Option<Duration> {
        self.refresh_in
    }

    /// The refresh token, for user grants.
    #[must_use]
    pub fn refresh_token(&self) -> Option<&SecretString> {
        self.refresh_token.as_ref()
    }

    /// The OpenID Connect ID token, when the request asked for `openid`: who signed in,
    /// and the `nonce` a grant sent. A credential: it is never shown.
    #[must_use]
    pub fn id_token(&self) -> Option<&SecretString> {
        self.id_token.as_ref()
    }

    /// The scopes granted (v2 user grants).
    #[must_use]
    pub fn scope(&self) -> Option<&str> {
        self.scope.as_deref()
    }

    /// The resource echoed by a v1 endpoint.
    #[must_use]
    pub fn resource(&self) -> Option<&str> {
        self.resource.as_deref()
    }

    /// When the expiry is: `expires_in` from when the response arrived (the local clock
    /// is the one that will judge it), else `expires_on`, else 10 minutes. An `expires_in`
    /// too large for the clock counts as absent.
    #[must_use]
    pub fn expiry(&self) -> SystemTime {
        let after = |lifetime| self.received_at.checked_add(lifetime);
        self.expires_in
            .and_then(after)
            .or(self.expires_on)
            .or_else(|| after(DEFAULT_LIFETIME))
            .unwrap_or(self.received_at)
    }

    /// The [`AccessToken`] for `request`, carrying the refresh token if there is one.
    ///
    /// # Errors
    ///
    /// [`AuthError::UnexpectedResponse`], naming the token endpoint, when the access token
    /// holds characters no HTTP header can carry (a line break, a control character): it
    /// is refused here, where it enters, rather than failing when it is sent.
    pub fn into_access_token(self, request: &TokenRequest) -> Result<AccessToken, AuthError> {
        let expires_on = self.expiry();
        let mut builder =
            AccessToken::builder(self.access_token, expires_on, request.resource().clone())
                .token_type(self.token_type);
        if let Some(refresh_on) = self
            .refresh_in
            .and_then(|refresh_in| self.received_at.checked_add(refresh_in))
        {
            builder = builder.refresh_on(refresh_on);
        }
        if let Some(scope) = self.scope {
            builder = builder.scope(scope);
        }
        if let Some(refresh_token) = self.refresh_token {
            builder = builder.refresh_token(refresh_token);
        }
        builder
            .build()
            .map_err(|problem| AuthError::UnexpectedResponse {
                endpoint: self.endpoint,
                status: http::StatusCode::OK,
                detail: format!("an access token that {problem}"),
            })
    }

    /// The [`AccessToken`] of a refresh-token redemption: as
    /// [`into_access_token`](Self::into_access_token), but when the answer carries no new
    /// refresh token, the token keeps `redeemed`, the one just used. Entra does not revoke
    /// a refresh token by using it, and AD FS often issues none on refresh; without this a
    /// grant would lose its refresh token after the first renewal.
    /// [`RefreshTokenRenewal`](crate::grant::RefreshTokenRenewal) does this for a grant.
    ///
    /// # Errors
    ///
    /// As for [`into_access_token`](Self::into_access_token).
    pub fn into_renewed_token(
        mut self,
        request: &TokenRequest,
        redeemed: &SecretString,
    ) -> Result<AccessToken, AuthError> {
        if self.refresh_token.is_none() {
            self.refresh_token = Some(redeemed.clone());
        }
        self.into_access_token(request)
    }
}

impl fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenResponse")
            .field("access_token", &"[redacted]")
            .field("token_type", &self.token_type)
            .field("expires_in", &self.expires_in)
            .field("expires_on", &self.expires_on)
            .field("refresh_in", &self.refresh_in)
            .field(
                "refresh_token",
                &self.refresh_token.as_ref().map(|_| "[redacted]"),
            )
            .field("scope", &self.scope)
            .field("resource", &self.resource)
            .finish_non_exhaustive()
    }
}

/// A secret as the wire has it: read from a JSON string, never shown by `Debug`.
pub(crate) struct WireSecret(SecretString);

impl<'de> Deserialize<'de> for WireSecret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(|text| Self(SecretString::from(text)))
    }
}

impl fmt::Debug for WireSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// A token response as the wire has it.
#[derive(Debug, Deserialize)]
pub(crate) struct WireTokenResponse {
    access_token: WireSecret,
    #[serde(default = "bearer")]
    token_type: String,
    #[serde(default, deserialize_with = "seconds")]
    expires_in: Option<u64>,
    #[serde(default, deserialize_with = "seconds")]
    expires_on: Option<u64>,
    #[serde(default, deserialize_with = "seconds")]
    ext_expires_in: Option<u64>,
    #[serde(default, deserialize_with = "seconds")]
    refresh_in: Option<u64>,
    #[serde(default)]
    refresh_token: Option<WireSecret>,
    #[serde(default)]
    id_token: Option<WireSecret>,
    #[serde(default)]
    scope: Option<String>,
    #[serde(default)]
    resource: Option<String>,
}

fn bearer() -> String {
    "Bearer".to_owned()
}

/// A count of seconds as a JSON number, a numeric string (v1), or null.
fn seconds<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<u64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Seconds {
        Unsigned(u64),
        Float(f64),
        Text(String),
    }
    let invalid = || serde::de::Error::custom("expected a non-negative number of seconds");
    match Option::<Seconds>::deserialize(deserializer)? {
        None => Ok(None),
        Some(Seconds::Unsigned(value)) => Ok(Some(value)),
        Some(Seconds::Float(value)) if value.is_finite() && value >= 0.0 => {
            // Fractions of a second do not matter for expiry; truncation is intended.
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            Ok(Some(value as u64))
        }
        Some(Seconds::Float(_)) => Err(invalid()),
        Some(Seconds::Text(text)) => text.trim().parse().map(Some).map_err(|_| invalid()),
    }
}

/// An OAuth error body: RFC 6749's fields plus Entra's diagnostics.
#[derive(Debug, Deserialize)]
struct WireErrorBody {
    error: String,
    #[serde(default)]
    error_description: Option<String>,
    #[serde(default)]
    error_codes: Vec<u32>,
    #[serde(default)]
    timestamp: Option<String>,
    #[serde(default)]
    trace_id: Option<String>,
    #[serde(default)]
    correlation_id: Option<String>,
    #[serde(default)]
    error_uri: Option<String>,
    #[serde(default)]
    suberror: Option<String>,
    #[serde(default)]
    claims: Option<String>,
}

/// Reads a successful (200) token response body.
pub(crate) fn parse_success(
    endpoint: &Url,
    body: &[u8],
    received_at: SystemTime,
) -> Result<TokenResponse, AuthError> {
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize::<_, WireTokenResponse>(&mut deserializer)
        .map(|wire| TokenResponse::from_wire(wire, endpoint, received_at))
        .map_err(|error| {
            let field = error.path().to_string();
            unreadable_token(endpoint, error.inner(), Some(&field))
        })
}

/// The error for a 200 response whose body is not a token response, naming the field at
/// fault when there is one. The body itself is never quoted: it may hold a token.
fn unreadable_token(endpoint: &Url, error: &serde_json::Error, field: Option<&str>) -> AuthError {
    let problem = match error.classify() {
        serde_json::error::Category::Eof => "a truncated JSON body".to_owned(),
        serde_json::error::Category::Syntax => format!(
            "a body that is not valid JSON (line {}, column {})",
            error.line(),
            error.column()
        ),
        serde_json::error::Category::Data | serde_json::error::Category::Io => {
            let message = error.to_string();
            match field.filter(|field| !field.is_empty() && *field != ".") {
                Some(field) => format!("a token response whose field `{field}` is invalid"),
                None if message.starts_with("missing field") => {
                    format!(
                        "a token response with a {}",
                        message.split(" at line").next().unwrap_or(&message)
                    )
                }
                None => "JSON that is not a token response".to_owned(),
            }
        }
    };
    AuthError::UnexpectedResponse {
        endpoint: endpoint.clone(),
        status: StatusCode::OK,
        detail: problem,
    }
}

/// Classifies any response that is not a usable 200: a redirect, throttling, an OAuth
/// error (Entra-shaped or plain), or a body that is none of these.
///
/// Grant crates call this too when they talk to other endpoints of the identity provider
/// (such as a device authorization endpoint), so that every failure reads the same way.
#[must_use]
pub fn classify_error_response(
    endpoint: &Url,
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
) -> AuthError {
    if status.is_redirection() {
        return AuthError::Redirected {
            endpoint: endpoint.clone(),
            status,
            location: headers
                .get(http::header::LOCATION)
                .and_then(|value| value.to_str().ok())
                .map(str::to_owned),
        };
    }
    if status == StatusCode::TOO_MANY_REQUESTS {
        return AuthError::Throttled {
            endpoint: endpoint.clone(),
            retry_after: retry_after(headers),
        };
    }
    if let Ok(wire) = serde_json::from_slice::<WireErrorBody>(body) {
        return IdentityError {
            endpoint: endpoint.clone(),
            status,
            error: wire.error,
            description: wire.error_description,
            codes: wire.error_codes,
            trace_id: wire.trace_id,
            correlation_id: wire.correlation_id,
            timestamp: wire.timestamp,
            error_uri: wire.error_uri,
            suberror: wire.suberror,
            claims: wire.claims,
        }
        .into();
    }
    AuthError::UnexpectedResponse {
        endpoint: endpoint.clone(),
        status,
        detail: describe_body(headers, body),
    }
}

/// A short, safe description of an error body that is not an OAuth error.
fn describe_body(headers: &HeaderMap, body: &[u8]) -> String {
    const MAX_CHARS: usize = 120;
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        return "an empty body".to_owned();
    }
    let content_type = headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("");
    let looks_html = content_type.contains("html") || text.starts_with('<');
    if looks_html {
        let title = between(text, "<title>", "</title>")
            .map(str::trim)
            .filter(|t| !t.is_empty());
        return match title {
            Some(title) => format!("an HTML page titled \"{}\"", shorten(title, MAX_CHARS)),
            None => "an HTML page".to_owned(),
        };
    }
    if text.starts_with('{') || text.starts_with('[') {
        return match serde_json::from_str::<serde_json::Value>(text) {
            Ok(_) => "JSON that is not an OAuth error".to_owned(),
            Err(error) if error.is_eof() => "a truncated JSON body".to_owned(),
            Err(_) => "a body that is not valid JSON".to_owned(),
        };
    }
    format!("a non-JSON body: \"{}\"", shorten(text, MAX_CHARS))
}

fn between<'t>(text: &'t str, open: &str, close: &str) -> Option<&'t str> {
    let lower = text.to_ascii_lowercase();
    let start = lower.find(open)? + open.len();
    let end = start + lower[start..].find(close)?;
    text.get(start..end)
}

fn shorten(text: &str, max_chars: usize) -> String {
    let single_line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if single_line.chars().count() <= max_chars {
        single_line
    } else {
        let cut: String = single_line.chars().take(max_chars).collect();
        format!("{cut}…")
    }
}

/// `Retry-After` in seconds (the HTTP-date form is rare from token endpoints and ignored).
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    headers
        .get(http::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

#[cfg(test)]
mod proptests {
    use super::*;
    use proptest::prelude::*;
    use proptest::test_runner::Config;

    fn config() -> Config {
        Config {
            cases: 256,
            failure_persistence: None,
            ..Config::default()
        }
    }

    fn endpoint() -> Url {
        Url::parse("https://login.microsoftonline.com/contoso/oauth2/v2.0/token").unwrap()
    }

    fn request() -> TokenRequest {
        TokenRequest::for_url("https://contoso.crm.dynamics.com").unwrap()
    }

    /// A seconds field as Entra (number), v1 (string) or a broken server (anything) sends it.
    fn seconds_json() -> impl Strategy<Value = serde_json::Value> {
        prop_oneof![
            any::<u64>().prop_map(serde_json::Value::from),
            any::<i64>().prop_map(serde_json::Value::from),
            any::<f64>().prop_map(serde_json::Value::from),
            any::<u64>().prop_map(|n| serde_json::Value::from(format!(" {n} "))),
            ".{0,12}".prop_map(serde_json::Value::from),
            Just(serde_json::Value::Null),
            Just(serde_json::json!([1])),
            Just(serde_json::json!({"seconds": 1})),
            any::<bool>().prop_map(serde_json::Value::from),
        ]
    }

    /// Reads the body and, when it is a token, uses every derived instant.
    fn exercise(body: &[u8]) -> Option<TokenResponse> {
        let received_at = SystemTime::now();
        let response = parse_success(&endpoint(), body, received_at).ok()?;
        let _ = response.expiry();
        let _ = response.clone().into_access_token(&request());
        Some(response)
    }

    proptest! {
        #![proptest_config(config())]

        #[test]
        fn success_parsing_never_panics_on_bytes(body in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = exercise(&body);
        }

        #[test]
        fn success_parsing_reads_seconds_leniently(
            expires_in in seconds_json(),
            expires_on in proptest::option::of(seconds_json()),
            refresh_in in proptest::option::of(seconds_json()),
            token in "[A-Za-z0-9._-]{1,40}",
        ) {
            let mut object = serde_json::json!({
                "access_token": token,
                "token_type": "Bearer",
                "expires_in": expires_in.clone(),
            });
            if let Some(value) = expires_on {
                object["expires_on"] = value;
            }
            if let Some(value) = refresh_in {
                object["refresh_in"] = value;
            }
            let body = serde_json::to_vec(&object).unwrap();
            let parsed = exercise(&body);
            // A non-negative count of seconds, as a number or a numeric string, is read;
            // anything else is refused.
            let readable = match &expires_in {
                serde_json::Value::Number(n) => n.as_u64().is_some() || n.as_f64().is_some_and(|f| f >= 0.0),
                serde_json::Value::String(text) => text.trim().parse::<u64>().is_ok(),
                serde_json::Value::Null => true,
                _ => false,
            };
            let exact = expires_in
                .as_u64()
                .or_else(|| expires_in.as_str().and_then(|text| text.trim().parse().ok()));
            if let (Some(parsed), Some(seconds)) = (&parsed, exact) {
                prop_assert_eq!(parsed.expires_in(), Some(Duration::from_secs(seconds)));
            }
            if !readable {
                prop_assert!(parsed.is_none(), "{}", object);
            }
        }

        #[test]
        fn error_classification_never_panics(
            status in 100u16..1000,
            body in proptest::collection::vec(any::<u8>(), 0..256),
            content_type in "[ -~]{0,30}",
            retry in "[ -~]{0,12}",
        ) {
            let mut headers = HeaderMap::new();
            if let Ok(value) = http::HeaderValue::from_str(&content_type) {
                headers.insert(http::header::CONTENT_TYPE, value.clone());
                headers.insert(http::header::LOCATION, value);
            }
            if let Ok(value) = http::HeaderValue::from_str(&retry) {
                headers.insert(http::header::RETRY_AFTER, value);
            }
            let status = StatusCode::from_u16(status).unwrap();
            let error = classify_error_response(&endpoint(), status, &headers, &body);
            let _ = error.to_string();
        }

        #[test]
        fn error_classification_never_panics_on_oauth_shaped_bodies(
            status in 400u16..600,
            error in ".{0,20}",
            description in proptest::option::of(".{0,200}"),
            codes in proptest::collection::vec(any::<u32>(), 0..3),
            html_title in ".{0,200}",
            html in any::<bool>(),
        ) {
            let body = if html {
                format!("<html><TITLE>{html_title}</title></html>").into_bytes()
            } else {
                serde_json::to_vec(&serde_json::json!({
                    "error": error,
                    "error_description": description,
                    "error_codes": codes,
                })).unwrap()
            };
            let status = StatusCode::from_u16(status).unwrap();
            let classified = classify_error_response(&endpoint(), status, &HeaderMap::new(), &body);
            let _ = classified.to_string();
        }
    }
}
