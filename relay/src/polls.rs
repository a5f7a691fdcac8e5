//! Live-delivery polls of the connections that share a Host value, gathered into one database
//! call (`buzz.poll_many`). One event wakes every subscriber connection of its community; a
//! transaction per connection costs the database (and the relay) M transactions per event.
//! Here the connections of one Host value, as received (the relay still knows no community),
//! queue their polls, and one task per host runs them: while one call runs, the next polls
//! gather for the following one. The extension reads each subscription under its own login and
//! refuses an entry for that entry alone.
//!
//! Each connection still takes its own turn first (its address's limits) and is charged its
//! share of the call's database time (by subscriptions and the bytes of events it got). A
//! call that fails as a whole is run again for each connection on its own, so that no client's
//! subscriptions can fail another's.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

use crate::db::{Entry, Polled, Refusal};
use crate::limits::Turn;
use crate::App;

type Answer = Result<Vec<Polled>, Refusal>;

/// One connection's poll: its entries, its turn (held until it is answered) and where the
/// answer goes.
struct Ask {
    entries: Vec<Entry>,
    turn: Turn,
    reply: oneshot::Sender<Answer>,
}

/// The hosts with polls queued or running (a host's task removes it when it runs dry).
#[derive(Default)]
pub struct Polls {
    hosts: Mutex<HashMap<String, VecDeque<Ask>>>,
}

/// Entries per call at most (the extension's `poll_many` takes up to 1,024); a connection's
/// poll is never split, whatever its size.
const MAX_ENTRIES: usize = 512;

/// What one subscription in a call weighs when its time is shared out, in bytes of events:
/// an entry that got nothing still cost its login lookup and, maybe, a statement.
const ENTRY_WEIGHT: u64 = 1024;

impl Polls {
    /// What came after each of `entries`' cursors, in order, or why nothing could be read.
    pub async fn poll(app: &Arc<App>, host: &str, entries: Vec<Entry>, turn: Turn) -> Answer {
        let (reply, answer) = oneshot::channel();
        let start = {
            let mut hosts = app.polls.hosts.lock().unwrap();
            let start = !hosts.contains_key(host);
            hosts.entry(host.to_owned()).or_default().push_back(Ask { entries, turn, reply });
            start
        };
        if start {
            tokio::spawn(run(app.clone(), host.to_owned()));
        }
        answer.await.unwrap_or_else(|_| Err(app.db.message("relay_unavailable")))
    }
}

/// The polls queued for `host` so far, oldest first, up to `MAX_ENTRIES` (at least one);
/// None (and the host forgotten, under the same lock) when there are none.
fn next_batch(app: &App, host: &str) -> Option<Vec<Ask>> {
    let mut hosts = app.polls.hosts.lock().unwrap();
    let queue = hosts.get_mut(host)?;
    let mut batch = Vec::new();
    let mut n = 0;
    while let Some(ask) = queue.front() {
        if !batch.is_empty() && n + ask.entries.len() > MAX_ENTRIES {
            break;
        }
        n += ask.entries.len();
        batch.push(queue.pop_front().expect("front exists"));
    }
    if batch.is_empty() {
        hosts.remove(host);
        return None;
    }
    Some(batch)
}

/// Forgets the host however its task ends (a panic included), so that the next poll starts a
/// new one instead of waiting for an answer that never comes.
struct Running {
    app: Arc<App>,
    host: String,
}

impl Drop for Running {
    fn drop(&mut self) {
        if std::thread::panicking() {
            // Its queued polls get `relay_unavailable` (their reply channels close).
            self.app.polls.hosts.lock().unwrap_or_else(|e| e.into_inner()).remove(&self.host);
        }
    }
}

/// A host's task: one call at a time, each with every poll queued meanwhile.
async fn run(app: Arc<App>, host: String) {
    let _running = Running { app: app.clone(), host: host.clone() };
    while let Some(batch) = next_batch(&app, &host) {
        app.metrics.polls.fetch_add(batch.len() as u64, Relaxed);
        app.metrics.poll_calls.fetch_add(1, Relaxed);
        let all: Vec<&Entry> = batch.iter().flat_map(|a| &a.entries).collect();
        let total = all.len().max(1) as u32;
        // The call takes a pool connection on the turn of the least loaded address among the
        // polls (a busy address at the head of the queue must not make the others wait).
        let carrier = batch.iter().min_by_key(|a| a.turn.load()).expect("a batch is never empty");
        let unavailable = || Err(app.db.message("relay_unavailable"));
        let (answer, took) = carrier.turn.run_uncharged(app.db.poll_many(&host, &all), unavailable).await;
        drop(all);
        // A failed call is shared out by subscriptions (there is no answer to weigh).
        let by_entries = |ask: &Ask| took * ask.entries.len() as u32 / total;
        match answer {
            Ok(mut polled) => {
                // Each connection pays its share of the call: a fixed part per subscription
                // and the bytes of events it got (reading them is most of a call's cost).
                let weight = |p: &[Polled]| -> u64 {
                    p.iter()
                        .map(|p| match p {
                            Polled::Events { rows, .. } => ENTRY_WEIGHT + rows.iter().map(|(e, c)| (e.len() + c.len()) as u64).sum::<u64>(),
                            Polled::Refused(_) => ENTRY_WEIGHT,
                        })
                        .sum()
                };
                let all = weight(&polled).max(1);
                for ask in batch {
                    let rest = polled.split_off(ask.entries.len().min(polled.len()));
                    let mine = std::mem::replace(&mut polled, rest);
                    ask.turn.charge(took.mul_f64(weight(&mine) as f64 / all as f64));
                    let _ = ask.reply.send(Ok(mine));
                }
            }
            Err(r) if batch.len() == 1 || r.0 == app.db.message("relay_unavailable").0 => {
                for ask in batch {
                    ask.turn.charge(by_entries(&ask));
                    let _ = ask.reply.send(Err(r.clone()));
                }
            }
            // Something in the call was refused as a whole: each poll again, on its own turn
            // (each pays its share of the failed call first).
            Err(_) => {
                for ask in batch {
                    ask.turn.charge(by_entries(&ask));
                    let app = app.clone();
                    let host = host.clone();
                    tokio::spawn(async move {
                        let refs: Vec<&Entry> = ask.entries.iter().collect();
                        let answer = ask.turn.run(app.db.poll_many(&host, &refs), || Err(app.db.message("relay_unavailable"))).await;
                        let _ = ask.reply.send(answer);
                    });
                }
            }
        }
        // Let the connections just answered queue their next polls with the others.
        tokio::task::yield_now().await;
    }
}
