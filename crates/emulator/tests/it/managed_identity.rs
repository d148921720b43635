//! The managed identity endpoints over HTTP: the IMDS and App Service shapes with each kind
//! of id, their header checks, numbers as strings, unknown identities, the fault modes (by
//! the Rust handle and the admin API), configured identities, and a Dataverse WhoAmI with
//! the token an identity gets.

use std::time::Duration;

use d365_emulator::{Emulator, EmulatorConfig, ManagedIdentityFault};
use secrecy::ExposeSecret as _;
use serde_json::{Value, json};

use crate::common::{Reply, claims, client, send};

async fn imds(emulator: &Emulator, params: &[(&str, &str)], metadata: bool) -> Reply {
    let mut query = vec![("api-version", "2018-02-01")];
    query.extend_from_slice(params);
    let mut request = client()
        .get(emulator.managed_identity().imds_endpoint())
        .query(&query);
    if metadata {
        request = request.header("Metadata", "true");
    }
    send(request).await
}

async fn app_service(emulator: &Emulator, params: &[(&str, &str)], header: Option<&str>) -> Reply {
    let mut query = vec![("api-version", "2019-08-01")];
    query.extend_from_slice(params);
    let mut request = client()
        .get(emulator.managed_identity().app_service_endpoint())
        .query(&query);
    if let Some(header) = header {
        request = request.header("X-IDENTITY-HEADER", header);
    }
    send(request).await
}

fn string_number(body: &Value, name: &str) -> i64 {
    body[name]
        .as_str()
        .unwrap_or_else(|| panic!("{name} is a string: {body}"))
        .parse()
        .unwrap_or_else(|_| panic!("{name} is a number: {body}"))
}

fn assert_refused(reply: &Reply, status: u16, description: &str) {
    assert_eq!(reply.status.as_u16(), status, "{}", reply.body);
    assert_eq!(
        reply.body,
        json!({"error": "invalid_request", "error_description": description})
    );
}

#[tokio::test]
async fn imds_issues_tokens_for_every_kind_of_id() {
    let emulator = Emulator::builder().start().await.expect("started");
    let seeded = emulator.seeded().expect("seeded");
    let system = &seeded.system_assigned_identity;
    let user = &seeded.user_assigned_identity;
    let resource = "https://contoso.crm.dynamics.com/";
    let cases: Vec<(Vec<(&str, &str)>, &d365_emulator::SeededManagedIdentity)> = vec![
        (vec![], system),
        (vec![("client_id", user.client_id.as_str())], user),
        (vec![("object_id", user.object_id.as_str())], user),
        (vec![("msi_res_id", user.resource_id.as_str())], user),
        (vec![("client_id", system.client_id.as_str())], system),
        (vec![("msi_res_id", system.resource_id.as_str())], system),
    ];
    for (ids, identity) in cases {
        let mut params = vec![("resource", resource)];
        params.extend(ids.iter().copied());
        let reply = imds(&emulator, &params, true).await;
        assert_eq!(reply.status, 200, "{ids:?}: {}", reply.body);
        let body = &reply.body;
        assert_eq!(body["token_type"], "Bearer");
        assert_eq!(body["resource"], resource);
        assert_eq!(body["refresh_token"], "");
        assert_eq!(body["client_id"], identity.client_id);
        let expires_in = string_number(body, "expires_in");
        let expires_on = string_number(body, "expires_on");
        let not_before = string_number(body, "not_before");
        assert_eq!(string_number(body, "ext_expires_in"), expires_in);
        assert_eq!(expires_in, 3599);
        assert!(expires_on > not_before, "{body}");
        assert!((expires_on - crate::common::now() - expires_in).abs() <= 5);

        let token = claims(body["access_token"].as_str().expect("token"));
        assert_eq!(token["aud"], "https://contoso.crm.dynamics.com");
        assert_eq!(token["appid"], identity.client_id);
        assert_eq!(token["oid"], identity.object_id);
        assert_eq!(token["sub"], identity.object_id);
        assert_eq!(token["idtyp"], "app");
        assert_eq!(token["appidacr"], "2");
        assert_eq!(token["xms_mirid"], identity.resource_id);
        assert_eq!(token["tid"], emulator.tenant_id());
        assert_eq!(token["ver"], "1.0");
        assert!(token.get("scp").is_none());
        assert_eq!(expires_on, token["exp"].as_i64().expect("exp"));
    }
}

#[tokio::test]
async fn imds_needs_the_metadata_header_and_its_parameters() {
    let emulator = Emulator::builder().start().await.expect("started");
    let resource = [("resource", "https://contoso.crm.dynamics.com")];
    assert_refused(
        &imds(&emulator, &resource, false).await,
        400,
        "Required metadata header not specified",
    );
    let wrong = send(
        client()
            .get(emulator.managed_identity().imds_endpoint())
            .query(&[("api-version", "2018-02-01"), resource[0]])
            .header("Metadata", "false"),
    )
    .await;
    assert_eq!(wrong.status, 400);
    assert_refused(
        &imds(&emulator, &[], true).await,
        400,
        "Required query variable 'resource' is missing",
    );
    let no_version = send(
        client()
            .get(emulator.managed_identity().imds_endpoint())
            .query(&resource)
            .header("Metadata", "true"),
    )
    .await;
    assert_refused(
        &no_version,
        400,
        "Required query variable 'api-version' is missing",
    );
}

#[tokio::test]
async fn unknown_identities_are_not_found() {
    let emulator = Emulator::builder().start().await.expect("started");
    let seeded = emulator.seeded().expect("seeded");
    let resource = ("resource", "https://contoso.crm.dynamics.com");
    for id in [
        ("client_id", "11111111-2222-4333-8444-555555555555"),
        ("object_id", "11111111-2222-4333-8444-555555555555"),
        (
            "msi_res_id",
            "/subscriptions/x/resourceGroups/y/providers/Microsoft.ManagedIdentity/userAssignedIdentities/z",
        ),
    ] {
        assert_refused(
            &imds(&emulator, &[resource, id], true).await,
            400,
            "Identity not found",
        );
    }
    let header = emulator.managed_identity().identity_header();
    assert_refused(
        &app_service(
            &emulator,
            &[
                resource,
                ("principal_id", "11111111-2222-4333-8444-555555555555"),
            ],
            Some(header.expose_secret()),
        )
        .await,
        400,
        "Identity not found",
    );
    // Two ids at once.
    let user = &seeded.user_assigned_identity;
    assert_refused(
        &imds(
            &emulator,
            &[
                resource,
                ("client_id", &user.client_id),
                ("object_id", &user.object_id),
            ],
            true,
        )
        .await,
        400,
        "Only one of the identity parameters may be given",
    );

    // Without a system-assigned identity, asking with no id finds nothing.
    let config = EmulatorConfig::from_toml_str(
        "seed_defaults = false\n[[tenants]]\ndomain = \"fabrikam.onmicrosoft.com\"\n",
    )
    .expect("config");
    let bare = Emulator::builder()
        .config(config)
        .start()
        .await
        .expect("started");
    assert_refused(
        &imds(&bare, &[resource], true).await,
        400,
        "Identity not found",
    );
}

#[tokio::test]
async fn app_service_checks_the_identity_header_and_sends_no_expires_in() {
    let emulator = Emulator::builder().start().await.expect("started");
    let seeded = emulator.seeded().expect("seeded");
    let host = emulator.managed_identity();
    assert_eq!(
        host.app_service_endpoint(),
        format!("{}/msi/token", emulator.base_url())
    );
    let header = host.identity_header();
    assert!(header.expose_secret().len() >= 40);
    assert!(!format!("{host:?}").contains(header.expose_secret()));
    let resource = ("resource", "https://contoso.crm.dynamics.com/");

    let missing = app_service(&emulator, &[resource], None).await;
    assert_refused(
        &missing,
        400,
        "Required header X-IDENTITY-HEADER not specified",
    );
    let wrong = app_service(&emulator, &[resource], Some("not-the-header")).await;
    assert_eq!(wrong.status, 401, "{}", wrong.body);

    let user = &seeded.user_assigned_identity;
    let system = &seeded.system_assigned_identity;
    for (id, identity) in [
        (None, system),
        (Some(("client_id", user.client_id.as_str())), user),
        (Some(("principal_id", user.object_id.as_str())), user),
        (Some(("object_id", user.object_id.as_str())), user),
        (Some(("mi_res_id", user.resource_id.as_str())), user),
    ] {
        let mut params = vec![resource];
        params.extend(id);
        let reply = app_service(&emulator, &params, Some(header.expose_secret())).await;
        assert_eq!(reply.status, 200, "{id:?}: {}", reply.body);
        let body = &reply.body;
        assert!(body.get("expires_in").is_none(), "{body}");
        assert!(body.get("ext_expires_in").is_none(), "{body}");
        assert!(body.get("refresh_token").is_none(), "{body}");
        assert!(string_number(body, "expires_on") > crate::common::now());
        string_number(body, "not_before");
        assert_eq!(body["resource"], "https://contoso.crm.dynamics.com/");
        assert_eq!(body["token_type"], "Bearer");
        assert_eq!(body["client_id"], identity.client_id);
        let token = claims(body["access_token"].as_str().expect("token"));
        assert_eq!(token["oid"], identity.object_id);
    }

    // The path as IDENTITY_ENDPOINT often spells it.
    let upper = send(
        client()
            .get(format!("{}/MSI/token", emulator.base_url()))
            .query(&[("api-version", "2019-08-01"), resource])
            .header("X-IDENTITY-HEADER", header.expose_secret()),
    )
    .await;
    assert_eq!(upper.status, 200, "{}", upper.body);

    // Every emulator has its own header.
    let other = Emulator::builder().start().await.expect("started");
    assert_ne!(
        other.managed_identity().identity_header().expose_secret(),
        header.expose_secret()
    );
}

#[tokio::test]
async fn faults_answer_the_next_requests_in_order() {
    let emulator = Emulator::builder().start().await.expect("started");
    let host = emulator.managed_identity();
    let resource = ("resource", "https://contoso.crm.dynamics.com");
    host.fail_next(ManagedIdentityFault::Gone, 2)
        .expect("queued");
    host.fail_next(
        ManagedIdentityFault::TooManyRequests {
            retry_after: Duration::from_secs(3),
        },
        1,
    )
    .expect("queued");
    assert_eq!(host.pending_faults().len(), 3);
    let before = host.requests();

    for expected in [410, 410] {
        let reply = imds(&emulator, &[resource], true).await;
        assert_eq!(reply.status.as_u16(), expected, "{}", reply.body);
        assert_eq!(reply.body["error"], "gone");
    }
    let throttled = imds(&emulator, &[resource], true).await;
    assert_eq!(throttled.status, 429, "{}", throttled.body);
    assert_eq!(throttled.headers["retry-after"], "3");
    let served = imds(&emulator, &[resource], true).await;
    assert_eq!(served.status, 200, "{}", served.body);
    assert_eq!(host.requests() - before, 4);

    // Faults come before the header check, in both shapes.
    host.fail_next(ManagedIdentityFault::NotFound, 1)
        .expect("queued");
    host.fail_next(ManagedIdentityFault::ServerError, 1)
        .expect("queued");
    assert_eq!(app_service(&emulator, &[resource], None).await.status, 404);
    assert_eq!(imds(&emulator, &[resource], false).await.status, 500);
    host.fail_next(ManagedIdentityFault::ServerError, 5)
        .expect("queued");
    host.clear_faults();
    assert_eq!(imds(&emulator, &[resource], true).await.status, 200);
    assert!(
        host.fail_next(
            ManagedIdentityFault::TooManyRequests {
                retry_after: Duration::from_secs(7200)
            },
            1
        )
        .is_err()
    );
    assert!(host.fail_next(ManagedIdentityFault::Gone, 10_001).is_err());
    assert!(host.pending_faults().is_empty());

    // The same through the admin API.
    let admin = format!("{}/_emulator/managed-identity", emulator.base_url());
    let http = client();
    let queued = send(
        http.post(format!("{admin}/faults"))
            .json(&json!({"status": 429, "count": 2, "retry_after_secs": 5})),
    )
    .await;
    assert_eq!(queued.status, 200, "{}", queued.body);
    assert_eq!(
        queued.body["faults"],
        json!([{"status": 429, "retry_after_secs": 5}, {"status": 429, "retry_after_secs": 5}])
    );
    let queued = send(
        http.post(format!("{admin}/faults"))
            .json(&json!({"status": 500})),
    )
    .await;
    assert_eq!(queued.body["faults"].as_array().map(Vec::len), Some(3));
    for (status, retry_after) in [(429, Some("5")), (429, Some("5")), (500, None)] {
        let reply = imds(&emulator, &[resource], true).await;
        assert_eq!(reply.status.as_u16(), status, "{}", reply.body);
        assert_eq!(
            reply
                .headers
                .get("retry-after")
                .map(|v| v.to_str().unwrap()),
            retry_after
        );
    }
    let state = send(http.get(&admin)).await;
    assert_eq!(state.status, 200);
    assert_eq!(state.body["faults"], json!([]));
    assert_eq!(state.body["imds_endpoint"], host.imds_endpoint());
    assert_eq!(
        state.body["app_service_endpoint"],
        host.app_service_endpoint()
    );
    assert!(state.body["requests"].as_u64() >= Some(10));
    assert!(
        !state
            .body
            .to_string()
            .contains(host.identity_header().expose_secret())
    );

    for bad in [
        json!({"status": 418}),
        json!({"status": 404, "count": 0}),
        json!({"status": 404, "retry_after_secs": 1}),
        json!({"status": 429, "retry_after_secs": 99999}),
    ] {
        let reply = send(http.post(format!("{admin}/faults")).json(&bad)).await;
        assert_eq!(reply.status, 400, "{bad}: {}", reply.body);
        assert_eq!(reply.body["error"], "invalid");
    }
    send(
        http.post(format!("{admin}/faults"))
            .json(&json!({"status": 410, "count": 3})),
    )
    .await;
    let cleared = send(http.delete(format!("{admin}/faults"))).await;
    assert_eq!(cleared.status, 200);
    assert_eq!(cleared.body["faults"], json!([]));
    assert_eq!(imds(&emulator, &[resource], true).await.status, 200);
}

async fn who_am_i(emulator: &Emulator, token: &str) -> Reply {
    send(
        client()
            .get(format!("{}WhoAmI", emulator.web_api_url()))
            .bearer_auth(token),
    )
    .await
}

#[tokio::test]
async fn managed_identity_tokens_call_the_web_api() {
    let emulator = Emulator::builder().start().await.expect("started");
    let seeded = emulator.seeded().expect("seeded");
    let resource = ("resource", emulator.base_url());

    let reply = imds(&emulator, &[resource], true).await;
    let token = reply.body["access_token"].as_str().expect("token");
    let validated = emulator
        .token_validator()
        .validate(token, emulator.base_url())
        .expect("a valid token for the organization");
    assert!(validated.is_app_only());
    let whoami = who_am_i(&emulator, token).await;
    assert_eq!(whoami.status, 200, "{}", whoami.body);
    assert_eq!(
        whoami.body["UserId"],
        seeded.organization.system_assigned_identity_user_id
    );

    let user = &seeded.user_assigned_identity;
    let header = emulator.managed_identity().identity_header();
    let reply = app_service(
        &emulator,
        &[resource, ("client_id", &user.client_id)],
        Some(header.expose_secret()),
    )
    .await;
    let whoami = who_am_i(
        &emulator,
        reply.body["access_token"].as_str().expect("token"),
    )
    .await;
    assert_eq!(whoami.status, 200, "{}", whoami.body);
    assert_eq!(
        whoami.body["UserId"],
        seeded.organization.user_assigned_identity_user_id
    );
}

#[tokio::test]
async fn configured_and_added_identities() {
    let config = EmulatorConfig::from_toml_str(
        r#"
        [[managed_identities]]
        client_id = "d3650000-a990-4000-8000-0000000000e1"
        display_name = "nightly job"
        roles = ["Data.Read"]

        [[managed_identities]]
        client_id = "d3650000-a990-4000-8000-0000000000e2"
        application_user = false

        [[tenants]]
        domain = "fabrikam.onmicrosoft.com"
        [[tenants.managed_identities]]
        system_assigned = true
        client_id = "d3650000-a990-4000-8000-0000000000e3"
        "#,
    )
    .expect("config");
    let emulator = Emulator::builder()
        .config(config)
        .start()
        .await
        .expect("started");
    let base = emulator.base_url();
    let resource = ("resource", base);

    let reply = imds(
        &emulator,
        &[
            resource,
            ("client_id", "d3650000-a990-4000-8000-0000000000e1"),
        ],
        true,
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let token = reply.body["access_token"].as_str().expect("token");
    let token_claims = claims(token);
    assert_eq!(token_claims["roles"], json!(["Data.Read"]));
    assert!(
        token_claims["xms_mirid"]
            .as_str()
            .expect("resource id")
            .ends_with("/userAssignedIdentities/nightly-job")
    );
    assert_eq!(who_am_i(&emulator, token).await.status, 200);

    // No application user: tokens, but the Web API refuses the caller.
    let reply = imds(
        &emulator,
        &[
            resource,
            ("client_id", "d3650000-a990-4000-8000-0000000000e2"),
        ],
        true,
    )
    .await;
    let refused = who_am_i(
        &emulator,
        reply.body["access_token"].as_str().expect("token"),
    )
    .await;
    assert_eq!(refused.status, 403, "{}", refused.body);

    // The seeded tenant's system-assigned identity comes first; fabrikam's by id.
    let seeded = emulator.seeded().expect("seeded");
    let reply = imds(&emulator, &[resource], true).await;
    assert_eq!(
        reply.body["client_id"],
        seeded.system_assigned_identity.client_id
    );
    let reply = imds(
        &emulator,
        &[
            resource,
            ("client_id", "d3650000-a990-4000-8000-0000000000e3"),
        ],
        true,
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_ne!(
        claims(reply.body["access_token"].as_str().unwrap())["tid"],
        emulator.tenant_id()
    );

    // Added through the admin API, with an application user.
    let http = client();
    let tenants = format!("{base}/_emulator/tenants/{}", emulator.tenant_id());
    let added = send(
        http.post(format!("{tenants}/managed-identities"))
            .json(&json!({
                "client_id": "d3650000-a990-4000-8000-0000000000e4",
                "display_name": "added",
            })),
    )
    .await;
    assert_eq!(added.status, 201, "{}", added.body);
    assert!(
        added.body["application_user_id"].is_string(),
        "{}",
        added.body
    );
    let reply = imds(
        &emulator,
        &[
            resource,
            ("client_id", "d3650000-a990-4000-8000-0000000000e4"),
        ],
        true,
    )
    .await;
    let whoami = who_am_i(
        &emulator,
        reply.body["access_token"].as_str().expect("token"),
    )
    .await;
    assert_eq!(whoami.status, 200, "{}", whoami.body);
    assert_eq!(whoami.body["UserId"], added.body["application_user_id"]);

    let duplicate = send(
        http.post(format!("{tenants}/managed-identities"))
            .json(&json!({
                "client_id": "d3650000-a990-4000-8000-0000000000e4",
            })),
    )
    .await;
    assert_eq!(duplicate.status, 409, "{}", duplicate.body);
    let second_system = send(
        http.post(format!("{tenants}/managed-identities"))
            .json(&json!({"system_assigned": true})),
    )
    .await;
    assert_eq!(second_system.status, 409, "{}", second_system.body);

    let tenant = send(http.get(&tenants)).await;
    let listed = tenant.body["managed_identities"].as_array().expect("list");
    assert_eq!(listed.len(), 5, "{}", tenant.body);

    let removed = send(http.delete(format!(
        "{tenants}/managed-identities/d3650000-a990-4000-8000-0000000000e4"
    )))
    .await;
    assert_eq!(removed.status, 204);
    let reply = imds(
        &emulator,
        &[
            resource,
            ("client_id", "d3650000-a990-4000-8000-0000000000e4"),
        ],
        true,
    )
    .await;
    assert_eq!(reply.body["error_description"], "Identity not found");
}
