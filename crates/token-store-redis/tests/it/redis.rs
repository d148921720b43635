//! `RedisStore` against a real `redis-server` started on a random loopback port:
//! caches in two tasks and in three processes share one token; keys have the documented
//! layout and a TTL that follows the token; encryption round-trips and a wrong key is a
//! miss; Redis stopped, refusing or silent never fails a token request; the store
//! reconnects when Redis is back; nothing secret reaches `Debug` or the logs.
//!
//! The multi-process test runs this test binary again as a child, with
//! `D365_REDIS_STORE_CHILD` selecting what the child does (see [`child_process_entry`]).

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use crate::redis_server::{self, Counting, RedisServer};
use d365_auth_core::store::TokenStore;
use d365_auth_core::{AccessToken, Resource, TokenCache, TokenProvider, TokenRequest};
use d365_test_support::{LogCapture, SecretWatch};
use d365_token_store_redis::{EncryptionKey, RedisStore};
use secrecy::ExposeSecret;

const CHILD_VAR: &str = "D365_REDIS_STORE_CHILD";
const ORG: &str = "https://contoso.crm.dynamics.com";
/// Short timeouts so that failure tests are quick; generous bounds in the assertions.
const TIMEOUT: Duration = Duration::from_millis(200);
/// Far above TIMEOUT, far below what an unbounded wait would take.
const FAST: Duration = Duration::from_secs(5);

fn request() -> TokenRequest {
    TokenRequest::for_url(ORG).unwrap()
}

fn store(url: &str) -> RedisStore {
    RedisStore::builder(url)
        .connect_timeout(TIMEOUT)
        .command_timeout(TIMEOUT)
        .build()
        .unwrap()
}

fn token(secret: &str, lifetime: Duration, refresh: Option<&str>) -> AccessToken {
    let builder = AccessToken::builder(
        secret.into(),
        SystemTime::now() + lifetime,
        Resource::parse(ORG).unwrap(),
    );
    match refresh {
        Some(refresh) => builder.refresh_token(refresh.into()).build().unwrap(),
        None => builder.build().unwrap(),
    }
}

async fn redis(server: &RedisServer) -> redis::aio::MultiplexedConnection {
    redis::Client::open(server.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

async fn pttl(server: &RedisServer, key: &str) -> i64 {
    redis::cmd("PTTL")
        .arg(key)
        .query_async(&mut redis(server).await)
        .await
        .unwrap()
}

#[tokio::test]
async fn two_caches_in_two_tasks_share_one_token() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let shared: Arc<dyn TokenStore> = Arc::new(store(&server.url()));
    let provider = Arc::new(Counting::default());
    let (fetched_tx, fetched_rx) = tokio::sync::oneshot::channel();
    let first = {
        let cache = TokenCache::builder(Arc::clone(&provider))
            .store(Arc::clone(&shared))
            .build();
        tokio::spawn(async move {
            let token = cache.get(&request()).await.unwrap();
            fetched_tx.send(()).unwrap();
            token
        })
    };
    let second = {
        // Its own store value, its own connection: only Redis is shared.
        let cache = TokenCache::builder(Arc::clone(&provider))
            .store(Arc::new(store(&server.url())))
            .build();
        tokio::spawn(async move {
            fetched_rx.await.unwrap();
            cache.get(&request()).await.unwrap()
        })
    };
    let (first, second) = (first.await.unwrap(), second.await.unwrap());
    assert!(first.same_token(&second));
    assert_eq!(
        provider.calls(),
        1,
        "the second cache took the token from Redis"
    );
}

#[tokio::test]
async fn processes_share_one_token() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let provider = Arc::new(Counting::default());
    let cache = TokenCache::builder(Arc::clone(&provider))
        .store(Arc::new(store(&server.url())))
        .build();
    let token = cache.get(&request()).await.unwrap();
    assert_eq!(provider.calls(), 1);

    let children: Vec<_> = (0..2)
        .map(|_| {
            std::process::Command::new(std::env::current_exe().unwrap())
                .args([
                    "--exact",
                    "redis::child_process_entry",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env(CHILD_VAR, server.url())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let output = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "{stdout}{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let expected = format!("CHILD calls=0 token={}", token.secret().expose_secret());
        assert!(stdout.contains(&expected), "{stdout}");
    }
}

#[tokio::test]
async fn keys_are_namespaced_and_expire_with_their_token() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    // The cache's key: prefix, provider cache key, request key.
    let provider = Arc::new(Counting {
        refresh_tokens: true,
        ..Counting::default()
    });
    let cache = TokenCache::builder(Arc::clone(&provider))
        .store(Arc::new(
            RedisStore::builder(server.url())
                .refresh_token_ttl(Duration::from_secs(7200))
                .build()
                .unwrap(),
        ))
        .build();
    cache.get(&request()).await.unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("*")
        .query_async(&mut redis(&server).await)
        .await
        .unwrap();
    let expected = format!(
        "d365:token:{}|{}",
        provider.cache_key(),
        request().cache_key()
    );
    assert_eq!(keys, std::slice::from_ref(&expected));
    let ttl = pttl(&server, &expected).await;
    assert!(
        (7_100_000..=7_200_000).contains(&ttl),
        "a refresh token keeps the entry for the refresh-token TTL: {ttl}"
    );

    let store = store(&server.url());
    store
        .save("plain", &token("t", Duration::from_secs(3600), None))
        .await
        .unwrap();
    let ttl = pttl(&server, "d365:token:plain").await;
    assert!((3_500_000..=3_600_000).contains(&ttl), "{ttl}");

    let expired = AccessToken::builder(
        "old".into(),
        SystemTime::now() - Duration::from_secs(5),
        Resource::parse(ORG).unwrap(),
    )
    .build()
    .unwrap();
    store.save("plain", &expired).await.unwrap();
    assert_eq!(
        pttl(&server, "d365:token:plain").await,
        -2,
        "an expired token without a refresh token is deleted, not written"
    );

    let custom = RedisStore::builder(server.url())
        .key_prefix("staging:d365:")
        .build()
        .unwrap();
    custom
        .save("k", &token("t", Duration::from_secs(60), None))
        .await
        .unwrap();
    assert!(pttl(&server, "staging:d365:k").await > 0);
    custom.remove("k").await.unwrap();
    assert_eq!(pttl(&server, "staging:d365:k").await, -2);
}

#[tokio::test]
async fn encryption_round_trips_and_a_wrong_key_is_a_miss() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let logs = LogCapture::default();
    let _guard = tracing::subscriber::set_default(logs.subscriber());
    let encrypted = |key: [u8; 32]| {
        RedisStore::builder(server.url())
            .encryption_key(EncryptionKey::from_bytes(key))
            .build()
            .unwrap()
    };
    let writer = encrypted([1; 32]);
    let original = token(
        "ACCESS-SECRET-VALUE",
        Duration::from_secs(3600),
        Some("REFRESH-SECRET-VALUE"),
    );
    writer.save("k", &original).await.unwrap();

    let raw: Vec<u8> = redis::cmd("GET")
        .arg("d365:token:k")
        .query_async(&mut redis(&server).await)
        .await
        .unwrap();
    assert!(raw.starts_with(b"d365:aes-256-gcm:v1:"));
    let raw_text = String::from_utf8_lossy(&raw);
    assert!(!raw_text.contains("SECRET-VALUE") && !raw_text.contains(ORG));

    let reader = encrypted([1; 32]);
    let loaded = reader.load("k").await.unwrap().expect("same key");
    assert!(loaded.same_token(&original));
    assert_eq!(
        loaded.refresh_token().unwrap().expose_secret(),
        "REFRESH-SECRET-VALUE"
    );

    assert!(
        encrypted([2; 32]).load("k").await.unwrap().is_none(),
        "wrong key"
    );
    assert!(logs.text().contains("does not decrypt"), "{}", logs.text());
    assert!(
        store(&server.url()).load("k").await.unwrap().is_none(),
        "no key"
    );
    assert!(
        logs.text().contains("has no encryption key"),
        "{}",
        logs.text()
    );

    // A value moved under another key does not decrypt either.
    let _: () = redis::cmd("SET")
        .arg("d365:token:moved")
        .arg(&raw)
        .query_async(&mut redis(&server).await)
        .await
        .unwrap();
    assert!(reader.load("moved").await.unwrap().is_none());

    // Plain values are ignored by an encrypting store.
    store(&server.url())
        .save("plain", &token("p", Duration::from_secs(60), None))
        .await
        .unwrap();
    assert!(reader.load("plain").await.unwrap().is_none());
    assert!(logs.text().contains("is not encrypted"), "{}", logs.text());

    // Through a cache, a wrong key means one request to the provider, not a failure.
    let provider = Arc::new(Counting::default());
    let cache = TokenCache::builder(Arc::clone(&provider))
        .store(Arc::new(encrypted([3; 32])))
        .build();
    cache.get(&request()).await.unwrap();
    assert_eq!(provider.calls(), 1);
}

#[tokio::test]
async fn an_acl_user_limited_to_the_token_keys_is_enough() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    // The ACL docs/token-stores.md recommends.
    let _: () = redis::cmd("ACL")
        .arg(
            &[
                "SETUSER",
                "d365",
                "on",
                ">worker-pass",
                "~d365:token:*",
                "+get",
                "+set",
                "+del",
                "+eval",
            ][..],
        )
        .query_async(&mut redis(&server).await)
        .await
        .unwrap();
    let limited = store(&format!(
        "redis://d365:worker-pass@127.0.0.1:{}",
        server.port
    ));
    let original = token("t", Duration::from_secs(60), None);
    limited.save("k", &original).await.unwrap();
    assert!(
        limited
            .load("k")
            .await
            .unwrap()
            .unwrap()
            .same_token(&original)
    );
    limited.remove("k").await.unwrap();
    assert!(limited.load("k").await.unwrap().is_none());
    // The renewal lease too: taken, held against a second worker, released.
    let d365_auth_core::store::Renewal::Lease(lease) = limited.begin_renewal("k", true).await
    else {
        panic!("the ACL allows the lease");
    };
    assert!(matches!(
        limited.begin_renewal("k", false).await,
        d365_auth_core::store::Renewal::Busy
    ));
    lease.release().await;
    assert!(matches!(
        limited.begin_renewal("k", false).await,
        d365_auth_core::store::Renewal::Lease(_)
    ));
    // Outside the prefix the ACL says no: the store reports it as an error.
    let outside = RedisStore::builder(format!(
        "redis://d365:worker-pass@127.0.0.1:{}",
        server.port
    ))
    .key_prefix("other:")
    .build()
    .unwrap();
    assert!(outside.save("k", &original).await.is_err());
}

/// A cache over `store`: the provider answers, quickly, and the failure is logged.
async fn assert_falls_back(store: RedisStore, what: &str) {
    let logs = LogCapture::default();
    let _guard = tracing::subscriber::set_default(logs.subscriber());
    let provider = Arc::new(Counting::default());
    let cache = TokenCache::builder(Arc::clone(&provider))
        .store(Arc::new(store))
        .build();
    let started = Instant::now();
    let token = tokio::time::timeout(Duration::from_secs(30), cache.get(&request()))
        .await
        .unwrap_or_else(|_| panic!("{what}: the cache hung"))
        .unwrap_or_else(|error| panic!("{what}: {error}"));
    let elapsed = started.elapsed();
    assert!(elapsed < FAST, "{what}: took {elapsed:?}");
    assert_eq!(provider.calls(), 1, "{what}");
    assert!(token.secret().expose_secret().starts_with("redis-token-"));
    // A hit from memory afterwards: Redis is not asked again.
    assert!(cache.get(&request()).await.unwrap().same_token(&token));
    let text = logs.text();
    assert!(
        text.contains("WARN") && text.contains("could not read the token store"),
        "{what}: {text}"
    );
    assert!(text.contains("could not save a token"), "{what}: {text}");
}

#[tokio::test]
async fn nothing_listening_falls_back_to_the_provider() {
    let port = redis_server::free_port();
    assert_falls_back(
        store(&format!("redis://127.0.0.1:{port}")),
        "connection refused",
    )
    .await;
}

#[tokio::test]
async fn a_silent_server_falls_back_to_the_provider_fast() {
    // Accepts connections and never answers: only timeouts end the wait.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let holder = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    assert_falls_back(store(&format!("redis://127.0.0.1:{port}")), "silent server").await;
    holder.abort();
}

#[tokio::test]
async fn a_stopped_server_falls_back_and_the_store_reconnects_when_it_is_back() {
    let Some(mut server) = RedisServer::start() else {
        return;
    };
    let shared = store(&server.url());
    shared
        .save("k", &token("first", Duration::from_secs(60), None))
        .await
        .unwrap();
    server.stop();
    assert!(shared.load("k").await.is_err(), "Redis is down");
    assert_falls_back(shared.clone(), "stopped server").await;

    // The same port again: the store's next call connects afresh.
    let binary = redis_server::redis_server_binary().unwrap();
    let Some(_again) = RedisServer::spawn(&binary, server.port, None) else {
        return; // the port was taken meanwhile: nothing to learn
    };
    shared
        .save("k", &token("second", Duration::from_secs(60), None))
        .await
        .unwrap();
    let loaded = shared.load("k").await.unwrap().unwrap();
    assert_eq!(loaded.secret().expose_secret(), "second");
}

#[tokio::test]
async fn nothing_secret_in_debug_or_logs() {
    let Some(server) = RedisServer::start_with(Some("REDIS-PASSWORD-VALUE")) else {
        return;
    };
    let key_text = "S0VZLVZBTFVFLUtFWS1WQUxVRS1LRVktVkFMVUUtS0U=";
    let mut watch = SecretWatch::start(&[
        "ACCESS-SECRET-VALUE",
        "REFRESH-SECRET-VALUE",
        "REDIS-PASSWORD-VALUE",
        "WRONG-PASSWORD-VALUE",
        key_text,
        "redis-token-",
    ]);
    let key = EncryptionKey::from_base64(key_text).unwrap();
    let good = RedisStore::builder(server.url())
        .encryption_key(key.clone())
        .build()
        .unwrap();
    let wrong_password = RedisStore::builder(format!(
        "redis://:WRONG-PASSWORD-VALUE@127.0.0.1:{}",
        server.port
    ))
    .connect_timeout(TIMEOUT)
    .build()
    .unwrap();
    let original = token(
        "ACCESS-SECRET-VALUE",
        Duration::from_secs(3600),
        Some("REFRESH-SECRET-VALUE"),
    );
    good.save("k", &original).await.unwrap();
    good.load("k").await.unwrap().unwrap();
    let other_key = RedisStore::builder(server.url())
        .encryption_key(EncryptionKey::from_bytes([9; 32]))
        .build()
        .unwrap();
    assert!(other_key.load("k").await.unwrap().is_none());
    let refused = wrong_password.load("k").await.expect_err("wrong password");
    let cache = TokenCache::builder(Counting::default())
        .store(Arc::new(wrong_password.clone()))
        .build();
    cache.get(&request()).await.unwrap();

    for value in [
        format!("{good:?}"),
        format!("{wrong_password:?}"),
        format!("{other_key:?}"),
        format!("{key:?}"),
        format!("{refused} {refused:?}"),
        format!("{cache:?}"),
    ] {
        watch.see(value);
    }
    assert!(
        watch
            .everything()
            .contains("could not read the token store"),
        "{}",
        watch.everything()
    );
    watch.assert_clean_with_logs();
}

/// Not a test of its own: what a child process does when `D365_REDIS_STORE_CHILD` holds a
/// Redis URL (get a token through a cache over it, report). Without it, nothing.
#[test]
#[allow(clippy::print_stdout)] // the child's report to its parent
fn child_process_entry() {
    let Ok(url) = std::env::var(CHILD_VAR) else {
        return;
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let provider = Arc::new(Counting::default());
        let cache = TokenCache::builder(Arc::clone(&provider))
            .store(Arc::new(store(&url)))
            .build();
        let token = cache.get(&request()).await.unwrap();
        println!(
            "CHILD calls={} token={}",
            provider.calls(),
            token.secret().expose_secret()
        );
    });
}
