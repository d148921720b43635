//! No App Service header and no access token reaches a log line (at TRACE level), the
//! `Debug` of the builder, the source, the grant, the registration's configuration or a
//! token, an error message or a cache key: every path runs — tokens, retries, refusals, an
//! endpoint that is not there — and everything observable is searched for each secret.

use std::time::Duration;

use d365_auth_core::grant::{GrantConfig, GrantRegistration};
use d365_auth_core::{TokenCache, TokenProvider};
use d365_auth_managed_identity::{ManagedIdentity, ManagedIdentitySource, REGISTRATION};
use d365_test_support::{Canned, SecretWatch, Server};
use secrecy::SecretString;

use crate::{
    app_service_token, closed_port, epoch_in, fast, imds_answering, imds_error, imds_token,
    request, variables,
};

const HEADER: &str = "IDENTITY-HEADER-VALUE";
const SECRETS: &[&str] = &[HEADER, "ACCESS-TOKEN-VALUE", "IMDS-ACCESS-TOKEN"];

#[tokio::test]
async fn no_secret_in_logs_debug_errors_or_cache_keys() {
    let mut watch = SecretWatch::start(SECRETS);
    let expires_on = epoch_in(Duration::from_secs(3600));

    // App Service: a 503, a 429, then a token — through a cache, so its logs count too.
    let server = Server::start(move |_, earlier| match earlier {
        0 => Canned::json(503, r#"{"statusCode":503,"message":"busy"}"#),
        1 => Canned::json(429, r#"{"error":"too_many_requests"}"#).header("retry-after", "0"),
        _ => app_service_token("ACCESS-TOKEN-VALUE", expires_on),
    })
    .await;
    let endpoint = format!("{}/msi/token", server.base);
    let builder = ManagedIdentity::builder()
        .app_service(&endpoint, SecretString::from(HEADER))
        .retry_policy(fast());
    watch.see_debug(&builder);
    let grant = builder.build().unwrap();
    watch.see_debug(&grant);
    watch.see_debug(grant.source());
    watch.see(grant.cache_key());
    let cache = TokenCache::new(grant.clone());
    let outcome = cache.get(&request()).await;
    watch.see_outcome(&outcome);
    let token = outcome.unwrap();
    watch.see_debug(&token);
    watch.see_debug(&cache);

    // App Service refusals: not assigned (400), and failing until the retries run out.
    for answer in [
        Canned::json(
            400,
            r#"{"error":"invalid_request","error_description":"Unable to find the requested identity"}"#,
        ),
        Canned::json(500, r#"{"statusCode":500,"message":"error"}"#),
    ] {
        let server = Server::start(move |_, _| answer.clone()).await;
        let grant = ManagedIdentity::builder()
            .app_service(
                format!("{}/msi/token", server.base),
                SecretString::from(HEADER),
            )
            .client_id(crate::CLIENT_ID)
            .retry_policy(fast().max_retries(1))
            .build()
            .unwrap();
        watch.see_outcome(&grant.request_token(&request()).await);
    }

    // App Service where nothing listens.
    let nothing = closed_port().await;
    let grant = ManagedIdentity::builder()
        .app_service(format!("{nothing}/msi/token"), SecretString::from(HEADER))
        .build()
        .unwrap();
    watch.see_outcome(&grant.request_token(&request()).await);

    // From variables and from configuration.
    let pairs = [
        ("IDENTITY_ENDPOINT", endpoint.as_str()),
        ("IDENTITY_HEADER", HEADER),
    ];
    let detected = ManagedIdentity::builder().from_variables(variables(&pairs));
    watch.see_debug(&detected);
    watch.see_debug(&ManagedIdentitySource::from_variables(variables(&pairs)).unwrap());
    watch.see_outcome(&ManagedIdentitySource::from_variables(variables(&[(
        "IDENTITY_HEADER",
        HEADER,
    )])));
    let mut config = GrantConfig::default();
    config.set_text("IdentityEndpoint", &endpoint);
    config.set_secret("IdentityHeader", SecretString::from(HEADER));
    watch.see_debug(&config);
    let provider = REGISTRATION.build(&config).unwrap();
    watch.see_debug(&provider);
    watch.see(provider.cache_key());
    watch.see_outcome(&provider.request_token(&request()).await);
    config.set_text("IdentityEndpoint", "http://user:pw@127.0.0.1:1/msi/token");
    watch.see_outcome(&REGISTRATION.check(&config));

    // IMDS: a token after a 500, and a 400.
    let server = imds_answering(vec![
        imds_error(500, "server_error", "failed"),
        imds_token("IMDS-ACCESS-TOKEN"),
    ])
    .await;
    let grant = ManagedIdentity::builder()
        .imds_endpoint(&server.base)
        .retry_policy(fast())
        .build()
        .unwrap();
    watch.see_outcome(&grant.request_token(&request()).await);
    let server = imds_answering(vec![imds_error(
        400,
        "invalid_request",
        "Identity not found",
    )])
    .await;
    let grant = ManagedIdentity::builder()
        .imds_endpoint(&server.base)
        .build()
        .unwrap();
    watch.see_outcome(&grant.request_token(&request()).await);

    assert!(
        watch.everything().contains("[redacted]"),
        "the header is shown as redacted"
    );
    watch.assert_clean_with_logs();
}
