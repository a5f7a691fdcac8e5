//! One WebSocket connection: NIP-01 `EVENT`/`REQ`/`CLOSE`, NIP-42 `AUTH`, NIP-45 `COUNT`.
//!
//! The connection keeps what the client gave it (its Host header, its login tokens, its
//! subscriptions' filters and the opaque cursors the database returned) and nothing else. Every
//! event it sends comes from `buzz.req` or `buzz.poll`, run under this connection's own
//! context; it never looks inside an event except for the `id` and `pubkey` it echoes in `OK`
//! and uses to pick the author's login.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::value::RawValue;
use tokio::sync::{mpsc, watch, OwnedSemaphorePermit, Semaphore};

use crate::db::{Entry, Polled, Refusal};
use crate::limits::{Busy, Room, Share, Turn};
use crate::metrics::Metrics;
use crate::polls::Polls;
use crate::App;

/// A subscription: its filters (a JSON array, as the client sent them), where it stands, and
/// the login it was opened with (its reader for as long as it lives, whoever logs in later).
struct Sub {
    filters: String,
    cursor: String,
    token: Option<String>,
}

/// Why the connection ends.
enum End {
    /// The client went away, stopped reading, or misbehaved.
    Gone,
    /// The relay is shutting down.
    Shutdown,
}

type Flow = Result<(), End>;

/// The messages waiting for the client, bounded in bytes twice: by the connection's own queue
/// and by its address's room, shared by all the address's connections. A send waits for both,
/// so a large answer flows at the client's pace; a client that leaves them full for `stall` is
/// dropped.
struct Outbox {
    tx: mpsc::UnboundedSender<(Message, Held)>,
    room: Arc<Semaphore>,
    bytes: usize,
    address: Room,
    stall: Duration,
    metrics: Arc<Metrics>,
}

/// The room a queued message holds (given back when the socket took it, or the queue went),
/// and its length in the gauge of queued bytes.
struct Held {
    _own: OwnedSemaphorePermit,
    _address: OwnedSemaphorePermit,
    len: usize,
    metrics: Arc<Metrics>,
}

impl Drop for Held {
    fn drop(&mut self) {
        self.metrics.outbound_bytes.fetch_sub(self.len as i64, Relaxed);
    }
}

impl Outbox {
    /// The permits a message of `len` bytes holds while queued (at least 64, so the number
    /// of messages is bounded too; at most the whole queue, so a large one still fits).
    fn weight(&self, len: usize) -> u32 {
        len.clamp(64, self.bytes) as u32
    }

    fn held(&self, own: OwnedSemaphorePermit, address: OwnedSemaphorePermit, len: usize) -> Held {
        self.metrics.outbound_bytes.fetch_add(len as i64, Relaxed);
        Held { _own: own, _address: address, len, metrics: self.metrics.clone() }
    }

    async fn push(&self, m: Message, len: usize) -> Result<(), Stalled> {
        let weight = self.weight(len);
        let room = async {
            let own = self.room.clone().acquire_many_owned(weight).await.ok()?;
            let address = self.address.take(weight as usize).await?;
            Some(self.held(own, address, len))
        };
        let held = match tokio::time::timeout(self.stall, room).await {
            Ok(Some(h)) => h,
            Ok(None) => return Err(Stalled::Closed),
            Err(_) => return Err(Stalled::Full),
        };
        self.tx.send((m, held)).map_err(|_| Stalled::Closed)
    }

    /// Queues `m` only if there is room now (shutdown: no waiting).
    fn try_push(&self, m: Message, len: usize) {
        let weight = self.weight(len);
        if let Ok(own) = self.room.clone().try_acquire_many_owned(weight) {
            if let Some(address) = self.address.try_take(weight as usize) {
                let _ = self.tx.send((m, self.held(own, address, len)));
            }
        }
    }
}

enum Stalled {
    Full,
    Closed,
}

struct Conn {
    app: Arc<App>,
    host: String,
    out: Outbox,
    /// What the client's address shares: every request takes one of its turns, from its
    /// database call until its answer is queued, and its database time is charged there.
    share: Share,
    /// (pubkey, session token) per NIP-42 login, the latest last.
    logins: Vec<(String, String)>,
    subs: BTreeMap<String, Sub>,
    /// Subscriptions answered `auth-required:`, re-run after the next successful AUTH.
    waiting: BTreeMap<String, String>,
    wake: Option<watch::Receiver<u64>>,
    /// A poll left rows behind (a full page, the byte cap): poll again before waiting.
    more: bool,
    auth_failures: usize,
}

#[derive(Deserialize)]
struct Head {
    id: Option<String>,
    pubkey: Option<String>,
}

fn json_str(s: &str) -> String {
    serde_json::to_string(s).expect("a string serializes")
}

pub async fn serve(ws: WebSocket, host: String, challenge: String, share: Share, app: Arc<App>) {
    app.metrics.connections.fetch_add(1, Relaxed);
    let (mut sink, mut stream) = ws.split();
    let bytes = app.args.outbound_queue_bytes.clamp(1024, u32::MAX as usize);
    let (tx, mut outq) = mpsc::unbounded_channel::<(Message, Held)>();
    let stall = Duration::from_secs(app.args.send_timeout.max(1));
    let out = Outbox { tx, room: Arc::new(Semaphore::new(bytes)), bytes, address: share.room.clone(), stall, metrics: app.metrics.clone() };
    let metrics = app.metrics.clone();
    let mut writer = tokio::spawn(async move {
        // Each message's room is given back once the socket took it. A client that takes
        // nothing for `stall` is let go even when nothing more is waiting to be queued: what
        // it left unread would otherwise hold its address's room for as long as it stays.
        while let Some((m, _held)) = outq.recv().await {
            let close = matches!(m, Message::Close(_));
            match tokio::time::timeout(stall, sink.send(m)).await {
                Ok(Ok(())) if !close => {}
                Ok(_) => break,
                Err(_) => {
                    metrics.slow_consumers.fetch_add(1, Relaxed);
                    return;
                }
            }
        }
        let _ = tokio::time::timeout(stall, sink.close()).await;
    });
    let mut conn = Conn {
        app: app.clone(),
        host,
        out,
        share,
        logins: Vec::new(),
        subs: BTreeMap::new(),
        waiting: BTreeMap::new(),
        wake: None,
        more: false,
        auth_failures: 0,
    };
    let mut shutdown = app.shutdown.clone();
    let mut timer = tokio::time::interval(Duration::from_secs(app.args.poll_interval.max(1)));
    timer.tick().await;
    // Set once the writer has ended (a finished task's handle is not polled again).
    let mut written = false;
    let mut end = conn.send(format!(r#"["AUTH",{}]"#, json_str(&challenge))).await;
    while end.is_ok() {
        end = tokio::select! {
            msg = stream.next() => match msg {
                Some(Ok(Message::Text(t))) => conn.handle(t.as_str()).await,
                Some(Ok(Message::Binary(_))) => conn.notice("message_invalid").await,
                Some(Ok(Message::Close(_))) | None => Err(End::Gone),
                Some(Ok(_)) => Ok(()),
                // Larger than --max-frame-bytes, or broken (bad UTF-8, opcodes, framing):
                // say which, then close.
                Some(Err(e)) => {
                    let _ = conn.notice(if too_large(&e) { "frame_too_large" } else { "message_invalid" }).await;
                    Err(End::Gone)
                }
            },
            // The writer gave up (the client went away): nothing more can reach the client.
            _ = &mut writer, if !written => {
                written = true;
                Err(End::Gone)
            }
            _ = std::future::ready(()), if conn.more => conn.poll().await,
            _ = changed(&mut conn.wake) => conn.poll().await,
            _ = timer.tick() => conn.poll().await,
            _ = shutdown.changed() => Err(End::Shutdown),
        };
    }
    if let Err(End::Shutdown) = end {
        let msg = conn.app.db.message("relay_shutdown").0;
        for id in conn.subs.keys() {
            let text = format!(r#"["CLOSED",{},{}]"#, json_str(id), json_str(&msg));
            let len = text.len();
            conn.out.try_push(Message::Text(text.into()), len);
        }
        conn.out.try_push(Message::Close(Some(CloseFrame { code: 1001, reason: "".into() })), 0);
    }
    app.metrics.subscriptions.fetch_sub(conn.subs.len() as i64, Relaxed);
    app.metrics.connections.fetch_sub(1, Relaxed);
    drop(conn);
    // The writer may still deliver what was queued (the last NOTICE, CLOSEDs), briefly; then it
    // goes, and with it the socket and its address's slot, even if the client reads nothing.
    if !written {
        let _ = tokio::time::timeout(Duration::from_secs(2), &mut writer).await;
    }
    writer.abort();
}

/// Whether a WebSocket read failed because a message or frame was over the limits.
fn too_large(e: &axum::Error) -> bool {
    let inner = std::error::Error::source(e).and_then(|s| s.downcast_ref::<tungstenite::Error>());
    matches!(inner, Some(tungstenite::Error::Capacity(_)))
}

/// Resolves when the wake-up counter changes (never, before the first subscription).
async fn changed(wake: &mut Option<watch::Receiver<u64>>) {
    match wake {
        Some(rx) => {
            if rx.changed().await.is_err() {
                std::future::pending::<()>().await
            }
        }
        None => std::future::pending().await,
    }
}

impl Conn {
    /// Queues a message, waiting for room; a client that lets its queue stay full is dropped.
    async fn send(&self, mut text: String) -> Flow {
        // What the message holds in memory is what it is charged: `format!` leaves up to twice
        // the length allocated.
        text.shrink_to_fit();
        let len = text.capacity();
        match self.out.push(Message::Text(text.into()), len).await {
            Ok(()) => Ok(()),
            Err(Stalled::Full) => {
                self.app.metrics.slow_consumers.fetch_add(1, Relaxed);
                tracing::info!(host = %self.host, "slow consumer disconnected");
                Err(End::Gone)
            }
            Err(Stalled::Closed) => Err(End::Gone),
        }
    }

    async fn notice(&self, code: &str) -> Flow {
        self.send(format!(r#"["NOTICE",{}]"#, json_str(&self.app.db.message(code).0))).await
    }

    async fn closed(&self, id: &str, r: &Refusal) -> Flow {
        self.send(format!(r#"["CLOSED",{},{}]"#, json_str(id), json_str(&r.0))).await
    }

    /// One of the address's turns, for one request and its answer. An address whose other
    /// requests keep every turn past --pool-wait-timeout is answered as if the pool were; one
    /// that used up its database time for longer than that is told to slow down.
    async fn turn(&self) -> Result<Turn, Refusal> {
        let wait = Duration::from_secs(self.app.args.pool_wait_timeout.max(1));
        self.share.turn(wait).await.map_err(|busy| {
            self.app.db.message(match busy {
                Busy::Spent => "too_busy",
                Busy::NoTurn => "relay_unavailable",
            })
        })
    }

    fn unavailable(&self) -> Refusal {
        self.app.db.message("relay_unavailable")
    }

    /// The token a new subscription reads with: the latest login.
    fn reader(&self) -> Option<&str> {
        self.logins.last().map(|(_, t)| t.as_str())
    }

    /// The token to publish with: the login of the event's author, else the latest one.
    fn author(&self, pubkey: Option<&str>) -> Option<&str> {
        self.logins.iter().rev().find(|(pk, _)| Some(pk.as_str()) == pubkey).map(|(_, t)| t.as_str()).or(self.reader())
    }

    async fn handle(&mut self, text: &str) -> Flow {
        let Ok(parts) = serde_json::from_str::<Vec<&RawValue>>(text) else { return self.notice("message_invalid").await };
        let Some(verb) = parts.first().and_then(|v| serde_json::from_str::<&str>(v.get()).ok()) else {
            return self.notice("message_invalid").await;
        };
        let sub_id = || parts.get(1).and_then(|v| serde_json::from_str::<String>(v.get()).ok()).filter(|s| !s.is_empty() && s.len() <= 64);
        match (verb, parts.len()) {
            ("EVENT", 2) => self.event(parts[1].get()).await,
            ("AUTH", 2) => self.auth(parts[1].get()).await,
            ("REQ", n) if n >= 3 => match sub_id() {
                Some(id) => self.req(id, &parts[2..]).await,
                None => self.notice("message_invalid").await,
            },
            ("COUNT", n) if n >= 3 => match sub_id() {
                Some(id) => self.count(id, &parts[2..]).await,
                None => self.notice("message_invalid").await,
            },
            ("CLOSE", 2) => match sub_id() {
                Some(id) => {
                    self.waiting.remove(&id);
                    self.drop_sub(&id);
                    Ok(())
                }
                None => self.notice("message_invalid").await,
            },
            _ => self.notice("message_invalid").await,
        }
    }

    fn drop_sub(&mut self, id: &str) -> Option<Sub> {
        let sub = self.subs.remove(id)?;
        self.app.metrics.subscriptions.fetch_sub(1, Relaxed);
        Some(sub)
    }

    async fn event(&mut self, event: &str) -> Flow {
        self.app.metrics.events_in.fetch_add(1, Relaxed);
        let head: Head = serde_json::from_str(event).unwrap_or(Head { id: None, pubkey: None });
        let id = head.id.unwrap_or_default();
        let turn = self.turn().await;
        let answer = match &turn {
            Ok(turn) => turn.run(self.app.db.publish(&self.host, self.author(head.pubkey.as_deref()), event), || Err(self.unavailable())).await,
            Err(r) => Err(r.clone()),
        };
        let (ok, msg) = answer.unwrap_or_else(|r| (false, r.0));
        self.send(format!(r#"["OK",{},{},{}]"#, json_str(&id), ok, json_str(&msg))).await
    }

    async fn auth(&mut self, event: &str) -> Flow {
        let head: Head = serde_json::from_str(event).unwrap_or(Head { id: None, pubkey: None });
        let id = head.id.unwrap_or_default();
        // Each login is a session the connection keeps, and its subscriptions' own polls.
        let known = self.logins.iter().any(|(pk, _)| Some(pk) == head.pubkey.as_ref());
        if !known && self.logins.len() >= self.app.args.max_logins.max(1) {
            let r = self.app.db.message("too_many_logins");
            return self.send(format!(r#"["OK",{},false,{}]"#, json_str(&id), json_str(&r.0))).await;
        }
        if !self.share.auths.try_take_one(std::time::Instant::now()) {
            let r = self.app.db.message("too_busy");
            return self.send(format!(r#"["OK",{},false,{}]"#, json_str(&id), json_str(&r.0))).await;
        }
        let turn = match self.turn().await {
            Ok(t) => t,
            // Nothing was tried: the challenge is still good, and no failure is counted.
            Err(r) => return self.send(format!(r#"["OK",{},false,{}]"#, json_str(&id), json_str(&r.0))).await,
        };
        match turn.run(self.app.db.authenticate(&self.host, event), || Err(self.unavailable())).await {
            Ok(token) => {
                let pubkey = head.pubkey.unwrap_or_default();
                self.logins.retain(|(pk, _)| *pk != pubkey);
                self.logins.push((pubkey, token));
                self.send(format!(r#"["OK",{},true,""]"#, json_str(&id))).await?;
                // Each re-run takes a turn of its own.
                drop(turn);
                // Subscriptions that were told to log in first run again, now.
                for (sub, filters) in std::mem::take(&mut self.waiting) {
                    self.open(sub, filters).await?;
                }
                Ok(())
            }
            Err(r) => {
                self.send(format!(r#"["OK",{},false,{}]"#, json_str(&id), json_str(&r.0))).await?;
                // Each failure costs the database a fresh challenge: a connection gets a few.
                self.auth_failures += 1;
                if self.auth_failures >= self.app.args.max_auth_failures.max(1) {
                    let _ = self.notice("too_many_auth_failures").await;
                    return Err(End::Gone);
                }
                match turn.run(self.app.db.challenge(&self.host), || Err(self.unavailable())).await {
                    Ok(c) => self.send(format!(r#"["AUTH",{}]"#, json_str(&c))).await,
                    Err(_) => Ok(()),
                }
            }
        }
    }

    fn filters(&self, parts: &[&RawValue]) -> Result<String, Refusal> {
        if parts.len() > self.app.args.max_filters {
            return Err(self.app.db.message("too_many_filters"));
        }
        Ok(format!("[{}]", parts.iter().map(|p| p.get()).collect::<Vec<_>>().join(",")))
    }

    async fn req(&mut self, id: String, parts: &[&RawValue]) -> Flow {
        let filters = match self.filters(parts) {
            Ok(f) => f,
            Err(r) => return self.closed(&id, &r).await,
        };
        self.drop_sub(&id);
        self.waiting.remove(&id);
        // Every poll runs all of a connection's filters: their number and their bytes are capped.
        let held: usize = self.subs.values().map(|s| s.filters.len()).chain(self.waiting.values().map(String::len)).sum();
        if self.subs.len() + self.waiting.len() >= self.app.args.max_subscriptions || held + filters.len() > self.app.args.max_filter_bytes {
            return self.closed(&id, &self.app.db.message("too_many_subscriptions")).await;
        }
        self.open(id, filters).await
    }

    /// Runs a subscription's stored answer and, if it may read, keeps it for live delivery.
    async fn open(&mut self, id: String, filters: String) -> Flow {
        let turn = match self.turn().await {
            Ok(t) => t,
            Err(r) => return self.closed(&id, &r).await,
        };
        let token = self.reader().map(str::to_owned);
        match turn.run(self.app.db.req(&self.host, token.as_deref(), &filters), || Err(self.unavailable())).await {
            Ok((events, cursor, channel)) => {
                for e in &events {
                    self.send(format!(r#"["EVENT",{},{}]"#, json_str(&id), e)).await?;
                }
                self.app.metrics.events_out.fetch_add(events.len() as u64, Relaxed);
                self.send(format!(r#"["EOSE",{}]"#, json_str(&id))).await?;
                if self.wake.is_none() {
                    self.wake = self.app.wake.watch(&channel);
                    // A wake-up between the answer's snapshot and this watch was not seen by
                    // this receiver: poll once.
                    if let Some(rx) = self.wake.as_mut() {
                        rx.mark_changed();
                    }
                }
                self.subs.insert(id, Sub { filters, cursor, token });
                self.app.metrics.subscriptions.fetch_add(1, Relaxed);
                Ok(())
            }
            Err(r) => {
                if r.auth_required() {
                    self.waiting.insert(id.clone(), filters);
                }
                self.closed(&id, &r).await
            }
        }
    }

    async fn count(&mut self, id: String, parts: &[&RawValue]) -> Flow {
        let turn = self.turn().await;
        let answer = match (self.filters(parts), &turn) {
            (Ok(f), Ok(turn)) => turn.run(self.app.db.count(&self.host, self.reader(), &f), || Err(self.unavailable())).await,
            (Err(r), _) => Err(r),
            (_, Err(r)) => Err(r.clone()),
        };
        match answer {
            Ok(n) => self.send(format!(r#"["COUNT",{},{{"count":{n}}}]"#, json_str(&id))).await,
            Err(r) => self.closed(&id, &r).await,
        }
    }

    /// Live delivery: what came after each subscription's cursor, each read under the login
    /// it was opened with, in one call with the polls of the host's other connections
    /// (`polls`). A subscription resumes where the database said (after the news it saw, even
    /// if none matched), or after its last event when the answer was cut.
    async fn poll(&mut self) -> Flow {
        self.more = false;
        if self.subs.is_empty() {
            return Ok(());
        }
        let Ok(turn) = self.turn().await else {
            // The address's other requests keep every turn, or it used up its database time:
            // the timer tries again.
            return Ok(());
        };
        let ids: Vec<String> = self.subs.keys().cloned().collect();
        let entries = self.subs.values().map(|s| Entry { token: s.token.clone(), filters: s.filters.clone(), cursor: s.cursor.clone() }).collect();
        match Polls::poll(&self.app, &self.host, entries, turn).await {
            Ok(answers) => {
                for (id, polled) in ids.into_iter().zip(answers) {
                    match polled {
                        Polled::Events { rows, resume, more } => {
                            for (event, _) in &rows {
                                self.send(format!(r#"["EVENT",{},{}]"#, json_str(&id), event)).await?;
                            }
                            self.app.metrics.events_out.fetch_add(rows.len() as u64, Relaxed);
                            self.more |= more;
                            let next = resume.or_else(|| rows.last().map(|(_, c)| c.clone()));
                            if let (Some(cursor), Some(sub)) = (next, self.subs.get_mut(&id)) {
                                sub.cursor = cursor;
                            }
                        }
                        Polled::Refused(r) => self.refused(&id, &r).await?,
                    }
                }
                Ok(())
            }
            // The database is unreachable: keep the subscriptions, the timer tries again.
            Err(r) if r.0 == self.app.db.message("relay_unavailable").0 => {
                tracing::warn!(host = %self.host, "poll failed: database unavailable");
                Ok(())
            }
            Err(r) => {
                for id in ids {
                    self.refused(&id, &r).await?;
                }
                Ok(())
            }
        }
    }

    /// A subscription the database refused to poll ends with the database's answer. An ended
    /// session (expired, logged out, membership revoked) is forgotten, and its subscriptions
    /// that were told to log in wait for the next AUTH.
    async fn refused(&mut self, id: &str, r: &Refusal) -> Flow {
        tracing::info!(host = %self.host, answer = %r.0, "poll refused; closing the subscription");
        let Some(sub) = self.drop_sub(id) else { return Ok(()) };
        let db = &self.app.db;
        if r.auth_required() || r.0 == db.message("not_member").0 || r.0 == db.message("banned").0 {
            if let Some(t) = &sub.token {
                self.logins.retain(|(_, tok)| tok != t);
            }
        }
        if r.auth_required() {
            self.waiting.insert(id.to_owned(), sub.filters);
        }
        self.closed(id, r).await
    }
}
