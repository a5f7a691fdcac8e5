//! Measurement 2: `buzz.publish` throughput vs. the baseline "the relay verifies in Rust
//! (secp256k1 + id check), then a plain `INSERT … ON CONFLICT DO NOTHING`" into
//! `bench_plain.events` / `bench_plain.event_tags`: the same columns, indexes and foreign keys,
//! no RLS, pre-filled with a copy of the same data so both sides insert into equally large
//! indexes. Fresh events for each side (same distribution, different seeds), signed before
//! the clock starts; rounds A B B A; two connections per side, each client thread pinned to
//! the CPU of its backend (connection i on CPU i), so both sides use both CPUs the same way.

use std::time::Instant;

use postgres::Client;
use secp256k1::{schnorr::Signature, Secp256k1, VerifyOnly, XOnlyPublicKey};
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::common::{connect, emit, r2, r3, State};
use crate::gen::{self, CommunityPlan};
use crate::load::{Finisher, Publisher};

/// Build the plain tables: LIKE … INCLUDING ALL (columns, NOT NULL, CHECK, defaults, every
/// index) plus the same foreign keys as buzz.events / buzz.event_tags; no RLS, no triggers.
pub fn make_plain(admin: &mut Client) -> f64 {
    let t = Instant::now();
    admin
        .batch_execute(
            "DROP SCHEMA IF EXISTS bench_plain CASCADE;
             CREATE SCHEMA bench_plain;
             CREATE TABLE bench_plain.events (LIKE buzz.events INCLUDING ALL);
             CREATE TABLE bench_plain.event_tags (LIKE buzz.event_tags INCLUDING ALL);
             INSERT INTO bench_plain.events SELECT * FROM buzz.events;
             INSERT INTO bench_plain.event_tags SELECT * FROM buzz.event_tags;
             -- the baseline orders no delivery: it assigns no position (buzz.publish does)
             ALTER TABLE bench_plain.events ALTER COLUMN position DROP NOT NULL;
             ALTER TABLE bench_plain.events
                 ADD FOREIGN KEY (community_id) REFERENCES buzz.communities (id) ON DELETE CASCADE,
                 ADD FOREIGN KEY (community_id, channel_id) REFERENCES buzz.channels (community_id, id) ON DELETE CASCADE;
             ALTER TABLE bench_plain.event_tags
                 ADD FOREIGN KEY (community_id, event_id) REFERENCES bench_plain.events (community_id, id) ON DELETE CASCADE;",
        )
        .unwrap();
    // VACUUM cannot run in the implicit transaction of a multi-statement string.
    admin.batch_execute("VACUUM ANALYZE bench_plain.events, bench_plain.event_tags, buzz.events, buzz.event_tags").unwrap();
    t.elapsed().as_secs_f64()
}

#[derive(Deserialize)]
struct Wire {
    id: String,
    pubkey: String,
    created_at: u64,
    kind: u16,
    tags: Vec<Vec<String>>,
    content: String,
    sig: String,
}

fn secp() -> &'static Secp256k1<VerifyOnly> {
    static CTX: std::sync::OnceLock<Secp256k1<VerifyOnly>> = std::sync::OnceLock::new();
    CTX.get_or_init(Secp256k1::verification_only)
}

/// What a relay does before a plain insert: parse, recompute the NIP-01 id, verify BIP-340,
/// and project the columns.
pub struct Checked {
    id: String,
    pubkey: String,
    created_at: i64,
    kind: i32,
    channel: Option<uuid::Uuid>,
    d_tag: Option<String>,
    expires_at: Option<i64>,
    names: Vec<String>,
    values: Vec<String>,
}

pub fn verify(text: &str) -> Option<Checked> {
    let w: Wire = serde_json::from_str(text).ok()?;
    let canon = serde_json::to_string(&json!([0, w.pubkey, w.created_at, w.kind, w.tags, w.content])).ok()?;
    let id: [u8; 32] = Sha256::digest(canon.as_bytes()).into();
    if hex::encode(id) != w.id {
        return None;
    }
    let pk = XOnlyPublicKey::from_slice(&hex::decode(&w.pubkey).ok()?).ok()?;
    let sig = Signature::from_slice(&hex::decode(&w.sig).ok()?).ok()?;
    secp().verify_schnorr(&sig, &id, &pk).ok()?;
    let tag = |n: &str| w.tags.iter().find(|t| t.len() >= 2 && t[0] == n).map(|t| t[1].clone());
    let d_tag = match w.kind {
        0 | 3 | 10_000..=19_999 => Some(String::new()),
        30_000..=39_999 => Some(tag("d").unwrap_or_default()),
        _ => None,
    };
    let mut pairs: Vec<(String, String)> = w
        .tags
        .iter()
        .filter(|t| t.len() >= 2 && t[0].len() == 1 && t[0].as_bytes()[0].is_ascii_alphabetic())
        .map(|t| (t[0].clone(), t[1].clone()))
        .collect();
    pairs.sort_unstable();
    pairs.dedup();
    let (names, values) = pairs.into_iter().unzip();
    Some(Checked {
        channel: tag("h").and_then(|h| h.parse().ok()),
        expires_at: tag("expiration").and_then(|e| e.parse().ok()),
        id: w.id,
        pubkey: w.pubkey,
        created_at: w.created_at as i64,
        kind: i32::from(w.kind),
        d_tag,
        names,
        values,
    })
}

impl Checked {
    /// The baseline's insert (`PLAIN_INSERT`, prepared as `stmt`) of this event, the JSON
    /// text `ev`, into `community`: 1 if stored, 0 if it was already there.
    pub fn insert(&self, client: &mut Client, stmt: &postgres::Statement, community: uuid::Uuid, ev: &str) -> i64 {
        let x = self;
        client
            .query_one(stmt, &[&community, &x.id, &x.pubkey, &x.created_at, &x.kind, &x.channel, &x.d_tag, &x.expires_at, &ev, &x.names, &x.values])
            .unwrap()
            .get(0)
    }
}

pub const PLAIN_INSERT: &str = "WITH ins AS (
        INSERT INTO bench_plain.events (community_id, id, pubkey, created_at, kind, channel_id, d_tag, expires_at, event)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::text::jsonb)
        ON CONFLICT DO NOTHING
        RETURNING id),
     tags AS (
        INSERT INTO bench_plain.event_tags (community_id, event_id, name, value, created_at)
        SELECT $1, ins.id, t.n, t.v, $4 FROM ins, unnest($10::text[], $11::text[]) AS t(n, v)
        ON CONFLICT DO NOTHING)
     SELECT count(*) FROM ins";

type Ev = (usize, usize, String); // community, author, signed JSON

/// Fresh signed events for existing communities/authors (same distribution as the main stream).
pub fn fresh(st: &State, plan: &[CommunityPlan], n: usize, seed: u64, t0: i64) -> Vec<Ev> {
    let total: usize = plan.iter().map(|p| p.events).sum();
    let scaled: Vec<CommunityPlan> = plan
        .iter()
        .map(|p| CommunityPlan { events: (p.events as f64 * n as f64 / total as f64).round() as usize, authors: p.authors })
        .collect();
    let gens = gen::generate_all(seed, st.key_seed, t0, 86_400, &scaled, 2);
    let mut fin = Finisher::new(st.key_seed);
    gens.iter().map(|g| (g.community, g.author, fin.finish(g, st))).collect()
}

fn split2(evs: &[Ev]) -> [Vec<&Ev>; 2] {
    let mut parts = [vec![], vec![]];
    for e in evs {
        parts[e.0 % 2].push(e);
    }
    parts
}

/// Side A: buzz.publish, one relay request per event. Returns (accepted, seconds).
fn run_buzz(st: &State, evs: &[Ev]) -> (usize, f64, Vec<(String, usize)>, [f64; 3]) {
    let parts = split2(evs);
    let mut pubs: Vec<Publisher> = (0..2).map(|_| Publisher::new(&st.relay_role, &st.db)).collect();
    let t = Instant::now();
    let res: Vec<(usize, Vec<String>, [f64; 3])> = std::thread::scope(|s| {
        let hs: Vec<_> = pubs
            .iter_mut()
            .zip(parts.iter())
            .enumerate()
            .map(|(t, (p, part))| {
                s.spawn(move || {
                    crate::common::pin_pair(&mut p.client, t);
                    let (mut ok, mut refused, mut sum) = (0, vec![], [0f64; 3]);
                    for (c, a, ev) in part.iter().map(|e| (&e.0, &e.1, &e.2)) {
                        let com = &st.communities[*c];
                        let (acc, msg, t) = p.publish_timed(&com.host, &com.tokens[*a], ev);
                        for k in 0..3 {
                            sum[k] += t[k];
                        }
                        if acc { ok += 1 } else { refused.push(msg) }
                    }
                    (ok, refused, sum)
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let secs = t.elapsed().as_secs_f64();
    let mut msgs: Vec<(String, usize)> = vec![];
    for m in res.iter().flat_map(|r| r.1.iter()) {
        match msgs.iter_mut().find(|x| &x.0 == m) {
            Some(x) => x.1 += 1,
            None => msgs.push((m.clone(), 1)),
        }
    }
    let mut sum = [0f64; 3];
    for r in &res {
        for k in 0..3 {
            sum[k] += r.2[k];
        }
    }
    (res.iter().map(|r| r.0).sum(), secs, msgs, sum)
}

/// Side B: verify in Rust, then the plain insert (autocommit: one statement per event).
fn run_plain(st: &State, evs: &[Ev]) -> (usize, f64, Vec<(String, usize)>, [f64; 3]) {
    let parts = split2(evs);
    let mut clients: Vec<(Client, postgres::Statement)> = (0..2)
        .map(|_| {
            let mut c = connect("postgres", &st.db);
            let s = c.prepare(PLAIN_INSERT).unwrap();
            (c, s)
        })
        .collect();
    let t = Instant::now();
    let res: Vec<(usize, usize, [f64; 3])> = std::thread::scope(|s| {
        let hs: Vec<_> = clients
            .iter_mut()
            .zip(parts.iter())
            .enumerate()
            .map(|(t, ((client, stmt), part))| {
                s.spawn(move || {
                    crate::common::pin_pair(client, t);
                    let (mut ok, mut bad, mut sum) = (0, 0, [0f64; 3]);
                    for (c, _, ev) in part.iter().map(|e| (&e.0, &e.1, &e.2)) {
                        let t0 = Instant::now();
                        let checked = verify(ev);
                        let t1 = Instant::now();
                        sum[1] += (t1 - t0).as_secs_f64() * 1e6;
                        let Some(x) = checked else {
                            bad += 1;
                            continue;
                        };
                        let n = x.insert(client, stmt, st.communities[*c].id, ev);
                        sum[2] += t1.elapsed().as_secs_f64() * 1e6;
                        if n == 1 { ok += 1 } else { bad += 1 }
                    }
                    (ok, bad, sum)
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let secs = t.elapsed().as_secs_f64();
    let not = res.iter().map(|r| r.1).sum::<usize>();
    let mut sum = [0f64; 3];
    for r in &res {
        for k in 0..3 {
            sum[k] += r.2[k];
        }
    }
    (res.iter().map(|r| r.0).sum(), secs, if not > 0 { vec![("not inserted (conflict or invalid)".into(), not)] } else { vec![] }, sum)
}

pub fn run(st: &State, plan: &[CommunityPlan], n: usize, seed: u64, out: &str) {
    let mut admin = connect("postgres", &st.db);
    let copy_secs = make_plain(&mut admin);
    eprintln!("publish: plain tables copied in {copy_secs:.1}s");
    let t0 = gen::T0 + gen::SPAN + 86_400;
    let t = Instant::now();
    let side_a = fresh(st, plan, n, seed.wrapping_add(1_000), t0);
    let side_b = fresh(st, plan, n, seed.wrapping_add(2_000), t0);
    eprintln!("publish: {} + {} fresh events signed in {:.1}s", side_a.len(), side_b.len(), t.elapsed().as_secs_f64());

    // Client-side verify cost alone, one thread (what the baseline relay spends per event).
    let t = Instant::now();
    let k = side_b.len().min(5_000);
    let ok = side_b[..k].iter().filter(|e| verify(&e.2).is_some()).count();
    assert_eq!(ok, k, "baseline verification refused generated events");
    let verify_us = t.elapsed().as_secs_f64() * 1e6 / k as f64;

    let (a1, a2) = side_a.split_at(side_a.len() / 2);
    let (b1, b2) = side_b.split_at(side_b.len() / 2);
    let mut rounds = vec![];
    let mut tot = [(0usize, 0usize, 0f64), (0, 0, 0.0)];
    let mut refusals: Vec<(String, usize)> = vec![];
    let mut parts = [[0f64; 3], [0f64; 3]];
    for (label, evs) in [("buzz", a1), ("plain", b1), ("plain", b2), ("buzz", a2)] {
        let (ok, secs, msgs, sum) = if label == "buzz" { run_buzz(st, evs) } else { run_plain(st, evs) };
        let i = usize::from(label == "plain");
        for k in 0..3 {
            parts[i][k] += sum[k];
        }
        tot[i].0 += evs.len();
        tot[i].1 += ok;
        tot[i].2 += secs;
        for (m, c) in msgs {
            match refusals.iter_mut().find(|x| x.0 == format!("{label}: {m}")) {
                Some(x) => x.1 += c,
                None => refusals.push((format!("{label}: {m}"), c)),
            }
        }
        eprintln!("publish round {label}: {} events in {secs:.2}s = {:.0}/s", evs.len(), evs.len() as f64 / secs);
        rounds.push(json!({"side": label, "events": evs.len(), "accepted": ok, "secs": r3(secs), "events_per_s": r2(evs.len() as f64 / secs)}));
    }
    let eps = |i: usize| tot[i].0 as f64 / tot[i].2;
    emit(
        out,
        &json!({
            "bench": "publish", "connections": 2, "events_per_side": [tot[0].0, tot[1].0],
            "buzz_events_per_s": r2(eps(0)), "plain_events_per_s": r2(eps(1)), "ratio": r3(eps(0) / eps(1)),
            "buzz_us_per_event_per_conn": r2(2e6 / eps(0)), "plain_us_per_event_per_conn": r2(2e6 / eps(1)),
            "buzz_accepted": tot[0].1, "plain_inserted": tot[1].1, "not_stored": refusals.iter().map(|(m, c)| json!([m, c])).collect::<Vec<_>>(),
            "client_verify_us_per_event_1_thread": r2(verify_us),
            "buzz_mean_us": {"begin_commit": r2(parts[0][0] / tot[0].0 as f64), "enter": r2(parts[0][1] / tot[0].0 as f64), "publish": r2(parts[0][2] / tot[0].0 as f64)},
            "plain_mean_us": {"verify": r2(parts[1][1] / tot[1].0 as f64), "insert": r2(parts[1][2] / tot[1].0 as f64)}, "rounds": rounds, "plain_copy_secs": r2(copy_secs),
        }),
    );
}

/// Up to `batch` events per statement, on two connections (each client thread pinned with its
/// backend): `each` stores one batch and says how many it stored. Returns (stored, seconds).
fn two_conns<C: Send>(evs: &[Ev], batch: usize, mut mk: impl FnMut() -> (C, Client), each: impl Fn(&mut C, &mut Client, &[&Ev]) -> usize + Sync) -> (usize, f64) {
    let parts = split2(evs);
    let mut conns: Vec<(C, Client)> = (0..2).map(|_| mk()).collect();
    let t = Instant::now();
    let stored: usize = std::thread::scope(|s| {
        let hs: Vec<_> = conns
            .iter_mut()
            .zip(parts.iter())
            .enumerate()
            .map(|(i, ((c, client), part))| {
                let each = &each;
                s.spawn(move || {
                    crate::common::pin_pair(client, i);
                    part.chunks(batch).map(|b| each(c, client, b)).sum::<usize>()
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).sum()
    });
    (stored, t.elapsed().as_secs_f64())
}

/// buzz, one statement per `batch` events in autocommit: `buzz.publish(host, token, events)`
/// (enter and publish in one round trip). A batch holds one community's events only if the
/// caller dealt them so; here each event's own host and token go with its batch, so batches
/// are split where the author changes.
fn run_one(st: &State, evs: &[Ev], batch: usize) -> (usize, f64) {
    let sql = "SELECT count(*) FILTER (WHERE accepted) FROM buzz.publish($1::text, $2::text, $3::text[])";
    two_conns(
        evs,
        batch,
        || {
            let mut c = connect(&st.relay_role, &st.db);
            (c.prepare(sql).unwrap(), c)
        },
        |stmt, client, b| {
            let mut stored = 0;
            for run in b.chunk_by(|x, y| x.0 == y.0 && x.1 == y.1) {
                let com = &st.communities[run[0].0];
                let events: Vec<&str> = run.iter().map(|e| e.2.as_str()).collect();
                let n: i64 = client.query_one(&*stmt, &[&com.host, &com.tokens[run[0].1], &events]).unwrap().get(0);
                stored += n as usize;
            }
            stored
        },
    )
}

/// The baseline's batch: verify each event in Rust, then one INSERT of the batch (the same
/// tables and conflict rule as `PLAIN_INSERT`, rows from arrays).
const PLAIN_BATCH: &str = "WITH v AS (
        SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::int8[], $5::int4[], $6::uuid[], $7::text[], $8::int8[], $9::text[])
            AS v(community_id, id, pubkey, created_at, kind, channel_id, d_tag, expires_at, event)),
     ins AS (
        INSERT INTO bench_plain.events (community_id, id, pubkey, created_at, kind, channel_id, d_tag, expires_at, event)
        SELECT community_id, id, pubkey, created_at, kind, channel_id, d_tag, expires_at, event::jsonb FROM v
        ON CONFLICT DO NOTHING
        RETURNING community_id, id, created_at),
     tags AS (
        INSERT INTO bench_plain.event_tags (community_id, event_id, name, value, created_at)
        SELECT ins.community_id, ins.id, t.n, t.v, ins.created_at
          FROM ins JOIN unnest($10::text[], $11::text[], $12::text[]) AS t(eid, n, v) ON t.eid = ins.id
        ON CONFLICT DO NOTHING)
     SELECT count(*) FROM ins";

fn run_plain_batch(st: &State, evs: &[Ev], batch: usize) -> (usize, f64) {
    two_conns(
        evs,
        batch,
        || {
            let mut c = connect("postgres", &st.db);
            (c.prepare(PLAIN_BATCH).unwrap(), c)
        },
        |stmt, client, b| {
            let mut cols: (Vec<uuid::Uuid>, Vec<String>, Vec<String>, Vec<i64>, Vec<i32>, Vec<Option<uuid::Uuid>>, Vec<Option<String>>, Vec<Option<i64>>, Vec<&str>) =
                Default::default();
            let (mut te, mut tn, mut tv) = (vec![], vec![], vec![]);
            for (c, _, ev) in b.iter().map(|e| (&e.0, &e.1, &e.2)) {
                let Some(x) = verify(ev) else { continue };
                for (n, v) in x.names.iter().zip(&x.values) {
                    te.push(x.id.clone());
                    tn.push(n.clone());
                    tv.push(v.clone());
                }
                cols.0.push(st.communities[*c].id);
                cols.1.push(x.id);
                cols.2.push(x.pubkey);
                cols.3.push(x.created_at);
                cols.4.push(x.kind);
                cols.5.push(x.channel);
                cols.6.push(x.d_tag);
                cols.7.push(x.expires_at);
                cols.8.push(ev.as_str());
            }
            let c = &cols;
            let n: i64 = client
                .query_one(&*stmt, &[&c.0, &c.1, &c.2, &c.3, &c.4, &c.5, &c.6, &c.7, &c.8, &te, &tn, &tv])
                .unwrap()
                .get(0);
            n as usize
        },
    )
}

/// The ceiling of any relay that verifies: two threads doing nothing but `verify`.
fn verify_only(evs: &[Ev]) -> f64 {
    let parts = split2(evs);
    let t = Instant::now();
    std::thread::scope(|s| {
        for part in &parts {
            s.spawn(move || assert!(part.iter().all(|e| verify(&e.2).is_some())));
        }
    });
    evs.len() as f64 / t.elapsed().as_secs_f64()
}

/// Publish with the round trips counted the same way on both sides: buzz in one statement
/// per event (`publish(host, token, ARRAY[event])`, autocommit) against the baseline's one
/// INSERT per event; and per batch of `BATCH` events against the baseline's one INSERT per
/// batch. Rounds A B B A per pair; the verify-only ceiling beside them.
pub fn run_round_trips(st: &State, plan: &[CommunityPlan], n: usize, seed: u64, out: &str) {
    const BATCH: usize = 16;
    let t0 = gen::T0 + gen::SPAN + 2 * 86_400;
    let mut sides: Vec<Vec<Ev>> = (0..4).map(|k| fresh(st, plan, n, seed.wrapping_add(3_000 + 100 * k as u64), t0)).collect();
    // A batch is one connection's, so one author's: the batch sides come grouped by author.
    for side in &mut sides[2..] {
        side.sort_by_key(|e| (e.0, e.1));
    }
    let ceiling = verify_only(&sides[0]);
    let mut pairs = vec![];
    for (name, batch, buzz, plain) in [("one per statement", 1, &sides[0], &sides[1]), ("batches of 16", BATCH, &sides[2], &sides[3])] {
        let (a1, a2) = buzz.split_at(buzz.len() / 2);
        let (b1, b2) = plain.split_at(plain.len() / 2);
        let mut tot = [(0usize, 0usize, 0f64); 2];
        for (side, evs) in [(0, a1), (1, b1), (1, b2), (0, a2)] {
            let (ok, secs) = match (side, batch) {
                (0, b) => run_one(st, evs, b),
                (_, 1) => {
                    let (ok, secs, _, _) = run_plain(st, evs);
                    (ok, secs)
                }
                (_, b) => run_plain_batch(st, evs, b),
            };
            tot[side].0 += evs.len();
            tot[side].1 += ok;
            tot[side].2 += secs;
        }
        let eps = |i: usize| tot[i].0 as f64 / tot[i].2;
        eprintln!("publish, {name}: buzz {:.0}/s, baseline {:.0}/s, ratio {:.2}", eps(0), eps(1), eps(0) / eps(1));
        pairs.push(json!({
            "pattern": name, "batch": batch, "buzz_events_per_s": r2(eps(0)), "plain_events_per_s": r2(eps(1)),
            "ratio": r3(eps(0) / eps(1)), "buzz_stored": tot[0].1, "plain_stored": tot[1].1, "events_per_side": tot[0].0,
            "buzz_to_verify_only": r3(eps(0) / ceiling),
        }));
    }
    emit(out, &json!({"bench": "publish_round_trips", "connections": 2, "verify_only_events_per_s": r2(ceiling), "pairs": pairs}));
}
