//! The loopback redirect listener (RFC 8252 §7.3): it listens on `127.0.0.1` (and `[::1]`
//! on the same port when it can, for browsers that try IPv6 for `localhost` first), takes
//! the browser's redirect with the code or the error, answers with a page the person can
//! read, and hands the result to the sign-in — only when its `state` is this sign-in's.
//!
//! Every connection is read with a size cap and a deadline, and several at once, so a
//! browser's speculative connections or a stray request cannot hold the real redirect up.

use std::collections::HashMap;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use d365_auth_core::AuthError;
use secrecy::SecretString;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;

use crate::pages;

/// The most a request's head (request line and headers) may take.
const MAX_HEAD: usize = 16 * 1024;
/// The most a `form_post` body may take.
const MAX_BODY: usize = 16 * 1024;
/// How long one connection may take to send its request.
const READ_DEADLINE: Duration = Duration::from_secs(10);
/// Connections served at once; more wait to be accepted.
const MAX_CONNECTIONS: usize = 16;

/// What the browser brought back.
pub(crate) enum Redirect {
    /// The authorization code.
    Code(SecretString),
    /// The identity provider's refusal (`access_denied` when the person cancelled).
    Error {
        error: String,
        description: Option<String>,
    },
}

/// A bound listener and the redirect URI that reaches it.
pub(crate) struct Listener {
    v4: TcpListener,
    v6: Option<TcpListener>,
    redirect_uri: String,
    path: String,
}

impl Listener {
    /// Binds `127.0.0.1:port` (0: any free port) and, best effort, `[::1]` on the same
    /// port; the redirect URI names `localhost`, as Entra ID's app registrations accept
    /// for public clients (its port is ignored when matching) and MSAL sends.
    pub(crate) async fn bind(port: u16, path: &str) -> Result<Self, AuthError> {
        let v4 = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, port)))
            .await
            .map_err(|error| {
                AuthError::credential(
                    format!("the sign-in could not listen on 127.0.0.1:{port} for the browser's redirect ({error})"),
                    Some(Box::new(error)),
                )
            })?;
        let port = v4
            .local_addr()
            .map_err(|error| {
                AuthError::credential(
                    "the redirect listener has no address",
                    Some(Box::new(error)),
                )
            })?
            .port();
        let v6 = TcpListener::bind(SocketAddr::from((Ipv6Addr::LOCALHOST, port)))
            .await
            .ok();
        Ok(Self {
            v4,
            v6,
            redirect_uri: format!("http://localhost:{port}{path}"),
            path: path.to_owned(),
        })
    }

    /// The redirect URI to send (`http://localhost:{port}{path}`).
    pub(crate) fn redirect_uri(&self) -> &str {
        &self.redirect_uri
    }

    /// Serves connections until a redirect with `state` arrives; the caller bounds how long.
    pub(crate) async fn wait(&self, state: &str) -> Result<Redirect, AuthError> {
        let (sender, mut receiver) = mpsc::channel::<Redirect>(1);
        let expected = Arc::new(Expected {
            state: state.to_owned(),
            path: self.path.clone(),
        });
        let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
        // Dropping the set (when the sign-in ends, or its future is dropped) aborts every
        // connection still being served.
        let mut connections = JoinSet::new();
        loop {
            let permit = Arc::clone(&permits)
                .acquire_owned()
                .await
                .map_err(|_| AuthError::credential("the redirect listener stopped", None))?;
            let accepted = tokio::select! {
                redirect = receiver.recv() => {
                    return redirect.ok_or_else(|| AuthError::credential("the redirect listener stopped", None));
                }
                accepted = self.v4.accept() => accepted,
                accepted = accept(self.v6.as_ref()) => accepted,
            };
            let Ok((stream, _)) = accepted else {
                // A connection that failed before it was accepted; keep listening.
                continue;
            };
            let expected = Arc::clone(&expected);
            let sender = sender.clone();
            connections.spawn(async move {
                let _permit = permit;
                if let Ok(Some(redirect)) =
                    tokio::time::timeout(READ_DEADLINE, serve(stream, &expected)).await
                {
                    let _ = sender.try_send(redirect);
                }
            });
            // Reap finished connections so the set does not grow with stray requests.
            while connections.try_join_next().is_some() {}
        }
    }
}

async fn accept(listener: Option<&TcpListener>) -> std::io::Result<(TcpStream, SocketAddr)> {
    match listener {
        Some(listener) => listener.accept().await,
        None => std::future::pending().await,
    }
}

/// What a redirect must match.
struct Expected {
    state: String,
    path: String,
}

/// Serves one connection: the redirect, answered with a page and returned; anything else
/// answered with a short page and dropped.
async fn serve(mut stream: TcpStream, expected: &Expected) -> Option<Redirect> {
    let request = match read_request(&mut stream).await {
        Ok(request) => request,
        Err(status) => {
            let _ = respond(
                &mut stream,
                status,
                &pages::not_this("the request could not be read"),
            )
            .await;
            return None;
        }
    };
    if request.path != expected.path {
        let _ = respond(&mut stream, 404, &pages::not_this("there is nothing here")).await;
        return None;
    }
    let fields = request.fields;
    if fields.get("state").map(String::as_str) != Some(expected.state.as_str()) {
        // A redirect of another sign-in, or a forged one: it must not end this one.
        let _ = respond(
            &mut stream,
            400,
            &pages::not_this("this answer belongs to another sign-in (its state does not match)"),
        )
        .await;
        return None;
    }
    let redirect = if let Some(code) = fields.get("code").filter(|code| !code.is_empty()) {
        Redirect::Code(SecretString::from(code.clone()))
    } else if let Some(error) = fields.get("error") {
        Redirect::Error {
            error: error.clone(),
            description: fields.get("error_description").cloned(),
        }
    } else {
        let _ = respond(
            &mut stream,
            400,
            &pages::not_this("the answer has neither a code nor an error"),
        )
        .await;
        return None;
    };
    let page = match &redirect {
        Redirect::Code(_) => pages::signed_in(),
        Redirect::Error { error, description } => pages::refused(error, description.as_deref()),
    };
    let _ = respond(&mut stream, 200, &page).await;
    Some(redirect)
}

/// A request's path and its fields (query, or `form_post` body).
struct Request {
    path: String,
    fields: HashMap<String, String>,
}

/// Reads a request head (and a form body) with the caps; `Err` is the status to answer.
async fn read_request(stream: &mut TcpStream) -> Result<Request, u16> {
    let mut buffer = Vec::with_capacity(2048);
    let head_end = loop {
        if let Some(end) = find(&buffer, b"\r\n\r\n") {
            break end;
        }
        if buffer.len() > MAX_HEAD {
            return Err(431);
        }
        let mut chunk = [0_u8; 2048];
        let read = stream.read(&mut chunk).await.map_err(|_| 400_u16)?;
        if read == 0 {
            return Err(400);
        }
        buffer.extend_from_slice(&chunk[..read]);
    };
    let head = std::str::from_utf8(&buffer[..head_end]).map_err(|_| 400_u16)?;
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next().unwrap_or_default().split(' ');
    let method = request_line.next().unwrap_or_default();
    let target = request_line.next().unwrap_or_default();
    let url = url::Url::parse("http://localhost")
        .and_then(|base| base.join(target))
        .map_err(|_| 400_u16)?;
    let mut fields: HashMap<String, String> = url.query_pairs().into_owned().collect();
    match method {
        "GET" => {}
        "POST" => {
            let length = lines
                .filter_map(|line| line.split_once(':'))
                .find(|(name, _)| name.trim().eq_ignore_ascii_case("content-length"))
                .and_then(|(_, value)| value.trim().parse::<usize>().ok())
                .ok_or(411_u16)?;
            if length > MAX_BODY {
                return Err(413);
            }
            let mut body = buffer[head_end + 4..].to_vec();
            while body.len() < length {
                let mut chunk = [0_u8; 2048];
                let read = stream.read(&mut chunk).await.map_err(|_| 400_u16)?;
                if read == 0 {
                    return Err(400);
                }
                body.extend_from_slice(&chunk[..read]);
            }
            body.truncate(length);
            fields.extend(url::form_urlencoded::parse(&body).into_owned());
        }
        _ => return Err(405),
    }
    Ok(Request {
        path: url.path().to_owned(),
        fields,
    })
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

/// Writes a complete HTML response and closes.
async fn respond(stream: &mut TcpStream, status: u16, page: &str) -> std::io::Result<()> {
    let reason = match status {
        200 => "OK",
        404 => "Not Found",
        405 => "Method Not Allowed",
        411 => "Length Required",
        413 => "Content Too Large",
        431 => "Request Header Fields Too Large",
        _ => "Bad Request",
    };
    let response = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\nCache-Control: no-store\r\nReferrer-Policy: no-referrer\r\nX-Content-Type-Options: nosniff\r\nConnection: close\r\n\r\n{page}",
        page.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}
