//! buzz_tenancy: the database as the tenant boundary of a multi-tenant Nostr relay.
//!
//! Flow (DESIGN §3): resolve (host → community) → context (transaction-local, unforgeable) →
//! verify (NIP-01 id, BIP-340) → authorize (admission, channel rights) → store/serve through
//! RLS-fenced tables whose keys lead with `community_id` → answer only from the error catalog.

use pgrx::prelude::*;

mod admin;
mod auth;
mod authorize;
mod channels;
mod context;
mod errors;
mod gucs;
mod nostr;
mod resolve;

::pgrx::pg_module_magic!();

// Tables, roles and the re-tenanting guard; policies need `buzz.current_community()`, so they
// and the ownership/grant wiring come last.
extension_sql_file!("../sql/schema.sql", name = "schema", bootstrap);
extension_sql_file!("../sql/finalize.sql", name = "finalize", finalize);

#[pg_guard]
pub extern "C-unwind" fn _PG_init() {
    gucs::init();
    context::init();
}

#[cfg(test)]
pub mod pg_test {
    pub fn setup(_options: Vec<&str>) {}

    pub fn postgresql_conf_options() -> Vec<&'static str> {
        vec![]
    }
}
