//! No token the fake `az` prints reaches a log line (at TRACE level), the `Debug` of the
//! builder, the grant, a token or the cache, or an error: every path of the grant runs —
//! success, refusals whose standard error holds the token, garbage and floods holding it,
//! an unsendable token, a timeout — and everything observable is searched for each token.

use std::time::Duration;

use d365_auth_azure_cli::AzureCli;
use d365_auth_core::{TokenCache, TokenRequest};
use d365_test_support::SecretWatch;

use crate::fake_az::{FakeAz, ORG, answer, jwt, request};

const OPAQUE: &str = "OPAQUE-ACCESS-TOKEN-VALUE";
const UNSENDABLE: &str = "UNSENDABLE-TOKEN-VALUE";

#[tokio::test]
async fn no_token_in_logs_debug_or_errors() {
    let token = jwt(
        r#"{"aud":"https://contoso.crm.dynamics.com/","exp":4102444800,"upn":"ana@contoso.com"}"#,
    );
    let mut watch = SecretWatch::start(&[OPAQUE, UNSENDABLE, &token]);

    // Success, directly and through a cache (whose logs are searched too).
    let az = FakeAz::answering(&answer(&token, 4_102_444_800)).await;
    let builder = az.builder().tenant("contoso.onmicrosoft.com");
    watch.see_debug(&builder);
    let grant = builder.build().unwrap();
    watch.see_debug(&grant);
    watch.see_outcome(&request(&grant, ORG).await);
    let cache = TokenCache::new(grant.clone());
    {
        let _starting = crate::fake_az::STARTING.read().await;
        for _ in 0..2 {
            watch.see_outcome(&cache.get(&TokenRequest::for_url(ORG).unwrap()).await);
        }
    }
    watch.see_debug(&cache);
    let opaque = FakeAz::answering(&answer(OPAQUE, 4_102_444_800)).await;
    watch.see_outcome(&request(&opaque.builder().build().unwrap(), ORG).await);

    // Failures whose output holds a token in the shapes `az` could print it.
    let failures = [
        FakeAz::failing(1, &format!("ERROR: AADSTS50076: Due to a configuration change you must use multi-factor authentication. {token}")).await,
        FakeAz::failing(1, &format!("ERROR: Please run 'az login' to setup account. {token}")).await,
        FakeAz::failing(2, &format!("ERROR: unexpected\n{{\"accessToken\": \"{OPAQUE}\", \"expiresOn\": \"x\"}}")).await,
        FakeAz::failing(3, &format!("ERROR: {token}")).await,
        FakeAz::answering(&format!("WARNING: {OPAQUE} {token}")).await,
        FakeAz::answering(&format!(r#"{{"accessToken": "{OPAQUE}"}}"#)).await,
        FakeAz::answering(&format!(r#"{{"accessToken": "{OPAQUE}", "expires_on": "{OPAQUE}"}}"#)).await,
        FakeAz::answering(&answer(&format!("{UNSENDABLE}\\n"), 4_102_444_800)).await,
        FakeAz::new(&format!("while :; do echo '{token}'; done")).await,
        FakeAz::new(&format!("echo '{token}'\nsleep 5")).await,
    ];
    for az in &failures {
        let grant = az
            .builder()
            .timeout(Duration::from_secs(1))
            .build()
            .unwrap();
        watch.see_outcome(&request(&grant, ORG).await);
    }
    let absent = AzureCli::builder().search_path("").build().unwrap();
    watch.see_outcome(&request(&absent, ORG).await);

    let logged = watch.logs();
    assert!(
        logged.contains("asking the Azure CLI for a token"),
        "{logged}"
    );
    assert!(
        logged.contains("the Azure CLI returned a token"),
        "{logged}"
    );
    assert!(logged.contains("the Azure CLI gave no token"), "{logged}");
    watch.assert_clean_with_logs();
}
