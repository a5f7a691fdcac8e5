//! Per-backend caches of tables that change rarely (the host map, sessions, readable
//! channels) are emptied when their tables change (DESIGN §12.8). A statement trigger on each
//! table queues a relcache invalidation; PostgreSQL delivers it to every backend before that
//! backend's next transaction (and to the changing backend at its next command, or on
//! rollback; each lookup also accepts pending ones first: [`accept_pending`]), and the
//! callback below moves the cache's generation. A cache keeps the generation it was filled
//! under and starts over when it moved.
//!
//! A cache keeps anything only while [`enabled`] says so: its triggers exist, fire ALWAYS,
//! and no subscription replicates into its tables (a logical replication subscriber's apply
//! fires no statement triggers). An invalidation of any of its tables forgets their OIDs, so
//! that this is asked again, under a fresh snapshot, before anything more is kept: an
//! operator's `ALTER TABLE … ENABLE TRIGGER` invalidates the table it alters, and a pooled
//! backend outlives `DROP EXTENSION` + `CREATE EXTENSION` (a reinstall, a restore), whose new
//! tables have new OIDs. Until then every invalidation counts.

use std::cell::Cell;

use pgrx::pg_sys;

use crate::errors::OrRaise;

/// The caches, each with the tables it depends on.
#[derive(Clone, Copy)]
pub enum Table {
    /// The host map: buzz.community_hosts.
    Hosts = 0,
    /// Sessions: buzz.sessions and buzz.members.
    Sessions = 1,
    /// Readable channels (src/store/readable.rs): buzz.channel_members, buzz.channels and
    /// buzz.members.
    Readers = 2,
}

const TABLES: usize = 3;
const MAX_RELS: usize = 3;

impl Table {
    /// The tables, the triggers that empty the cache, and how many of those there are.
    fn watched(self) -> (&'static [&'static str], &'static [&'static str], i64) {
        match self {
            Table::Hosts => (&["buzz.community_hosts"], &["host_cache"], 1),
            Table::Sessions => (&["buzz.sessions", "buzz.members"], &["session_cache", "session_cache_delete"], 3),
            Table::Readers => (&["buzz.channel_members", "buzz.channels", "buzz.members"], &["reader_cache"], 3),
        }
    }
}

thread_local! {
    /// Each cache's tables' OIDs once known (none: then every invalidation counts).
    static RELIDS: [Cell<[pg_sys::Oid; MAX_RELS]>; TABLES] =
        const { [const { Cell::new([pg_sys::InvalidOid; MAX_RELS]) }; TABLES] };
    /// How many invalidations of each cache's tables this backend has seen.
    static GENERATIONS: [Cell<u64>; TABLES] = const { [const { Cell::new(0) }; TABLES] };
    /// [`enabled`]'s last answer per cache (asked again once the OIDs are forgotten).
    static ENABLED: [Cell<Option<bool>>; TABLES] = const { [const { Cell::new(None) }; TABLES] };
}

/// Relcache callback.
///
/// SAFETY: PostgreSQL calls it with a relation oid (or InvalidOid: everything); it only touches
/// this module's Cells, so it is sound whenever it is called.
unsafe extern "C-unwind" fn on_relcache_invalidation(_arg: pg_sys::Datum, relid: pg_sys::Oid) {
    RELIDS.with(|relids| {
        GENERATIONS.with(|generations| {
            for (ours, generation) in relids.iter().zip(generations) {
                let known = ours.get();
                let none_known = known.iter().all(|k| *k == pg_sys::InvalidOid);
                if relid == pg_sys::InvalidOid || none_known || known.contains(&relid) {
                    generation.set(generation.get() + 1);
                    ours.set([pg_sys::InvalidOid; MAX_RELS]);
                }
            }
        })
    });
}

pub fn init() {
    // SAFETY: called once from _PG_init; the callback above needs no argument.
    unsafe { pg_sys::CacheRegisterRelcacheCallback(Some(on_relcache_invalidation), pg_sys::Datum::from(0)) };
}

/// Process the invalidations other backends have committed so far (as taking a new lock
/// does), so that a cache consulted next is emptied by every change committed before now.
/// Each cache reads a miss under a snapshot taken after this (`pg::with_latest_snapshot`):
/// a change is visible to new snapshots before its invalidation is sent, so an answer kept
/// then is never older than an invalidation already processed (one read under an older
/// snapshot, a cursor's or a long statement's, would outlive it, and nothing would empty it).
pub fn accept_pending() {
    // SAFETY: called between statements of the extension's own code, with no relation or SPI
    // state of its own open; PostgreSQL runs the same processing at any lock acquisition.
    unsafe { pg_sys::AcceptInvalidationMessages() };
}

/// The table's current generation.
pub fn generation(table: Table) -> u64 {
    GENERATIONS.with(|g| g[table as usize].get())
}

/// Whether `table`'s cache may keep answers: its triggers all exist and fire ALWAYS (so that
/// changes applied with `session_replication_role = replica` empty it too), and no
/// subscription replicates into its tables. Asked once, then again whenever an invalidation
/// of one of its tables forgot their OIDs; read under a fresh snapshot (an older one could
/// still show a trigger the operator has since disabled). Fails closed: a database whose SQL
/// lacks the triggers never caches.
pub fn enabled(table: Table) -> bool {
    let i = table as usize;
    if let Some(on) = ENABLED.with(|e| e[i].get()) {
        if !on || RELIDS.with(|r| r[i].get()[0] != pg_sys::InvalidOid) {
            return on;
        }
    }
    let (rels, triggers, expected) = table.watched();
    let rels: Vec<&str> = rels.to_vec();
    let triggers: Vec<&str> = triggers.to_vec();
    let (oids, count, subscribed) = crate::pg::with_latest_snapshot(|| {
        crate::spi_cache::read_query(
            "WITH r AS (SELECT pg_catalog.to_regclass(n)::oid AS oid FROM pg_catalog.unnest($1::text[]) n)
             SELECT (SELECT pg_catalog.array_agg(oid) FROM r WHERE oid IS NOT NULL),
                    (SELECT pg_catalog.count(*) FROM pg_catalog.pg_trigger t
                      WHERE t.tgrelid IN (SELECT oid FROM r) AND t.tgname = ANY($2) AND t.tgenabled = 'A'),
                    EXISTS (SELECT 1 FROM pg_catalog.pg_subscription_rel s WHERE s.srrelid IN (SELECT oid FROM r))",
            &[rels.clone().into(), triggers.into()],
            |rows| {
                let row = rows.first();
                Ok((row.get::<Vec<pg_sys::Oid>>(1)?.unwrap_or_default(), row.get::<i64>(2)?.unwrap_or(0), row.get::<bool>(3)?.unwrap_or(true)))
            },
        )
    })
    .or_raise();
    let on = oids.len() == rels.len() && count == expected && !subscribed;
    if on {
        let mut known = [pg_sys::InvalidOid; MAX_RELS];
        known[..oids.len()].copy_from_slice(&oids);
        RELIDS.with(|r| r[i].set(known));
    }
    ENABLED.with(|e| e[i].set(Some(on)));
    on
}
