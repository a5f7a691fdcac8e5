//! NIP-98 replay protection across connections (P3): the same HTTP auth event presented by two
//! relay connections at once — as two replicas sharing the database would — is accepted
//! exactly once.

use std::sync::Barrier;
use std::thread;
use std::time::{Duration, Instant};

use postgres::Client;
use serde_json::json;

use crate::concurrency::waiting_on_lock;
use crate::prng::Rng;
use crate::report::Report;
use crate::setup::{self, err, Keys, Pg, Scratch};

const HOST: &str = "http.example";
const URL: &str = "https://http.example/api/upload";

pub fn run(pg: &Pg, report: &mut Report) {
    let r = Fixture::new(pg);
    let mut f = match r {
        Ok(f) => f,
        Err(e) => return report.check("nip98: setup", Err(e)),
    };
    report.check(
        "nip98: same event from two connections, forced overlap (10x): the second waits, then is refused",
        (0..10).try_for_each(|_| f.forced()),
    );
    report.check("nip98: same event from two connections, free-running (30x): exactly one accepted", (0..30).try_for_each(|_| f.free()));
}

struct Fixture {
    keys: Keys,
    c1: Client,
    c2: Client,
    monitor: Client,
    pid2: i32,
    serial: i64,
    _db: Scratch,
}

/// `BEGIN; SELECT buzz.enter_http(...)`: Ok(true) accepted (transaction left open), Ok(false)
/// refused as a replay (rolled back).
fn enter_http(c: &mut Client, event: &str) -> Result<bool, String> {
    c.batch_execute("BEGIN").map_err(|e| err(&e))?;
    match c.execute("SELECT buzz.enter_http($1, 'POST', $2, $3)", &[&HOST, &URL, &event]) {
        Ok(_) => Ok(true),
        Err(e) => {
            setup::rollback(c);
            match e.as_db_error().map(|d| d.message()) {
                Some("auth-required: HTTP auth event was already used") => Ok(false),
                _ => Err(format!("enter_http: {}", err(&e))),
            }
        }
    }
}

impl Fixture {
    fn new(pg: &Pg) -> Result<Fixture, String> {
        let db = Scratch::create(pg, "nip98")?;
        let mut admin = db.admin()?;
        let keys = Keys::generate(&mut Rng::new(98), 1);
        setup::create_community(&mut admin, "http", HOST, "allowlist")?;
        setup::admit(&mut admin, "http", &keys.pks[0], "member")?;
        let c1 = db.relay()?;
        let mut c2 = db.relay()?;
        let pid2 = c2.query_one("SELECT pg_backend_pid()", &[]).map_err(|e| err(&e))?.get(0);
        Ok(Fixture { keys, c1, c2, monitor: admin, pid2, serial: 0, _db: db })
    }

    /// A fresh signed NIP-98 event for the upload request.
    fn event(&mut self) -> String {
        self.serial += 1;
        let tags = [json!(["u", URL]), json!(["method", "POST"])];
        self.keys.sign(0, setup::now(), 27235, &tags, &format!("request {}", self.serial))
    }

    fn forced(&mut self) -> Result<(), String> {
        let ev = self.event();
        let (c1, c2, monitor, pid2) = (&mut self.c1, &mut self.c2, &mut self.monitor, self.pid2);
        if !enter_http(c1, &ev)? {
            return Err("first presentation refused".into());
        }
        let (second, waited) = thread::scope(|s| {
            let h = s.spawn(|| enter_http(c2, &ev));
            let deadline = Instant::now() + Duration::from_secs(10);
            let mut waited = false;
            while !h.is_finished() && Instant::now() < deadline {
                if waiting_on_lock(monitor, pid2).unwrap_or(false) {
                    waited = true;
                    break;
                }
                thread::sleep(Duration::from_millis(2));
            }
            let commit = setup::commit(c1);
            let second = h.join().unwrap_or_else(|_| Err("thread panicked".into()));
            (commit.and(second), waited)
        });
        match (second?, waited) {
            (false, true) => Ok(()),
            (true, _) => {
                setup::rollback(c2);
                Err("the second presentation was accepted".into())
            }
            (false, false) => Err("the second connection never waited on the first claim".into()),
        }
    }

    fn free(&mut self) -> Result<(), String> {
        let ev = self.event();
        let barrier = Barrier::new(2);
        let (c1, c2) = (&mut self.c1, &mut self.c2);
        let (ev, barrier) = (&ev, &barrier);
        let run = move |c: &mut Client| {
            barrier.wait();
            let ok = enter_http(c, ev)?;
            if ok {
                setup::commit(c)?;
            }
            Ok::<bool, String>(ok)
        };
        let (a, b) = thread::scope(|s| {
            let h1 = s.spawn(move || run(c1));
            let h2 = s.spawn(move || run(c2));
            (h1.join().unwrap_or_else(|_| Err("panic".into())), h2.join().unwrap_or_else(|_| Err("panic".into())))
        });
        match (a?, b?) {
            (true, false) | (false, true) => Ok(()),
            other => Err(format!("accepted: {other:?}")),
        }
    }
}
