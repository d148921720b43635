//! No password, client secret, access token or refresh token reaches a log line (at TRACE
//! level), the `Debug` of the builder, the provider or a token, or an error message:
//! every path of the grant runs against answers that succeed and fail, and everything
//! observable is searched for each secret.

use std::time::Duration;

use d365_auth_core::{TokenCache, TokenProvider, TokenRequest};
use d365_auth_ropc::UsernamePassword;
use d365_test_support::{Canned, SecretWatch, Server};

const PASSWORD: &str = " USER-PASSWORD-VALUE";
const SECRETS: &[&str] = &[
    "USER-PASSWORD-VALUE",
    "CLIENT-SECRET-VALUE",
    "ACCESS-TOKEN-VALUE",
    "REFRESH-TOKEN-VALUE",
    "NEW-REFRESH-VALUE",
];

fn builder(base: &str) -> d365_auth_ropc::UsernamePasswordBuilder {
    UsernamePassword::builder()
        .authority_host(base)
        .tenant("organizations")
        .client_id("app")
        .client_secret("CLIENT-SECRET-VALUE".into())
        .username("ana@contoso.com")
        // Leading space: the builder warns, and the warning must not quote it.
        .password(PASSWORD.into())
        .timeout(Duration::from_secs(5))
}

#[tokio::test]
async fn no_secret_in_logs_debug_or_errors() {
    let mut watch = SecretWatch::start(SECRETS);

    let request = TokenRequest::for_url("https://contoso.crm.dynamics.com").unwrap();

    // Success, refresh with a new refresh token, then a refused refresh falling back to
    // the password, through a cache so its logs are searched too.
    let server =
        Server::managed(
            |request, earlier| match (request.grant_type().as_deref(), earlier) {
                (Some("password"), _) => {
                    Canned::token("ACCESS-TOKEN-VALUE", Some("REFRESH-TOKEN-VALUE"), 0)
                }
                (_, 0) => Canned::token("ACCESS-TOKEN-VALUE", Some("NEW-REFRESH-VALUE"), 0),
                _ => Canned::entra_error(
                    400,
                    "invalid_grant",
                    70008,
                    "The refresh token has expired due to inactivity.",
                ),
            },
        )
        .await;
    let grant_builder = builder(&server.base);
    watch.see_debug(&grant_builder);
    let grant = grant_builder.build().unwrap();
    watch.see_debug(&grant);
    let cache = TokenCache::new(grant.clone());
    for _ in 0..3 {
        let token = cache.get(&request).await.unwrap();
        watch.see_debug(&token);
    }
    watch.see_debug(&cache);
    assert_eq!(server.count("password"), 2);

    // Every failure: Entra refusals, a federated user, a network failure, a bad body.
    let failures = [
        Canned::entra_error(
            400,
            "invalid_grant",
            50126,
            "Error validating credentials due to invalid username or password.",
        ),
        Canned::entra_error(
            400,
            "invalid_grant",
            50076,
            "You must use multi-factor authentication.",
        ),
        Canned::entra_error(
            401,
            "invalid_client",
            7000218,
            "The request body must contain client_secret.",
        ),
        Canned::json(
            200,
            r#"{"token_type":"Bearer","access_token":"ACCESS-TOKEN-VAL"#,
        ),
        Canned::json(502, "<html><title>Bad Gateway</title></html>"),
        Canned::drop_connection(),
    ];
    for failure in failures {
        let server = Server::managed(move |_, _| failure.clone()).await;
        let grant = builder(&server.base).build().unwrap();
        let error = grant.request_token(&request).await.unwrap_err();
        watch.see(&error);
        watch.see_debug(&error);
    }
    let federated = Server::start(|request, _| {
        if request.is_realm() {
            Canned::realm("Federated")
        } else {
            Canned::token("ACCESS-TOKEN-VALUE", Some("REFRESH-TOKEN-VALUE"), 3599)
        }
    })
    .await;
    let error = builder(&federated.base)
        .build()
        .unwrap()
        .request_token(&request)
        .await
        .unwrap_err();
    watch.see(&error);
    watch.see_debug(&error);
    for broken in [
        builder("http://127.0.0.1:1").tenant("common"),
        builder("http://127.0.0.1:1").client_secret(" ".into()),
    ] {
        let error = broken.build().unwrap_err();
        watch.see(&error);
        watch.see_debug(&error);
    }

    let logged = watch.logs();
    assert!(
        logged.contains("begins or ends with whitespace"),
        "the leading-space warning is missing:\n{logged}"
    );
    assert!(logged.contains("refresh token refused"), "{logged}");
    watch.assert_clean_with_logs();
}
