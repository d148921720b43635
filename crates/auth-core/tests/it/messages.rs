//! Every message a person reads from auth-core, rendered once into an insta snapshot: one
//! per known AADSTS code, the fallbacks by RFC 6749 error, transport failures and
//! configuration mistakes. A changed wording shows up in review as a snapshot diff.

use std::fmt::Write as _;
use std::time::Duration;

use d365_auth_core::grant::classify_error_response;
use d365_auth_core::{AuthError, ConfigError, Resource, Tenant};
use http::{HeaderMap, StatusCode};
use url::Url;

/// Every code with a row of its own, and unknown codes for each fallback.
const CODES: &[(u32, &str, u16)] = &[
    (7000215, "invalid_client", 401),
    (7000222, "invalid_client", 401),
    (7000218, "invalid_client", 401),
    (7000216, "invalid_client", 401),
    (700025, "invalid_client", 401),
    (700016, "unauthorized_client", 400),
    (700027, "invalid_client", 401),
    (50012, "invalid_client", 401),
    (700030, "invalid_client", 401),
    (50013, "invalid_client", 401),
    (700021, "invalid_client", 401),
    (700024, "invalid_client", 401),
    (7000112, "unauthorized_client", 400),
    (90002, "invalid_request", 400),
    (90038, "invalid_request", 400),
    (900382, "invalid_client", 401),
    (900432, "invalid_client", 401),
    (9001023, "invalid_request", 400),
    (90124, "invalid_request", 400),
    (90130, "invalid_request", 400),
    (50049, "invalid_instance", 400),
    (50126, "invalid_grant", 400),
    (50034, "invalid_grant", 400),
    (50053, "invalid_grant", 400),
    (50055, "invalid_grant", 400),
    (50144, "invalid_grant", 400),
    (50057, "invalid_grant", 400),
    (50076, "invalid_grant", 400),
    (50079, "invalid_grant", 400),
    (53003, "invalid_grant", 400),
    (65001, "invalid_grant", 400),
    (650057, "invalid_client", 400),
    (500011, "invalid_resource", 400),
    (50001, "invalid_resource", 400),
    (70011, "invalid_scope", 400),
    (700022, "invalid_scope", 400),
    (901002, "invalid_request", 400),
    (900144, "invalid_request", 400),
    (90014, "invalid_request", 400),
    (70000, "invalid_grant", 400),
    (70008, "invalid_grant", 400),
    (700082, "invalid_grant", 400),
    (50173, "invalid_grant", 400),
    (70043, "invalid_grant", 400),
    (70003, "unsupported_grant_type", 400),
    (70016, "authorization_pending", 400),
    (70018, "bad_verification_code", 400),
    (70019, "invalid_grant", 400),
    (70020, "expired_token", 400),
    // The device code grant's polling errors are known by their `error` value, whatever
    // code comes with them (70000 alone is a refused refresh token).
    (70000, "authorization_declined", 400),
    (8, "slow_down", 400),
    (9, "access_denied", 400),
    (50196, "invalid_request", 400),
    (1, "invalid_client", 401),
    (2, "invalid_grant", 400),
    (3, "invalid_scope", 400),
    (4, "unauthorized_client", 400),
    (5, "interaction_required", 400),
    (6, "temporarily_unavailable", 503),
    (7, "something_new", 400),
];

fn endpoint() -> Url {
    Url::parse("https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token")
        .unwrap()
}

fn render(out: &mut String, label: &str, error: &AuthError) {
    writeln!(out, "## {label}\nkind: {:?}\n{error}", error.kind()).unwrap();
    if let Some(hint) = error.hint() {
        writeln!(out, "hint: {hint}").unwrap();
    }
    out.push('\n');
}

#[test]
fn identity_error_messages() {
    let mut out = String::new();
    for (code, error, status) in CODES {
        let body = format!(
            r#"{{"error":"{error}","error_description":"AADSTS{code}: Server text for {code}.\r\nTrace ID: trace-{code}\r\nCorrelation ID: corr-{code}\r\nTimestamp: 2026-01-01 00:00:00Z","error_codes":[{code}],"trace_id":"trace-{code}","correlation_id":"corr-{code}"}}"#
        );
        let status = StatusCode::from_u16(*status).unwrap();
        let error =
            classify_error_response(&endpoint(), status, &HeaderMap::new(), body.as_bytes());
        render(
            &mut out,
            &format!("AADSTS{code} {}", error.identity().unwrap().error()),
            &error,
        );
    }
    insta::assert_snapshot!(out);
}

#[test]
fn transport_and_configuration_messages() {
    let mut out = String::new();
    let mut headers = HeaderMap::new();
    headers.insert("retry-after", "30".parse().unwrap());
    render(
        &mut out,
        "throttled",
        &classify_error_response(
            &endpoint(),
            StatusCode::TOO_MANY_REQUESTS,
            &headers,
            b"slow down",
        ),
    );
    headers = HeaderMap::new();
    headers.insert("content-type", "text/html".parse().unwrap());
    render(
        &mut out,
        "proxy page",
        &classify_error_response(
            &endpoint(),
            StatusCode::BAD_GATEWAY,
            &headers,
            b"<html><title>502 Bad Gateway</title></html>",
        ),
    );
    headers = HeaderMap::new();
    headers.insert("location", "https://captive.example/login".parse().unwrap());
    render(
        &mut out,
        "redirect",
        &classify_error_response(&endpoint(), StatusCode::FOUND, &headers, b""),
    );
    render(
        &mut out,
        "timeout",
        &AuthError::Timeout {
            endpoint: endpoint(),
            after: Duration::from_secs(30),
        },
    );
    render(
        &mut out,
        "cancelled",
        &AuthError::Cancelled {
            operation: "the device code sign-in".to_owned(),
        },
    );
    render(
        &mut out,
        "code expired on the client's clock",
        &AuthError::CodeExpired {
            lifetime: Duration::from_secs(900),
        },
    );
    render(
        &mut out,
        "credential",
        &AuthError::credential(
            "the certificate file /etc/app.pem could not be read: permission denied",
            None,
        ),
    );
    for (label, input) in [
        ("no scheme", "contoso.crm.dynamics.com"),
        ("plain http", "http://contoso.crm.dynamics.com"),
        ("query", "https://contoso.crm.dynamics.com/?x=1"),
        (
            "credentials",
            "https://admin:hunter2@contoso.crm.dynamics.com",
        ),
        ("path", "https://contoso.crm.dynamics.com/sales"),
        (
            "connection string",
            "AuthType=ClientSecret;Url=https://contoso.crm.dynamics.com;ClientSecret=hunter2",
        ),
    ] {
        render(
            &mut out,
            &format!("organization URL: {label}"),
            &Resource::parse(input).unwrap_err().into(),
        );
    }
    for input in ["contoso", "12345678-1234-1234-1234", "adfs"] {
        let error: AuthError = Tenant::parse(input).unwrap_err().into();
        render(&mut out, &format!("tenant {input:?}"), &error);
    }
    render(
        &mut out,
        "missing setting",
        &ConfigError::Missing {
            setting: "ClientSecret",
            fix: "set it, or use AuthType=Certificate".into(),
        }
        .into(),
    );
    assert!(!out.contains("hunter2"), "a secret reached a message");
    insta::assert_snapshot!(out);
}
