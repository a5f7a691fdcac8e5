//! Wake-ups: one direct PostgreSQL connection per relay process `LISTEN`s on the channels the
//! extension named (`buzz.listen_channel()`, an opaque name per community). A notification
//! carries no payload; it bumps a counter that the connections subscribed to that name watch,
//! and they poll. The relay never learns which community a name stands for.
//!
//! After a reconnect every name is listened to again and every watcher is woken, since
//! notifications sent while the connection was down are lost.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::{mpsc, watch};
use tokio_postgres::{AsyncMessage, NoTls};

use crate::metrics::Metrics;

#[derive(Clone)]
pub struct Wake {
    channels: Arc<Mutex<HashMap<String, watch::Sender<u64>>>>,
    listen: mpsc::UnboundedSender<String>,
}

/// A channel name as the extension makes them; anything else is never sent to `LISTEN`.
fn well_formed(name: &str) -> bool {
    name.len() == 29 && name.starts_with("buzz_") && name[5..].bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

impl Wake {
    pub fn start(url: String, metrics: Arc<Metrics>) -> Wake {
        let (listen, rx) = mpsc::unbounded_channel();
        let wake = Wake { channels: Arc::default(), listen };
        tokio::spawn(run(url, wake.channels.clone(), rx, metrics));
        wake
    }

    /// A receiver that changes whenever `name` is notified (None for a malformed name).
    pub fn watch(&self, name: &str) -> Option<watch::Receiver<u64>> {
        if !well_formed(name) {
            return None;
        }
        let mut map = self.channels.lock().unwrap();
        if let Some(tx) = map.get(name) {
            return Some(tx.subscribe());
        }
        let (tx, rx) = watch::channel(0);
        map.insert(name.to_owned(), tx);
        let _ = self.listen.send(name.to_owned());
        Some(rx)
    }
}

fn bump(tx: &watch::Sender<u64>) {
    tx.send_modify(|n| *n = n.wrapping_add(1));
}

async fn run(
    url: String,
    channels: Arc<Mutex<HashMap<String, watch::Sender<u64>>>>,
    mut new_names: mpsc::UnboundedReceiver<String>,
    metrics: Arc<Metrics>,
) {
    let mut backoff = Duration::from_millis(100);
    loop {
        match tokio_postgres::connect(&url, NoTls).await {
            Err(e) => tracing::warn!(error = %e, "wake-up connection failed; retrying"),
            Ok((client, mut connection)) => {
                backoff = Duration::from_millis(100);
                let (note_tx, mut notes) = mpsc::unbounded_channel();
                let conn_task = tokio::spawn(async move {
                    let mut stream = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
                    while let Some(msg) = stream.next().await {
                        match msg {
                            Ok(AsyncMessage::Notification(n)) => {
                                let _ = note_tx.send(n.channel().to_owned());
                            }
                            Ok(_) => {}
                            Err(e) => {
                                tracing::warn!(error = %e, "wake-up connection lost");
                                break;
                            }
                        }
                    }
                });
                let known: Vec<String> = channels.lock().unwrap().keys().cloned().collect();
                let mut ok = true;
                for name in &known {
                    ok &= client.batch_execute(&format!("LISTEN \"{name}\"")).await.is_ok();
                }
                if ok {
                    tracing::info!(channels = known.len(), "listening for wake-ups");
                    // Whatever was notified while we were away is polled now.
                    channels.lock().unwrap().values().for_each(bump);
                    loop {
                        tokio::select! {
                            name = new_names.recv() => {
                                let Some(name) = name else { return };
                                if client.batch_execute(&format!("LISTEN \"{name}\"")).await.is_err() {
                                    break;
                                }
                                // A commit between the subscriber's snapshot and this LISTEN
                                // sent no wake-up we could hear: poll once now.
                                if let Some(tx) = channels.lock().unwrap().get(&name) {
                                    bump(tx);
                                }
                            }
                            note = notes.recv() => {
                                let Some(name) = note else { break };
                                metrics.wakeups.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                                if let Some(tx) = channels.lock().unwrap().get(&name) {
                                    bump(tx);
                                }
                            }
                        }
                    }
                }
                conn_task.abort();
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}
