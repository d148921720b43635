//! Where the token service matches Entra ID as Dataverse clients meet it: tokens only for
//! registered organizations (AADSTS500011 otherwise), v1-shaped Dataverse tokens from either
//! endpoint, the v1 device code endpoint v1 discovery advertises, instance discovery for the
//! emulator's host without its port, and the Web API's 401 for another organization's token.

use std::time::Duration;

use d365_emulator::Emulator;
use secrecy::ExposeSecret as _;
use serde_json::Value;

use crate::common::{self, Api, claims, client, post_form};

#[tokio::test]
async fn tokens_only_for_registered_organizations() {
    let emulator = Emulator::builder()
        .organization("https://fabrikam.crm4.dynamics.com/")
        .start()
        .await
        .expect("started");
    let app = &emulator.seeded().expect("seeded").confidential_app;
    let ask = |scope: String| {
        let endpoint = emulator.token_endpoint_v2();
        let form = vec![
            ("grant_type".to_owned(), "client_credentials".to_owned()),
            ("client_id".to_owned(), app.client_id.clone()),
            (
                "client_secret".to_owned(),
                app.secret.expose_secret().to_owned(),
            ),
            ("scope".to_owned(), scope),
        ];
        async move { common::send(client().post(endpoint).form(&form)).await }
    };
    for resource in [
        emulator.base_url().to_owned(),
        "https://contoso.crm.dynamics.com".to_owned(),
        "https://FABRIKAM.crm4.dynamics.com".to_owned(),
    ] {
        let reply = ask(format!("{resource}/.default")).await;
        assert_eq!(reply.status, 200, "{resource}: {}", reply.body);
        let token = claims(reply.body["access_token"].as_str().expect("token"));
        assert_eq!(token["ver"], "1.0");
        assert_eq!(
            token["iss"],
            format!("https://sts.windows.net/{}/", emulator.tenant_id())
        );
    }
    let reply = ask("https://unknown.crm.dynamics.com/.default".to_owned()).await;
    assert_eq!(reply.status, 400, "{}", reply.body);
    assert_eq!(reply.body["error"], "invalid_resource");
    assert_eq!(reply.body["error_codes"], serde_json::json!([500_011]));
    let description = reply.body["error_description"].as_str().expect("text");
    assert!(
        description.starts_with(
            "AADSTS500011: The resource principal named https://unknown.crm.dynamics.com was not found in the tenant named"
        ),
        "{description}"
    );

    // The device authorization and managed identity endpoints refuse it too.
    let reply = post_form(
        &client(),
        &format!("{}/oauth2/v2.0/devicecode", emulator.authority()),
        &[
            (
                "client_id",
                &emulator.seeded().expect("seeded").public_app.client_id,
            ),
            (
                "scope",
                "https://unknown.crm.dynamics.com/user_impersonation",
            ),
        ],
    )
    .await;
    assert_eq!(reply.body["error_codes"][0], 500_011, "{}", reply.body);
}

#[tokio::test]
async fn the_v1_device_code_endpoint_works_as_adal_uses_it() {
    let emulator = Emulator::builder()
        .device_code_interval(Duration::from_secs(1))
        .start()
        .await
        .expect("started");
    let seeded = emulator.seeded().expect("seeded").clone();
    // v1 discovery advertises it.
    let discovery = common::send(client().get(format!(
        "{}/.well-known/openid-configuration",
        emulator.authority()
    )))
    .await;
    let endpoint = discovery.body["device_authorization_endpoint"]
        .as_str()
        .expect("advertised")
        .to_owned();
    assert!(endpoint.ends_with("/oauth2/devicecode"), "{endpoint}");
    let resource = format!("{}/", emulator.base_url());
    let reply = post_form(
        &client(),
        &endpoint,
        &[
            ("client_id", &seeded.public_app.client_id),
            ("resource", &resource),
        ],
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let body = &reply.body;
    // ADAL's shape: numbers as strings, `verification_url`.
    assert!(body["expires_in"].is_string(), "{body}");
    assert!(body["interval"].is_string(), "{body}");
    assert!(body["verification_url"].is_string(), "{body}");
    let device_code = body["device_code"].as_str().expect("code").to_owned();
    let user_code = body["user_code"].as_str().expect("user code").to_owned();
    emulator
        .device_codes()
        .approve(&user_code, &seeded.user.upn)
        .expect("approved");
    let reply = post_form(
        &client(),
        &emulator.token_endpoint_v1(),
        &[
            ("grant_type", "device_code"),
            ("client_id", &seeded.public_app.client_id),
            ("resource", &resource),
            ("code", &device_code),
        ],
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert!(reply.body["expires_in"].is_string(), "v1 response");
    assert!(reply.body["refresh_token"].is_string());
    let token = claims(reply.body["access_token"].as_str().expect("token"));
    assert_eq!(token["upn"], seeded.user.upn);
    assert_eq!(token["ver"], "1.0");
}

#[tokio::test]
async fn instance_discovery_accepts_the_host_without_its_port() {
    let emulator = Emulator::builder().start().await.expect("started");
    let base = emulator.base_url();
    let host = base
        .trim_start_matches("http://")
        .split(':')
        .next()
        .expect("host");
    for authority in [
        format!("{base}/{}/oauth2/v2.0/authorize", emulator.tenant_id()),
        format!(
            "http://{host}/{}/oauth2/v2.0/authorize",
            emulator.tenant_id()
        ),
        format!(
            "http://localhost/{}/oauth2/v2.0/authorize",
            emulator.tenant_id()
        ),
    ] {
        let reply = common::send(
            client()
                .get(format!("{base}/common/discovery/instance"))
                .query(&[
                    ("api-version", "1.1"),
                    ("authorization_endpoint", &authority),
                ]),
        )
        .await;
        assert_eq!(reply.status, 200, "{authority}: {}", reply.body);
        assert!(reply.body["tenant_discovery_endpoint"].is_string());
    }
    let reply = common::send(
        client()
            .get(format!("{base}/common/discovery/instance"))
            .query(&[(
                "authorization_endpoint",
                "https://login.example.com/t/oauth2/v2.0/authorize",
            )]),
    )
    .await;
    assert_eq!(reply.body["error"], "invalid_instance", "{}", reply.body);
    assert!(reply.body["error_codes"].is_array());
}

#[tokio::test]
async fn a_token_for_another_organization_gets_401_with_a_message() {
    let emulator = Emulator::builder().start().await.expect("started");
    let app = &emulator.seeded().expect("seeded").confidential_app;
    let reply = post_form(
        &client(),
        &emulator.token_endpoint_v2(),
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &app.client_id),
            ("client_secret", app.secret.expose_secret()),
            ("scope", "https://contoso.crm.dynamics.com/.default"),
        ],
    )
    .await;
    let token = reply.body["access_token"]
        .as_str()
        .expect("token")
        .to_owned();
    let mut api = Api::new(&emulator).await;
    api.token = token;
    let reply = api.get("WhoAmI").await;
    assert_eq!(reply.status, 401, "{}", reply.body);
    assert_eq!(
        reply.headers["www-authenticate"].to_str().expect("header"),
        emulator.www_authenticate()
    );
    assert_eq!(reply.body["error"]["code"], "");
    let message = reply.body["error"]["message"].as_str().expect("message");
    assert!(
        message.contains("https://contoso.crm.dynamics.com")
            && message.contains("not valid for this organization"),
        "{message}"
    );
    // No token at all: the bare challenge.
    let reply = common::send(client().get(emulator.web_api_url())).await;
    assert_eq!(reply.status, 401);
    assert_eq!(reply.body, Value::String(String::new()));
}
