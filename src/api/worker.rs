//! The background-worker API (`worker.rs`): EXECUTE is granted by `setup_worker_role` only,
//! except `current_worker()`, which policies call as any role.

use pgrx::prelude::*;
use pgrx::Uuid;

/// The functions only a worker role may execute (`setup_worker_role` grants them with
/// [`super::PUBLIC_API`]): the single source for the grants and the gate's allowlist
/// (`buzz.worker_api()`).
pub const WORKER_API: &[&str] = &["buzz.enter_community(uuid)", "buzz.communities_for_worker()"];

/// `buzz.worker_api()`: the signatures a worker role may execute.
#[pg_extern(immutable, parallel_safe)]
fn worker_api() -> SetOfIterator<'static, &'static str> {
    SetOfIterator::new(WORKER_API.iter().chain(super::PUBLIC_API).copied())
}

/// `buzz.enter_community(id)`: bind this transaction to community `id` as a background worker.
#[pg_extern(volatile, parallel_unsafe, security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn enter_community(id: Option<Uuid>) {
    crate::worker::enter_community(id)
}

/// `buzz.communities_for_worker()`: every community's id and slug, for a worker's sweep.
#[pg_extern(stable, parallel_unsafe, security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn communities_for_worker() -> TableIterator<'static, (name!(id, Uuid), name!(slug, String))> {
    crate::worker::communities_for_worker()
}

/// `buzz.current_worker()`: true in a background worker's context. STABLE, for the write
/// policies of relay tables that allow worker writes.
#[pg_extern(stable, parallel_safe)]
fn current_worker() -> bool {
    crate::worker::current_worker()
}
