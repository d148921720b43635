//! The device authorization grant against a running emulator, over HTTP: the device
//! authorization endpoint and its errors, every answer of a poll (pending, `slow_down`,
//! declined, expired, unknown, redeemed), approval through the admin API, the Rust handle
//! and the verification page, and the token a person's approval produces.

use std::time::Duration;

use d365_emulator::{DeviceCodeStatus, Emulator, EmulatorError};
use secrecy::ExposeSecret as _;
use serde_json::{Value, json};

use crate::common::{Reply, claims, client, post_form, send};

const SCOPE: &str = "https://contoso.crm.dynamics.com/user_impersonation offline_access";
const GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";
const ALICE: &str = "alice@contoso.onmicrosoft.com";
const INTERVAL: Duration = Duration::from_secs(1);

async fn emulator() -> Emulator {
    Emulator::builder()
        .device_code_interval(INTERVAL)
        .device_code_lifetime(Duration::from_secs(60))
        .start()
        .await
        .expect("started")
}

fn public_app(emulator: &Emulator) -> String {
    emulator
        .seeded()
        .expect("seeded")
        .public_app
        .client_id
        .clone()
}

fn devicecode_url(emulator: &Emulator, tenant: &str) -> String {
    format!("{}/{tenant}/oauth2/v2.0/devicecode", emulator.base_url())
}

/// A device authorization for the public app in the seeded tenant.
async fn authorize(emulator: &Emulator) -> Value {
    let reply = post_form(
        &client(),
        &devicecode_url(emulator, emulator.tenant_id()),
        &[("client_id", &public_app(emulator)), ("scope", SCOPE)],
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.body
}

async fn poll(emulator: &Emulator, client_id: &str, device_code: &str) -> Reply {
    post_form(
        &client(),
        &emulator.token_endpoint_v2(),
        &[
            ("grant_type", GRANT),
            ("client_id", client_id),
            ("device_code", device_code),
        ],
    )
    .await
}

fn device_code(authorization: &Value) -> String {
    authorization["device_code"]
        .as_str()
        .expect("a device code")
        .to_owned()
}

fn user_code(authorization: &Value) -> String {
    authorization["user_code"]
        .as_str()
        .expect("a user code")
        .to_owned()
}

fn assert_refusal(reply: &Reply, error: &str, code: Option<u64>) {
    assert_eq!(reply.status, 400, "{}", reply.body);
    assert_eq!(reply.body["error"], error, "{}", reply.body);
    match code {
        Some(code) => {
            assert_eq!(reply.body["error_codes"][0], code, "{}", reply.body);
            let description = reply.body["error_description"].as_str().unwrap();
            assert!(
                description.starts_with(&format!("AADSTS{code}: ")),
                "{description}"
            );
        }
        None => assert!(reply.body.get("error_codes").is_none(), "{}", reply.body),
    }
}

#[tokio::test]
async fn the_device_authorization_response_is_shaped_like_entras() {
    let emulator = emulator().await;
    let reply = post_form(
        &client(),
        &devicecode_url(&emulator, emulator.tenant_id()),
        &[("client_id", &public_app(&emulator)), ("scope", SCOPE)],
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.headers["cache-control"], "no-store, no-cache");
    let body = &reply.body;
    let user_code = body["user_code"].as_str().unwrap();
    assert_eq!(user_code.len(), 9);
    assert!(
        user_code
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
    );
    assert!(body["device_code"].as_str().unwrap().len() > 100);
    let verification_uri = format!("{}/devicelogin", emulator.base_url());
    assert_eq!(body["verification_uri"], verification_uri.as_str());
    assert_eq!(body["expires_in"], 60);
    assert_eq!(body["interval"], 1);
    assert_eq!(
        body["message"],
        format!(
            "To sign in, use a web browser to open the page {verification_uri} and enter the code {user_code} to authenticate."
        )
    );
    assert!(
        body.get("verification_uri_complete").is_none(),
        "Entra sends none"
    );

    // The discovery document names this endpoint, and `organizations` finds the app's tenant.
    let discovery = send(client().get(format!(
        "{}/organizations/v2.0/.well-known/openid-configuration",
        emulator.base_url()
    )))
    .await;
    let advertised = discovery.body["device_authorization_endpoint"]
        .as_str()
        .unwrap()
        .to_owned();
    let reply = post_form(
        &client(),
        &advertised,
        &[("client_id", &public_app(&emulator)), ("scope", SCOPE)],
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let codes = emulator.device_codes().list();
    assert_eq!(codes.len(), 2);
    assert!(
        codes
            .iter()
            .all(|code| code.tenant_id == emulator.tenant_id())
    );
    assert_eq!(codes[0].status, DeviceCodeStatus::Pending);
    assert_eq!(codes[0].scope, SCOPE);
}

#[tokio::test]
async fn device_authorization_errors() {
    let emulator = emulator().await;
    let app = public_app(&emulator);
    let tenant = emulator.tenant_id().to_owned();
    // (tenant segment, form, error, AADSTS code)
    type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, &'a str, u64);
    let cases: Vec<Case<'_>> = vec![
        (
            "fabrikam.onmicrosoft.com",
            vec![("client_id", &app), ("scope", SCOPE)],
            "invalid_request",
            90002,
        ),
        (&tenant, vec![("scope", SCOPE)], "invalid_request", 900_144),
        (
            &tenant,
            vec![("client_id", &app)],
            "invalid_request",
            900_144,
        ),
        (
            &tenant,
            vec![
                ("client_id", "00000000-0000-0000-0000-00000000dead"),
                ("scope", SCOPE),
            ],
            "unauthorized_client",
            700_016,
        ),
        (
            "consumers",
            vec![("client_id", &app), ("scope", SCOPE)],
            "invalid_request",
            9_002_332,
        ),
        (
            &tenant,
            vec![
                ("client_id", &app),
                ("scope", SCOPE),
                ("resource", "https://contoso.crm.dynamics.com"),
            ],
            "invalid_request",
            901_002,
        ),
        (
            &tenant,
            vec![
                ("client_id", &app),
                ("scope", "https://a.example/x https://b.example/y"),
            ],
            "invalid_scope",
            700_022,
        ),
    ];
    for (segment, form, error, code) in cases {
        let reply = post_form(&client(), &devicecode_url(&emulator, segment), &form).await;
        assert_refusal(&reply, error, Some(code));
    }
    assert!(
        emulator.device_codes().list().is_empty(),
        "no code was issued"
    );
}

#[tokio::test]
async fn a_code_is_pending_until_approved_then_redeemed_once() {
    let emulator = emulator().await;
    let authorization = authorize(&emulator).await;
    let app = public_app(&emulator);
    let code = device_code(&authorization);

    assert_refusal(
        &poll(&emulator, &app, &code).await,
        "authorization_pending",
        Some(70016),
    );
    tokio::time::sleep(INTERVAL).await;
    assert_refusal(
        &poll(&emulator, &app, &code).await,
        "authorization_pending",
        Some(70016),
    );

    // The admin API approves it as alice; the reply shows everything but the device code.
    let approved = send(
        client()
            .post(format!(
                "{}/_emulator/device-codes/approve",
                emulator.base_url()
            ))
            .json(&json!({"user_code": user_code(&authorization).to_lowercase(), "user": ALICE})),
    )
    .await;
    assert_eq!(approved.status, 200, "{}", approved.body);
    assert_eq!(approved.body["status"], "approved");
    assert_eq!(approved.body["approved_by"], ALICE);
    assert_eq!(approved.body["polls"], 2);
    assert!(!approved.body.to_string().contains(&code));

    tokio::time::sleep(INTERVAL).await;
    let reply = poll(&emulator, &app, &code).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.headers["cache-control"], "no-store, no-cache");
    assert_eq!(
        reply.body["scope"],
        "https://contoso.crm.dynamics.com/user_impersonation offline_access"
    );
    assert!(
        reply.body["refresh_token"].is_string(),
        "offline_access brings one"
    );
    let access = reply.body["access_token"].as_str().unwrap();
    let validated = emulator
        .token_validator()
        .validate(access, "https://contoso.crm.dynamics.com")
        .expect("a valid token");
    assert_eq!(validated.user_principal_name(), Some(ALICE));
    assert_eq!(validated.scopes(), ["user_impersonation"]);
    assert_eq!(claims(access)["appidacr"], "0", "a public client");

    // The refresh token works like the password grant's.
    let refreshed = post_form(
        &client(),
        &emulator.token_endpoint_v2(),
        &[
            ("grant_type", "refresh_token"),
            ("client_id", &app),
            (
                "refresh_token",
                reply.body["refresh_token"].as_str().unwrap(),
            ),
            ("scope", SCOPE),
        ],
    )
    .await;
    assert_eq!(refreshed.status, 200, "{}", refreshed.body);

    // Once redeemed, the code is spent.
    tokio::time::sleep(INTERVAL).await;
    assert_refusal(
        &poll(&emulator, &app, &code).await,
        "invalid_grant",
        Some(90120),
    );
    let listed = &emulator.device_codes().list()[0];
    assert_eq!(listed.status, DeviceCodeStatus::Redeemed);
    assert_eq!(listed.approved_by.as_deref(), Some(ALICE));
    assert_eq!(listed.polls, 3);
}

#[tokio::test]
async fn polling_faster_than_the_interval_is_told_to_slow_down() {
    let emulator = emulator().await;
    let authorization = authorize(&emulator).await;
    let app = public_app(&emulator);
    let code = device_code(&authorization);
    assert_refusal(
        &poll(&emulator, &app, &code).await,
        "authorization_pending",
        Some(70016),
    );
    // At once again: too soon. RFC 8628 §3.5: the interval grows by 5 seconds.
    let reply = poll(&emulator, &app, &code).await;
    assert_refusal(&reply, "slow_down", None);
    assert!(
        reply.body["error_description"]
            .as_str()
            .unwrap()
            .starts_with("The client polled too often. Wait at least 6 seconds"),
        "{}",
        reply.body
    );
    let info = &emulator.device_codes().list()[0];
    assert_eq!(info.interval, Duration::from_secs(6));
    assert_eq!((info.polls, info.slow_downs), (2, 1));

    // The admin API (or the Rust handle) makes the next poll slow down, as a busy server.
    let other = authorize(&emulator).await;
    let slowed = send(
        client()
            .post(format!(
                "{}/_emulator/device-codes/slow-down",
                emulator.base_url()
            ))
            .json(&json!({"user_code": user_code(&other)})),
    )
    .await;
    assert_eq!(slowed.status, 200, "{}", slowed.body);
    assert_refusal(
        &poll(&emulator, &app, &device_code(&other)).await,
        "slow_down",
        None,
    );
    let slowed =
        send(client().get(format!("{}/_emulator/device-codes", emulator.base_url()))).await;
    assert_eq!(slowed.body[1]["interval_secs"], 6);
    assert_eq!(slowed.body[1]["slow_downs"], 1);
}

#[tokio::test]
async fn declined_expired_and_unknown_codes() {
    let emulator = emulator().await;
    let app = public_app(&emulator);
    let codes = emulator.device_codes();

    let declined = authorize(&emulator).await;
    let reply = send(
        client()
            .post(format!(
                "{}/_emulator/device-codes/decline",
                emulator.base_url()
            ))
            .json(&json!({"user_code": user_code(&declined)})),
    )
    .await;
    assert_eq!(reply.body["status"], "declined", "{}", reply.body);
    assert_refusal(
        &poll(&emulator, &app, &device_code(&declined)).await,
        "authorization_declined",
        Some(70000),
    );

    let expired = authorize(&emulator).await;
    let info = codes.expire(&user_code(&expired)).expect("expired");
    assert_eq!(info.status, DeviceCodeStatus::Expired);
    assert_refusal(
        &poll(&emulator, &app, &device_code(&expired)).await,
        "expired_token",
        Some(70020),
    );

    assert_refusal(
        &poll(&emulator, &app, "DAQABIQEAAADnot-a-code").await,
        "bad_verification_code",
        Some(70018),
    );

    // Another client cannot redeem the public app's code.
    let pending = authorize(&emulator).await;
    let seeded = emulator.seeded().unwrap();
    let other_client = post_form(
        &client(),
        &emulator.token_endpoint_v2(),
        &[
            ("grant_type", GRANT),
            ("client_id", &seeded.confidential_app.client_id),
            (
                "client_secret",
                seeded.confidential_app.secret.expose_secret(),
            ),
            ("device_code", &device_code(&pending)),
        ],
    )
    .await;
    assert_refusal(&other_client, "bad_verification_code", Some(70018));

    // The v1 endpoint redeems it too (ADAL polls there).
    let v1 = post_form(
        &client(),
        &emulator.token_endpoint_v1(),
        &[
            ("grant_type", GRANT),
            ("client_id", &app),
            ("device_code", &device_code(&pending)),
        ],
    )
    .await;
    assert_refusal(&v1, "authorization_pending", Some(70016));

    // Codes expire by themselves too.
    let short = Emulator::builder()
        .device_code_interval(INTERVAL)
        .device_code_lifetime(Duration::from_secs(1))
        .start()
        .await
        .unwrap();
    let authorization = authorize(&short).await;
    assert_eq!(authorization["expires_in"], 1);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_refusal(
        &poll(&short, &app, &device_code(&authorization)).await,
        "expired_token",
        Some(70020),
    );
    assert_eq!(
        short.device_codes().list()[0].status,
        DeviceCodeStatus::Expired
    );
}

#[tokio::test]
async fn the_admin_api_and_the_handle_refuse_what_cannot_be_done() {
    let emulator = emulator().await;
    let codes = emulator.device_codes();
    let admin = |path: &str| format!("{}/_emulator/device-codes/{path}", emulator.base_url());

    let missing = send(
        client()
            .post(admin("approve"))
            .json(&json!({"user_code": "NOPE", "user": ALICE})),
    )
    .await;
    assert_eq!(missing.status, 404, "{}", missing.body);
    assert_eq!(missing.body["error"], "not_found");

    let authorization = authorize(&emulator).await;
    let code = user_code(&authorization);
    let nobody = send(
        client()
            .post(admin("approve"))
            .json(&json!({"user_code": code, "user": "nobody@contoso.onmicrosoft.com"})),
    )
    .await;
    assert_eq!(nobody.status, 404, "{}", nobody.body);

    codes.approve(&code, ALICE).expect("approved");
    let again = send(
        client()
            .post(admin("decline"))
            .json(&json!({"user_code": code})),
    )
    .await;
    assert_eq!(again.status, 409, "{}", again.body);
    assert!(
        again.body["message"]
            .as_str()
            .unwrap()
            .contains("is approved, not pending"),
        "{}",
        again.body
    );

    match codes.decline(&code) {
        Err(EmulatorError::DeviceCode { user_code, problem }) => {
            assert_eq!(user_code, code);
            assert!(problem.contains("start the sign-in again"), "{problem}");
        }
        other => panic!("expected a device code error, got {other:?}"),
    }
    let listing =
        send(client().get(format!("{}/_emulator/device-codes", emulator.base_url()))).await;
    assert!(
        !listing
            .body
            .to_string()
            .contains(&device_code(&authorization))
    );

    // The timing settings can change while it runs.
    let settings = send(
        client()
            .patch(format!("{}/_emulator/settings", emulator.base_url()))
            .json(&json!({"device_code_interval_secs": 3, "device_code_lifetime_secs": 120})),
    )
    .await;
    assert_eq!(
        settings.body["device_code_interval_secs"], 3,
        "{}",
        settings.body
    );
    let next = authorize(&emulator).await;
    assert_eq!(
        (next["interval"].as_u64(), next["expires_in"].as_u64()),
        (Some(3), Some(120))
    );
    let zero = send(
        client()
            .patch(format!("{}/_emulator/settings", emulator.base_url()))
            .json(&json!({"device_code_interval_secs": 0})),
    )
    .await;
    assert_eq!(zero.status, 400);
}

#[tokio::test]
async fn a_confidential_app_redeems_with_its_secret() {
    let emulator = emulator().await;
    let app = emulator.seeded().unwrap().confidential_app.clone();
    let reply = post_form(
        &client(),
        &devicecode_url(&emulator, emulator.tenant_id()),
        &[
            ("client_id", &app.client_id),
            (
                "scope",
                "https://contoso.crm.dynamics.com/.default offline_access",
            ),
        ],
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let code = device_code(&reply.body);
    emulator
        .device_codes()
        .approve(&user_code(&reply.body), ALICE)
        .unwrap();
    let without_secret = poll(&emulator, &app.client_id, &code).await;
    assert_eq!(without_secret.status, 401, "{}", without_secret.body);
    assert_eq!(without_secret.body["error_codes"][0], 7_000_218);
    let with_secret = post_form(
        &client(),
        &emulator.token_endpoint_v2(),
        &[
            ("grant_type", GRANT),
            ("client_id", &app.client_id),
            ("client_secret", app.secret.expose_secret()),
            ("device_code", &code),
        ],
    )
    .await;
    assert_eq!(with_secret.status, 200, "{}", with_secret.body);
    assert_eq!(
        claims(with_secret.body["access_token"].as_str().unwrap())["appidacr"],
        "1"
    );
}

#[tokio::test]
async fn a_person_approves_or_declines_at_the_verification_page() {
    let emulator = emulator().await;
    let page_url = format!("{}/devicelogin", emulator.base_url());
    let page = client().get(&page_url).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(
        page.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let html = page.text().await.unwrap();
    for expected in [
        r#"<form method="post" action="/devicelogin">"#,
        r#"name="user_code""#,
        r#"name="password""#,
        r#"value="decline""#,
    ] {
        assert!(html.contains(expected), "{expected} missing from:\n{html}");
    }

    let answer = |form: Vec<(&'static str, String)>| {
        let url = page_url.clone();
        async move {
            let response = client().post(url).form(&form).send().await.unwrap();
            (response.status().as_u16(), response.text().await.unwrap())
        }
    };

    // bob must use MFA, which the password grant cannot do; here, in the browser, he can.
    let authorization = authorize(&emulator).await;
    let code = user_code(&authorization);
    let (status, html) = answer(vec![
        ("user_code", code.clone()),
        ("username", "bob@contoso.onmicrosoft.com".into()),
        ("password", "wrong".into()),
        ("action", "approve".into()),
    ])
    .await;
    assert_eq!(status, 400);
    assert!(html.contains("the password is not right"), "{html}");
    assert!(
        html.contains(&format!(r#"value="{code}""#)),
        "the code stays filled in"
    );

    let (status, html) = answer(vec![
        ("user_code", code.to_lowercase()),
        ("username", "bob@contoso.onmicrosoft.com".into()),
        ("password", "Emulator-Passw0rd!".into()),
        ("action", "approve".into()),
    ])
    .await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("as bob@contoso.onmicrosoft.com"), "{html}");
    let reply = poll(
        &emulator,
        &public_app(&emulator),
        &device_code(&authorization),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(
        claims(reply.body["access_token"].as_str().unwrap())["upn"],
        "bob@contoso.onmicrosoft.com"
    );

    let (status, html) = answer(vec![
        ("user_code", code.clone()),
        ("action", "approve".into()),
    ])
    .await;
    assert_eq!(status, 400);
    assert!(html.contains("is redeemed, not pending"), "{html}");

    let declined = authorize(&emulator).await;
    let (status, html) = answer(vec![
        ("user_code", user_code(&declined)),
        ("action", "decline".into()),
    ])
    .await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("You declined the sign-in"), "{html}");
    assert_refusal(
        &poll(&emulator, &public_app(&emulator), &device_code(&declined)).await,
        "authorization_declined",
        Some(70000),
    );

    let (status, html) = answer(vec![
        ("user_code", "<b>x</b>".into()),
        ("action", "decline".into()),
    ])
    .await;
    assert_eq!(status, 400);
    assert!(!html.contains("<b>x</b>"), "typed text is escaped: {html}");
}
