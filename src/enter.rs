//! Entering a community: the only code that installs a tenant context (DESIGN §4).
//!
//! `buzz.enter(host[, credential])` resolves the host and checks the credential (`resolve`,
//! `auth`), operator functions reach one community for the duration of a call
//! ([`with_operator_scope`]), and background workers enter by id (`worker.rs`). Every
//! installation binds the top-level transaction to its community, refuses a backend that holds
//! portals from an earlier transaction (`statement_guard`), notes the acting role and pins the
//! error logging the sanitizer needs (`sanitize`), then writes the setting (`context`).

use std::cell::Cell;
use std::ffi::c_void;
use std::ptr;

use pgrx::pg_sys;
use pgrx::Uuid;

use crate::context::{self, Context};
use crate::errors::{raise, Error, OrRaise};
use crate::resolve;

thread_local! {
    /// The community the current top-level transaction entered first (see `bind`).
    static BOUND: Cell<Option<Binding>> = const { Cell::new(None) };
    /// Top-level transactions ended in this backend (commit, abort or prepare).
    static XACT_SEQ: Cell<u64> = const { Cell::new(0) };
    /// The client statement (by its start time) during which a transaction last ended inside
    /// a procedure or DO block (a non-atomic SPI context): that statement goes on in a new
    /// transaction.
    static ENDED_INSIDE: Cell<Option<pg_sys::TimestampTz>> = const { Cell::new(None) };
}

/// Which community a transaction is bound to, and to which transaction and client statement
/// that binding belongs.
#[derive(Clone, Copy)]
struct Binding {
    community: Uuid,
    xact: u64,
    statement: pg_sys::TimestampTz,
}

/// SAFETY: PostgreSQL calls it at transaction events; it only touches this module's Cells and
/// reads backend state through `crate::pg`.
unsafe extern "C-unwind" fn on_xact_end(event: pg_sys::XactEvent::Type, _arg: *mut c_void) {
    use pg_sys::XactEvent::*;
    if matches!(event, XACT_EVENT_COMMIT | XACT_EVENT_ABORT | XACT_EVENT_PREPARE) {
        XACT_SEQ.with(|n| n.set(n.get() + 1));
        if crate::pg::inside_nonatomic_procedure() {
            ENDED_INSIDE.with(|e| e.set(Some(crate::pg::statement_start())));
        }
    }
}

pub fn init() {
    // SAFETY: called once from _PG_init; the callback only touches this module's cells.
    unsafe { pg_sys::RegisterXactCallback(Some(on_xact_end), ptr::null_mut()) };
}

/// One community per transaction (DESIGN §4): a top-level transaction is bound to the first
/// community it enters until it ends. The binding is kept outside the setting on purpose: a
/// `ROLLBACK TO SAVEPOINT` (or a failed exception block) restores the setting and may clear the
/// context, but must not free the transaction to enter another community while something read
/// under the first (an open cursor, a variable) is still at hand. Inside a procedure or DO
/// block (a non-atomic SPI context) the binding also outlives the `COMMIT`/`ROLLBACK`s of the
/// client statement that made it — however deeply the later `enter` is nested (an atomic
/// function called from the block is still the same statement).
fn bind(community: Uuid) {
    let now = Binding {
        community,
        xact: XACT_SEQ.with(Cell::get),
        statement: crate::pg::statement_start(),
    };
    match BOUND.with(Cell::get) {
        Some(b) if b.community != community => {
            let same_statement = b.statement == now.statement && ENDED_INSIDE.with(Cell::get) == Some(now.statement);
            if b.xact == now.xact || same_statement {
                raise(Error::ContextConflict);
            }
            BOUND.with(|c| c.set(Some(now)));
        }
        _ => BOUND.with(|c| c.set(Some(now))),
    }
}

/// `row_security = on` for the rest of the transaction, whatever a session (or a previous
/// client of a pooled connection) set: with it off, every fenced statement of the extension
/// would fail instead of being fenced.
fn pin_row_security() {
    crate::pg::set_local(c"row_security", c"on");
}

/// Install `ctx` for the rest of the transaction (`SET LOCAL` semantics), after binding the
/// transaction to its community and refusing a backend that holds portals.
fn set_transaction_context(ctx: &Context) {
    bind(ctx.community);
    crate::statement_guard::refuse_if_held();
    crate::sanitize::note_role();
    crate::sanitize::pin_error_logging();
    context::install(ctx, pg_sys::GucAction::GUC_ACTION_LOCAL);
}

/// Run `f` with the context set to `community` (no actor), restoring the previous value
/// afterwards — how operator functions, owned by the RLS-bound owner role, reach one
/// community's rows. On error the transaction (or subtransaction) abort restores it.
pub fn with_operator_scope<R>(community: Uuid, f: impl FnOnce() -> R) -> R {
    crate::pg::with_guc_nest_level(|| {
        let ctx = Context { community, host: String::new(), actor: None, token: None, worker: false };
        crate::sanitize::note_role();
        context::install(&ctx, pg_sys::GucAction::GUC_ACTION_SAVE);
        f()
    })
}

/// Bind this transaction to `community` as a background worker (`buzz.enter_community`, for
/// roles set up by `buzz.setup_worker_role` only): no host, no actor, the worker mark.
pub fn enter_worker(community: Uuid) {
    pin_row_security();
    set_transaction_context(&Context { community, host: String::new(), actor: None, token: None, worker: true });
}

/// Enter `host` anonymously (the first step of every authenticated enter).
pub fn enter_host(host: Option<&str>) {
    pin_row_security();
    let (community, host) = resolve::community_for_host(host);
    set_transaction_context(&Context { community, host, actor: None, token: None, worker: false });
}

/// Make `actor` (already authenticated and admitted) the actor of the current context.
pub fn set_actor(actor: String) {
    let ctx = context::require();
    set_transaction_context(&Context { actor: Some(actor), token: None, worker: false, ..ctx });
}

/// `buzz.enter` (declared in src/api/relay.rs).
pub(crate) fn enter_anonymous(host: Option<&str>) {
    crate::incident::guard(|| {
        pin_row_security();
        let (community, host) = resolve::community_for_host(host);
        set_transaction_context(&Context { community, host, actor: None, token: None, worker: false });
    })
}

/// `buzz.enter` (declared in src/api/relay.rs).
pub(crate) fn enter_session(host: Option<&str>, session_token: Option<&str>) {
    crate::incident::guard(|| {
        pin_row_security();
        let (community, host) = resolve::community_for_host(host);
        // Anonymous first: the session lookup below then runs under this community's RLS fence.
        set_transaction_context(&Context { community, host: host.clone(), actor: None, token: None, worker: false });
        let credential = session_token.unwrap_or_else(|| raise(Error::SessionInvalid));
        let (actor, token) = crate::auth::actor_for_credential(community, credential, true).or_raise();
        set_transaction_context(&Context { community, host, actor: Some(actor), token, worker: false });
    })
}

