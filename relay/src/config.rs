//! Command line and environment: where to listen, which database, and the relay's own limits.

use std::net::SocketAddr;

use clap::Parser;

#[derive(Parser, Debug, Clone)]
#[command(name = "buzz-relay", version, about = "A thin Nostr relay over the buzz_tenancy extension")]
pub struct Args {
    /// Address for WebSocket, NIP-11 and /metrics.
    #[arg(long, env = "BUZZ_RELAY_LISTEN", default_value = "127.0.0.1:7447")]
    pub listen: SocketAddr,
    /// PostgreSQL, as a role set up by `buzz.setup_relay_role` (may point at PgBouncer in
    /// transaction pooling mode).
    #[arg(long, env = "BUZZ_RELAY_DATABASE_URL")]
    pub database_url: String,
    /// A direct connection for the wake-up `LISTEN` (a pooler in transaction mode cannot keep
    /// one). Defaults to --database-url.
    #[arg(long, env = "BUZZ_RELAY_LISTEN_DATABASE_URL")]
    pub listen_database_url: Option<String>,
    /// Connections in the pool.
    #[arg(long, env = "BUZZ_RELAY_POOL_SIZE", default_value_t = 16)]
    pub pool_size: usize,
    /// Largest WebSocket message accepted; a larger one is answered `frame-too-large:` and the
    /// connection closed.
    #[arg(long, env = "BUZZ_RELAY_MAX_FRAME_BYTES", default_value_t = 131_072)]
    pub max_frame_bytes: usize,
    /// Open subscriptions per connection.
    #[arg(long, env = "BUZZ_RELAY_MAX_SUBSCRIPTIONS", default_value_t = 32)]
    pub max_subscriptions: usize,
    /// Filters per REQ or COUNT.
    #[arg(long, env = "BUZZ_RELAY_MAX_FILTERS", default_value_t = 10)]
    pub max_filters: usize,
    /// Messages queued for one client; a client that lets it fill is disconnected.
    #[arg(long, env = "BUZZ_RELAY_OUTBOUND_QUEUE", default_value_t = 1024)]
    pub outbound_queue: usize,
    /// Seconds between polls of a connection's subscriptions without a wake-up (a missed
    /// notification, an expired session).
    #[arg(long, env = "BUZZ_RELAY_POLL_INTERVAL", default_value_t = 10)]
    pub poll_interval: u64,
    /// Seconds given to open connections to close on shutdown.
    #[arg(long, env = "BUZZ_RELAY_DRAIN_SECS", default_value_t = 5)]
    pub drain_secs: u64,
    /// Log as JSON lines (default: human-readable).
    #[arg(long, env = "BUZZ_RELAY_LOG_JSON")]
    pub log_json: bool,
}
