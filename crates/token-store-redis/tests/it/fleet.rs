//! A fleet renews its token once: independent caches (each with its own store handle and
//! its own provider, as separate processes have) on one cold shared store — Redis, or one
//! token file — make one token request between them, counted by the emulator that serves
//! it; a holder that dies mid-renewal costs one more request once its lease is gone, and
//! no caller sees an error; a changed credential is never served the old token.

use std::sync::Arc;
use std::time::Duration;

use d365_auth_client_credentials::ClientCredentials;
use d365_auth_core::store::{FileStore, TokenStore};
use d365_auth_core::{
    AccessToken, AuthError, Grant, TokenCache, TokenProvider, TokenRequest, async_trait,
};
use d365_emulator::Emulator;
use d365_token_store_redis::RedisStore;
use secrecy::{ExposeSecret as _, SecretString};

use crate::redis_server::RedisServer;

const FLEET: usize = 50;

/// Which shared store the fleet uses.
#[derive(Clone, Copy, Debug)]
enum Shared {
    Redis,
    File,
}

/// A fresh handle on the shared store, as another process would open it.
fn open_store(
    shared: Shared,
    redis_url: &str,
    file: &std::path::Path,
    lease: Duration,
) -> Arc<dyn TokenStore> {
    match shared {
        Shared::Redis => Arc::new(
            RedisStore::builder(redis_url)
                .renewal_lease(lease)
                .renewal_wait(Duration::from_secs(20))
                .build()
                .unwrap(),
        ),
        Shared::File => Arc::new(
            FileStore::builder(file)
                .renewal_wait(Duration::from_secs(20))
                .build(),
        ),
    }
}

/// The seeded confidential app's client credentials, against the emulator.
fn grant(emulator: &Emulator, secret: &SecretString) -> ClientCredentials {
    let app = &emulator.seeded().unwrap().confidential_app;
    ClientCredentials::builder()
        .authority_host(emulator.base_url())
        .tenant(emulator.tenant_id())
        .client_id(app.client_id.clone())
        .client_secret(secret.clone())
        .build()
        .unwrap()
}

fn request(emulator: &Emulator) -> TokenRequest {
    TokenRequest::for_url(emulator.base_url()).unwrap()
}

/// Token requests the emulator has served for `client_id`, by its own count.
async fn served(emulator: &Emulator, client_id: &str) -> u64 {
    let stats: serde_json::Value =
        reqwest::get(format!("{}/_emulator/identity/stats", emulator.base_url()))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    stats["by_client"][client_id.to_ascii_lowercase()]
        .as_u64()
        .unwrap_or(0)
}

fn secret_of(token: &AccessToken) -> String {
    token.secret().expose_secret().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_caches_on_a_cold_shared_store_make_one_token_request() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    for shared in [Shared::Redis, Shared::File] {
        let emulator = Emulator::builder().start().await.unwrap();
        let app = emulator.seeded().unwrap().confidential_app.clone();
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("tokens.json");
        let mut fleet = tokio::task::JoinSet::new();
        for _ in 0..FLEET {
            let cache = TokenCache::builder(grant(&emulator, &app.secret))
                .store(open_store(
                    shared,
                    &redis.url(),
                    &file,
                    Duration::from_secs(10),
                ))
                .build();
            let request = request(&emulator);
            fleet.spawn(async move { cache.get(&request).await });
        }
        let tokens: Vec<AccessToken> = fleet
            .join_all()
            .await
            .into_iter()
            .map(|token| token.unwrap())
            .collect();
        assert_eq!(
            served(&emulator, &app.client_id).await,
            1,
            "{shared:?}: one request for {FLEET} caches"
        );
        assert!(
            tokens
                .iter()
                .all(|token| secret_of(token) == secret_of(&tokens[0])),
            "{shared:?}: one token shared"
        );
        emulator.shutdown().await;
    }
}

/// A provider that blocks forever once it has said it started: the worker holding the
/// renewal lease when it dies.
#[derive(Debug)]
struct DiesMidRequest {
    inner: ClientCredentials,
    started: Arc<tokio::sync::Notify>,
}

#[async_trait]
impl TokenProvider for DiesMidRequest {
    async fn request_token(&self, _request: &TokenRequest) -> Result<AccessToken, AuthError> {
        self.started.notify_one();
        std::future::pending().await
    }

    fn grant(&self) -> Grant {
        self.inner.grant()
    }

    fn cache_key(&self) -> String {
        self.inner.cache_key()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_holder_that_dies_mid_renewal_costs_one_more_request_after_its_lease() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    for shared in [Shared::Redis, Shared::File] {
        let emulator = Emulator::builder().start().await.unwrap();
        let app = emulator.seeded().unwrap().confidential_app.clone();
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("tokens.json");
        let lease = Duration::from_millis(800);
        let started = Arc::new(tokio::sync::Notify::new());
        let doomed = TokenCache::builder(DiesMidRequest {
            inner: grant(&emulator, &app.secret),
            started: Arc::clone(&started),
        })
        .store(open_store(shared, &redis.url(), &file, lease))
        .build();
        let request = request(&emulator);
        let holder = {
            let request = request.clone();
            tokio::spawn(async move { doomed.get(&request).await })
        };
        // It holds the lease and is inside its token request: now it dies (its task is
        // dropped: the file lock closes with it, the Redis lease stays until it expires).
        started.notified().await;
        holder.abort();
        let _ = holder.await;

        let mut fleet = tokio::task::JoinSet::new();
        for _ in 0..10 {
            let cache = TokenCache::builder(grant(&emulator, &app.secret))
                .store(open_store(shared, &redis.url(), &file, lease))
                .build();
            let request = request.clone();
            fleet.spawn(async move { cache.get(&request).await });
        }
        for outcome in fleet.join_all().await {
            outcome.unwrap_or_else(|error| panic!("{shared:?}: a caller saw an error: {error}"));
        }
        assert_eq!(
            served(&emulator, &app.client_id).await,
            1,
            "{shared:?}: exactly one more request"
        );
        emulator.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_credential_is_never_served_the_old_token() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    for shared in [Shared::Redis, Shared::File] {
        let emulator = Emulator::builder().start().await.unwrap();
        let app = emulator.seeded().unwrap().confidential_app.clone();
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("tokens.json");
        let store = |()| open_store(shared, &redis.url(), &file, Duration::from_secs(10));
        let first = TokenCache::builder(grant(&emulator, &app.secret))
            .store(store(()))
            .build();
        let token = first.get(&request(&emulator)).await.unwrap();

        // The same app with a secret that is not its own: a new request, refused; never
        // the token the right secret got.
        let wrong = SecretString::from("not-the-secret-of-this-app".to_owned());
        let changed = TokenCache::builder(grant(&emulator, &wrong))
            .store(store(()))
            .build();
        let error = changed
            .get(&request(&emulator))
            .await
            .expect_err("the wrong secret gets no token");
        assert_eq!(error.aadsts(), Some(7_000_215), "{error}");

        // The right secret again: the shared token, with no request.
        let again = TokenCache::builder(grant(&emulator, &app.secret))
            .store(store(()))
            .build();
        assert_eq!(
            secret_of(&again.get(&request(&emulator)).await.unwrap()),
            secret_of(&token)
        );
        assert_eq!(
            served(&emulator, &app.client_id).await,
            2,
            "{shared:?}: the first and the refused one"
        );
        emulator.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fleet_renews_a_due_token_once_and_keeps_serving_the_old_one_meanwhile() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    for shared in [Shared::Redis, Shared::File] {
        // Four-second tokens: due after about two seconds (half their life, moved earlier
        // by each cache's random share).
        let emulator = Emulator::builder()
            .token_lifetime(Duration::from_secs(4))
            .start()
            .await
            .unwrap();
        let app = emulator.seeded().unwrap().confidential_app.clone();
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("tokens.json");
        let caches: Vec<_> = (0..20)
            .map(|_| {
                TokenCache::builder(grant(&emulator, &app.secret))
                    .store(open_store(
                        shared,
                        &redis.url(),
                        &file,
                        Duration::from_secs(10),
                    ))
                    .build()
            })
            .collect();
        let first = caches[0].get(&request(&emulator)).await.unwrap();
        for cache in &caches[1..] {
            let token = cache.get(&request(&emulator)).await.unwrap();
            assert_eq!(
                secret_of(&token),
                secret_of(&first),
                "{shared:?}: read from the store"
            );
        }
        tokio::time::sleep(Duration::from_millis(2500)).await;
        let mut fleet = tokio::task::JoinSet::new();
        for cache in caches {
            let request = request(&emulator);
            fleet.spawn(async move {
                // The first call may still get the old token (it is valid while the
                // renewal is in flight); a little later every cache has the new one.
                let now = cache.get(&request).await.unwrap();
                tokio::time::sleep(Duration::from_millis(300)).await;
                (now, cache.get(&request).await.unwrap())
            });
        }
        let answers = fleet.join_all().await;
        let renewed = secret_of(&answers[0].1);
        assert_ne!(renewed, secret_of(&first), "{shared:?}: renewed");
        for (now, later) in &answers {
            assert!(
                [secret_of(&first), renewed.clone()].contains(&secret_of(now)),
                "{shared:?}"
            );
            assert_eq!(
                secret_of(later),
                renewed,
                "{shared:?}: one renewed token for all"
            );
        }
        assert_eq!(
            served(&emulator, &app.client_id).await,
            2,
            "{shared:?}: the first token and one renewal"
        );
        emulator.shutdown().await;
    }
}
