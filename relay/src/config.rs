//! Command line and environment: where to listen, which database, and the relay's own limits.

use std::net::SocketAddr;

use clap::Parser;

#[derive(Parser, Debug, Clone)]
#[command(name = "buzz-relay", version, about = "A thin Nostr relay over the buzz_tenancy extension")]
pub struct Args {
    /// Address for WebSocket and NIP-11.
    #[arg(long, env = "BUZZ_RELAY_LISTEN", default_value = "127.0.0.1:7447")]
    pub listen: SocketAddr,
    /// Address for `GET /metrics` (off unless given). Keep it private: the counters are the
    /// whole process's, every community's traffic together.
    #[arg(long, env = "BUZZ_RELAY_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,
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
    /// Open subscriptions per connection (at most 512: a connection's poll is one part of a
    /// `buzz.poll_many` call, which takes 1,024 entries).
    #[arg(long, env = "BUZZ_RELAY_MAX_SUBSCRIPTIONS", default_value_t = 32,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=512))]
    pub max_subscriptions: usize,
    /// Filters per REQ or COUNT.
    #[arg(long, env = "BUZZ_RELAY_MAX_FILTERS", default_value_t = 10)]
    pub max_filters: usize,
    /// Bytes queued for one client. A full queue makes the connection wait (it reads nothing
    /// more from that client meanwhile); one that stays full for --send-timeout is closed.
    #[arg(long, env = "BUZZ_RELAY_OUTBOUND_QUEUE_BYTES", default_value_t = 1 << 20)]
    pub outbound_queue_bytes: usize,
    /// Bytes queued for one client address, all its connections together (0: no limit). A
    /// connection waits for room here as for room in its own queue.
    #[arg(long, env = "BUZZ_RELAY_OUTBOUND_BYTES_PER_IP", default_value_t = 16 << 20)]
    pub outbound_bytes_per_ip: usize,
    /// Seconds a client may leave its queue unread (a message waiting for room, or for the
    /// client to take it) before it is disconnected.
    #[arg(long, env = "BUZZ_RELAY_SEND_TIMEOUT", default_value_t = 10)]
    pub send_timeout: u64,
    /// Bytes of events one database answer (a REQ's stored events, one poll) may hold; a larger
    /// stored answer is cut short, a larger poll continues in the next one.
    #[arg(long, env = "BUZZ_RELAY_MAX_ANSWER_BYTES", default_value_t = 4 << 20,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1024..=64 << 20))]
    pub max_answer_bytes: usize,
    /// Open connections per client address (an IPv4 address, an IPv6 /64), counted from
    /// accept to close (0: no limit; behind a proxy every client has the proxy's address).
    #[arg(long, env = "BUZZ_RELAY_MAX_CONNECTIONS_PER_IP", default_value_t = 256)]
    pub max_connections_per_ip: usize,
    /// New connections per second per client address, on average (0: no limit).
    #[arg(long, env = "BUZZ_RELAY_CONNECT_RATE_PER_IP", default_value_t = 20.0)]
    pub connect_rate_per_ip: f64,
    /// New connections per client address at once, before the rate applies.
    #[arg(long, env = "BUZZ_RELAY_CONNECT_BURST_PER_IP", default_value_t = 100.0)]
    pub connect_burst_per_ip: f64,
    /// Seconds a connection has to become a WebSocket (a half-sent request, an idle HTTP
    /// connection is closed then).
    #[arg(long, env = "BUZZ_RELAY_HANDSHAKE_TIMEOUT", default_value_t = 10)]
    pub handshake_timeout: u64,
    /// Requests one client address has in progress at once, all its connections together
    /// (each from its database call until its answer is queued; 0: no limit). The others
    /// wait their turn, at most --pool-wait-timeout: one address never holds more than this
    /// much of the pool, nor more than this many answers in memory.
    #[arg(long, env = "BUZZ_RELAY_MAX_REQUESTS_PER_IP", default_value_t = 4)]
    pub max_requests_per_ip: usize,
    /// Seconds of database time per second one client address may use, all its connections
    /// together (0: no limit). Each call is charged the time it took; an address in debt waits
    /// until it is paid back, and is told `rate-limited:` when that is longer than
    /// --pool-wait-timeout.
    #[arg(long, env = "BUZZ_RELAY_DB_SECONDS_PER_IP", default_value_t = 1.0)]
    pub db_seconds_per_ip: f64,
    /// Seconds of database time an address may use at once, before the rate applies.
    #[arg(long, env = "BUZZ_RELAY_DB_BURST_SECONDS_PER_IP", default_value_t = 10.0)]
    pub db_burst_seconds_per_ip: f64,
    /// AUTH attempts per second per client address, all its connections together (0: no
    /// limit): each costs the database a signature check and, in an open community, may
    /// register a member. Past it, `OK false rate-limited:` before the database is asked.
    #[arg(long, env = "BUZZ_RELAY_AUTH_PER_IP", default_value_t = 1.0)]
    pub auth_per_ip: f64,
    /// AUTH attempts per address at once, before the rate applies.
    #[arg(long, env = "BUZZ_RELAY_AUTH_BURST_PER_IP", default_value_t = 20.0)]
    pub auth_burst_per_ip: f64,
    /// Logins (NIP-42 pubkeys) one connection may hold; an AUTH for another pubkey past it is
    /// refused before the database is asked.
    #[arg(long, env = "BUZZ_RELAY_MAX_LOGINS", default_value_t = 8)]
    pub max_logins: usize,
    /// Bytes of filters one connection's open subscriptions may hold together (every poll
    /// runs them all); a REQ past it is answered `CLOSED` like one subscription too many.
    #[arg(long, env = "BUZZ_RELAY_MAX_FILTER_BYTES", default_value_t = 131_072)]
    pub max_filter_bytes: usize,
    /// Milliseconds one statement may run (SET LOCAL statement_timeout in every transaction;
    /// 0: the server's setting). A canceled one is answered `error: statement canceled`.
    #[arg(long, env = "BUZZ_RELAY_STATEMENT_TIMEOUT_MS", default_value_t = 10_000)]
    pub statement_timeout_ms: u64,
    /// Kernel send buffer per connection (SO_SNDBUF; 0: the kernel's autotuning).
    #[arg(long, env = "BUZZ_RELAY_SOCKET_SEND_BUFFER_BYTES", default_value_t = 262_144)]
    pub socket_send_buffer_bytes: usize,
    /// Seconds a request waits for a pooled database connection before it is answered
    /// `relay_unavailable`.
    #[arg(long, env = "BUZZ_RELAY_POOL_WAIT_TIMEOUT", default_value_t = 5)]
    pub pool_wait_timeout: u64,
    /// Failed AUTH attempts per connection; past it the connection is closed.
    #[arg(long, env = "BUZZ_RELAY_MAX_AUTH_FAILURES", default_value_t = 5)]
    pub max_auth_failures: usize,
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
