//! The audit chain under concurrency (S4 / L3, DESIGN §12.14): appends in one community
//! serialize on its head row (the second waits, nothing forks, no seq is skipped); appends in
//! two communities never wait for each other.

use std::thread;
use std::time::{Duration, Instant};

use postgres::Client;

use crate::concurrency::waiting_on_lock;
use crate::prng::Rng;
use crate::report::Report;
use crate::setup::{self, err, Keys, Pg, Scratch};

pub fn run(pg: &Pg, report: &mut Report) {
    let mut f = match Fixture::new(pg) {
        Ok(f) => f,
        Err(e) => return report.check("audit: setup", Err(e)),
    };
    report.check("audit: two appends in one community, forced overlap: the second waits, the chain stays linear", f.same_community());
    report.check("audit: appends in two communities, forced overlap: no wait", f.two_communities());
    report.check("audit: 2 x 25 free-running appends in one community: 50 rows, no fork, no gap", f.free(25));
}

struct Fixture {
    keys: Keys,
    next: usize,
    c1: Client,
    c2: Client,
    monitor: Client,
    pid2: i32,
    _db: Scratch,
}

fn admit(c: &mut Client, slug: &str, pubkey: &str) -> Result<(), String> {
    c.execute("SELECT buzz.admit($1, $2)", &[&slug, &pubkey]).map(drop).map_err(|e| err(&e))
}

impl Fixture {
    fn new(pg: &Pg) -> Result<Fixture, String> {
        let db = Scratch::create(pg, "audit")?;
        let mut monitor = db.admin()?;
        setup::create_community(&mut monitor, "a", "a.audit.example", "allowlist")?;
        setup::create_community(&mut monitor, "b", "b.audit.example", "allowlist")?;
        let c1 = db.admin()?;
        let mut c2 = db.admin()?;
        let pid2 = c2.query_one("SELECT pg_backend_pid()", &[]).map_err(|e| err(&e))?.get(0);
        Ok(Fixture { keys: Keys::generate(&mut Rng::new(14), 64), next: 0, c1, c2, monitor, pid2, _db: db })
    }

    fn pubkey(&mut self) -> String {
        self.next += 1;
        self.keys.pks[self.next % self.keys.pks.len()].clone()
    }

    /// (rows, first bad seq) of a community's chain, as audit_verify reports it.
    fn verify(&mut self, host: &str) -> Result<(i64, Option<i64>), String> {
        let m = &mut self.monitor;
        m.batch_execute("BEGIN").map_err(|e| err(&e))?;
        m.execute("SELECT buzz.enter($1)", &[&host]).map_err(|e| err(&e))?;
        let row = m.query_one("SELECT checked, first_bad_seq FROM buzz.audit_verify()", &[]).map_err(|e| err(&e))?;
        m.batch_execute("COMMIT").map_err(|e| err(&e))?;
        Ok((row.get(0), row.get(1)))
    }

    /// Connection 1 appends to `first` and keeps its transaction open while connection 2
    /// appends to `second`; returns whether connection 2 waited on a lock.
    fn overlap(&mut self, first: &str, second: &str) -> Result<bool, String> {
        let (p1, p2) = (self.pubkey(), self.pubkey());
        let (c1, c2, monitor, pid2) = (&mut self.c1, &mut self.c2, &mut self.monitor, self.pid2);
        c1.batch_execute("BEGIN").map_err(|e| err(&e))?;
        admit(c1, first, &p1)?;
        let (done, waited) = thread::scope(|s| {
            let h = s.spawn(|| admit(c2, second, &p2));
            let deadline = Instant::now() + Duration::from_secs(5);
            let mut waited = false;
            while !h.is_finished() && Instant::now() < deadline {
                if waiting_on_lock(monitor, pid2).unwrap_or(false) {
                    waited = true;
                    break;
                }
                thread::sleep(Duration::from_millis(2));
            }
            let commit = c1.batch_execute("COMMIT").map_err(|e| err(&e));
            (commit.and(h.join().unwrap_or_else(|_| Err("thread panicked".into()))), waited)
        });
        done.map(|()| waited)
    }

    fn same_community(&mut self) -> Result<(), String> {
        let (before, _) = self.verify("a.audit.example")?;
        if !self.overlap("a", "a")? {
            return Err("the second append did not wait for the first".into());
        }
        match self.verify("a.audit.example")? {
            (n, None) if n == before + 2 => Ok(()),
            other => Err(format!("chain after: {other:?} (before: {before} rows)")),
        }
    }

    fn two_communities(&mut self) -> Result<(), String> {
        if self.overlap("a", "b")? {
            return Err("an append in b waited for an append in a".into());
        }
        match (self.verify("a.audit.example")?, self.verify("b.audit.example")?) {
            ((_, None), (_, None)) => Ok(()),
            other => Err(format!("chains: {other:?}")),
        }
    }

    fn free(&mut self, n: usize) -> Result<(), String> {
        let (before, _) = self.verify("a.audit.example")?;
        let keys: Vec<(String, String)> = (0..n).map(|_| (self.pubkey(), self.pubkey())).collect();
        let (c1, c2) = (&mut self.c1, &mut self.c2);
        thread::scope(|s| {
            let k1 = &keys;
            let h1 = s.spawn(move || k1.iter().try_for_each(|(p, _)| admit(c1, "a", p)));
            let h2 = s.spawn(move || k1.iter().try_for_each(|(_, p)| admit(c2, "a", p)));
            h1.join().unwrap_or_else(|_| Err("panic".into()))?;
            h2.join().unwrap_or_else(|_| Err("panic".into()))
        })?;
        match self.verify("a.audit.example")? {
            (m, None) if m == before + 2 * n as i64 => Ok(()),
            other => Err(format!("chain after: {other:?} (before: {before} rows)")),
        }
    }
}
