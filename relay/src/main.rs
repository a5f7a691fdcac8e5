//! buzz-relay: a thin Nostr relay over the buzz_tenancy extension.
//!
//! It holds no tenancy logic: the Host header goes to `buzz.enter` as received, every answer
//! comes from the extension under the connection's own context, and the messages a client
//! sees are the extension's catalog. See relay/README.md.

mod config;
mod db;
mod limits;
mod listener;
mod metrics;
mod polls;
mod session;
mod wake;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ws::WebSocketUpgrade, ConnectInfo, FromRequestParts, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use clap::Parser;
use tokio::sync::watch;

pub struct App {
    pub args: config::Args,
    pub db: db::Db,
    pub wake: wake::Wake,
    pub polls: polls::Polls,
    pub metrics: Arc<metrics::Metrics>,
    pub shutdown: watch::Receiver<bool>,
}

/// The longest host passed on: a DNS name (253) and a port. A longer one cannot name a
/// community; it is refused before it costs memory (the NIP-11 cache) or a database call.
const MAX_HOST: usize = 253 + 6;

/// The host the client asked for, as received: `Host`, or HTTP/2's `:authority`.
fn host_of(req: &Request) -> Option<String> {
    req.headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_owned)
        .or_else(|| req.uri().authority().map(|a| a.as_str().to_owned()))
        .filter(|h| h.len() <= MAX_HOST)
}

fn wants_nip11(headers: &HeaderMap) -> bool {
    headers.get(header::ACCEPT).and_then(|a| a.to_str().ok()).is_some_and(|a| a.contains("application/nostr+json"))
}

/// `GET /`: a WebSocket upgrade, or the NIP-11 document of the host.
async fn root(State(app): State<Arc<App>>, req: Request) -> Response {
    let Some(host) = host_of(&req) else { return StatusCode::BAD_REQUEST.into_response() };
    let nip11 = wants_nip11(req.headers());
    let Some(ConnectInfo(peer)) = req.extensions().get::<ConnectInfo<listener::Peer>>().cloned() else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let (mut parts, _) = req.into_parts();
    // Whatever asks the database waits for one of its address's turns.
    let wait = Duration::from_secs(app.args.pool_wait_timeout.max(1));
    match WebSocketUpgrade::from_request_parts(&mut parts, &app).await {
        Ok(upgrade) => {
            let Ok(turn) = peer.share.turn(wait).await else { return StatusCode::SERVICE_UNAVAILABLE.into_response() };
            // The challenge is also how an unknown host is found out, before the upgrade.
            let challenge = match turn.run(app.db.challenge(&host), || Err(app.db.message("relay_unavailable"))).await {
                Ok(c) => c,
                Err(r) if r.0.starts_with("error:") => return StatusCode::SERVICE_UNAVAILABLE.into_response(),
                Err(_) => return StatusCode::NOT_FOUND.into_response(),
            };
            drop(turn);
            peer.upgraded();
            let share = peer.share.clone();
            upgrade
                .max_message_size(app.args.max_frame_bytes)
                .max_frame_size(app.args.max_frame_bytes)
                .on_upgrade(move |ws| session::serve(ws, host, challenge, share, app))
        }
        Err(_) if nip11 => match nip11_doc(&app, &peer, &host, wait).await {
            Ok(Some(doc)) => (
                [(header::CONTENT_TYPE, "application/nostr+json"), (header::ACCESS_CONTROL_ALLOW_ORIGIN, "*")],
                doc,
            )
                .into_response(),
            Ok(None) => StatusCode::NOT_FOUND.into_response(),
            Err(_) => StatusCode::SERVICE_UNAVAILABLE.into_response(),
        },
        // Nothing else is served here (and nothing the relay would have to make up a text for).
        Err(_) => StatusCode::UPGRADE_REQUIRED.into_response(),
    }
}

/// The host's NIP-11 document, in one of the address's turns.
async fn nip11_doc(app: &App, peer: &listener::Peer, host: &str, wait: Duration) -> Result<Option<String>, db::Refusal> {
    let Ok(turn) = peer.share.turn(wait).await else { return Err(app.db.message("relay_unavailable")) };
    turn.run(app.db.relay_info(host), || Err(app.db.message("relay_unavailable"))).await
}

async fn metrics_text(State(metrics): State<Arc<metrics::Metrics>>) -> Response {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], metrics.render()).into_response()
}

async fn bind(addr: SocketAddr, what: &str) -> tokio::net::TcpListener {
    tokio::net::TcpListener::bind(addr).await.unwrap_or_else(|e| {
        tracing::error!(error = %e, %addr, "cannot listen for {what}");
        std::process::exit(1);
    })
}

#[tokio::main]
async fn main() {
    let args = config::Args::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    if args.log_json {
        tracing_subscriber::fmt().json().with_env_filter(filter).init();
    } else {
        tracing_subscriber::fmt().with_env_filter(filter).init();
    }
    let metrics = Arc::new(metrics::Metrics::default());
    let db = loop {
        match db::Db::connect(&args.database_url, args.pool_size, Duration::from_secs(args.pool_wait_timeout.max(1)), args.max_answer_bytes, args.statement_timeout_ms, metrics.clone()).await {
            Ok(db) => break db,
            Err(e) => {
                tracing::warn!(error = %e, "database not ready; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    };
    let wake = wake::Wake::start(args.listen_database_url.clone().unwrap_or_else(|| args.database_url.clone()), metrics.clone());
    let (stop, shutdown) = watch::channel(false);
    let listen = args.listen;
    let drain = Duration::from_secs(args.drain_secs);
    // The process's counters are every community's together: never on the public port.
    if let Some(addr) = args.metrics_listen {
        let listener = bind(addr, "metrics").await;
        let router = Router::new().route("/metrics", get(metrics_text)).with_state(metrics.clone());
        tokio::spawn(async move { axum::serve(listener, router).await });
        tracing::info!(%addr, "metrics listening");
    }
    // Per-address limits are taken at accept, before the socket is read.
    let policy = limits::Policy {
        max_open: args.max_connections_per_ip,
        rate: args.connect_rate_per_ip,
        burst: args.connect_burst_per_ip.max(1.0),
        max_busy: args.max_requests_per_ip,
        max_queued: args.outbound_bytes_per_ip,
        db_rate: args.db_seconds_per_ip,
        db_burst: args.db_burst_seconds_per_ip,
        auth_rate: args.auth_per_ip,
        auth_burst: args.auth_burst_per_ip,
    };
    let listener = listener::Gate {
        tcp: bind(listen, "clients").await,
        per_ip: limits::PerIp::new(policy, args.pool_size),
        metrics: metrics.clone(),
        handshake: Duration::from_secs(args.handshake_timeout.max(1)),
        send_buffer: args.socket_send_buffer_bytes,
    };
    let app = Arc::new(App { args, db, wake, polls: polls::Polls::default(), metrics, shutdown });
    let router = Router::new().route("/", get(root)).with_state(app.clone());
    tracing::info!(%listen, "buzz-relay listening");
    let signal = async move {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        tracing::info!("shutting down: closing subscriptions");
        let _ = stop.send(true);
    };
    let server = axum::serve(listener, router.into_make_service_with_connect_info::<listener::Peer>()).with_graceful_shutdown(signal);
    if let Err(e) = server.await {
        tracing::error!(error = %e, "server failed");
    }
    // Upgraded connections are not the server's to wait for: give them the drain time.
    let deadline = tokio::time::Instant::now() + drain;
    while app.metrics.connections.load(std::sync::atomic::Ordering::Relaxed) > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tracing::info!("stopped");
}
