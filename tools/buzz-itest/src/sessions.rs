//! The session cache (issue 15): `enter(host, token)` keeps the sessions a backend found, and
//! every change that could end one reaches every backend before its next transaction. Two
//! relay connections (two backends): the first enters with a token (twice: the second time
//! from its cache), the second ends the session (or the operator revokes the member, or the
//! session expires), and the first's very next transaction is refused.
//! Mutants "no session cache invalidation" (the triggers gone) and "cached sessions never
//! expire" turn these red.

use postgres::Client;

use crate::prng::Rng;
use crate::report::Report;
use crate::setup::{self, err, Keys, Pg, Scratch};

const HOST: &str = "cache.example";
const SESSION_INVALID: &str = "auth-required: invalid or expired session";

pub fn run(pg: &Pg, report: &mut Report) {
    let mut f = match Fixture::new(pg) {
        Ok(f) => f,
        Err(e) => return report.check("sessions: setup", Err(e)),
    };
    report.check("sessions: a session ended by another backend is refused in the next transaction", f.ended_elsewhere());
    report.check("sessions: a session ended while an enter's statement runs is not kept for later transactions", f.ended_during_statement());
    report.check("sessions: a member revoked by the operator is refused in the next transaction", f.revoked());
    report.check("sessions: a cached session is refused once it expires", f.expired());
    report.check("sessions: a session the operator ages (UPDATE) is refused in the next transaction", f.aged());
    report.check("sessions: a login sweeps its community's expired sessions", f.swept());
    report.check("sessions: one pubkey keeps at most 256 live sessions; a login past it ends the oldest", f.capped());
}

struct Fixture {
    admin: Client,
    cached: Client,
    other: Client,
    keys: Keys,
    _db: Scratch,
}

impl Fixture {
    fn new(pg: &Pg) -> Result<Fixture, String> {
        let db = Scratch::create(pg, "sessions")?;
        let mut admin = db.admin()?;
        setup::create_community(&mut admin, "cache", HOST, "allowlist")?;
        let keys = Keys::generate(&mut Rng::new(15), 6);
        for pk in &keys.pks {
            setup::admit(&mut admin, "cache", pk, "member")?;
        }
        Ok(Fixture { admin, cached: db.relay()?, other: db.relay()?, keys, _db: db })
    }

    /// A fresh session of key `k`, entered twice by the first connection (so it is cached).
    fn cached_session(&mut self, k: usize) -> Result<String, String> {
        let token = setup::login(&mut self.other, &self.keys, k, HOST)?;
        for _ in 0..2 {
            setup::txn(&mut self.cached, HOST, Some(&token), |_| Ok(()))?;
        }
        Ok(token)
    }

    /// The first connection's next transaction with `token`: refused as an invalid session.
    fn refused(&mut self, token: &str) -> Result<(), String> {
        match setup::begin_enter(&mut self.cached, HOST, Some(token)) {
            Err(e) if e.contains(SESSION_INVALID) => Ok(()),
            Err(e) => Err(format!("refused with another answer: {e}")),
            Ok(()) => {
                setup::rollback(&mut self.cached);
                Err("the ended session still entered from the other backend".into())
            }
        }
    }

    fn ended_elsewhere(&mut self) -> Result<(), String> {
        let token = self.cached_session(0)?;
        let ended: bool = setup::txn(&mut self.other, HOST, Some(&token), |c| {
            c.query_one("SELECT buzz.end_session($1)", &[&token]).map(|r| r.get(0)).map_err(|e| err(&e))
        })?;
        if !ended {
            return Err("end_session found no session".into());
        }
        self.refused(&token)
    }

    /// Mutant "the session lookup under the statement's snapshot": a cursor takes its
    /// snapshot when declared and runs `enter` at its first FETCH; the session ends in
    /// between. The FETCH accepts the invalidation, so a lookup read under the cursor's older
    /// snapshot and kept would let the ended session enter for good.
    fn ended_during_statement(&mut self) -> Result<(), String> {
        let token = self.cached_session(0)?;
        self.cached.batch_execute("BEGIN").map_err(|e| err(&e))?;
        let declared = self.cached.execute("DECLARE c CURSOR FOR SELECT buzz.enter($1, $2)", &[&HOST, &token]).map_err(|e| err(&e));
        let ended: Result<bool, String> = setup::txn(&mut self.other, HOST, Some(&token), |c| {
            c.query_one("SELECT buzz.end_session($1)", &[&token]).map(|r| r.get(0)).map_err(|e| err(&e))
        });
        let _ = self.cached.query("FETCH ALL FROM c", &[]);
        setup::rollback(&mut self.cached);
        declared?;
        if !ended? {
            return Err("end_session found no session".into());
        }
        self.refused(&token)
    }

    fn revoked(&mut self) -> Result<(), String> {
        let token = self.cached_session(1)?;
        let pk = self.keys.pks[1].clone();
        self.admin.execute("SELECT buzz.revoke('cache', $1)", &[&pk]).map_err(|e| err(&e))?;
        self.refused(&token)
    }

    fn expired(&mut self) -> Result<(), String> {
        // A session that lasts 1.5 s, written by the operator (the minimum session_ttl is a
        // minute). Being new, it empties no cache: only the clock can end it there.
        let token = "c0ffee".repeat(10) + "c0ff";
        let pk = self.keys.pks[2].clone();
        self.admin
            .execute(
                "INSERT INTO buzz.sessions (community_id, token_hash, pubkey, expires_at)
                 SELECT id, sha256(decode($1, 'hex')), $2, clock_timestamp() + interval '1.5 seconds'
                   FROM buzz.communities WHERE slug = 'cache'",
                &[&token, &pk],
            )
            .map_err(|e| err(&e))?;
        for _ in 0..2 {
            setup::txn(&mut self.cached, HOST, Some(&token), |_| Ok(()))?;
        }
        std::thread::sleep(std::time::Duration::from_millis(1_600));
        self.refused(&token)
    }

    /// Mutant "no session cache invalidation" (the UPDATE/TRUNCATE trigger).
    fn aged(&mut self) -> Result<(), String> {
        let token = self.cached_session(5)?;
        let pk = self.keys.pks[5].clone();
        self.admin
            .execute("UPDATE buzz.sessions SET expires_at = clock_timestamp() - interval '1 second' WHERE pubkey = $1", &[&pk])
            .map_err(|e| err(&e))?;
        self.refused(&token)
    }

    fn live(&mut self, pk: &str) -> Result<i64, String> {
        self.admin
            .query_one("SELECT count(*) FROM buzz.sessions WHERE pubkey = $1 AND expires_at > clock_timestamp()", &[&pk])
            .map(|r| r.get(0))
            .map_err(|e| err(&e))
    }

    /// Mutant "expired sessions never swept".
    fn swept(&mut self) -> Result<(), String> {
        let pk = self.keys.pks[3].clone();
        self.admin
            .execute(
                "INSERT INTO buzz.sessions (community_id, token_hash, pubkey, expires_at)
                 SELECT id, sha256(convert_to('expired ' || g, 'UTF8')), $1, clock_timestamp() - interval '1 minute'
                   FROM buzz.communities, generate_series(1, 3) g WHERE slug = 'cache'",
                &[&pk],
            )
            .map_err(|e| err(&e))?;
        setup::login(&mut self.other, &self.keys, 4, HOST)?;
        let left: i64 = self
            .admin
            .query_one("SELECT count(*) FROM buzz.sessions WHERE expires_at <= clock_timestamp()", &[])
            .map(|r| r.get(0))
            .map_err(|e| err(&e))?;
        match left {
            0 => Ok(()),
            n => Err(format!("{n} expired sessions left after a login")),
        }
    }

    /// Mutant "sessions per pubkey unbounded".
    fn capped(&mut self) -> Result<(), String> {
        let pk = self.keys.pks[4].clone();
        let first = setup::login(&mut self.other, &self.keys, 4, HOST)?;
        for _ in 0..256 {
            setup::login(&mut self.other, &self.keys, 4, HOST)?;
        }
        match self.live(&pk)? {
            256 => self.refused(&first),
            n => Err(format!("{n} live sessions of one pubkey")),
        }
    }
}
