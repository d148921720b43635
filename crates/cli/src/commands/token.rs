//! `d365 whoami` and `d365 token`.

use std::io::Write as _;
use std::time::SystemTime;

use base64::Engine as _;
use d365_auth_core::{AccessToken, TokenRequest};
use secrecy::ExposeSecret as _;
use serde_json::{Value, json};

use crate::cli::OutputFormat;
use crate::connection::Connection;
use crate::output;

/// `d365 whoami`.
pub(crate) async fn whoami(connection: &Connection, format: OutputFormat) -> anyhow::Result<()> {
    let me = connection.client.who_am_i().await?;
    crate::timing::phase("WhoAmI answered (token from the cache or the grant, one request)");
    output::facts(
        &mut std::io::stdout().lock(),
        format,
        &[
            ("UserId", json!(me.user_id.to_string())),
            ("BusinessUnitId", json!(me.business_unit_id.to_string())),
            ("OrganizationId", json!(me.organization_id.to_string())),
            (
                "Organization",
                json!(connection.client.org().organization_url()),
            ),
            ("Connection", json!(connection.source)),
        ],
    )
}

/// The claims of a JWT, without verifying it (display only).
pub(crate) fn claims(token: &AccessToken) -> Option<Value> {
    let payload = token.secret().expose_secret().split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// An instant as `YYYY-MM-DD hh:mm:ss UTC`.
pub(crate) fn format_time(instant: SystemTime) -> String {
    let seconds = instant
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|duration| duration.as_secs())
        .unwrap_or_default();
    let format =
        time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second] UTC");
    i64::try_from(seconds)
        .ok()
        .and_then(|seconds| time::OffsetDateTime::from_unix_timestamp(seconds).ok())
        .and_then(|at| at.format(&format).ok())
        .unwrap_or_else(|| format!("{seconds} (Unix time)"))
}

/// The facts `token` and `auth compare` show about a token.
pub(crate) fn token_facts(token: &AccessToken) -> Vec<(&'static str, Value)> {
    let claims = claims(token).unwrap_or(Value::Null);
    let minutes = token.remaining_at(SystemTime::now()).as_secs() / 60;
    let app_only =
        claims.get("idtyp").and_then(Value::as_str) == Some("app") || claims.get("scp").is_none();
    vec![
        (
            "expires",
            json!(format!(
                "{} (in {minutes} min)",
                format_time(token.expires_on())
            )),
        ),
        (
            "audience",
            claims.get("aud").cloned().unwrap_or(Value::Null),
        ),
        ("issuer", claims.get("iss").cloned().unwrap_or(Value::Null)),
        ("tenant", claims.get("tid").cloned().unwrap_or(Value::Null)),
        (
            "application",
            claims
                .get("appid")
                .or_else(|| claims.get("azp"))
                .cloned()
                .unwrap_or(Value::Null),
        ),
        (
            "kind",
            json!(if app_only { "app-only" } else { "delegated" }),
        ),
        (
            "user",
            claims
                .get("upn")
                .or_else(|| claims.get("preferred_username"))
                .cloned()
                .unwrap_or(Value::Null),
        ),
        (
            "object id",
            claims.get("oid").cloned().unwrap_or(Value::Null),
        ),
        ("roles", claims.get("roles").cloned().unwrap_or(Value::Null)),
        ("scp", claims.get("scp").cloned().unwrap_or(Value::Null)),
        ("version", claims.get("ver").cloned().unwrap_or(Value::Null)),
    ]
}

/// `d365 token [--raw]`.
pub(crate) async fn token(
    connection: &Connection,
    format: OutputFormat,
    raw: bool,
) -> anyhow::Result<()> {
    let request = TokenRequest::new(connection.client.org().clone());
    let token = connection.provider.request_token(&request).await?;
    let mut stdout = std::io::stdout().lock();
    if raw {
        writeln!(stdout, "{}", token.secret().expose_secret())?;
        return Ok(());
    }
    let mut facts = token_facts(&token);
    if format != OutputFormat::Table || output::query_active() {
        // For scripts: the expiry as numbers and ISO 8601, not a sentence.
        facts.retain(|(label, _)| *label != "expires");
        facts.splice(0..0, expiry_facts(token.expires_on(), SystemTime::now()));
    }
    facts.push(("grant", json!(connection.provider.grant().to_string())));
    output::facts(&mut stdout, format, &facts)
}

/// `expires_on` (Unix time, seconds), `expires_on_iso` (ISO 8601 / RFC 3339, UTC) and
/// `expires_in` (seconds from `now`, 0 once expired).
fn expiry_facts(expires_on: SystemTime, now: SystemTime) -> Vec<(&'static str, Value)> {
    let epoch = expires_on
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|duration| duration.as_secs())
        .unwrap_or_default();
    let iso = i64::try_from(epoch)
        .ok()
        .and_then(|seconds| time::OffsetDateTime::from_unix_timestamp(seconds).ok())
        .and_then(|at| {
            at.format(&time::format_description::well_known::Rfc3339)
                .ok()
        });
    let remaining = expires_on
        .duration_since(now)
        .map(|duration| duration.as_secs())
        .unwrap_or_default();
    vec![
        ("expires_on", json!(epoch)),
        ("expires_on_iso", json!(iso)),
        ("expires_in", json!(remaining)),
    ]
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn the_expiry_for_scripts_is_epoch_seconds_and_iso_8601() {
        let expires = SystemTime::UNIX_EPOCH + Duration::from_secs(1_765_000_000);
        let facts = expiry_facts(expires, expires - Duration::from_secs(90));
        assert_eq!(facts[0], ("expires_on", json!(1_765_000_000_u64)));
        assert_eq!(facts[1], ("expires_on_iso", json!("2025-12-06T05:46:40Z")));
        assert_eq!(facts[2], ("expires_in", json!(90)));
        let facts = expiry_facts(expires, expires + Duration::from_secs(5));
        assert_eq!(facts[2], ("expires_in", json!(0)), "expired");
    }
}
