//! The readable-channels cache (issue 15): req, count and poll keep, per backend, the channels
//! each member may read, and every change to channels, channel members or members reaches
//! every backend before its next statement. Two relay connections (two backends): the first
//! reads (twice, so the second answer comes from its cache), the second (or the operator)
//! changes what the reader may see, and the first's very next read follows the change.
//! Mutants "no reader cache invalidation" (the trigger does nothing), "new channels stay
//! unseen" (no INSERT in the channels trigger) and "reader cache accepts no invalidations"
//! (no AcceptInvalidationMessages before a lookup) turn these red.

use postgres::Client;
use serde_json::{json, Value};

use crate::prng::Rng;
use crate::report::Report;
use crate::setup::{self, err, now, Keys, Pg, Scratch};

const HOST: &str = "readers.example";
const SLUG: &str = "readers";

pub fn run(pg: &Pg, report: &mut Report) {
    let mut f = match Fixture::new(pg) {
        Ok(f) => f,
        Err(e) => return report.check("readers: setup", Err(e)),
    };
    report.check("readers: a member removed from a private channel by another backend stops reading it", f.removed_from_channel());
    report.check("readers: a channel the operator makes private is no longer read by non-members", f.made_private());
    report.check("readers: a channel created by another backend is read at once", f.new_channel());
    report.check("readers: a member revoked during a reader's transaction is refused at its next read", f.revoked_mid_transaction());
    report.check("readers: a removal that commits while a reader's statement runs is not kept for later reads", f.removed_during_statement());
}

struct Fixture {
    admin: Client,
    cached: Client,
    other: Client,
    keys: Keys,
    tokens: Vec<String>,
    _db: Scratch,
}

impl Fixture {
    fn new(pg: &Pg) -> Result<Fixture, String> {
        let db = Scratch::create(pg, "readers")?;
        let mut admin = db.admin()?;
        setup::create_community(&mut admin, SLUG, HOST, "allowlist")?;
        let keys = Keys::generate(&mut Rng::new(16), 4);
        setup::admit(&mut admin, SLUG, &keys.pks[0], "admin")?;
        for pk in &keys.pks[1..] {
            setup::admit(&mut admin, SLUG, pk, "member")?;
        }
        let mut other = db.relay()?;
        let tokens = (0..keys.pks.len()).map(|k| setup::login(&mut other, &keys, k, HOST)).collect::<Result<_, _>>()?;
        Ok(Fixture { admin, cached: db.relay()?, other, keys, tokens, _db: db })
    }

    /// A channel made by key 0 with one event of key `author` in it.
    fn channel_with_event(&mut self, name: &str, visibility: &str, author: usize) -> Result<String, String> {
        let channel = setup::create_channel(&mut self.other, HOST, &self.tokens[0], name, visibility)?;
        if author != 0 {
            setup::add_channel_member(&mut self.other, HOST, &self.tokens[0], &channel, &self.keys.pks[author])?;
        }
        let event = self.keys.sign(author, now(), 1, &[json!(["h", channel])], name);
        match setup::publish(&mut self.other, HOST, &self.tokens[author], &event)? {
            (true, _) => Ok(channel),
            (false, m) => Err(format!("publish into {name}: {m}")),
        }
    }

    /// How many events of `channel` key `k` reads through the first connection.
    fn seen(&mut self, k: usize, channel: &str) -> Result<usize, String> {
        setup::req(&mut self.cached, HOST, &self.tokens[k], &json!({"#h": [channel]})).map(|e| e.len())
    }

    /// Key `k` reads `channel`'s event twice (the second time from its cache), `change` runs,
    /// and the next read must see `after` events.
    fn follows(&mut self, k: usize, channel: &str, before: usize, after: usize, change: impl FnOnce(&mut Self) -> Result<(), String>) -> Result<(), String> {
        for _ in 0..2 {
            let n = self.seen(k, channel)?;
            if n != before {
                return Err(format!("before the change: {n} events read, expected {before}"));
            }
        }
        change(self)?;
        match self.seen(k, channel)? {
            n if n == after => Ok(()),
            n => Err(format!("after the change: {n} events read, expected {after}")),
        }
    }

    /// Mutant "no reader cache invalidation".
    fn removed_from_channel(&mut self) -> Result<(), String> {
        let channel = self.channel_with_event("private-1", "private", 1)?;
        self.follows(1, &channel.clone(), 1, 0, |f| {
            setup::txn(&mut f.other, HOST, Some(&f.tokens[0]), |c| {
                c.query_one("SELECT buzz.remove_channel_member($1::text, $2::text)", &[&channel, &f.keys.pks[1]])
                    .map(drop)
                    .map_err(|e| err(&e))
            })
        })
    }

    fn made_private(&mut self) -> Result<(), String> {
        let channel = self.channel_with_event("open-1", "open", 0)?;
        self.follows(2, &channel.clone(), 1, 0, |f| {
            f.admin
                .execute("UPDATE buzz.channels SET visibility = 'private' WHERE id = $1::text::uuid", &[&channel])
                .map(drop)
                .map_err(|e| err(&e))
        })
    }

    /// Mutant "new channels stay unseen": the operator adds an open channel (a row of
    /// buzz.channels alone: `create_channel` also adds its creator to channel_members, whose
    /// trigger would hide the mutant); key 2 reads the community (every open channel) and must
    /// see the new channel's first event.
    fn new_channel(&mut self) -> Result<(), String> {
        let all = json!({"kinds": [1]});
        let count = |f: &mut Self| setup::count(&mut f.cached, HOST, &f.tokens[2], &all);
        let before = count(self)?;
        count(self)?;
        let channel: String = self
            .admin
            .query_one(
                "INSERT INTO buzz.channels (community_id, name, visibility, created_by)
                 SELECT id, 'open-2', 'open', $2 FROM buzz.communities WHERE slug = $1 RETURNING id::text",
                &[&SLUG, &self.keys.pks[0]],
            )
            .map(|r| r.get(0))
            .map_err(|e| err(&e))?;
        let event = self.keys.sign(0, now(), 1, &[json!(["h", channel])], "open-2");
        match setup::publish(&mut self.other, HOST, &self.tokens[0], &event)? {
            (true, _) => {}
            (false, m) => return Err(format!("publish into the new channel: {m}")),
        }
        match count(self)? {
            n if n == before + 1 => Ok(()),
            n => Err(format!("{n} events counted after a new open channel's first event, expected {}", before + 1)),
        }
    }

    /// Mutant "reader cache accepts no invalidations": inside one transaction (its tables
    /// already locked, so no new lock would bring the invalidation in), a read after the
    /// operator revoked the reader is refused as `not_member`, as without the cache.
    fn revoked_mid_transaction(&mut self) -> Result<(), String> {
        let filters: Value = json!({"kinds": [1]});
        let token = self.tokens[3].clone();
        setup::req(&mut self.cached, HOST, &token, &filters)?;
        setup::begin_enter(&mut self.cached, HOST, Some(&token))?;
        let read = |c: &mut Client| c.query("SELECT e::text FROM buzz.req($1::jsonb) e", &[&filters]).map(|r| r.len()).map_err(|e| err(&e));
        let first = read(&mut self.cached);
        let revoked = self.admin.execute("SELECT buzz.revoke($1, $2)", &[&SLUG, &self.keys.pks[3]]).map_err(|e| err(&e));
        let second = read(&mut self.cached);
        setup::rollback(&mut self.cached);
        first.map_err(|e| format!("before the revocation: {e}"))?;
        revoked?;
        match second {
            Err(e) if e.contains("restricted: not a member of this community") => Ok(()),
            Err(e) => Err(format!("refused with another answer: {e}")),
            Ok(n) => Err(format!("the revoked member still read {n} events in its transaction")),
        }
    }

    /// Mutant "the reader probe under the statement's snapshot": a cursor takes its snapshot
    /// when declared and runs req at its first FETCH; the removal commits in between. The
    /// FETCH accepts the removal's invalidation, so an answer read under the cursor's older
    /// snapshot and kept would never be emptied: every later read of this backend would show
    /// the private channel (an outside review's finding).
    fn removed_during_statement(&mut self) -> Result<(), String> {
        let channel = self.channel_with_event("private-2", "private", 1)?;
        let filters = json!({"#h": [channel]});
        setup::begin_enter(&mut self.cached, HOST, Some(&self.tokens[1]))?;
        let declared = self
            .cached
            .execute("DECLARE c CURSOR FOR SELECT e::text FROM buzz.req($1::jsonb) e", &[&filters])
            .map_err(|e| err(&e));
        let removed = setup::txn(&mut self.other, HOST, Some(&self.tokens[0]), |c| {
            c.query_one("SELECT buzz.remove_channel_member($1::text, $2::text)", &[&channel, &self.keys.pks[1]])
                .map(drop)
                .map_err(|e| err(&e))
        });
        let fetched = self.cached.query("FETCH ALL FROM c", &[]).map(|r| r.len()).map_err(|e| err(&e));
        let committed = setup::commit(&mut self.cached);
        declared?;
        removed?;
        fetched?;
        committed?;
        for _ in 0..2 {
            match self.seen(1, &channel)? {
                0 => {}
                n => return Err(format!("{n} events of the private channel read after the removal")),
            }
        }
        Ok(())
    }
}
