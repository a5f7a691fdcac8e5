//! Measurement 1 (and 4): `buzz.req` under RLS vs. the same query hand-written with an explicit
//! `community_id = $1`, interleaved, per filter shape.
//!
//! Variants, each timed around the one statement (client round trip included), in an order
//! that rotates every sample:
//! * `req`  — the relay role, in `BEGIN; buzz.enter(host, token); SELECT … FROM buzz.req($1); COMMIT`.
//! * `hand` — the natural hand-written SQL a relay would run (explicit `community_id = $1`, no
//!   visibility rules), prepared, as the superuser (RLS bypassed), in `BEGIN … COMMIT`.
//! * `same` — the exact statement `buzz.req` builds (src/store/query.rs `build`, visibility
//!   rules included), prepared, as the superuser.
//! * `same_plan` — that statement again, but parsed and planned on every call (one-shot
//!   unnamed statement), which is what an SPI call without a saved plan does.
//! * `count` — `buzz.count` with the same filter, as the relay: the fixed cost of the function
//!   (context, reader, statement planning) without materializing events.
//! Together they split req's cost into: statement shape (same − hand), per-call planning
//! (same_plan − same), and the rest: RLS, SECURITY DEFINER, the reader's lookups and the
//! jsonb round trip of every row (req − same_plan).

use std::time::Instant;

use postgres::types::{ToSql, Type};
use postgres::Client;
use serde_json::{json, Value};

use crate::common::{connect, emit, r3, stats, us, Raw, State};

pub const SHAPES: &[&str] = &["kind", "author_kind", "tag_t", "tag_e", "ids", "time_range", "channel"];

/// A bound parameter.
#[derive(Clone, Debug)]
pub enum P {
    Uuid(uuid::Uuid),
    I64(i64),
    Str(String),
    Strs(Vec<String>),
    I32s(Vec<i32>),
    Uuids(Vec<uuid::Uuid>),
}

impl P {
    fn sql(&self) -> &(dyn ToSql + Sync) {
        match self {
            P::Uuid(v) => v,
            P::I64(v) => v,
            P::Str(v) => v,
            P::Strs(v) => v,
            P::I32s(v) => v,
            P::Uuids(v) => v,
        }
    }
}

fn typed(ps: &[P]) -> Vec<(&(dyn ToSql + Sync), Type)> {
    ps.iter()
        .map(|p| {
            let t = match p {
                P::Uuid(_) => Type::UUID,
                P::I64(_) => Type::INT8,
                P::Str(_) => Type::TEXT,
                P::Strs(_) => Type::TEXT_ARRAY,
                P::I32s(_) => Type::INT4_ARRAY,
                P::Uuids(_) => Type::UUID_ARRAY,
            };
            (p.sql(), t)
        })
        .collect()
}

pub fn refs(ps: &[P]) -> Vec<&(dyn ToSql + Sync)> {
    ps.iter().map(P::sql).collect()
}

fn strs(v: &Value) -> Vec<String> {
    v.as_array().map(|a| a.iter().map(|s| s.as_str().unwrap().to_owned()).collect()).unwrap_or_default()
}

fn limit(f: &Value) -> i64 {
    f.get("limit").and_then(Value::as_i64).unwrap_or(500).min(500)
}

/// The natural SQL a relay would write for each shape (no RLS, no visibility rules).
pub fn hand(shape: &str, f: &Value, community: uuid::Uuid) -> (String, Vec<P>) {
    let order = "ORDER BY created_at DESC, id LIMIT";
    let c = P::Uuid(community);
    match shape {
        "kind" => (
            format!("SELECT event FROM buzz.events WHERE community_id = $1 AND kind = ANY($2) {order} $3"),
            vec![c, P::I32s(f["kinds"].as_array().unwrap().iter().map(|k| k.as_i64().unwrap() as i32).collect()), P::I64(limit(f))],
        ),
        "author_kind" => (
            format!("SELECT event FROM buzz.events WHERE community_id = $1 AND pubkey = ANY($2) AND kind = ANY($3) {order} $4"),
            vec![
                c,
                P::Strs(strs(&f["authors"])),
                P::I32s(f["kinds"].as_array().unwrap().iter().map(|k| k.as_i64().unwrap() as i32).collect()),
                P::I64(limit(f)),
            ],
        ),
        "tag_t" | "tag_e" => {
            let key = if shape == "tag_t" { "#t" } else { "#e" };
            (
                format!(
                    "SELECT e.event FROM buzz.events e
                      WHERE e.community_id = $1
                        AND e.id IN (SELECT t.event_id FROM buzz.event_tags t
                                      WHERE t.community_id = $1 AND t.name = $2 AND t.value = ANY($3))
                      ORDER BY e.created_at DESC, e.id LIMIT $4"
                ),
                vec![c, P::Str(key[1..].to_owned()), P::Strs(strs(&f[key])), P::I64(limit(f))],
            )
        }
        "ids" => (
            format!("SELECT event FROM buzz.events WHERE community_id = $1 AND id = ANY($2) {order} $3"),
            vec![c, P::Strs(strs(&f["ids"])), P::I64(limit(f))],
        ),
        "time_range" => (
            format!("SELECT event FROM buzz.events WHERE community_id = $1 AND created_at >= $2 AND created_at <= $3 {order} $4"),
            vec![c, P::I64(f["since"].as_i64().unwrap()), P::I64(f["until"].as_i64().unwrap()), P::I64(limit(f))],
        ),
        "channel" => (
            format!("SELECT event FROM buzz.events WHERE community_id = $1 AND channel_id = ANY($2) {order} $3"),
            vec![c, P::Uuids(strs(&f["#h"]).iter().map(|s| s.parse().unwrap()).collect()), P::I64(limit(f))],
        ),
        _ => panic!("unknown shape {shape}"),
    }
}

/// A port of `build()` in src/store/query.rs (one filter, req form): the statement buzz.req
/// runs, with the same parameters. Keep in step with the extension.
pub fn same_sql(f: &Value, community: uuid::Uuid, now: i64, channels: &[uuid::Uuid]) -> (String, Vec<P>) {
    let obj = f.as_object().unwrap();
    let mut args = vec![P::Uuid(community), P::I64(now), P::Uuids(channels.to_vec())];
    let mut w = vec![
        "e.community_id = $1".to_owned(),
        "(e.expires_at IS NULL OR e.expires_at > $2)".to_owned(),
        "(e.channel_id IS NULL OR e.channel_id = ANY($3))".to_owned(),
    ];
    let bind = |p: P, args: &mut Vec<P>| {
        args.push(p);
        format!("${}", args.len())
    };
    let ints = |v: &Value| v.as_array().unwrap().iter().map(|k| k.as_i64().unwrap() as i32).collect::<Vec<_>>();
    // The extension binds in field order: ids, authors, kinds, channels, since, until, tags, limit.
    if let Some(v) = obj.get("ids") {
        w.push(format!("e.id = ANY({})", bind(P::Strs(strs(v)), &mut args)));
    }
    if let Some(v) = obj.get("authors") {
        w.push(format!("e.pubkey = ANY({})", bind(P::Strs(strs(v)), &mut args)));
    }
    if let Some(v) = obj.get("kinds") {
        w.push(format!("e.kind = ANY({})", bind(P::I32s(ints(v)), &mut args)));
    }
    if let Some(v) = obj.get("#h") {
        let us = strs(v).iter().map(|s| s.parse().unwrap()).collect();
        w.push(format!("e.channel_id = ANY({})", bind(P::Uuids(us), &mut args)));
    }
    if let Some(v) = obj.get("since") {
        w.push(format!("e.created_at >= {}", bind(P::I64(v.as_i64().unwrap()), &mut args)));
    }
    if let Some(v) = obj.get("until") {
        w.push(format!("e.created_at <= {}", bind(P::I64(v.as_i64().unwrap()), &mut args)));
    }
    for (k, v) in obj.iter().filter(|(k, _)| k.starts_with('#') && k.as_str() != "#h") {
        let n = bind(P::Str(k[1..].to_owned()), &mut args);
        let v = bind(P::Strs(strs(v)), &mut args);
        w.push(format!(
            "e.id IN (SELECT t.event_id FROM buzz.event_tags t
                       WHERE t.community_id = $1 AND t.name = {n} AND t.value = ANY({v}))"
        ));
    }
    let l = bind(P::I64(limit(f)), &mut args);
    let inner = format!("(SELECT e.id, e.created_at FROM buzz.events e WHERE {} ORDER BY e.created_at DESC, e.id LIMIT {l})", w.join(" AND "));
    (
        format!(
            "SELECT e.event FROM ({inner}) m
               JOIN buzz.events e ON e.community_id = $1 AND e.id = m.id
              ORDER BY m.created_at DESC, m.id"
        ),
        args,
    )
}

/// Communities the samples rotate over: ranks spread from the largest to the smallest.
pub fn sample_communities(n: usize) -> Vec<usize> {
    let mut v: Vec<usize> = [0, 1, 2, 5, 10, 20, 50, 100, 200, 500, 999].iter().copied().filter(|c| *c < n).collect();
    if !v.contains(&(n - 1)) {
        v.push(n - 1);
    }
    v
}

/// Pick concrete filters from the data (as superuser): for each sample community and shape.
pub fn choose_filters(admin: &mut Client, st: &State) -> Value {
    let mut out = vec![];
    for ci in sample_communities(st.communities.len()) {
        let c = &st.communities[ci];
        let top = |admin: &mut Client, name: &str| -> String {
            admin
                .query_opt(
                    "SELECT value FROM buzz.event_tags WHERE community_id = $1 AND name = $2
                      GROUP BY value ORDER BY count(*) DESC, value LIMIT 1",
                    &[&c.id, &name],
                )
                .unwrap()
                .map(|r| r.get(0))
                .unwrap_or_else(|| "nostr".into())
        };
        let ids: Vec<String> = admin
            .query("SELECT id FROM buzz.events WHERE community_id = $1 ORDER BY md5(id) LIMIT 10", &[&c.id])
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        let (lo, hi): (Option<i64>, Option<i64>) = {
            let r = admin.query_one("SELECT min(created_at), max(created_at) FROM buzz.events WHERE community_id = $1", &[&c.id]).unwrap();
            (r.get(0), r.get(1))
        };
        let mid = (lo.unwrap_or(0) + hi.unwrap_or(0)) / 2;
        let filters = [
            ("kind", json!({"kinds": [1], "limit": 50})),
            ("author_kind", json!({"authors": [c.pubkeys[0]], "kinds": [1], "limit": 50})),
            ("tag_t", json!({"#t": [top(admin, "t")], "limit": 50})),
            ("tag_e", json!({"#e": [top(admin, "e")], "limit": 100})),
            ("ids", json!({"ids": ids})),
            ("time_range", json!({"since": mid, "until": mid + 6 * 3600, "limit": 100})),
            ("channel", json!({"#h": [c.channels[0].to_string()], "limit": 50})),
        ];
        for (shape, f) in filters {
            out.push(json!({"community": ci, "shape": shape, "filter": f}));
        }
    }
    Value::Array(out)
}

/// Channels the reader (author 0, the channel creator) may read: mirrors `reader()`.
fn readable_channels(admin: &mut Client, c: &crate::common::Community) -> Vec<uuid::Uuid> {
    admin
        .query(
            "SELECT c.id FROM buzz.channels c
              WHERE c.community_id = $1
                AND (c.visibility = 'open'
                     OR EXISTS (SELECT 1 FROM buzz.channel_members m
                                 WHERE m.community_id = $1 AND m.channel_id = c.id AND m.pubkey = $2))",
            &[&c.id, &c.pubkeys[0]],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

fn now_secs() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

fn ids_of(rows: &[postgres::Row]) -> Vec<String> {
    rows.iter().map(|r| r.get::<_, Value>(0)["id"].as_str().unwrap().to_owned()).collect()
}

/// EXPLAIN ANALYZE of the statement buzz.req runs, as buzz_owner under the community's
/// context (so RLS applies exactly as inside buzz.req), and of the hand-written query.
fn explain(admin: &mut Client, st: &State, ci: usize, shape: &str, f: &Value, chans: &[uuid::Uuid]) -> String {
    let c = &st.communities[ci];
    let mut s = format!("=== {shape} (community rank {ci}) filter {f}\n--- buzz.req statement, as buzz_owner under RLS:\n");
    let (sql, ps) = same_sql(f, c.id, now_secs(), chans);
    let mut tx = admin.transaction().unwrap();
    tx.execute("SELECT buzz.enter($1::text, $2::text)", &[&c.host, &c.tokens[0]]).unwrap();
    tx.batch_execute("SET LOCAL ROLE buzz_owner").unwrap();
    for r in tx.query(&format!("EXPLAIN (ANALYZE, BUFFERS, TIMING OFF, SUMMARY ON) {sql}"), &refs(&ps)).unwrap() {
        s.push_str(&r.get::<_, String>(0));
        s.push('\n');
    }
    tx.rollback().unwrap();
    let (sql, ps) = hand(shape, f, c.id);
    s.push_str("--- hand-written, as superuser:\n");
    for r in admin.query(&format!("EXPLAIN (ANALYZE, BUFFERS, TIMING OFF, SUMMARY ON) {sql}"), &refs(&ps)).unwrap() {
        s.push_str(&r.get::<_, String>(0));
        s.push('\n');
    }
    s
}

pub fn run(st: &State, stage: &str, samples: usize, filters_path: &str, out: &str, raw_path: &str, plans_path: &str) {
    let mut admin = connect("postgres", &st.db);
    let filters: Value = match std::fs::read_to_string(filters_path) {
        Ok(t) => serde_json::from_str(&t).unwrap(),
        Err(_) => {
            let f = choose_filters(&mut admin, st);
            std::fs::write(filters_path, serde_json::to_string_pretty(&f).unwrap()).unwrap();
            f
        }
    };
    let mut relay = connect(&st.relay_role, &st.db);
    let enter = relay.prepare("SELECT buzz.enter($1::text, $2::text)").unwrap();
    let req = relay.prepare("SELECT r FROM buzz.req($1::jsonb) r").unwrap();
    let count = relay.prepare("SELECT buzz.count($1::jsonb)").unwrap();
    let mut raw = String::from("stage,shape,community,variant,sample,stmt_us,txn_us,rows\n");
    let mut plans = String::new();
    let (events, tags): (i64, i64) = {
        let r = admin.query_one("SELECT (SELECT count(*) FROM buzz.events), (SELECT count(*) FROM buzz.event_tags)", &[]).unwrap();
        (r.get(0), r.get(1))
    };
    let chans: Vec<Vec<uuid::Uuid>> = st.communities.iter().map(|c| readable_channels(&mut admin, c)).collect();

    for shape in SHAPES {
        let cases: Vec<(usize, Value)> = filters
            .as_array()
            .unwrap()
            .iter()
            .filter(|x| x["shape"] == *shape)
            .map(|x| (x["community"].as_u64().unwrap() as usize, x["filter"].clone()))
            .collect();
        // Prepared statements per case (generic or custom plans: PostgreSQL's choice, as for a relay).
        let mut hand_stmts = vec![];
        let mut same_stmts = vec![];
        let mut mismatches = 0;
        let mut rows_total = 0usize;
        for (ci, f) in &cases {
            let c = &st.communities[*ci];
            let (h, hp) = hand(shape, f, c.id);
            let (s, sp) = same_sql(f, c.id, now_secs(), &chans[*ci]);
            hand_stmts.push((admin.prepare(&h).unwrap(), hp));
            same_stmts.push((admin.prepare(&s).unwrap(), s, sp));
            // Correctness: the three must return the same events here (the reader sees all channels).
            let mut tx = relay.transaction().unwrap();
            tx.execute(&enter, &[&c.host, &c.tokens[0]]).unwrap();
            let a = ids_of(&tx.query(&req, &[f]).unwrap());
            tx.commit().unwrap();
            let (h_stmt, hp) = hand_stmts.last().unwrap();
            let b = ids_of(&admin.query(h_stmt, &refs(hp)).unwrap());
            let (s_stmt, _, sp) = same_stmts.last().unwrap();
            let d = ids_of(&admin.query(s_stmt, &refs(sp)).unwrap());
            if a != b || a != d {
                mismatches += 1;
                eprintln!("req {shape}: results differ for community {ci}: req {} hand {} same {}", a.len(), b.len(), d.len());
            }
            rows_total += a.len();
        }
        plans.push_str(&explain(&mut admin, st, cases[0].0, shape, &cases[0].1, &chans[cases[0].0]));
        let mid = cases.len() / 2;
        plans.push_str(&explain(&mut admin, st, cases[mid].0, shape, &cases[mid].1, &chans[cases[mid].0]));

        // Variants: 0 req, 1 hand, 2 same (prepared), 3 same_plan (same statement planned on
        // every call, like an SPI call without a saved plan), 4 count (buzz.count, as relay).
        const NAMES: [&str; 5] = ["req", "hand", "same", "same_plan", "count"];
        let mut t: Vec<Vec<f64>> = vec![vec![]; 5];
        let mut tx_req = vec![];
        let mut tx_hand = vec![];
        let warm = 10;
        for i in 0..samples + warm {
            let k = i % cases.len();
            let (ci, f) = &cases[k];
            let c = &st.communities[*ci];
            // Rotate the order of the variants every sample to cancel drift and caching order.
            for v in 0..NAMES.len() {
                let var = (v + i) % NAMES.len();
                let t0 = Instant::now();
                let (stmt, n) = match var {
                    0 | 4 => {
                        let mut tx = relay.transaction().unwrap();
                        tx.execute(&enter, &[&c.host, &c.tokens[0]]).unwrap();
                        let t1 = Instant::now();
                        let rows = tx.query(if var == 0 { &req } else { &count }, &[f]).unwrap();
                        let stmt = us(t1.elapsed());
                        let n = if var == 0 { rows.iter().map(|r| r.get::<_, Raw>(0).0).count() } else { rows[0].get::<_, i64>(0) as usize };
                        tx.commit().unwrap();
                        (stmt, n)
                    }
                    _ => {
                        let mut tx = admin.transaction().unwrap();
                        let t1 = Instant::now();
                        let rows = match var {
                            1 => tx.query(&hand_stmts[k].0, &refs(&hand_stmts[k].1)).unwrap(),
                            2 => tx.query(&same_stmts[k].0, &refs(&same_stmts[k].2)).unwrap(),
                            _ => tx.query_typed(&same_stmts[k].1, &typed(&same_stmts[k].2)).unwrap(),
                        };
                        let stmt = us(t1.elapsed());
                        let n = rows.iter().map(|r| r.get::<_, Raw>(0).0).count();
                        tx.commit().unwrap();
                        (stmt, n)
                    }
                };
                let txn = us(t0.elapsed());
                if i >= warm {
                    t[var].push(stmt);
                    match var {
                        0 => tx_req.push(txn),
                        1 => tx_hand.push(txn),
                        _ => {}
                    }
                    raw.push_str(&format!("{stage},{shape},{ci},{},{i},{stmt:.1},{txn:.1},{n}\n", NAMES[var]));
                }
            }
        }
        let (sr, sh, ss, sp, sc) = (stats(&t[0]), stats(&t[1]), stats(&t[2]), stats(&t[3]), stats(&t[4]));
        let (xr, xh) = (stats(&tx_req), stats(&tx_hand));
        emit(
            out,
            &json!({
                "bench": "req", "stage": stage, "shape": shape, "events": events, "event_tags": tags,
                "communities": st.communities.len(), "sample_communities": cases.len(),
                "avg_rows": rows_total as f64 / cases.len() as f64, "result_mismatches": mismatches,
                "req": sr.json(), "hand": sh.json(), "same": ss.json(), "same_plan": sp.json(), "count": sc.json(),
                "ratio_median": r3(sr.median / sh.median), "ratio_p90": r3(sr.p90 / sh.p90),
                "ratio_same_median": r3(sr.median / ss.median),
                "txn_req": xr.json(), "txn_hand": xh.json(), "ratio_txn_median": r3(xr.median / xh.median),
            }),
        );
    }
    std::fs::write(raw_path, raw).unwrap();
    std::fs::write(plans_path, plans).unwrap();
}
