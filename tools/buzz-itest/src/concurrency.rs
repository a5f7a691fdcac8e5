//! Publish races between two relay connections (issue: "two connections publishing the same
//! event at once → one stored, one duplicate; two versions of a replaceable event racing →
//! the newest wins").
//!
//! "Forced overlap" makes the race deterministic: connection 1 publishes and keeps its
//! transaction open; connection 2 publishes from a thread, and we watch pg_stat_activity until
//! it actually waits on a lock held by connection 1 before committing connection 1. "Free
//! running" starts two whole transactions behind a barrier and lets the scheduler decide.

use std::collections::HashMap;
use std::sync::Barrier;
use std::thread;
use std::time::{Duration, Instant};

use postgres::Client;
use serde_json::{json, Value};

use crate::prng::Rng;
use crate::report::Report;
use crate::setup::{self, Answer, Keys, Pg, Scratch, ACCEPTED, DELETED, DUPLICATE, SUPERSEDED};

const HOST1: &str = "c1.example";
const HOST2: &str = "c2.example";
const AUTHORS: usize = 6;

pub fn run(pg: &Pg, report: &mut Report) {
    let mut f = match Fixture::new(pg) {
        Ok(f) => f,
        Err(e) => return report.check("concurrency: setup", Err(e)),
    };
    report.check("concurrency: same event, forced overlap (20x): one stored, one duplicate", f.same_event_forced(20));
    report.check("concurrency: same event, free-running (50x): one stored, one duplicate", f.same_event_free(50));
    for kind in [0u16, 10_002, 30_023] {
        for v in [Variant::OlderFirst, Variant::NewerFirst, Variant::Tie, Variant::Same, Variant::Free] {
            let name = format!("concurrency: replaceable kind {kind} race, {}", v.name());
            let r = f.replaceable_race(kind, v);
            report.check(&name, r);
        }
    }
    report.check(
        "concurrency: same event in two communities, forced overlap: both stored, no cross-community wait",
        f.two_communities(true, 5),
    );
    report.check("concurrency: same event in two communities, free-running (20x): both stored", f.two_communities(false, 20));
    for (target, deletion_first) in [(1u16, true), (1, false), (30_023, true), (30_023, false)] {
        let order = if deletion_first { "deletion first" } else { "target first" };
        let name = format!("concurrency: NIP-09 deletion racing its kind {target} target, forced overlap, {order}: target gone");
        report.check(&name, f.deletion_race(target, deletion_first, 5));
    }
    report.check(
        "concurrency: a deletion naming a deletion has no effect, in either order",
        f.deletion_of_deletion(),
    );
    report.check(
        "concurrency: an API token's hourly last-use write never makes another enter with it wait",
        f.token_last_use_never_waits(),
    );
    report.check("concurrency: a lock timeout in publish is answered as a retry, not internal", f.lock_timeout_is_retry());
}

#[derive(Clone, Copy)]
enum Variant {
    OlderFirst,
    NewerFirst,
    Tie,
    /// The same version from both connections.
    Same,
    Free,
}

impl Variant {
    fn name(self) -> &'static str {
        match self {
            Variant::OlderFirst => "forced overlap, older version first, fresh and over a stored head: newest wins",
            Variant::NewerFirst => "forced overlap, newer version first, fresh and over a stored head: newest wins",
            Variant::Tie => "forced overlap, same created_at, fresh and over a stored head: lowest id wins",
            Variant::Same => "forced overlap, the same version twice, fresh and over a stored head: one stored, one duplicate",
            Variant::Free => "free-running (10x): newest wins",
        }
    }
}

/// What a forced overlap observed.
struct Overlap {
    first: Answer,
    second: Answer,
    /// Connection 2 was seen waiting on a lock while connection 1's transaction was open.
    second_waited: bool,
}

struct Fixture {
    keys: Keys,
    /// Session tokens by (author, host).
    tokens: HashMap<(usize, &'static str), String>,
    c1: Client,
    c2: Client,
    /// Superuser connection that watches connection 2 in pg_stat_activity.
    monitor: Client,
    pid2: i32,
    /// Monotonic created_at source, so every scenario's versions beat earlier heads.
    clock: i64,
    serial: u64,
    /// Counts raced coordinates (picks the author).
    coords: usize,
    // Last: the database is dropped after the connections are closed.
    _db: Scratch,
}

impl Fixture {
    fn new(pg: &Pg) -> Result<Fixture, String> {
        let db = Scratch::create(pg, "concurrency")?;
        let mut admin = db.admin()?;
        let keys = Keys::generate(&mut Rng::new(0xC0FFEE), AUTHORS);
        for (slug, host) in [("c1", HOST1), ("c2", HOST2)] {
            setup::create_community(&mut admin, slug, host, "allowlist")?;
            for pk in &keys.pks {
                setup::admit(&mut admin, slug, pk, "member")?;
            }
        }
        let mut c1 = db.relay()?;
        let mut c2 = db.relay()?;
        let mut tokens = HashMap::new();
        for k in 0..AUTHORS {
            for host in [HOST1, HOST2] {
                tokens.insert((k, host), setup::login(&mut c1, &keys, k, host)?);
            }
        }
        let pid2 = c2.query_one("SELECT pg_backend_pid()", &[]).map_err(|e| setup::err(&e))?.get(0);
        // Well in the past (no max_future issue), distinct from anything else in this database.
        let clock = setup::now() - 7 * 86_400;
        Ok(Fixture { keys, tokens, c1, c2, monitor: admin, pid2, clock, serial: 0, coords: 0, _db: db })
    }

    fn token(&self, k: usize, host: &'static str) -> String {
        self.tokens[&(k, host)].clone()
    }

    /// A fresh regular event by `k`.
    fn fresh_event(&mut self, k: usize, what: &str) -> String {
        self.serial += 1;
        self.clock += 1;
        let tags = [json!(["t", "race"])];
        self.keys.sign(k, self.clock, 1, &tags, &format!("{what} #{}", self.serial))
    }

    /// Connection 1 publishes `first` and holds its transaction open; connection 2 publishes
    /// `second` in a thread. Once connection 2 waits on a lock (or has finished on its own, or
    /// 10 s passed) connection 1 commits, then connection 2 returns and commits.
    fn overlap(&mut self, first: (&str, &str, &str), second: (&str, &str, &str)) -> Result<Overlap, String> {
        let (c1, c2, monitor, pid2) = (&mut self.c1, &mut self.c2, &mut self.monitor, self.pid2);
        setup::begin_enter(c1, first.0, Some(first.1))?;
        let a1 = setup::publish_stmt(c1, first.2).inspect_err(|_| setup::rollback(c1))?;
        let (a2, waited) = thread::scope(|s| {
            let h = s.spawn(|| {
                setup::begin_enter(c2, second.0, Some(second.1))?;
                setup::publish_stmt(c2, second.2).inspect_err(|_| setup::rollback(c2))
            });
            let deadline = Instant::now() + Duration::from_secs(10);
            let mut waited = Ok(false);
            while !h.is_finished() && Instant::now() < deadline {
                match waiting_on_lock(monitor, pid2) {
                    Ok(false) => thread::sleep(Duration::from_millis(2)),
                    other => {
                        waited = other;
                        break;
                    }
                }
            }
            let c1_commit = setup::commit(c1);
            let a2 = h.join().unwrap_or_else(|_| Err("connection 2's thread panicked".into()));
            (c1_commit.and(a2), waited)
        });
        let a2 = a2.inspect_err(|_| setup::rollback(c2))?;
        setup::commit(c2)?;
        Ok(Overlap { first: a1, second: a2, second_waited: waited? })
    }

    /// Two whole publish transactions started together behind a barrier.
    fn free_race(&mut self, first: (&str, &str, &str), second: (&str, &str, &str)) -> Result<(Answer, Answer), String> {
        let barrier = Barrier::new(2);
        let (c1, c2) = (&mut self.c1, &mut self.c2);
        thread::scope(|s| {
            let h1 = s.spawn(|| {
                barrier.wait();
                setup::publish(c1, first.0, first.1, first.2)
            });
            let h2 = s.spawn(|| {
                barrier.wait();
                setup::publish(c2, second.0, second.1, second.2)
            });
            let a1 = h1.join().map_err(|_| "thread panicked".to_string())?;
            let a2 = h2.join().map_err(|_| "thread panicked".to_string())?;
            Ok((a1?, a2?))
        })
    }

    fn count_ids(&mut self, k: usize, host: &'static str, id: &str) -> Result<i64, String> {
        let token = self.token(k, host);
        setup::count(&mut self.c1, host, &token, &json!({ "ids": [id] }))
    }

    fn req(&mut self, k: usize, host: &'static str, filters: &Value) -> Result<Vec<String>, String> {
        let token = self.token(k, host);
        setup::req(&mut self.c1, host, &token, filters)
    }

    /// Exactly one of the two answers is accepted and the other is `duplicate:`, and the
    /// event is stored exactly once.
    fn one_stored(&mut self, i: usize, k: usize, ev: &str, a: &Answer, b: &Answer) -> Result<(), String> {
        let acc = (true, ACCEPTED.to_string());
        let dup = (false, DUPLICATE.to_string());
        if !((*a == acc && *b == dup) || (*a == dup && *b == acc)) {
            return Err(format!("iteration {i}: answers {a:?} and {b:?}; want one {acc:?} and one {dup:?}"));
        }
        let n = self.count_ids(k, HOST1, &setup::id_of(ev))?;
        if n != 1 {
            return Err(format!("iteration {i}: count by id = {n}, want 1"));
        }
        Ok(())
    }

    fn same_event_forced(&mut self, n: usize) -> Result<(), String> {
        for i in 0..n {
            let k = i % AUTHORS;
            let ev = self.fresh_event(k, "forced overlap");
            let tok = self.token(k, HOST1);
            let o = self.overlap((HOST1, &tok, &ev), (HOST1, &tok, &ev))?;
            if !o.second_waited {
                return Err(format!(
                    "iteration {i}: connection 2 never waited for connection 1 (answers {:?}, {:?})",
                    o.first, o.second
                ));
            }
            self.one_stored(i, k, &ev, &o.first, &o.second)?;
        }
        Ok(())
    }

    fn same_event_free(&mut self, n: usize) -> Result<(), String> {
        for i in 0..n {
            let k = i % AUTHORS;
            let ev = self.fresh_event(k, "free race");
            let tok = self.token(k, HOST1);
            let (a, b) = self.free_race((HOST1, &tok, &ev), (HOST1, &tok, &ev))?;
            self.one_stored(i, k, &ev, &a, &b)?;
        }
        Ok(())
    }

    /// One version of a replaceable/addressable coordinate.
    fn version(&self, k: usize, kind: u16, created_at: i64, d: &str, label: &str) -> String {
        let tags: Vec<Value> = match kind {
            30_023 => vec![json!(["d", d])],
            10_002 => vec![json!(["r", format!("wss://{label}.example/")])],
            _ => vec![],
        };
        let content = if kind == 0 { format!("{{\"name\":\"{label}\"}}") } else { label.to_string() };
        self.keys.sign(k, created_at, kind, &tags, &content)
    }

    /// Race two versions of one coordinate; afterwards exactly the winner is stored. Round 0
    /// races on a fresh coordinate (both insert; the unique head index decides), later rounds
    /// over the stored head (locked FOR UPDATE), each round newer than the last.
    fn replaceable_race(&mut self, kind: u16, v: Variant) -> Result<(), String> {
        let rounds = if matches!(v, Variant::Free) { 10 } else { 2 };
        self.serial += 1;
        // A fresh coordinate: kinds 0/10002 rotate authors (5 variants < 6 authors), 30023
        // gets a fresh d tag.
        self.coords += 1;
        let k = self.coords % AUTHORS;
        let d = format!("race-{}", self.coords);
        for round in 0..rounds {
            self.serial += 1;
            self.clock += 10;
            let t = self.clock;
            let older = self.version(k, kind, t, &d, &format!("older-{}", self.serial));
            let newer_at = if matches!(v, Variant::Tie) { t } else { t + 1 };
            let newer = self.version(k, kind, newer_at, &d, &format!("newer-{}", self.serial));
            // In a tie the lowest id is the "newer" one.
            let (winner, loser) = if matches!(v, Variant::Same) {
                (newer.clone(), newer)
            } else if setup::id_of(&newer) < setup::id_of(&older) || !matches!(v, Variant::Tie) {
                (newer, older)
            } else {
                (older, newer)
            };
            let tok = self.token(k, HOST1);
            let (first, second) = match v {
                Variant::NewerFirst | Variant::Same => (&winner, &loser),
                Variant::OlderFirst | Variant::Tie => (&loser, &winner),
                Variant::Free => {
                    if round % 2 == 0 {
                        (&winner, &loser)
                    } else {
                        (&loser, &winner)
                    }
                }
            };
            let (a1, a2) = if matches!(v, Variant::Free) {
                self.free_race((HOST1, &tok, first), (HOST1, &tok, second))?
            } else {
                let o = self.overlap((HOST1, &tok, first), (HOST1, &tok, second))?;
                if !o.second_waited {
                    return Err(format!(
                        "connection 2 never waited for connection 1 (answers {:?}, {:?})",
                        o.first, o.second
                    ));
                }
                (o.first, o.second)
            };
            let (a_win, a_lose) = if std::ptr::eq(first, &winner) { (a1, a2) } else { (a2, a1) };
            let ok = (true, ACCEPTED.to_string());
            if matches!(v, Variant::Same) {
                let dup = (false, DUPLICATE.to_string());
                if !((a_win == ok && a_lose == dup) || (a_win == dup && a_lose == ok)) {
                    return Err(format!("round {round}: answers {a_win:?}, {a_lose:?}; want one {ok:?} and one {dup:?}"));
                }
            } else if a_win != ok {
                return Err(format!("round {round}: the winning version was answered {a_win:?}, want {ok:?}"));
            } else if a_lose != ok && a_lose != (false, SUPERSEDED.to_string()) {
                return Err(format!("round {round}: the losing version was answered {a_lose:?}"));
            }
            let mut filter = json!({ "authors": [self.keys.pks[k]], "kinds": [kind] });
            if kind == 30_023 {
                filter["#d"] = json!([d]);
            }
            let got = self.req(k, HOST1, &filter)?;
            let ids: Vec<String> = got.iter().map(|e| setup::id_of(e)).collect();
            if ids != [setup::id_of(&winner)] {
                return Err(format!(
                    "round {round}: req {filter} returned ids {ids:?}, want only the winner {}",
                    setup::id_of(&winner)
                ));
            }
        }
        Ok(())
    }

    /// The same signed event published via host 1 and host 2 (author admitted in both) at
    /// the same time: both communities store it, and neither transaction waits for the other.
    fn two_communities(&mut self, forced: bool, n: usize) -> Result<(), String> {
        for i in 0..n {
            let k = i % AUTHORS;
            let ev = self.fresh_event(k, "two communities");
            let (t1, t2) = (self.token(k, HOST1), self.token(k, HOST2));
            let (a, b) = if forced {
                let o = self.overlap((HOST1, &t1, &ev), (HOST2, &t2, &ev))?;
                if o.second_waited {
                    return Err(format!("iteration {i}: community 2's publish waited on community 1's transaction"));
                }
                (o.first, o.second)
            } else {
                self.free_race((HOST1, &t1, &ev), (HOST2, &t2, &ev))?
            };
            let ok = (true, ACCEPTED.to_string());
            if a != ok || b != ok {
                return Err(format!("iteration {i}: answers {a:?} (host 1), {b:?} (host 2); want both accepted"));
            }
            let id = setup::id_of(&ev);
            for host in [HOST1, HOST2] {
                let got = self.req(k, host, &json!({ "ids": [id] }))?;
                let ids: Vec<String> = got.iter().map(|e| setup::id_of(e)).collect();
                if ids != [id.clone()] {
                    return Err(format!("iteration {i}: req by id via {host} returned {ids:?}, want [{id}]"));
                }
            }
        }
        Ok(())
    }
}

impl Fixture {
    /// A deletion (kind 5, by `e` id or `a` coordinate) and its target, by the same author,
    /// overlapping in either order: once both committed the target is gone, and a re-publish
    /// is refused. (Without the author-row lock in publish each transaction misses the other's
    /// uncommitted row and the "deleted" event stays served.)
    fn deletion_race(&mut self, target_kind: u16, deletion_first: bool, n: usize) -> Result<(), String> {
        for i in 0..n {
            let k = i % AUTHORS;
            self.clock += 10;
            self.serial += 1;
            let d = format!("del-{}", self.serial);
            let target = if target_kind == 1 {
                self.fresh_event(k, "doomed")
            } else {
                self.version(k, target_kind, self.clock, &d, "doomed")
            };
            let reference = if target_kind == 1 {
                json!(["e", setup::id_of(&target)])
            } else {
                json!(["a", format!("{target_kind}:{}:{d}", self.keys.pks[k])])
            };
            let deletion = self.keys.sign(k, self.clock + 5, 5, &[reference], "");
            let tok = self.token(k, HOST1);
            let o = if deletion_first {
                self.overlap((HOST1, &tok, &deletion), (HOST1, &tok, &target))?
            } else {
                self.overlap((HOST1, &tok, &target), (HOST1, &tok, &deletion))?
            };
            if !o.second_waited {
                return Err(format!("iteration {i}: the second transaction never waited ({:?}, {:?})", o.first, o.second));
            }
            let left = self.count_ids(k, HOST1, &setup::id_of(&target))?;
            if left != 0 {
                return Err(format!("iteration {i}: target still served after the deletion committed ({:?}, {:?})", o.first, o.second));
            }
            let again = setup::publish(&mut self.c1, HOST1, &tok, &target)?;
            if again != (false, DELETED.to_string()) {
                return Err(format!("iteration {i}: re-publishing the target answered {again:?}"));
            }
        }
        Ok(())
    }

    /// NIP-09: "a deletion request against a deletion request has no effect" — whichever of
    /// the two arrives first, the targeted deletion stays stored.
    /// Connection 1 enters with a stale API token (it writes last use, holding the row) and
    /// keeps its transaction open; connection 2 enters with the same token at once, without a
    /// transaction id. (Before: it waited for connection 1's row lock.) Mutant "last-use write
    /// waits for another's".
    fn token_last_use_never_waits(&mut self) -> Result<(), String> {
        let session = self.token(0, HOST1);
        let api: String = setup::txn(&mut self.c1, HOST1, Some(&session), |c| {
            c.query_one("SELECT buzz.mint_token('last-use', '{read}')", &[]).map(|r| r.get(0)).map_err(|e| setup::err(&e))
        })?;
        self.monitor
            .execute("UPDATE buzz.api_tokens SET last_used_at = now() - interval '2 hours' WHERE name = 'last-use'", &[])
            .map_err(|e| setup::err(&e))?;
        setup::begin_enter(&mut self.c1, HOST1, Some(&api))?;
        let c2 = &mut self.c2;
        c2.batch_execute("SET lock_timeout = '5s'").map_err(|e| setup::err(&e))?;
        let started = Instant::now();
        let second = setup::begin_enter(c2, HOST1, Some(&api)).and_then(|()| {
            c2.query_one("SELECT pg_current_xact_id_if_assigned() IS NULL", &[]).map(|r| r.get::<_, bool>(0)).map_err(|e| setup::err(&e))
        });
        let took = started.elapsed();
        setup::rollback(c2);
        let _ = c2.batch_execute("RESET lock_timeout");
        setup::commit(&mut self.c1)?;
        let written: bool = self
            .monitor
            .query_one("SELECT last_used_at > now() - interval '1 minute' FROM buzz.api_tokens WHERE name = 'last-use'", &[])
            .map(|r| r.get(0))
            .map_err(|e| setup::err(&e))?;
        match second {
            Ok(true) if took < Duration::from_secs(2) && written => Ok(()),
            other => Err(format!("second enter: {other:?} after {took:?}; last use written: {written}")),
        }
    }

    /// Connection 1 publishes and holds its transaction (and the community's position
    /// counter); connection 2, with a 200 ms lock_timeout, publishes too: its answer is the
    /// catalog's retry (with SQLSTATE 55P03, which a relay acts on), not an internal error.
    /// Mutant "lock timeouts answered internal".
    fn lock_timeout_is_retry(&mut self) -> Result<(), String> {
        let (t0, t1) = (self.token(0, HOST1), self.token(1, HOST1));
        let (e0, e1) = (self.fresh_event(0, "holds the counter"), self.fresh_event(1, "times out"));
        setup::begin_enter(&mut self.c1, HOST1, Some(&t0))?;
        setup::publish_stmt(&mut self.c1, &e0).inspect_err(|_| setup::rollback(&mut self.c1))?;
        let c2 = &mut self.c2;
        c2.batch_execute("SET lock_timeout = '200ms'").map_err(|e| setup::err(&e))?;
        let second = setup::begin_enter(c2, HOST1, Some(&t1)).and_then(|()| setup::publish_stmt(c2, &e1));
        setup::rollback(c2);
        let _ = c2.batch_execute("RESET lock_timeout");
        setup::rollback(&mut self.c1);
        match second {
            Err(e) if e.contains("error: transaction conflict, retry") => Ok(()),
            other => Err(format!("second publish: {other:?}")),
        }
    }

    fn deletion_of_deletion(&mut self) -> Result<(), String> {
        for target_first in [true, false] {
            let k = 0;
            self.clock += 10;
            self.serial += 1;
            let victim = self.keys.sign(k, self.clock, 5, &[json!(["e", format!("{:064x}", self.serial)])], "");
            let attacker = self.keys.sign(k, self.clock + 1, 5, &[json!(["e", setup::id_of(&victim)])], "");
            let tok = self.token(k, HOST1);
            let order = if target_first { [&victim, &attacker] } else { [&attacker, &victim] };
            for ev in order {
                let a = setup::publish(&mut self.c1, HOST1, &tok, ev)?;
                if a != (true, ACCEPTED.to_string()) {
                    return Err(format!("target first = {target_first}: publish answered {a:?}"));
                }
            }
            if self.count_ids(k, HOST1, &setup::id_of(&victim))? != 1 {
                return Err(format!("target first = {target_first}: the targeted deletion is gone"));
            }
        }
        Ok(())
    }
}

/// Is backend `pid` waiting on a heavyweight lock (a row, a transaction id)?
pub fn waiting_on_lock(monitor: &mut Client, pid: i32) -> Result<bool, String> {
    let row = monitor
        .query_opt("SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = $1", &[&pid])
        .map_err(|e| setup::err(&e))?;
    Ok(row.and_then(|r| r.get::<_, Option<bool>>(0)).unwrap_or(false))
}
