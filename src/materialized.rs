//! `SETOF jsonb` results in materialize mode: every row goes into the executor's tuplestore
//! during the one call of the function.
//!
//! pgrx's `SetOfIterator` answers one row per call (value-per-call), and every call of a
//! SECURITY DEFINER function goes through `fmgr_security_definer` again, with its
//! `SET search_path` (a GUC nest level, the setting parsed and applied, and `AtEOXact_GUC`'s
//! walk over every setting): once per row. Rows were also copied twice (into the SRF's
//! multi-call memory, then into the executor's tuplestore); here they are copied once.

use pgrx::callconv::{BoxRet, FcInfo};
use pgrx::pg_sys;
use pgrx::pgrx_sql_entity_graph::metadata::{ArgumentError, ReturnsError, ReturnsRef, SqlMappingRef, SqlTranslatable, TypeOrigin};

use crate::store::query::RawJsonb;

/// The result set of the current call, open for rows.
pub struct MaterializedJsonb {
    store: *mut pg_sys::Tuplestorestate,
    desc: pg_sys::TupleDesc,
}

impl MaterializedJsonb {
    /// Switch the current call to materialize mode with an empty result set.
    ///
    /// # Safety
    /// SAFETY (callers): `fcinfo` is the current call's, of a function declared `SETOF jsonb`.
    /// A caller that cannot take a set (no `ReturnSetInfo`, or materialize mode not allowed)
    /// gets PostgreSQL's own error.
    pub unsafe fn start(fcinfo: pg_sys::FunctionCallInfo) -> MaterializedJsonb {
        // SAFETY: the caller's contract; InitMaterializedSRF checks the ReturnSetInfo itself
        // (raising if absent) and fills setResult and setDesc, in the per-query memory.
        unsafe {
            pg_sys::InitMaterializedSRF(fcinfo, pg_sys::MAT_SRF_USE_EXPECTED_DESC);
            let rsinfo = (*fcinfo).resultinfo.cast::<pg_sys::ReturnSetInfo>();
            MaterializedJsonb { store: (*rsinfo).setResult, desc: (*rsinfo).setDesc }
        }
    }

    /// Append a jsonb datum as a row (detoasted, so the row holds the value itself).
    ///
    /// # Safety
    /// SAFETY (callers): `d` is a jsonb datum valid now (e.g. of the current SPI row).
    pub unsafe fn push(&mut self, d: pg_sys::Datum) {
        // SAFETY: `d` is a valid varlena (the caller's contract); pg_detoast_datum returns it
        // or a detoasted copy in the current memory context. tuplestore_putvalues copies the
        // row into the tuplestore's own (per-query) memory; `desc` is its one-column jsonb
        // descriptor from `start`.
        unsafe {
            let value = pg_sys::pg_detoast_datum(d.cast_mut_ptr());
            let mut values = [pg_sys::Datum::from(value)];
            let mut nulls = [false];
            pg_sys::tuplestore_putvalues(self.store, self.desc, values.as_mut_ptr(), nulls.as_mut_ptr());
        }
    }
}

// SAFETY: declared `SETOF jsonb`, as `SetOfIterator<RawJsonb>` is; rows are returned through
// the tuplestore, never as the function's value.
unsafe impl SqlTranslatable for MaterializedJsonb {
    const TYPE_IDENT: &'static str = <RawJsonb as SqlTranslatable>::TYPE_IDENT;
    const TYPE_ORIGIN: TypeOrigin = TypeOrigin::External;
    const ARGUMENT_SQL: Result<SqlMappingRef, ArgumentError> = Err(ArgumentError::SetOf);
    const RETURN_SQL: Result<ReturnsRef, ReturnsError> =
        <pgrx::iter::SetOfIterator<'static, RawJsonb> as SqlTranslatable>::RETURN_SQL;
}

// SAFETY: in materialize mode the function's own value is ignored (the rows are in
// `setResult`); it returns NULL, as C functions of that mode return (Datum) 0.
unsafe impl BoxRet for MaterializedJsonb {
    unsafe fn box_into<'fcx>(self, fcinfo: &mut FcInfo<'fcx>) -> pgrx::datum::Datum<'fcx> {
        fcinfo.return_null()
    }
}
