//! Measurement 4: live delivery (issue 12).
//!
//! * Idle `poll` (no news), server-side: a PL/pgSQL loop calling `buzz.poll` N times in one
//!   transaction, minus the same loop around `buzz.current_community()`. In two databases: one
//!   community alone, and the same community among N with stored events while a writer keeps
//!   publishing into other communities (pinned to the other CPU). Interleaved, 5 repetitions.
//! * Commit → wake-up → poll: a relay connection LISTENs on the channels of all N
//!   communities (one subscription each); a writer publishes into the measured community and
//!   commits; the listener, woken by the notification, polls and receives the event. The
//!   latency is from just before the writer's COMMIT to the poll's answer, in one process.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use buzz_sign::{Keypair, Secp256k1};
use postgres::fallible_iterator::FallibleIterator;
use postgres::Client;
use serde_json::json;

use crate::common::{connect, emit, pin_pair, r2, r3, stats, us};
use crate::load::{host_of, login, relay_role};

const LOOP_FN: &str = r#"
CREATE OR REPLACE FUNCTION public.bench_poll_loop(what text, h text, tok text, n int) RETURNS float8
LANGUAGE plpgsql AS $$
DECLARE t0 timestamptz; cur text; k bigint;
BEGIN
  PERFORM buzz.enter(h, tok);
  cur := buzz.cursor();
  t0 := clock_timestamp();
  IF what = 'poll' THEN
    FOR i IN 1..n LOOP SELECT count(*) INTO k FROM buzz.poll('{"kinds":[1]}', cur); END LOOP;
  ELSE
    FOR i IN 1..n LOOP PERFORM buzz.current_community(); END LOOP;
  END IF;
  RETURN extract(epoch FROM clock_timestamp() - t0) * 1e6 / n;
END $$;
"#;

/// Database `db` with `n` communities, each with `events` stored events (inserted directly as
/// superuser, positions included); returns the measured community's host, key and token.
fn make_db(db: &str, n: usize, events: usize, role: &str) -> (String, Keypair, String) {
    let mut pg = connect("postgres", "postgres");
    pg.batch_execute(&format!("DROP DATABASE IF EXISTS {db}")).unwrap();
    pg.batch_execute(&format!("CREATE DATABASE {db}")).unwrap();
    let mut admin = connect("postgres", db);
    admin.batch_execute("CREATE EXTENSION buzz_tenancy").unwrap();
    relay_role(&mut admin, role);
    let secp = Secp256k1::new();
    for c in 0..n {
        let slug = if c == 0 { "solo".to_owned() } else { format!("busy{c}") };
        let kp = buzz_sign::keypair(&secp, &crate::gen::author_sk(4343, c, 0)).unwrap();
        admin.execute("SELECT buzz.create_community($1, $1, 'allowlist')", &[&slug]).unwrap();
        admin.execute("SELECT buzz.add_host($1, $2)", &[&slug, &host_of(&slug)]).unwrap();
        admin.execute("SELECT buzz.admit($1, $2)", &[&slug, &buzz_sign::pubkey_hex(&kp)]).unwrap();
    }
    admin
        .execute(
            "WITH ev AS (
                 SELECT c.id AS community_id, g,
                        encode(sha256(convert_to(c.id::text || g, 'UTF8')), 'hex') AS id
                   FROM buzz.communities c, generate_series(1, $1::int) g)
             INSERT INTO buzz.events (community_id, id, pubkey, created_at, kind, event, position)
             SELECT community_id, id, repeat('a', 64), 1700000000 + g, 1,
                    jsonb_build_object('id', id, 'kind', 1, 'content', 'stored'), g FROM ev",
            &[&(events as i32)],
        )
        .unwrap();
    admin
        .execute(
            "INSERT INTO buzz.community_counters (community_id, tbl, col, last)
             SELECT id, 'buzz.events'::regclass, 'position', $1 FROM buzz.communities",
            &[&(events as i64)],
        )
        .unwrap();
    admin.batch_execute("VACUUM ANALYZE").unwrap();
    admin.batch_execute(LOOP_FN).unwrap();
    let kp = buzz_sign::keypair(&secp, &crate::gen::author_sk(4343, 0, 0)).unwrap();
    let mut relay = connect(role, db);
    let token = login(&mut relay, &secp, &kp, &host_of("solo"));
    (host_of("solo"), kp, token)
}

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

/// Publish into `busy1..busy10` until `stop` (the other communities' traffic).
fn busy_writer(db: &str, role: &str, stop: &AtomicBool) -> usize {
    let secp = Secp256k1::new();
    let mut c = connect(role, db);
    pin_pair(&mut c, 1);
    let writers: Vec<(String, Keypair, String)> = (1..=10)
        .map(|k| {
            let kp = buzz_sign::keypair(&secp, &crate::gen::author_sk(4343, k, 0)).unwrap();
            let host = host_of(&format!("busy{k}"));
            let token = login(&mut c, &secp, &kp, &host);
            (host, kp, token)
        })
        .collect();
    let mut n = 0;
    while !stop.load(Ordering::SeqCst) {
        let (host, kp, token) = &writers[n % writers.len()];
        let ev = buzz_sign::sign_event(&secp, kp, now(), 1, &[], &format!("busy {n}"));
        let mut tx = c.transaction().unwrap();
        tx.execute("SELECT buzz.enter($1::text, $2::text)", &[host, token]).unwrap();
        tx.query("SELECT * FROM buzz.publish($1::text)", &[&ev]).unwrap();
        tx.commit().unwrap();
        n += 1;
    }
    n
}

/// Nine interleaved repetitions of the noop and idle-poll loops in each database, each on a
/// backend pinned to CPU 0: `[side][noop, poll]` → µs per call.
fn idle_rounds(dbs: &[(&str, usize)], sides: &[(String, Keypair, String)], loop_n: i32) -> Vec<Vec<Vec<f64>>> {
    let mut admins: Vec<Client> = dbs.iter().map(|(db, _)| connect("postgres", db)).collect();
    for a in admins.iter_mut() {
        pin_pair(a, 0);
    }
    let whats = ["noop", "poll"];
    let mut res = vec![vec![vec![]; whats.len()]; dbs.len()];
    for _rep in 0..9 {
        for (w, what) in whats.iter().enumerate() {
            for side in 0..dbs.len() {
                let (host, _, token) = &sides[side];
                let mut tx = admins[side].transaction().unwrap();
                let per: f64 = tx
                    .query_one("SELECT public.bench_poll_loop($1, $2, $3, $4)", &[what, host, token, &loop_n])
                    .unwrap()
                    .get(0);
                tx.rollback().unwrap();
                res[side][w].push(per);
            }
        }
    }
    res
}

pub fn run(n_big: usize, events: usize, samples: usize, loop_n: i32, role: &str, out: &str) {
    let t = Instant::now();
    let dbs = [("bench_poll_1", 1usize), ("bench_poll_n", n_big)];
    let sides: Vec<(String, Keypair, String)> = dbs.iter().map(|(db, n)| make_db(db, *n, events, role)).collect();
    eprintln!("poll: databases with 1 and {n_big} communities ready in {:.1}s", t.elapsed().as_secs_f64());

    // Idle poll, server-side: both databases quiet, then again with the other communities of
    // the second one busy (the goal's comparison). The quiet round tells the size of the
    // database apart from the other communities' traffic.
    let quiet = idle_rounds(&dbs, &sides, loop_n);
    let stop = AtomicBool::new(false);
    let (busy_res, busy) = std::thread::scope(|sc| {
        let w = sc.spawn(|| busy_writer(dbs[1].0, role, &stop));
        std::thread::sleep(Duration::from_millis(500));
        let res = idle_rounds(&dbs, &sides, loop_n);
        stop.store(true, Ordering::SeqCst);
        (res, w.join().unwrap())
    });
    let net = |res: &Vec<Vec<Vec<f64>>>, side: usize| stats(&res[side][1]).median - stats(&res[side][0]).median;
    let idle = json!({"one_us": r3(net(&busy_res, 0)), "many_us": r3(net(&busy_res, 1)),
                      "ratio": r3(net(&busy_res, 1) / net(&busy_res, 0)),
                      "quiet_one_us": r3(net(&quiet, 0)), "quiet_many_us": r3(net(&quiet, 1)),
                      "quiet_ratio": r3(net(&quiet, 1) / net(&quiet, 0)),
                      "busy_publishes_during": busy});

    // Commit → wake-up → poll, in the database with n_big communities.
    let (db, _) = dbs[1];
    let (host, kp, token) = &sides[1];
    let secp = Secp256k1::new();
    let mut listener = connect(role, db);
    let mut channels = Vec::new();
    for c in 0..n_big {
        // A channel is given only to a context that can read: one login per community.
        let slug = if c == 0 { "solo".to_owned() } else { format!("busy{c}") };
        let member = buzz_sign::keypair(&secp, &crate::gen::author_sk(4343, c, 0)).unwrap();
        let member_token = login(&mut listener, &secp, &member, &host_of(&slug));
        let mut tx = listener.transaction().unwrap();
        tx.execute("SELECT buzz.enter($1::text, $2::text)", &[&host_of(&slug), &member_token]).unwrap();
        channels.push(tx.query_one("SELECT buzz.listen_channel()", &[]).unwrap().get::<_, String>(0));
        tx.commit().unwrap();
    }
    for ch in &channels {
        listener.batch_execute(&format!("LISTEN \"{ch}\"")).unwrap();
    }
    let mut cursor: String = {
        let mut tx = listener.transaction().unwrap();
        tx.execute("SELECT buzz.enter($1::text, $2::text)", &[host, token]).unwrap();
        let c = tx.query_one("SELECT buzz.cursor()", &[]).unwrap().get(0);
        tx.commit().unwrap();
        c
    };
    let poll = listener.prepare("SELECT event ->> 'id', cursor FROM buzz.poll('{\"kinds\":[1]}'::jsonb, $1)").unwrap();
    let mut writer = connect(role, db);
    let mut lat = Vec::new();
    for i in 0..samples + 20 {
        let ev = buzz_sign::sign_event(&secp, kp, now(), 1, &[], &format!("live {i}"));
        let id = serde_json::from_str::<serde_json::Value>(&ev).unwrap()["id"].as_str().unwrap().to_owned();
        let mut tx = writer.transaction().unwrap();
        tx.execute("SELECT buzz.enter($1::text, $2::text)", &[host, token]).unwrap();
        tx.query("SELECT * FROM buzz.publish($1::text)", &[&ev]).unwrap();
        let t0 = Instant::now();
        tx.commit().unwrap();
        // Wait for solo's wake-up (exactly one per commit), then poll its subscription.
        let channel = {
            let mut notes = listener.notifications();
            let note = notes.timeout_iter(Duration::from_secs(5)).next().unwrap().expect("no wake-up within 5 s");
            note.channel().to_owned()
        };
        assert_eq!(channel, channels[0]);
        let mut tx = listener.transaction().unwrap();
        tx.execute("SELECT buzz.enter($1::text, $2::text)", &[host, token]).unwrap();
        let rows = tx.query(&poll, &[&cursor]).unwrap();
        tx.commit().unwrap();
        let elapsed = us(t0.elapsed());
        let got: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
        assert_eq!(got, vec![id.clone()], "the poll after the wake-up returns exactly the new event");
        cursor = rows.last().unwrap().get(1);
        if i >= 20 {
            lat.push(elapsed);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let latency = stats(&lat).json();
    emit(
        out,
        &json!({"bench": "poll", "communities": [1, n_big], "events_per_community": events, "loop_calls": loop_n,
                "idle_poll_server": idle, "wakeup_latency": latency, "subscriptions": n_big,
                "setup_secs": r2(t.elapsed().as_secs_f64())}),
    );
}
