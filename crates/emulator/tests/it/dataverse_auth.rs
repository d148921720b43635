//! Authentication and authorization of the Web API as Dataverse does them: the 401
//! challenge, 403 for an app without an application user, 403 for a missing privilege, and
//! WhoAmI for application users and users.

use d365_emulator::Emulator;
use secrecy::ExposeSecret as _;
use serde_json::json;

use crate::common::{self, Api, app_token, assert_error, client, post_form, send};

#[tokio::test]
async fn unauthenticated_requests_get_the_challenge() {
    let emulator = Emulator::builder().start().await.expect("started");
    let seeded = emulator.seeded().expect("seeded");
    let http = client();
    let whoami = format!("{}WhoAmI", emulator.web_api_url());
    let other_audience = {
        let reply = post_form(
            &http,
            &emulator.token_endpoint_v2(),
            &[
                ("grant_type", "client_credentials"),
                ("client_id", seeded.confidential_app.client_id.as_str()),
                (
                    "client_secret",
                    seeded.confidential_app.secret.expose_secret(),
                ),
                ("scope", "https://contoso.crm.dynamics.com/.default"),
            ],
        )
        .await;
        reply.body["access_token"]
            .as_str()
            .expect("token")
            .to_owned()
    };
    let good = common::admin_token(&emulator).await;
    let tampered = format!("{}x", &good[..good.len() - 1]);
    let cases: Vec<(&str, Option<String>)> = vec![
        ("no Authorization header", None),
        ("not a JWT", Some("Bearer abc".into())),
        ("empty bearer", Some("Bearer ".into())),
        ("basic scheme", Some("Basic dXNlcjpwYXNz".into())),
        (
            "token for another audience",
            Some(format!("Bearer {other_audience}")),
        ),
        ("tampered signature", Some(format!("Bearer {tampered}"))),
    ];
    let expected = format!(
        "Bearer authorization_uri={}/{}/oauth2/authorize, resource_id={}/",
        emulator.base_url(),
        emulator.tenant_id(),
        emulator.base_url()
    );
    assert_eq!(emulator.www_authenticate(), expected);
    for (name, authorization) in cases {
        let mut request = http.get(&whoami);
        if let Some(value) = authorization {
            request = request.header("Authorization", value);
        }
        let reply = send(request).await;
        assert_eq!(reply.status, 401, "{name}");
        assert_eq!(
            reply.headers["www-authenticate"],
            expected.as_str(),
            "{name}"
        );
    }
    let reply = send(http.get(&whoami).bearer_auth(&good)).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
}

#[tokio::test]
async fn whoami_answers_for_application_users_and_users() {
    let emulator = Emulator::builder().start().await.expect("started");
    let seeded = emulator.seeded().expect("seeded").clone();
    let api = Api::new(&emulator).await;
    for path in ["WhoAmI", "WhoAmI()"] {
        let reply = api.get(path).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert_eq!(
            reply.body["@odata.context"],
            format!(
                "{}$metadata#Microsoft.Dynamics.CRM.WhoAmIResponse",
                emulator.web_api_url()
            )
        );
        assert_eq!(
            reply.body["UserId"],
            seeded.organization.confidential_app_user_id.as_str()
        );
        assert_eq!(
            reply.body["BusinessUnitId"],
            seeded.organization.business_unit_id.as_str()
        );
        assert_eq!(
            reply.body["OrganizationId"],
            seeded.organization.organization_id.as_str()
        );
        assert_eq!(reply.headers["x-ms-dop-hint"], "4");
    }
    let reply = api.post("WhoAmI", &json!({})).await;
    assert_error(
        &reply,
        404,
        "",
        "No HTTP resource was found that matches the request URI",
    );

    // Alice through the public client (delegated token).
    let scope = format!("{}/user_impersonation", emulator.base_url());
    let reply = post_form(
        &client(),
        &emulator.token_endpoint_v2(),
        &[
            ("grant_type", "password"),
            ("client_id", seeded.public_app.client_id.as_str()),
            ("username", seeded.user.upn.as_str()),
            ("password", seeded.user.password.expose_secret()),
            ("scope", scope.as_str()),
        ],
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let alice = Api {
        token: reply.body["access_token"]
            .as_str()
            .expect("token")
            .to_owned(),
        ..Api::new(&emulator).await
    };
    let reply = alice.get("WhoAmI").await;
    assert_eq!(
        reply.body["UserId"],
        seeded.organization.user_id.as_str(),
        "{}",
        reply.body
    );
}

#[tokio::test]
async fn membership_and_privileges_are_enforced() {
    let emulator = Emulator::builder().start().await.expect("started");
    let seeded = emulator.seeded().expect("seeded").clone();
    let admin = Api::new(&emulator).await;
    let account = admin.create("accounts", &json!({"name": "Readable"})).await;

    let outsider = Api {
        token: app_token(
            &emulator,
            &seeded.no_user_app.client_id,
            seeded.no_user_app.secret.expose_secret(),
        )
        .await,
        ..Api::new(&emulator).await
    };
    let reader = Api {
        token: app_token(
            &emulator,
            &seeded.reader_app.client_id,
            seeded.reader_app.secret.expose_secret(),
        )
        .await,
        ..Api::new(&emulator).await
    };
    for path in ["WhoAmI", "accounts", "$metadata"] {
        let reply = outsider.get(path).await;
        assert_error(
            &reply,
            403,
            "0x80072560",
            "The user is not a member of the organization.",
        );
    }
    assert_eq!(reader.get("accounts").await.status, 200);
    assert_eq!(
        reader.get(&format!("accounts({account})")).await.status,
        200
    );
    let denied: Vec<(reqwest::Method, String, &str)> = vec![
        (reqwest::Method::POST, "accounts".into(), "prvCreateaccount"),
        (
            reqwest::Method::PATCH,
            format!("accounts({account})"),
            "prvWriteaccount",
        ),
        (
            reqwest::Method::DELETE,
            format!("accounts({account})"),
            "prvDeleteaccount",
        ),
        (
            reqwest::Method::PATCH,
            format!("contacts({})", uuid::Uuid::new_v4()),
            "prvCreatecontact",
        ),
    ];
    for (method, path, privilege) in denied {
        let reply = send(
            reader
                .request(method.clone(), &path)
                .json(&json!({"name": "x"})),
        )
        .await;
        assert_error(&reply, 403, "0x80040220", privilege);
    }

    // The admin API grants the outsider an application user with a custom role.
    let http = client();
    let base = emulator.base_url();
    let role = send(
        http.post(format!("{base}/_emulator/dataverse/roles"))
            .json(&json!({
                "name": "Contact reader", "privileges": {"contact": "r"}
            })),
    )
    .await;
    assert_eq!(role.status, 201, "{}", role.body);
    let user = send(
        http.post(format!("{base}/_emulator/dataverse/users"))
            .json(&json!({
                "application_id": seeded.no_user_app.client_id, "roles": ["Contact reader"]
            })),
    )
    .await;
    assert_eq!(user.status, 201, "{}", user.body);
    assert_eq!(outsider.get("contacts").await.status, 200);
    assert_error(
        &outsider.get("accounts").await,
        403,
        "0x80040220",
        "prvReadaccount",
    );
    let user_id = user.body["systemuserid"].as_str().expect("id");
    let set = send(
        http.put(format!("{base}/_emulator/dataverse/users/{user_id}/roles"))
            .json(&json!({"roles": ["System Administrator"]})),
    )
    .await;
    assert_eq!(set.status, 204, "{}", set.body);
    assert_eq!(outsider.get("accounts").await.status, 200);
    let users = send(http.get(format!("{base}/_emulator/dataverse/users"))).await;
    assert!(
        users.body.as_array().expect("list").len() >= 6,
        "{}",
        users.body
    );

    let bad_cases = [
        (json!({"roles": ["x"]}), 400),
        (json!({"application_id": "nope"}), 400),
        (
            json!({"application_id": seeded.confidential_app.client_id}),
            409,
        ),
        (json!({"upn": "nobody@contoso.onmicrosoft.com"}), 404),
        (
            json!({"application_id": uuid::Uuid::new_v4().to_string(), "roles": ["No such role"]}),
            404,
        ),
    ];
    for (body, status) in bad_cases {
        let reply = send(
            http.post(format!("{base}/_emulator/dataverse/users"))
                .json(&body),
        )
        .await;
        assert_eq!(reply.status.as_u16(), status, "{body}: {}", reply.body);
    }
}
