//! Access token validation, for the resource-server side of the emulator (the Dataverse Web
//! API) and for tests: signature, issuer, audience, expiry and not-before, each failure with
//! its own typed reason.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, Validation};
use serde_json::Value;

use crate::keys::SigningKey;

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenRejection {
    /// Not three base64url parts with JSON header and payload.
    #[error("the token is not a well-formed JWT")]
    Malformed,
    /// The header names an algorithm other than RS256 (`none`, `HS256`, ...).
    #[error("the token algorithm '{0}' is not accepted (RS256 only)")]
    UnsupportedAlgorithm(String),
    /// The header's `kid` names no key this validator knows.
    #[error("the token was signed with an unknown key")]
    UnknownKey,
    /// The signature does not verify.
    #[error("the token signature is invalid")]
    InvalidSignature,
    /// A required claim is absent or has the wrong type.
    #[error("the token has no valid '{0}' claim")]
    MissingClaim(&'static str),
    /// `iss` is not the issuer of the token's tenant and version.
    #[error("the token issuer '{0}' is not accepted")]
    InvalidIssuer(String),
    /// `aud` is not the expected audience.
    #[error("the token audience '{0}' is not the expected one")]
    InvalidAudience(String),
    /// `exp` has passed.
    #[error("the token has expired")]
    Expired,
    /// `nbf` is still in the future.
    #[error("the token is not valid yet")]
    NotYetValid,
}

/// The version of a validated token (`ver` claim).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TokenVersion {
    /// `ver` = `1.0`: issuer `https://sts.windows.net/{tid}/`.
    V1,
    /// `ver` = `2.0`: issuer `{emulator base URL}/{tid}/v2.0`.
    V2,
    /// On-premises AD FS: `ver` = `1.0`, issuer `http://{host}/adfs/services/trust`, no
    /// `tid`.
    Adfs,
}

/// A token that passed validation, with typed access to the claims the Web API needs.
#[derive(Debug, Clone)]
pub struct ValidatedToken {
    version: TokenVersion,
    claims: Value,
}

impl ValidatedToken {
    /// The token version.
    pub fn version(&self) -> TokenVersion {
        self.version
    }

    /// All claims, as decoded.
    pub fn claims(&self) -> &Value {
        &self.claims
    }

    fn text(&self, name: &str) -> Option<&str> {
        self.claims.get(name).and_then(Value::as_str)
    }

    /// Tenant id (`tid`).
    pub fn tenant_id(&self) -> Option<&str> {
        self.text("tid")
    }

    /// Object id of the caller (`oid`): a user, or an app's service principal.
    pub fn object_id(&self) -> Option<&str> {
        self.text("oid")
    }

    /// Client id of the calling app (`appid` in v1, `azp` in v2).
    pub fn client_id(&self) -> Option<&str> {
        self.text("appid").or_else(|| self.text("azp"))
    }

    /// Whether this is an app-only token (`idtyp` = `app`).
    pub fn is_app_only(&self) -> bool {
        self.text("idtyp") == Some("app")
    }

    /// The user's principal name (`upn`, else `preferred_username`), for delegated tokens.
    pub fn user_principal_name(&self) -> Option<&str> {
        self.text("upn").or_else(|| self.text("preferred_username"))
    }

    /// Delegated permissions (`scp`, space-separated).
    pub fn scopes(&self) -> Vec<&str> {
        self.text("scp")
            .map(|scp| scp.split_whitespace().collect())
            .unwrap_or_default()
    }

    /// App roles (`roles`).
    pub fn roles(&self) -> Vec<&str> {
        self.claims
            .get("roles")
            .and_then(Value::as_array)
            .map(|roles| roles.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default()
    }

    /// Expiry, Unix seconds.
    pub fn expires_at(&self) -> i64 {
        self.claims.get("exp").and_then(Value::as_i64).unwrap_or(0)
    }
}

/// Validates access tokens issued by an emulator.
///
/// Get one from [`Emulator::token_validator`](crate::Emulator::token_validator). It accepts
/// RS256 tokens signed by the emulator's key whose issuer is the v1 or v2 issuer of the tenant
/// named in `tid` (optionally restricted to one tenant), whose audience is the one asked for
/// (compared without trailing slash, case-insensitively) and which are inside their validity
/// window (no leeway unless configured).
#[derive(Debug, Clone)]
pub struct TokenValidator {
    key: Arc<SigningKey>,
    base_url: String,
    tenant_id: Option<String>,
    leeway: Duration,
    /// On-premises: accept AD FS's tokens (this issuer, no tenant) instead of Entra ID's.
    adfs_issuer: Option<String>,
}

fn normalize_audience(audience: &str) -> String {
    audience.trim_end_matches('/').to_ascii_lowercase()
}

impl TokenValidator {
    pub(crate) fn new(key: Arc<SigningKey>, base_url: String) -> Self {
        Self {
            key,
            base_url,
            tenant_id: None,
            leeway: Duration::ZERO,
            adfs_issuer: None,
        }
    }

    /// Accept AD FS's tokens with this issuer (and no tenant) instead of Entra ID's.
    #[must_use]
    pub(crate) fn adfs(mut self, issuer: String) -> Self {
        self.adfs_issuer = Some(issuer);
        self
    }

    /// Accept only tokens of this tenant (GUID).
    #[must_use]
    pub fn require_tenant(mut self, tenant_id: impl Into<String>) -> Self {
        self.tenant_id = Some(tenant_id.into().to_ascii_lowercase());
        self
    }

    /// Clock skew tolerated on `exp` and `nbf` (default none).
    #[must_use]
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// Validates `token` for `audience` (e.g. `https://org.crm.dynamics.com`).
    pub fn validate(&self, token: &str, audience: &str) -> Result<ValidatedToken, TokenRejection> {
        let header = token
            .split('.')
            .next()
            .and_then(|part| URL_SAFE_NO_PAD.decode(part).ok())
            .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok())
            .ok_or(TokenRejection::Malformed)?;
        let alg = header
            .get("alg")
            .and_then(Value::as_str)
            .ok_or(TokenRejection::Malformed)?;
        // Checked before any key is touched, so `none` and HS256-with-the-public-key
        // confusion never reach a verifier.
        if alg != "RS256" {
            return Err(TokenRejection::UnsupportedAlgorithm(alg.to_owned()));
        }
        if header.get("kid").and_then(Value::as_str) != Some(self.key.kid.as_str()) {
            return Err(TokenRejection::UnknownKey);
        }

        let mut validation = Validation::new(Algorithm::RS256);
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        validation.required_spec_claims = HashSet::new();
        let claims = jsonwebtoken::decode::<Value>(token, &self.key.decoding, &validation)
            .map_err(|err| match err.kind() {
                jsonwebtoken::errors::ErrorKind::InvalidSignature => {
                    TokenRejection::InvalidSignature
                }
                _ => TokenRejection::Malformed,
            })?
            .claims;

        let text = |name: &'static str| {
            claims
                .get(name)
                .and_then(Value::as_str)
                .ok_or(TokenRejection::MissingClaim(name))
        };
        let version = if let Some(adfs_issuer) = &self.adfs_issuer {
            let issuer = text("iss")?;
            if issuer != adfs_issuer || claims.get("tid").is_some() {
                return Err(TokenRejection::InvalidIssuer(issuer.to_owned()));
            }
            TokenVersion::Adfs
        } else {
            let tid = text("tid")?.to_ascii_lowercase();
            let version = match text("ver")? {
                "1.0" => TokenVersion::V1,
                "2.0" => TokenVersion::V2,
                _ => return Err(TokenRejection::MissingClaim("ver")),
            };
            let issuer = text("iss")?;
            let expected_issuer = match version {
                TokenVersion::V2 => format!("{}/{tid}/v2.0", self.base_url),
                _ => format!("https://sts.windows.net/{tid}/"),
            };
            let tenant_ok = self.tenant_id.as_ref().is_none_or(|wanted| *wanted == tid);
            if issuer != expected_issuer || !tenant_ok {
                return Err(TokenRejection::InvalidIssuer(issuer.to_owned()));
            }
            version
        };

        let aud = text("aud")?;
        if normalize_audience(aud) != normalize_audience(audience) {
            return Err(TokenRejection::InvalidAudience(aud.to_owned()));
        }

        let number = |name: &'static str| {
            claims
                .get(name)
                .and_then(Value::as_i64)
                .ok_or(TokenRejection::MissingClaim(name))
        };
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let leeway = i64::try_from(self.leeway.as_secs()).unwrap_or(i64::MAX / 2);
        if now >= number("exp")? + leeway {
            return Err(TokenRejection::Expired);
        }
        if let Some(nbf) = claims.get("nbf") {
            let nbf = nbf.as_i64().ok_or(TokenRejection::MissingClaim("nbf"))?;
            if nbf > now + leeway {
                return Err(TokenRejection::NotYetValid);
            }
        }
        Ok(ValidatedToken { version, claims })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::Header;
    use serde_json::json;

    const BASE: &str = "http://127.0.0.1:1";
    const TID: &str = "d3650000-e0e0-4000-8000-000000000001";

    fn signed(claims: &Value) -> (TokenValidator, String) {
        let key = crate::keys::signing_key().expect("key");
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(key.kid.clone());
        let token = jsonwebtoken::encode(&header, claims, &key.encoding).expect("signed");
        (TokenValidator::new(key, BASE.to_owned()), token)
    }

    fn claims(now: i64) -> Value {
        json!({
            "aud": "https://org.crm.dynamics.com", "iss": format!("{BASE}/{TID}/v2.0"),
            "tid": TID, "ver": "2.0", "nbf": now - 10, "exp": now + 60,
        })
    }

    fn now() -> i64 {
        time::OffsetDateTime::now_utc().unix_timestamp()
    }

    #[test]
    fn a_future_nbf_is_not_yet_valid() {
        let mut c = claims(now());
        c["nbf"] = json!(now() + 120);
        let (validator, token) = signed(&c);
        assert!(matches!(
            validator.validate(&token, "https://org.crm.dynamics.com"),
            Err(TokenRejection::NotYetValid)
        ));
        validator
            .leeway(Duration::from_secs(300))
            .validate(&token, "https://org.crm.dynamics.com")
            .expect("inside the leeway");
    }

    #[test]
    fn the_issuer_must_match_the_version() {
        let mut c = claims(now());
        c["ver"] = json!("1.0");
        let (validator, token) = signed(&c);
        assert!(matches!(
            validator.validate(&token, "https://org.crm.dynamics.com"),
            Err(TokenRejection::InvalidIssuer(_))
        ));
    }

    #[test]
    fn missing_claims_are_named() {
        let mut c = claims(now());
        c.as_object_mut().expect("object").remove("exp");
        let (validator, token) = signed(&c);
        assert!(matches!(
            validator.validate(&token, "https://org.crm.dynamics.com"),
            Err(TokenRejection::MissingClaim("exp"))
        ));
    }
}
