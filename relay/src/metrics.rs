//! Counters for `/metrics` (Prometheus text format).

use std::fmt::Write;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::time::Duration;

#[derive(Default)]
pub struct Metrics {
    pub sockets: AtomicI64,
    pub refused: AtomicU64,
    pub connections: AtomicI64,
    pub subscriptions: AtomicI64,
    pub events_in: AtomicU64,
    pub events_out: AtomicU64,
    pub slow_consumers: AtomicU64,
    pub outbound_bytes: AtomicI64,
    pub wakeups: AtomicU64,
    /// Connections' live-delivery polls, and the database calls that answered them.
    pub polls: AtomicU64,
    pub poll_calls: AtomicU64,
    db_calls: AtomicU64,
    db_micros: AtomicU64,
}

impl Metrics {
    pub fn db_call(&self, took: Duration) {
        self.db_calls.fetch_add(1, Relaxed);
        self.db_micros.fetch_add(took.as_micros() as u64, Relaxed);
    }

    pub fn render(&self) -> String {
        let mut s = String::new();
        let mut metric = |name: &str, kind: &str, help: &str, value: String| {
            let _ = write!(s, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n");
        };
        metric("buzz_relay_sockets", "gauge", "Open TCP connections of the public port.", self.sockets.load(Relaxed).to_string());
        metric("buzz_relay_refused_total", "counter", "Connections refused by the per-address limits.", self.refused.load(Relaxed).to_string());
        metric("buzz_relay_connections", "gauge", "Open WebSocket connections.", self.connections.load(Relaxed).to_string());
        metric("buzz_relay_subscriptions", "gauge", "Open subscriptions.", self.subscriptions.load(Relaxed).to_string());
        metric("buzz_relay_events_received_total", "counter", "EVENT messages received.", self.events_in.load(Relaxed).to_string());
        metric("buzz_relay_events_sent_total", "counter", "Events sent to subscribers.", self.events_out.load(Relaxed).to_string());
        metric("buzz_relay_slow_consumers_total", "counter", "Connections closed because their queue was full.", self.slow_consumers.load(Relaxed).to_string());
        metric("buzz_relay_outbound_bytes", "gauge", "Bytes queued for clients, not yet taken by their sockets.", self.outbound_bytes.load(Relaxed).to_string());
        metric("buzz_relay_wakeups_total", "counter", "Wake-up notifications received.", self.wakeups.load(Relaxed).to_string());
        metric("buzz_relay_polls_total", "counter", "Live-delivery polls of connections.", self.polls.load(Relaxed).to_string());
        metric("buzz_relay_poll_calls_total", "counter", "Database calls that answered them (polls of one host share calls).", self.poll_calls.load(Relaxed).to_string());
        metric("buzz_relay_db_calls_total", "counter", "Database transactions run.", self.db_calls.load(Relaxed).to_string());
        metric("buzz_relay_db_seconds_total", "counter", "Time spent in database transactions.",
               format!("{:.6}", self.db_micros.load(Relaxed) as f64 / 1e6));
        s
    }
}
