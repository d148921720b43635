//! `TokenCache` behaviour with a counting provider: single flight, hits that never call
//! the provider, early refresh, failed refresh with a valid token, invalidation, and
//! sharing through a store.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use d365_auth_core::store::MemoryStore;
use d365_auth_core::{
    AccessToken, AuthError, ConfigError, Grant, TokenCache, TokenProvider, TokenRequest,
    async_trait,
};

/// Counts calls; each token is `token-N`. Lifetimes and failures are set by the test.
#[derive(Debug)]
struct Counting {
    calls: AtomicUsize,
    renewals: AtomicUsize,
    delay: Duration,
    lifetime: Duration,
    refresh_in: Option<Duration>,
    failing: AtomicBool,
}

impl Counting {
    fn new(lifetime: Duration) -> Self {
        Self {
            calls: AtomicUsize::new(0),
            renewals: AtomicUsize::new(0),
            delay: Duration::from_millis(50),
            lifetime,
            refresh_in: None,
            failing: AtomicBool::new(false),
        }
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl TokenProvider for Counting {
    async fn request_token(&self, request: &TokenRequest) -> Result<AccessToken, AuthError> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        tokio::time::sleep(self.delay).await;
        if self.failing.load(Ordering::SeqCst) {
            return Err(ConfigError::Missing {
                setting: "test",
                fix: "the provider is failing".into(),
            }
            .into());
        }
        let now = SystemTime::now();
        let mut builder = AccessToken::builder(
            format!("token-{n}").into(),
            now + self.lifetime,
            request.resource().clone(),
        );
        if let Some(refresh_in) = self.refresh_in {
            builder = builder.refresh_on(now + refresh_in);
        }
        Ok(builder.build().unwrap())
    }

    async fn renew_token(
        &self,
        request: &TokenRequest,
        _previous: &AccessToken,
    ) -> Result<AccessToken, AuthError> {
        self.renewals.fetch_add(1, Ordering::SeqCst);
        self.request_token(request).await
    }

    fn grant(&self) -> Grant {
        Grant::new("counting")
    }

    fn cache_key(&self) -> String {
        "counting".into()
    }
}

fn request() -> TokenRequest {
    TokenRequest::for_url("https://contoso.crm.dynamics.com").unwrap()
}

fn secret(token: &AccessToken) -> String {
    use secrecy::ExposeSecret;
    token.secret().expose_secret().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_callers_on_a_cold_key_cause_one_request() {
    let provider = Arc::new(Counting::new(Duration::from_secs(3600)));
    let cache = TokenCache::new(Arc::clone(&provider));
    let tasks: Vec<_> = (0..1000)
        .map(|_| {
            let cache = cache.clone();
            tokio::spawn(async move { cache.get(&request()).await })
        })
        .collect();
    for task in tasks {
        assert_eq!(secret(&task.await.unwrap().unwrap()), "token-1");
    }
    assert_eq!(provider.calls(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiters_share_a_failure_instead_of_each_retrying() {
    let provider = Arc::new(Counting::new(Duration::from_secs(3600)));
    provider.failing.store(true, Ordering::SeqCst);
    let cache = TokenCache::new(Arc::clone(&provider));
    let tasks: Vec<_> = (0..200)
        .map(|_| {
            let cache = cache.clone();
            tokio::spawn(async move { cache.get(&request()).await })
        })
        .collect();
    for task in tasks {
        assert!(task.await.unwrap().is_err());
    }
    assert_eq!(provider.calls(), 1);
}

#[tokio::test]
async fn hits_never_call_the_provider_and_keys_are_separate() {
    let provider = Arc::new(Counting::new(Duration::from_secs(3600)));
    let cache = TokenCache::new(Arc::clone(&provider));
    for _ in 0..100 {
        cache.get(&request()).await.unwrap();
    }
    assert_eq!(provider.calls(), 1);
    let other = TokenRequest::for_url("https://fabrikam.crm4.dynamics.com").unwrap();
    let token = cache.get(&other).await.unwrap();
    assert_eq!(
        token.resource().as_str(),
        "https://fabrikam.crm4.dynamics.com"
    );
    assert_eq!(provider.calls(), 2);
}

#[tokio::test]
async fn refresh_on_from_the_identity_provider_triggers_an_early_renewal() {
    let mut counting = Counting::new(Duration::from_secs(3600));
    counting.refresh_in = Some(Duration::from_millis(200));
    let provider = Arc::new(counting);
    let cache = TokenCache::new(Arc::clone(&provider));
    assert_eq!(secret(&cache.get(&request()).await.unwrap()), "token-1");
    assert_eq!(secret(&cache.get(&request()).await.unwrap()), "token-1");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(secret(&cache.get(&request()).await.unwrap()), "token-2");
    assert_eq!(
        provider.renewals.load(Ordering::SeqCst),
        1,
        "renewal passes the previous token"
    );
}

#[tokio::test]
async fn refresh_is_due_at_the_configured_margin_before_expiry() {
    let provider = Arc::new(Counting::new(Duration::from_secs(2)));
    let cache = TokenCache::builder(Arc::clone(&provider))
        .refresh_before_expiry(Duration::from_millis(1900))
        .build();
    cache.get(&request()).await.unwrap();
    // Due at max(expiry − 1.9 s, halfway) = 1 s after issue.
    cache.get(&request()).await.unwrap();
    assert_eq!(provider.calls(), 1);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(secret(&cache.get(&request()).await.unwrap()), "token-2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_refresh_serves_the_still_valid_token() {
    let mut counting = Counting::new(Duration::from_secs(3600));
    counting.refresh_in = Some(Duration::from_millis(100));
    let provider = Arc::new(counting);
    let cache = TokenCache::builder(Arc::clone(&provider))
        .retry_failed_refresh_after(Duration::from_secs(60))
        .build();
    assert_eq!(secret(&cache.get(&request()).await.unwrap()), "token-1");
    provider.failing.store(true, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(150)).await;
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let cache = cache.clone();
            tokio::spawn(async move { cache.get(&request()).await })
        })
        .collect();
    for task in tasks {
        assert_eq!(secret(&task.await.unwrap().unwrap()), "token-1");
    }
    // One attempt, then the failure backoff holds further attempts.
    assert_eq!(provider.calls(), 2);
    assert_eq!(secret(&cache.get(&request()).await.unwrap()), "token-1");
    assert_eq!(provider.calls(), 2);
}

#[tokio::test]
async fn an_expired_token_with_a_failing_provider_is_an_error() {
    let provider = Arc::new(Counting::new(Duration::from_millis(100)));
    let cache = TokenCache::new(Arc::clone(&provider));
    cache.get(&request()).await.unwrap();
    provider.failing.store(true, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert!(cache.get(&request()).await.is_err());
}

#[tokio::test]
async fn invalidate_drops_a_rejected_token_and_renews_with_it() {
    let provider = Arc::new(Counting::new(Duration::from_secs(3600)));
    let cache = TokenCache::new(Arc::clone(&provider));
    let first = cache.get(&request()).await.unwrap();
    assert!(cache.invalidate(&first).await);
    let second = cache.get(&request()).await.unwrap();
    assert_eq!(secret(&second), "token-2");
    assert_eq!(provider.renewals.load(Ordering::SeqCst), 1);
    // Through the trait: renew_token on the cache invalidates and fetches.
    let third = cache.renew_token(&request(), &second).await.unwrap();
    assert_eq!(secret(&third), "token-3");
}

/// Past a handful of organizations hits are answered from a hashed index instead of a
/// scanned list: both must keep each organization's token apart, and forget a rejected one.
#[tokio::test]
async fn many_organizations_keep_their_own_tokens_through_invalidate_and_clear() {
    let provider = Arc::new(Counting {
        delay: Duration::ZERO,
        ..Counting::new(Duration::from_secs(3600))
    });
    let cache = TokenCache::new(Arc::clone(&provider));
    let orgs: Vec<TokenRequest> = (0..20)
        .map(|n| TokenRequest::for_url(&format!("https://org{n}.crm.dynamics.com")).unwrap())
        .collect();
    let mut first = Vec::new();
    for (count, org) in orgs.iter().enumerate() {
        first.push(cache.get(org).await.unwrap());
        // Every size from the scanned list to the index answers every earlier key.
        for (earlier, token) in orgs.iter().zip(&first) {
            let hit = cache.get(earlier).await.unwrap();
            assert!(hit.same_token(token), "{count} organizations cached");
            assert_eq!(hit.resource(), earlier.resource());
        }
    }
    assert_eq!(provider.calls(), 20);

    assert!(cache.invalidate(&first[15]).await);
    let renewed = cache.get(&orgs[15]).await.unwrap();
    assert!(
        !renewed.same_token(&first[15]),
        "the rejected token is not served again"
    );
    assert!(cache.get(&orgs[3]).await.unwrap().same_token(&first[3]));
    assert_eq!(provider.calls(), 21);

    cache.clear();
    // The private memory store still holds them: no new request, but through the store.
    assert!(cache.get(&orgs[3]).await.unwrap().same_token(&first[3]));
    assert_eq!(provider.calls(), 21);
}

#[tokio::test]
async fn caches_sharing_a_store_share_tokens() {
    let store = Arc::new(MemoryStore::new());
    let first_provider = Arc::new(Counting::new(Duration::from_secs(3600)));
    let second_provider = Arc::new(Counting::new(Duration::from_secs(3600)));
    let first = TokenCache::builder(Arc::clone(&first_provider))
        .store(store.clone())
        .build();
    let second = TokenCache::builder(Arc::clone(&second_provider))
        .store(store.clone())
        .build();
    let token = first.get(&request()).await.unwrap();
    let shared = second.get(&request()).await.unwrap();
    assert!(token.same_token(&shared));
    assert_eq!(first_provider.calls() + second_provider.calls(), 1);
}

#[test]
fn the_trait_is_object_safe_and_the_cache_is_a_provider() {
    fn takes(_: Arc<dyn TokenProvider>) {}
    let provider: Arc<dyn TokenProvider> = Arc::new(Counting::new(Duration::from_secs(1)));
    takes(Arc::new(TokenCache::new(provider)));
}

#[tokio::test]
async fn stored_tokens_are_seen_without_the_provider_and_forgotten_on_sign_out() {
    let store = Arc::new(MemoryStore::new());
    let provider = Arc::new(Counting::new(Duration::from_secs(3600)));
    let cache = TokenCache::builder(Arc::clone(&provider))
        .store(store.clone())
        .build();
    assert!(cache.stored(&request()).await.unwrap().is_none());
    let token = cache.get(&request()).await.unwrap();
    assert!(
        cache
            .stored(&request())
            .await
            .unwrap()
            .unwrap()
            .same_token(&token)
    );

    // Another process (a new cache on the same store) sees it without asking anyone.
    let later = TokenCache::builder(Arc::new(Counting::new(Duration::from_secs(3600))))
        .store(store.clone())
        .build();
    assert!(
        later
            .stored(&request())
            .await
            .unwrap()
            .unwrap()
            .same_token(&token)
    );

    cache.forget(&request()).await.unwrap();
    assert!(cache.stored(&request()).await.unwrap().is_none());
    assert!(
        later.stored(&request()).await.unwrap().is_none(),
        "gone from the store too"
    );
    let again = cache.get(&request()).await.unwrap();
    assert!(!again.same_token(&token));
    assert_eq!(provider.calls(), 2);
}
