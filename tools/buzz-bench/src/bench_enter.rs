//! Measurement 3: `buzz.enter` per-transaction cost with 1 vs N (100,000) communities, in two
//! fresh databases of the same cluster. The 99,999 extra communities (with a host, a member
//! and a live session each) are inserted directly into the tables as superuser; the measured
//! community is made through the operator API and logged in with NIP-42 in both.
//!
//! * client-observed: the relay role, `BEGIN; SELECT buzz.enter(host, token); COMMIT`, timing
//!   the enter statement and the whole transaction, interleaved between the databases; plus
//!   `BEGIN; SELECT 1; COMMIT` as the round-trip floor, and a connection's NIP-42 challenge
//!   (`BEGIN; enter(host); auth_challenge(); COMMIT`) with the WAL it writes.
//! * server-side: a PL/pgSQL loop calling enter N times inside one transaction (no client round
//!   trips), minus the same loop around `buzz.current_community()`; and, for scale, the loop
//!   around the plain SPI lookup `SELECT community_id FROM buzz.community_hosts WHERE host = $1`.

use std::time::Instant;

use buzz_sign::Secp256k1;
use postgres::Client;
use serde_json::json;

use crate::common::{connect, emit, r2, r3, stats, us, Stats};
use crate::load::{host_of, login, relay_role};
use crate::rng::Rng;

const LOOP_FN: &str = r#"
CREATE OR REPLACE FUNCTION public.bench_loop(what text, h text, tok text, n int) RETURNS float8
LANGUAGE plpgsql AS $$
DECLARE t0 timestamptz; c uuid;
BEGIN
  t0 := clock_timestamp();
  IF what = 'enter_token' THEN
    FOR i IN 1..n LOOP PERFORM buzz.enter(h, tok); END LOOP;
  ELSIF what = 'enter_host' THEN
    FOR i IN 1..n LOOP PERFORM buzz.enter(h); END LOOP;
  ELSIF what = 'spi_lookup' THEN
    FOR i IN 1..n LOOP SELECT community_id INTO c FROM buzz.community_hosts WHERE host = h; END LOOP;
  ELSE
    FOR i IN 1..n LOOP PERFORM buzz.current_community(); END LOOP;
  END IF;
  RETURN extract(epoch FROM clock_timestamp() - t0) * 1e6 / n;
END $$;
"#;

/// Create database `db` with `n` communities; returns (host, token) of the API-made one.
fn make_db(db: &str, n: usize, role: &str) -> (String, String) {
    let mut pg = connect("postgres", "postgres");
    pg.batch_execute(&format!("DROP DATABASE IF EXISTS {db}")).unwrap();
    pg.batch_execute(&format!("CREATE DATABASE {db}")).unwrap();
    let mut admin = connect("postgres", db);
    admin.batch_execute("CREATE EXTENSION buzz_tenancy").unwrap();
    relay_role(&mut admin, role);
    if n > 1 {
        // Direct inserts as superuser (the operator API would take ~minutes for 100k).
        admin
            .execute(
                "WITH c AS (INSERT INTO buzz.communities (slug, name, admission)
                            SELECT 'x' || g, 'Filler ' || g, 'allowlist' FROM generate_series(1, $1::int) g
                            RETURNING id, slug),
                      h AS (INSERT INTO buzz.community_hosts (host, community_id)
                            SELECT slug || '.bench.example', id FROM c),
                      m AS (INSERT INTO buzz.members (community_id, pubkey, role, source)
                            SELECT id, encode(sha256(convert_to(slug, 'UTF8')), 'hex'), 'owner', 'admin' FROM c)
                 INSERT INTO buzz.sessions (community_id, token_hash, pubkey, expires_at)
                 SELECT id, sha256(convert_to('tok' || slug, 'UTF8')), encode(sha256(convert_to(slug, 'UTF8')), 'hex'),
                        now() + interval '1 day' FROM c",
                &[&((n - 1) as i32)],
            )
            .unwrap();
    }
    let secp = Secp256k1::new();
    let kp = buzz_sign::keypair(&secp, &crate::gen::author_sk(4242, 0, 0)).unwrap();
    let host = host_of("solo");
    admin.execute("SELECT buzz.create_community('solo', 'Solo', 'allowlist')", &[]).unwrap();
    admin.execute("SELECT buzz.add_host('solo', $1)", &[&host]).unwrap();
    admin.execute("SELECT buzz.admit('solo', $1)", &[&buzz_sign::pubkey_hex(&kp)]).unwrap();
    admin.batch_execute("VACUUM ANALYZE").unwrap();
    admin.batch_execute(LOOP_FN).unwrap();
    let mut relay = connect(role, db);
    let token = login(&mut relay, &secp, &kp, &host);
    let count: i64 = admin.query_one("SELECT count(*) FROM buzz.communities", &[]).unwrap().get(0);
    assert_eq!(count as usize, n);
    (host, token)
}

struct Side {
    relay: Client,
    admin: Client,
    enter2: postgres::Statement,
    enter1: postgres::Statement,
    one: postgres::Statement,
    challenge: postgres::Statement,
    host: String,
    token: String,
}

/// A connection's challenge as the relay asks for it: the whole transaction, µs.
fn time_challenge(s: &mut Side) -> f64 {
    let t0 = Instant::now();
    let mut tx = s.relay.transaction().unwrap();
    tx.execute(&s.enter1, &[&s.host]).unwrap();
    let _: String = tx.query_one(&s.challenge, &[]).unwrap().get(0);
    tx.commit().unwrap();
    us(t0.elapsed())
}

fn time_tx(c: &mut Client, stmt: &postgres::Statement, params: &[&(dyn postgres::types::ToSql + Sync)]) -> (f64, f64) {
    let t0 = Instant::now();
    let mut tx = c.transaction().unwrap();
    let t1 = Instant::now();
    tx.execute(stmt, params).unwrap();
    let s = us(t1.elapsed());
    tx.commit().unwrap();
    (s, us(t0.elapsed()))
}

pub fn run(n_big: usize, samples: usize, loop_n: i32, role: &str, out: &str) {
    let t = Instant::now();
    let mut sides: Vec<Side> = [("bench_enter_1", 1usize), ("bench_enter_n", n_big)]
        .iter()
        .map(|(db, n)| {
            let (host, token) = make_db(db, *n, role);
            let mut relay = connect(role, db);
            let enter2 = relay.prepare("SELECT buzz.enter($1::text, $2::text)").unwrap();
            let enter1 = relay.prepare("SELECT buzz.enter($1::text)").unwrap();
            let one = relay.prepare("SELECT 1").unwrap();
            let challenge = relay.prepare("SELECT buzz.auth_challenge()").unwrap();
            Side { relay, admin: connect("postgres", db), enter2, enter1, one, challenge, host, token }
        })
        .collect();
    eprintln!("enter: databases with 1 and {n_big} communities ready in {:.1}s", t.elapsed().as_secs_f64());

    // Client-observed, interleaved.
    let mut rng = Rng::new(99);
    let metrics = ["enter_token_stmt", "enter_token_txn", "enter_host_stmt", "enter_host_txn", "select1_txn", "challenge_txn"];
    let mut v: Vec<Vec<Vec<f64>>> = vec![vec![vec![]; metrics.len()]; 2];
    let mut miss = vec![];
    for i in 0..samples + 50 {
        for k in 0..2 {
            let side = (k + i) % 2;
            let s = &mut sides[side];
            let (a, b) = time_tx(&mut s.relay, &s.enter2, &[&s.host, &s.token]);
            let (c, d) = time_tx(&mut s.relay, &s.enter1, &[&s.host]);
            let (_, e) = time_tx(&mut s.relay, &s.one, &[]);
            let g = time_challenge(s);
            if i >= 50 {
                for (m, x) in [a, b, c, d, e, g].into_iter().enumerate() {
                    v[side][m].push(x);
                }
            }
            if side == 1 {
                // A random other host: almost always a first use in this backend (cache miss).
                let h = format!("x{}.bench.example", 1 + rng.below(n_big as u64 - 1));
                let (f, _) = time_tx(&mut s.relay, &s.enter1, &[&h]);
                if i >= 50 {
                    miss.push(f);
                }
            }
        }
    }
    let mut client = serde_json::Map::new();
    for (m, name) in metrics.iter().enumerate() {
        let (s1, sn): (Stats, Stats) = (stats(&v[0][m]), stats(&v[1][m]));
        client.insert(name.to_string(), json!({"one": s1.json(), "many": sn.json(), "ratio_median": r3(sn.median / s1.median)}));
    }
    let miss = stats(&miss).json();

    // WAL written per challenge (nothing else runs on the cluster meanwhile).
    const CHALLENGES: usize = 500;
    let s = &mut sides[0];
    let lsn = "SELECT pg_current_wal_insert_lsn()::text";
    let before: String = s.admin.query_one(lsn, &[]).unwrap().get(0);
    for _ in 0..CHALLENGES {
        time_challenge(s);
    }
    let after: String = s.admin.query_one(lsn, &[]).unwrap().get(0);
    let wal: f64 = s.admin.query_one("SELECT pg_wal_lsn_diff($1::text::pg_lsn, $2::text::pg_lsn)::float8", &[&after, &before]).unwrap().get(0);
    let challenge_wal_bytes = r2(wal / CHALLENGES as f64);

    // Server-side loops, interleaved, 5 repetitions each; the median is kept.
    let mut server = serde_json::Map::new();
    let whats = ["noop", "enter_host", "enter_token", "spi_lookup"];
    let mut res = vec![vec![vec![]; whats.len()]; 2];
    for _rep in 0..5 {
        for (w, what) in whats.iter().enumerate() {
            for (side, s) in sides.iter_mut().enumerate() {
                let mut tx = s.admin.transaction().unwrap();
                let per: f64 = tx
                    .query_one("SELECT public.bench_loop($1, $2, $3, $4)", &[what, &s.host, &s.token, &loop_n])
                    .unwrap()
                    .get(0);
                tx.rollback().unwrap();
                res[side][w].push(per);
            }
        }
    }
    for (w, what) in whats.iter().enumerate() {
        let m1 = stats(&res[0][w]).median;
        let mn = stats(&res[1][w]).median;
        let (n1, nn) = (stats(&res[0][0]).median, stats(&res[1][0]).median);
        server.insert(
            what.to_string(),
            json!({"one_us": r3(m1), "many_us": r3(mn), "one_net_us": r3(m1 - n1), "many_net_us": r3(mn - nn),
                   "ratio_net": r3((mn - nn) / (m1 - n1))}),
        );
    }
    emit(
        out,
        &json!({"bench": "enter", "communities": [1, n_big], "samples": samples, "loop_calls": loop_n,
                "client": client, "client_enter_host_random_many": miss, "challenge_wal_bytes": challenge_wal_bytes, "server": server, "setup_secs": r2(t.elapsed().as_secs_f64())}),
    );
}
