//! What the device code grant puts on the wire and how it reads each answer, against the
//! canned loopback server auth-core's tests share: the device authorization form, the
//! polls, Entra's error bodies, a missing `interval`, unusable answers, and a dropped
//! sign-in. (`slow_down` is tested against the emulator, which checks the interval kept.)

use std::sync::{Arc, Mutex};
use std::time::Duration;

use d365_auth_core::grant::ClientKind;
use d365_auth_core::{ErrorKind, Grant, TokenProvider, TokenRequest};
use d365_auth_device_code::{CancelHandle, DeviceCode, DeviceCodeBuilder, DeviceCodeMessage};
use d365_test_support::{Canned, Captured, Server};
use secrecy::ExposeSecret;

const ORG: &str = "https://contoso.crm.dynamics.com";
const TENANT: &str = "contoso.onmicrosoft.com";
const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:device_code";

fn request() -> TokenRequest {
    TokenRequest::for_url(ORG).unwrap()
}

fn authorization(interval: Option<u64>) -> Canned {
    let interval = interval
        .map(|seconds| format!(r#","interval":{seconds}"#))
        .unwrap_or_default();
    Canned::json(
        200,
        format!(
            r#"{{"user_code":"BPPVYQZMA","device_code":"DEVICE-CODE-VALUE","verification_uri":"https://microsoft.com/devicelogin","expires_in":900{interval},"message":"To sign in, use a web browser to open the page https://microsoft.com/devicelogin and enter the code BPPVYQZMA to authenticate."}}"#
        ),
    )
}

fn pending() -> Canned {
    Canned::entra_error(
        400,
        "authorization_pending",
        70016,
        "OAuth 2.0 device flow error. Authorization is pending. Continue polling.",
    )
}

fn is_device_authorization(request: &Captured) -> bool {
    request.path().ends_with("/oauth2/v2.0/devicecode")
}

/// A server that hands out a code with `interval` seconds, then answers the polls in
/// order (repeating the last answer).
async fn server(interval: Option<u64>, polls: Vec<Canned>) -> Server {
    Server::start(move |request, earlier| {
        if is_device_authorization(request) {
            authorization(interval)
        } else if request.grant_type().as_deref() == Some(GRANT_TYPE) {
            polls[earlier.min(polls.len() - 1)].clone()
        } else {
            Canned::token("ACCESS-R", Some("REFRESH-R"), 3599)
        }
    })
    .await
}

fn grant(server: &Server) -> DeviceCodeBuilder {
    DeviceCode::builder()
        .authority_host(&server.base)
        .tenant(TENANT)
        .client_id("public-app")
        .timeout(Duration::from_secs(5))
}

fn names(request: &Captured) -> Vec<String> {
    let mut names: Vec<String> = request.form().into_iter().map(|(name, _)| name).collect();
    names.sort();
    names
}

#[tokio::test]
async fn a_public_client_asks_for_a_code_then_polls_with_it() {
    let server = server(
        Some(1),
        vec![
            pending(),
            Canned::token("ACCESS-TOKEN", Some("REFRESH-TOKEN"), 3599),
        ],
    )
    .await;
    let shown = Arc::new(Mutex::new(Vec::<DeviceCodeMessage>::new()));
    let record = Arc::clone(&shown);
    let grant = grant(&server)
        .scope("openid")
        .on_message(move |message| record.lock().unwrap().push(message.clone()))
        .build()
        .unwrap();
    assert_eq!(
        grant.grant(),
        Grant::new("urn:ietf:params:oauth:grant-type:device_code")
    );
    assert_eq!(grant.client_kind(), ClientKind::Public);
    let token = grant.request_token(&request()).await.unwrap();

    let requests = server.requests();
    assert_eq!(requests.len(), 3, "{requests:#?}");
    let asked = &requests[0];
    assert_eq!(asked.method, "POST");
    assert_eq!(asked.path(), format!("/{TENANT}/oauth2/v2.0/devicecode"));
    assert_eq!(names(asked), ["client_id", "scope"]);
    assert_eq!(asked.field("client_id").as_deref(), Some("public-app"));
    assert_eq!(
        asked.field("scope").as_deref(),
        Some("https://contoso.crm.dynamics.com/user_impersonation offline_access openid")
    );
    for poll in &requests[1..] {
        assert_eq!(poll.path(), format!("/{TENANT}/oauth2/v2.0/token"));
        assert_eq!(names(poll), ["client_id", "device_code", "grant_type"]);
        assert_eq!(poll.grant_type().as_deref(), Some(GRANT_TYPE));
        assert_eq!(
            poll.field("device_code").as_deref(),
            Some("DEVICE-CODE-VALUE")
        );
        assert!(poll.header("authorization").is_none());
    }

    let shown = shown.lock().unwrap();
    assert_eq!(shown.len(), 1);
    assert_eq!(shown[0].user_code, "BPPVYQZMA");
    assert_eq!(shown[0].interval, Duration::from_secs(1));
    assert_eq!(token.secret().expose_secret(), "ACCESS-TOKEN");
    assert_eq!(
        token.refresh_token().map(ExposeSecret::expose_secret),
        Some("REFRESH-TOKEN")
    );
}

#[tokio::test]
async fn a_confidential_client_sends_its_secret_when_it_polls_and_refreshes() {
    let server = server(
        Some(1),
        vec![Canned::token("ACCESS-TOKEN", Some("REFRESH-TOKEN"), 3599)],
    )
    .await;
    let grant = grant(&server)
        .client_id("confidential-app")
        .client_secret("APP-SECRET".into())
        .on_message(|_| {})
        .build()
        .unwrap();
    assert_eq!(grant.client_kind(), ClientKind::Confidential);
    let token = grant.request_token(&request()).await.unwrap();
    let renewed = grant.renew_token(&request(), &token).await.unwrap();
    assert_eq!(renewed.secret().expose_secret(), "ACCESS-R");

    let requests = server.requests();
    let asked = &requests[0];
    assert_eq!(names(asked), ["client_id", "scope"], "no secret for a code");
    assert_eq!(
        asked.field("scope").as_deref(),
        Some("https://contoso.crm.dynamics.com/.default offline_access")
    );
    let poll = &requests[1];
    assert_eq!(
        names(poll),
        ["client_id", "client_secret", "device_code", "grant_type"]
    );
    assert_eq!(poll.field("client_secret").as_deref(), Some("APP-SECRET"));
    let refresh = &requests[2];
    assert_eq!(refresh.grant_type().as_deref(), Some("refresh_token"));
    assert_eq!(
        refresh.field("refresh_token").as_deref(),
        Some("REFRESH-TOKEN")
    );
    assert_eq!(
        refresh.field("client_secret").as_deref(),
        Some("APP-SECRET")
    );
    assert_eq!(
        refresh.field("scope").as_deref(),
        Some("https://contoso.crm.dynamics.com/.default offline_access")
    );
}

#[tokio::test]
async fn without_an_interval_the_grant_waits_five_seconds() {
    let server = server(None, vec![pending()]).await;
    let shown = Arc::new(Mutex::new(None));
    let record = Arc::clone(&shown);
    let cancel = CancelHandle::new();
    let grant = grant_with(&server, cancel.clone(), move |message| {
        *record.lock().unwrap() = Some(message.interval);
        // Seen the interval: stop here rather than wait for it.
        cancel.cancel();
    });
    let error = grant.request_token(&request()).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Cancelled);
    assert_eq!(*shown.lock().unwrap(), Some(Duration::from_secs(5)));
    assert_eq!(server.requests().len(), 1, "cancelled before any poll");
}

fn grant_with(
    server: &Server,
    cancel: CancelHandle,
    on_message: impl Fn(&DeviceCodeMessage) + Send + Sync + 'static,
) -> DeviceCode {
    grant(server)
        .cancel_handle(cancel)
        .on_message(on_message)
        .build()
        .unwrap()
}

#[tokio::test]
async fn entra_refusals_end_the_sign_in_with_their_kind() {
    let cases = [
        (
            Canned::entra_error(
                400,
                "authorization_declined",
                70000,
                "The end user denied the authorization request.",
            ),
            ErrorKind::AuthorizationDeclined,
        ),
        (
            Canned::entra_error(
                400,
                "expired_token",
                70020,
                "The provided value for the input parameter 'device_code' is not valid. This device code has expired.",
            ),
            ErrorKind::CodeExpired,
        ),
        (
            Canned::entra_error(
                401,
                "invalid_client",
                7000218,
                "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
            ),
            ErrorKind::ClientCredentialMissing,
        ),
        (
            Canned::json(400, r#"{"error":"bad_verification_code"}"#),
            ErrorKind::InvalidGrant,
        ),
    ];
    // Each case waits one interval before its poll: run them side by side.
    let mut running = Vec::new();
    for (answer, kind) in cases {
        running.push(tokio::spawn(async move {
            let server = server(Some(1), vec![answer]).await;
            let error = grant(&server)
                .on_message(|_| {})
                .build()
                .unwrap()
                .request_token(&request())
                .await
                .unwrap_err();
            assert_eq!(error.kind(), kind, "{error}");
            assert_eq!(
                server.requests().len(),
                2,
                "one poll, then the answer ends it"
            );
        }));
    }
    for case in running {
        case.await.unwrap();
    }
}

#[tokio::test]
async fn the_device_authorization_endpoint_refuses_or_answers_nonsense() {
    for (answer, kind, expected) in [
        (
            Canned::entra_error(
                400,
                "unauthorized_client",
                700016,
                "Application with identifier 'public-app' was not found in the directory 'contoso.onmicrosoft.com'.",
            ),
            ErrorKind::ClientNotFound,
            "AADSTS700016",
        ),
        (
            Canned::json(
                200,
                r#"{"user_code":"BPPVYQZMA","device_code":"DEVICE-CODE-VALUE","expires_in":900}"#,
            ),
            ErrorKind::UnexpectedResponse,
            "without a verification_uri",
        ),
        (
            Canned::json(200, r#"{"device_code":"DEVICE-CODE-VAL"#),
            ErrorKind::UnexpectedResponse,
            "truncated",
        ),
        (
            Canned::with_type(404, "text/html", "<html><title>Not Found</title></html>"),
            ErrorKind::UnexpectedResponse,
            "Not Found",
        ),
    ] {
        let server = Server::start(move |_, _| answer.clone()).await;
        let error = grant(&server)
            .on_message(|_| panic!("no message without a code"))
            .build()
            .unwrap()
            .request_token(&request())
            .await
            .unwrap_err();
        assert_eq!(error.kind(), kind, "{error}");
        let text = error.to_string();
        assert!(text.contains(expected), "{text}");
        assert!(!text.contains("DEVICE-CODE"), "{text}");
        assert_eq!(server.requests().len(), 1);
    }
}

#[tokio::test]
async fn a_dropped_sign_in_polls_no_more() {
    let server = server(Some(1), vec![pending()]).await;
    let grant = grant(&server).on_message(|_| {}).build().unwrap();
    let sign_in = tokio::spawn(async move { grant.request_token(&request()).await });
    while server.count(GRANT_TYPE) == 0 {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    sign_in.abort();
    let polls = server.count(GRANT_TYPE);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(server.count(GRANT_TYPE), polls);
}
