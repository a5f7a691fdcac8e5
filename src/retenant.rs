//! `buzz.forbid_retenant(col, …)`: the BEFORE UPDATE row trigger of the extension's tenant
//! tables. A row's `community_id` and the key columns named as trigger arguments never change,
//! for anyone, superusers included (a channel or a membership cannot be moved to another
//! community); any other update passes unchanged.
//!
//! A C trigger rather than PL/pgSQL: it fires on every update of those tables, the position
//! counter's included (one per published event), and the PL/pgSQL version cost a function call
//! with its own `search_path`, a row-to-jsonb conversion of both rows per column, and a plan.
//! Declared in sql/schema.sql (`LANGUAGE c`), not by pgrx: the bootstrap schema's triggers need
//! it before pgrx's generated functions exist.

use std::ffi::{c_char, CStr};

use pgrx::pg_sys;
use pgrx::prelude::*;

use crate::errors::{raise, Error};

/// The version-1 calling convention record PostgreSQL looks up for a C function.
#[no_mangle]
pub extern "C" fn pg_finfo_forbid_retenant() -> &'static pg_sys::Pg_finfo_record {
    static V1: pg_sys::Pg_finfo_record = pg_sys::Pg_finfo_record { api_version: 1 };
    &V1
}

/// The trigger function.
///
/// # Safety
/// SAFETY (callers): PostgreSQL's function manager calls it with a valid `fcinfo`; anything
/// but a row-level BEFORE UPDATE trigger call is refused before the trigger data is read.
#[pg_guard]
#[no_mangle]
pub unsafe extern "C-unwind" fn forbid_retenant(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum {
    // SAFETY: fcinfo is valid (the caller's contract); `context` is either NULL or a node,
    // whose tag says whether it is TriggerData.
    let td = unsafe {
        let ctx = (*fcinfo).context;
        if ctx.is_null() || (*ctx).type_ != pg_sys::NodeTag::T_TriggerData {
            raise(Error::Internal);
        }
        &*(ctx as *const pg_sys::TriggerData)
    };
    let event = td.tg_event;
    let row_before_update = event & pg_sys::TRIGGER_EVENT_OPMASK == pg_sys::TRIGGER_EVENT_UPDATE
        && event & pg_sys::TRIGGER_EVENT_ROW != 0
        && event & pg_sys::TRIGGER_EVENT_TIMINGMASK == pg_sys::TRIGGER_EVENT_BEFORE;
    if !row_before_update {
        raise(Error::Internal);
    }
    // SAFETY: for a row-level UPDATE trigger, tg_relation, tg_trigger, tg_trigtuple (OLD) and
    // tg_newtuple (NEW) are valid for the duration of the call, and tgargs holds tgnargs
    // NUL-terminated strings.
    unsafe {
        let desc = (*td.tg_relation).rd_att;
        let trigger = &*td.tg_trigger;
        let args: &[*mut c_char] = if trigger.tgnargs > 0 {
            std::slice::from_raw_parts(trigger.tgargs, trigger.tgnargs as usize)
        } else {
            &[]
        };
        let columns = std::iter::once(c"community_id".as_ptr()).chain(args.iter().map(|a| a.cast_const()));
        for column in columns {
            if !same_value(td.tg_trigtuple, td.tg_newtuple, desc, CStr::from_ptr(column)) {
                raise(Error::Immutable);
            }
        }
        pg_sys::Datum::from(td.tg_newtuple)
    }
}

/// Whether `column` holds the same value (NULL-ness and bytes) in both rows. A column the
/// table does not have is a misdeclared trigger: refused, never skipped.
///
/// # Safety
/// SAFETY (callers): `old` and `new` are rows of the relation `desc` describes.
unsafe fn same_value(old: pg_sys::HeapTuple, new: pg_sys::HeapTuple, desc: pg_sys::TupleDesc, column: &CStr) -> bool {
    // SAFETY: the caller's contract; SPI_fnumber only reads the descriptor (no SPI connection
    // needed), and the attribute number it returns is in range for both rows.
    unsafe {
        let attnum = pg_sys::SPI_fnumber(desc, column.as_ptr());
        if attnum <= 0 {
            raise(Error::Internal);
        }
        let att = &*(*desc).attrs.as_ptr().add(attnum as usize - 1);
        let (mut old_null, mut new_null) = (false, false);
        let a = pg_sys::heap_getattr(old, attnum, desc, &mut old_null);
        let b = pg_sys::heap_getattr(new, attnum, desc, &mut new_null);
        match (old_null, new_null) {
            (true, true) => true,
            (false, false) => same_image(a, b, att.attbyval, att.attlen),
            _ => false,
        }
    }
}

/// Binary equality of two non-NULL values of one type (what `datum_image_eq` does): the keys
/// guarded here (uuid, text, name, regclass, bigint) are equal exactly when their images are.
///
/// # Safety
/// SAFETY (callers): `a` and `b` are non-NULL datums of a type with this `byval` and `len`.
unsafe fn same_image(a: pg_sys::Datum, b: pg_sys::Datum, byval: bool, len: i16) -> bool {
    // SAFETY: the caller's contract; a varlena is detoasted (unpacked headers stay) before its
    // bytes are read, and each slice is exactly the value's length.
    unsafe {
        if byval {
            return a == b;
        }
        let bytes = |d: pg_sys::Datum| -> &[u8] {
            match len {
                -1 => {
                    let v = pg_sys::pg_detoast_datum_packed(d.cast_mut_ptr());
                    std::slice::from_raw_parts(pgrx::varlena::vardata_any(v).cast(), pgrx::varlena::varsize_any_exhdr(v))
                }
                -2 => CStr::from_ptr(d.cast_mut_ptr::<c_char>()).to_bytes(),
                n => std::slice::from_raw_parts(d.cast_mut_ptr::<u8>(), n as usize),
            }
        };
        bytes(a) == bytes(b)
    }
}
