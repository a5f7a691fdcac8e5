//! The host cache under snapshot isolation (DESIGN §12.8): a host remapped or removed by the
//! operator while a relay connection is inside a REPEATABLE READ or SERIALIZABLE transaction
//! must resolve to its new community (or nowhere) in that connection's next transaction.
//!
//! The sequence that made an entry stale: the relay's transaction takes its snapshot; the
//! operator commits the change (its invalidation is queued); the relay accepts the
//! invalidation (any new lock does) and only then looks the host up — under its old snapshot,
//! which still maps the host to its old community. Mutant "host cache filled under REPEATABLE
//! READ" keeps that answer for the backend's later transactions.

use postgres::Client;

use crate::report::Report;
use crate::setup::{self, err, Pg, Scratch};

const HOST_UNKNOWN: &str = "restricted: this relay does not serve that host";

pub fn run(pg: &Pg, report: &mut Report) {
    let mut f = match Fixture::new(pg) {
        Ok(f) => f,
        Err(e) => return report.check("hosts: setup", Err(e)),
    };
    report.check("hosts: a host removed while an enter's statement runs is not kept for later transactions", f.removed_during_statement());
    for isolation in ["REPEATABLE READ", "SERIALIZABLE"] {
        report.check(
            &format!("hosts: a host remapped during a {isolation} transaction reaches its new community in the next one"),
            f.scenario(isolation, Change::Remap),
        );
        report.check(
            &format!("hosts: a host removed during a {isolation} transaction no longer enters in the next one"),
            f.scenario(isolation, Change::Remove),
        );
    }
}

#[derive(Clone, Copy)]
enum Change {
    Remap,
    Remove,
}

struct Fixture {
    admin: Client,
    relay: Client,
    serial: u32,
    _db: Scratch,
}

impl Fixture {
    fn new(pg: &Pg) -> Result<Fixture, String> {
        let db = Scratch::create(pg, "hosts")?;
        let mut admin = db.admin()?;
        setup::create_community(&mut admin, "first", "first.example", "open")?;
        setup::create_community(&mut admin, "second", "second.example", "open")?;
        let relay = db.relay()?;
        Ok(Fixture { admin, relay, serial: 0, _db: db })
    }

    fn community(&mut self, slug: &str) -> Result<String, String> {
        self.admin
            .query_one("SELECT id::text FROM buzz.communities WHERE slug = $1", &[&slug])
            .map(|r| r.get(0))
            .map_err(|e| err(&e))
    }

    /// The community `host` resolves to in a fresh READ COMMITTED transaction of the relay
    /// connection, or the error message.
    fn resolve(&mut self, host: &str) -> Result<String, String> {
        setup::begin_enter(&mut self.relay, host, None)?;
        let id = self.relay.query_one("SELECT buzz.current_community()::text", &[]).map(|r| r.get(0));
        setup::rollback(&mut self.relay);
        id.map_err(|e| err(&e))
    }

    /// Mutant "the host lookup under the statement's snapshot": a cursor takes its snapshot
    /// when declared and runs `enter` at its first FETCH; the host is removed in between. The
    /// FETCH accepts the invalidation, so a lookup read under the cursor's older snapshot and
    /// kept would let the removed host enter for good (READ COMMITTED).
    fn removed_during_statement(&mut self) -> Result<(), String> {
        self.serial += 1;
        let host = format!("cache-{}.example", self.serial);
        self.admin.execute("SELECT buzz.add_host('first', $1)", &[&host]).map_err(|e| err(&e))?;
        for _ in 0..2 {
            self.resolve(&host)?;
        }
        self.relay.batch_execute("BEGIN").map_err(|e| err(&e))?;
        let declared = self.relay.execute("DECLARE c CURSOR FOR SELECT buzz.enter($1)", &[&host]).map_err(|e| err(&e));
        let removed = self.admin.execute("SELECT buzz.remove_host($1)", &[&host]).map_err(|e| err(&e));
        let _ = self.relay.query("FETCH ALL FROM c", &[]);
        setup::rollback(&mut self.relay);
        declared?;
        removed?;
        match self.resolve(&host) {
            Err(e) if e.contains(HOST_UNKNOWN) => Ok(()),
            got => Err(format!("next transaction: expected '{HOST_UNKNOWN}', got {got:?}")),
        }
    }

    fn scenario(&mut self, isolation: &str, change: Change) -> Result<(), String> {
        self.serial += 1;
        let host = format!("cache-{}.example", self.serial);
        let first = self.community("first")?;
        let second = self.community("second")?;
        self.admin.execute("SELECT buzz.add_host('first', $1)", &[&host]).map_err(|e| err(&e))?;

        // The relay's transaction takes its snapshot before the change ...
        let relay = &mut self.relay;
        relay.batch_execute(&format!("BEGIN ISOLATION LEVEL {isolation}; SELECT 1")).map_err(|e| err(&e))?;
        // ... the operator commits the change ...
        self.admin.execute("SELECT buzz.remove_host($1)", &[&host]).map_err(|e| err(&e))?;
        if let Change::Remap = change {
            self.admin.execute("SELECT buzz.add_host('second', $1)", &[&host]).map_err(|e| err(&e))?;
        }
        // ... the relay accepts the invalidation (a lock on a relation it had not locked yet),
        // then enters the host under its old snapshot: the old community, as of that snapshot.
        let inside = enter_late(&mut self.relay, &host);
        setup::rollback(&mut self.relay);
        if inside.as_deref() != Ok(first.as_str()) {
            return Err(format!("inside the {isolation} transaction: expected the snapshot's community, got {inside:?}"));
        }

        // The next transaction must see the change.
        match (change, self.resolve(&host)) {
            (Change::Remap, Ok(c)) if c == second => Ok(()),
            (Change::Remove, Err(e)) if e.contains(HOST_UNKNOWN) => Ok(()),
            (Change::Remap, got) => Err(format!("next transaction: expected community second ({second}), got {got:?} (first is {first})")),
            (Change::Remove, got) => Err(format!("next transaction: expected '{HOST_UNKNOWN}', got {got:?} (first is {first})")),
        }
    }
}

/// In the open transaction: take a lock (which accepts pending invalidations), then enter
/// `host`; the community it entered.
fn enter_late(relay: &mut Client, host: &str) -> Result<String, String> {
    relay.batch_execute("SELECT count(*) FROM pg_catalog.pg_namespace").map_err(|e| err(&e))?;
    relay.execute("SELECT buzz.enter($1)", &[&host]).map_err(|e| err(&e))?;
    relay.query_one("SELECT buzz.current_community()::text", &[]).map(|r| r.get(0)).map_err(|e| err(&e))
}
