//! Every way `az` fails, and what the error says: not installed, not signed in, refused by
//! Entra ID, too slow (and stopped), flooding its output, answering garbage, a token no
//! header can carry, an organization URL that must not reach its command line.

use std::fs::OpenOptions;
use std::os::unix::fs::OpenOptionsExt as _;
use std::time::{Duration, Instant};

use d365_auth_azure_cli::AzureCli;
use d365_auth_core::{ConfigError, ErrorKind};

use crate::fake_az::{FakeAz, ORG, answer, jwt, request};

#[tokio::test]
async fn az_not_on_the_search_path_is_unavailable() {
    let empty = tempfile::tempdir().unwrap();
    // A file called az that may not be executed is no Azure CLI either.
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .open(empty.path().join("az"))
        .unwrap();
    let search_path =
        std::env::join_paths([empty.path(), std::path::Path::new("relative/dir")]).unwrap();
    let grant = AzureCli::builder()
        .search_path(search_path)
        .build()
        .unwrap();
    let error = request(&grant, ORG).await.unwrap_err();
    assert!(error.is_unavailable(), "{error:?}");
    assert_eq!(error.kind(), ErrorKind::CredentialUnavailable);
    let message = error.to_string();
    assert!(
        message.contains("the Azure CLI is not available here"),
        "{message}"
    );
    assert!(message.contains("`az` is not on PATH"), "{message}");
    assert!(message.contains("install the Azure CLI"), "{message}");
}

#[tokio::test]
async fn a_program_that_does_not_exist_is_unavailable() {
    let empty = tempfile::tempdir().unwrap();
    let grant = AzureCli::builder()
        .program(empty.path().join("az"))
        .build()
        .unwrap();
    let error = request(&grant, ORG).await.unwrap_err();
    assert!(error.is_unavailable(), "{error:?}");
    assert!(error.to_string().contains("does not exist"), "{error}");
}

#[tokio::test]
async fn signed_out_is_unavailable_and_says_to_run_az_login() {
    let az = FakeAz::failing(1, "ERROR: Please run 'az login' to setup account.").await;
    let error = request(&az.builder().build().unwrap(), ORG)
        .await
        .unwrap_err();
    assert!(error.is_unavailable(), "{error:?}");
    assert!(
        error.to_string().contains("run `az login`, then retry"),
        "{error}"
    );

    let with_tenant = az
        .builder()
        .tenant("contoso.onmicrosoft.com")
        .build()
        .unwrap();
    let error = request(&with_tenant, ORG).await.unwrap_err();
    assert!(error.is_unavailable(), "{error:?}");
    assert!(
        error
            .to_string()
            .contains("run `az login --tenant contoso.onmicrosoft.com`"),
        "{error}"
    );
}

#[tokio::test]
async fn no_subscription_is_unavailable_and_says_to_select_one() {
    let az = FakeAz::failing(
        1,
        "ERROR: No subscription found. Run 'az account set' to select a subscription.",
    )
    .await;
    let error = request(&az.builder().build().unwrap(), ORG)
        .await
        .unwrap_err();
    assert!(error.is_unavailable(), "{error:?}");
    assert!(
        error.to_string().contains("az account set --subscription"),
        "{error}"
    );
}

#[tokio::test]
async fn an_entra_refusal_carries_the_code_and_entra_s_line_and_no_token() {
    let token = jwt(r#"{"exp":4102444800}"#);
    let az = FakeAz::failing(
        1,
        &format!(
            "ERROR: AADSTS700082: The refresh token has expired due to inactivity. The token was issued on 2025-01-01T00:00:00Z and was inactive for 90.00:00:00. Trace ID: 0b0b0b0b-1c1c-2d2d-3e3e-4f4f4f4f4f4f {token}\nInteractive authentication is needed. Please run:\naz login --scope https://contoso.crm.dynamics.com//.default\n{{\"accessToken\": \"{token}\"}}"
        ),
    )
    .await;
    let error = request(&az.builder().build().unwrap(), ORG)
        .await
        .unwrap_err();
    // It mentions `az login`, but Entra ID refused: not merely unavailable.
    assert!(!error.is_unavailable(), "{error:?}");
    assert_eq!(error.kind(), ErrorKind::Credential);
    let message = error.to_string();
    assert!(message.contains("AADSTS700082"), "{message}");
    assert!(
        message.contains("The refresh token has expired due to inactivity"),
        "{message}"
    );
    assert!(
        message.contains("0b0b0b0b-1c1c-2d2d-3e3e-4f4f4f4f4f4f"),
        "{message}"
    );
    assert!(message.contains("az login"), "{message}");
    assert!(!message.contains(&token), "{message}");
    assert!(!format!("{error:?}").contains(&token));
}

#[tokio::test]
async fn a_slow_az_is_stopped_at_the_timeout() {
    // Killed at one second, the shell never reaches the `echo`.
    let az = FakeAz::new("sleep 2\necho late > \"$(dirname \"$0\")/late\"").await;
    let grant = az
        .builder()
        .timeout(Duration::from_secs(1))
        .build()
        .unwrap();
    let started = Instant::now();
    let error = request(&grant, ORG).await.unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "bounded by the timeout"
    );
    assert_eq!(error.kind(), ErrorKind::Credential);
    let message = error.to_string();
    assert!(message.contains("did not answer within 1 s"), "{message}");
    assert!(message.contains("raise the timeout"), "{message}");
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        !az.dir().join("late").exists(),
        "the process went on after the timeout"
    );
}

#[tokio::test]
async fn output_past_one_mib_is_refused_without_waiting_for_the_timeout() {
    for (body, stream) in [
        ("exec yes 0123456789abcdef", "standard output"),
        ("exec yes 0123456789abcdef >&2", "standard error"),
    ] {
        let az = FakeAz::new(body).await;
        let grant = az
            .builder()
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap();
        let error = request(&grant, ORG).await.unwrap_err();
        let message = error.to_string();
        assert!(message.contains("more than 1 MiB"), "{message}");
        assert!(message.contains(stream), "{message}");
    }
}

#[tokio::test]
async fn garbage_is_described_and_never_quoted() {
    for stdout in [
        "WARNING: garbage-1 is not JSON",
        r#"{"access_token": "garbage-2", "expires_in": 3600}"#,
        r#"["garbage-3"]"#,
        r#"{"accessToken": "garbage-4", "expires_on": "garbage-5"}"#,
    ] {
        let az = FakeAz::answering(stdout).await;
        let error = request(&az.builder().build().unwrap(), ORG)
            .await
            .unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Credential, "{stdout}");
        let message = error.to_string();
        assert!(
            message.contains("could not read the Azure CLI's answer: it "),
            "{message}"
        );
        assert!(!message.contains("garbage-"), "{message}");
    }
}

#[tokio::test]
async fn a_token_with_a_line_break_is_refused() {
    let az = FakeAz::answering(&answer("first-half\\nsecond-half", 4_102_444_800)).await;
    let error = request(&az.builder().build().unwrap(), ORG)
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Credential);
    let message = error.to_string();
    assert!(
        message.contains("the Azure CLI returned an access token that holds a line break"),
        "{message}"
    );
    assert!(!message.contains("first-half"), "{message}");
}

#[tokio::test]
async fn another_failure_shows_the_cleaned_message_of_az() {
    let token = jwt(r#"{"exp":4102444800}"#);
    let az = FakeAz::failing(
        2,
        &format!("ERROR: The command failed with an unexpected error. Here is the traceback:\n{token}\n\u{1b}[0m"),
    )
    .await;
    let error = request(&az.builder().build().unwrap(), ORG)
        .await
        .unwrap_err();
    assert!(!error.is_unavailable());
    let message = error.to_string();
    assert!(message.contains("exit status: 2"), "{message}");
    assert!(
        message.contains("The command failed with an unexpected error."),
        "{message}"
    );
    assert!(!message.contains(&token), "{message}");
    assert!(!message.contains('\u{1b}'), "{message}");

    let missing_python = FakeAz::failing(127, "az: 3: /opt/az/bin/python3: not found").await;
    let error = request(&missing_python.builder().build().unwrap(), ORG)
        .await
        .unwrap_err();
    assert!(error.is_unavailable(), "{error:?}");
    assert!(error.to_string().contains("exit code 127"), "{error}");
}

#[tokio::test]
async fn an_organization_url_with_odd_characters_never_reaches_az() {
    let az = FakeAz::answering(&answer("opaque-token", 4_102_444_800)).await;
    let error = request(&az.builder().build().unwrap(), "http://[::1]:8080")
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Configuration, "{error:?}");
    assert!(az.args().is_none(), "az ran");
}

#[test]
fn settings_that_cannot_reach_the_command_line_are_refused_by_build() {
    for builder in [
        AzureCli::builder().tenant("contoso.onmicrosoft.com --debug"),
        AzureCli::builder().tenant("-contoso"),
        AzureCli::builder().tenant(""),
        AzureCli::builder().subscription("a'b"),
        AzureCli::builder().timeout(Duration::ZERO),
    ] {
        let error = builder.build().unwrap_err();
        assert!(matches!(error, ConfigError::Invalid { .. }), "{error:?}");
    }
}
