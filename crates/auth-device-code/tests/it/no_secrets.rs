//! No device code, client secret, access token or refresh token reaches a log line (at
//! TRACE level), the `Debug` of the builder, the grant, the message or a token, or an error
//! message: every path of the grant runs against answers that succeed and fail, and
//! everything observable is searched for each secret.

use std::time::Duration;

use d365_auth_core::{TokenCache, TokenProvider, TokenRequest};
use d365_auth_device_code::{DeviceCode, DeviceCodeBuilder};
use d365_test_support::{Canned, SecretWatch, Server};

const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:device_code";
const SECRETS: &[&str] = &[
    "DEVICE-CODE-VALUE",
    "CLIENT-SECRET-VALUE",
    "ACCESS-TOKEN-VALUE",
    "REFRESH-TOKEN-VALUE",
    "NEW-REFRESH-VALUE",
];

fn authorization() -> Canned {
    Canned::json(
        200,
        r#"{"user_code":"BPPVYQZMA","device_code":"DEVICE-CODE-VALUE","verification_uri":"https://microsoft.com/devicelogin","expires_in":900,"interval":1,"message":"To sign in, use a web browser to open the page https://microsoft.com/devicelogin and enter the code BPPVYQZMA to authenticate."}"#,
    )
}

fn builder(base: &str) -> DeviceCodeBuilder {
    DeviceCode::builder()
        .authority_host(base)
        .tenant("organizations")
        .client_id("app")
        .client_secret("CLIENT-SECRET-VALUE".into())
        .timeout(Duration::from_secs(5))
}

/// A server that issues the device code, then answers polls with `poll`.
async fn polled_with(poll: Canned) -> Server {
    Server::start(move |request, _| {
        if request.path().ends_with("/devicecode") {
            authorization()
        } else {
            poll.clone()
        }
    })
    .await
}

#[tokio::test]
async fn no_secret_in_logs_debug_or_errors() {
    let mut watch = SecretWatch::start(SECRETS);

    let request = TokenRequest::for_url("https://contoso.crm.dynamics.com").unwrap();
    let messages = std::sync::Arc::new(std::sync::Mutex::new(String::new()));

    // Pending, then a token; a renewal with a new refresh token; a refused refresh token
    // leading to a new sign-in — through a cache, so its logs are searched too.
    let server = Server::start(|request, earlier| {
        if request.path().ends_with("/devicecode") {
            return authorization();
        }
        match (request.grant_type().as_deref(), earlier) {
            (Some(GRANT_TYPE), 0) => Canned::entra_error(
                400,
                "authorization_pending",
                70016,
                "Authorization is pending.",
            ),
            (Some(GRANT_TYPE), _) => {
                Canned::token("ACCESS-TOKEN-VALUE", Some("REFRESH-TOKEN-VALUE"), 0)
            }
            (_, 0) => Canned::token("ACCESS-TOKEN-VALUE", Some("NEW-REFRESH-VALUE"), 0),
            _ => Canned::entra_error(
                400,
                "invalid_grant",
                70008,
                "The refresh token has expired due to inactivity.",
            ),
        }
    })
    .await;
    let record = std::sync::Arc::clone(&messages);
    let grant_builder = builder(&server.base).on_message(move |message| {
        record
            .lock()
            .unwrap()
            .push_str(&format!("{message}\n{message:?}\n"));
    });
    watch.see_debug(&grant_builder);
    let grant = grant_builder.build().unwrap();
    watch.see_debug(&grant);
    let cache = TokenCache::new(grant.clone());
    for _ in 0..3 {
        let token = cache.get(&request).await.unwrap();
        watch.see_debug(&token);
    }
    watch.see_debug(&cache);
    assert_eq!(server.count("refresh_token"), 2);
    assert_eq!(
        server.count(GRANT_TYPE),
        3,
        "two sign-ins, the first with a pending poll"
    );
    watch.see(messages.lock().unwrap().as_str());

    // Every failure: refusals while polling, a device authorization endpoint that
    // refuses or answers a broken body holding the device code, a network failure.
    // Each waits one interval before its poll: run them side by side (on this thread, so
    // the log capture sees them).
    let mut failures = Vec::new();
    for poll in [
        Canned::entra_error(400, "authorization_declined", 70000, "Declined."),
        Canned::entra_error(400, "expired_token", 70020, "This device code has expired."),
        Canned::entra_error(
            401,
            "invalid_client",
            7000215,
            "Invalid client secret provided.",
        ),
        Canned::json(
            200,
            r#"{"token_type":"Bearer","access_token":"ACCESS-TOKEN-VAL"#,
        ),
        Canned::json(502, "<html><title>Bad Gateway</title></html>"),
    ] {
        let request = request.clone();
        failures.push(tokio::spawn(async move {
            let server = polled_with(poll).await;
            let error = builder(&server.base)
                .on_message(|_| {})
                .build()
                .unwrap()
                .request_token(&request)
                .await
                .unwrap_err();
            format!("{error}\n{error:?}\n")
        }));
    }
    for failure in failures {
        watch.see(failure.await.unwrap());
    }
    for answer in [
        Canned::json(
            200,
            r#"{"user_code":"A","device_code":"DEVICE-CODE-VALUE","verification_uri":"not a url"}"#,
        ),
        Canned::json(200, r#"{"device_code":"DEVICE-CODE-VALUE","user_code":"#),
        Canned::drop_connection(),
    ] {
        let server = Server::start(move |_, _| answer.clone()).await;
        let error = builder(&server.base)
            .on_message(|_| {})
            .build()
            .unwrap()
            .request_token(&request)
            .await
            .unwrap_err();
        watch.see(&error);
        watch.see_debug(&error);
    }
    let broken = builder("http://127.0.0.1:1")
        .client_secret(" ".into())
        .on_message(|_| {})
        .build()
        .unwrap_err();
    watch.see(&broken);
    watch.see_debug(&broken);

    let logged = watch.logs();
    assert!(logged.contains("device code issued"), "{logged}");
    assert!(logged.contains("refresh token refused"), "{logged}");
    assert!(
        logged.contains("token_request"),
        "the polls are traced: {logged}"
    );
    watch.assert_clean_with_logs();
}
