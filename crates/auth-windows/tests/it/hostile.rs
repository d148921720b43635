//! Hostile servers: a challenge too large or garbled, a server that answers every leg with
//! another challenge (an endless 401 loop), and one that never answers — each ends in a
//! bounded error, never a hang or a loop.

use std::time::{Duration, Instant};

use base64::Engine as _;
use d365_auth_core::{ConnectionAuthenticator, SendLimits};
use d365_auth_windows::WindowsSignIn;
use d365_emulator::{Emulator, OnPremises};
use d365_test_support::{Canned, Captured, Server};
use secrecy::SecretString;
use sspi::{
    AuthIdentity, BufferType, ClientRequestFlags, CredentialUse, DataRepresentation, Ntlm,
    SecurityBuffer, Sspi as _, SspiImpl as _, Username,
};

const LIMITS: SendLimits = SendLimits::new(Duration::from_secs(5), 1 << 20);

fn sign_in(base: &str) -> WindowsSignIn {
    WindowsSignIn::builder(format!("{base}/Contoso"))
        .domain("CONTOSO")
        .username("alice")
        .password(SecretString::from("whatever".to_owned()))
        .build()
        .unwrap()
}

fn request(base: &str) -> http::Request<Vec<u8>> {
    http::Request::get(format!("{base}/Contoso/api/data/v9.0/WhoAmI"))
        .body(Vec::new())
        .unwrap()
}

/// A real NTLM CHALLENGE (base64), from the emulator's acceptor.
async fn a_real_challenge() -> String {
    let emulator = Emulator::builder()
        .on_premises(OnPremises::new("Contoso"))
        .start()
        .await
        .unwrap();
    let mut ntlm = Ntlm::new();
    let identity = AuthIdentity {
        username: Username::new("alice", Some("CONTOSO")).unwrap(),
        password: "whatever".to_owned().into(),
    };
    let mut credentials = ntlm
        .acquire_credentials_handle()
        .with_credential_use(CredentialUse::Outbound)
        .with_auth_data(&identity)
        .execute(&mut ntlm)
        .unwrap()
        .credentials_handle;
    let mut output = vec![SecurityBuffer::new(Vec::new(), BufferType::Token)];
    let mut builder = ntlm
        .initialize_security_context()
        .with_credentials_handle(&mut credentials)
        .with_context_requirements(ClientRequestFlags::ALLOCATE_MEMORY)
        .with_target_data_representation(DataRepresentation::Native)
        .with_target_name("HTTP/127.0.0.1")
        .with_output(&mut output);
    ntlm.initialize_security_context_impl(&mut builder)
        .unwrap()
        .resolve_to_result()
        .unwrap();
    let negotiate = base64::engine::general_purpose::STANDARD.encode(&output[0].buffer);
    let answer = reqwest::Client::new()
        .get(format!(
            "{}/api/data/v9.0/WhoAmI",
            emulator.organization_url()
        ))
        .header("Authorization", format!("NTLM {negotiate}"))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 401);
    let challenge = answer.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .strip_prefix("NTLM ")
        .unwrap()
        .to_owned();
    emulator.shutdown().await;
    challenge
}

#[tokio::test]
async fn a_server_that_challenges_forever_gets_a_bounded_error() {
    let challenge = a_real_challenge().await;
    let server = Server::start(move |_: &Captured, _| {
        Canned::json(401, "{}").header("WWW-Authenticate", &format!("NTLM {challenge}"))
    })
    .await;
    let started = Instant::now();
    let error = sign_in(&server.base)
        .send(request(&server.base), LIMITS)
        .await
        .expect_err("no endless loop");
    assert!(
        started.elapsed() < LIMITS.timeout,
        "ended by the handshake bound, not the timeout"
    );
    // One plain request, then at most three handshakes of two legs.
    assert!(
        server.requests().len() <= 7,
        "{} requests",
        server.requests().len()
    );
    assert!(error.to_string().contains("alice"), "{error}");
}

#[tokio::test]
async fn oversized_or_garbled_challenges_are_refused() {
    for challenge in [
        "A".repeat(200_000),
        "!!not base64!!".to_owned(),
        "AAAA".to_owned(),
    ] {
        let server = Server::start(move |request: &Captured, _| {
            if request.header("authorization").is_some() {
                Canned::json(401, "{}").header("WWW-Authenticate", &format!("NTLM {challenge}"))
            } else {
                Canned::json(401, "{}").header("WWW-Authenticate", "NTLM")
            }
        })
        .await;
        let error = sign_in(&server.base)
            .send(request(&server.base), LIMITS)
            .await
            .expect_err("refused");
        assert!(
            error
                .to_string()
                .contains("Windows sign-in of CONTOSO\\alice"),
            "{error}"
        );
    }
}

#[tokio::test]
async fn a_server_that_never_answers_times_out() {
    let server = Server::start(|_: &Captured, _| Canned::hang()).await;
    let limits = SendLimits::new(Duration::from_millis(500), 1 << 20);
    let started = Instant::now();
    let error = sign_in(&server.base)
        .send(request(&server.base), limits)
        .await
        .expect_err("timed out");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(error.kind(), d365_auth_core::ErrorKind::Timeout, "{error}");
}

#[tokio::test]
async fn a_connection_cut_before_the_answer_is_reported_not_repeated() {
    let server = Server::start(|_: &Captured, _| Canned::drop_connection()).await;
    let error = sign_in(&server.base)
        .send(request(&server.base), LIMITS)
        .await
        .expect_err("no answer");
    assert!(
        error.to_string().contains("may have been applied"),
        "{error}"
    );
    assert_eq!(server.requests().len(), 1, "sent once, never repeated");
}
