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
use tokio::sync::{mpsc, watch};

use crate::db::Refusal;
use crate::App;

/// A subscription: its filters (a JSON array, as the client sent them) and where it stands.
struct Sub {
    filters: String,
    cursor: String,
}

/// Why the connection ends.
enum End {
    /// The client went away, or its queue filled up.
    Gone,
    /// The relay is shutting down.
    Shutdown,
}

type Flow = Result<(), End>;

struct Conn {
    app: Arc<App>,
    host: String,
    out: mpsc::Sender<Message>,
    /// (pubkey, session token) per NIP-42 login, the latest last.
    logins: Vec<(String, String)>,
    subs: BTreeMap<String, Sub>,
    /// Subscriptions answered `auth-required:`, re-run after the next successful AUTH.
    waiting: BTreeMap<String, String>,
    wake: Option<watch::Receiver<u64>>,
}

#[derive(Deserialize)]
struct Head {
    id: Option<String>,
    pubkey: Option<String>,
}

fn json_str(s: &str) -> String {
    serde_json::to_string(s).expect("a string serializes")
}

pub async fn serve(ws: WebSocket, host: String, challenge: String, app: Arc<App>) {
    app.metrics.connections.fetch_add(1, Relaxed);
    let (mut sink, mut stream) = ws.split();
    let (out, mut outq) = mpsc::channel::<Message>(app.args.outbound_queue);
    let writer = tokio::spawn(async move {
        while let Some(m) = outq.recv().await {
            let close = matches!(m, Message::Close(_));
            if sink.send(m).await.is_err() || close {
                break;
            }
        }
        let _ = sink.close().await;
    });
    let mut conn = Conn { app: app.clone(), host, out, logins: Vec::new(), subs: BTreeMap::new(), waiting: BTreeMap::new(), wake: None };
    let mut shutdown = app.shutdown.clone();
    let mut timer = tokio::time::interval(Duration::from_secs(app.args.poll_interval.max(1)));
    timer.tick().await;
    let mut end = conn.send(format!(r#"["AUTH",{}]"#, json_str(&challenge)));
    while end.is_ok() {
        end = tokio::select! {
            msg = stream.next() => match msg {
                Some(Ok(Message::Text(t))) => conn.handle(t.as_str()).await,
                Some(Ok(Message::Binary(_))) => conn.notice("message_invalid"),
                Some(Ok(Message::Close(_))) | None => Err(End::Gone),
                Some(Ok(_)) => Ok(()),
                // Larger than --max-frame-bytes (or broken framing): say so, then close.
                Some(Err(_)) => {
                    let _ = conn.notice("frame_too_large");
                    Err(End::Gone)
                }
            },
            _ = changed(&mut conn.wake) => conn.poll(true).await,
            _ = timer.tick() => conn.poll(false).await,
            _ = shutdown.changed() => Err(End::Shutdown),
        };
    }
    if let Err(End::Shutdown) = end {
        let msg = conn.app.db.message("relay_shutdown").0;
        for id in conn.subs.keys() {
            let _ = conn.out.try_send(Message::Text(format!(r#"["CLOSED",{},{}]"#, json_str(id), json_str(&msg)).into()));
        }
        let _ = conn.out.try_send(Message::Close(Some(CloseFrame { code: 1001, reason: "".into() })));
    }
    app.metrics.subscriptions.fetch_sub(conn.subs.len() as i64, Relaxed);
    app.metrics.connections.fetch_sub(1, Relaxed);
    drop(conn);
    let _ = tokio::time::timeout(Duration::from_secs(2), writer).await;
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
    /// Queues a message; a client that let its queue fill up is disconnected.
    fn send(&self, text: String) -> Flow {
        match self.out.try_send(Message::Text(text.into())) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.app.metrics.slow_consumers.fetch_add(1, Relaxed);
                tracing::info!(host = %self.host, "slow consumer disconnected");
                Err(End::Gone)
            }
            Err(mpsc::error::TrySendError::Closed(_)) => Err(End::Gone),
        }
    }

    fn notice(&self, code: &str) -> Flow {
        self.send(format!(r#"["NOTICE",{}]"#, json_str(&self.app.db.message(code).0)))
    }

    fn closed(&self, id: &str, r: &Refusal) -> Flow {
        self.send(format!(r#"["CLOSED",{},{}]"#, json_str(id), json_str(&r.0)))
    }

    /// The token to read with: the latest login.
    fn reader(&self) -> Option<&str> {
        self.logins.last().map(|(_, t)| t.as_str())
    }

    /// The token to publish with: the login of the event's author, else the latest one.
    fn author(&self, pubkey: Option<&str>) -> Option<&str> {
        self.logins.iter().rev().find(|(pk, _)| Some(pk.as_str()) == pubkey).map(|(_, t)| t.as_str()).or(self.reader())
    }

    async fn handle(&mut self, text: &str) -> Flow {
        let Ok(parts) = serde_json::from_str::<Vec<&RawValue>>(text) else { return self.notice("message_invalid") };
        let Some(verb) = parts.first().and_then(|v| serde_json::from_str::<&str>(v.get()).ok()) else {
            return self.notice("message_invalid");
        };
        let sub_id = || parts.get(1).and_then(|v| serde_json::from_str::<String>(v.get()).ok()).filter(|s| !s.is_empty() && s.len() <= 64);
        match (verb, parts.len()) {
            ("EVENT", 2) => self.event(parts[1].get()).await,
            ("AUTH", 2) => self.auth(parts[1].get()).await,
            ("REQ", n) if n >= 3 => match sub_id() {
                Some(id) => self.req(id, &parts[2..]).await,
                None => self.notice("message_invalid"),
            },
            ("COUNT", n) if n >= 3 => match sub_id() {
                Some(id) => self.count(id, &parts[2..]).await,
                None => self.notice("message_invalid"),
            },
            ("CLOSE", 2) => match sub_id() {
                Some(id) => {
                    self.waiting.remove(&id);
                    if self.subs.remove(&id).is_some() {
                        self.app.metrics.subscriptions.fetch_sub(1, Relaxed);
                    }
                    Ok(())
                }
                None => self.notice("message_invalid"),
            },
            _ => self.notice("message_invalid"),
        }
    }

    async fn event(&mut self, event: &str) -> Flow {
        self.app.metrics.events_in.fetch_add(1, Relaxed);
        let head: Head = serde_json::from_str(event).unwrap_or(Head { id: None, pubkey: None });
        let id = head.id.unwrap_or_default();
        let (ok, msg) = match self.app.db.publish(&self.host, self.author(head.pubkey.as_deref()), event).await {
            Ok(answer) => answer,
            Err(r) => (false, r.0),
        };
        self.send(format!(r#"["OK",{},{},{}]"#, json_str(&id), ok, json_str(&msg)))
    }

    async fn auth(&mut self, event: &str) -> Flow {
        let head: Head = serde_json::from_str(event).unwrap_or(Head { id: None, pubkey: None });
        let id = head.id.unwrap_or_default();
        match self.app.db.authenticate(&self.host, event).await {
            Ok(token) => {
                let pubkey = head.pubkey.unwrap_or_default();
                self.logins.retain(|(pk, _)| *pk != pubkey);
                self.logins.push((pubkey, token));
                self.send(format!(r#"["OK",{},true,""]"#, json_str(&id)))?;
                // Subscriptions that were told to log in first run again, now.
                for (sub, filters) in std::mem::take(&mut self.waiting) {
                    self.open(sub, filters).await?;
                }
                Ok(())
            }
            Err(r) => {
                self.send(format!(r#"["OK",{},false,{}]"#, json_str(&id), json_str(&r.0)))?;
                // A fresh challenge for the next attempt.
                match self.app.db.challenge(&self.host).await {
                    Ok(c) => self.send(format!(r#"["AUTH",{}]"#, json_str(&c))),
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
            Err(r) => return self.closed(&id, &r),
        };
        if self.subs.remove(&id).is_some() {
            self.app.metrics.subscriptions.fetch_sub(1, Relaxed);
        }
        self.waiting.remove(&id);
        if self.subs.len() + self.waiting.len() >= self.app.args.max_subscriptions {
            return self.closed(&id, &self.app.db.message("too_many_subscriptions"));
        }
        self.open(id, filters).await
    }

    /// Runs a subscription's stored answer and, if it may read, keeps it for live delivery.
    async fn open(&mut self, id: String, filters: String) -> Flow {
        match self.app.db.req(&self.host, self.reader(), &filters).await {
            Ok((events, cursor, channel)) => {
                for e in &events {
                    self.send(format!(r#"["EVENT",{},{}]"#, json_str(&id), e))?;
                }
                self.app.metrics.events_out.fetch_add(events.len() as u64, Relaxed);
                self.send(format!(r#"["EOSE",{}]"#, json_str(&id)))?;
                if self.wake.is_none() {
                    self.wake = self.app.wake.watch(&channel);
                }
                self.subs.insert(id, Sub { filters, cursor });
                self.app.metrics.subscriptions.fetch_add(1, Relaxed);
                Ok(())
            }
            Err(r) => {
                if r.auth_required() {
                    self.waiting.insert(id.clone(), filters);
                }
                self.closed(&id, &r)
            }
        }
    }

    async fn count(&mut self, id: String, parts: &[&RawValue]) -> Flow {
        let answer = match self.filters(parts) {
            Ok(f) => self.app.db.count(&self.host, self.reader(), &f).await,
            Err(r) => Err(r),
        };
        match answer {
            Ok(n) => self.send(format!(r#"["COUNT",{},{{"count":{n}}}]"#, json_str(&id))),
            Err(r) => self.closed(&id, &r),
        }
    }

    /// Live delivery: what came after each subscription's cursor, in one transaction. After a
    /// wake-up (there is news), subscriptions that got none of it move their cursor past it.
    async fn poll(&mut self, advance: bool) -> Flow {
        if self.subs.is_empty() {
            return Ok(());
        }
        let ids: Vec<String> = self.subs.keys().cloned().collect();
        let list: Vec<(String, String)> = self.subs.values().map(|s| (s.filters.clone(), s.cursor.clone())).collect();
        match self.app.db.poll(&self.host, self.reader(), &list, advance).await {
            Ok((results, head)) => {
                for (id, rows) in ids.iter().zip(results) {
                    for (event, _) in &rows {
                        self.send(format!(r#"["EVENT",{},{}]"#, json_str(id), event))?;
                    }
                    self.app.metrics.events_out.fetch_add(rows.len() as u64, Relaxed);
                    let next = rows.last().map(|(_, c)| c).or(head.as_ref());
                    if let (Some(cursor), Some(sub)) = (next, self.subs.get_mut(id)) {
                        sub.cursor = cursor.clone();
                    }
                }
                Ok(())
            }
            // The session ended (expired, logged out, membership revoked): its subscriptions
            // end with the database's answer, and the login is forgotten.
            Err(r) if r.auth_required() || r.0.starts_with("restricted:") => {
                self.logins.pop();
                let subs = std::mem::take(&mut self.subs);
                self.app.metrics.subscriptions.fetch_sub(subs.len() as i64, Relaxed);
                for (id, sub) in subs {
                    if r.auth_required() {
                        self.waiting.insert(id.clone(), sub.filters);
                    }
                    self.closed(&id, &r)?;
                }
                Ok(())
            }
            // The database is unreachable: keep the subscriptions, try again later.
            Err(_) => Ok(()),
        }
    }
}
