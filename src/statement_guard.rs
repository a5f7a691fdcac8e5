//! What a community transaction may not run, and what `enter` must not let through.
//!
//! For a role that is not a superuser:
//!   * `DECLARE … WITH HOLD` is refused while a tenant context is installed (DESIGN §12.3): a
//!     holdable cursor is materialized at `COMMIT`, while the context is still installed, and
//!     stays readable in the session's next transactions, which a pooler may give to another
//!     community (ProcessUtility hook);
//!   * `EXPLAIN ANALYZE` of a statement that reads a relation with row level security or one
//!     of the extension's is refused, with or without a context (§12.20): its row counters
//!     (`Rows Removed by Filter`, loops, heap fetches) count rows an index not led by
//!     `community_id` visits *before* the fence filters them, so probing key ranges recovers
//!     other communities' keys — without a context every row is another community's, and a
//!     statement may even enter a community itself. The ExecutorStart hook refuses an
//!     instrumented execution inside an `EXPLAIN` whose range table holds such a relation
//!     the current user does not own;
//!   * `LOCK TABLE` on a table with row level security, an extension table or a view (views
//!     lock their base tables) it does not own is refused, with or without a context: an
//!     explicit `ACCESS EXCLUSIVE` lock would stall every other community, and taking it before
//!     `enter` is as good as after;
//!   * `NOTIFY` is refused while a tenant context is installed: channels are server-wide, so a
//!     payload sent from one community's transaction (by the relay or by a trigger on its
//!     tables) reaches listeners serving every other (the recipe revokes `pg_notify`).
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
use std::ffi::{c_char, c_void};

use pgrx::pg_sys;
use pgrx::prelude::*;
use pgrx::PgList;

use crate::errors::{raise, Error, OrRaise};

static mut PREV_UTILITY: pg_sys::ProcessUtility_hook_type = None;
static mut PREV_EXECUTOR_START: pg_sys::ExecutorStart_hook_type = None;

thread_local! {
    /// A holdable portal may exist: `enter` must look before it installs a context.
    static MAYBE_HELD: Cell<bool> = const { Cell::new(true) };
    /// EXPLAIN statements being run (nested through functions).
    static EXPLAINING: Cell<u32> = const { Cell::new(0) };
}

pub fn init() {
    // SAFETY: called once from _PG_init, before any statement runs; the previous hooks are
    // kept and chained, as PostgreSQL's hook convention requires.
    unsafe {
        PREV_UTILITY = pg_sys::ProcessUtility_hook;
        pg_sys::ProcessUtility_hook = Some(utility);
        PREV_EXECUTOR_START = pg_sys::ExecutorStart_hook;
        pg_sys::ExecutorStart_hook = Some(executor_start);
        pg_sys::RegisterXactCallback(Some(on_xact_end), std::ptr::null_mut());
    }
}

/// SAFETY: PostgreSQL calls it at transaction events; it only touches this module's Cells.
unsafe extern "C-unwind" fn on_xact_end(event: pg_sys::XactEvent::Type, _arg: *mut c_void) {
    use pg_sys::XactEvent::*;
    if matches!(event, XACT_EVENT_ABORT) {
        EXPLAINING.with(|e| e.set(0));
    }
    if matches!(event, XACT_EVENT_COMMIT | XACT_EVENT_ABORT) && crate::pg::inside_nonatomic_procedure() {
        // COMMIT/ROLLBACK inside a procedure or DO block: PostgreSQL has just held its pinned
        // (loop) portals.
        MAYBE_HELD.with(|m| m.set(true));
    }
}

/// Counts an EXPLAIN in progress for as long as it lives (also when it fails).
struct Explaining;
impl Explaining {
    fn enter() -> Explaining {
        EXPLAINING.with(|e| e.set(e.get() + 1));
        Explaining
    }
}
impl Drop for Explaining {
    fn drop(&mut self) {
        EXPLAINING.with(|e| e.set(e.get().saturating_sub(1)));
    }
}

/// SAFETY: installed as ExecutorStart_hook; PostgreSQL calls it with a valid QueryDesc.
#[pg_guard]
unsafe extern "C-unwind" fn executor_start(query: *mut pg_sys::QueryDesc, eflags: std::ffi::c_int) {
    // SAFETY: PostgreSQL passes a valid QueryDesc whose planned statement it is about to run.
    unsafe {
        let counted = (*query).instrument_options != 0 && eflags & pg_sys::EXEC_FLAG_EXPLAIN_ONLY as i32 == 0;
        if counted && EXPLAINING.with(Cell::get) > 0 && !pg_sys::superuser() && reads_fenced_rows((*(*query).plannedstmt).rtable) {
            raise(Error::ExplainAnalyze);
        }
        match PREV_EXECUTOR_START {
            Some(prev) => prev(query, eflags),
            None => pg_sys::standard_ExecutorStart(query, eflags),
        }
    }
}

/// The range table holds a relation with row level security, or one of the extension's, that
/// the current user does not own (an owner is an operator: its counters are its own business).
///
/// SAFETY: `rtable` must be a planned statement's range table (a List of RangeTblEntry).
unsafe fn reads_fenced_rows(rtable: *mut pg_sys::List) -> bool {
    // SAFETY: as the function's contract says.
    let entries = unsafe { PgList::<pg_sys::RangeTblEntry>::from_pg(rtable) };
    let fenced = entries.iter_ptr().any(|rte| unsafe {
        (*rte).rtekind == pg_sys::RTEKind::RTE_RELATION && shared_relation((*rte).relid, false)
    });
    fenced
}

/// `relid` has row level security, belongs to the extension's schema, or (if `views`) is a
/// view — and the current user does not own it.
fn shared_relation(relid: pg_sys::Oid, views: bool) -> bool {
    // SAFETY: catalog lookups by oid; the relcache entry is opened and closed around one read.
    unsafe {
        let user = pg_sys::GetUserId();
        if relid == pg_sys::InvalidOid || pg_sys::pg_class_ownercheck(relid, user) {
            return false;
        }
        let buzz = pg_sys::get_namespace_oid(c"buzz".as_ptr(), true);
        if pg_sys::get_rel_namespace(relid) == buzz || (views && pg_sys::get_rel_relkind(relid) == pg_sys::RELKIND_VIEW as c_char) {
            return true;
        }
        let rel = pg_sys::RelationIdGetRelation(relid);
        if rel.is_null() {
            return false;
        }
        let rls = (*(*rel).rd_rel).relrowsecurity;
        pg_sys::RelationClose(rel);
        rls
    }
}

/// SAFETY: installed as ProcessUtility_hook; PostgreSQL calls it with valid arguments.
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
    let stmt = unsafe { (*pstmt).utilityStmt };
    unsafe { check(stmt) };
    let _explaining = pgrx::is_a(stmt, pg_sys::NodeTag::T_ExplainStmt).then(Explaining::enter);
    // SAFETY: the arguments are passed on unchanged to the next hook or the standard one.
    unsafe {
        match PREV_UTILITY {
            Some(prev) => prev(pstmt, query, read_only_tree, context, params, env, dest, qc),
            None => pg_sys::standard_ProcessUtility(pstmt, query, read_only_tree, context, params, env, dest, qc),
        }
    }
}

/// Refuse what a non-superuser may not run (see the module comment).
///
/// SAFETY: `stmt` must be a valid utility statement node.
unsafe fn check(stmt: *mut pg_sys::Node) {
    let superuser = crate::pg::current_is_superuser;
    if pgrx::is_a(stmt, pg_sys::NodeTag::T_DeclareCursorStmt) {
        // SAFETY: the tag says it is a DeclareCursorStmt.
        let declare = unsafe { &*stmt.cast::<pg_sys::DeclareCursorStmt>() };
        if declare.options & pg_sys::CURSOR_OPT_HOLD as i32 != 0 {
            if crate::context::current().is_some() && !superuser() {
                raise(Error::HoldCursor);
            }
            MAYBE_HELD.with(|m| m.set(true));
        }
    } else if pgrx::is_a(stmt, pg_sys::NodeTag::T_NotifyStmt) {
        // Channels are server-wide: a payload sent in one community's transaction reaches
        // listeners serving every other (pg_notify, the function, is revoked by the recipe).
        if crate::context::current().is_some() && !superuser() {
            raise(Error::NotifyRefused);
        }
    } else if pgrx::is_a(stmt, pg_sys::NodeTag::T_LockStmt) {
        // SAFETY: the tag says it is a LockStmt, which locks_shared_table then reads.
        let lock = unsafe { &*stmt.cast::<pg_sys::LockStmt>() };
        // SAFETY: as above.
        if !superuser() && unsafe { locks_shared_table(lock) } {
            raise(Error::LockTable);
        }
    }
}

/// One of the relations a `LOCK` names is a view, has row level security, or belongs to the
/// extension's schema, and the current user does not own it.
///
/// SAFETY: `lock` must be a valid LockStmt.
unsafe fn locks_shared_table(lock: &pg_sys::LockStmt) -> bool {
    // SAFETY: LockStmt.relations is a List of RangeVar nodes.
    let relations = unsafe { PgList::<pg_sys::RangeVar>::from_pg(lock.relations) };
    // SAFETY: a lookup by name; a relation that does not exist is left to LockTableCommand,
    // which reports it.
    let shared = relations.iter_ptr().any(|rv| unsafe {
        let relid = pg_sys::RangeVarGetRelidExtended(
            rv,
            pg_sys::NoLock as pg_sys::LOCKMODE,
            pg_sys::RVROption::RVR_MISSING_OK,
            None,
            std::ptr::null_mut(),
        );
        shared_relation(relid, true)
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
    let names: Vec<String> = Spi::connect(|c| {
        c.select("SELECT name FROM pg_catalog.pg_cursors", None, &[])?
            .map(|row| row.get::<String>(1))
            .collect::<Result<Vec<_>, _>>()
            .map(|v| v.into_iter().flatten().collect())
    })
    .or_raise();
    let held = names.iter().any(|name| holds(name));
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
