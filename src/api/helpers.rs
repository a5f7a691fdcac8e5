//! Pure helpers anyone who can reach the schema may call: canonical ids, signature checks,
//! host normalization, the error catalog.

use pgrx::prelude::*;

/// `buzz.event_id(event)`: the NIP-01 id computed from the event's fields (the stated id is
/// ignored). Malformed events are `invalid:`. STABLE: the size limits are a setting.
#[pg_extern(stable, parallel_safe, strict)]
fn event_id(event: &str) -> String {
    crate::nostr::event::event_id(event)
}

/// `buzz.verify_event(event)`: true iff the id matches and the signature verifies.
/// A malformed event is `invalid:`, not false. STABLE, like `event_id`.
#[pg_extern(stable, parallel_safe, strict)]
fn verify_event(event: &str) -> bool {
    crate::nostr::event::verify_event(event)
}

/// `buzz.schnorr_verify(pubkey, message, signature)`: hex (either case) 32-byte key, 32-byte
/// message and 64-byte signature → bool. Malformed hex or wrong lengths are `invalid:`.
#[pg_extern(immutable, parallel_safe, strict)]
fn schnorr_verify(pubkey: &str, message: &str, signature: &str) -> bool {
    crate::nostr::schnorr::schnorr_verify(pubkey, message, signature)
}

/// `buzz.normalize_host(host)`: the normalized form `enter` and `add_host` compare, or `invalid:`.
#[pg_extern(immutable, parallel_safe, strict, name = "normalize_host")]
fn normalize_host_sql(host: &str) -> String {
    crate::resolve::normalize_host_sql(host)
}

/// `buzz.error_catalog()`: every message the extension can show a client.
#[pg_extern(immutable, parallel_safe)]
fn error_catalog() -> TableIterator<'static, (name!(code, &'static str), name!(sqlstate, String), name!(message, &'static str))> {
    crate::errors::error_catalog()
}
