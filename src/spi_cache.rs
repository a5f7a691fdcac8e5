//! Statements the extension runs on every request, planned once per backend.
//!
//! `Spi::get_one_with_args` parses and plans its SQL on every call; for the hot paths (enter
//! with a token, publish, req) that was most of their cost. Here each statement is prepared
//! once (`SPI_prepare` + `SPI_keepplan`) and re-executed; PostgreSQL's plan cache re-plans it
//! after DDL and picks custom or generic plans as usual. A plan is kept per SQL text, argument
//! types and access: statements of writing functions are `prepare_mut` (every execution takes
//! a fresh snapshot: the READ COMMITTED semantics the locking relies on); those of STABLE
//! functions (`req`, `count`, `relay_info`) run read-only (`read_one`, `read_query`,
//! `select_dynamic`), in the caller's snapshot, and PostgreSQL refuses any write in them.
//! They run as the SECURITY DEFINER owner, so RLS applies exactly as to uncached SQL.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use pgrx::datum::DatumWithOid;
use pgrx::pg_sys;
use pgrx::prelude::*;
use pgrx::spi::{self, OwnedPreparedStatement, SpiClient, SpiTupleTable};
use pgrx::PgOid;

/// Bound on cached dynamic statements (`buzz.req` builds one per filter shape).
const MAX_DYNAMIC: usize = 256;

thread_local! {
    /// Fixed statements of the extension's own code: a bounded set, never evicted.
    static PLANS: RefCell<HashMap<PlanKey, Rc<OwnedPreparedStatement>>> = RefCell::new(HashMap::new());
    /// Dynamic statements (one per req filter shape), evicted wholesale when full.
    static DYNAMIC: RefCell<HashMap<(String, Planning), Rc<CustomPlan>>> = RefCell::new(HashMap::new());
}

/// A kept plan is valid only for the argument types it was prepared with, and only for its
/// access: the same text called read-only and read-write is two plans.
#[derive(PartialEq, Eq, Hash)]
struct PlanKey {
    sql: String,
    types: Vec<u32>,
    writes: bool,
}

/// The kept plan for `sql` with the argument types of `args`, preparing it on first use.
/// Returned as an `Rc` so no borrow is held while it runs (execution can re-enter, e.g. via a
/// trigger that calls back into the extension).
fn plan(client: &SpiClient<'_>, sql: &str, args: &[DatumWithOid<'_>], writes: bool) -> spi::Result<Rc<OwnedPreparedStatement>> {
    let key = PlanKey { sql: sql.to_owned(), types: args.iter().map(|a| u32::from(a.oid())).collect(), writes };
    if let Some(p) = PLANS.with(|m| m.borrow().get(&key).cloned()) {
        return Ok(p);
    }
    let types: Vec<PgOid> = args.iter().map(|a| PgOid::from(a.oid())).collect();
    let prepared = if writes { client.prepare_mut(sql, &types)? } else { client.prepare(sql, &types)? };
    let kept = Rc::new(prepared.keep());
    PLANS.with(|m| m.borrow_mut().insert(key, kept.clone()));
    Ok(kept)
}

/// How a dynamic statement is planned.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub enum Planning {
    /// For its actual parameter values on every call (`CURSOR_OPT_CUSTOM_PLAN`): the parse,
    /// analysis and RLS rewrite are cached, but a generic plan — which cannot see how many ids
    /// or tag values a filter carries, or how large the community is, and was measured to
    /// scan a whole community's tags for one `#e` value and to lose the index order of
    /// `author_kind` and `#t` — is never used.
    Custom,
    /// Once, for any values (`CURSOR_OPT_GENERIC_PLAN`): only for statements whose best plan
    /// does not depend on them (a primary-key lookup of a filter's ids).
    Generic,
}

/// A kept plan of a dynamic statement (see [`Planning`]).
pub struct CustomPlan(pg_sys::SPIPlanPtr);

impl Drop for CustomPlan {
    fn drop(&mut self) {
        // SAFETY: a plan kept by SPI_keepplan in `custom_plan`, freed exactly once, here.
        unsafe { pg_sys::SPI_freeplan(self.0) };
    }
}

fn custom_plan(sql: &str, args: &[DatumWithOid<'_>], planning: Planning) -> Rc<CustomPlan> {
    let key = (sql.to_owned(), planning);
    if let Some(p) = DYNAMIC.with(|m| m.borrow().get(&key).cloned()) {
        return p;
    }
    let options = match planning {
        Planning::Custom => pg_sys::CURSOR_OPT_CUSTOM_PLAN,
        Planning::Generic => pg_sys::CURSOR_OPT_GENERIC_PLAN,
    };
    let text = std::ffi::CString::new(sql).expect("generated SQL has no NUL");
    let mut types: Vec<pg_sys::Oid> = args.iter().map(|a| a.oid()).collect();
    // SAFETY: the SQL and type array outlive the call; the plan is kept (moved out of SPI's
    // procedure memory) before it is stored, and owned by the CustomPlan that frees it.
    let plan = unsafe {
        let p = pg_sys::SPI_prepare_cursor(
            text.as_ptr(),
            types.len() as i32,
            types.as_mut_ptr(),
            options as i32,
        );
        if p.is_null() || pg_sys::SPI_keepplan(p) != 0 {
            crate::errors::raise(crate::errors::Error::Internal);
        }
        Rc::new(CustomPlan(p))
    };
    DYNAMIC.with(|m| {
        let mut m = m.borrow_mut();
        if m.len() >= MAX_DYNAMIC {
            m.clear();
        }
        m.insert(key, plan.clone());
    });
    plan
}

/// Run a dynamic SELECT through its plan cache entry and hand each row's columns (raw, still
/// in SPI memory) to `each`.
pub fn select_dynamic(sql: &str, args: &[DatumWithOid<'_>], planning: Planning, mut each: impl FnMut(&[Option<pg_sys::Datum>])) {
    Spi::connect_mut(|_client| {
        let plan = custom_plan(sql, args, planning);
        let (mut values, mut nulls): (Vec<pg_sys::Datum>, Vec<std::ffi::c_char>) = args
            .iter()
            .map(|a| match a.datum() {
                Some(d) => (d.sans_lifetime(), b' ' as std::ffi::c_char),
                None => (pg_sys::Datum::from(0), b'n' as std::ffi::c_char),
            })
            .unzip();
        // SAFETY: inside connect_mut (SPI connected); values and nulls have one entry per
        // parameter of the plan; the tuple table is read before SPI is left.
        unsafe {
            // read_only: `req` and `count` are STABLE, and their statement is a plain SELECT.
            let rc = pg_sys::SPI_execute_plan(plan.0, values.as_mut_ptr(), nulls.as_mut_ptr(), true, 0);
            if rc != pg_sys::SPI_OK_SELECT as i32 {
                crate::errors::raise(crate::errors::Error::Internal);
            }
            let table = pg_sys::SPI_tuptable;
            let natts = (*(*table).tupdesc).natts;
            let mut row = Vec::with_capacity(natts as usize);
            for i in 0..pg_sys::SPI_processed as usize {
                row.clear();
                for col in 1..=natts {
                    let mut is_null = false;
                    let d = pg_sys::SPI_getbinval(*(*table).vals.add(i), (*table).tupdesc, col, &mut is_null);
                    row.push(if is_null { None } else { Some(d) });
                }
                each(&row);
            }
        }
    })
}

/// Run `sql` with `args` and hand the result rows to `f`.
///
/// Read-write (a fresh snapshot, earlier writes of this function seen), but not through
/// pgrx's `SpiClient::update`: that assigns the transaction an id first, so a statement that
/// only reads would cost an id (WAL, wraparound) and fail on a hot standby. PostgreSQL
/// assigns one itself when a statement does write.
pub fn query<R>(
    sql: &str,
    args: &[DatumWithOid<'_>],
    f: impl FnOnce(SpiTupleTable<'_>) -> spi::Result<R>,
) -> spi::Result<R> {
    Spi::connect(|client| {
        // A `prepare_mut` plan runs with read_only = false whatever the call.
        let p = plan(&client, sql, args, true)?;
        let table = client.select(&*p, None, args)?;
        f(table)
    })
}

/// As [`query`], read-only: for STABLE functions (a write in `sql` is refused).
pub fn read_query<R>(
    sql: &str,
    args: &[DatumWithOid<'_>],
    f: impl FnOnce(SpiTupleTable<'_>) -> spi::Result<R>,
) -> spi::Result<R> {
    Spi::connect(|client| {
        let p = plan(&client, sql, args, false)?;
        let rows = client.select(&*p, None, args)?;
        f(rows)
    })
}

/// As [`one`], read-only. pgrx's read-write path assigns a transaction id even to a plain
/// SELECT (and a hot standby refuses that): lookups that only read use these.
pub fn read_one<T: FromDatum + IntoDatum>(sql: &str, args: &[DatumWithOid<'_>]) -> spi::Result<Option<T>> {
    read_query(sql, args, |rows| match rows.first().get_one::<T>() {
        Err(spi::Error::InvalidPosition) => Ok(None),
        other => other,
    })
}

/// As [`two`], read-only.
pub fn read_two<A: FromDatum + IntoDatum, B: FromDatum + IntoDatum>(
    sql: &str,
    args: &[DatumWithOid<'_>],
) -> spi::Result<(Option<A>, Option<B>)> {
    read_query(sql, args, |rows| match rows.first().get_two::<A, B>() {
        Err(spi::Error::InvalidPosition) => Ok((None, None)),
        other => other,
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

/// Run a dynamic SELECT through its plan cache entry, read-only, and send its rows to `dest`
/// (a receiver such as [`crate::materialized::MaterializedJsonb::receiver`]): the executor
/// writes them there directly, without SPI's tuple table.
pub fn select_to(sql: &str, args: &[DatumWithOid<'_>], planning: Planning, dest: &crate::materialized::Receiver) {
    Spi::connect_mut(|_client| {
        let plan = custom_plan(sql, args, planning);
        // SAFETY: inside connect_mut (SPI connected). makeParamList allocates room for
        // args.len() parameters, each filled here from an argument that outlives the
        // execution; `dest` is a live receiver.
        unsafe {
            let params = pg_sys::makeParamList(args.len() as i32);
            for (slot, a) in (*params).params.as_mut_slice(args.len()).iter_mut().zip(args) {
                let (value, isnull) = match a.datum() {
                    Some(d) => (d.sans_lifetime(), false),
                    None => (pg_sys::Datum::from(0), true),
                };
                *slot = pg_sys::ParamExternData { value, isnull, pflags: pg_sys::PARAM_FLAG_CONST as u16, ptype: a.oid() };
            }
            // read_only: `req` is STABLE, and its statement is a plain SELECT.
            let options = pg_sys::SPIExecuteOptions { params, read_only: true, dest: dest.as_ptr(), ..Default::default() };
            let rc = pg_sys::SPI_execute_plan_extended(plan.0, &options);
            // A SELECT whose rows go to another receiver than SPI's answers SPI_OK_UTILITY.
            if rc != pg_sys::SPI_OK_UTILITY as i32 && rc != pg_sys::SPI_OK_SELECT as i32 {
                crate::errors::raise(crate::errors::Error::Internal);
            }
        }
    })
}
