//! What an actor may read in a community: admission (a member) and the channels it may read
//! (open ones, and private ones it belongs to). Every read (req, count, poll) asks this first.
//!
//! The answers are kept per backend (issue 15: the probe and its executor start-up were 37 of
//! req's 88 µs server-side for `ids`). Any INSERT, UPDATE, DELETE or TRUNCATE of
//! buzz.channels, buzz.channel_members or buzz.members fires the statement trigger
//! `reader_cache` (sql/schema.sql), which queues a relcache invalidation; every backend
//! empties its map when it accepts it, and [`readable_channels`] accepts pending
//! invalidations before each lookup, so a removed member or a channel made private is read
//! as such by the next statement of any backend, as without the cache.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;

use pgrx::{pg_sys, Uuid};

use crate::errors::OrRaise;
use crate::relcache_watch::{self, Table};

/// For each of `actors` that is a member of `community`, the channels it may read; a
/// non-member is absent.
pub(crate) fn readable_channels<'a>(community: Uuid, actors: impl IntoIterator<Item = &'a str>) -> HashMap<String, Vec<Uuid>> {
    relcache_watch::accept_pending();
    let mut out = HashMap::new();
    for actor in actors {
        if let Some(channels) = cache::get(community, actor).or_else(|| lookup(community, actor)) {
            out.insert(actor.to_owned(), channels);
        }
    }
    out
}

/// The probe itself, kept in the cache when that is safe.
///
/// One probe per actor, with the pubkey a scalar: a kept generic plan estimates a community
/// at the average size, and the statement that took all actors as an array (`unnest`, or
/// `pubkey = ANY`) was planned as a scan of every member of the community, hashed or
/// filtered, on every call (31 µs for one actor among 500 members, growing with the
/// community; this one is 10 µs and stays an index probe).
fn lookup(community: Uuid, actor: &str) -> Option<Vec<Uuid>> {
    let before = relcache_watch::generation(Table::Readers);
    let cacheable = relcache_watch::enabled(Table::Readers);
    // Under a snapshot taken now, after the invalidations were accepted: a change is visible
    // to new snapshots before its invalidation is sent, so every change whose invalidation
    // this backend has seen is in the answer. The statement's own snapshot can be older (a
    // cursor opened, or a statement started, before the change committed): an answer read
    // under it and kept would outlive that invalidation, and nothing would empty it (an
    // outside review found a removed member reading a private channel for good). A newer
    // answer than the statement's snapshot is never wider than what the actor may read now.
    // (Under REPEATABLE READ or SERIALIZABLE: the transaction's snapshot, and nothing kept.)
    let channels = crate::pg::with_latest_snapshot(|| crate::spi_cache::read_one::<Vec<Uuid>>(
        "SELECT ARRAY(SELECT c.id FROM buzz.channels c
                       WHERE c.community_id = $1
                         AND (c.visibility = 'open'
                              OR EXISTS (SELECT 1 FROM buzz.channel_members cm
                                          WHERE cm.community_id = $1 AND cm.channel_id = c.id AND cm.pubkey = $2)))
           FROM buzz.members m
          WHERE m.community_id = $1 AND m.pubkey = $2",
        &[community.into(), actor.into()],
    ))
    .or_raise()?;
    // Keep only what is current (as the session cache does): nothing read under a snapshot
    // that can predate an invalidation already accepted (REPEATABLE READ, SERIALIZABLE), and
    // nothing an invalidation raced with. This transaction's own changes are kept too: their
    // invalidations were processed here at their command's end (so they come after
    // `before`), and a rollback processes them again, emptying the map.
    if cacheable && crate::pg::reads_latest() && relcache_watch::generation(Table::Readers) == before {
        cache::put(community, actor, channels.clone(), before);
    }
    Some(channels)
}

/// `buzz.invalidate_reader_cache` (declared in src/api/operator.rs).
pub(crate) fn invalidate_cache() {
    let relid = crate::spi_cache::read_one::<pg_sys::Oid>("SELECT 'buzz.channel_members'::regclass::oid", &[])
        .or_raise()
        .unwrap_or_else(|| crate::errors::raise(crate::errors::Error::Internal));
    crate::pg::invalidate_relcache(relid);
}

/// The per-backend map `(community, actor) → readable channels`. Non-members are not kept (a
/// new member needs no invalidation to be admitted).
mod cache {
    use super::*;

    /// Past this many entries the map starts over (a backend serves a few communities' users).
    const MAX_ENTRIES: usize = 10_000;
    /// Past this many channel ids in all (16 bytes each: 1.6 MB) the map starts over, and a
    /// longer list is not kept: a community may have many open channels, and every entry of
    /// its members lists them all.
    const MAX_IDS: usize = 100_000;

    thread_local! {
        static MAP: RefCell<HashMap<(Uuid, String), Vec<Uuid>>> = RefCell::new(HashMap::new());
        static GENERATION: Cell<u64> = const { Cell::new(0) };
        /// Channel ids held by MAP.
        static IDS: Cell<usize> = const { Cell::new(0) };
    }

    pub fn get(community: Uuid, actor: &str) -> Option<Vec<Uuid>> {
        let generation = relcache_watch::generation(Table::Readers);
        MAP.with(|m| {
            let mut m = m.borrow_mut();
            if GENERATION.with(Cell::get) != generation {
                m.clear();
                IDS.with(|n| n.set(0));
                GENERATION.with(|g| g.set(generation));
            }
            m.get(&(community, actor.to_owned())).cloned()
        })
    }

    /// Keeps a lookup made under `generation` (nothing, if the map has moved on since).
    pub fn put(community: Uuid, actor: &str, channels: Vec<Uuid>, generation: u64) {
        MAP.with(|m| {
            let mut m = m.borrow_mut();
            if GENERATION.with(Cell::get) != generation || channels.len() > MAX_IDS {
                return;
            }
            if m.len() >= MAX_ENTRIES || IDS.with(Cell::get) + channels.len() > MAX_IDS {
                m.clear();
                IDS.with(|n| n.set(0));
            }
            IDS.with(|n| n.set(n.get() + channels.len()));
            if let Some(old) = m.insert((community, actor.to_owned()), channels) {
                IDS.with(|n| n.set(n.get() - old.len()));
            }
        })
    }
}
