//! The relay's own tables (operators; SECURITY INVOKER: the DDL runs as the caller): thin
//! declarations over `tenancy`.

use pgrx::prelude::*;
use pgrx::PgRelation;

/// `buzz.tenancy_plan(tbl, add_column, rewrite_keys, backfill, anonymous_writes,
/// worker_writes, per_community_ids)`: the DDL `enable_tenancy` would run with the same
/// arguments, one statement per line; '' when the table is already fully tenant.
#[pg_extern(volatile, parallel_unsafe)]
#[search_path(pg_catalog, pg_temp)]
fn tenancy_plan(
    tbl: PgRelation,
    add_column: default!(bool, false),
    rewrite_keys: default!(bool, false),
    backfill: default!(Option<&str>, "NULL"),
    anonymous_writes: default!(bool, false),
    worker_writes: default!(bool, false),
    per_community_ids: default!(bool, false),
) -> String {
    crate::tenancy::tenancy_plan(tbl, add_column, rewrite_keys, backfill, anonymous_writes, worker_writes, per_community_ids)
}

/// `buzz.enable_tenancy(tbl, add_column, rewrite_keys, backfill, anonymous_writes,
/// worker_writes, per_community_ids)`: make a relay table tenant and return the DDL it ran.
#[pg_extern(volatile, parallel_unsafe)]
#[search_path(pg_catalog, pg_temp)]
fn enable_tenancy(
    tbl: PgRelation,
    add_column: default!(bool, false),
    rewrite_keys: default!(bool, false),
    backfill: default!(Option<&str>, "NULL"),
    anonymous_writes: default!(bool, false),
    worker_writes: default!(bool, false),
    per_community_ids: default!(bool, false),
) -> String {
    crate::tenancy::enable_tenancy(tbl, add_column, rewrite_keys, backfill, anonymous_writes, worker_writes, per_community_ids)
}

/// `buzz.disable_tenancy(tbl)`: remove the generated policies, the guard and counter triggers,
/// FORCE and RLS, and the registry entry (declarations of every mode too). The column, its
/// foreign key and the composite keys stay. Returns the DDL it ran.
#[pg_extern(volatile, parallel_unsafe)]
#[search_path(pg_catalog, pg_temp)]
fn disable_tenancy(tbl: PgRelation) -> String {
    crate::tenancy::disable_tenancy(tbl)
}

/// `buzz.declare_global(tbl, reason)`: record that a table (or a materialized view the relay
/// may read) is deliberately operator-global. Refused for tenant tables and for tables whose
/// foreign keys point into tenant tables. The conformance gate fails every materialized view
/// the relay can read unless it is declared here (what it reads through functions is invisible
/// to the catalogs), and still fails one that reads tenant data directly.
#[pg_extern(volatile, parallel_unsafe)]
#[search_path(pg_catalog, pg_temp)]
fn declare_global(tbl: PgRelation, reason: Option<&str>) -> String {
    crate::tenancy::declare_global(tbl, reason)
}

/// `buzz.declare_log(tbl, reason)`: an operator-global log the relay writes (rate-limit
/// violations, feedback, outboxes): each row names a community, the relay may add rows of the
/// community it entered only — the guard trigger `buzz_log_guard` refuses others, and rows
/// without a context unless an operator adds them — and the gate fails any read or change
/// privilege of the relay on it. The table needs a `community_id uuid` column; it gets the
/// context as its default and a foreign key to `buzz.communities`. `INSERT ... ON CONFLICT`
/// needs only INSERT, so every unique key must include `community_id` (`rewrite_keys` makes
/// them composite) and no key column may be numbered from a shared sequence
/// (`per_community_ids` counts each community's rows on its own); otherwise it refuses.
#[pg_extern(volatile, parallel_unsafe)]
#[search_path(pg_catalog, pg_temp)]
fn declare_log(
    tbl: PgRelation,
    reason: Option<&str>,
    rewrite_keys: default!(bool, false),
    per_community_ids: default!(bool, false),
) -> String {
    crate::tenancy::declare_log(tbl, reason, rewrite_keys, per_community_ids)
}

/// `buzz.declare_operator_only(tbl, reason)`: a table for operators only (moderation records,
/// admin actions). The gate fails any privilege of the relay on it, by any path; in return it
/// may keep foreign keys into tenant tables (the relay cannot use them as an oracle).
#[pg_extern(volatile, parallel_unsafe)]
#[search_path(pg_catalog, pg_temp)]
fn declare_operator_only(tbl: PgRelation, reason: Option<&str>) -> String {
    crate::tenancy::declare_operator_only(tbl, reason)
}

/// `buzz.tenancy_sync(tbl)` (called by the `buzz_tenancy_partitions` event trigger): give
/// every partition of an adopted table the fences its parent has, so partitions created or
/// attached later are covered. The root's guard trigger marks it as adopted; its write
/// policies say who may write (a partition then gets, or loses, the write policies to match).
/// The fence, FORCE and the default are only ever added.
#[pg_extern(volatile, parallel_unsafe)]
#[search_path(pg_catalog, pg_temp)]
fn tenancy_sync(tbl: PgRelation) -> String {
    crate::tenancy::tenancy_sync(tbl)
}

/// `buzz.fence_expression()`: the tenant fence as `pg_get_expr` prints it — the one definition
/// the extension's own policies (finalize.sql), the generated ones and the conformance gate
/// compare with.
#[pg_extern(immutable, parallel_safe)]
fn fence_expression() -> &'static str {
    crate::tenancy::plan::FENCE
}
