//! [`DeviceCodeMessage`]: what the user must be shown (where to go, which code to type),
//! and the device authorization answer it is read from, whose device code stays a secret.

use std::fmt;
use std::time::{Duration, SystemTime};

use d365_auth_core::AuthError;
use secrecy::SecretString;
use serde_json::Value;
use url::Url;

/// The interval RFC 8628 §3.2 prescribes when the server names none.
pub(crate) const DEFAULT_INTERVAL: Duration = Duration::from_secs(5);
/// The lifetime assumed when the server names none: Entra ID's default.
pub(crate) const DEFAULT_LIFETIME: Duration = Duration::from_secs(900);
/// Intervals below this are raised to it, so a server saying `0` is not polled in a loop.
pub(crate) const MIN_INTERVAL: Duration = Duration::from_secs(1);

/// What to show the person who signs in: the page to open and the code to type there.
///
/// The grant hands it to your callback ([`DeviceCodeBuilder::on_message`](crate::DeviceCodeBuilder::on_message))
/// once per sign-in, then polls until the person has signed in, declined, or the code
/// expired. It holds no secret: the device code the grant polls with is not part of it,
/// so `Debug` and `Display` are safe to log.
///
/// `Display` writes [`message`](Self::message), the identity provider's own sentence:
///
/// ```text
/// To sign in, use a web browser to open the page https://microsoft.com/devicelogin and enter the code BPPVYQZMA to authenticate.
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeviceCodeMessage {
    /// The code the person types at the verification page, such as `BPPVYQZMA`.
    pub user_code: String,
    /// The page to open, such as `https://microsoft.com/devicelogin`.
    pub verification_uri: Url,
    /// The page with the code already filled in, when the server offers one (Entra ID
    /// does not).
    pub verification_uri_complete: Option<Url>,
    /// When the code stops working (the local clock's reading of `expires_in`).
    pub expires_at: SystemTime,
    /// How long the code is valid from when it arrived (`expires_in`; 15 minutes at
    /// Entra ID).
    pub expires_in: Duration,
    /// How long the grant waits between polls (`interval`; 5 seconds when the server names
    /// none, and never less than one second).
    pub interval: Duration,
    /// The identity provider's instructions for the person, ready to show; composed from
    /// the page and the code when the server sends none.
    pub message: String,
}

impl fmt::Display for DeviceCodeMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// A device authorization answer: the message for the person and the device code.
pub(crate) struct Authorization {
    pub(crate) device_code: SecretString,
    pub(crate) message: DeviceCodeMessage,
}

impl Authorization {
    /// Reads the JSON answer of the device authorization endpoint. Numbers may be strings
    /// (as the v1 endpoint sent them), `verification_url` is accepted for
    /// `verification_uri` (the older spelling), `interval` defaults to 5 seconds and
    /// `expires_in` to 15 minutes. The body is never quoted in an error: it holds the
    /// device code.
    pub(crate) fn parse(
        endpoint: &Url,
        body: &Value,
        received_at: SystemTime,
    ) -> Result<Self, AuthError> {
        let unreadable = |detail: String| AuthError::UnexpectedResponse {
            endpoint: endpoint.clone(),
            status: http::StatusCode::OK,
            detail,
        };
        let text = |field: &str| {
            body.get(field)
                .and_then(Value::as_str)
                .map(str::trim)
                .filter(|text| !text.is_empty())
        };
        let device_code = text("device_code").ok_or_else(|| {
            unreadable("a device authorization response without a device_code".to_owned())
        })?;
        let user_code = text("user_code").ok_or_else(|| {
            unreadable("a device authorization response without a user_code".to_owned())
        })?;
        let verification_uri = text("verification_uri")
            .or_else(|| text("verification_url"))
            .ok_or_else(|| {
                unreadable("a device authorization response without a verification_uri".to_owned())
            })
            .and_then(|uri| {
                Url::parse(uri).map_err(|_| {
                    unreadable(format!("a verification_uri that is not a URL (`{uri}`)"))
                })
            })?;
        let verification_uri_complete =
            text("verification_uri_complete").and_then(|uri| Url::parse(uri).ok());
        let seconds = |field: &str| -> Result<Option<Duration>, AuthError> {
            match body.get(field) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::Number(number)) => number
                    .as_u64()
                    .map(|value| Some(Duration::from_secs(value)))
                    .ok_or_else(|| unreadable(format!("a device authorization response whose `{field}` is not a whole number of seconds"))),
                Some(Value::String(text)) => text
                    .trim()
                    .parse()
                    .map(|value| Some(Duration::from_secs(value)))
                    .map_err(|_| unreadable(format!("a device authorization response whose `{field}` is not a whole number of seconds"))),
                Some(_) => Err(unreadable(format!("a device authorization response whose `{field}` is not a whole number of seconds"))),
            }
        };
        let expires_in = seconds("expires_in")?.unwrap_or(DEFAULT_LIFETIME);
        let interval = seconds("interval")?
            .unwrap_or(DEFAULT_INTERVAL)
            .max(MIN_INTERVAL);
        let message = text("message").map_or_else(
            || format!("To sign in, use a web browser to open the page {verification_uri} and enter the code {user_code} to authenticate."),
            str::to_owned,
        );
        Ok(Self {
            device_code: SecretString::from(device_code.to_owned()),
            message: DeviceCodeMessage {
                user_code: user_code.to_owned(),
                verification_uri,
                verification_uri_complete,
                expires_at: received_at.checked_add(expires_in).unwrap_or(received_at),
                expires_in,
                interval,
                message,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn endpoint() -> Url {
        Url::parse("https://login.microsoftonline.com/organizations/oauth2/v2.0/devicecode")
            .unwrap()
    }

    #[test]
    fn entras_answer_is_read_and_the_device_code_kept_apart() {
        let now = SystemTime::now();
        let answer = json!({
            "user_code": "BPPVYQZMA",
            "device_code": "DEVICE-CODE-VALUE",
            "verification_uri": "https://microsoft.com/devicelogin",
            "expires_in": 900,
            "interval": 5,
            "message": "To sign in, use a web browser to open the page https://microsoft.com/devicelogin and enter the code BPPVYQZMA to authenticate."
        });
        let authorization = Authorization::parse(&endpoint(), &answer, now).unwrap();
        let message = &authorization.message;
        assert_eq!(message.user_code, "BPPVYQZMA");
        assert_eq!(
            message.verification_uri.as_str(),
            "https://microsoft.com/devicelogin"
        );
        assert_eq!(message.verification_uri_complete, None);
        assert_eq!(message.expires_in, Duration::from_secs(900));
        assert_eq!(message.expires_at, now + Duration::from_secs(900));
        assert_eq!(message.interval, Duration::from_secs(5));
        assert_eq!(message.to_string(), answer["message"].as_str().unwrap());
        assert!(!format!("{message:?}").contains("DEVICE-CODE-VALUE"));
    }

    #[test]
    fn lenient_where_servers_differ() {
        let answer = json!({
            "user_code": "ABCD-EFGH",
            "device_code": "x",
            "verification_url": "https://example.com/device",
            "verification_uri_complete": "https://example.com/device?user_code=ABCD-EFGH",
            "expires_in": "600",
        });
        let message = Authorization::parse(&endpoint(), &answer, SystemTime::now())
            .unwrap()
            .message;
        assert_eq!(
            message.interval, DEFAULT_INTERVAL,
            "RFC 8628: 5 s when absent"
        );
        assert_eq!(message.expires_in, Duration::from_secs(600));
        assert_eq!(
            message.verification_uri_complete.unwrap().as_str(),
            "https://example.com/device?user_code=ABCD-EFGH"
        );
        assert_eq!(
            message.message,
            "To sign in, use a web browser to open the page https://example.com/device and enter the code ABCD-EFGH to authenticate."
        );
        let zero = json!({"user_code": "A", "device_code": "x", "verification_uri": "https://e.example/", "interval": 0});
        let message = Authorization::parse(&endpoint(), &zero, SystemTime::now())
            .unwrap()
            .message;
        assert_eq!(message.interval, MIN_INTERVAL);
        assert_eq!(message.expires_in, DEFAULT_LIFETIME);
    }

    #[test]
    fn unusable_answers_name_the_field_and_never_quote_the_body() {
        for (answer, expected) in [
            (
                json!({"user_code": "A", "verification_uri": "https://e.example/"}),
                "without a device_code",
            ),
            (
                json!({"device_code": "SECRET-DEVICE-CODE", "verification_uri": "https://e.example/"}),
                "without a user_code",
            ),
            (
                json!({"device_code": "SECRET-DEVICE-CODE", "user_code": "A"}),
                "without a verification_uri",
            ),
            (
                json!({"device_code": "SECRET-DEVICE-CODE", "user_code": "A", "verification_uri": "devicelogin"}),
                "is not a URL",
            ),
            (
                json!({"device_code": "SECRET-DEVICE-CODE", "user_code": "A", "verification_uri": "https://e.example/", "interval": -5}),
                "`interval`",
            ),
            (
                json!({"device_code": "SECRET-DEVICE-CODE", "user_code": "A", "verification_uri": "https://e.example/", "expires_in": "soon"}),
                "`expires_in`",
            ),
        ] {
            let error = Authorization::parse(&endpoint(), &answer, SystemTime::now())
                .err()
                .unwrap();
            let text = error.to_string();
            assert!(text.contains(expected), "{text}");
            assert!(!text.contains("SECRET-DEVICE-CODE"), "{text}");
        }
    }
}
