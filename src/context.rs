//! The tenant context: a transaction-local `{community, host, actor}` that only `buzz.enter`
//! (and the operator API, for the duration of one call) can install.
//!
//! It lives in one custom setting, `buzz_tenancy.context`, because settings are what PostgreSQL already
//! scopes correctly: `GUC_ACTION_LOCAL` makes it vanish at COMMIT/ROLLBACK, `ROLLBACK TO
//! SAVEPOINT` restores the earlier value, and parallel workers receive it (a Rust static would
//! not reach them). The setting is `Suset` *and* guarded by a check hook that refuses every
//! value the extension did not set itself — so neither `SET`, `set_config`, `ALTER ROLE … SET`,
//! `ALTER SYSTEM` nor a placeholder forged before the library loaded can install a context.

use std::cell::Cell;
use std::ffi::{c_char, c_void, CStr, CString};
use std::ptr;

use pgrx::pg_sys;
use pgrx::prelude::*;
use pgrx::Uuid;

use crate::errors::{raise, Error, OrRaise};
use crate::resolve;

const CONTEXT_GUC: &CStr = c"buzz_tenancy.context";

/// Storage PostgreSQL writes the setting's current value into.
static mut CONTEXT_VALUE: *mut c_char = ptr::null_mut();

thread_local! {
    /// True only while this module itself calls `set_config_option`.
    static SETTING_BY_US: Cell<bool> = const { Cell::new(false) };
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

unsafe extern "C-unwind" fn on_xact_end(event: pg_sys::XactEvent::Type, _arg: *mut c_void) {
    use pg_sys::XactEvent::*;
    if matches!(event, XACT_EVENT_COMMIT | XACT_EVENT_ABORT | XACT_EVENT_PREPARE) {
        XACT_SEQ.with(|n| n.set(n.get() + 1));
        // SAFETY: both only read backend state (SPI's stack pointer, the statement's start).
        if unsafe { pg_sys::SPI_inside_nonatomic_context() } {
            ENDED_INSIDE.with(|e| e.set(Some(unsafe { pg_sys::GetCurrentStatementStartTimestamp() })));
        }
    }
}

/// Refuse any value not installed by this module. Clearing is always allowed (fails closed);
/// the boot value and parallel-worker state restore are PostgreSQL's own bookkeeping.
unsafe extern "C-unwind" fn check_context(
    newval: *mut *mut c_char,
    _extra: *mut *mut c_void,
    source: pg_sys::GucSource::Type,
) -> bool {
    if SETTING_BY_US.with(|c| c.get())
        || source == pg_sys::GucSource::PGC_S_DEFAULT
        || pg_sys::InitializingParallelWorker
    {
        return true;
    }
    let v = *newval;
    v.is_null() || *v == 0
}

pub fn init() {
    unsafe {
        pg_sys::DefineCustomStringVariable(
            CONTEXT_GUC.as_ptr(),
            c"Tenant context of the current transaction (set only by buzz.enter).".as_ptr(),
            c"Cannot be set directly; see buzz.enter().".as_ptr(),
            &raw mut CONTEXT_VALUE,
            c"".as_ptr(),
            pg_sys::GucContext::PGC_SUSET,
            // NO_RESET_ALL: `RESET ALL` would otherwise clear it and let a second community in.
            (pg_sys::GUC_NO_SHOW_ALL | pg_sys::GUC_NOT_IN_SAMPLE | pg_sys::GUC_DISALLOW_IN_FILE | pg_sys::GUC_NO_RESET_ALL) as i32,
            Some(check_context),
            None,
            None,
        );
        #[cfg(not(any(feature = "pg13", feature = "pg14")))]
        pg_sys::MarkGUCPrefixReserved(c"buzz_tenancy".as_ptr());
        #[cfg(any(feature = "pg13", feature = "pg14"))]
        pg_sys::EmitWarningsOnPlaceholders(c"buzz_tenancy".as_ptr());
        pg_sys::RegisterXactCallback(Some(on_xact_end), ptr::null_mut());
    }
}

/// The decoded context. `host` is normalized; `actor` is an authenticated pubkey (hex).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Context {
    pub community: Uuid,
    pub host: String,
    pub actor: Option<String>,
    /// Set when the actor entered with an API token: what the token allows (S6, §12.7).
    pub token: Option<TokenGrant>,
    /// A background worker's context (`buzz.enter_community`): no host, no actor.
    pub worker: bool,
}

/// The rights an API token carries into a context: its scopes, and the channels it is limited
/// to (None: every channel its minter may use).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenGrant {
    pub read: bool,
    pub write: bool,
    pub channels: Option<Vec<Uuid>>,
}

impl Context {
    fn encode(&self) -> CString {
        // Host and actor never contain '|' (normalized host / hex pubkey), nor do uuids.
        let kind = if self.worker { 'w' } else { 'h' };
        let mut s = format!("{kind}|{}|{}|{}", self.community, self.host, self.actor.as_deref().unwrap_or(""));
        if let Some(t) = &self.token {
            let scopes = match (t.read, t.write) {
                (true, true) => "rw",
                (true, false) => "r",
                (false, true) => "w",
                (false, false) => "-",
            };
            let channels = match &t.channels {
                None => "*".to_owned(),
                Some(c) => c.iter().map(|u| u.to_string()).collect::<Vec<_>>().join(","),
            };
            s.push_str(&format!("|{scopes}|{channels}"));
        }
        CString::new(s).expect("context has no NUL")
    }

    fn decode(raw: &str) -> Option<Context> {
        let mut it = raw.splitn(6, '|');
        let worker = match it.next()? {
            "w" => true,
            "h" => false,
            _ => return None,
        };
        let community = parse_uuid(it.next()?)?;
        let host = it.next()?.to_owned();
        let actor = it.next().filter(|a| !a.is_empty()).map(str::to_owned);
        let token = match (it.next(), it.next()) {
            (Some(scopes), Some(channels)) => Some(TokenGrant {
                read: scopes.contains('r'),
                write: scopes.contains('w'),
                channels: if channels == "*" {
                    None
                } else {
                    Some(channels.split(',').filter(|c| !c.is_empty()).map(parse_uuid).collect::<Option<Vec<_>>>()?)
                },
            }),
            _ => None,
        };
        Some(Context { community, host, actor, token, worker })
    }
}

pub fn parse_uuid(s: &str) -> Option<Uuid> {
    let hex: String = s.chars().filter(|c| *c != '-').collect();
    if hex.len() != 32 || s.len() != 36 {
        return None;
    }
    let bytes: [u8; 16] = hex::decode(hex).ok()?.try_into().ok()?;
    Some(Uuid::from_bytes(bytes))
}

/// The context of this transaction, if any.
pub fn current() -> Option<Context> {
    let raw = unsafe { CONTEXT_VALUE };
    if raw.is_null() {
        return None;
    }
    let s = unsafe { CStr::from_ptr(raw) }.to_str().ok()?;
    if s.is_empty() {
        return None;
    }
    Context::decode(s)
}

/// The context, or the catalog error a caller without one gets.
pub fn require() -> Context {
    current().unwrap_or_else(|| raise(Error::ContextMissing))
}

/// The context with an authenticated actor, or `auth-required:`.
pub fn require_actor() -> (Context, String) {
    let ctx = require();
    match ctx.actor.clone() {
        Some(a) => (ctx, a),
        None => raise(Error::AuthRequired),
    }
}

/// Resets `SETTING_BY_US` even if `set_config_option` raises.
struct AllowSet;
impl AllowSet {
    fn new() -> Self {
        SETTING_BY_US.with(|c| c.set(true));
        AllowSet
    }
}
impl Drop for AllowSet {
    fn drop(&mut self) {
        SETTING_BY_US.with(|c| c.set(false));
    }
}

fn install(value: &CStr, action: pg_sys::GucAction::Type) {
    crate::sanitize::note_role();
    let _allow = AllowSet::new();
    unsafe {
        pg_sys::set_config_option(
            CONTEXT_GUC.as_ptr(),
            value.as_ptr(),
            pg_sys::GucContext::PGC_SUSET,
            pg_sys::GucSource::PGC_S_SESSION,
            action,
            true,
            pg_sys::PGERROR as i32,
            false,
        );
    }
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
        // SAFETY: reads the current statement's start time.
        statement: unsafe { pg_sys::GetCurrentStatementStartTimestamp() },
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

/// Install `ctx` for the rest of the transaction (`SET LOCAL` semantics), after binding the
/// transaction to its community and refusing a backend that holds portals.
fn set_transaction_context(ctx: &Context) {
    bind(ctx.community);
    crate::statement_guard::refuse_if_held();
    crate::sanitize::pin_error_logging();
    install(&ctx.encode(), pg_sys::GucAction::GUC_ACTION_LOCAL);
}

/// Run `f` with the context set to `community` (no actor), restoring the previous value
/// afterwards — how operator functions, owned by the RLS-bound owner role, reach one
/// community's rows. On error the transaction (or subtransaction) abort restores it.
pub fn with_operator_scope<R>(community: Uuid, f: impl FnOnce() -> R) -> R {
    let level = unsafe { pg_sys::NewGUCNestLevel() };
    let ctx = Context { community, host: String::new(), actor: None, token: None, worker: false };
    install(&ctx.encode(), pg_sys::GucAction::GUC_ACTION_SAVE);
    let out = f();
    unsafe { pg_sys::AtEOXact_GUC(true, level) };
    out
}

/// Bind this transaction to `community` as a background worker (`buzz.enter_community`, for
/// roles set up by `buzz.setup_worker_role` only): no host, no actor, the worker mark.
pub fn enter_worker(community: Uuid) {
    set_transaction_context(&Context { community, host: String::new(), actor: None, token: None, worker: true });
}

/// Enter `host` anonymously (the first step of every authenticated enter).
pub fn enter_host(host: Option<&str>) {
    let (community, host) = resolve::community_for_host(host);
    set_transaction_context(&Context { community, host, actor: None, token: None, worker: false });
}

/// Make `actor` (already authenticated and admitted) the actor of the current context.
pub fn set_actor(actor: String) {
    let ctx = require();
    set_transaction_context(&Context { actor: Some(actor), token: None, worker: false, ..ctx });
}

/// `buzz.enter(host)`: bind this transaction to the community that serves `host`, anonymously.
#[pg_extern(volatile, parallel_unsafe, security_definer, name = "enter")]
#[search_path(pg_catalog, pg_temp)]
fn enter_anonymous(host: Option<&str>) {
    crate::errors::guard(|| {
        let (community, host) = resolve::community_for_host(host);
        set_transaction_context(&Context { community, host, actor: None, token: None, worker: false });
    })
}

/// `buzz.enter(host, session_token)`: as `enter(host)`, with the actor of a session minted by
/// `buzz.authenticate` on a host of the same community. The session is looked up only inside
/// the host's community (key `(community_id, hash)`), so a token from another community fails
/// exactly like a random one (S5). Admission is re-checked on every call.
#[pg_extern(volatile, parallel_unsafe, security_definer, name = "enter")]
#[search_path(pg_catalog, pg_temp)]
fn enter_session(host: Option<&str>, session_token: Option<&str>) {
    crate::errors::guard(|| {
        let (community, host) = resolve::community_for_host(host);
        // Anonymous first: the session lookup below then runs under this community's RLS fence.
        set_transaction_context(&Context { community, host: host.clone(), actor: None, token: None, worker: false });
        let credential = session_token.unwrap_or_else(|| raise(Error::SessionInvalid));
        // An API token (its prefix tells it apart) or a session token; either is looked up
        // only inside the host's community, so another community's fails like a random one.
        let (actor, token) = match crate::auth::tokens::grant_for_token(community, credential) {
            Some((actor, grant)) => (actor, Some(grant)),
            None => (
                crate::auth::sessions::actor_for_token(community, credential)
                    .or_raise()
                    .unwrap_or_else(|| raise(Error::SessionInvalid)),
                None,
            ),
        };
        set_transaction_context(&Context { community, host, actor: Some(actor), token, worker: false });
    })
}

/// `buzz.current_community()`: the community this transaction entered, or NULL.
/// STABLE, never IMMUTABLE: an immutable reader would be folded into cached plans.
#[pg_extern(stable, parallel_safe)]
fn current_community() -> Option<Uuid> {
    current().map(|c| c.community)
}

/// `buzz.current_scopes()`: what the actor may do — `{read,write}` for a signed session, an
/// API token's scopes, NULL without an actor. STABLE, for policies on the relay's own tables.
#[pg_extern(stable, parallel_safe)]
fn current_scopes() -> Option<Vec<&'static str>> {
    let ctx = current()?;
    ctx.actor.as_ref()?;
    Some(match ctx.token {
        None => vec!["read", "write"],
        Some(t) => [("read", t.read), ("write", t.write)].into_iter().filter(|(_, on)| *on).map(|(s, _)| s).collect(),
    })
}

/// `buzz.current_actor()`: the authenticated pubkey of this transaction, or NULL.
#[pg_extern(stable, parallel_safe)]
fn current_actor() -> Option<String> {
    current().and_then(|c| c.actor)
}
