//! [`ExternalTokenProvider`]: `AuthType=ExternalTokenManagement`, where your code supplies
//! the tokens, like ServiceClient's `Func<string, Task<string>>` constructor argument.
//!
//! The callback returns only the token, so its expiry is unknown. If the token is a JWT
//! with an `exp` claim, that is used (the claim is read, not verified: Dataverse verifies
//! it); otherwise, and never later than `exp`, the token is treated as valid for a short
//! time (5 minutes unless set). A short time because a token used past its real expiry
//! costs a `401`, a refresh and a retry, while asking early costs only a callback, which is
//! expected to serve from its own cache as ServiceClient's callbacks do (ServiceClient calls
//! its callback for every request).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use d365_auth_core::grant::{GrantConfig, GrantRegistration};
use d365_auth_core::{
    AccessToken, AuthError, ConfigError, Grant, TokenProvider, TokenRequest, async_trait,
};
use secrecy::{ExposeSecret as _, SecretString};

/// The future a token callback returns.
pub type TokenCallbackFuture =
    Pin<Box<dyn Future<Output = Result<SecretString, AuthError>> + Send + 'static>>;

/// A token callback, boxed.
pub(crate) type TokenCallback = Arc<dyn Fn(String) -> TokenCallbackFuture + Send + Sync>;

/// How long a token whose expiry is unknown is used, unless set.
pub const DEFAULT_EXTERNAL_TOKEN_LIFETIME: Duration = Duration::from_secs(5 * 60);

/// A [`TokenProvider`] that asks your code for tokens.
///
/// The callback receives the resource, the organization URL with a trailing slash
/// (`https://contoso.crm.dynamics.com/`: the v1 `resource`; append `.default` for a v2
/// scope), and returns the access token.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use d365_auth_core::{TokenProvider, TokenRequest};
/// use d365_connect::ExternalTokenProvider;
/// use secrecy::SecretString;
///
/// let provider = ExternalTokenProvider::new(|resource: String| async move {
///     // Ask your own token source here.
///     assert_eq!(resource, "https://contoso.crm.dynamics.com/");
///     Ok(SecretString::from("a-token-from-elsewhere"))
/// });
/// let token = provider
///     .request_token(&TokenRequest::for_url("https://contoso.crm.dynamics.com")?)
///     .await?;
/// assert_eq!(token.token_type(), "Bearer");
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct ExternalTokenProvider {
    callback: TokenCallback,
    lifetime: Duration,
    cache_key: String,
}

impl ExternalTokenProvider {
    /// A provider around `callback`, with tokens of unknown expiry used for
    /// [`DEFAULT_EXTERNAL_TOKEN_LIFETIME`].
    pub fn new<F, Fut>(callback: F) -> Self
    where
        F: Fn(String) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<SecretString, AuthError>> + Send + 'static,
    {
        Self::from_boxed(Arc::new(move |resource| Box::pin(callback(resource))))
    }

    pub(crate) fn from_boxed(callback: TokenCallback) -> Self {
        Self {
            callback,
            lifetime: DEFAULT_EXTERNAL_TOKEN_LIFETIME,
            cache_key: format!("external-token-callback|{}", uuid::Uuid::new_v4()),
        }
    }

    /// How long a token is used when its expiry is unknown (not a JWT with `exp`), and at
    /// most in any case.
    #[must_use]
    pub fn lifetime(mut self, lifetime: Duration) -> Self {
        self.lifetime = lifetime.max(Duration::from_secs(1));
        self
    }

    /// Whose tokens the callback returns, for a shared [`TokenStore`](d365_auth_core::store::TokenStore):
    /// providers with the same key share tokens. Unique per provider unless set.
    #[must_use]
    pub fn cache_key(mut self, key: impl Into<String>) -> Self {
        self.cache_key = format!("external-token-callback|{}", key.into());
        self
    }
}

#[async_trait]
impl TokenProvider for ExternalTokenProvider {
    async fn request_token(&self, request: &TokenRequest) -> Result<AccessToken, AuthError> {
        let resource = request.resource().v1_resource();
        let returned = (self.callback)(resource).await?;
        // A token read from a file or a pipe often ends with a newline.
        let secret = SecretString::from(returned.expose_secret().trim());
        if secret.expose_secret().is_empty() {
            return Err(AuthError::Credential {
                message: "the token callback returned an empty token; return the access token for the resource it is given".to_owned(),
                source: None,
            });
        }
        let now = SystemTime::now();
        let mut expires_on = now + self.lifetime;
        if let Some(exp) = jwt_expiry(secret.expose_secret()) {
            expires_on = expires_on.min(exp);
            if exp <= now {
                tracing::warn!(
                    "the token callback returned a token that has already expired; Dataverse will refuse it"
                );
            }
        }
        AccessToken::builder(secret, expires_on, request.resource().clone())
            .build()
            .map_err(|problem| AuthError::Credential {
                message: format!(
                    "the token callback returned an access token that {problem}; return the token alone"
                ),
                source: None,
            })
    }

    fn grant(&self) -> Grant {
        Grant::new("external")
    }

    fn cache_key(&self) -> String {
        self.cache_key.clone()
    }
}

impl fmt::Debug for ExternalTokenProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExternalTokenProvider")
            .field("lifetime", &self.lifetime)
            .field("cache_key", &self.cache_key)
            .finish_non_exhaustive()
    }
}

/// How long a token of unknown expiry lives, as [`ConnectOptions`](crate::ConnectOptions)
/// hands it to the registration.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Lifetime(pub(crate) Duration);

/// Hands the options' token callback, if any, and the lifetime of its tokens to the
/// registration through the configuration's extensions.
pub(crate) fn add_callback(config: &mut GrantConfig, options: &crate::ConnectOptions) {
    if let Some(callback) = &options.token_callback {
        config.extensions.insert(callback.clone());
        config
            .extensions
            .insert(Lifetime(options.external_token_lifetime));
    }
}

/// The setting a missing callback is reported as.
pub(crate) const CALLBACK_SETTING: &str = "token callback";

/// `AuthType=ExternalTokenManagement` as configuration knows it: the callback comes from
/// [`ConnectOptions::token_callback`](crate::ConnectOptions::token_callback).
#[derive(Debug)]
pub(crate) struct ExternalTokenRegistration;

/// The registration every registry lists.
pub(crate) static EXTERNAL_TOKEN: ExternalTokenRegistration = ExternalTokenRegistration;

impl GrantRegistration for ExternalTokenRegistration {
    fn name(&self) -> &'static str {
        "external-token"
    }

    fn description(&self) -> &'static str {
        "your code supplies the tokens (AuthType=ExternalTokenManagement): a token from a sidecar, another library or a test"
    }

    fn accepts(&self, config: &GrantConfig) -> bool {
        config.auth_type_is("ExternalTokenManagement")
    }

    fn needs_authority(&self) -> bool {
        false
    }

    fn build(&self, config: &GrantConfig) -> Result<Arc<dyn TokenProvider>, ConfigError> {
        let callback = config
            .extensions
            .get::<TokenCallback>()
            .cloned()
            .ok_or_else(|| ConfigError::Missing {
                setting: CALLBACK_SETTING,
                fix: "pass one with ConnectOptions::token_callback".to_owned(),
            })?;
        let mut provider = ExternalTokenProvider::from_boxed(callback);
        if let Some(Lifetime(lifetime)) = config.extensions.get::<Lifetime>() {
            provider = provider.lifetime(*lifetime);
        }
        Ok(Arc::new(provider))
    }
}

/// The `exp` claim of a JWT, read without verification; `None` for anything else.
fn jwt_expiry(token: &str) -> Option<SystemTime> {
    let mut parts = token.trim().split('.');
    let (_header, payload) = (parts.next()?, parts.next()?);
    parts.next()?;
    let json = base64url_decode(payload)?;
    let claims: serde_json::Value = serde_json::from_slice(&json).ok()?;
    let exp = claims.get("exp")?.as_u64()?;
    Some(UNIX_EPOCH + Duration::from_secs(exp))
}

/// Unpadded (or padded) base64url, as JWTs use.
fn base64url_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let mut buffer: u32 = 0;
    let mut bits = 0;
    for byte in text.trim_end_matches('=').bytes() {
        let value = match byte {
            b'A'..=b'Z' => byte - b'A',
            b'a'..=b'z' => byte - b'a' + 26,
            b'0'..=b'9' => byte - b'0' + 52,
            b'-' | b'+' => 62,
            b'_' | b'/' => 63,
            _ => return None,
        };
        buffer = (buffer << 6) | u32::from(value);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push(((buffer >> bits) & 0xff) as u8);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64url_decodes() {
        assert_eq!(base64url_decode("").unwrap(), b"");
        assert_eq!(base64url_decode("Zg").unwrap(), b"f");
        assert_eq!(base64url_decode("Zm8").unwrap(), b"fo");
        assert_eq!(base64url_decode("Zm9v").unwrap(), b"foo");
        assert_eq!(base64url_decode("Zm9vYg==").unwrap(), b"foob");
        assert_eq!(base64url_decode("_-8").unwrap(), [0xff, 0xef]);
        assert!(base64url_decode("a b").is_none());
    }

    #[test]
    fn jwt_expiry_is_read_from_the_payload() {
        // {"alg":"none"} . {"exp":2000000000} . (no signature)
        let token = "eyJhbGciOiJub25lIn0.eyJleHAiOjIwMDAwMDAwMDB9.";
        assert_eq!(
            jwt_expiry(token),
            Some(UNIX_EPOCH + Duration::from_secs(2_000_000_000))
        );
        assert_eq!(jwt_expiry("opaque-token"), None);
        assert_eq!(jwt_expiry("a.b"), None);
    }

    #[tokio::test]
    async fn tokens_of_unknown_expiry_live_for_the_lifetime_and_never_past_exp() {
        let request = TokenRequest::for_url("https://contoso.crm.dynamics.com").unwrap();
        let opaque = ExternalTokenProvider::new(|resource: String| async move {
            assert_eq!(resource, "https://contoso.crm.dynamics.com/");
            Ok(SecretString::from("opaque"))
        })
        .lifetime(Duration::from_secs(60));
        let token = opaque.request_token(&request).await.unwrap();
        let remaining = token.remaining_at(SystemTime::now());
        assert!(remaining <= Duration::from_secs(60) && remaining > Duration::from_secs(50));

        // exp = 1_000_000_000 (2001): already expired, so the token expires then.
        let expired = ExternalTokenProvider::new(|_| async {
            Ok(SecretString::from(
                "eyJhbGciOiJub25lIn0.eyJleHAiOjEwMDAwMDAwMDB9.",
            ))
        });
        let token = expired.request_token(&request).await.unwrap();
        assert_eq!(
            token.expires_on(),
            UNIX_EPOCH + Duration::from_secs(1_000_000_000)
        );

        let empty = ExternalTokenProvider::new(|_| async { Ok(SecretString::from(" ")) });
        assert!(empty.request_token(&request).await.is_err());
        assert_eq!(empty.grant(), Grant::new("external"));
        let two_lines =
            ExternalTokenProvider::new(|_| async { Ok(SecretString::from("abc\ndef")) });
        let error = two_lines.request_token(&request).await.unwrap_err();
        assert!(error.to_string().contains("a line break"), "{error}");
        let padded = ExternalTokenProvider::new(|_| async { Ok(SecretString::from("abc\n")) });
        assert!(padded.request_token(&request).await.is_ok(), "trimmed");
        assert!(!format!("{empty:?}").contains("callback:"));
    }
}
