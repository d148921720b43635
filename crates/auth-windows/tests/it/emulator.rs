//! `WindowsSignIn` against `d365 emulator --on-premises`: the right password signs in and
//! later requests reuse the signed-in connection; a wrong password, an unknown account or
//! another domain get a typed error that says what to check; the password appears in no
//! `Debug`, error or log line.

use std::sync::Arc;
use std::time::Duration;

use d365_auth_core::{ConnectionAuthenticator, ErrorKind, SendLimits};
use d365_auth_windows::WindowsSignIn;
use d365_emulator::{Emulator, OnPremises};
use d365_test_support::SecretWatch;
use secrecy::{ExposeSecret as _, SecretString};

const LIMITS: SendLimits = SendLimits::new(Duration::from_secs(20), 1 << 20);

async fn on_premises() -> Emulator {
    Emulator::builder()
        .on_premises(OnPremises::new("Contoso"))
        .start()
        .await
        .expect("started")
}

fn who_am_i(emulator: &Emulator) -> http::Request<Vec<u8>> {
    http::Request::get(format!(
        "{}/api/data/v9.0/WhoAmI",
        emulator.organization_url()
    ))
    .header("Accept", "application/json")
    .body(Vec::new())
    .unwrap()
}

fn sign_in(emulator: &Emulator, user: &str, password: &str) -> WindowsSignIn {
    WindowsSignIn::builder(emulator.organization_url())
        .domain("CONTOSO")
        .username(user)
        .password(SecretString::from(password.to_owned()))
        .build()
        .unwrap()
}

#[tokio::test]
async fn the_right_password_signs_in_for_every_request() {
    let emulator = on_premises().await;
    let password = emulator
        .seeded()
        .unwrap()
        .user
        .password
        .expose_secret()
        .to_owned();
    let mut watch = SecretWatch::start(&[&password]);
    for user in ["alice", r"CONTOSO\alice"] {
        let windows = sign_in(&emulator, user, &password);
        watch.see_debug(&windows);
        for _ in 0..3 {
            let answer = windows.send(who_am_i(&emulator), LIMITS).await.unwrap();
            assert_eq!(
                answer.status(),
                200,
                "{}",
                String::from_utf8_lossy(answer.body())
            );
            let me: serde_json::Value = serde_json::from_slice(answer.body()).unwrap();
            assert_eq!(me["UserId"], "d3650000-5050-4000-8000-000000000003");
        }
        assert_eq!(windows.identity(), r"CONTOSO\alice");
        assert_eq!(windows.scheme(), "NTLM");
    }
    watch.assert_clean_with_logs();
    emulator.shutdown().await;
}

#[tokio::test]
async fn a_refused_account_is_a_typed_error_that_says_what_to_check() {
    let emulator = on_premises().await;
    let password = emulator
        .seeded()
        .unwrap()
        .user
        .password
        .expose_secret()
        .to_owned();
    let mut watch = SecretWatch::start(&["not-her-password", &password]);
    for (user, attempt) in [
        ("alice", "not-her-password"),
        ("mallory", password.as_str()),
        (r"FABRIKAM\alice", password.as_str()),
    ] {
        let windows = sign_in(&emulator, user, attempt);
        let outcome = windows.send(who_am_i(&emulator), LIMITS).await;
        watch.see_outcome(&outcome);
        let error = outcome.expect_err("refused");
        assert_eq!(error.kind(), ErrorKind::Credential, "{error}");
        let shown = error.to_string();
        assert!(shown.contains("refused the Windows sign-in"), "{shown}");
        assert!(
            shown.contains("check the password and the domain"),
            "{shown}"
        );
    }
    watch.assert_clean_with_logs();
    emulator.shutdown().await;
}

#[tokio::test]
async fn credentials_go_to_the_organization_only() {
    let emulator = on_premises().await;
    let windows = sign_in(&emulator, "alice", "irrelevant");
    let foreign = http::Request::get("http://127.0.0.2:9/Contoso/api/data/v9.0/WhoAmI")
        .body(Vec::new())
        .unwrap();
    let error = windows
        .send(foreign, LIMITS)
        .await
        .expect_err("refused before sending");
    assert!(
        error.to_string().contains("refuses to send credentials"),
        "{error}"
    );
    emulator.shutdown().await;
}

#[tokio::test]
async fn the_web_api_client_signs_in_with_it() {
    let emulator = on_premises().await;
    let password = emulator
        .seeded()
        .unwrap()
        .user
        .password
        .expose_secret()
        .to_owned();
    let windows: Arc<dyn ConnectionAuthenticator> =
        Arc::new(sign_in(&emulator, "alice", &password));
    // As d365-webapi drives it: several requests in parallel, each on a connection of its own.
    let mut requests = tokio::task::JoinSet::new();
    for _ in 0..6 {
        let windows = Arc::clone(&windows);
        let request = who_am_i(&emulator);
        requests.spawn(async move { windows.send(request, LIMITS).await });
    }
    for answer in requests.join_all().await {
        assert_eq!(answer.unwrap().status(), 200);
    }
    emulator.shutdown().await;
}

#[test]
fn bad_settings_are_refused_with_the_fix() {
    let missing = WindowsSignIn::builder("https://crm.contoso.local/Contoso")
        .password(SecretString::from("x".to_owned()))
        .build()
        .unwrap_err();
    assert!(
        missing
            .to_string()
            .contains("Kerberos ticket is not supported"),
        "{missing}"
    );
    let plain = WindowsSignIn::builder("http://crm.contoso.local/Contoso")
        .username("alice")
        .password(SecretString::from("x".to_owned()))
        .build()
        .unwrap_err();
    assert!(plain.to_string().contains("plain http"), "{plain}");
    let odd = WindowsSignIn::builder("https://crm.contoso.local/Contoso")
        .username(r"CONTOSO\")
        .password(SecretString::from("x".to_owned()))
        .build()
        .unwrap_err();
    assert!(odd.to_string().contains("not a Windows user name"), "{odd}");
}
