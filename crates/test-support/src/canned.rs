//! The loopback HTTP server the grant and client tests share: each request is answered
//! with what a handler returns for it (a fixed sequence is one such handler), every
//! request is recorded, and the Entra ID answers tests need (tokens, AADSTS errors, user
//! realm) have constructors.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// One canned answer.
#[derive(Clone, Debug)]
pub struct Canned {
    /// The HTTP status.
    pub status: u16,
    /// The headers, `content-type` first.
    pub headers: Vec<(&'static str, String)>,
    /// The body.
    pub body: Vec<u8>,
    /// Never answer (for timeouts).
    pub hang: bool,
    /// Close the connection without answering (a network failure).
    pub drop: bool,
    /// Send the status line and headers, announce a longer body than is sent, and close
    /// half-way (a connection cut mid-body).
    pub cut: bool,
}

impl Canned {
    /// A JSON answer.
    pub fn json(status: u16, body: impl AsRef<str>) -> Self {
        Self::with_type(status, "application/json; charset=utf-8", body.as_ref())
    }

    /// An answer with this content type.
    pub fn with_type(status: u16, content_type: &str, body: &str) -> Self {
        Self {
            status,
            headers: vec![("content-type", content_type.to_owned())],
            body: body.as_bytes().to_vec(),
            hang: false,
            drop: false,
            cut: false,
        }
    }

    /// This answer with one more header.
    pub fn header(mut self, name: &'static str, value: &str) -> Self {
        self.headers.push((name, value.to_owned()));
        self
    }

    /// No answer for 30 seconds (for timeouts).
    pub fn hang() -> Self {
        Self {
            hang: true,
            ..Self::with_type(200, "text/plain", "")
        }
    }

    /// The connection closed without an answer.
    pub fn drop_connection() -> Self {
        Self {
            drop: true,
            ..Self::with_type(200, "text/plain", "")
        }
    }

    /// This answer, cut mid-body.
    pub fn cut(mut self) -> Self {
        self.cut = true;
        self
    }

    /// A 404 HTML page, as a wrong URL gets.
    pub fn not_found() -> Self {
        Self::with_type(404, "text/html", "<html><title>Not Found</title></html>")
    }

    /// A token response with an access token, an optional refresh token and a lifetime.
    pub fn token(access: &str, refresh: Option<&str>, expires_in: u64) -> Self {
        let refresh = refresh
            .map(|refresh| format!(r#","refresh_token":"{refresh}""#))
            .unwrap_or_default();
        Self::json(
            200,
            format!(
                r#"{{"token_type":"Bearer","scope":"https://contoso.crm.dynamics.com/user_impersonation","expires_in":{expires_in},"ext_expires_in":{expires_in},"access_token":"{access}"{refresh}}}"#
            ),
        )
    }

    /// An Entra error with an AADSTS code, as the token endpoint sends it.
    pub fn entra_error(status: u16, error: &str, code: u32, text: &str) -> Self {
        Self::json(
            status,
            format!(
                r#"{{"error":"{error}","error_description":"AADSTS{code}: {text}\r\nTrace ID: 0000aaaa-0000-0000-0000-000000000001\r\nCorrelation ID: 0000bbbb-0000-0000-0000-000000000002\r\nTimestamp: 2026-01-01 00:00:00Z","error_codes":[{code}],"timestamp":"2026-01-01 00:00:00Z","trace_id":"0000aaaa-0000-0000-0000-000000000001","correlation_id":"0000bbbb-0000-0000-0000-000000000002"}}"#
            ),
        )
    }

    /// A user realm answer.
    pub fn realm(account_type: &str) -> Self {
        let federation = if account_type == "Federated" {
            r#","federation_protocol":"WSTrust","federation_metadata_url":"https://sts.contoso.com/adfs/services/trust/mex","federation_active_auth_url":"https://sts.contoso.com/adfs/services/trust/2005/usernamemixed""#
        } else {
            ""
        };
        Self::json(
            200,
            format!(
                r#"{{"ver":"1.0","account_type":"{account_type}","domain_name":"contoso.com","cloud_instance_name":"microsoftonline.com","cloud_audience_urn":"urn:federation:MicrosoftOnline"{federation}}}"#
            ),
        )
    }
}

/// A request as the server saw it.
#[derive(Clone, Debug)]
pub struct Captured {
    /// The method.
    pub method: String,
    /// The path and query, as sent.
    pub target: String,
    /// The headers, names in lower case.
    pub headers: Vec<(String, String)>,
    /// The body, as text.
    pub body: String,
}

impl Captured {
    /// The header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// The path without the query.
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or_default()
    }

    /// The form body as pairs, decoded.
    pub fn form(&self) -> Vec<(String, String)> {
        url::form_urlencoded::parse(self.body.as_bytes())
            .into_owned()
            .collect()
    }

    /// The form field `name`, decoded.
    pub fn field(&self, name: &str) -> Option<String> {
        self.form()
            .into_iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value)
    }

    /// The form's `grant_type`.
    pub fn grant_type(&self) -> Option<String> {
        self.field("grant_type")
    }

    /// Whether this is a user realm request (`/common/userrealm/…`).
    pub fn is_realm(&self) -> bool {
        self.path()
            .to_ascii_lowercase()
            .contains("/common/userrealm/")
    }
}

type Handler = dyn Fn(&Captured, usize) -> Canned + Send + Sync;

/// A loopback server answering with a handler.
pub struct Server {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    captured: Arc<Mutex<Vec<Captured>>>,
}

impl Server {
    /// Answers every request with `handler(request, number of earlier requests of the same
    /// kind)` — the same grant type, or realm calls — so a handler can hand out a new token
    /// per refresh.
    pub async fn start(
        handler: impl Fn(&Captured, usize) -> Canned + Send + Sync + 'static,
    ) -> Self {
        let handler: Arc<Handler> = Arc::new(handler);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let captured = Arc::new(Mutex::new(Vec::<Captured>::new()));
        let log = Arc::clone(&captured);
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let log = Arc::clone(&log);
                let handler = Arc::clone(&handler);
                tokio::spawn(async move {
                    let Some(request) = read_request(&mut stream).await else {
                        return;
                    };
                    let canned = {
                        let mut log = log.lock().unwrap();
                        let earlier = log
                            .iter()
                            .filter(|seen| {
                                seen.is_realm() == request.is_realm()
                                    && seen.grant_type() == request.grant_type()
                            })
                            .count();
                        log.push(request.clone());
                        handler(&request, earlier)
                    };
                    respond(&mut stream, &canned).await;
                });
            }
        });
        Self { base, captured }
    }

    /// A server whose realm endpoint says "Managed" and whose token endpoint answers with
    /// `token`.
    pub async fn managed(
        token: impl Fn(&Captured, usize) -> Canned + Send + Sync + 'static,
    ) -> Self {
        Self::start(move |request, earlier| {
            if request.is_realm() {
                Canned::realm("Managed")
            } else {
                token(request, earlier)
            }
        })
        .await
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<Captured> {
        self.captured.lock().unwrap().clone()
    }

    /// Every request but user realm requests.
    pub fn token_requests(&self) -> Vec<Captured> {
        self.requests()
            .into_iter()
            .filter(|request| !request.is_realm())
            .collect()
    }

    /// The user realm requests.
    pub fn realm_requests(&self) -> Vec<Captured> {
        self.requests()
            .into_iter()
            .filter(Captured::is_realm)
            .collect()
    }

    /// How many token requests had this `grant_type`.
    pub fn count(&self, grant_type: &str) -> usize {
        self.token_requests()
            .iter()
            .filter(|request| request.grant_type().as_deref() == Some(grant_type))
            .count()
    }
}

/// A server answering requests in order with `responses`, repeating the last one.
pub struct CannedServer(Server);

impl CannedServer {
    /// Starts a server answering `responses` in order, repeating the last.
    pub async fn start(responses: Vec<Canned>) -> Self {
        let next = std::sync::atomic::AtomicUsize::new(0);
        Self(
            Server::start(move |_, _| {
                let index = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                responses[index.min(responses.len() - 1)].clone()
            })
            .await,
        )
    }
}

impl std::ops::Deref for CannedServer {
    type Target = Server;

    fn deref(&self) -> &Server {
        &self.0
    }
}

async fn respond(stream: &mut tokio::net::TcpStream, canned: &Canned) {
    if canned.drop {
        return;
    }
    if canned.hang {
        tokio::time::sleep(Duration::from_secs(30)).await;
        return;
    }
    let announced = canned.body.len() + if canned.cut { 1024 } else { 0 };
    let mut head = format!(
        "HTTP/1.1 {} X\r\ncontent-length: {announced}\r\nconnection: close\r\n",
        canned.status,
    );
    for (name, value) in &canned.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    let _ = stream.write_all(head.as_bytes()).await;
    let sent = if canned.cut {
        &canned.body[..canned.body.len() / 2]
    } else {
        &canned.body[..]
    };
    let _ = stream.write_all(sent).await;
    let _ = stream.shutdown().await;
}

async fn read_request(stream: &mut tokio::net::TcpStream) -> Option<Captured> {
    let mut buffer = Vec::new();
    let mut chunk = [0_u8; 4096];
    let head_end = loop {
        let read = stream.read(&mut chunk).await.ok()?;
        if read == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..read]);
        if let Some(position) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break position + 4;
        }
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).to_string();
    let mut lines = head.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let method = first.next()?.to_owned();
    let target = first.next()?.to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        .collect();
    let length: usize = headers
        .iter()
        .find(|(name, _)| name == "content-length")
        .and_then(|(_, value)| value.parse().ok())
        .unwrap_or(0);
    while buffer.len() < head_end + length {
        let read = stream.read(&mut chunk).await.ok()?;
        if read == 0 {
            break;
        }
        buffer.extend_from_slice(&chunk[..read]);
    }
    let body = String::from_utf8_lossy(&buffer[head_end..]).to_string();
    Some(Captured {
        method,
        target,
        headers,
        body,
    })
}
