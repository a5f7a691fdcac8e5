//! Statements the extension runs on every request, planned once per backend.
//!
//! `Spi::get_one_with_args` parses and plans its SQL on every call; for the hot paths (enter
//! with a token, publish, req) that was most of their cost. Here each statement is prepared
//! once (`SPI_prepare` + `SPI_keepplan`) and re-executed; PostgreSQL's plan cache re-plans it
//! after DDL and picks custom or generic plans as usual. Plans are `prepare_mut` so every
//! execution takes a fresh snapshot (READ COMMITTED semantics the locking relies on).
//! They run as the SECURITY DEFINER owner, so RLS applies exactly as to uncached SQL.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use pgrx::datum::DatumWithOid;
use pgrx::prelude::*;
use pgrx::spi::{self, OwnedPreparedStatement, SpiClient, SpiTupleTable};
use pgrx::PgOid;

/// Bound on cached dynamic statements (`buzz.req` builds one per filter shape).
const MAX_DYNAMIC: usize = 256;

thread_local! {
    static PLANS: RefCell<HashMap<String, Rc<OwnedPreparedStatement>>> = RefCell::new(HashMap::new());
}

/// The kept plan for `sql` with the argument types of `args`, preparing it on first use.
/// Returned as an `Rc` so no borrow is held while it runs (execution can re-enter, e.g. via a
/// trigger that calls back into the extension).
fn plan(client: &SpiClient<'_>, sql: &str, args: &[DatumWithOid<'_>]) -> spi::Result<Rc<OwnedPreparedStatement>> {
    if let Some(p) = PLANS.with(|m| m.borrow().get(sql).cloned()) {
        return Ok(p);
    }
    let types: Vec<PgOid> = args.iter().map(|a| PgOid::from(a.oid())).collect();
    let kept = Rc::new(client.prepare_mut(sql, &types)?.keep());
    PLANS.with(|m| {
        let mut m = m.borrow_mut();
        if m.len() >= MAX_DYNAMIC {
            m.clear();
        }
        m.insert(sql.to_owned(), kept.clone());
    });
    Ok(kept)
}

/// Run `sql` with `args` and hand the result rows to `f`.
pub fn query<R>(
    sql: &str,
    args: &[DatumWithOid<'_>],
    f: impl FnOnce(SpiTupleTable<'_>) -> spi::Result<R>,
) -> spi::Result<R> {
    Spi::connect_mut(|client| {
        let p = plan(client, sql, args)?;
        let rows = client.update(&*p, None, args)?;
        f(rows)
    })
}

/// First column of the first row, or None when there is no row.
pub fn one<T: FromDatum + IntoDatum>(sql: &str, args: &[DatumWithOid<'_>]) -> spi::Result<Option<T>> {
    query(sql, args, |rows| match rows.first().get_one::<T>() {
        Err(spi::Error::InvalidPosition) => Ok(None),
        other => other,
    })
}

/// First two columns of the first row (None, None when there is no row).
pub fn two<A: FromDatum + IntoDatum, B: FromDatum + IntoDatum>(
    sql: &str,
    args: &[DatumWithOid<'_>],
) -> spi::Result<(Option<A>, Option<B>)> {
    query(sql, args, |rows| match rows.first().get_two::<A, B>() {
        Err(spi::Error::InvalidPosition) => Ok((None, None)),
        other => other,
    })
}

/// Execute for effect.
pub fn run(sql: &str, args: &[DatumWithOid<'_>]) -> spi::Result<()> {
    query(sql, args, |_| Ok(()))
}
