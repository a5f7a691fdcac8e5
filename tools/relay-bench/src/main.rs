//! One load generator for any NIP-01 relay, so that two relays are measured the same way
//! (bench/relay runs it against buzz-relay and nostr-rs-relay in one run):
//!
//!   relay-bench --label NAME --addr 127.0.0.1:PORT --hosts H1,H2,… [--auth]
//!               [--publishers 1,4,16] [--events 3000] [--subscribers 10,100]
//!               [--deliveries 200] [--rate 50]
//!
//! - publish: N connections (connection i uses host i mod #hosts) each send pre-signed kind-1
//!   events, one at a time (send, wait for `OK`), `--events` in all; accepted events/s is the
//!   number of `OK true` over the wall time from the first send to the last `OK`.
//! - delivery: M subscribers on the first host `REQ` the publisher's kind-1 events from now on;
//!   after every `EOSE`, one publisher sends `--deliveries` events at `--rate` per second and
//!   each subscriber notes when each arrives: latency = arrival − send, p50/p99 over all
//!   (event, subscriber) pairs; events never delivered within 5 s are counted as missing.
//!
//! With `--auth` every connection answers the relay's NIP-42 challenge first (a fresh key per
//! connection). Each connection to a loopback address comes from its own (127.1.x.y), so that
//! per-address limits apply per simulated client. Prints one JSON object per measurement on stdout.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use nostr::prelude::*;
use serde_json::{json, Value};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

type Ws = WebSocketStream<TcpStream>;
type Res<T> = Result<T, String>;

const WAIT: Duration = Duration::from_secs(10);

fn e<E: std::fmt::Display>(x: E) -> String {
    x.to_string()
}

struct Opts {
    label: String,
    addr: String,
    hosts: Vec<String>,
    auth: bool,
    publishers: Vec<usize>,
    events: usize,
    subscribers: Vec<usize>,
    deliveries: usize,
    rate: f64,
}

fn opts() -> Opts {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned();
    let list = |name: &str, default: &str| -> Vec<usize> {
        arg(name).unwrap_or(default.into()).split(',').filter_map(|s| s.parse().ok()).collect()
    };
    let (Some(label), Some(addr), Some(hosts)) = (arg("--label"), arg("--addr"), arg("--hosts")) else {
        eprintln!("usage: relay-bench --label NAME --addr HOST:PORT --hosts H1,H2 [--auth] [--publishers 1,4,16] [--events N] [--subscribers 10,100] [--deliveries N] [--rate R]");
        std::process::exit(2);
    };
    Opts {
        label,
        addr,
        hosts: hosts.split(',').map(str::to_owned).collect(),
        auth: args.iter().any(|a| a == "--auth"),
        publishers: list("--publishers", "1,4,16"),
        events: arg("--events").and_then(|s| s.parse().ok()).unwrap_or(3000),
        subscribers: list("--subscribers", "10,100"),
        deliveries: arg("--deliveries").and_then(|s| s.parse().ok()).unwrap_or(200),
        rate: arg("--rate").and_then(|s| s.parse().ok()).unwrap_or(50.0),
    }
}

/// Clients opened so far (each gets its own source address).
static CLIENTS: AtomicU32 = AtomicU32::new(0);

/// A TCP connection to `addr`. To a loopback address, each from its own loopback source
/// address (127.1.x.y), as real clients come from their own: the relays' per-address limits
/// then apply per simulated client, not to the whole load at once.
async fn open(addr: &str) -> Res<TcpStream> {
    let to: SocketAddr = addr.parse().map_err(e)?;
    if !to.ip().is_loopback() || !to.is_ipv4() {
        return TcpStream::connect(to).await.map_err(e);
    }
    let n = CLIENTS.fetch_add(1, Ordering::Relaxed) % (250 * 256);
    let from = Ipv4Addr::new(127, 1, (n / 250) as u8, (n % 250 + 1) as u8);
    let socket = TcpSocket::new_v4().map_err(e)?;
    socket.bind(SocketAddr::new(IpAddr::V4(from), 0)).map_err(e)?;
    socket.connect(to).await.map_err(e)
}

/// A connection to `addr` that says `Host: host`, logged in (NIP-42) when `auth`.
async fn connect(addr: &str, host: &str, auth: bool, keys: &Keys) -> Res<Ws> {
    let url = format!("ws://{host}/");
    let req = url.as_str().into_client_request().map_err(e)?;
    let tcp = open(addr).await?;
    tcp.set_nodelay(true).map_err(e)?;
    let (mut ws, _) = tokio_tungstenite::client_async(req, tcp).await.map_err(e)?;
    if auth {
        let challenge = loop {
            let m = next(&mut ws).await?;
            if m[0] == "AUTH" {
                break m[1].as_str().unwrap_or_default().to_owned();
            }
        };
        let relay = RelayUrl::parse(&url).map_err(e)?;
        let ev = EventBuilder::auth(challenge, relay).sign_with_keys(keys).map_err(e)?;
        send(&mut ws, json!(["AUTH", ev]).to_string()).await?;
        loop {
            let m = next(&mut ws).await?;
            if m[0] == "OK" {
                if m[2] != true {
                    return Err(format!("AUTH refused: {}", m[3]));
                }
                break;
            }
        }
    }
    Ok(ws)
}

async fn send(ws: &mut Ws, text: String) -> Res<()> {
    ws.send(Message::Text(text.into())).await.map_err(e)
}

/// The next text message, as JSON.
async fn next(ws: &mut Ws) -> Res<Value> {
    loop {
        match tokio::time::timeout(WAIT, ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => return serde_json::from_str(t.as_str()).map_err(e),
            Ok(Some(Ok(Message::Close(_)))) | Ok(None) => return Err("connection closed".into()),
            Ok(Some(Err(x))) => return Err(e(x)),
            Ok(Some(Ok(_))) => {}
            Err(_) => return Err("timed out".into()),
        }
    }
}

fn notes(keys: &Keys, n: usize, tag: &str) -> Res<Vec<(String, String)>> {
    (0..n)
        .map(|i| {
            let ev = EventBuilder::text_note(format!("{tag} {i}")).sign_with_keys(keys).map_err(e)?;
            Ok((ev.id.to_hex(), ev.as_json()))
        })
        .collect()
}

/// N publishers, `events` in all: (accepted, refused, seconds, first refusal).
async fn publish(o: &Opts, n: usize) -> Res<Value> {
    let per = o.events / n;
    let mut conns = Vec::new();
    for i in 0..n {
        let keys = Keys::generate();
        let ws = connect(&o.addr, &o.hosts[i % o.hosts.len()], o.auth, &keys).await?;
        conns.push((ws, notes(&keys, per, &format!("publish {n}.{i}"))?));
    }
    let started = Instant::now();
    let tasks: Vec<_> = conns
        .into_iter()
        .map(|(mut ws, events)| {
            tokio::spawn(async move {
                let (mut ok, mut refused, mut why) = (0usize, 0usize, None);
                for (id, ev) in events {
                    send(&mut ws, format!(r#"["EVENT",{ev}]"#)).await?;
                    loop {
                        let m = next(&mut ws).await?;
                        if m[0] == "OK" && m[1] == id.as_str() {
                            if m[2] == true {
                                ok += 1;
                            } else {
                                refused += 1;
                                why.get_or_insert(m[3].to_string());
                            }
                            break;
                        }
                    }
                }
                let _ = ws.close(None).await;
                Ok::<_, String>((ok, refused, why))
            })
        })
        .collect();
    let (mut ok, mut refused, mut why) = (0, 0, None);
    for t in tasks {
        let (a, r, w) = t.await.map_err(e)??;
        ok += a;
        refused += r;
        why = why.or(w);
    }
    let secs = started.elapsed().as_secs_f64();
    Ok(json!({"relay": o.label, "test": "publish", "clients": n, "events": per * n, "accepted": ok,
              "refused": refused, "first_refusal": why, "seconds": secs, "events_per_s": ok as f64 / secs}))
}

fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

/// M subscribers, one publisher at `rate`: publish→delivery latency.
async fn delivery(o: &Opts, m: usize) -> Res<Value> {
    let host = &o.hosts[0];
    let author = Keys::generate();
    let mut publisher = connect(&o.addr, host, o.auth, &author).await?;
    let since = Timestamp::now().as_secs() - 1;
    let filter = json!({"kinds": [1], "authors": [author.public_key().to_hex()], "since": since});
    let mut subs = Vec::new();
    for _ in 0..m {
        let mut ws = connect(&o.addr, host, o.auth, &Keys::generate()).await?;
        send(&mut ws, json!(["REQ", "s", filter]).to_string()).await?;
        loop {
            let msg = next(&mut ws).await?;
            if msg[0] == "EOSE" {
                break;
            }
            if msg[0] == "CLOSED" {
                return Err(format!("subscription refused: {}", msg[2]));
            }
        }
        subs.push(ws);
    }
    let events = notes(&author, o.deliveries, &format!("delivery {m}"))?;
    // Arrival instants per (subscriber, event id).
    let arrivals: Arc<Mutex<Vec<(String, Instant)>>> = Arc::default();
    let readers: Vec<_> = subs
        .into_iter()
        .map(|mut ws| {
            let arrivals = arrivals.clone();
            let expect = o.deliveries;
            tokio::spawn(async move {
                let mut seen = 0;
                let until = tokio::time::Instant::now() + Duration::from_secs(5) + Duration::from_secs_f64(expect as f64 / 10.0);
                while seen < expect {
                    match tokio::time::timeout_at(until, ws.next()).await {
                        Ok(Some(Ok(Message::Text(t)))) => {
                            let at = Instant::now();
                            if let Ok(v) = serde_json::from_str::<Value>(t.as_str()) {
                                if v[0] == "EVENT" {
                                    seen += 1;
                                    arrivals.lock().unwrap().push((v[2]["id"].as_str().unwrap_or_default().to_owned(), at));
                                }
                            }
                        }
                        Ok(Some(Ok(_))) => {}
                        _ => break,
                    }
                }
                let _ = ws.close(None).await;
            })
        })
        .collect();
    let mut sent: HashMap<String, Instant> = HashMap::new();
    let gap = Duration::from_secs_f64(1.0 / o.rate);
    let start = tokio::time::Instant::now();
    let mut refused = 0;
    for (i, (id, ev)) in events.into_iter().enumerate() {
        tokio::time::sleep_until(start + gap * i as u32).await;
        sent.insert(id.clone(), Instant::now());
        send(&mut publisher, format!(r#"["EVENT",{ev}]"#)).await?;
        loop {
            let msg = next(&mut publisher).await?;
            if msg[0] == "OK" && msg[1] == id.as_str() {
                if msg[2] != true {
                    refused += 1;
                }
                break;
            }
        }
    }
    for r in readers {
        r.await.map_err(e)?;
    }
    let arrivals = arrivals.lock().unwrap();
    let mut ms: Vec<f64> = arrivals
        .iter()
        .filter_map(|(id, at)| sent.get(id).map(|s| at.duration_since(*s).as_secs_f64() * 1000.0))
        .collect();
    ms.sort_by(|a, b| a.total_cmp(b));
    let expected = m * o.deliveries;
    Ok(json!({"relay": o.label, "test": "delivery", "subscribers": m, "events": o.deliveries, "rate": o.rate,
              "refused": refused, "deliveries": ms.len(), "missing": expected.saturating_sub(ms.len()),
              "p50_ms": quantile(&ms, 0.50), "p99_ms": quantile(&ms, 0.99), "max_ms": ms.last().copied()}))
}

#[tokio::main]
async fn main() {
    let o = opts();
    let mut failed = false;
    for &n in &o.publishers {
        match publish(&o, n).await {
            Ok(v) => println!("{v}"),
            Err(x) => {
                eprintln!("relay-bench {}: publish with {n} clients: {x}", o.label);
                failed = true;
            }
        }
    }
    for &m in &o.subscribers {
        match delivery(&o, m).await {
            Ok(v) => println!("{v}"),
            Err(x) => {
                eprintln!("relay-bench {}: delivery to {m} subscribers: {x}", o.label);
                failed = true;
            }
        }
    }
    std::process::exit(i32::from(failed));
}
