//! Nothing survives a community transaction (DESIGN §12.3): no `WITH HOLD` cursor.
//!
//! A holdable cursor is materialized at COMMIT — while the transaction's context is still
//! installed — and stays readable in the session's next transactions, which a pooler may give
//! to another community. So in a transaction that has a context, or gets one, a holdable
//! cursor is refused both ways round:
//!   * `DECLARE … WITH HOLD` while a context is active is refused (ProcessUtility hook);
//!   * `buzz.enter` in a transaction that already declared one is refused.
//! The hook only sees statements run after the library loaded, so in the backend's first
//! transaction (the one that loads it, unless it is preloaded) `enter` also asks `pg_cursors`.

use std::cell::Cell;
use std::ffi::{c_char, c_void};

use pgrx::pg_sys;

use crate::errors::{raise, Error};

#[cfg(not(feature = "pg13"))]
static mut PREV_UTILITY: pg_sys::ProcessUtility_hook_type = None;

thread_local! {
    /// A `DECLARE … WITH HOLD` ran in the current transaction.
    static HOLD_DECLARED: Cell<bool> = const { Cell::new(false) };
    /// A transaction has ended since the library loaded: from then on the hook saw everything.
    static SEEN_WHOLE_XACT: Cell<bool> = const { Cell::new(false) };
}

#[cfg(not(feature = "pg13"))] // PG 13's ProcessUtility has another signature
pub fn init() {
    unsafe {
        PREV_UTILITY = pg_sys::ProcessUtility_hook;
        pg_sys::ProcessUtility_hook = Some(utility);
        pg_sys::RegisterXactCallback(Some(on_xact_end), std::ptr::null_mut());
    }
}

unsafe extern "C-unwind" fn on_xact_end(event: pg_sys::XactEvent::Type, _arg: *mut c_void) {
    use pg_sys::XactEvent::*;
    if matches!(event, XACT_EVENT_COMMIT | XACT_EVENT_ABORT | XACT_EVENT_PREPARE | XACT_EVENT_PARALLEL_COMMIT | XACT_EVENT_PARALLEL_ABORT) {
        HOLD_DECLARED.with(|h| h.set(false));
        SEEN_WHOLE_XACT.with(|s| s.set(true));
    }
}

#[cfg(not(feature = "pg13"))]
#[pgrx::pg_guard]
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
    let stmt = (*pstmt).utilityStmt;
    if pgrx::is_a(stmt, pg_sys::NodeTag::T_DeclareCursorStmt)
        && (*stmt.cast::<pg_sys::DeclareCursorStmt>()).options & pg_sys::CURSOR_OPT_HOLD as i32 != 0
    {
        if crate::context::current().is_some() {
            raise(Error::HoldCursor);
        }
        HOLD_DECLARED.with(|h| h.set(true));
    }
    match PREV_UTILITY {
        Some(prev) => prev(pstmt, query, read_only_tree, context, params, env, dest, qc),
        None => pg_sys::standard_ProcessUtility(pstmt, query, read_only_tree, context, params, env, dest, qc),
    }
}

/// Called by `enter` before a context is installed.
pub fn refuse_if_held() {
    let declared = HOLD_DECLARED.with(|h| h.get())
        || (!SEEN_WHOLE_XACT.with(|s| s.get())
            && crate::spi_cache::one::<bool>("SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_cursors WHERE is_holdable)", &[])
                .ok()
                .flatten()
                .unwrap_or(true));
    if declared {
        raise(Error::HoldCursor);
    }
}
