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

/// The text of a `json` argument, byte for byte.
pub struct JsonText(pub String);

/// The canonical text of a `jsonb` argument.
pub struct JsonbText(pub String);

impl FromDatum for JsonText {
    /// SAFETY: the caller (pgrx's argument unboxing) passes a datum of the declared type.
    unsafe fn from_polymorphic_datum(datum: pg_sys::Datum, is_null: bool, oid: pg_sys::Oid) -> Option<Self> {
        // SAFETY: a json datum is a text varlena; String's FromDatum detoasts and copies it.
        unsafe { String::from_polymorphic_datum(datum, is_null, oid) }.map(JsonText)
    }
}

impl FromDatum for JsonbText {
    /// SAFETY: the caller (pgrx's argument unboxing) passes a datum of the declared type.
    unsafe fn from_polymorphic_datum(datum: pg_sys::Datum, is_null: bool, _: pg_sys::Oid) -> Option<Self> {
        if is_null {
            return None;
        }
        // SAFETY: a non-null jsonb datum; jsonb_out detoasts it and returns a palloc'd C string
        // in the current memory context, copied here and freed.
        unsafe {
            let cstr = pgrx::direct_function_call::<&std::ffi::CStr>(pg_sys::jsonb_out, &[Some(datum)])?;
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
