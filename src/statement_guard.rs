//! What a community transaction may not run, and what `enter` must not let through.
//!
//! A ProcessUtility hook refuses, while a tenant context is installed and the current user is
//! not a superuser:
//!   * `DECLARE … WITH HOLD` (DESIGN §12.3): a holdable cursor is materialized at `COMMIT`,
//!     while the context is still installed, and stays readable in the session's next
//!     transactions, which a pooler may give to another community;
//!   * `EXPLAIN ANALYZE` (§12.20): its row counters (`Rows Removed by Filter`, loops, heap
//!     fetches) count rows an index not led by `community_id` visits *before* the fence filters
//!     them, so probing key ranges recovers another community's keys;
//!   * `LOCK TABLE` on a tenant table, an extension table or a view (views lock their base
//!     tables): an explicit `ACCESS EXCLUSIVE` lock would stall every other community.
//!
//! Held portals (DESIGN §4). Rows read under one community must not reach a transaction of
//! another through a portal that outlives its transaction: a `WITH HOLD` cursor, or the loop
//! cursor of a procedure or `DO` block that PostgreSQL holds (materializing the rest of its
//! rows under the current context) when the block runs `COMMIT` or `ROLLBACK`. `enter`
//! refuses while the backend holds any holdable portal. PostgreSQL exports no way to walk its
//! portal table, so `enter` asks `pg_cursors` — but only when a portal may have been held
//! since the last look found none: in the backend's first transaction (the hook may have
//! loaded after a `DECLARE`), after any `DECLARE … WITH HOLD`, and after any transaction end
//! inside a procedure or `DO` block (a non-atomic SPI context), which is where PostgreSQL
//! holds pinned portals. `pg_cursors` lists the portals; each one's own flags say whether it
//! is held (an auto-held loop is not "holdable" there).

use std::cell::Cell;
use std::ffi::{c_char, c_void, CStr};

use pgrx::pg_sys;
use pgrx::prelude::*;
use pgrx::PgList;

use crate::errors::{raise, Error};

static mut PREV_UTILITY: pg_sys::ProcessUtility_hook_type = None;

thread_local! {
    /// A holdable portal may exist: `enter` must look before it installs a context.
    static MAYBE_HELD: Cell<bool> = const { Cell::new(true) };
}

pub fn init() {
    // SAFETY: called once from _PG_init, before any statement runs; the previous hook is kept
    // and chained, as PostgreSQL's hook convention requires.
    unsafe {
        PREV_UTILITY = pg_sys::ProcessUtility_hook;
        pg_sys::ProcessUtility_hook = Some(utility);
        pg_sys::RegisterXactCallback(Some(on_xact_end), std::ptr::null_mut());
    }
}

unsafe extern "C-unwind" fn on_xact_end(event: pg_sys::XactEvent::Type, _arg: *mut c_void) {
    use pg_sys::XactEvent::*;
    // SAFETY: SPI_inside_nonatomic_context only reads SPI's own stack pointer.
    if matches!(event, XACT_EVENT_COMMIT | XACT_EVENT_ABORT) && unsafe { pg_sys::SPI_inside_nonatomic_context() } {
        // COMMIT/ROLLBACK inside a procedure or DO block: PostgreSQL has just held its pinned
        // (loop) portals.
        MAYBE_HELD.with(|m| m.set(true));
    }
}

#[pg_guard]
#[allow(clippy::too_many_arguments)]
unsafe extern "C-unwind" fn utility(
    pstmt: *mut pg_sys::PlannedStmt,
    query: *const c_char,
    read_only_tree: bool,
    context: pg_sys::ProcessUtilityContext::Type,
    params: pg_sys::ParamListInfo,
    env: *mut pg_sys::QueryEnvironment,
    dest: *mut pg_sys::DestReceiver,
    qc: *mut pg_sys::QueryCompletion,
) {
    // SAFETY: PostgreSQL passes a valid planned utility statement; each node is read only
    // after its tag says what it is.
    unsafe { check((*pstmt).utilityStmt) };
    // SAFETY: the arguments are passed on unchanged to the next hook or the standard one.
    unsafe {
        match PREV_UTILITY {
            Some(prev) => prev(pstmt, query, read_only_tree, context, params, env, dest, qc),
            None => pg_sys::standard_ProcessUtility(pstmt, query, read_only_tree, context, params, env, dest, qc),
        }
    }
}

/// Refuse what a community transaction may not run (see the module comment).
///
/// SAFETY: `stmt` must be a valid utility statement node.
unsafe fn check(stmt: *mut pg_sys::Node) {
    if pgrx::is_a(stmt, pg_sys::NodeTag::T_DeclareCursorStmt) {
        let declare = unsafe { &*stmt.cast::<pg_sys::DeclareCursorStmt>() };
        if declare.options & pg_sys::CURSOR_OPT_HOLD as i32 != 0 {
            if restricted() {
                raise(Error::HoldCursor);
            }
            MAYBE_HELD.with(|m| m.set(true));
        }
    } else if pgrx::is_a(stmt, pg_sys::NodeTag::T_ExplainStmt) {
        let explain = unsafe { &*stmt.cast::<pg_sys::ExplainStmt>() };
        if restricted() && unsafe { analyzes(explain) } {
            raise(Error::ExplainAnalyze);
        }
    } else if pgrx::is_a(stmt, pg_sys::NodeTag::T_LockStmt) {
        let lock = unsafe { &*stmt.cast::<pg_sys::LockStmt>() };
        if restricted() && unsafe { locks_shared_table(lock) } {
            raise(Error::LockTable);
        }
    }
}

/// A tenant context is installed and the current user is not a superuser.
fn restricted() -> bool {
    // SAFETY: superuser() reads the current user's cached role attributes.
    crate::context::current().is_some() && !unsafe { pg_sys::superuser() }
}

/// `EXPLAIN (ANALYZE [true])` or `EXPLAIN ANALYZE`.
///
/// SAFETY: `explain` must be a valid ExplainStmt.
unsafe fn analyzes(explain: &pg_sys::ExplainStmt) -> bool {
    // SAFETY: ExplainStmt.options is a (possibly empty) List of DefElem nodes.
    let options = unsafe { PgList::<pg_sys::DefElem>::from_pg(explain.options) };
    let analyze = options.iter_ptr().any(|def| {
        // SAFETY: a DefElem from that list; defGetBoolean accepts a missing argument (true)
        // and raises on a non-boolean one, as EXPLAIN itself would.
        unsafe { CStr::from_ptr((*def).defname).to_bytes() == b"analyze" && pg_sys::defGetBoolean(def) }
    });
    analyze
}

/// One of the relations a `LOCK` names is a view, has row level security, or belongs to the
/// extension's schema.
///
/// SAFETY: `lock` must be a valid LockStmt.
unsafe fn locks_shared_table(lock: &pg_sys::LockStmt) -> bool {
    // SAFETY: LockStmt.relations is a List of RangeVar nodes.
    let relations = unsafe { PgList::<pg_sys::RangeVar>::from_pg(lock.relations) };
    // SAFETY: catalog lookups by name and oid; a relation that does not exist is left to
    // LockTableCommand, which reports it.
    let buzz = unsafe { pg_sys::get_namespace_oid(c"buzz".as_ptr(), true) };
    let shared = relations.iter_ptr().any(|rv| unsafe {
        let relid = pg_sys::RangeVarGetRelidExtended(
            rv,
            pg_sys::NoLock as pg_sys::LOCKMODE,
            pg_sys::RVROption::RVR_MISSING_OK,
            None,
            std::ptr::null_mut(),
        );
        if relid == pg_sys::InvalidOid {
            return false;
        }
        if pg_sys::get_rel_relkind(relid) == pg_sys::RELKIND_VIEW as c_char || pg_sys::get_rel_namespace(relid) == buzz {
            return true;
        }
        let rel = pg_sys::RelationIdGetRelation(relid);
        if rel.is_null() {
            return false;
        }
        let rls = (*(*rel).rd_rel).relrowsecurity;
        pg_sys::RelationClose(rel);
        rls
    });
    shared
}

/// Called by `enter` before a context is installed: refuse while the backend holds a portal
/// that outlives its transaction — a `WITH HOLD` cursor, or a loop PostgreSQL auto-held at a
/// procedure's `COMMIT` (`pg_cursors` reports those as not holdable, so each portal it lists
/// is looked up and its own flags are read). See the module comment for when it looks.
pub fn refuse_if_held() {
    if !MAYBE_HELD.with(Cell::get) {
        return;
    }
    let names: Option<Vec<String>> = Spi::connect(|c| {
        c.select("SELECT name FROM pg_catalog.pg_cursors", None, &[])?
            .map(|row| row.get::<String>(1))
            .collect::<Result<Vec<_>, _>>()
            .map(|v| v.into_iter().flatten().collect())
    })
    .ok();
    let held = names.is_none_or(|names| names.iter().any(|name| holds(name)));
    if held {
        raise(Error::HoldCursor);
    }
    MAYBE_HELD.with(|m| m.set(false));
}

/// The portal `name` survives its transaction: declared WITH HOLD, or auto-held.
fn holds(name: &str) -> bool {
    let Ok(name) = std::ffi::CString::new(name) else { return true };
    // SAFETY: GetPortalByName only reads the backend's portal table; the returned portal (or
    // NULL) stays valid while we read two fields of it, as nothing runs in between.
    unsafe {
        let portal = pg_sys::GetPortalByName(name.as_ptr());
        !portal.is_null() && ((*portal).autoHeld || (*portal).cursorOptions & pg_sys::CURSOR_OPT_HOLD as i32 != 0)
    }
}
