//! Successful token requests against a running emulator: every grant, every client
//! authentication method, both endpoint versions, with the response shapes and claims Entra
//! produces.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use d365_emulator::Emulator;
use jsonwebtoken::Algorithm;
use secrecy::ExposeSecret as _;
use serde_json::Value;

use crate::common::{self, Thumbprint, assertion, claims, client, header, now, post_form};

const DATAVERSE: &str = "https://contoso.crm.dynamics.com";

#[tokio::test]
async fn client_credentials_v2_with_secret_post() {
    let emulator = Emulator::builder().start().await.expect("started");
    let seeded = emulator.seeded().expect("seeded");
    let app = &seeded.confidential_app;
    let reply = post_form(
        &client(),
        &emulator.token_endpoint_v2(),
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &app.client_id),
            ("client_secret", app.secret.expose_secret()),
            ("scope", &format!("{DATAVERSE}/.default")),
        ],
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.headers["cache-control"], "no-store, no-cache");
    assert_eq!(reply.headers["pragma"], "no-cache");
    assert!(reply.headers.contains_key("x-ms-request-id"));
    let body = &reply.body;
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3599);
    assert_eq!(body["ext_expires_in"], 3599);
    assert!(body.get("refresh_token").is_none());
    assert!(body.get("refresh_in").is_none());

    let token = body["access_token"].as_str().expect("token");
    let jwt_header = header(token);
    assert_eq!(jwt_header["alg"], "RS256");
    assert_eq!(jwt_header["typ"], "JWT");
    let c = claims(token);
    // Dataverse asks for v1 tokens: v1-shaped from the v2 endpoint too.
    assert_eq!(c["aud"], DATAVERSE);
    assert_eq!(
        c["iss"],
        format!("https://sts.windows.net/{}/", seeded.tenant.id)
    );
    assert_eq!(c["tid"], seeded.tenant.id);
    assert_eq!(c["appid"], app.client_id);
    assert_eq!(c["appidacr"], "1");
    assert!(c.get("azp").is_none());
    assert_eq!(c["idtyp"], "app");
    assert_eq!(c["ver"], "1.0");
    assert_eq!(c["oid"], c["sub"]);
    assert!(c["uti"].is_string());
    assert!(c.get("scp").is_none());
    let (iat, exp) = (
        c["iat"].as_i64().expect("iat"),
        c["exp"].as_i64().expect("exp"),
    );
    assert!((exp - now() - 3599).abs() <= 5, "exp {exp}");
    assert!(iat <= now());

    // The key id is in the published JWKS.
    let keys: Value = client()
        .get(format!("{}/discovery/v2.0/keys", emulator.authority()))
        .send()
        .await
        .expect("keys")
        .json()
        .await
        .expect("json");
    assert_eq!(keys["keys"][0]["kid"], jwt_header["kid"]);

    let validated = emulator
        .token_validator()
        .validate(token, &format!("{DATAVERSE}/"))
        .expect("valid token");
    assert!(validated.is_app_only());
    assert_eq!(validated.client_id(), Some(app.client_id.as_str()));
}

#[tokio::test]
async fn client_credentials_v1_with_secret_basic_answers_with_strings() {
    let emulator = Emulator::builder().start().await.expect("started");
    let seeded = emulator.seeded().expect("seeded");
    let app = &seeded.confidential_app;
    let reply = common::send(
        client()
            .post(emulator.token_endpoint_v1())
            .basic_auth(&app.client_id, Some(app.secret.expose_secret()))
            .form(&[
                ("grant_type", "client_credentials"),
                ("resource", &format!("{DATAVERSE}/")),
            ]),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let body = &reply.body;
    assert_eq!(body["expires_in"], "3599");
    assert_eq!(body["ext_expires_in"], "3599");
    assert!(
        body["expires_on"]
            .as_str()
            .expect("string")
            .parse::<i64>()
            .is_ok()
    );
    assert!(
        body["not_before"]
            .as_str()
            .expect("string")
            .parse::<i64>()
            .is_ok()
    );
    assert_eq!(body["resource"], format!("{DATAVERSE}/"));
    let c = claims(body["access_token"].as_str().expect("token"));
    assert_eq!(c["aud"], DATAVERSE);
    assert_eq!(
        c["iss"],
        format!("https://sts.windows.net/{}/", seeded.tenant.id)
    );
    assert_eq!(c["appid"], app.client_id);
    assert_eq!(c["appidacr"], "1");
    assert_eq!(c["ver"], "1.0");
}

#[tokio::test]
async fn basic_credentials_are_form_urlencoded_inside_the_header() {
    let emulator = Emulator::builder().start().await.expect("started");
    let tenant = emulator.tenant_id().to_owned();
    // A secret with characters that RFC 6749 makes the client encode.
    let secret = "a:b+c d%e";
    let http = client();
    let created = common::send(
        http.post(format!(
            "{}/_emulator/tenants/{tenant}/apps",
            emulator.base_url()
        ))
        .json(&serde_json::json!({
            "display_name": "odd secret",
            "secrets": [{"value": secret}],
        })),
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let client_id = created.body["client_id"].as_str().expect("id").to_owned();
    let encode = |s: &str| -> String { url_encode(s) };
    let raw = format!("{}:{}", encode(&client_id), encode(secret));
    let reply = common::send(
        http.post(emulator.token_endpoint_v2())
            .header("Authorization", format!("Basic {}", STANDARD.encode(raw)))
            .form(&[
                ("grant_type", "client_credentials"),
                ("scope", "https://contoso.crm.dynamics.com/.default"),
            ]),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
}

fn url_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                char::from(b).to_string()
            }
            b' ' => "+".to_owned(),
            other => format!("%{other:02X}"),
        })
        .collect()
}

#[tokio::test]
async fn certificate_assertions_rs256_x5t_and_ps256_x5t_s256() {
    let emulator = Emulator::builder().start().await.expect("started");
    let seeded = emulator.seeded().expect("seeded");
    let app = &seeded.certificate_app;
    let url = emulator.token_endpoint_v2();
    for (alg, thumbprint) in [
        (Algorithm::RS256, Thumbprint::Sha1),
        (Algorithm::PS256, Thumbprint::Sha256),
    ] {
        let jwt = assertion(app, &url, alg, thumbprint, |_| {});
        let reply = post_form(
            &client(),
            &url,
            &[
                ("grant_type", "client_credentials"),
                ("client_id", &app.client_id),
                (
                    "client_assertion_type",
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                ),
                ("client_assertion", &jwt),
                ("scope", "https://contoso.crm.dynamics.com/.default"),
            ],
        )
        .await;
        assert_eq!(reply.status, 200, "{alg:?}: {}", reply.body);
        let c = claims(reply.body["access_token"].as_str().expect("token"));
        assert_eq!(c["appidacr"], "2");
    }
}

#[tokio::test]
async fn x5t_in_padded_standard_base64_is_accepted() {
    let emulator = Emulator::builder().start().await.expect("started");
    let mut app = emulator.seeded().expect("seeded").certificate_app.clone();
    // azure_identity (Rust) sends the SHA-1 thumbprint in standard, padded base64.
    let raw = URL_SAFE_NO_PAD.decode(&app.x5t).expect("base64url");
    app.x5t = STANDARD.encode(raw);
    let url = emulator.token_endpoint_v1();
    let jwt = assertion(&app, &url, Algorithm::RS256, Thumbprint::Sha1, |_| {});
    let reply = post_form(
        &client(),
        &url,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &app.client_id),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("client_assertion", &jwt),
            ("resource", "https://contoso.crm.dynamics.com/"),
        ],
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
}

#[tokio::test]
async fn password_v2_with_offline_access_then_refresh() {
    let emulator = Emulator::builder().start().await.expect("started");
    let seeded = emulator.seeded().expect("seeded");
    let user = &seeded.user;
    let scope = format!("{DATAVERSE}/user_impersonation offline_access openid profile");
    let reply = post_form(
        &client(),
        &emulator.token_endpoint_v2(),
        &[
            ("grant_type", "password"),
            ("client_id", &seeded.public_app.client_id),
            ("username", &user.upn.to_uppercase()),
            ("password", user.password.expose_secret()),
            ("scope", &scope),
            ("client_info", "1"),
        ],
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let body = &reply.body;
    assert!(
        body["scope"]
            .as_str()
            .expect("scope")
            .contains("user_impersonation")
    );
    let refresh_token = body["refresh_token"]
        .as_str()
        .expect("refresh token")
        .to_owned();
    let id_token = claims(body["id_token"].as_str().expect("id token"));
    assert_eq!(id_token["aud"], seeded.public_app.client_id);
    assert_eq!(id_token["preferred_username"], user.upn);
    let info = URL_SAFE_NO_PAD
        .decode(body["client_info"].as_str().expect("client_info"))
        .expect("base64url");
    let info: Value = serde_json::from_slice(&info).expect("json");
    assert_eq!(info["uid"], user.object_id);

    let c = claims(body["access_token"].as_str().expect("token"));
    assert_eq!(c["scp"], "user_impersonation");
    assert_eq!(c["oid"], user.object_id);
    assert_eq!(c["upn"], user.upn);
    assert_eq!(c["unique_name"], user.upn);
    assert_eq!(c["name"], "Alice Emulator");
    assert_eq!(c["appidacr"], "0");
    assert!(c.get("idtyp").is_none());

    let refreshed = post_form(
        &client(),
        &emulator.token_endpoint_v2(),
        &[
            ("grant_type", "refresh_token"),
            ("client_id", &seeded.public_app.client_id),
            ("refresh_token", &refresh_token),
            ("scope", &scope),
        ],
    )
    .await;
    assert_eq!(refreshed.status, 200, "{}", refreshed.body);
    let new_refresh = refreshed.body["refresh_token"]
        .as_str()
        .expect("new refresh token");
    assert_ne!(new_refresh, refresh_token);
    let c = claims(refreshed.body["access_token"].as_str().expect("token"));
    assert_eq!(c["oid"], user.object_id);
}

#[tokio::test]
async fn password_v2_without_offline_access_has_no_refresh_token() {
    let emulator = Emulator::builder().start().await.expect("started");
    let seeded = emulator.seeded().expect("seeded");
    let reply = post_form(
        &client(),
        &emulator.token_endpoint_v2(),
        &[
            ("grant_type", "password"),
            ("client_id", &seeded.public_app.client_id),
            ("username", &seeded.user.upn),
            ("password", seeded.user.password.expose_secret()),
            ("scope", &format!("{DATAVERSE}/.default")),
        ],
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert!(reply.body.get("refresh_token").is_none());
    assert!(reply.body.get("id_token").is_none());
}

#[tokio::test]
async fn password_v1_on_confidential_app_always_returns_a_refresh_token() {
    let emulator = Emulator::builder()
        .organization("https://fabrikam.crm.dynamics.com")
        .start()
        .await
        .expect("started");
    let seeded = emulator.seeded().expect("seeded");
    let app = &seeded.confidential_app;
    let reply = post_form(
        &client(),
        &format!("{}/organizations/oauth2/token", emulator.base_url()),
        &[
            ("grant_type", "password"),
            ("client_id", &app.client_id),
            ("client_secret", app.secret.expose_secret()),
            ("username", &seeded.user.upn),
            ("password", seeded.user.password.expose_secret()),
            ("resource", DATAVERSE),
        ],
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let body = &reply.body;
    assert_eq!(body["scope"], "user_impersonation");
    assert!(body["refresh_token"].is_string());
    let c = claims(body["access_token"].as_str().expect("token"));
    assert_eq!(c["upn"], seeded.user.upn);
    assert_eq!(c["unique_name"], seeded.user.upn);
    assert_eq!(c["amr"][0], "pwd");
    assert_eq!(c["scp"], "user_impersonation");
    assert_eq!(c["appidacr"], "1");

    // v1 refresh, for another resource (multi-resource refresh tokens).
    let refreshed = post_form(
        &client(),
        &emulator.token_endpoint_v1(),
        &[
            ("grant_type", "refresh_token"),
            ("client_id", &app.client_id),
            ("client_secret", app.secret.expose_secret()),
            ("refresh_token", body["refresh_token"].as_str().expect("rt")),
            ("resource", "https://fabrikam.crm.dynamics.com/"),
        ],
    )
    .await;
    assert_eq!(refreshed.status, 200, "{}", refreshed.body);
    let c = claims(refreshed.body["access_token"].as_str().expect("token"));
    assert_eq!(c["aud"], "https://fabrikam.crm.dynamics.com");
}

#[tokio::test]
async fn the_tenant_segment_may_be_the_domain_or_organizations() {
    let emulator = Emulator::builder().start().await.expect("started");
    let seeded = emulator.seeded().expect("seeded");
    let app = &seeded.confidential_app;
    for segment in [
        "CONTOSO.onmicrosoft.com",
        "organizations",
        &seeded.tenant.id.to_uppercase(),
    ] {
        let reply = post_form(
            &client(),
            &format!("{}/{segment}/oauth2/v2.0/token", emulator.base_url()),
            &[
                ("grant_type", "client_credentials"),
                ("client_id", &app.client_id),
                ("client_secret", app.secret.expose_secret()),
                ("scope", "https://contoso.crm.dynamics.com/.default"),
            ],
        )
        .await;
        assert_eq!(reply.status, 200, "{segment}: {}", reply.body);
        let c = claims(reply.body["access_token"].as_str().expect("token"));
        assert_eq!(c["tid"], seeded.tenant.id);
    }
}

#[tokio::test]
async fn token_lifetime_is_configurable_and_long_lifetimes_get_refresh_in() {
    let emulator = Emulator::builder()
        .token_lifetime(std::time::Duration::from_secs(2))
        .start()
        .await
        .expect("started");
    let seeded = emulator.seeded().expect("seeded");
    let app = &seeded.confidential_app;
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", app.client_id.as_str()),
        ("client_secret", app.secret.expose_secret()),
        ("scope", "https://contoso.crm.dynamics.com/.default"),
    ];
    let reply = post_form(&client(), &emulator.token_endpoint_v2(), &form).await;
    assert_eq!(reply.body["expires_in"], 2);
    let token = reply.body["access_token"]
        .as_str()
        .expect("token")
        .to_owned();
    let validator = emulator.token_validator();
    validator
        .validate(&token, "https://contoso.crm.dynamics.com")
        .expect("valid at first");
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    assert_eq!(
        validator
            .validate(&token, "https://contoso.crm.dynamics.com")
            .expect_err("expired"),
        d365_emulator::TokenRejection::Expired
    );

    // Through the admin API: two hours, so Entra's refresh hint appears.
    let patched = common::send(
        client()
            .patch(format!("{}/_emulator/settings", emulator.base_url()))
            .json(&serde_json::json!({"token_lifetime_secs": 7200})),
    )
    .await;
    assert_eq!(patched.status, 200, "{}", patched.body);
    let reply = post_form(&client(), &emulator.token_endpoint_v2(), &form).await;
    assert_eq!(reply.body["expires_in"], 7200);
    assert_eq!(reply.body["refresh_in"], 3600);
}

#[tokio::test]
async fn client_request_id_is_echoed_and_used_as_correlation_id() {
    let emulator = Emulator::builder().start().await.expect("started");
    let correlation = "7c9e6679-7425-40de-944b-e07fc1f90ae7";
    let reply = common::send(
        client()
            .post(emulator.token_endpoint_v2())
            .header("client-request-id", correlation)
            .form(&[("grant_type", "client_credentials")]),
    )
    .await;
    assert_eq!(reply.headers["client-request-id"], correlation);
    assert_eq!(reply.body["correlation_id"], correlation);
    assert_eq!(
        reply.headers["x-ms-request-id"].to_str().expect("ascii"),
        reply.body["trace_id"].as_str().expect("trace id")
    );
}
