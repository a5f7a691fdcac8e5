//! Sanitized errors for the relay's own statements (DESIGN §6, C2.2 / M6).
//!
//! The extension's functions already answer from the catalog, but a relay also runs its own
//! SQL on its own (tenant) tables, and PostgreSQL's errors name constraints, tables, columns
//! and — in DETAIL — row values. While a tenant context is active and the acting role (the
//! outer role: `SET ROLE` counts, SECURITY DEFINER does not) is not a superuser, every ERROR
//! (or FATAL: `exit_on_error` promotes errors to it) that is about to reach the client is
//! rewritten in `emit_log_hook`:
//!   * a message that already is a catalog phrase keeps its text;
//!   * anything else becomes the catalog phrase for its SQLSTATE class plus
//!     `(incident <16 hex>)`, and the raw error — message, detail, hint, context, object
//!     names — is first written to the server log only (LOG_SERVER_ONLY) with the community
//!     and the same incident id;
//!   * DETAIL, HINT, CONTEXT, the schema/table/column/datatype/constraint fields, the internal
//!     query, cursor positions and the source location are cleared. The SQLSTATE is kept:
//!     relays act on it (retry on 40001, duplicate on 23505) and it carries no tenant data.
//!
//! The hook only sees errors that go to the server log (`log_min_messages` ≤ `error`):
//! `enter` pins that for the transaction ([`pin_error_logging`]) and the conformance gate
//! fails any relay privilege to change it. It never touches the catalogs (the role's superuser bit is
//! noted when the context is installed), guards against re-entry (its own log line passes
//! through it) and catches panics: on any failure the message becomes `error: internal error`.

use std::cell::Cell;
use std::ffi::{c_char, CStr, CString};
use std::fmt::Write as _;
use std::panic::{catch_unwind, AssertUnwindSafe};

use pgrx::pg_sys;
use pgrx::PgSqlErrorCode as C;

use crate::errors::{by_message, Error};

static mut PREV_HOOK: pg_sys::emit_log_hook_type = None;

thread_local! {
    static IN_HOOK: Cell<bool> = const { Cell::new(false) };
    /// The outer role last seen installing a context, and whether it is a superuser.
    static ROLE: Cell<Option<(pg_sys::Oid, bool)>> = const { Cell::new(None) };
}

pub fn init() {
    // SAFETY: called once from _PG_init, before any statement runs; the previous hook is kept
    // and chained.
    unsafe {
        PREV_HOOK = pg_sys::emit_log_hook;
        pg_sys::emit_log_hook = Some(hook);
    }
}

/// Remember whether the acting role is a superuser (called whenever a context is installed,
/// in a healthy transaction, so the hook itself never needs a catalog lookup).
pub fn note_role() {
    // superuser_arg keeps its own cache, invalidated when pg_authid changes, so a role that
    // loses SUPERUSER is sanitized from its next context on.
    let role = crate::pg::outer_role();
    let is_super = crate::pg::is_superuser(role);
    ROLE.with(|r| r.set(Some((role, is_super))));
}

/// PostgreSQL calls `emit_log_hook` only for errors it writes to the server log, so the hook
/// sees every ERROR only while `log_min_messages` lets errors through (at most `error`; `log`
/// ranks above `error` there). Whatever the server, role or session says, a community
/// transaction logs its errors: the setting is pinned to `error` for the transaction when it
/// is higher. (It is superuser-only; a relay that holds SET privilege on it could raise it
/// again later in the transaction, which is why the conformance gate fails that privilege.)
pub fn pin_error_logging() {
    let level = crate::pg::log_min_messages();
    if level <= pg_sys::PGERROR as i32 && level != pg_sys::LOG as i32 {
        return;
    }
    crate::pg::set_local(c"log_min_messages", c"error");
}

/// Unknown roles count as non-superusers: sanitizing too much is the safe mistake.
fn acting_as_superuser() -> bool {
    let role = crate::pg::outer_role();
    matches!(ROLE.with(|r| r.get()), Some((o, true)) if o == role)
}

/// SAFETY: PostgreSQL calls it with the ErrorData being emitted (or NULL), on the backend's
/// only thread; the fields it replaces are allocated in that error's memory context.
unsafe extern "C-unwind" fn hook(edata: *mut pg_sys::ErrorData) {
    if !edata.is_null() && !IN_HOOK.with(|h| h.get()) {
        IN_HOOK.with(|h| h.set(true));
        let outcome = catch_unwind(AssertUnwindSafe(|| sanitize(&mut *edata)));
        IN_HOOK.with(|h| h.set(false));
        if outcome.is_err() {
            let e = &mut *edata;
            strip(e);
            set_message(e, Error::Internal.message());
        }
    }
    if let Some(prev) = PREV_HOOK {
        prev(edata);
    }
}

/// SAFETY: `e` is the error being emitted (its strings are valid C strings or NULL).
unsafe fn sanitize(e: &mut pg_sys::ErrorData) {
    // FATAL too: `exit_on_error` (which any role may set) turns every ERROR into one.
    let error_or_fatal = e.elevel == pg_sys::PGERROR as i32 || e.elevel == pg_sys::FATAL as i32;
    if !error_or_fatal || !e.output_to_client || pg_sys::ParallelWorkerNumber >= 0 {
        // Parallel workers hand their errors to the leader, which sanitizes them once.
        return;
    }
    let message = text(e.message);
    let catalog = by_message(message.as_bytes()).is_some();
    if catalog {
        // The extension's own errors never name a Rust source file or function, in or out of
        // a context (their DETAIL, which only operator functions set, stays outside one).
        strip_location(e);
    }
    if crate::context::current().is_none() {
        return;
    }
    if acting_as_superuser() {
        return;
    }
    if catalog {
        strip(e);
        return;
    }
    let entry = classify(e.sqlerrcode);
    let incident = crate::incident::new_id();
    let mut raw = message;
    for (label, field) in [
        ("detail", e.detail),
        ("detail_log", e.detail_log),
        ("hint", e.hint),
        ("context", e.context),
        ("schema", e.schema_name),
        ("table", e.table_name),
        ("column", e.column_name),
        ("datatype", e.datatype_name),
        ("constraint", e.constraint_name),
        ("internal query", e.internalquery),
    ] {
        if !field.is_null() {
            let _ = write!(raw, "\n  {label}: {}", text(field));
        }
    }
    // Server log only; it passes through this hook again (IN_HOOK) and is never sent to a client.
    crate::incident::log(&incident, &crate::errors::sqlstate_text(e.sqlerrcode), &raw);
    strip(e);
    set_message(e, &format!("{} (incident {incident})", entry.message()));
}

/// The catalog entry shown for a raw error, by SQLSTATE (exact codes first, then class).
fn classify(code: i32) -> Error {
    let is = |c: C| code == c as i32;
    let class = |c: C| code & 0xFFF == (c as i32) & 0xFFF;
    if is(C::ERRCODE_UNIQUE_VIOLATION) || is(C::ERRCODE_EXCLUSION_VIOLATION) {
        Error::SqlUnique
    } else if is(C::ERRCODE_FOREIGN_KEY_VIOLATION) {
        Error::SqlForeignKey
    } else if is(C::ERRCODE_NOT_NULL_VIOLATION) {
        Error::SqlNotNull
    } else if is(C::ERRCODE_CHECK_VIOLATION) {
        Error::SqlCheck
    } else if is(C::ERRCODE_INSUFFICIENT_PRIVILEGE) {
        Error::SqlDenied
    } else if is(C::ERRCODE_QUERY_CANCELED) {
        Error::SqlCanceled
    } else if is(C::ERRCODE_READ_ONLY_SQL_TRANSACTION) {
        Error::ReadOnly
    } else if is(C::ERRCODE_LOCK_NOT_AVAILABLE) {
        Error::SqlRetry
    } else if class(C::ERRCODE_INTEGRITY_CONSTRAINT_VIOLATION) {
        Error::SqlConstraint
    } else if class(C::ERRCODE_DATA_EXCEPTION) {
        Error::SqlData
    } else if class(C::ERRCODE_TRANSACTION_ROLLBACK) {
        Error::SqlRetry
    } else if class(C::ERRCODE_SYNTAX_ERROR_OR_ACCESS_RULE_VIOLATION)
        || class(C::ERRCODE_FEATURE_NOT_SUPPORTED)
        || class(C::ERRCODE_INVALID_TRANSACTION_STATE)
        || class(C::ERRCODE_INVALID_CURSOR_STATE)
        || class(C::ERRCODE_INVALID_SQL_STATEMENT_NAME)
    {
        Error::SqlStatement
    } else {
        Error::Internal
    }
}

/// Clear every field that could carry names or values.
fn strip(e: &mut pg_sys::ErrorData) {
    e.detail = std::ptr::null_mut();
    e.detail_log = std::ptr::null_mut();
    e.hint = std::ptr::null_mut();
    e.context = std::ptr::null_mut();
    e.schema_name = std::ptr::null_mut();
    e.table_name = std::ptr::null_mut();
    e.column_name = std::ptr::null_mut();
    e.datatype_name = std::ptr::null_mut();
    e.constraint_name = std::ptr::null_mut();
    e.internalquery = std::ptr::null_mut();
    e.cursorpos = 0;
    e.internalpos = 0;
    strip_location(e);
    e.hide_ctx = true;
}

/// Clear where in the code the error was raised (and any backtrace).
fn strip_location(e: &mut pg_sys::ErrorData) {
    e.filename = std::ptr::null();
    e.lineno = 0;
    e.funcname = std::ptr::null();
    e.backtrace = std::ptr::null_mut();
}

/// Replace the message with a copy in the error's own memory context (PostgreSQL may pfree it).
///
/// SAFETY: `e` is an ErrorData being emitted, whose `assoc_context` is NULL or a live context.
unsafe fn set_message(e: &mut pg_sys::ErrorData, msg: &str) {
    let Ok(c) = CString::new(msg) else { return };
    let cxt = if e.assoc_context.is_null() { pg_sys::ErrorContext } else { e.assoc_context };
    e.message = pg_sys::MemoryContextStrdup(cxt, c.as_ptr());
}

/// SAFETY: `p` is NULL or a NUL-terminated string valid for the call.
unsafe fn text(p: *const c_char) -> String {
    if p.is_null() {
        String::new()
    } else {
        CStr::from_ptr(p).to_string_lossy().into_owned()
    }
}
