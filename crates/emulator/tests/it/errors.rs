//! One row per token endpoint failure: the request, and the HTTP status, `error` value and
//! AADSTS code Entra answers it with, in Entra's JSON error shape.

use d365_emulator::{Emulator, EmulatorConfig};
use jsonwebtoken::Algorithm;
use secrecy::ExposeSecret as _;
use serde_json::json;

use crate::common::{self, Thumbprint, assertion, client, now};

const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
const SCOPE: &str = "https://contoso.crm.dynamics.com/.default";
const RESOURCE: &str = "https://contoso.crm.dynamics.com/";

#[derive(Clone, Copy, PartialEq, Eq)]
enum Version {
    V1,
    V2,
}

struct Row {
    name: &'static str,
    version: Version,
    /// Tenant path segment; `None` = the seeded tenant GUID.
    tenant: Option<&'static str>,
    form: Vec<(&'static str, String)>,
    /// `(client id, secret)` for an `Authorization: Basic` header.
    basic: Option<(String, String)>,
    /// A raw body instead of the form.
    raw_body: Option<&'static [u8]>,
    /// Send the same request once before, expecting success (replay rows).
    send_twice: bool,
    status: u16,
    error: &'static str,
    code: u64,
}

fn row(
    name: &'static str,
    version: Version,
    form: Vec<(&'static str, String)>,
    status: u16,
    error: &'static str,
    code: u64,
) -> Row {
    Row {
        name,
        version,
        tenant: None,
        form,
        basic: None,
        raw_body: None,
        send_twice: false,
        status,
        error,
        code,
    }
}

fn s(text: &str) -> String {
    text.to_owned()
}

const CONFIG: &str = r#"
[[users]]
upn = "carol@contoso.onmicrosoft.com"
password = "Emulator-Passw0rd!"
disabled = true

[[users]]
upn = "dave@contoso.onmicrosoft.com"
password = "Emulator-Passw0rd!"
federated = true
"#;

#[tokio::test]
async fn every_failure_has_entra_status_error_and_code() {
    let config = EmulatorConfig::from_toml_str(CONFIG).expect("config");
    let emulator = Emulator::builder()
        .config(config)
        .start()
        .await
        .expect("started");
    let seeded = emulator.seeded().expect("seeded").clone();
    let confidential = &seeded.confidential_app;
    let cert_app = &seeded.certificate_app;
    let public = &seeded.public_app.client_id;
    let password = seeded.user.password.expose_secret().to_owned();
    let v2_url = emulator.token_endpoint_v2();

    let cc_secret = |secret: &str| {
        vec![
            ("grant_type", s("client_credentials")),
            ("client_id", confidential.client_id.clone()),
            ("client_secret", s(secret)),
            ("scope", s(SCOPE)),
        ]
    };
    let cc_assertion = |jwt: String| {
        vec![
            ("grant_type", s("client_credentials")),
            ("client_id", cert_app.client_id.clone()),
            ("client_assertion_type", s(JWT_BEARER)),
            ("client_assertion", jwt),
            ("scope", s(SCOPE)),
        ]
    };
    let ropc = |user: &str, pw: &str| {
        vec![
            ("grant_type", s("password")),
            ("client_id", public.clone()),
            ("username", s(user)),
            ("password", s(pw)),
            ("scope", s(SCOPE)),
        ]
    };
    let signed = |adjust: &dyn Fn(&mut serde_json::Value)| {
        assertion(
            cert_app,
            &v2_url,
            Algorithm::RS256,
            Thumbprint::Sha256,
            |c| {
                adjust(c);
            },
        )
    };
    let tampered = {
        let jwt = signed(&|_| {});
        let (rest, signature) = jwt.rsplit_once('.').expect("three parts");
        let flipped = if signature.starts_with('A') { "B" } else { "A" };
        format!("{rest}.{flipped}{}", &signature[1..])
    };
    let mut unregistered = cert_app.clone();
    unregistered.x5t_s256 = s("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");

    let rows = vec![
        row(
            "bad secret",
            Version::V2,
            cc_secret("wrong"),
            401,
            "invalid_client",
            7_000_215,
        ),
        Row {
            basic: Some((confidential.client_id.clone(), s("wrong"))),
            ..row(
                "bad secret in Basic header",
                Version::V2,
                vec![("grant_type", s("client_credentials")), ("scope", s(SCOPE))],
                401,
                "invalid_client",
                7_000_215,
            )
        },
        row(
            "expired secret",
            Version::V2,
            cc_secret(confidential.expired_secret.expose_secret()),
            401,
            "invalid_client",
            7_000_222,
        ),
        row(
            "unknown client",
            Version::V2,
            vec![
                ("grant_type", s("client_credentials")),
                ("client_id", s("00000000-0000-4000-8000-00000000dead")),
                ("client_secret", s("x")),
                ("scope", s(SCOPE)),
            ],
            400,
            "unauthorized_client",
            700_016,
        ),
        Row {
            tenant: Some("fabrikam.onmicrosoft.com"),
            ..row(
                "unknown tenant",
                Version::V2,
                cc_secret("x"),
                400,
                "invalid_request",
                90002,
            )
        },
        row(
            "client credentials without any credential",
            Version::V2,
            vec![
                ("grant_type", s("client_credentials")),
                ("client_id", confidential.client_id.clone()),
                ("scope", s(SCOPE)),
            ],
            401,
            "invalid_client",
            7_000_216,
        ),
        row(
            "confidential app without client authentication (ROPC)",
            Version::V2,
            vec![
                ("grant_type", s("password")),
                ("client_id", confidential.client_id.clone()),
                ("username", seeded.user.upn.clone()),
                ("password", password.clone()),
                ("scope", s(SCOPE)),
            ],
            401,
            "invalid_client",
            7_000_218,
        ),
        row(
            "bad password",
            Version::V2,
            ropc(&seeded.user.upn, "wrong"),
            400,
            "invalid_grant",
            50126,
        ),
        row(
            "unknown user",
            Version::V2,
            ropc("nobody@contoso.onmicrosoft.com", &password),
            400,
            "invalid_grant",
            50034,
        ),
        row(
            "MFA required",
            Version::V2,
            ropc(&seeded.mfa_user.upn, &password),
            400,
            "invalid_grant",
            50076,
        ),
        row(
            "disabled account",
            Version::V2,
            ropc("carol@contoso.onmicrosoft.com", &password),
            400,
            "invalid_grant",
            50057,
        ),
        row(
            "federated user under ROPC",
            Version::V2,
            ropc("dave@contoso.onmicrosoft.com", &password),
            400,
            "invalid_grant",
            50126,
        ),
        row(
            "assertion signature invalid",
            Version::V2,
            cc_assertion(tampered),
            401,
            "invalid_client",
            700_027,
        ),
        row(
            "assertion signed by an unregistered certificate",
            Version::V2,
            cc_assertion(assertion(
                &unregistered,
                &v2_url,
                Algorithm::RS256,
                Thumbprint::Sha256,
                |_| {},
            )),
            401,
            "invalid_client",
            700_027,
        ),
        row(
            "assertion expired",
            Version::V2,
            cc_assertion(signed(&|c| {
                c["nbf"] = json!(now() - 1200);
                c["exp"] = json!(now() - 600);
            })),
            401,
            "invalid_client",
            700_024,
        ),
        row(
            "assertion not yet valid",
            Version::V2,
            cc_assertion(signed(&|c| {
                c["nbf"] = json!(now() + 600);
                c["exp"] = json!(now() + 900);
            })),
            401,
            "invalid_client",
            700_024,
        ),
        row(
            "assertion audience is another endpoint",
            Version::V2,
            cc_assertion(signed(&|c| {
                c["aud"] = json!("https://login.microsoftonline.com/x/oauth2/v2.0/token");
            })),
            401,
            "invalid_client",
            700_023,
        ),
        row(
            "assertion issuer is not the client",
            Version::V2,
            cc_assertion(signed(&|c| {
                c["iss"] = json!("someone-else");
            })),
            401,
            "invalid_client",
            700_021,
        ),
        Row {
            send_twice: true,
            ..row(
                "assertion replayed",
                Version::V2,
                cc_assertion(signed(&|_| {})),
                401,
                "invalid_client",
                50013,
            )
        },
        row(
            "public client sending a secret",
            Version::V2,
            vec![
                ("grant_type", s("password")),
                ("client_id", public.clone()),
                ("client_secret", s("x")),
                ("username", seeded.user.upn.clone()),
                ("password", password.clone()),
                ("scope", s(SCOPE)),
            ],
            401,
            "invalid_client",
            700_025,
        ),
        row(
            "v1 resource sent to v2",
            Version::V2,
            vec![
                ("grant_type", s("client_credentials")),
                ("client_id", confidential.client_id.clone()),
                (
                    "client_secret",
                    confidential.secret.expose_secret().to_owned(),
                ),
                ("resource", s(RESOURCE)),
            ],
            400,
            "invalid_request",
            901_002,
        ),
        row(
            "client credentials scope without /.default",
            Version::V2,
            vec![
                ("grant_type", s("client_credentials")),
                ("client_id", confidential.client_id.clone()),
                (
                    "client_secret",
                    confidential.secret.expose_secret().to_owned(),
                ),
                (
                    "scope",
                    s("https://contoso.crm.dynamics.com/user_impersonation"),
                ),
            ],
            400,
            "invalid_scope",
            1_002_012,
        ),
        row(
            "client credentials for an unknown resource",
            Version::V2,
            vec![
                ("grant_type", s("client_credentials")),
                ("client_id", confidential.client_id.clone()),
                (
                    "client_secret",
                    confidential.secret.expose_secret().to_owned(),
                ),
                ("scope", s("https://nosuch.crm.dynamics.com/.default")),
            ],
            400,
            "invalid_resource",
            500_011,
        ),
        row(
            "v1 client credentials for an unknown resource",
            Version::V1,
            vec![
                ("grant_type", s("client_credentials")),
                ("client_id", confidential.client_id.clone()),
                (
                    "client_secret",
                    confidential.secret.expose_secret().to_owned(),
                ),
                ("resource", s("https://nosuch.crm.dynamics.com/")),
            ],
            400,
            "invalid_resource",
            500_011,
        ),
        row(
            "delegated scopes for two resources",
            Version::V2,
            vec![
                ("grant_type", s("password")),
                ("client_id", public.clone()),
                ("username", seeded.user.upn.clone()),
                ("password", password.clone()),
                (
                    "scope",
                    s("https://a.crm.dynamics.com/.default https://b.crm.dynamics.com/.default"),
                ),
            ],
            400,
            "invalid_scope",
            700_022,
        ),
        Row {
            tenant: Some("common"),
            ..row(
                "ROPC against common",
                Version::V2,
                ropc(&seeded.user.upn, &password),
                400,
                "invalid_request",
                9_001_023,
            )
        },
        Row {
            tenant: Some("consumers"),
            ..row(
                "ROPC against consumers (v1)",
                Version::V1,
                vec![
                    ("grant_type", s("password")),
                    ("client_id", public.clone()),
                    ("username", seeded.user.upn.clone()),
                    ("password", password.clone()),
                    ("resource", s(RESOURCE)),
                ],
                400,
                "invalid_request",
                9_001_023,
            )
        },
        Row {
            tenant: Some("common"),
            ..row(
                "client credentials against common",
                Version::V2,
                cc_secret(confidential.secret.expose_secret()),
                400,
                "invalid_request",
                50059,
            )
        },
        row(
            "unsupported grant type",
            Version::V2,
            vec![
                // On-behalf-of: not reproduced (the device code grant is; see device_code.rs).
                (
                    "grant_type",
                    s("urn:ietf:params:oauth:grant-type:jwt-bearer"),
                ),
                ("client_id", public.clone()),
            ],
            400,
            "unsupported_grant_type",
            70003,
        ),
        row(
            "missing grant_type",
            Version::V2,
            vec![("client_id", public.clone())],
            400,
            "invalid_request",
            900_144,
        ),
        row(
            "missing scope",
            Version::V2,
            vec![
                ("grant_type", s("client_credentials")),
                ("client_id", confidential.client_id.clone()),
                (
                    "client_secret",
                    confidential.secret.expose_secret().to_owned(),
                ),
            ],
            400,
            "invalid_request",
            900_144,
        ),
        row(
            "missing resource (v1)",
            Version::V1,
            vec![
                ("grant_type", s("client_credentials")),
                ("client_id", confidential.client_id.clone()),
                (
                    "client_secret",
                    confidential.secret.expose_secret().to_owned(),
                ),
            ],
            400,
            "invalid_request",
            900_144,
        ),
        Row {
            raw_body: Some(b"\xff\xfe\x00not a form"),
            ..row(
                "malformed body",
                Version::V2,
                Vec::new(),
                400,
                "invalid_request",
                900_144,
            )
        },
        row(
            "invalid refresh token",
            Version::V2,
            vec![
                ("grant_type", s("refresh_token")),
                ("client_id", public.clone()),
                ("refresh_token", s("1.not-a-token-the-emulator-issued")),
                ("scope", s(SCOPE)),
            ],
            400,
            "invalid_grant",
            70000,
        ),
    ];

    let http = client();
    let mut failures = Vec::new();
    for row in &rows {
        let tenant = row.tenant.unwrap_or(&seeded.tenant.id);
        let path = match row.version {
            Version::V1 => "oauth2/token",
            Version::V2 => "oauth2/v2.0/token",
        };
        let url = format!("{}/{tenant}/{path}", emulator.base_url());
        let build = || {
            let mut request = http.post(&url);
            if let Some((id, secret)) = &row.basic {
                request = request.basic_auth(id, Some(secret));
            }
            match row.raw_body {
                Some(raw) => request
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(raw.to_vec()),
                None => request.form(&row.form),
            }
        };
        if row.send_twice {
            let first = common::send(build()).await;
            assert_eq!(
                first.status, 200,
                "{}: first use must work: {}",
                row.name, first.body
            );
        }
        let reply = common::send(build()).await;
        let body = &reply.body;
        let code = body["error_codes"][0].as_u64();
        if reply.status.as_u16() != row.status
            || body["error"] != row.error
            || code != Some(row.code)
        {
            failures.push(format!(
                "{}: expected {} {} {}, got {} {}",
                row.name, row.status, row.error, row.code, reply.status, body
            ));
            continue;
        }
        // Entra's error shape, every time.
        let description = body["error_description"].as_str().expect("description");
        assert!(
            description.starts_with(&format!("AADSTS{}: ", row.code)),
            "{}: {description}",
            row.name
        );
        for part in ["\r\nTrace ID: ", "\r\nCorrelation ID: ", "\r\nTimestamp: "] {
            assert!(description.contains(part), "{}: {description}", row.name);
        }
        assert!(
            body["error_codes"].is_array(),
            "{}: error_codes must be an array, never null",
            row.name
        );
        for field in ["timestamp", "trace_id", "correlation_id", "error_uri"] {
            assert!(body[field].is_string(), "{}: no {field}", row.name);
        }
        assert_eq!(reply.headers["cache-control"], "no-store, no-cache");
        assert_eq!(
            reply.headers["x-ms-request-id"].to_str().expect("ascii"),
            body["trace_id"].as_str().expect("trace id")
        );
        if row.code == 50076 {
            assert_eq!(body["suberror"], "basic_action");
            let claims: serde_json::Value =
                serde_json::from_str(body["claims"].as_str().expect("claims")).expect("json");
            assert!(claims["access_token"]["capolids"].is_object());
        }
        // No secret ever comes back in an error.
        let text = body.to_string();
        assert!(!text.contains(&password), "{}: password in error", row.name);
        assert!(
            !text.contains(confidential.secret.expose_secret()),
            "{}: secret in error",
            row.name
        );
    }
    assert!(failures.is_empty(), "failures:\n{}", failures.join("\n"));
}
