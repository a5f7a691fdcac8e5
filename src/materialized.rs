//! `SETOF jsonb` results in materialize mode: every row goes into the executor's tuplestore
//! during the one call of the function, written there by the statement that reads it.
//!
//! pgrx's `SetOfIterator` answers one row per call (value-per-call), and every call of a
//! SECURITY DEFINER function goes through `fmgr_security_definer` again, with its
//! `SET search_path` (a GUC nest level, the setting parsed and applied, and `AtEOXact_GUC`'s
//! walk over every setting): once per row. Rows were also copied three times (SPI's tuple
//! table, the SRF's multi-call memory, the executor's tuplestore); here once.

use pgrx::callconv::{BoxRet, FcInfo};
use pgrx::pg_sys;
use pgrx::pgrx_sql_entity_graph::metadata::{ArgumentError, ReturnsError, ReturnsRef, SqlMappingRef, SqlTranslatable, TypeOrigin};


/// The result set of the current call, open for rows.
pub struct MaterializedJsonb {
    store: *mut pg_sys::Tuplestorestate,
    desc: pg_sys::TupleDesc,
    /// The per-query memory the tuplestore lives in.
    memory: pg_sys::MemoryContext,
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
            let memory = (*(*rsinfo).econtext).ecxt_per_query_memory;
            MaterializedJsonb { store: (*rsinfo).setResult, desc: (*rsinfo).setDesc, memory }
        }
    }

    /// A receiver for a statement's result rows that appends them to this result set
    /// (external TOAST values fetched, so each row holds its value). A statement whose rows
    /// are not one jsonb column is refused when it starts sending (PostgreSQL's rowtype check
    /// against the result's descriptor).
    pub fn receiver(&self) -> Receiver {
        // The receiver is palloc'd in the current memory context and destroyed by Receiver's
        // drop, before that context goes; its parameters (tuplestore, descriptor, memory) live
        // in the per-query memory, longer than any statement that writes into them.
        // SAFETY: as above; the message is a static C string.
        unsafe {
            let dest = CreateTuplestoreDestReceiver();
            SetTuplestoreDestReceiverParams(
                dest,
                self.store,
                self.memory,
                true,
                self.desc,
                c"statement rows do not match the set-returning function's result".as_ptr(),
            );
            Receiver(dest)
        }
    }
}

/// A tuplestore receiver (see [`MaterializedJsonb::receiver`]); destroyed when dropped.
pub struct Receiver(*mut pg_sys::DestReceiver);

impl Receiver {
    pub fn as_ptr(&self) -> *mut pg_sys::DestReceiver {
        self.0
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        // SAFETY: a receiver made by CreateTuplestoreDestReceiver, destroyed exactly once;
        // its rDestroy only pfrees it.
        unsafe {
            if let Some(destroy) = (*self.0).rDestroy {
                destroy(self.0);
            }
        }
    }
}

// executor/tstoreReceiver.h, not in pgrx's bindings.
extern "C-unwind" {
    fn CreateTuplestoreDestReceiver() -> *mut pg_sys::DestReceiver;
    fn SetTuplestoreDestReceiverParams(
        receiver: *mut pg_sys::DestReceiver,
        store: *mut pg_sys::Tuplestorestate,
        context: pg_sys::MemoryContext,
        detoast: bool,
        target_desc: pg_sys::TupleDesc,
        map_failure_msg: *const std::ffi::c_char,
    );
}

// SAFETY: declared `SETOF jsonb` (its SQL is written out where it is declared); rows are
// returned through the tuplestore, never as the function's value.
unsafe impl SqlTranslatable for MaterializedJsonb {
    const TYPE_IDENT: &'static str = pgrx::pgrx_resolved_type!(MaterializedJsonb);
    const TYPE_ORIGIN: TypeOrigin = TypeOrigin::External;
    const ARGUMENT_SQL: Result<SqlMappingRef, ArgumentError> = Err(ArgumentError::SetOf);
    const RETURN_SQL: Result<ReturnsRef, ReturnsError> = Ok(ReturnsRef::SetOf(SqlMappingRef::literal("jsonb")));
}

// SAFETY: in materialize mode the function's own value is ignored (the rows are in
// `setResult`); it returns NULL, as C functions of that mode return (Datum) 0.
unsafe impl BoxRet for MaterializedJsonb {
    unsafe fn box_into<'fcx>(self, fcinfo: &mut FcInfo<'fcx>) -> pgrx::datum::Datum<'fcx> {
        fcinfo.return_null()
    }
}
