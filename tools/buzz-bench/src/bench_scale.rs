//! Measurement 6: throughput with 1, 2, 4 and 8 client connections, each side by side with its
//! baseline in the same run, to show what each core gives and where the machine saturates.
//!
//! * publish — `buzz.publish` as the relay calls it (`BEGIN; enter(host, token); publish;
//!   COMMIT`) vs. the publish bench's baseline (verify in Rust, then the plain insert into
//!   `bench_plain`, made by `bench publish`, which runs first). Each connection count gets fresh
//!   events (same distribution, its own seed), dealt round-robin to the connections.
//! * req — `BEGIN; enter(host, token); SELECT … FROM buzz.req(filter); COMMIT` as the relay vs.
//!   the hand-written statement of the req bench in `BEGIN … COMMIT` as the superuser, each
//!   connection cycling through every (community, shape) filter of the req bench for a fixed
//!   time.
//!
//! No thread is pinned: the operating system spreads connections and backends over the cores,
//! as it would for a relay. Rounds per connection count: buzz, baseline, baseline, buzz.

use std::time::{Duration, Instant};

use postgres::Client;
use serde_json::{json, Value};

use crate::bench_publish::{fresh, verify, PLAIN_INSERT};
use crate::bench_req::{hand, refs};
use crate::common::{connect, emit, r2, r3, State};
use crate::gen::{self, CommunityPlan};
use crate::load::Publisher;

type Ev = (usize, usize, String);

/// Publishes `evs` over `conns` connections (event i on connection i mod conns); events/s
/// accepted (or inserted), and how many were not.
fn publish(st: &State, evs: &[Ev], conns: usize, buzz: bool) -> (f64, usize) {
    let parts: Vec<Vec<&Ev>> = (0..conns).map(|k| evs.iter().skip(k).step_by(conns).collect()).collect();
    let t = Instant::now();
    let done: Vec<(usize, usize)> = std::thread::scope(|s| {
        let hs: Vec<_> = parts
            .iter()
            .map(|part| {
                s.spawn(move || {
                    let (mut ok, mut not) = (0, 0);
                    if buzz {
                        let mut p = Publisher::new(&st.relay_role, &st.db);
                        for (c, a, ev) in part.iter().map(|e| (e.0, e.1, &e.2)) {
                            let com = &st.communities[c];
                            if p.publish(&com.host, &com.tokens[a], ev).0 { ok += 1 } else { not += 1 }
                        }
                    } else {
                        let mut client = connect("postgres", &st.db);
                        let stmt = client.prepare(PLAIN_INSERT).unwrap();
                        for (c, ev) in part.iter().map(|e| (e.0, &e.2)) {
                            let Some(x) = verify(ev) else {
                                not += 1;
                                continue;
                            };
                            if x.insert(&mut client, &stmt, st.communities[c].id, ev) == 1 { ok += 1 } else { not += 1 }
                        }
                    }
                    (ok, not)
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let secs = t.elapsed().as_secs_f64();
    (done.iter().map(|d| d.0).sum::<usize>() as f64 / secs, done.iter().map(|d| d.1).sum())
}

/// Requests per second over `conns` connections for `dur`, each cycling through `filters`
/// (from its own offset); and the mean rows per request.
fn reqs(st: &State, filters: &[Value], conns: usize, dur: Duration, buzz: bool) -> (f64, f64) {
    let t = Instant::now();
    let done: Vec<(usize, usize)> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..conns)
            .map(|k| {
                s.spawn(move || {
                    let mut client: Client = connect(if buzz { &st.relay_role } else { "postgres" }, &st.db);
                    let enter = client.prepare("SELECT buzz.enter($1::text, $2::text)").unwrap();
                    let req = client.prepare("SELECT r FROM buzz.req($1::jsonb) r").unwrap();
                    // The baseline's statements, prepared once (as the req bench does).
                    let hands: Vec<_> = if buzz {
                        vec![]
                    } else {
                        filters
                            .iter()
                            .map(|f| {
                                let c = &st.communities[f["community"].as_u64().unwrap() as usize];
                                let (sql, ps) = hand(f["shape"].as_str().unwrap(), &f["filter"], c.id);
                                (client.prepare(&sql).unwrap(), ps)
                            })
                            .collect()
                    };
                    let (mut n, mut rows) = (0, 0);
                    let mut i = k * filters.len() / conns;
                    let start = Instant::now();
                    while start.elapsed() < dur {
                        let j = i % filters.len();
                        let f = &filters[j];
                        let c = &st.communities[f["community"].as_u64().unwrap() as usize];
                        let mut tx = client.transaction().unwrap();
                        rows += if buzz {
                            tx.execute(&enter, &[&c.host, &c.tokens[0]]).unwrap();
                            tx.query(&req, &[&f["filter"]]).unwrap().len()
                        } else {
                            tx.query(&hands[j].0, &refs(&hands[j].1)).unwrap().len()
                        };
                        tx.commit().unwrap();
                        n += 1;
                        i += 1;
                    }
                    (n, rows)
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let secs = t.elapsed().as_secs_f64();
    let n: usize = done.iter().map(|d| d.0).sum();
    (n as f64 / secs, done.iter().map(|d| d.1).sum::<usize>() as f64 / n.max(1) as f64)
}

/// Medians of two rounds each, in the order buzz, baseline, baseline, buzz.
fn abba(mut run: impl FnMut(bool, usize) -> f64) -> (f64, f64) {
    let (a1, b1, b2, a2) = (run(true, 0), run(false, 0), run(false, 1), run(true, 1));
    ((a1 + a2) / 2.0, (b1 + b2) / 2.0)
}

#[allow(clippy::too_many_arguments)]
pub fn run(st: &State, plan: &[CommunityPlan], seed: u64, filters_path: &str, clients: &[usize], n_publish: usize, req_secs: f64, out: &str) {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let filters: Vec<Value> = serde_json::from_str::<Value>(&std::fs::read_to_string(filters_path).expect("the req bench's filters"))
        .unwrap()
        .as_array()
        .unwrap()
        .clone();
    let mut pubs = vec![];
    let mut rs = vec![];
    for (k, &conns) in clients.iter().enumerate() {
        // Fresh events per round, each round a later day than any before (and than the publish
        // bench's), with a seed of its own: a replaceable event is never older than the head
        // it meets, so buzz refuses none for that.
        let rounds: Vec<Vec<Ev>> = (0..4)
            .map(|r| fresh(st, plan, n_publish, seed.wrapping_add(5_000 + 10 * k as u64 + r), gen::T0 + gen::SPAN + 86_400 * (10 + 4 * k as i64 + r as i64)))
            .collect();
        let mut not_stored = [0, 0];
        let (buzz_eps, plain_eps) = abba(|buzz, r| {
            let (eps, not) = publish(st, &rounds[usize::from(!buzz) * 2 + r], conns, buzz);
            not_stored[usize::from(!buzz)] += not;
            eps
        });
        eprintln!("scale publish, {conns} connections: buzz {buzz_eps:.0}/s, plain {plain_eps:.0}/s");
        pubs.push(json!({"clients": conns, "buzz_events_per_s": r2(buzz_eps), "plain_events_per_s": r2(plain_eps),
                         "ratio": r3(buzz_eps / plain_eps), "buzz_not_stored": not_stored[0], "plain_not_stored": not_stored[1]}));
        let dur = Duration::from_secs_f64(req_secs);
        let mut rows = 0.0;
        let (buzz_rps, hand_rps) = abba(|buzz, _| {
            let (rps, r) = reqs(st, &filters, conns, dur, buzz);
            rows = r;
            rps
        });
        eprintln!("scale req, {conns} connections: buzz {buzz_rps:.0}/s, hand {hand_rps:.0}/s");
        rs.push(json!({"clients": conns, "buzz_req_per_s": r2(buzz_rps), "hand_req_per_s": r2(hand_rps),
                       "ratio": r3(buzz_rps / hand_rps), "rows_per_req": r2(rows)}));
    }
    emit(out, &json!({"bench": "scale", "cores": cores, "publish_events_per_round": n_publish, "req_secs_per_round": req_secs,
                      "filters": filters.len(), "publish": pubs, "req": rs}));
}
