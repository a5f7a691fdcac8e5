//! PgBouncer in transaction pooling mode (issue 14): more clients than server connections,
//! each transaction of a client on whichever server connection is free, PgBouncer's default
//! of no reset between clients. Clients interleave their own communities' contexts, errors
//! mid-transaction, savepoints rolled back, a session-level `SET row_security = off` left on
//! a server connection, and clients killed mid-transaction (the socket closed, no Terminate).
//! Asserted at every step: a transaction sees only the context it entered, none is visible
//! outside a transaction, and no cursor or prepared statement is ever left on a server
//! connection for the next client. Statements are unnamed (`query_typed`, `simple_query`):
//! nothing is prepared by name, as docs/operations.md asks of clients on PgBouncer 1.18.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::thread;
use std::time::Duration;

use postgres::types::Type;
use postgres::Client;
use serde_json::json;

use crate::prng::Rng;
use crate::report::Report;
use crate::setup::{self, admit, create_community, err, now, Keys, Pg, Scratch, RELAY_ROLE};

const COMMUNITIES: usize = 3;
const CLIENTS: usize = 12;
const ROUNDS: usize = 40;

/// One client's identity: its host, login and what its community holds.
#[derive(Clone)]
struct Who {
    host: String,
    token: String,
    community: String,
    pubkey: String,
    /// Kind-1 events in its community (1, 2, 3: the count names the community).
    events: i64,
}

pub fn run(pg: &Pg, bouncer_port: u16, seed: u64, report: &mut Report) {
    report.check("PgBouncer: contexts, errors, savepoints, killed clients, left-over settings", check(pg, bouncer_port, seed));
}

fn check(pg: &Pg, bouncer_port: u16, seed: u64) -> Result<(), String> {
    let s = Scratch::create(pg, "pooler")?;
    let mut rng = Rng::new(seed);
    let keys = Keys::generate(&mut rng, CLIENTS);
    let mut admin = s.admin()?;
    let mut relay = s.relay()?;
    let mut who = Vec::new();
    for c in 0..COMMUNITIES {
        let host = format!("pool{c}.test");
        create_community(&mut admin, &format!("pool{c}"), &host, "allowlist")?;
    }
    for i in 0..CLIENTS {
        let c = i % COMMUNITIES;
        let host = format!("pool{c}.test");
        admit(&mut admin, &format!("pool{c}"), &keys.pks[i], "member")?;
        let token = setup::login(&mut relay, &keys, i, &host)?;
        who.push(Who { host, token, community: String::new(), pubkey: keys.pks[i].clone(), events: c as i64 + 1 });
    }
    for c in 0..COMMUNITIES {
        let first = who.iter().position(|w| w.events == c as i64 + 1).expect("a client per community");
        for n in 0..=c {
            let ev = keys.sign(first, now() - 10 - n as i64, 1, &[], &format!("community {c}, note {n}"));
            let (ok, msg) = setup::publish(&mut relay, &who[first].host.clone(), &who[first].token.clone(), &ev)?;
            if !ok {
                return Err(format!("seed publish: {msg}"));
            }
        }
        let id: String = setup::txn(&mut relay, &who[first].host.clone(), None, |c| {
            c.query_one("SELECT buzz.current_community()::text", &[]).map(|r| r.get(0)).map_err(|e| err(&e))
        })?;
        for w in who.iter_mut().filter(|w| w.events == c as i64 + 1) {
            w.community = id.clone();
        }
    }
    drop(relay);

    let through = pg.with_port(bouncer_port);
    let db = s.db.clone();
    let kills = AtomicUsize::new(0);
    let failures: Vec<String> = thread::scope(|scope| {
        let handles: Vec<_> = (0..CLIENTS)
            .map(|i| {
                let (me, through, db, kills) = (who[i].clone(), through.clone(), db.clone(), &kills);
                let seed = seed.wrapping_add(i as u64 + 1);
                scope.spawn(move || client_loop(&through, &db, &me, seed, kills).map_err(|e| format!("client {i}: {e}")))
            })
            .collect();
        handles.into_iter().filter_map(|h| h.join().unwrap_or(Err("panicked".into())).err()).collect()
    });
    if let Some(f) = failures.first() {
        return Err(format!("{} of {CLIENTS} clients failed; first: {f}", failures.len()));
    }
    if kills.load(Relaxed) == 0 {
        return Err("no client was killed mid-transaction".into());
    }
    Ok(())
}

/// The context and kind-1 count a transaction sees after entering `me`.
fn sees(c: &mut Client) -> Result<(Option<String>, Option<String>, i64), String> {
    let row = c
        .query_typed_one(
            "SELECT buzz.current_community()::text, buzz.current_actor(), (SELECT count(*) FROM buzz.req($1::jsonb))",
            &[(&json!([{"kinds": [1]}]), Type::JSONB)],
        )
        .map_err(|e| format!("reading the context: {}", err(&e)))?;
    Ok((row.get(0), row.get(1), row.get(2)))
}

fn expect_own(c: &mut Client, me: &Who, step: &str) -> Result<(), String> {
    let seen = sees(c)?;
    if seen != (Some(me.community.clone()), Some(me.pubkey.clone()), me.events) {
        return Err(format!("{step}: saw {seen:?}, entered {} as {}", me.community, me.pubkey));
    }
    Ok(())
}

fn enter(c: &mut Client, me: &Who) -> Result<(), String> {
    c.batch_execute("BEGIN").map_err(|e| err(&e))?;
    c.query_typed("SELECT buzz.enter($1, $2)", &[(&me.host, Type::TEXT), (&me.token, Type::TEXT)])
        .map(drop)
        .map_err(|e| format!("enter: {}", err(&e)))
}

/// Outside any transaction: no context, no cursor, no prepared statement on this server
/// connection, whoever used it last.
fn expect_clean(c: &mut Client) -> Result<(), String> {
    let row = c
        .query_typed_one(
            "SELECT buzz.current_community()::text, (SELECT count(*) FROM pg_cursors WHERE name <> ''), (SELECT count(*) FROM pg_prepared_statements)",
            &[],
        )
        .map_err(|e| err(&e))?;
    let seen: (Option<String>, i64, i64) = (row.get(0), row.get(1), row.get(2));
    if seen != (None, 0, 0) {
        return Err(format!("outside a transaction: context, cursors, prepared statements = {seen:?}"));
    }
    Ok(())
}

fn client_loop(through: &Pg, db: &str, me: &Who, seed: u64, kills: &AtomicUsize) -> Result<(), String> {
    let mut rng = Rng::new(seed);
    let mut c = through.connect(db, RELAY_ROLE)?;
    for round in 0..ROUNDS {
        expect_clean(&mut c).map_err(|e| format!("round {round}: {e}"))?;
        match rng.below(8) {
            // A request.
            0..=2 => {
                enter(&mut c, me)?;
                expect_own(&mut c, me, "request")?;
                c.batch_execute("COMMIT").map_err(|e| err(&e))?;
            }
            // An error mid-transaction, then ROLLBACK.
            3 => {
                enter(&mut c, me)?;
                if c.query_typed("SELECT buzz.req($1::jsonb)", &[(&json!("not filters"), Type::JSONB)]).is_ok() {
                    return Err("a malformed req was answered".into());
                }
                c.batch_execute("ROLLBACK").map_err(|e| err(&e))?;
            }
            // A savepoint rolled back after an error: the context is still this client's.
            4 => {
                enter(&mut c, me)?;
                c.batch_execute("SAVEPOINT s").map_err(|e| err(&e))?;
                if c.batch_execute("SELECT 1 / 0").is_ok() {
                    return Err("1 / 0 succeeded".into());
                }
                c.batch_execute("ROLLBACK TO SAVEPOINT s").map_err(|e| err(&e))?;
                expect_own(&mut c, me, "after ROLLBACK TO SAVEPOINT")?;
                // A cursor that would outlive the transaction is refused in a context.
                c.batch_execute("SAVEPOINT h").map_err(|e| err(&e))?;
                if c.batch_execute("DECLARE held CURSOR WITH HOLD FOR SELECT * FROM buzz.req('[{}]')").is_ok() {
                    return Err("a WITH HOLD cursor was declared in a context".into());
                }
                c.batch_execute("ROLLBACK TO SAVEPOINT h; COMMIT").map_err(|e| err(&e))?;
            }
            // A session setting left on whichever server connection this lands on.
            5 | 6 => {
                c.batch_execute("SET row_security = off").map_err(|e| err(&e))?;
                enter(&mut c, me)?;
                expect_own(&mut c, me, "after SET row_security = off")?;
                c.batch_execute("COMMIT").map_err(|e| err(&e))?;
            }
            // Killed mid-transaction, on a connection of its own.
            _ => {
                killed_mid_transaction(through, db, me)?;
                kills.fetch_add(1, Relaxed);
            }
        }
        if rng.chance(20) {
            thread::sleep(Duration::from_millis(rng.below(5) as u64));
        }
    }
    Ok(())
}

/// A client that enters and dies inside its transaction: its socket closes without a
/// Terminate message (the frontend protocol by hand, so nothing is closed politely).
fn killed_mid_transaction(through: &Pg, db: &str, me: &Who) -> Result<(), String> {
    let mut s = UnixStream::connect(through.socket()).map_err(|e| format!("connect: {e}"))?;
    let mut startup = Vec::new();
    startup.extend_from_slice(&196608i32.to_be_bytes());
    for (k, v) in [("user", RELAY_ROLE), ("database", db)] {
        startup.extend_from_slice(k.as_bytes());
        startup.push(0);
        startup.extend_from_slice(v.as_bytes());
        startup.push(0);
    }
    startup.push(0);
    let mut msg = ((startup.len() + 4) as i32).to_be_bytes().to_vec();
    msg.extend_from_slice(&startup);
    s.write_all(&msg).map_err(|e| e.to_string())?;
    read_until_ready(&mut s)?;
    // Quoted literals: the host and token are ours (a test host name and hex).
    simple_query(&mut s, &format!("BEGIN; SELECT buzz.enter('{}', '{}')", me.host, me.token))?;
    loop {
        match next_message(&mut s)? {
            (b'Z', _) => break,
            (b'E', body) => return Err(format!("enter refused: {}", String::from_utf8_lossy(&body))),
            _ => {}
        }
    }
    // Inside the transaction (idle in it, as a crashed client leaves it): gone.
    drop(s);
    Ok(())
}

/// Sends one simple-protocol Query message.
fn simple_query(s: &mut UnixStream, sql: &str) -> Result<(), String> {
    let mut q = vec![b'Q'];
    q.extend_from_slice(&((sql.len() + 5) as i32).to_be_bytes());
    q.extend_from_slice(sql.as_bytes());
    q.push(0);
    s.write_all(&q).map_err(|e| e.to_string())
}

/// One backend message: its type and body.
fn next_message(s: &mut UnixStream) -> Result<(u8, Vec<u8>), String> {
    let mut head = [0u8; 5];
    s.read_exact(&mut head).map_err(|e| format!("reading: {e}"))?;
    let len = i32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
    let mut body = vec![0u8; len.saturating_sub(4)];
    s.read_exact(&mut body).map_err(|e| format!("reading: {e}"))?;
    Ok((head[0], body))
}

fn read_until_ready(s: &mut UnixStream) -> Result<(), String> {
    s.set_read_timeout(Some(Duration::from_secs(5))).map_err(|e| e.to_string())?;
    loop {
        match next_message(s)? {
            (b'Z', _) => return Ok(()),
            (b'E', body) => return Err(format!("startup refused: {}", String::from_utf8_lossy(&body))),
            _ => {}
        }
    }
}
