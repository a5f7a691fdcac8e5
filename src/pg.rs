//! Safe wrappers over the PostgreSQL backend state the extension probes: transaction and
//! statement state, the current role, random bytes, GUC nesting, relcache invalidation. Each
//! wraps one FFI call whose only precondition is "called in a backend, on its only thread,
//! inside a transaction" — true for every caller (SQL functions, hooks, callbacks), so the
//! rest of the crate calls these without `unsafe`. Hooks themselves (`sanitize`,
//! `statement_guard`, `context`, `resolve`, `enter`) and raw SPI plans (`spi_cache`) keep
//! their FFI in their own module, each site with its `SAFETY` note.

use pgrx::pg_sys;

/// `n` bytes from PostgreSQL's strong random source, or None if it failed.
pub fn strong_random<const N: usize>() -> Option<[u8; N]> {
    let mut buf = [0u8; N];
    // SAFETY: writes exactly N bytes into a buffer of N bytes.
    unsafe { pg_sys::pg_strong_random(buf.as_mut_ptr().cast(), N) }.then_some(buf)
}

/// The full id of the top-level transaction, 0 while it has none (it has written nothing).
/// Full ids never repeat, so one identifies a transaction for the backend's lifetime.
pub fn top_xid() -> u64 {
    // SAFETY: reads the backend's transaction state; no preconditions.
    unsafe { pg_sys::GetTopFullTransactionIdIfAny() }.value
}

/// True when the transaction cannot write: `SET TRANSACTION READ ONLY`, or a hot standby.
pub fn read_only() -> bool {
    // SAFETY: reads a backend global and asks the shared recovery state; no preconditions.
    unsafe { pg_sys::XactReadOnly || pg_sys::RecoveryInProgress() }
}

/// True when the transaction was declared read-only (`XactReadOnly`; set on a standby too).
pub fn xact_read_only() -> bool {
    // SAFETY: a plain read of a backend global.
    unsafe { pg_sys::XactReadOnly }
}

/// True inside an explicit transaction block (`BEGIN` … `COMMIT`).
pub fn in_transaction_block() -> bool {
    // SAFETY: reads the backend's transaction state.
    unsafe { pg_sys::IsTransactionBlock() }
}

/// True when the transaction's snapshot is fixed for its lifetime (REPEATABLE READ or
/// SERIALIZABLE): what it reads may be older than the latest commit.
pub fn snapshot_is_fixed() -> bool {
    // SAFETY: a plain read of a backend global.
    unsafe { pg_sys::XactIsoLevel >= pg_sys::XACT_REPEATABLE_READ as i32 }
}

/// The start time of the current top-level statement (also inside procedures and functions).
pub fn statement_start() -> pg_sys::TimestampTz {
    // SAFETY: reads the backend's transaction state.
    unsafe { pg_sys::GetCurrentStatementStartTimestamp() }
}

/// True while a procedure (or DO block) that may COMMIT is running: SPI is non-atomic.
pub fn inside_nonatomic_procedure() -> bool {
    // SAFETY: reads SPI's stack pointer; valid whether or not SPI is connected.
    unsafe { pg_sys::SPI_inside_nonatomic_context() }
}

/// The role the session authenticated as, or `SET ROLE` to (not a SECURITY DEFINER's owner).
pub fn outer_role() -> pg_sys::Oid {
    // SAFETY: reads the backend's user state.
    unsafe { pg_sys::GetOuterUserId() }
}

/// True if `role` is a superuser.
pub fn is_superuser(role: pg_sys::Oid) -> bool {
    // SAFETY: a syscache lookup; an unknown role is simply not a superuser.
    unsafe { pg_sys::superuser_arg(role) }
}

/// True if the current user (as of now, inside SECURITY DEFINER code the owner) is a superuser.
pub fn current_is_superuser() -> bool {
    // SAFETY: as `is_superuser`, for the current user.
    unsafe { pg_sys::superuser() }
}

/// The server's `log_min_messages` as the elog level it currently is.
pub fn log_min_messages() -> i32 {
    // SAFETY: a plain read of a backend global.
    unsafe { pg_sys::log_min_messages }
}

/// Run `f` inside a new GUC nesting level that is discarded afterwards (settings changed by
/// `f` with `GUC_ACTION_SAVE` revert when it returns). If `f` raises, the transaction's abort
/// unwinds the level.
pub fn with_guc_nest_level<R>(f: impl FnOnce() -> R) -> R {
    // SAFETY: opens a nest level; AtEOXact_GUC below closes exactly this level.
    let level = unsafe { pg_sys::NewGUCNestLevel() };
    let out = f();
    // SAFETY: closes the level opened above, keeping nothing of it.
    unsafe { pg_sys::AtEOXact_GUC(true, level) };
    out
}

/// The server's clock (PostgreSQL's, as `clock_timestamp()` reads it), in Unix seconds: the
/// one clock every time window of the extension compares with.
pub fn now() -> ::nostr::types::Timestamp {
    // SAFETY: reads the system clock through PostgreSQL; no preconditions.
    let since_2000_us = unsafe { pg_sys::GetCurrentTimestamp() };
    const UNIX_TO_PG_EPOCH_SECS: i64 = 946_684_800;
    let secs = since_2000_us.div_euclid(1_000_000) + UNIX_TO_PG_EPOCH_SECS;
    ::nostr::types::Timestamp::from_secs(u64::try_from(secs).unwrap_or(0))
}

/// True when [`with_latest_snapshot`] reads under a snapshot taken now: READ COMMITTED, and
/// not in a parallel operation (where PostgreSQL takes no new snapshot). The per-backend
/// caches keep only what was read so.
pub fn reads_latest() -> bool {
    // SAFETY: a plain read of the backend's transaction state.
    !snapshot_is_fixed() && !unsafe { pg_sys::IsInParallelMode() }
}

/// Run `f` with a snapshot taken now as the active one: read-only SPI statements inside it see
/// every transaction committed so far, even when the calling statement's snapshot is older
/// (READ COMMITTED: a cursor's, a long statement's). Under REPEATABLE READ or SERIALIZABLE
/// `f` runs in the transaction's own snapshot, so that what it reads stays consistent with
/// the rest of the transaction, and in a parallel operation in the current one (see
/// [`reads_latest`]). If `f` raises, the (sub)transaction's abort pops the snapshot.
pub fn with_latest_snapshot<R>(f: impl FnOnce() -> R) -> R {
    if !reads_latest() {
        return f();
    }
    // SAFETY: GetLatestSnapshot returns a static snapshot that PushActiveSnapshot copies (it
    // errors only in parallel mode, excluded above); popped below, on the same level.
    unsafe { pg_sys::PushActiveSnapshot(pg_sys::GetLatestSnapshot()) };
    let out = f();
    // SAFETY: pops the snapshot pushed above (f leaves the active stack as it found it).
    unsafe { pg_sys::PopActiveSnapshot() };
    out
}

/// Invalidate every backend's relcache entry of `relid` at commit (a cross-backend signal).
pub fn invalidate_relcache(relid: pg_sys::Oid) {
    // SAFETY: queues an invalidation message; an unknown oid is harmless.
    unsafe { pg_sys::CacheInvalidateRelcacheByRelid(relid) }
}

/// `SET LOCAL name = value` as the extension (superuser context): for the rest of the
/// transaction, whatever the session or role set; the transaction's end restores it.
pub fn set_local(name: &std::ffi::CStr, value: &std::ffi::CStr) {
    // SAFETY: set_config_option with NUL-terminated strings that outlive the call; PGC_SUSET
    // as the extension's own code sets it (the caller's privileges are not what is checked);
    // GUC_ACTION_LOCAL, so the value is gone at the end of the transaction; errors raise.
    unsafe {
        pg_sys::set_config_option(
            name.as_ptr(),
            value.as_ptr(),
            pg_sys::GucContext::PGC_SUSET,
            pg_sys::GucSource::PGC_S_SESSION,
            pg_sys::GucAction::GUC_ACTION_LOCAL,
            true,
            pg_sys::PGERROR as i32,
            false,
        );
    }
}
