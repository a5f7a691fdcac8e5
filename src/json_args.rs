//! `json` and `jsonb` arguments handed to the extension as text.
//!
//! pgrx's own `Json`/`JsonB` arguments parse the value with serde before the function body
//! runs and panic on anything serde refuses (`1e400`, nesting deeper than 128): the client
//! would see a raw error naming a Rust source file, with or without a context. These types
//! only produce the text; the extension parses it with its own limits and answers from the
//! catalog.
//!
//! * [`JsonText`] is the `json` value exactly as the client sent it (PostgreSQL keeps `json`
//!   as text), so an event passed as `json` meets the same strict parser as one passed as text.
//! * [`JsonbText`] is a `jsonb` value's canonical text (`jsonb_out`). A `jsonb` value has lost
//!   its duplicate keys and number spellings on input, which is why events are never accepted
//!   as `jsonb`; filters are.

use pgrx::callconv::{Arg, ArgAbi};
use pgrx::nullable::Nullable;
use pgrx::pg_sys;
use pgrx::prelude::*;

/// The text of a `json` argument, byte for byte; None if it is longer than
/// `buzz_tenancy.max_event_size` (the only `json` argument is an event): refused before it
/// is copied into Rust memory, where a failed allocation aborts the backend.
pub struct JsonText(pub Option<String>);

/// The canonical text of a `jsonb` argument (filters, `poll_many`'s entries).
pub struct JsonbText(pub String);

/// The longest `jsonb` argument text taken (`too_many_filters` past it), checked before it is
/// copied into Rust memory: a Rust allocation that fails aborts the backend and restarts
/// every session, and a value's text can be six times its stored size (`\u0001` escapes).
/// Far above any real request: a relay's `poll_many` of 512 subscriptions of 32 KiB each.
pub const MAX_JSONB_TEXT: usize = 16 << 20;

impl FromDatum for JsonText {
    /// SAFETY: the caller (pgrx's argument unboxing) passes a datum of the declared type.
    unsafe fn from_polymorphic_datum(datum: pg_sys::Datum, is_null: bool, oid: pg_sys::Oid) -> Option<Self> {
        if is_null {
            return None;
        }
        let max = crate::gucs::MAX_EVENT_SIZE.get().max(0) as usize + pg_sys::VARHDRSZ;
        // SAFETY: a json datum is a text varlena: its size is read from its header (or TOAST
        // pointer) without detoasting; String's FromDatum detoasts and copies it.
        unsafe {
            if pg_sys::toast_raw_datum_size(datum) > max {
                return Some(JsonText(None));
            }
            String::from_polymorphic_datum(datum, false, oid).map(|t| JsonText(Some(t)))
        }
    }
}

impl FromDatum for JsonbText {
    /// SAFETY: the caller (pgrx's argument unboxing) passes a datum of the declared type.
    unsafe fn from_polymorphic_datum(datum: pg_sys::Datum, is_null: bool, _: pg_sys::Oid) -> Option<Self> {
        if is_null {
            return None;
        }
        // SAFETY: a non-null jsonb datum: its size is read without detoasting; jsonb_out
        // detoasts it and returns a palloc'd C string in the current memory context (in
        // PostgreSQL's memory: running out there is an ordinary error), copied here if not too
        // long, and freed.
        unsafe {
            if pg_sys::toast_raw_datum_size(datum) > MAX_JSONB_TEXT {
                crate::errors::raise(crate::errors::Error::TooManyFilters);
            }
            let cstr = pgrx::direct_function_call::<&std::ffi::CStr>(pg_sys::jsonb_out, &[Some(datum)])?;
            if cstr.to_bytes().len() > MAX_JSONB_TEXT {
                pg_sys::pfree(cstr.as_ptr().cast_mut().cast());
                crate::errors::raise(crate::errors::Error::TooManyFilters);
            }
            let text = cstr.to_string_lossy().into_owned();
            pg_sys::pfree(cstr.as_ptr().cast_mut().cast());
            Some(JsonbText(text))
        }
    }
}

macro_rules! arg_abi {
    ($ty:ty) => {
        // SAFETY: unboxed through FromDatum exactly like pgrx's own argument types.
        unsafe impl<'fcx> ArgAbi<'fcx> for $ty {
            unsafe fn unbox_arg_unchecked(arg: Arg<'_, 'fcx>) -> Self {
                // SAFETY: the caller guarantees a non-null argument of the declared SQL type.
                unsafe { arg.unbox_arg_using_from_datum() }.unwrap_or_else(|| crate::errors::raise(crate::errors::Error::Internal))
            }

            unsafe fn unbox_nullable_arg(arg: Arg<'_, 'fcx>) -> Nullable<Self> {
                // SAFETY: as above; NULL becomes Nullable::Null.
                unsafe { arg.unbox_arg_using_from_datum() }.into()
            }
        }
    };
}

arg_abi!(JsonText);
arg_abi!(JsonbText);
pgrx::impl_sql_translatable!(JsonText, arg_only = "json");
pgrx::impl_sql_translatable!(JsonbText, arg_only = "jsonb");
