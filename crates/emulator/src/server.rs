//! The server's wiring: the router that assembles the identity endpoints, the Web API (behind
//! fault injection) and the admin API, and the accept loop that serves it over HTTP/1.1,
//! with TLS when the emulator runs https.

use std::sync::Arc;

use axum::Router;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

use crate::dataverse::faults;
use crate::dataverse::{self, DvState};
use crate::state::AppState;
use crate::{admin, identity};

/// The whole HTTP surface: the identity endpoints and the Web API behind fault injection,
/// and the admin API beside them (never faulted).
pub(crate) fn router(state: Arc<AppState>, dv: Arc<DvState>) -> Router {
    let identity = if state.on_premises.is_some() {
        identity::routes().merge(identity::adfs_routes())
    } else {
        identity::routes()
    };
    let public = Router::new()
        .merge(identity)
        .fallback(identity::user_realm_fallback)
        .with_state(Arc::clone(&state))
        .merge(dataverse::routes(Arc::clone(&dv)))
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&dv),
            faults::layer,
        ));
    Router::new()
        .nest("/_emulator", admin::routes(state, dv))
        .merge(public)
}

/// Which TCP connection a request came on: Windows sign-in (NTLM) proves a connection, not
/// a request. Every request carries it as an extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct ConnectionId(pub(crate) u64);

/// Accepts connections until `stopped` fires, serving each on its own task (after the TLS
/// handshake with `tls`).
pub(crate) async fn serve(
    listener: TcpListener,
    router: Router,
    tls: Option<TlsAcceptor>,
    mut stopped: oneshot::Receiver<()>,
) {
    // Dropping the set on the way out aborts open connections: shutdown is immediate.
    let mut connections = JoinSet::new();
    let mut next_connection = 0_u64;
    loop {
        tokio::select! {
            _ = &mut stopped => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(accepted) => accepted,
                    Err(err) => {
                        tracing::warn!(%err, "accept failed");
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                next_connection += 1;
                let service = TowerToHyperService::new(
                    router.clone().layer(axum::Extension(ConnectionId(next_connection))),
                );
                let tls = tls.clone();
                connections.spawn(async move {
                    let http = hyper::server::conn::http1::Builder::new();
                    let result = match tls {
                        Some(acceptor) => match acceptor.accept(stream).await {
                            Ok(stream) => http.serve_connection(TokioIo::new(stream), service).await,
                            Err(err) => {
                                tracing::debug!(%peer, %err, "TLS handshake failed");
                                return;
                            }
                        },
                        None => http.serve_connection(TokioIo::new(stream), service).await,
                    };
                    if let Err(err) = result {
                        tracing::debug!(%peer, %err, "connection ended with an error");
                    }
                });
            }
        }
    }
    tracing::info!("d365 emulator stopped");
}
