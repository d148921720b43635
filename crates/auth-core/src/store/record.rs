//! The record persistent stores write for one token: a small JSON object with the access
//! token, its refresh token, expiry, `refresh_on`, token type, resource and scope.
//!
//! Times are whole seconds since the Unix epoch (sub-second precision is dropped: expiry
//! planning works in seconds). A `v` field versions the format so that a reader meets a
//! future format as "unreadable" (a miss), never as a wrong token.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use crate::resource::Resource;
use crate::store::StoreError;
use crate::token::AccessToken;

/// The record format's version.
const VERSION: u32 = 1;

/// One token as it is written to a file or Redis. Holds secrets: it is never logged and
/// has no `Debug`.
#[derive(Serialize, Deserialize)]
pub(crate) struct Record {
    v: u32,
    access_token: String,
    token_type: String,
    expires_on: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    refresh_on: Option<u64>,
    resource: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    scope: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    refresh_token: Option<String>,
}

fn unix_seconds(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs()
}

fn from_unix_seconds(seconds: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(seconds)
}

impl Record {
    pub(crate) fn from_token(token: &AccessToken) -> Self {
        Self {
            v: VERSION,
            access_token: token.secret().expose_secret().to_owned(),
            token_type: token.token_type().to_owned(),
            expires_on: unix_seconds(token.expires_on()),
            refresh_on: token.refresh_on().map(unix_seconds),
            resource: token.resource().as_str().to_owned(),
            scope: token.scope().map(str::to_owned),
            refresh_token: token
                .refresh_token()
                .map(|secret| secret.expose_secret().to_owned()),
        }
    }

    /// The token again. The error names what is wrong, never a value.
    pub(crate) fn into_token(self) -> Result<AccessToken, StoreError> {
        if self.v != VERSION {
            return Err(StoreError::new(
                format!(
                    "token record version {} is not the supported {VERSION}",
                    self.v
                ),
                None,
            ));
        }
        if self.access_token.is_empty() {
            return Err(StoreError::new(
                "token record has an empty access token",
                None,
            ));
        }
        let resource = Resource::parse(&self.resource).map_err(|error| {
            StoreError::new("token record has an invalid resource", Some(error.into()))
        })?;
        let mut builder = AccessToken::builder(
            self.access_token.into(),
            from_unix_seconds(self.expires_on),
            resource,
        )
        .token_type(self.token_type);
        if let Some(refresh_on) = self.refresh_on {
            builder = builder.refresh_on(from_unix_seconds(refresh_on));
        }
        if let Some(scope) = self.scope {
            builder = builder.scope(scope);
        }
        if let Some(refresh_token) = self.refresh_token {
            builder = builder.refresh_token(refresh_token.into());
        }
        builder.build().map_err(|problem| {
            StoreError::new(
                format!("token record has an access token that {problem}"),
                None,
            )
        })
    }

    /// Whether the record is worth keeping at `now`: its access token is valid, or it
    /// carries a refresh token whose access token expired less than `keep_refresh_for` ago.
    pub(crate) fn is_worth_keeping(&self, now: SystemTime, keep_refresh_for: Duration) -> bool {
        let expires_on = from_unix_seconds(self.expires_on);
        if now < expires_on {
            return true;
        }
        self.refresh_token.is_some()
            && now
                .duration_since(expires_on)
                .is_ok_and(|expired_for| expired_for < keep_refresh_for)
    }
}

/// The JSON record of `token` that persistent stores write: access token, refresh token,
/// token type, expiry and `refresh_on` (whole Unix seconds), resource and scope.
///
/// The result holds both tokens in clear text, so it is a [`SecretString`]: write it where
/// only its owner can read it (a `0600` file, an ACL-protected Redis, encrypted at rest) and
/// never log it. [`decode_token`] reads it back.
///
/// # Examples
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use d365_auth_core::{AccessToken, Resource};
/// use d365_auth_core::store::{decode_token, encode_token};
/// use secrecy::ExposeSecret;
///
/// let token = AccessToken::builder(
///     "eyJ0eXAi...".into(),
///     SystemTime::now() + Duration::from_secs(3600),
///     Resource::parse("https://contoso.crm.dynamics.com")?,
/// )
/// .refresh_token("0.ARwA...".into())
/// .build()?;
/// let json = encode_token(&token);
/// let again = decode_token(json.expose_secret())?;
/// assert!(again.same_token(&token));
/// assert!(again.refresh_token().is_some());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[must_use]
pub fn encode_token(token: &AccessToken) -> SecretString {
    // Serializing a struct of strings and integers cannot fail.
    serde_json::to_string(&Record::from_token(token))
        .unwrap_or_default()
        .into()
}

/// Reads a record written by [`encode_token`].
///
/// # Errors
///
/// [`StoreError`] when `json` is not such a record (not JSON, another format, another
/// version, an invalid resource). The message never quotes the input.
///
/// # Examples
///
/// ```
/// use d365_auth_core::store::decode_token;
///
/// assert!(decode_token("not json").is_err());
/// assert!(decode_token(r#"{"hello":"world"}"#).is_err());
/// ```
pub fn decode_token(json: &str) -> Result<AccessToken, StoreError> {
    let record: Record = serde_json::from_str(json).map_err(|error| {
        StoreError::new(
            format!("not a token record ({})", json_error_kind(&error)),
            None,
        )
    })?;
    record.into_token()
}

/// What kind of JSON failure `error` is. Its message is not used: for data errors
/// serde_json quotes the offending value, which may be a token.
pub(crate) fn json_error_kind(error: &serde_json::Error) -> &'static str {
    match error.classify() {
        serde_json::error::Category::Io => "unreadable",
        serde_json::error::Category::Syntax => "invalid JSON",
        serde_json::error::Category::Data => "JSON of another shape",
        serde_json::error::Category::Eof => "truncated JSON",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(refresh: bool) -> AccessToken {
        let now = SystemTime::now();
        let builder = AccessToken::builder(
            "access-secret".into(),
            now + Duration::from_secs(3600),
            Resource::parse("https://contoso.crm.dynamics.com").unwrap(),
        )
        .token_type("pop")
        .scope("https://contoso.crm.dynamics.com/.default")
        .refresh_on(now + Duration::from_secs(1800));
        if refresh {
            builder.refresh_token("refresh-secret".into()).build()
        } else {
            builder.build()
        }
        .unwrap()
    }

    #[test]
    fn every_field_survives_a_round_trip() {
        let original = token(true);
        let again = decode_token(encode_token(&original).expose_secret()).unwrap();
        assert!(again.same_token(&original));
        assert_eq!(again.token_type(), "pop");
        assert_eq!(
            unix_seconds(again.expires_on()),
            unix_seconds(original.expires_on())
        );
        assert_eq!(
            again.refresh_on().map(unix_seconds),
            original.refresh_on().map(unix_seconds)
        );
        assert_eq!(again.resource(), original.resource());
        assert_eq!(again.scope(), original.scope());
        assert_eq!(
            again.refresh_token().map(|s| s.expose_secret().to_owned()),
            Some("refresh-secret".to_owned())
        );
        assert!(
            decode_token(encode_token(&token(false)).expose_secret())
                .unwrap()
                .refresh_token()
                .is_none()
        );
    }

    #[test]
    fn foreign_records_are_errors_that_quote_nothing() {
        let cases = [
            "",
            "not json at all: access-secret",
            r#"{"hello":"access-secret"}"#,
            r#"{"v":2,"access_token":"access-secret","token_type":"Bearer","expires_on":1,"resource":"https://contoso.crm.dynamics.com"}"#,
            r#"{"v":1,"access_token":"access-secret","token_type":"Bearer","expires_on":1,"resource":"not a url"}"#,
            r#"{"v":1,"access_token":"","token_type":"Bearer","expires_on":1,"resource":"https://contoso.crm.dynamics.com"}"#,
        ];
        for case in cases {
            let error = decode_token(case).expect_err(case);
            let shown = format!("{error} {error:?}");
            assert!(!shown.contains("access-secret"), "{shown}");
        }
    }

    #[test]
    fn expired_records_are_kept_only_for_their_refresh_token() {
        let now = SystemTime::now();
        let day = Duration::from_secs(86_400);
        let mut record = Record::from_token(&token(false));
        assert!(record.is_worth_keeping(now, day));
        record.expires_on = unix_seconds(now - Duration::from_secs(10));
        assert!(!record.is_worth_keeping(now, day));
        record.refresh_token = Some("refresh".into());
        assert!(record.is_worth_keeping(now, day));
        record.expires_on = unix_seconds(now - 2 * day);
        assert!(!record.is_worth_keeping(now, day));
    }
}
