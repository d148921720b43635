//! Helpers shared by the integration tests: an HTTP client, form posts, JWT inspection,
//! client assertions built the way Microsoft's SDKs build them, and finding the third-party
//! clients the interop tests drive.

use std::path::PathBuf;

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

/// An app-only access token for the emulator's own organization URL.
pub(crate) async fn app_token(
    emulator: &d365_emulator::Emulator,
    client_id: &str,
    secret: &str,
) -> String {
    let scope = format!("{}/.default", emulator.base_url());
    let reply = post_form(
        &client(),
        &emulator.token_endpoint_v2(),
        &[
            ("grant_type", "client_credentials"),
            ("client_id", client_id),
            ("client_secret", secret),
            ("scope", scope.as_str()),
        ],
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.body["access_token"]
        .as_str()
        .expect("token")
        .to_owned()
}

/// The seeded confidential app's token (a System Administrator).
pub(crate) async fn admin_token(emulator: &d365_emulator::Emulator) -> String {
    let app = &emulator.seeded().expect("seeded").confidential_app;
    app_token(emulator, &app.client_id, app.secret.expose_secret()).await
}

/// A Web API client: absolute or service-root-relative URLs, a bearer token, OData headers.
pub(crate) struct Api {
    pub(crate) http: reqwest::Client,
    pub(crate) root: String,
    pub(crate) token: String,
}

impl Api {
    pub(crate) async fn new(emulator: &d365_emulator::Emulator) -> Self {
        Self {
            http: client(),
            root: emulator.web_api_url(),
            token: admin_token(emulator).await,
        }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        if path.starts_with("http") {
            path.to_owned()
        } else {
            format!("{}{path}", self.root)
        }
    }

    pub(crate) fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, self.url(path))
            .bearer_auth(&self.token)
            .header("Accept", "application/json")
            .header("OData-MaxVersion", "4.0")
            .header("OData-Version", "4.0")
    }

    pub(crate) async fn get(&self, path: &str) -> Reply {
        send(self.request(reqwest::Method::GET, path)).await
    }

    pub(crate) async fn post(&self, path: &str, body: &Value) -> Reply {
        send(self.request(reqwest::Method::POST, path).json(body)).await
    }

    pub(crate) async fn patch(&self, path: &str, body: &Value) -> Reply {
        send(self.request(reqwest::Method::PATCH, path).json(body)).await
    }

    pub(crate) async fn delete(&self, path: &str) -> Reply {
        send(self.request(reqwest::Method::DELETE, path)).await
    }

    /// Creates a record and returns its id (from `OData-EntityId`).
    pub(crate) async fn create(&self, set: &str, body: &Value) -> String {
        let reply = self.post(set, body).await;
        assert_eq!(reply.status, 204, "{}", reply.body);
        entity_id(&reply)
    }
}

/// The GUID in a reply's `OData-EntityId`.
pub(crate) fn entity_id(reply: &Reply) -> String {
    let url = reply.headers["OData-EntityId"].to_str().expect("header");
    let open = url.rfind('(').expect("(");
    url[open + 1..url.len() - 1].to_owned()
}

/// Asserts a Dataverse error body.
pub(crate) fn assert_error(reply: &Reply, status: u16, code: &str, message_part: &str) {
    assert_eq!(reply.status.as_u16(), status, "{}", reply.body);
    assert_eq!(reply.body["error"]["code"], code, "{}", reply.body);
    let message = reply.body["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains(message_part),
        "'{message}' lacks '{message_part}'"
    );
}

/// Where `cargo xtask test` installs the third-party clients the interop tests drive:
/// `$D365_INTEROP_DIR`, else `interop` in the target directory, found as xtask finds it
/// (`$CARGO_TARGET_DIR`, relative to the workspace root, or the workspace's `target`), so a
/// plain `cargo test` with a shared target directory finds what xtask installed there.
pub(crate) fn interop_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("D365_INTEROP_DIR") {
        return PathBuf::from(dir);
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| root.join("target"), |dir| root.join(dir));
    target.join("interop")
}

/// The interop virtualenv's Python.
pub(crate) fn interop_python() -> PathBuf {
    interop_dir().join("venv").join("bin").join("python")
}

/// Whether the interop virtualenv has the PyPI distribution `normalized` (the `.dist-info`
/// prefix pip writes: lower case, `_` for `-`), at any version: `cargo xtask test` pins it.
pub(crate) fn interop_python_has(normalized: &str) -> bool {
    let prefix = format!("{normalized}-");
    std::fs::read_dir(interop_dir().join("venv").join("lib"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|python| std::fs::read_dir(python.path().join("site-packages")).ok())
        .flatten()
        .flatten()
        .any(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            name.starts_with(&prefix) && name.ends_with(".dist-info")
        })
}

/// The `package.json` of an npm package installed in the interop npm prefix.
pub(crate) fn interop_npm_package(name: &str) -> PathBuf {
    interop_dir()
        .join("node")
        .join("node_modules")
        .join(name)
        .join("package.json")
}

/// Whether every interop client a test needs is installed. If one is missing the test fails
/// on CI (`CI=true`), where `cargo xtask test` has just installed them, so a broken install
/// can never pass as a skip; elsewhere it says why it skips and returns `false`.
// The skip notice is the one thing this test must tell a person running it locally.
#[allow(clippy::print_stderr)]
pub(crate) fn interop_clients_installed(test: &str, missing: &[(&str, bool)]) -> bool {
    let missing: Vec<&str> = missing
        .iter()
        .filter(|(_, present)| !present)
        .map(|(what, _)| *what)
        .collect();
    if missing.is_empty() {
        return true;
    }
    let message = format!(
        "{test}: {} not installed under {}; run `cargo xtask test` to install the pinned interop clients",
        missing.join(", "),
        interop_dir().display()
    );
    assert!(std::env::var("CI").as_deref() != Ok("true"), "{message}");
    eprintln!("skipping {message}");
    false
}
