//! Per-backend caches of tables that change rarely (the host map, sessions) are emptied when
//! their table changes (DESIGN §12.8). A statement trigger on the table queues a relcache
//! invalidation of it; PostgreSQL delivers it to every backend before that backend's next
//! transaction (and to the changing backend at its next command, or on rollback), and the
//! callback below moves the table's generation. A cache keeps the generation it was filled
//! under and starts over when it moved.
//!
//! An invalidation of the watched table also forgets its OID, so that the cache looks it up
//! again (its `note_relid`) before it keeps anything: a pooled backend outlives `DROP
//! EXTENSION` + `CREATE EXTENSION` (a reinstall, a restore), whose new tables have new OIDs,
//! and a cache still watching the old one would never be emptied again. Until then every
//! invalidation counts.

use std::cell::Cell;

use pgrx::pg_sys;

/// The watched tables.
#[derive(Clone, Copy)]
pub enum Table {
    /// buzz.community_hosts (the host map).
    Hosts = 0,
    /// buzz.sessions (also moved by changes to buzz.members: see the triggers in schema.sql).
    Sessions = 1,
    /// buzz.channel_members (also moved by changes to buzz.channels and buzz.members: the
    /// readable-channels cache, src/store/readable.rs).
    Readers = 2,
}

const TABLES: usize = 3;

thread_local! {
    /// Each table's OID once known (InvalidOid before: then every invalidation counts).
    static RELIDS: [Cell<pg_sys::Oid>; TABLES] = const { [const { Cell::new(pg_sys::InvalidOid) }; TABLES] };
    /// How many invalidations of each table this backend has seen.
    static GENERATIONS: [Cell<u64>; TABLES] = const { [const { Cell::new(0) }; TABLES] };
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
                if relid == pg_sys::InvalidOid || known == pg_sys::InvalidOid || relid == known {
                    generation.set(generation.get() + 1);
                    ours.set(pg_sys::InvalidOid);
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

/// Records the table's OID (read with a cache's lookups).
pub fn note_relid(table: Table, relid: pg_sys::Oid) {
    RELIDS.with(|r| r[table as usize].set(relid));
}

/// Whether the table's OID is known (noted, and not forgotten by an invalidation since).
pub fn relid_known(table: Table) -> bool {
    RELIDS.with(|r| r[table as usize].get() != pg_sys::InvalidOid)
}
