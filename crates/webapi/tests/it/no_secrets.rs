//! The bearer token never reaches a log line at TRACE level, an error message or a
//! `Debug`: the client meets a 401 (refreshed, then refused again), a 403, a 500, throttling
//! until its retries run out, a cut connection and a long GET sent inside a `$batch` whose
//! part fails, and everything observable is searched for every token it was handed.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use d365_auth_core::{AccessToken, AuthError, Grant, TokenProvider, TokenRequest, async_trait};
use d365_test_support::{Canned, CannedServer, SecretWatch};
use d365_webapi::{Client, Filter, Query, RetrySettings};

/// Hands out JWT-shaped tokens numbered from 1, so each can be searched for.
#[derive(Debug, Default)]
struct Tokens(AtomicUsize);

fn token_number(n: usize) -> String {
    format!("eyJhbGciOiJSUzI1NiJ9.eyJuIjoi{n}In0.BEARER-SECRET-SIGNATURE-{n}")
}

#[async_trait]
impl TokenProvider for Tokens {
    async fn request_token(&self, request: &TokenRequest) -> Result<AccessToken, AuthError> {
        let n = self.0.fetch_add(1, Ordering::SeqCst) + 1;
        Ok(AccessToken::builder(
            token_number(n).into(),
            SystemTime::now() + Duration::from_secs(3600),
            request.resource().clone(),
        )
        .build()
        .expect("a test token is a valid header value"))
    }

    fn grant(&self) -> Grant {
        Grant::new("leak test")
    }

    fn cache_key(&self) -> String {
        "leak-test".into()
    }
}

fn dataverse_error(status: u16, code: &str, message: &str) -> Canned {
    Canned::json(
        status,
        format!(r#"{{"error":{{"code":"{code}","message":"{message}"}}}}"#),
    )
}

#[tokio::test]
async fn no_bearer_token_in_logs_debug_or_errors() {
    let mut watch = SecretWatch::start(&[]);
    let tokens = Arc::new(Tokens::default());
    let mut retries = RetrySettings::default();
    retries.max_retries = 2;
    retries.base_delay = Duration::from_millis(5);
    retries.max_delay = Duration::from_millis(20);

    let unauthorized = Canned::json(401, "").header(
        "www-authenticate",
        "Bearer authorization_uri=https://login.microsoftonline.com/x/oauth2/authorize",
    );
    let answer_sets = [
        vec![unauthorized.clone(), unauthorized],
        vec![dataverse_error(
            403,
            "0x80072560",
            "The user is not a member of the organization.",
        )],
        vec![dataverse_error(
            500,
            "0x80040216",
            "An unexpected error occurred.",
        )],
        vec![
            dataverse_error(429, "0x80072322", "Number of requests exceeded the limit.")
                .header("retry-after", "0"),
        ],
        vec![Canned::json(200, r#"{"UserId":"6c1d2e3f-0000"#).cut()],
        vec![Canned::drop_connection()],
    ];
    for answers in answer_sets {
        let server = CannedServer::start(answers).await;
        let client =
            Client::builder_shared(&server.base, Arc::clone(&tokens) as Arc<dyn TokenProvider>)
                .retry(retries)
                .timeout(Duration::from_secs(5))
                .build()
                .unwrap();
        watch.see_debug(&client);
        let error = client.who_am_i().await.unwrap_err();
        watch.see(&error);
        watch.see_debug(&error);
        assert!(
            server
                .requests()
                .iter()
                .all(|request| request.header("authorization").is_some()),
            "every request carried a bearer token"
        );
    }

    // A long GET travels inside a $batch with its own Authorization header; the batch
    // answers with a failure part.
    let failed_part = "--batchresponse_1\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\nHTTP/1.1 403 Forbidden\r\nContent-Type: application/json\r\n\r\n{\"error\":{\"code\":\"0x80040220\",\"message\":\"Principal user is missing prvReadAccount privilege.\"}}\r\n--batchresponse_1--\r\n";
    let server = CannedServer::start(vec![Canned::with_type(
        200,
        "multipart/mixed; boundary=batchresponse_1",
        failed_part,
    )])
    .await;
    let client =
        Client::builder_shared(&server.base, Arc::clone(&tokens) as Arc<dyn TokenProvider>)
            .retry(retries)
            .build()
            .unwrap();
    let mut filter = Filter::eq("name", "a");
    for n in 0..150 {
        filter = filter.or(Filter::eq("name", format!("account number {n}").as_str()));
    }
    let query = Query::new("accounts").select(["name"]).filter(filter);
    let error = client
        .query_page::<serde_json::Value>(&query)
        .await
        .unwrap_err();
    watch.see(&error);
    watch.see_debug(&error);
    watch.see_debug(client.token_cache());
    let sent = &server.requests()[0];
    assert!(sent.path().ends_with("/$batch"), "{}", sent.path());
    assert!(sent.header("authorization").is_some());

    let everything = watch.everything();
    assert!(
        everything.contains("0x80072560") && everything.contains("prvReadAccount"),
        "the errors were observed:\n{everything}"
    );
    let handed_out = tokens.0.load(Ordering::SeqCst);
    assert!(handed_out >= 2, "the 401 made the client take a new token");
    for n in 1..=handed_out {
        watch.add_secret(token_number(n));
        watch.add_secret(format!("BEARER-SECRET-SIGNATURE-{n}"));
    }
    watch.assert_clean_with_logs();
}
