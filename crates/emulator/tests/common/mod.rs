//! Helpers shared by the integration tests: an HTTP client, form posts, JWT inspection and
//! client assertions built the way Microsoft's SDKs build them.

// Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use d365_emulator::SeededCertificateApp;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use secrecy::ExposeSecret as _;
use serde_json::{Value, json};

pub(crate) fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("reqwest client")
}

pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Value,
}

pub(crate) async fn post_form(client: &reqwest::Client, url: &str, form: &[(&str, &str)]) -> Reply {
    send(client.post(url).form(form)).await
}

pub(crate) async fn send(request: reqwest::RequestBuilder) -> Reply {
    let response = request.send().await.expect("request sent");
    let status = response.status();
    let headers = response.headers().clone();
    let text = response.text().await.expect("body");
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Reply {
        status,
        headers,
        body,
    }
}

fn part(jwt: &str, index: usize) -> Value {
    let segment = jwt.split('.').nth(index).expect("JWT part");
    let bytes = URL_SAFE_NO_PAD.decode(segment).expect("base64url");
    serde_json::from_slice(&bytes).expect("JSON")
}

/// The payload of a JWT, unverified.
pub(crate) fn claims(jwt: &str) -> Value {
    part(jwt, 1)
}

/// The JOSE header of a JWT.
pub(crate) fn header(jwt: &str) -> Value {
    part(jwt, 0)
}

pub(crate) fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
        .try_into()
        .expect("fits")
}

/// Which thumbprint header the assertion carries.
#[derive(Clone, Copy)]
pub(crate) enum Thumbprint {
    Sha1,
    Sha256,
}

/// A client assertion for `app` with `aud` = `audience`, valid for five minutes; `adjust`
/// may change any claim before signing.
pub(crate) fn assertion(
    app: &SeededCertificateApp,
    audience: &str,
    alg: Algorithm,
    thumbprint: Thumbprint,
    adjust: impl FnOnce(&mut Value),
) -> String {
    let mut header = Header::new(alg);
    header.typ = Some("JWT".into());
    match thumbprint {
        Thumbprint::Sha1 => header.x5t = Some(app.x5t.clone()),
        Thumbprint::Sha256 => header.x5t_s256 = Some(app.x5t_s256.clone()),
    }
    let now = now();
    let mut claims = json!({
        "aud": audience,
        "iss": app.client_id,
        "sub": app.client_id,
        "jti": uuid::Uuid::new_v4().to_string(),
        "nbf": now,
        "iat": now,
        "exp": now + 300,
    });
    adjust(&mut claims);
    let key = EncodingKey::from_rsa_pem(app.private_key_pem.expose_secret().as_bytes())
        .expect("PKCS#8 key");
    jsonwebtoken::encode(&header, &claims, &key).expect("signed")
}
