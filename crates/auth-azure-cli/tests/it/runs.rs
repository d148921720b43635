//! What `az` is given and what comes back: the exact command line, the tenant and the
//! subscription as single arguments, how the process is started (no shell, stdin closed,
//! `/bin`, no colour), and the expiry from `expires_on`, the `exp` claim or `expiresOn`.

use std::time::{Duration, SystemTime};

use d365_auth_azure_cli::AzureCli;
use d365_auth_core::{ErrorKind, TokenProvider as _};
use secrecy::ExposeSecret as _;
use time::macros::format_description;
use time::{PrimitiveDateTime, UtcOffset};

use crate::fake_az::{FakeAz, ORG, answer, jwt, request};

fn at(seconds: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(seconds)
}

#[tokio::test]
async fn a_token_from_expires_on_with_the_exact_command_line() {
    let az = FakeAz::answering(&answer("opaque-token-1", 4_102_444_800)).await;
    let grant = az.builder().build().unwrap();
    let token = request(&grant, ORG).await.unwrap();
    assert_eq!(
        az.args().unwrap(),
        [
            "account",
            "get-access-token",
            "--output",
            "json",
            "--resource",
            "https://contoso.crm.dynamics.com/"
        ]
    );
    assert_eq!(token.secret().expose_secret(), "opaque-token-1");
    assert_eq!(token.token_type(), "Bearer");
    assert_eq!(token.expires_on(), at(4_102_444_800));
    assert_eq!(token.resource().as_str(), ORG);
    assert_eq!(grant.grant().as_str(), "azure_cli");
    assert_eq!(grant.cache_key(), "azure_cli|default|default");
}

#[tokio::test]
async fn the_tenant_and_the_subscription_are_passed_as_single_arguments() {
    let az = FakeAz::answering(&answer("opaque-token-2", 4_102_444_800)).await;
    let grant = az
        .builder()
        .tenant("contoso.onmicrosoft.com")
        .subscription("My Subscription")
        .build()
        .unwrap();
    // Any form of the organization URL becomes the v1 resource with its trailing slash.
    request(&grant, "https://Contoso.crm.dynamics.com/api/data/v9.2")
        .await
        .unwrap();
    assert_eq!(
        az.args().unwrap(),
        [
            "account",
            "get-access-token",
            "--output",
            "json",
            "--resource",
            "https://contoso.crm.dynamics.com/",
            "--tenant",
            "contoso.onmicrosoft.com",
            "--subscription",
            "My Subscription",
        ]
    );
    assert_eq!(
        grant.cache_key(),
        "azure_cli|contoso.onmicrosoft.com|My Subscription"
    );
}

#[tokio::test]
async fn az_runs_in_bin_without_stdin_and_without_colour() {
    // `cat` copies stdin: with stdin inherited it would wait for the test's terminal.
    let az = FakeAz::new(&format!(
        "dir=\"$(dirname \"$0\")\"\nprintf '%s\\n' \"$(pwd)\" \"$AZURE_CORE_NO_COLOR\" > \"$dir/seen\"\ncat > \"$dir/stdin\"\ncat <<'EOF'\n{answer}\nEOF",
        answer = answer("opaque-token-3", 4_102_444_800),
    ))
    .await;
    let grant = az.builder().build().unwrap();
    request(&grant, ORG).await.unwrap();
    let seen = std::fs::read_to_string(az.dir().join("seen")).unwrap();
    let bin = std::fs::canonicalize("/bin").unwrap();
    assert_eq!(seen, format!("{}\ntrue\n", bin.display()));
    assert_eq!(std::fs::read(az.dir().join("stdin")).unwrap(), b"");
}

#[tokio::test]
async fn an_explicit_program_is_run_without_a_search() {
    let az = FakeAz::answering(&answer("opaque-token-4", 4_102_444_800)).await;
    let grant = AzureCli::builder()
        .program(az.program())
        .search_path("")
        .build()
        .unwrap();
    let token = request(&grant, ORG).await.unwrap();
    assert_eq!(token.secret().expose_secret(), "opaque-token-4");
    assert!(az.args().is_some());
}

#[tokio::test]
async fn without_expires_on_the_exp_claim_of_the_token_is_used() {
    // An Azure CLI older than 2.54: `expiresOn` alone, in local time.
    let token = jwt(
        r#"{"aud":"https://contoso.crm.dynamics.com/","exp":4102444800,"scp":"user_impersonation"}"#,
    );
    let az = FakeAz::answering(&format!(
        r#"{{"accessToken":"{token}","expiresOn":"2023-10-31 21:59:10.000000","tokenType":"Bearer"}}"#
    ))
    .await;
    let got = request(&az.builder().build().unwrap(), ORG).await.unwrap();
    assert_eq!(got.expires_on(), at(4_102_444_800));
    assert_eq!(got.secret().expose_secret(), token);
}

#[tokio::test]
async fn without_expires_on_or_a_jwt_expires_on_is_read_as_local_time_or_refused() {
    let az = FakeAz::answering(
        r#"{"accessToken":"opaque-token-5","expiresOn":"2099-12-31 23:00:00.000000","tokenType":"Bearer"}"#,
    )
    .await;
    let outcome = request(&az.builder().build().unwrap(), ORG).await;
    let local = PrimitiveDateTime::parse(
        "2099-12-31 23:00:00",
        format_description!("[year]-[month]-[day] [hour]:[minute]:[second]"),
    )
    .unwrap();
    // The time crate reads the local offset only where that is sound: in this multi-threaded
    // test process on Unix, usually not. Either way the outcome must be the right one.
    match UtcOffset::local_offset_at(local.assume_utc()) {
        Ok(offset) => assert_eq!(
            outcome.unwrap().expires_on(),
            SystemTime::from(local.assume_offset(offset))
        ),
        Err(_) => {
            let error = outcome.unwrap_err();
            assert_eq!(error.kind(), ErrorKind::Credential);
            let message = error.to_string();
            assert!(message.contains("`expiresOn`"), "{message}");
            assert!(message.contains("2.54"), "{message}");
        }
    }
}

#[tokio::test]
async fn a_token_type_other_than_bearer_is_kept() {
    let az = FakeAz::answering(
        r#"{"accessToken":"opaque-token-6","expires_on":"4102444800","tokenType":"PoP"}"#,
    )
    .await;
    let token = request(&az.builder().build().unwrap(), ORG).await.unwrap();
    assert_eq!(token.token_type(), "PoP");
    assert_eq!(token.expires_on(), at(4_102_444_800));
}
