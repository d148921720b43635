//! Reading `az account get-access-token --output json`: the token, its type, and its expiry
//! from `expires_on` (POSIX seconds, Azure CLI 2.54 and later), else the token's `exp`
//! claim, else `expiresOn` (local time, no offset). No message here quotes the output: it
//! holds the token.

use std::time::{Duration, SystemTime};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use secrecy::SecretString;
use serde_json::{Map, Value};
use time::macros::format_description;
use time::{PrimitiveDateTime, UtcOffset};

/// The advice for an answer this grant cannot read.
pub(crate) const UPGRADE: &str =
    "upgrade the Azure CLI to 2.54 or later (`az upgrade`), whose answer has `expires_on`";

/// A token as the Azure CLI gave it.
pub(crate) struct CliToken {
    pub(crate) secret: SecretString,
    pub(crate) token_type: String,
    pub(crate) expires_on: SystemTime,
    /// Which field the expiry came from, for the logs.
    pub(crate) expiry_from: &'static str,
}

/// Reads the answer; `local_offset` gives the UTC offset of a local time (the process's,
/// when it can be known). The error completes "it …" with what is wrong, never with what
/// the answer holds.
pub(crate) fn parse(
    stdout: &[u8],
    local_offset: impl Fn(PrimitiveDateTime) -> Option<UtcOffset>,
) -> Result<CliToken, String> {
    let value: Value = serde_json::from_slice(stdout).map_err(|error| {
        // A syntax error's message names only a line and a column, but say it in our words.
        format!(
            "is not JSON (at line {}, column {})",
            error.line(),
            error.column()
        )
    })?;
    let Value::Object(fields) = value else {
        return Err("is JSON but not an object".to_owned());
    };
    let secret = match fields.get("accessToken") {
        Some(Value::String(token)) if !token.is_empty() => token.clone(),
        Some(Value::String(_)) => return Err("has an empty `accessToken`".to_owned()),
        Some(_) => return Err("has an `accessToken` that is not text".to_owned()),
        None => return Err("has no `accessToken`".to_owned()),
    };
    let token_type = match fields.get("tokenType") {
        None | Some(Value::Null) => "Bearer".to_owned(),
        Some(Value::String(kind)) => kind.clone(),
        Some(_) => return Err("has a `tokenType` that is not text".to_owned()),
    };
    let (expires_on, expiry_from) = expiry(&fields, &secret, local_offset)?;
    Ok(CliToken {
        secret: SecretString::from(secret),
        token_type,
        expires_on,
        expiry_from,
    })
}

/// The expiry: `expires_on`, else the `exp` claim of a JWT, else `expiresOn`.
fn expiry(
    fields: &Map<String, Value>,
    token: &str,
    local_offset: impl Fn(PrimitiveDateTime) -> Option<UtcOffset>,
) -> Result<(SystemTime, &'static str), String> {
    if let Some(value) = fields.get("expires_on").filter(|value| !value.is_null()) {
        return posix_seconds(value)
            .map(|time| (time, "expires_on"))
            .ok_or_else(|| "has an `expires_on` that is not a time in POSIX seconds".to_owned());
    }
    if let Some(time) = jwt_expiry(token) {
        return Ok((time, "the token's exp claim"));
    }
    match fields.get("expiresOn") {
        Some(Value::String(text)) => {
            local_expiry(text, local_offset).map(|time| (time, "expiresOn"))
        }
        Some(_) => Err(format!("has an `expiresOn` that is not text; {UPGRADE}")),
        None => Err(format!(
            "has no expiry (neither `expires_on` nor `expiresOn`); {UPGRADE}"
        )),
    }
}

/// A POSIX time in seconds, as a number or as text of digits.
fn posix_seconds(value: &Value) -> Option<SystemTime> {
    let seconds = match value {
        Value::Number(number) => number.as_u64().or_else(|| {
            number
                .as_f64()
                .filter(|s| s.is_finite() && *s >= 0.0)
                .map(|s| s as u64)
        })?,
        Value::String(text) => text.trim().parse::<u64>().ok()?,
        _ => return None,
    };
    // Anything past the year 9999 is not an expiry.
    (seconds < 253_402_300_800).then(|| SystemTime::UNIX_EPOCH + Duration::from_secs(seconds))
}

/// The `exp` claim of `token` when it is a JWT (`header.payload.signature`), read without
/// checking the signature: only to know when to ask again.
fn jwt_expiry(token: &str) -> Option<SystemTime> {
    let mut parts = token.split('.');
    let (_, payload, _) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let bytes = URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    let claims: Map<String, Value> = serde_json::from_slice(&bytes).ok()?;
    posix_seconds(claims.get("exp")?)
}

/// `expiresOn`: local time as `%Y-%m-%d %H:%M:%S.%f`, with the offset `local_offset` knows.
fn local_expiry(
    text: &str,
    local_offset: impl Fn(PrimitiveDateTime) -> Option<UtcOffset>,
) -> Result<SystemTime, String> {
    let format = format_description!(
        "[year]-[month]-[day] [hour]:[minute]:[second][optional [.[subsecond]]]"
    );
    let local = PrimitiveDateTime::parse(text.trim(), &format).map_err(|_| {
        format!(
            "has an `expiresOn` that is not a local time (YYYY-MM-DD hh:mm:ss.ffffff); {UPGRADE}"
        )
    })?;
    let offset = local_offset(local).ok_or_else(|| {
        format!(
            "has only the local time of the expiry (`expiresOn`), and this process cannot determine its UTC offset (the time crate reads it only where that is sound, such as a single-threaded process on Unix); {UPGRADE}"
        )
    })?;
    Ok(SystemTime::from(local.assume_offset(offset)))
}

/// The process's UTC offset at `local`, when the time crate can determine it soundly.
pub(crate) fn process_local_offset(local: PrimitiveDateTime) -> Option<UtcOffset> {
    // The offset at that moment read as UTC: at most a day off, which only matters within
    // a day of a change to or from daylight saving time.
    UtcOffset::local_offset_at(local.assume_utc()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(payload: &str) -> String {
        format!(
            "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.{}.c2lnbmF0dXJl",
            URL_SAFE_NO_PAD.encode(payload)
        )
    }

    fn no_offset(_: PrimitiveDateTime) -> Option<UtcOffset> {
        None
    }

    fn at(seconds: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(seconds)
    }

    #[test]
    fn expires_on_as_a_number_or_as_text() {
        for answer in [
            r#"{"accessToken":"t","expires_on":1698760750,"tokenType":"Bearer"}"#,
            r#"{"accessToken":"t","expires_on":"1698760750"}"#,
        ] {
            let token = parse(answer.as_bytes(), no_offset).unwrap();
            assert_eq!(token.expires_on, at(1_698_760_750));
            assert_eq!(token.token_type, "Bearer");
            assert_eq!(token.expiry_from, "expires_on");
        }
    }

    #[test]
    fn the_exp_claim_comes_before_expires_on_local_time() {
        let answer = serde_json::json!({
            "accessToken": jwt(r#"{"aud":"https://contoso.crm.dynamics.com","exp":1700000000}"#),
            "expiresOn": "2023-10-31 21:59:10.000000",
        });
        let token = parse(answer.to_string().as_bytes(), no_offset).unwrap();
        assert_eq!(token.expires_on, at(1_700_000_000));
    }

    #[test]
    fn expires_on_in_local_time_needs_the_offset() {
        let answer = br#"{"accessToken":"opaque","expiresOn":"2023-10-31 21:59:10.000000"}"#;
        let plus_two = |_| Some(UtcOffset::from_hms(2, 0, 0).unwrap());
        // 2023-10-31 19:59:10 UTC
        assert_eq!(
            parse(answer, plus_two).unwrap().expires_on,
            at(1_698_782_350)
        );
        let without_fraction = br#"{"accessToken":"opaque","expiresOn":"2023-10-31 21:59:10"}"#;
        assert_eq!(
            parse(without_fraction, plus_two).unwrap().expires_on,
            at(1_698_782_350)
        );
        let error = parse(answer, no_offset).map(|_| ()).unwrap_err();
        assert!(error.contains("2.54"), "{error}");
    }

    #[test]
    fn broken_answers_are_described_never_quoted() {
        for (answer, expected) in [
            ("not json SECRET", "not JSON"),
            ("[\"SECRET\"]", "not an object"),
            (r#"{"token":"SECRET"}"#, "no `accessToken`"),
            (r#"{"accessToken":""}"#, "empty `accessToken`"),
            (r#"{"accessToken":7}"#, "not text"),
            (
                r#"{"accessToken":"SECRET","tokenType":1,"expires_on":1}"#,
                "`tokenType`",
            ),
            (
                r#"{"accessToken":"SECRET","expires_on":"SECRET"}"#,
                "`expires_on`",
            ),
            (
                r#"{"accessToken":"SECRET","expires_on":-5}"#,
                "`expires_on`",
            ),
            (r#"{"accessToken":"SECRET"}"#, "no expiry"),
            (
                r#"{"accessToken":"SECRET","expiresOn":"SECRET"}"#,
                "not a local time",
            ),
        ] {
            let error = parse(answer.as_bytes(), no_offset).map(|_| ()).unwrap_err();
            assert!(error.contains(expected), "{answer}: {error}");
            assert!(!error.contains("SECRET"), "{answer}: {error}");
        }
    }

    #[test]
    fn only_a_three_part_token_with_a_json_payload_is_read_as_a_jwt() {
        assert_eq!(
            jwt_expiry(&jwt(r#"{"exp":1700000000}"#)),
            Some(at(1_700_000_000))
        );
        assert_eq!(
            jwt_expiry(&jwt(r#"{"exp":"1700000000"}"#)),
            Some(at(1_700_000_000))
        );
        assert_eq!(jwt_expiry(&jwt(r#"{"nbf":1}"#)), None);
        assert_eq!(jwt_expiry(&jwt("not json")), None);
        assert_eq!(jwt_expiry("a.b"), None);
        assert_eq!(jwt_expiry("a.b.c.d.e"), None);
        assert_eq!(jwt_expiry("opaque"), None);
    }
}
