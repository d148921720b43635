//! The loopback listener against what else may knock on its port while a person signs in:
//! a favicon request, a connection that never speaks, an oversized request, another path.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use d365_auth_authorization_code::{AuthorizationCode, SignInUrl};
use d365_auth_core::{TokenProvider, TokenRequest};

use crate::support::{CODE, Idp};

/// A raw request to the listener; its status line.
fn raw(port: u16, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(15)))
        .unwrap();
    let _ = stream.write_all(request);
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer.lines().next().unwrap_or_default().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stray_and_hostile_requests_do_not_end_or_block_the_sign_in() {
    let idp = Idp::start(None).await;
    let statuses = Arc::new(Mutex::new(Vec::new()));
    let record = Arc::clone(&statuses);
    let seen = Arc::clone(&idp.seen);
    let grant = AuthorizationCode::builder()
        .authority_host(&idp.server.base)
        .tenant("11111111-2222-3333-4444-555555555555")
        .client_id("c1")
        .open_browser(false)
        .sign_in_timeout(Duration::from_secs(30))
        .on_sign_in_url(move |sign_in: &SignInUrl| {
            // The fake identity provider puts this nonce in the ID token.
            seen.lock().unwrap().authorize = sign_in.url.query_pairs().into_owned().collect();
            let port = url::Url::parse(&sign_in.redirect_uri)
                .unwrap()
                .port()
                .unwrap();
            let state: String = sign_in
                .url
                .query_pairs()
                .find(|(key, _)| key == "state")
                .map(|(_, value)| value.into_owned())
                .unwrap();
            let record = Arc::clone(&record);
            std::thread::spawn(move || {
                // A connection that never sends a byte must not hold the others up.
                let _silent = TcpStream::connect(("127.0.0.1", port)).unwrap();
                let mut seen = record.lock().unwrap();
                seen.push(raw(
                    port,
                    b"GET /favicon.ico HTTP/1.1\r\nHost: localhost\r\n\r\n",
                ));
                let mut huge = b"GET /?x=".to_vec();
                huge.extend(std::iter::repeat_n(b'a', 40 * 1024));
                huge.extend_from_slice(b" HTTP/1.1\r\n\r\n");
                seen.push(raw(port, &huge));
                seen.push(raw(port, b"DELETE / HTTP/1.1\r\n\r\n"));
                seen.push(raw(port, b"GET /?state=wrong&code=x HTTP/1.1\r\n\r\n"));
                seen.push(raw(
                    port,
                    format!("GET /?code={CODE}&state={state} HTTP/1.1\r\nHost: localhost\r\n\r\n")
                        .as_bytes(),
                ));
            });
        })
        .build()
        .unwrap();
    let request = TokenRequest::for_url("https://contoso.crm.dynamics.com").unwrap();
    grant.request_token(&request).await.unwrap();
    let statuses = statuses.lock().unwrap().clone();
    assert_eq!(
        statuses,
        [
            "HTTP/1.1 404 Not Found",
            "HTTP/1.1 431 Request Header Fields Too Large",
            "HTTP/1.1 405 Method Not Allowed",
            "HTTP/1.1 400 Bad Request",
            "HTTP/1.1 200 OK",
        ]
    );
}
