//! Every setting of the extension. All are `Suset` (DESIGN §12.6): a relay role that could
//! `SET LOCAL` a year-long auth window or session lifetime would defeat replay protection.

use pgrx::{GucContext, GucFlags, GucRegistry, GucSetting};

/// Seconds an auth event's `created_at` may differ from the server clock (NIP-42).
pub static AUTH_WINDOW: GucSetting<i32> = GucSetting::<i32>::new(600);
/// Seconds a NIP-42 challenge stays usable.
pub static CHALLENGE_TTL: GucSetting<i32> = GucSetting::<i32>::new(600);
/// Seconds a session token stays valid.
pub static SESSION_TTL: GucSetting<i32> = GucSetting::<i32>::new(86_400);

pub fn init() {
    GucRegistry::define_int_guc(
        c"buzz.auth_window",
        c"Allowed clock skew, in seconds, for a NIP-42 auth event's created_at.",
        c"Auth events older or newer than this are refused.",
        &AUTH_WINDOW,
        1,
        3_600,
        GucContext::Suset,
        GucFlags::UNIT_S,
    );
    GucRegistry::define_int_guc(
        c"buzz.challenge_ttl",
        c"Lifetime, in seconds, of a NIP-42 challenge.",
        c"A challenge is single-use and expires after this many seconds.",
        &CHALLENGE_TTL,
        1,
        3_600,
        GucContext::Suset,
        GucFlags::UNIT_S,
    );
    GucRegistry::define_int_guc(
        c"buzz.session_ttl",
        c"Lifetime, in seconds, of a session token minted by buzz.authenticate.",
        c"Tokens are stored only as SHA-256 hashes and expire after this many seconds.",
        &SESSION_TTL,
        60,
        30 * 86_400,
        GucContext::Suset,
        GucFlags::UNIT_S,
    );
}
