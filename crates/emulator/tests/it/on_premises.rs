//! The on-premises mode: the organization under its path at the server's Web API versions,
//! the AD FS challenge, AD FS's discovery document, keys and token endpoint (v1 tokens with
//! AD FS's claims, RS256-only assertions, `MSIS` errors), and a Web API that accepts AD FS's
//! tokens and nothing else.

use d365_emulator::{Emulator, OnPremises};
use jsonwebtoken::Algorithm;
use secrecy::ExposeSecret as _;
use serde_json::Value;

use crate::common::{Thumbprint, assertion, claims, client, post_form, send};

async fn on_premises(version: &str) -> Emulator {
    Emulator::builder()
        .on_premises(OnPremises::new("Contoso").server_version(version))
        .start()
        .await
        .expect("started")
}

fn token_endpoint(emulator: &Emulator) -> String {
    format!("{}/adfs/oauth2/token", emulator.base_url())
}

fn resource(emulator: &Emulator) -> String {
    format!("{}/", emulator.base_url())
}

/// A token from AD FS by the client secret of the seeded confidential app.
async fn secret_token(emulator: &Emulator) -> String {
    let app = &emulator.seeded().expect("seeded").confidential_app;
    let reply = post_form(
        &client(),
        &token_endpoint(emulator),
        &[
            ("grant_type", "client_credentials"),
            ("client_id", app.client_id.as_str()),
            ("client_secret", app.secret.expose_secret()),
            ("resource", resource(emulator).as_str()),
        ],
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.body["access_token"]
        .as_str()
        .expect("token")
        .to_owned()
}

async fn get(url: &str, token: Option<&str>) -> crate::common::Reply {
    let mut request = client().get(url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    send(request).await
}

#[tokio::test]
async fn the_organization_answers_under_its_path_at_its_versions() {
    for (version, served, refused) in [
        (
            "8.2.2.112",
            vec!["v8.0", "v8.1", "v8.2"],
            vec!["v9.0", "v9.2"],
        ),
        ("9.0.2.3034", vec!["v9.0"], vec!["v8.2", "v9.1", "v9.2"]),
    ] {
        let emulator = on_premises(version).await;
        assert_eq!(
            emulator.organization_url(),
            format!("{}/Contoso", emulator.base_url())
        );
        let token = secret_token(&emulator).await;
        for api in &served {
            // The organization's name in any case, as IIS matches it.
            let url = format!(
                "{}/contoso/api/data/{api}/RetrieveVersion()",
                emulator.base_url()
            );
            let reply = get(&url, Some(&token)).await;
            assert_eq!(reply.status, 200, "{api} on {version}: {}", reply.body);
            assert_eq!(reply.body["Version"], version);
            assert_eq!(
                reply.body["@odata.context"],
                format!(
                    "{}/Contoso/api/data/{api}/$metadata#Microsoft.Dynamics.CRM.RetrieveVersionResponse",
                    emulator.base_url()
                )
            );
            let whoami = get(
                &format!("{}/Contoso/api/data/{api}/WhoAmI", emulator.base_url()),
                Some(&token),
            )
            .await;
            assert_eq!(whoami.status, 200, "{}", whoami.body);
        }
        for api in &refused {
            let url = format!("{}/Contoso/api/data/{api}/WhoAmI", emulator.base_url());
            let reply = get(&url, Some(&token)).await;
            assert_eq!(reply.status, 404, "{api} on {version}");
            assert_eq!(reply.body["error"]["code"], "0x8006088a", "{}", reply.body);
        }
        // Neither another organization nor the online root.
        for path in ["/Fabrikam/api/data/v9.0/WhoAmI", "/api/data/v9.2/WhoAmI"] {
            let reply = get(&format!("{}{path}", emulator.base_url()), Some(&token)).await;
            assert_eq!(reply.status, 404, "{path}");
        }
        emulator.shutdown().await;
    }
}

#[tokio::test]
async fn an_unauthenticated_request_gets_the_ad_fs_challenge_at_any_version() {
    let emulator = on_premises("9.0.2.3034").await;
    for api in ["v9.0", "v9.2", "v8.0"] {
        let reply = get(
            &format!("{}/Contoso/api/data/{api}/", emulator.base_url()),
            None,
        )
        .await;
        assert_eq!(reply.status, 401, "{api}");
        let challenge = reply.headers["www-authenticate"].to_str().unwrap();
        assert_eq!(
            challenge,
            format!(
                "Bearer authorization_uri={base}/adfs/oauth2/authorize, resource_id={base}/",
                base = emulator.base_url()
            )
        );
        assert_eq!(challenge, emulator.www_authenticate());
    }
    emulator.shutdown().await;
}

#[tokio::test]
async fn ad_fs_publishes_its_discovery_document_and_keys() {
    let emulator = on_premises("9.0.2.3034").await;
    let base = emulator.base_url();
    let discovery = get(
        &format!("{base}/adfs/.well-known/openid-configuration"),
        None,
    )
    .await;
    assert_eq!(discovery.status, 200);
    assert_eq!(discovery.body["issuer"], format!("{base}/adfs"));
    assert_eq!(
        discovery.body["token_endpoint"],
        format!("{base}/adfs/oauth2/token/")
    );
    assert_eq!(
        discovery.body["access_token_issuer"],
        format!(
            "http://{}/adfs/services/trust",
            base.trim_start_matches("http://")
        )
    );
    assert_eq!(
        discovery.body["token_endpoint_auth_signing_alg_values_supported"],
        serde_json::json!(["RS256"])
    );
    let keys = get(discovery.body["jwks_uri"].as_str().unwrap(), None).await;
    assert_eq!(keys.status, 200);
    let key = &keys.body["keys"][0];
    assert_eq!(key["kid"], key["x5t"]);
    // Online, there is no AD FS.
    let online = Emulator::builder().start().await.expect("started");
    let reply = get(
        &format!(
            "{}/adfs/.well-known/openid-configuration",
            online.base_url()
        ),
        None,
    )
    .await;
    assert_ne!(reply.status, 200);
    online.shutdown().await;
    emulator.shutdown().await;
}

#[tokio::test]
async fn ad_fs_tokens_carry_ad_fs_claims_and_the_web_api_takes_only_them() {
    let emulator = on_premises("9.0.2.3034").await;
    let seeded = emulator.seeded().expect("seeded");
    let http = client();
    let app_token = secret_token(&emulator).await;
    let app = claims(&app_token);
    assert_eq!(app["aud"], resource(&emulator));
    assert_eq!(
        app["iss"],
        format!(
            "http://{}/adfs/services/trust",
            emulator.base_url().trim_start_matches("http://")
        )
    );
    assert_eq!(app["ver"], "1.0");
    assert_eq!(app["appid"], seeded.confidential_app.client_id);
    assert_eq!(app["apptype"], "Confidential");
    assert!(app["auth_time"].is_string(), "{app}");
    for absent in ["tid", "oid", "roles", "upn"] {
        assert!(app.get(absent).is_none(), "{absent} in {app}");
    }

    // The password grant, by DOMAIN\user and by UPN.
    for username in [r"CONTOSO\alice", r"contoso\Alice", seeded.user.upn.as_str()] {
        let reply = post_form(
            &http,
            &token_endpoint(&emulator),
            &[
                ("grant_type", "password"),
                ("client_id", seeded.public_app.client_id.as_str()),
                ("username", username),
                ("password", seeded.user.password.expose_secret()),
                ("resource", resource(&emulator).as_str()),
                ("scope", "openid"),
            ],
        )
        .await;
        assert_eq!(reply.status, 200, "{username}: {}", reply.body);
        assert_eq!(reply.body["token_type"], "bearer");
        assert!(reply.body["expires_in"].is_u64(), "{}", reply.body);
        assert!(reply.body["refresh_token"].is_string());
        assert!(reply.body["id_token"].is_string());
        let user = claims(reply.body["access_token"].as_str().unwrap());
        assert_eq!(user["upn"], seeded.user.upn);
        assert_eq!(user["unique_name"], r"CONTOSO\alice");
        assert_eq!(user["apptype"], "Public");
        assert!(user.get("tid").is_none());
        let whoami = get(
            &format!("{}/api/data/v9.0/WhoAmI", emulator.organization_url()),
            reply.body["access_token"].as_str(),
        )
        .await;
        assert_eq!(whoami.status, 200, "{}", whoami.body);
    }

    // Entra ID's tokens are not the on-premises server's.
    let app_id = seeded.confidential_app.client_id.as_str();
    let entra = post_form(
        &http,
        &emulator.token_endpoint_v2(),
        &[
            ("grant_type", "client_credentials"),
            ("client_id", app_id),
            (
                "client_secret",
                seeded.confidential_app.secret.expose_secret(),
            ),
            ("scope", &format!("{}/.default", emulator.base_url())),
        ],
    )
    .await;
    assert_eq!(entra.status, 200, "{}", entra.body);
    let refused = get(
        &format!("{}/api/data/v9.0/WhoAmI", emulator.organization_url()),
        entra.body["access_token"].as_str(),
    )
    .await;
    assert_eq!(refused.status, 401);
    // AD FS's tokens are not Dataverse online's.
    let online = Emulator::builder().start().await.expect("started");
    let refused = get(&format!("{}WhoAmI", online.web_api_url()), Some(&app_token)).await;
    assert_eq!(refused.status, 401);
    online.shutdown().await;
    emulator.shutdown().await;
}

/// An MSIS refusal: AD FS's shape and nothing else.
fn assert_msis(reply: &crate::common::Reply, status: u16, error: &str, code: &str) {
    assert_eq!(reply.status, status, "{}", reply.body);
    assert_eq!(reply.body["error"], error, "{}", reply.body);
    let description = reply.body["error_description"].as_str().unwrap_or_default();
    assert!(
        description.starts_with(&format!("{code}: ")),
        "{description}"
    );
    let fields: Vec<&String> = reply.body.as_object().unwrap().keys().collect();
    assert_eq!(
        fields.len(),
        2,
        "AD FS sends error and error_description only: {fields:?}"
    );
}

#[tokio::test]
async fn ad_fs_refuses_in_its_own_words() {
    let emulator = on_premises("9.0.2.3034").await;
    let seeded = emulator.seeded().expect("seeded");
    let http = client();
    let endpoint = token_endpoint(&emulator);
    let org = resource(&emulator);
    let secret = seeded.confidential_app.secret.expose_secret();
    let confidential = seeded.confidential_app.client_id.as_str();
    let public = seeded.public_app.client_id.as_str();
    let password = seeded.user.password.expose_secret();

    let wrong_password = post_form(
        &http,
        &endpoint,
        &[
            ("grant_type", "password"),
            ("client_id", public),
            ("username", r"CONTOSO\alice"),
            ("password", "wrong"),
            ("resource", org.as_str()),
        ],
    )
    .await;
    assert_msis(&wrong_password, 400, "invalid_grant", "MSIS9659");

    let unknown_client = post_form(
        &http,
        &endpoint,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", "00000000-0000-0000-0000-00000000dead"),
            ("client_secret", "x"),
            ("resource", org.as_str()),
        ],
    )
    .await;
    assert_msis(&unknown_client, 400, "invalid_client", "MSIS9607");

    let wrong_secret = post_form(
        &http,
        &endpoint,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", confidential),
            ("client_secret", "not-the-secret"),
            ("resource", org.as_str()),
        ],
    )
    .await;
    assert_msis(&wrong_secret, 401, "invalid_client", "MSIS9622");

    let unknown_resource = post_form(
        &http,
        &endpoint,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", confidential),
            ("client_secret", secret),
            ("resource", "https://elsewhere.contoso.com/"),
        ],
    )
    .await;
    assert_msis(&unknown_resource, 400, "invalid_resource", "MSIS9602");

    let bad_refresh = post_form(
        &http,
        &endpoint,
        &[
            ("grant_type", "refresh_token"),
            ("client_id", public),
            ("refresh_token", "adfs.nope"),
            ("resource", org.as_str()),
        ],
    )
    .await;
    assert_msis(&bad_refresh, 400, "invalid_grant", "MSIS9615");

    // A user in another domain is not this AD FS's.
    let other_domain = post_form(
        &http,
        &endpoint,
        &[
            ("grant_type", "password"),
            ("client_id", public),
            ("username", r"FABRIKAM\alice"),
            ("password", password),
            ("resource", org.as_str()),
        ],
    )
    .await;
    assert_eq!(other_domain.status, 400, "{}", other_domain.body);

    // Hostile input: an oversized form is refused without a token.
    let huge = "x".repeat(3 * 1024 * 1024);
    let oversized = post_form(
        &http,
        &endpoint,
        &[
            ("grant_type", "password"),
            ("client_id", public),
            ("username", huge.as_str()),
            ("password", password),
            ("resource", org.as_str()),
        ],
    )
    .await;
    assert!(oversized.status.is_client_error(), "{}", oversized.status);
    emulator.shutdown().await;
}

#[tokio::test]
async fn certificate_assertions_to_ad_fs_must_be_rs256_with_the_sha1_thumbprint() {
    let emulator = on_premises("9.0.2.3034").await;
    let app = &emulator.seeded().expect("seeded").certificate_app;
    let http = client();
    let endpoint = token_endpoint(&emulator);
    let org = resource(&emulator);
    let with = |jwt: String| {
        let endpoint = endpoint.clone();
        let org = org.clone();
        let http = http.clone();
        let client_id = app.client_id.clone();
        async move {
            post_form(
                &http,
                &endpoint,
                &[
                    ("grant_type", "client_credentials"),
                    ("client_id", client_id.as_str()),
                    (
                        "client_assertion_type",
                        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                    ),
                    ("client_assertion", jwt.as_str()),
                    ("resource", org.as_str()),
                ],
            )
            .await
        }
    };
    // `aud` is the token endpoint, with or without the slash discovery writes.
    for audience in [endpoint.clone(), format!("{endpoint}/")] {
        let good = with(assertion(
            app,
            &audience,
            Algorithm::RS256,
            Thumbprint::Sha1,
            |_| {},
        ))
        .await;
        assert_eq!(good.status, 200, "{}", good.body);
        let token: Value = claims(good.body["access_token"].as_str().unwrap());
        assert_eq!(token["appid"], app.client_id);
    }
    let pss = with(assertion(
        app,
        &endpoint,
        Algorithm::PS256,
        Thumbprint::Sha1,
        |_| {},
    ))
    .await;
    assert_msis(&pss, 401, "invalid_client", "MSIS9622");
    let sha256 = with(assertion(
        app,
        &endpoint,
        Algorithm::RS256,
        Thumbprint::Sha256,
        |_| {},
    ))
    .await;
    assert_msis(&sha256, 401, "invalid_client", "MSIS9622");
    emulator.shutdown().await;
}
