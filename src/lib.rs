//! buzz_tenancy: the database as the tenant boundary of a multi-tenant Nostr relay.
//!
//! Flow (DESIGN §3): resolve (host → community) → context (transaction-local, unforgeable) →
//! verify (NIP-01 id, BIP-340) → authorize (admission, channel rights) → store/serve through
//! RLS-fenced tables whose keys lead with `community_id` → answer only from the error catalog.

use pgrx::prelude::*;

#[cfg(not(feature = "pg15"))]
compile_error!("buzz_tenancy is built and tested for PostgreSQL 15 only: build with the pg15 feature");

mod admin;
mod api;
mod audit;
mod auth;
mod authorize;
mod channels;
mod context;
mod enter;
mod errors;
mod gucs;
mod incident;
mod json_args;
mod materialized;
mod member_list;
mod nostr;
mod pg;
mod relay_info;
mod relcache_watch;
mod resolve;
mod retenant;
mod sanitize;
mod spi_cache;
mod statement_guard;
mod text_arrays;
mod store;
mod tenancy;
mod worker;

::pgrx::pg_module_magic!();

// Tables, roles and the re-tenanting guard; policies need `buzz.current_community()`, so they
// and the ownership/grant wiring come last.
extension_sql_file!("../sql/schema.sql", name = "schema", bootstrap);
extension_sql_file!("../sql/conformance.sql", name = "conformance", requires = ["schema", api::tenancy::fence_expression, api::relay::relay_api, api::worker::worker_api]);
extension_sql_file!("../sql/finalize.sql", name = "finalize", finalize);

#[pg_guard]
pub extern "C-unwind" fn _PG_init() {
    // A postmaster started with RUST_BACKTRACE would put backtraces (with source paths) into
    // error details; RUST_LIB_BACKTRACE takes precedence for captured backtraces.
    std::env::set_var("RUST_LIB_BACKTRACE", "0");
    gucs::init();
    context::init();
    enter::init();
    relcache_watch::init();
    sanitize::init();
    statement_guard::init();
}

/// Two communities for #[pg_test]s: `<tag>-a` (allowlist) and `<tag>-b` (open) with BOB
/// admitted in b only.
#[cfg(any(test, feature = "pg_test"))]
mod test_fixtures {
    use pgrx::prelude::*;
    use pgrx::Uuid;

    pub const BOB: &str = "c6047f9441ed7d6d3045406e95c07cd85c778e4b8cef3ca7abac09b95c709ee5";

    pub fn two_communities(tag: &str) -> (Uuid, Uuid) {
        let make = |slug: String, admission: &str| {
            Spi::get_one_with_args::<Uuid>(
                "SELECT buzz.create_community($1, $1, $2)",
                &[slug.as_str().into(), admission.into()],
            )
            .unwrap()
            .unwrap()
        };
        let a = make(format!("{tag}-a"), "allowlist");
        let b = make(format!("{tag}-b"), "open");
        Spi::run_with_args("SELECT buzz.admit($1, $2)", &[format!("{tag}-b").as_str().into(), BOB.into()]).unwrap();
        (a, b)
    }
}

#[cfg(test)]
pub mod pg_test {
    pub fn setup(_options: Vec<&str>) {}

    pub fn postgresql_conf_options() -> Vec<&'static str> {
        vec![]
    }
}
