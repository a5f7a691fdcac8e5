//! Background workers (expiry sweeps, scheduled fires, push queues, janitors): jobs that visit
//! every community. They have no host and no client, so `enter(host)` does not fit them, and
//! under FORCE RLS a sweep without a context sees nothing. A worker role — set up by
//! `buzz.setup_worker_role`, which grants it these two functions — iterates
//! `buzz.communities_for_worker()`
//! and enters each community by id with `buzz.enter_community(id)`, one community per
//! transaction exactly like a relay. The context carries no actor and the worker mark
//! (`buzz.current_worker()`): reads see that community's rows; writes to a relay table need it
//! to allow worker writes (`enable_tenancy(…, worker_writes => true)`). Neither function is
//! executable by PUBLIC or the relay role, and the gate fails a relay role that can execute
//! `enter_community` as any role it can act as.

use pgrx::prelude::*;
use pgrx::Uuid;

use crate::errors::{raise, Error, OrRaise};

/// `buzz.enter_community` (declared in src/api/worker.rs).
pub(crate) fn enter_community(id: Option<Uuid>) {
    crate::incident::guard(|| {
        let id = id.unwrap_or_else(|| raise(Error::CommunityUnknown));
        let known = crate::spi_cache::one::<bool>("SELECT EXISTS (SELECT 1 FROM buzz.communities WHERE id = $1)", &[id.into()])
            .or_raise()
            .unwrap_or(false);
        if !known {
            raise(Error::CommunityUnknown);
        }
        crate::enter::enter_worker(id);
    })
}

/// `buzz.communities_for_worker` (declared in src/api/worker.rs).
pub(crate) fn communities_for_worker() -> TableIterator<'static, (name!(id, Uuid), name!(slug, String))> {
    let rows: Vec<(Uuid, String)> = Spi::connect(|c| {
        c.select("SELECT id, slug FROM buzz.communities ORDER BY slug", None, &[])?
            .map(|r| Ok::<_, pgrx::spi::Error>((r.get::<Uuid>(1)?, r.get::<String>(2)?)))
            .filter_map(|r| match r {
                Ok((Some(id), Some(slug))) => Some(Ok((id, slug))),
                Ok(_) => None,
                Err(e) => Some(Err(e)),
            })
            .collect::<Result<Vec<_>, _>>()
    })
    .or_raise();
    TableIterator::new(rows)
}

/// `buzz.current_worker` (declared in src/api/worker.rs).
pub(crate) fn current_worker() -> bool {
    crate::context::current().is_some_and(|c| c.worker)
}

/// `buzz.setup_worker_role` (declared in src/api/operator.rs).
pub(crate) fn setup_worker_role(role: &str) {
    let ordinary = crate::spi_cache::one::<bool>("SELECT rolname NOT LIKE 'pg\\_%' FROM pg_roles WHERE rolname = $1", &[role.into()])
        .or_raise()
        .unwrap_or_else(|| raise(Error::RoleUnknown));
    let unsafe_role = !ordinary
        || crate::spi_cache::one::<bool>(
            // judged as a worker: the relay API (buzz.enter, ...) is outside what it may run
            "WITH sc AS MATERIALIZED (SELECT buzz.conformance_scope($1, 'worker') AS s)
             SELECT EXISTS (SELECT 1 FROM sc, buzz.conformance_roles(sc.s) f WHERE f.status = 'fail')",
            &[role.into()],
        )
        .or_raise()
        .unwrap_or(true);
    if unsafe_role {
        raise(Error::RoleUnsafe);
    }
    let quoted = crate::spi_cache::one::<String>("SELECT quote_ident($1)", &[role.into()])
        .or_raise()
        .unwrap_or_else(|| raise(Error::RoleUnknown));
    crate::admin::grant_api(&quoted, "buzz.worker_api()");
}
