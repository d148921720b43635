//! The device code grant against the d365 emulator, started in-process on a random
//! loopback port with a one-second polling interval: a person approves (through the
//! emulator's handle or its verification page), declines, lets the code expire, makes the
//! grant slow down, or the caller cancels; refresh tokens spare a second prompt.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use d365_auth_core::{AccessToken, ErrorKind, TokenCache, TokenProvider, TokenRequest};
use d365_auth_device_code::{DeviceCode, DeviceCodeBuilder, DeviceCodeMessage};
use d365_emulator::{DeviceCodeStatus, DeviceCodes, Emulator, ValidatedToken};
use secrecy::ExposeSecret;

const ORG: &str = "https://contoso.crm.dynamics.com";
const ALICE: &str = "alice@contoso.onmicrosoft.com";
const BOB: &str = "bob@contoso.onmicrosoft.com";

fn request() -> TokenRequest {
    TokenRequest::for_url(ORG).unwrap()
}

async fn emulator() -> Emulator {
    Emulator::builder()
        .device_code_interval(Duration::from_secs(1))
        .start()
        .await
        .unwrap()
}

/// The seeded public client, with `on_message` still to set.
fn public(emulator: &Emulator) -> DeviceCodeBuilder {
    DeviceCode::builder()
        .authority_host(emulator.base_url())
        .tenant(emulator.tenant_id())
        .client_id(&emulator.seeded().unwrap().public_app.client_id)
}

/// A callback that counts its calls and runs `then` with the emulator's device codes.
fn counting(
    codes: DeviceCodes,
    then: impl Fn(&DeviceCodes, &DeviceCodeMessage) + Send + Sync + 'static,
) -> (
    Arc<AtomicUsize>,
    impl Fn(&DeviceCodeMessage) + Send + Sync + 'static,
) {
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&calls);
    (calls, move |message: &DeviceCodeMessage| {
        counter.fetch_add(1, Ordering::SeqCst);
        then(&codes, message);
    })
}

fn approve_as(upn: &'static str) -> impl Fn(&DeviceCodes, &DeviceCodeMessage) + Send + Sync {
    move |codes, message| {
        codes.approve(&message.user_code, upn).unwrap();
    }
}

fn validate(emulator: &Emulator, token: &AccessToken) -> ValidatedToken {
    emulator
        .token_validator()
        .validate(token.secret().expose_secret(), ORG)
        .expect("the emulator accepts the token it issued")
}

#[tokio::test]
async fn a_person_approves_and_the_grant_gets_their_token() {
    let emulator = emulator().await;
    let seen = Arc::new(std::sync::Mutex::new(None));
    let record = Arc::clone(&seen);
    let (calls, on_message) = counting(emulator.device_codes(), move |codes, message| {
        *record.lock().unwrap() = Some(message.clone());
        codes.approve(&message.user_code, ALICE).unwrap();
    });
    let grant = public(&emulator).on_message(on_message).build().unwrap();
    let token = grant.request_token(&request()).await.unwrap();

    assert_eq!(calls.load(Ordering::SeqCst), 1);
    let message = seen.lock().unwrap().clone().unwrap();
    assert_eq!(
        message.verification_uri.as_str(),
        format!("{}/devicelogin", emulator.base_url())
    );
    assert_eq!(message.interval, Duration::from_secs(1));
    assert_eq!(message.expires_in, Duration::from_secs(900));
    assert!(message.to_string().contains(&message.user_code));
    let claims = validate(&emulator, &token);
    assert_eq!(claims.user_principal_name(), Some(ALICE));
    assert_eq!(claims.scopes(), ["user_impersonation"]);
    assert!(
        token.refresh_token().is_some(),
        "offline_access brings a refresh token"
    );
    let info = &emulator.device_codes().list()[0];
    assert_eq!(info.status, DeviceCodeStatus::Redeemed);
    assert_eq!(info.polls, 1, "approved before the first poll");
}

#[tokio::test]
async fn a_person_types_the_code_at_the_verification_page() {
    let emulator = emulator().await;
    // bob must use MFA: the password grant fails for him (AADSTS50076); in the browser he
    // signs in.
    let grant = public(&emulator)
        .scope("openid profile")
        .on_message(|message| {
            let page = message.verification_uri.clone();
            let code = message.user_code.clone();
            tokio::spawn(async move {
                let form = url::form_urlencoded::Serializer::new(String::new())
                    .append_pair("user_code", &code)
                    .append_pair("username", BOB)
                    .append_pair("password", "Emulator-Passw0rd!")
                    .append_pair("action", "approve")
                    .finish();
                let answer = reqwest::Client::new()
                    .post(page)
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(form)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(answer.status(), 200);
            });
        })
        .build()
        .unwrap();
    let token = grant.request_token(&request()).await.unwrap();
    assert_eq!(validate(&emulator, &token).user_principal_name(), Some(BOB));
    assert_eq!(
        token.scope(),
        Some("https://contoso.crm.dynamics.com/user_impersonation openid profile offline_access")
    );
}

#[tokio::test]
async fn a_declined_sign_in_is_a_typed_error() {
    let emulator = emulator().await;
    let (_, on_message) = counting(emulator.device_codes(), |codes, message| {
        codes.decline(&message.user_code).unwrap();
    });
    let error = public(&emulator)
        .on_message(on_message)
        .build()
        .unwrap()
        .request_token(&request())
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::AuthorizationDeclined, "{error}");
    assert!(error.to_string().contains("declined"), "{error}");
    assert!(error.hint().unwrap().contains("start the sign-in again"));
}

#[tokio::test]
async fn an_expired_code_says_to_start_again() {
    // The server says so first: the code expires while the grant waits.
    let emulator = emulator().await;
    let (_, on_message) = counting(emulator.device_codes(), |codes, message| {
        codes.expire(&message.user_code).unwrap();
    });
    let error = public(&emulator)
        .on_message(on_message)
        .build()
        .unwrap()
        .request_token(&request())
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::CodeExpired, "{error}");
    assert_eq!(error.aadsts(), Some(70020));
    assert!(
        error.to_string().contains("start the sign-in again"),
        "{error}"
    );

    // The grant's own clock: nobody approves within the code's two seconds.
    let short = Emulator::builder()
        .device_code_interval(Duration::from_secs(1))
        .device_code_lifetime(Duration::from_secs(2))
        .start()
        .await
        .unwrap();
    let started = Instant::now();
    let error = public(&short)
        .on_message(|_| {})
        .build()
        .unwrap()
        .request_token(&request())
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::CodeExpired, "{error}");
    assert_eq!(error.aadsts(), None, "no poll after the deadline: {error}");
    assert!(error.to_string().contains("expired after 2 s"), "{error}");
    assert!(started.elapsed() >= Duration::from_secs(2));
    assert_eq!(
        short.device_codes().list()[0].polls,
        1,
        "one poll, at one second"
    );
}

#[tokio::test]
async fn slow_down_adds_five_seconds_to_the_interval() {
    let emulator = emulator().await;
    let (_, on_message) = counting(emulator.device_codes(), |codes, message| {
        // The first poll is told to slow down; the person approves meanwhile.
        codes.slow_down(&message.user_code).unwrap();
        codes.approve(&message.user_code, ALICE).unwrap();
    });
    let grant = public(&emulator).on_message(on_message).build().unwrap();
    let token = grant.request_token(&request()).await.unwrap();
    validate(&emulator, &token);
    // The emulator answers `slow_down` to any poll sooner than the grown interval (6 s):
    // one slow_down in two polls means the grant waited.
    let info = &emulator.device_codes().list()[0];
    assert_eq!(info.status, DeviceCodeStatus::Redeemed);
    assert_eq!((info.polls, info.slow_downs), (2, 1), "{info:?}");
    assert_eq!(info.interval, Duration::from_secs(6));
}

#[tokio::test]
async fn cancelling_stops_the_sign_in_and_its_polls() {
    let emulator = emulator().await;
    let codes = emulator.device_codes();

    // From inside the callback: nothing is polled at all.
    let grant = public(&emulator).on_message(|_| {}).build().unwrap();
    let handle = grant.cancel_handle();
    let grant = public(&emulator)
        .cancel_handle(handle.clone())
        .on_message(move |_| handle.cancel())
        .build()
        .unwrap();
    let error = grant.request_token(&request()).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Cancelled, "{error}");
    assert!(error.to_string().contains("cancelled"), "{error}");
    assert_eq!(codes.list()[0].polls, 0);

    // While it polls: it ends at once, and no poll follows.
    let grant = public(&emulator).on_message(|_| {}).build().unwrap();
    let cancel = grant.cancel_handle();
    let waiting = tokio::spawn({
        let grant = grant.clone();
        async move { grant.request_token(&request()).await }
    });
    wait_for_polls(&codes, 1, 1).await;
    cancel.cancel();
    let error = waiting.await.unwrap().unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Cancelled);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(codes.list()[1].polls, 1, "no poll after the cancellation");
    assert_eq!(codes.list()[1].status, DeviceCodeStatus::Pending);

    // The handle ends sign-ins in progress only: the grant can sign in again.
    let approving = public(&emulator)
        .cancel_handle(cancel.clone())
        .on_message(approve_as_now(emulator.device_codes()))
        .build()
        .unwrap();
    assert!(approving.request_token(&request()).await.is_ok());
}

fn approve_as_now(codes: DeviceCodes) -> impl Fn(&DeviceCodeMessage) + Send + Sync + 'static {
    let approve = approve_as(ALICE);
    move |message| approve(&codes, message)
}

/// Waits until the `index`th device code has been polled `polls` times.
async fn wait_for_polls(codes: &DeviceCodes, index: usize, polls: u32) {
    for _ in 0..100 {
        if codes
            .list()
            .get(index)
            .is_some_and(|info| info.polls >= polls)
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the grant did not poll: {:?}", codes.list());
}

#[tokio::test]
async fn dropping_the_future_stops_the_polls() {
    let emulator = emulator().await;
    let codes = emulator.device_codes();
    let grant = public(&emulator).on_message(|_| {}).build().unwrap();
    let waiting = tokio::spawn(async move { grant.request_token(&request()).await });
    wait_for_polls(&codes, 0, 1).await;
    waiting.abort();
    assert!(waiting.await.unwrap_err().is_cancelled());
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(codes.list()[0].polls, 1, "no poll after the drop");
}

#[tokio::test]
async fn renewals_use_the_refresh_token_without_a_new_prompt() {
    let emulator = emulator().await;
    let (calls, on_message) = counting(emulator.device_codes(), approve_as(ALICE));
    let grant = public(&emulator).on_message(on_message).build().unwrap();
    let mut token = grant.request_token(&request()).await.unwrap();
    for _ in 0..3 {
        let next = grant.renew_token(&request(), &token).await.unwrap();
        assert!(!next.same_token(&token));
        assert_eq!(
            validate(&emulator, &next).user_principal_name(),
            Some(ALICE)
        );
        token = next;
    }
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "one prompt for four tokens"
    );

    // A refused refresh token, and only that, brings a new prompt.
    let forged = AccessToken::builder(
        token.secret().clone(),
        token.expires_on(),
        token.resource().clone(),
    )
    .refresh_token("not-a-refresh-token".into())
    .build()
    .unwrap();
    let renewed = grant.renew_token(&request(), &forged).await.unwrap();
    validate(&emulator, &renewed);
    assert_eq!(calls.load(Ordering::SeqCst), 2);

    // Through a cache, with tokens that live one second: still one prompt.
    let short_lived = Emulator::builder()
        .device_code_interval(Duration::from_secs(1))
        .token_lifetime(Duration::from_secs(1))
        .start()
        .await
        .unwrap();
    let (calls, on_message) = counting(short_lived.device_codes(), approve_as(ALICE));
    let cache = TokenCache::new(public(&short_lived).on_message(on_message).build().unwrap());
    let first = cache.get(&request()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let second = cache.get(&request()).await.unwrap();
    assert!(!first.same_token(&second), "renewed");
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_confidential_client_and_the_organizations_tenant() {
    let emulator = emulator().await;
    let app = emulator.seeded().unwrap().confidential_app.clone();
    let (_, on_message) = counting(emulator.device_codes(), approve_as(ALICE));
    let grant = public(&emulator)
        .tenant("organizations")
        .client_id(&app.client_id)
        .client_secret(app.secret.clone())
        .on_message(on_message)
        .build()
        .unwrap();
    let token = grant.request_token(&request()).await.unwrap();
    let claims = validate(&emulator, &token);
    assert_eq!(claims.client_id(), Some(app.client_id.as_str()));
    assert_eq!(
        claims.claims()["appidacr"],
        "1",
        "authenticated with its secret"
    );
    assert_eq!(
        emulator.device_codes().list()[0].scope,
        format!("{ORG}/.default offline_access")
    );

    // Without its secret, the redemption fails as every grant of a confidential app does.
    let (_, on_message) = counting(emulator.device_codes(), approve_as(ALICE));
    let error = public(&emulator)
        .client_id(&app.client_id)
        .on_message(on_message)
        .build()
        .unwrap()
        .request_token(&request())
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::ClientCredentialMissing, "{error}");

    // An unknown application is refused by the device authorization endpoint.
    let error = public(&emulator)
        .client_id("00000000-0000-0000-0000-00000000dead")
        .on_message(|_| panic!("no code for an unknown app"))
        .build()
        .unwrap()
        .request_token(&request())
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::ClientNotFound, "{error}");
}
