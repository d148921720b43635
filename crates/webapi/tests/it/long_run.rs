//! The long run of issue 10: tokens that live five seconds, a workload of reads and writes
//! that lasts a minute, and not one `401` (nor any other error) reaching the caller. The
//! token cache renews early (half-way through a short lifetime), and a token that expires
//! in flight is refreshed once by the pipeline's 401 path; this test is the proof that
//! together they cover every call.
//!
//! It also proves it is not vacuous: the emulator really refuses an expired token, the
//! token really was renewed many times, and the workload really ran.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use d365_auth_client_credentials::ClientCredentials;
use d365_auth_core::{AccessToken, AuthError, Grant, TokenProvider, TokenRequest, async_trait};
use d365_emulator::{Emulator, ServiceLimits};
use d365_webapi::{Client, Guid, Query, RequestOptions};
use secrecy::ExposeSecret as _;
use serde_json::{Value, json};

const TOKEN_LIFETIME: Duration = Duration::from_secs(5);
const WORKLOAD: Duration = Duration::from_secs(60);
const WORKERS: usize = 4;
/// Between two operations of a worker: enough calls to cross every renewal, few enough
/// to leave the machine to the other tests.
const PACE: Duration = Duration::from_millis(20);

/// Client credentials, counting the token requests that reach the identity provider.
#[derive(Debug)]
struct Counted {
    inner: ClientCredentials,
    requests: Arc<AtomicUsize>,
}

#[async_trait]
impl TokenProvider for Counted {
    async fn request_token(&self, request: &TokenRequest) -> Result<AccessToken, AuthError> {
        self.requests.fetch_add(1, Ordering::SeqCst);
        self.inner.request_token(request).await
    }

    fn grant(&self) -> Grant {
        self.inner.grant()
    }

    fn cache_key(&self) -> String {
        self.inner.cache_key()
    }
}

/// One worker's round: create, read back, update, query; every call must succeed.
async fn round(client: &Client, worker: usize, round: usize) {
    let id = Guid::new_random();
    let name = format!("long run {worker}-{round}");
    client
        .create_with_id(
            "accounts",
            id,
            &json!({"name": name}),
            &RequestOptions::new(),
        )
        .await
        .unwrap_or_else(|error| panic!("create {name}: {error}"));
    let record: Value = client
        .retrieve("accounts", id, &RequestOptions::new().select(["name"]))
        .await
        .unwrap_or_else(|error| panic!("retrieve {name}: {error}"));
    assert_eq!(record["name"], name);
    client
        .update(
            "accounts",
            id,
            &json!({"revenue": round}),
            &RequestOptions::new(),
        )
        .await
        .unwrap_or_else(|error| panic!("update {name}: {error}"));
    client
        .query_page::<Value>(&Query::new("accounts").select(["name"]).top(5))
        .await
        .unwrap_or_else(|error| panic!("query after {name}: {error}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_minute_of_work_on_five_second_tokens_never_sees_a_401() {
    let emulator = Emulator::builder()
        .token_lifetime(TOKEN_LIFETIME)
        // Throttling is not this test's subject.
        .service_limits(
            ServiceLimits::default()
                .requests(u32::MAX, Duration::from_secs(1))
                .execution_time(Duration::from_secs(3600)),
        )
        .start()
        .await
        .unwrap();
    let requests = Arc::new(AtomicUsize::new(0));
    let grant = Counted {
        inner: crate::support::admin_grant(&emulator),
        requests: Arc::clone(&requests),
    };
    let client = Client::builder(emulator.base_url(), grant).build().unwrap();
    let first = client
        .token_cache()
        .get(&TokenRequest::new(client.org().clone()))
        .await
        .unwrap();
    assert!(
        first.remaining_at(std::time::SystemTime::now()) <= TOKEN_LIFETIME,
        "the emulator issues {TOKEN_LIFETIME:?} tokens"
    );

    let started = Instant::now();
    let workers: Vec<_> = (0..WORKERS)
        .map(|worker| {
            let client = client.clone();
            tokio::spawn(async move {
                let mut rounds = 0;
                while started.elapsed() < WORKLOAD {
                    round(&client, worker, rounds).await;
                    rounds += 1;
                    tokio::time::sleep(PACE).await;
                }
                rounds
            })
        })
        .collect();
    let mut rounds = 0;
    for worker in workers {
        rounds += worker.await.expect("a worker panicked: a call failed");
    }

    // The first token expired long ago, and the emulator refuses it: the client's calls
    // succeeded because it renewed, not because expiry was not checked.
    let refused = reqwest::Client::new()
        .get(format!("{}WhoAmI", emulator.web_api_url()))
        .bearer_auth(first.secret().expose_secret())
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401, "an expired token is refused");

    let renewals = requests.load(Ordering::SeqCst);
    assert!(
        renewals >= 10,
        "a minute on {TOKEN_LIFETIME:?} tokens takes many tokens, got {renewals}"
    );
    assert!(
        rounds >= 100,
        "the workload ran ({rounds} rounds of four calls)"
    );
    emulator.shutdown().await;
}
