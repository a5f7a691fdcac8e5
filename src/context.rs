//! The tenant context store: a transaction-local `{community, host, actor}` that only the
//! extension can write — `enter.rs` installs it (for `buzz.enter`, the operator API for the
//! duration of one call, and background workers); everything else only reads it.
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
use pgrx::Uuid;

use crate::errors::{raise, Error};

const CONTEXT_GUC: &CStr = c"buzz_tenancy.context";

/// Storage PostgreSQL writes the setting's current value into.
static mut CONTEXT_VALUE: *mut c_char = ptr::null_mut();

thread_local! {
    /// True only while this module itself calls `set_config_option`.
    static SETTING_BY_US: Cell<bool> = const { Cell::new(false) };
}

/// Refuse any value not installed by this module. Clearing is always allowed (fails closed);
/// the boot value and parallel-worker state restore are PostgreSQL's own bookkeeping.
///
/// SAFETY: PostgreSQL calls it with `newval` pointing at the proposed value (a C string or
/// NULL); it reads that and this module's Cell, nothing else.
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
    // SAFETY: called once from _PG_init; the name, descriptions and CONTEXT_VALUE are statics
    // that live as long as the library, as DefineCustomStringVariable requires.
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
        pg_sys::MarkGUCPrefixReserved(c"buzz_tenancy".as_ptr());
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
    // SAFETY: CONTEXT_VALUE is the setting's storage, written only by PostgreSQL's GUC code on
    // this backend's only thread; it is NULL or a NUL-terminated string it owns.
    let raw = unsafe { CONTEXT_VALUE };
    if raw.is_null() {
        return None;
    }
    // SAFETY: non-NULL, so a valid C string (see above), read before anything can change it.
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

/// Write the setting (the only way it can be written): `GUC_ACTION_LOCAL` for the rest of the
/// transaction, `GUC_ACTION_SAVE` for a nested scope the caller closes (`enter.rs`).
pub fn install(ctx: &Context, action: pg_sys::GucAction::Type) {
    let value = ctx.encode();
    let _allow = AllowSet::new();
    // SAFETY: NUL-terminated name and value that outlive the call; PostgreSQL copies the value.
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

/// `buzz.current_community` (declared in src/api/relay.rs).
pub(crate) fn current_community() -> Option<Uuid> {
    current().map(|c| c.community)
}

/// `buzz.current_scopes` (declared in src/api/relay.rs).
pub(crate) fn current_scopes() -> Option<Vec<&'static str>> {
    let ctx = current()?;
    ctx.actor.as_ref()?;
    Some(match ctx.token {
        None => vec!["read", "write"],
        Some(t) => [("read", t.read), ("write", t.write)].into_iter().filter(|(_, on)| *on).map(|(s, _)| s).collect(),
    })
}

/// `buzz.current_actor` (declared in src/api/relay.rs).
pub(crate) fn current_actor() -> Option<String> {
    current().and_then(|c| c.actor)
}
