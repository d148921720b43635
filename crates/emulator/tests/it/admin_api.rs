//! The admin API under `/_emulator/`: changing the directory of a running emulator.

use d365_emulator::Emulator;
use serde_json::json;

use crate::common::{self, client, post_form, send};

#[tokio::test]
async fn apps_secrets_users_and_tenants_can_be_managed_at_runtime() {
    let emulator = Emulator::builder()
        .organization("https://fabrikam.crm.dynamics.com")
        .start()
        .await
        .expect("started");
    let base = emulator.base_url();
    let http = client();

    let health = send(http.get(format!("{base}/_emulator/health"))).await;
    assert_eq!(health.body["status"], "ok");

    // A new tenant with an app whose secret the emulator generates.
    let tenant = send(http.post(format!("{base}/_emulator/tenants")).json(&json!({
        "id": "11111111-2222-4333-8444-555555555555",
        "domain": "fabrikam.onmicrosoft.com",
    })))
    .await;
    assert_eq!(tenant.status, 201, "{}", tenant.body);
    let app = send(
        http.post(format!(
            "{base}/_emulator/tenants/fabrikam.onmicrosoft.com/apps"
        ))
        .json(&json!({"display_name": "worker", "roles": ["Data.Read"]})),
    )
    .await;
    assert_eq!(app.status, 201, "{}", app.body);
    let client_id = app.body["client_id"]
        .as_str()
        .expect("client id")
        .to_owned();
    let secret = send(
        http.post(format!(
            "{base}/_emulator/tenants/fabrikam.onmicrosoft.com/apps/{client_id}/secrets"
        ))
        .json(&json!({})),
    )
    .await;
    assert_eq!(secret.status, 201, "{}", secret.body);
    let value = secret.body["value"]
        .as_str()
        .expect("generated value")
        .to_owned();
    let secret_id = secret.body["id"].as_str().expect("id").to_owned();

    let token_url = format!("{base}/fabrikam.onmicrosoft.com/oauth2/v2.0/token");
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", client_id.as_str()),
        ("client_secret", value.as_str()),
        ("scope", "https://fabrikam.crm.dynamics.com/.default"),
    ];
    let reply = post_form(&http, &token_url, &form).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let claims = common::claims(reply.body["access_token"].as_str().expect("token"));
    assert_eq!(claims["tid"], "11111111-2222-4333-8444-555555555555");
    assert_eq!(claims["roles"][0], "Data.Read");

    // Listing never shows secret values.
    let listing = send(http.get(format!("{base}/_emulator/tenants"))).await;
    assert!(!listing.body.to_string().contains(&value));

    // Removing the secret makes it a bad secret.
    let removed = send(http.delete(format!(
        "{base}/_emulator/tenants/fabrikam.onmicrosoft.com/apps/{client_id}/secrets/{secret_id}"
    )))
    .await;
    assert_eq!(removed.status, 204);
    let reply = post_form(&http, &token_url, &form).await;
    assert_eq!(reply.body["error_codes"][0], 7_000_215);

    // An already expired secret.
    let expired = send(
        http.post(format!(
            "{base}/_emulator/tenants/fabrikam.onmicrosoft.com/apps/{client_id}/secrets"
        ))
        .json(&json!({"value": "old-one", "expires_in_secs": -60})),
    )
    .await;
    assert_eq!(expired.status, 201);
    assert!(expired.body.get("value").is_none());
    let reply = post_form(
        &http,
        &token_url,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", client_id.as_str()),
            ("client_secret", "old-one"),
            ("scope", "https://fabrikam.crm.dynamics.com/.default"),
        ],
    )
    .await;
    assert_eq!(reply.body["error_codes"][0], 7_000_222);

    // Users: add, disable, remove.
    let user = send(
        http.post(format!(
            "{base}/_emulator/tenants/fabrikam.onmicrosoft.com/users"
        ))
        .json(&json!({"upn": "erin@fabrikam.onmicrosoft.com", "password": "pw-1"})),
    )
    .await;
    assert_eq!(user.status, 201, "{}", user.body);
    assert!(!user.body.to_string().contains("pw-1"));
    let patched = send(
        http.patch(format!(
            "{base}/_emulator/tenants/fabrikam.onmicrosoft.com/users/erin@fabrikam.onmicrosoft.com"
        ))
        .json(&json!({"disabled": true})),
    )
    .await;
    assert_eq!(patched.body["disabled"], true);
    let removed = send(http.delete(format!(
        "{base}/_emulator/tenants/fabrikam.onmicrosoft.com/users/erin@fabrikam.onmicrosoft.com"
    )))
    .await;
    assert_eq!(removed.status, 204);

    // Removing the app makes it unknown.
    let removed = send(http.delete(format!(
        "{base}/_emulator/tenants/fabrikam.onmicrosoft.com/apps/{client_id}"
    )))
    .await;
    assert_eq!(removed.status, 204);
    let reply = post_form(&http, &token_url, &form).await;
    assert_eq!(reply.body["error_codes"][0], 700_016);
}

#[tokio::test]
async fn admin_errors_are_json_with_http_statuses() {
    let emulator = Emulator::builder()
        .organization("https://fabrikam.crm.dynamics.com")
        .start()
        .await
        .expect("started");
    let base = emulator.base_url();
    let http = client();
    let missing = send(http.delete(format!("{base}/_emulator/tenants/nowhere.example"))).await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.body["error"], "not_found");
    let duplicate = send(
        http.post(format!(
            "{base}/_emulator/tenants/{}/users",
            emulator.tenant_id()
        ))
        .json(&json!({"upn": "ALICE@contoso.onmicrosoft.com", "password": "x"})),
    )
    .await;
    assert_eq!(duplicate.status, 409);
    let invalid = send(
        http.post(format!(
            "{base}/_emulator/tenants/{}/apps",
            emulator.tenant_id()
        ))
        .json(&json!({"client_id": "not-a-guid"})),
    )
    .await;
    assert_eq!(invalid.status, 400);
    let bad_cert = send(
        http.post(format!(
            "{base}/_emulator/tenants/{}/apps/{}/certificates",
            emulator.tenant_id(),
            emulator.seeded().expect("seeded").certificate_app.client_id
        ))
        .json(&json!({"certificate_pem": "nothing"})),
    )
    .await;
    assert_eq!(bad_cert.status, 400);
    let zero = send(
        http.patch(format!("{base}/_emulator/settings"))
            .json(&json!({"token_lifetime_secs": 0})),
    )
    .await;
    assert_eq!(zero.status, 400);
}

#[tokio::test]
async fn a_certificate_added_at_runtime_authenticates_assertions() {
    let emulator = Emulator::builder()
        .organization("https://fabrikam.crm.dynamics.com")
        .start()
        .await
        .expect("started");
    let seeded = emulator.seeded().expect("seeded").clone();
    let base = emulator.base_url();
    let http = client();
    // Register the seeded certificate on the confidential app as well.
    let added = send(
        http.post(format!(
            "{base}/_emulator/tenants/{}/apps/{}/certificates",
            emulator.tenant_id(),
            seeded.confidential_app.client_id
        ))
        .json(&json!({"certificate_pem": seeded.certificate_app.certificate_pem})),
    )
    .await;
    assert_eq!(added.status, 201, "{}", added.body);
    assert_eq!(added.body["x5t"], seeded.certificate_app.x5t);
    assert_eq!(
        added.body["thumbprint"],
        seeded.certificate_app.thumbprint_sha1
    );

    let mut as_confidential = seeded.certificate_app.clone();
    as_confidential.client_id = seeded.confidential_app.client_id.clone();
    let url = emulator.token_endpoint_v2();
    let jwt = common::assertion(
        &as_confidential,
        &url,
        jsonwebtoken::Algorithm::PS256,
        common::Thumbprint::Sha1,
        |_| {},
    );
    let reply = post_form(
        &http,
        &url,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", as_confidential.client_id.as_str()),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("client_assertion", jwt.as_str()),
            ("scope", "https://contoso.crm.dynamics.com/.default"),
        ],
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
}

/// DNS rebinding: a web page reaching the emulator through a name of its own that
/// resolves to 127.0.0.1 sends that name in `Host`; the admin API refuses it.
#[tokio::test]
async fn the_admin_api_answers_loopback_hosts_only() {
    let emulator = Emulator::builder()
        .organization("https://fabrikam.crm.dynamics.com")
        .start()
        .await
        .expect("started");
    let base = emulator.base_url();
    let port = base.rsplit(':').next().unwrap().to_owned();
    let http = client();
    for host in [
        format!("evil.example:{port}"),
        "evil.example".to_owned(),
        format!("127.0.0.1.evil.example:{port}"),
        format!("localhost.evil.example:{port}"),
        "10.0.0.1".to_owned(),
        "127.0.0.1:notaport".to_owned(),
    ] {
        let reply = send(
            http.get(format!("{base}/_emulator/tenants"))
                .header("host", host.clone()),
        )
        .await;
        assert_eq!(reply.status, 403, "{host}: {}", reply.body);
        assert!(
            reply.body["message"].as_str().unwrap().contains("loopback"),
            "{}",
            reply.body
        );
    }
    for host in [
        format!("127.0.0.1:{port}"),
        format!("localhost:{port}"),
        format!("LOCALHOST:{port}"),
        format!("[::1]:{port}"),
        "127.0.0.1".to_owned(),
    ] {
        let reply = send(
            http.get(format!("{base}/_emulator/health"))
                .header("host", host.clone()),
        )
        .await;
        assert_eq!(reply.status, 200, "{host}: {}", reply.body);
    }
    // The Web API and the token endpoints are not restricted this way.
    let reply = send(
        http.get(format!("{base}/api/data/v9.2/"))
            .header("host", "contoso.crm.dynamics.com"),
    )
    .await;
    assert_eq!(reply.status, 401, "{}", reply.body);
}

#[tokio::test]
async fn absurd_admin_values_are_refused_with_400() {
    let emulator = Emulator::builder()
        .organization("https://fabrikam.crm.dynamics.com")
        .start()
        .await
        .expect("started");
    let base = emulator.base_url();
    let http = client();
    let tenant = emulator.tenant_id();
    let app = &emulator.seeded().unwrap().confidential_app.client_id;
    let cases = [
        (
            "PATCH",
            "settings",
            json!({"token_lifetime_secs": u64::MAX}),
        ),
        ("PATCH", "settings", json!({"device_code_lifetime_secs": 0})),
        ("PATCH", "dataverse/settings", json!({"dop_hint": 0})),
        ("PATCH", "dataverse/settings", json!({"dop_hint": u32::MAX})),
        ("POST", "dataverse/generate", json!({"count": u64::MAX})),
        ("POST", "dataverse/generate", json!({"count": 0})),
        ("PUT", "limits", json!({"window_secs": u64::MAX})),
        ("PUT", "limits", json!({"max_concurrent": u32::MAX})),
        ("PUT", "limits", json!({"window_secs": 0})),
        (
            "PUT",
            "limits/somebody",
            json!({"max_execution_time_ms": u64::MAX}),
        ),
        (
            "PUT",
            "faults",
            json!({"delay_ms": u64::MAX, "delay_rate": 1.0}),
        ),
        (
            "POST",
            &format!("tenants/{tenant}/apps/{app}/secrets"),
            json!({"expires_in_secs": i64::MAX}),
        ),
        (
            "POST",
            &format!("tenants/{tenant}/apps/{app}/secrets"),
            json!({"expires_in_secs": i64::MIN}),
        ),
    ];
    for (method, path, body) in cases {
        let url = format!("{base}/_emulator/{path}");
        let request = match method {
            "PATCH" => http.patch(url),
            "PUT" => http.put(url),
            _ => http.post(url),
        };
        let reply = send(request.json(&body)).await;
        assert_eq!(reply.status, 400, "{method} {path} {body}: {}", reply.body);
    }
    // Still serving, settings unchanged.
    let health = send(http.get(format!("{base}/_emulator/health"))).await;
    assert_eq!(health.status, 200);
}

#[tokio::test]
async fn token_requests_are_counted_by_client_and_reset() {
    let emulator = Emulator::builder().start().await.expect("started");
    let seeded = emulator.seeded().expect("seeded");
    let http = client();
    let stats_url = format!("{}/_emulator/identity/stats", emulator.base_url());
    let stats = || async { send(http.get(&stats_url)).await.body };
    assert_eq!(stats().await, json!({"token_requests": 0, "by_client": {}}));
    common::admin_token(&emulator).await;
    common::admin_token(&emulator).await;
    // A refused request is a request served too.
    let refused = post_form(
        &http,
        &emulator.token_endpoint_v2(),
        &[
            ("grant_type", "client_credentials"),
            ("client_id", seeded.reader_app.client_id.as_str()),
            ("client_secret", "wrong"),
            ("scope", &format!("{}/.default", emulator.base_url())),
        ],
    )
    .await;
    assert_eq!(refused.status, 401);
    let counted = stats().await;
    assert_eq!(counted["token_requests"], 3, "{counted}");
    assert_eq!(
        counted["by_client"][seeded.confidential_app.client_id.to_ascii_lowercase()],
        2
    );
    assert_eq!(
        counted["by_client"][seeded.reader_app.client_id.to_ascii_lowercase()],
        1
    );
    let reset = send(http.delete(&stats_url)).await;
    assert_eq!(reset.status, 204);
    assert_eq!(stats().await["token_requests"], 0);
    emulator.shutdown().await;
}
