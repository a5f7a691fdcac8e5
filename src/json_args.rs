//! `json` and `jsonb` arguments handed to the extension.
//!
//! pgrx's own `Json`/`JsonB` arguments parse the value with serde before the function body
//! runs and panic on anything serde refuses (`1e400`, nesting deeper than 128): the client
//! would see a raw error naming a Rust source file, with or without a context. These types
//! never fail on their own; the extension checks what they hold with its own limits and
//! answers from the catalog.
//!
//! * [`JsonText`] is the `json` value exactly as the client sent it (PostgreSQL keeps `json`
//!   as text), so an event passed as `json` meets the same strict parser as one passed as text.
//! * [`JsonbValue`] is a `jsonb` value (filters, `poll_many`'s entries) read straight from its
//!   stored form into a `serde_json::Value`: the same value serde would parse from its
//!   canonical text (`jsonb_out`), with the same refusals, without printing and re-parsing it
//!   (issue 15: that was a tenth of req's own time). A `jsonb` value has lost its duplicate
//!   keys and number spellings on input, which is why events are never accepted as `jsonb`.

use pgrx::callconv::{Arg, ArgAbi};
use pgrx::nullable::Nullable;
use pgrx::pg_sys;
use pgrx::prelude::*;
use serde_json::{Map, Value};

/// The text of a `json` argument, byte for byte; None if it is longer than
/// `buzz_tenancy.max_event_size` (the only `json` argument is an event): refused before it
/// is copied into Rust memory, where a failed allocation aborts the backend.
pub struct JsonText(pub Option<String>);

/// A `jsonb` argument as JSON; None where serde would refuse its canonical text: nesting
/// deeper than serde's limit, or a number beyond `f64` (`1e400`).
pub struct JsonbValue(pub Option<Value>);

/// The largest `jsonb` argument taken (`too_many_filters` past it): stored, checked before
/// anything is copied into Rust memory, and printed, counted as it is read (see [`Budget`]).
/// Far above any real request: a relay's `poll_many` of 512 subscriptions of 32 KiB each.
pub const MAX_JSONB_SIZE: usize = 16 << 20;

/// serde_json's nesting limit: a container at this depth is refused.
const MAX_DEPTH: usize = 128;

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

impl FromDatum for JsonbValue {
    /// SAFETY: the caller (pgrx's argument unboxing) passes a datum of the declared type.
    unsafe fn from_polymorphic_datum(datum: pg_sys::Datum, is_null: bool, _: pg_sys::Oid) -> Option<Self> {
        if is_null {
            return None;
        }
        // SAFETY: a non-null jsonb datum: its size is read from its header (or TOAST pointer)
        // without detoasting; `to_value` reads the detoasted copy.
        let value = unsafe {
            if pg_sys::toast_raw_datum_size(datum) > MAX_JSONB_SIZE {
                crate::errors::raise(crate::errors::Error::TooManyFilters);
            }
            to_value(pg_sys::pg_detoast_datum(datum.cast_mut_ptr()).cast::<pg_sys::Jsonb>())
        };
        match value {
            Ok(v) => Some(JsonbValue(Some(v))),
            Err(Refused::Invalid) => Some(JsonbValue(None)),
            Err(Refused::TooLarge) => crate::errors::raise(crate::errors::Error::TooManyFilters),
        }
    }
}

/// Why [`to_value`] gave up.
enum Refused {
    /// serde would refuse the text: too deep, or a number beyond `f64`.
    Invalid,
    /// Past a limit of [`Budget`]: its text or the memory it would take.
    TooLarge,
}

/// One open container of [`to_value`]: an array (`raw`: the pseudo-array PostgreSQL wraps a
/// top-level scalar in), or an object and the key of its next value.
enum Open {
    Array { items: Vec<Value>, raw: bool },
    Object { map: Map<String, Value>, key: Option<String> },
}

/// Counts what reading a value costs, twice, and refuses past either limit:
/// * the text jsonb_out would print (escapes not counted, a separator after every element),
///   up to [`MAX_JSONB_SIZE`], the limit the text itself had before it stopped being printed.
///   A stored value can print far longer than it is: `0e-16383` is a few bytes stored and
///   16,385 characters printed (serde reads it as `0.0`); without this count a 16 MiB argument
///   made the walk print gigabytes (an outside review);
/// * the Rust memory the value will hold, up to [`MAX_JSONB_MEMORY`]: a million one-key
///   objects are 12 MB of text but took 729 MB of maps in the same review.
///
/// A failed Rust allocation aborts the backend and restarts every session.
struct Budget {
    text: usize,
    memory: usize,
}

/// The most Rust memory one `jsonb` argument may take, as [`Budget`] counts it (the real
/// figure can be about twice that: vectors grow by doubling). Eight times the text limit: a
/// relay's `poll_many` of 512 subscriptions of 32 KiB of 64-hex authors counts about 24 MiB;
/// filters of small numbers count about 12 times their text (`{"kinds": [0, 0, …]}`).
pub const MAX_JSONB_MEMORY: usize = 8 * MAX_JSONB_SIZE;

/// What a value costs at least: a `serde_json::Value`.
const VALUE_COST: usize = std::mem::size_of::<Value>();
/// What an array costs once it has an element: a vector of four values and its allocation.
const ARRAY_COST: usize = 4 * VALUE_COST + 16;
/// What an object costs once it has a key: a B-tree leaf of eleven entries.
const OBJECT_COST: usize = 11 * (std::mem::size_of::<String>() + VALUE_COST) + 16;
/// What each key costs besides its bytes: its share of the map's nodes.
const KEY_COST: usize = 2 * (std::mem::size_of::<String>() + VALUE_COST);

impl Budget {
    /// A part of `text` bytes printed, held in `memory` bytes.
    fn spend(&mut self, text: usize, memory: usize) -> Result<(), Refused> {
        self.text = self.text.saturating_add(text);
        self.memory = self.memory.saturating_add(memory);
        if self.text > MAX_JSONB_SIZE || self.memory > MAX_JSONB_MEMORY { Err(Refused::TooLarge) } else { Ok(()) }
    }
}

/// The JSON value of a jsonb document, walked with PostgreSQL's own iterator.
///
/// # Safety
/// SAFETY (callers): `jsonb` points to a detoasted jsonb value that outlives the call.
unsafe fn to_value(jsonb: *mut pg_sys::Jsonb) -> Result<Value, Refused> {
    use pg_sys::JsonbIteratorToken as T;
    let mut budget = Budget { text: 0, memory: 0 };
    // SAFETY: the caller's contract; the iterator and the values it returns are palloc'd in
    // the current memory context and point into the document, read before it is released.
    unsafe {
        let mut it = pg_sys::JsonbIteratorInit(&raw mut (*jsonb).root);
        let mut v: pg_sys::JsonbValue = std::mem::zeroed();
        let mut open: Vec<Open> = Vec::new();
        loop {
            // A long walk answers a cancel or statement_timeout.
            pgrx::check_for_interrupts!();
            let done = match pg_sys::JsonbIteratorNext(&raw mut it, &raw mut v, false) {
                T::WJB_BEGIN_ARRAY | T::WJB_BEGIN_OBJECT if open.len() + 1 >= MAX_DEPTH => return Err(Refused::Invalid),
                T::WJB_BEGIN_ARRAY => {
                    let raw = v.val.array.rawScalar;
                    if !raw {
                        budget.spend(2, ARRAY_COST)?;
                    }
                    open.push(Open::Array { items: Vec::new(), raw });
                    None
                }
                T::WJB_BEGIN_OBJECT => {
                    budget.spend(2, OBJECT_COST)?;
                    open.push(Open::Object { map: Map::new(), key: None });
                    None
                }
                T::WJB_KEY => {
                    // `"key": `
                    let len = v.val.string.len.max(0) as usize;
                    budget.spend(len + 4, len + KEY_COST)?;
                    if let Some(Open::Object { key, .. }) = open.last_mut() {
                        *key = Some(string(&v));
                    }
                    None
                }
                T::WJB_VALUE | T::WJB_ELEM => add(&mut open, scalar(&v, &mut budget)?),
                T::WJB_END_ARRAY | T::WJB_END_OBJECT => {
                    let value = match open.pop() {
                        Some(Open::Array { mut items, raw: true }) => items.pop(),
                        Some(Open::Array { items, raw: false }) => Some(Value::Array(items)),
                        Some(Open::Object { map, .. }) => Some(Value::Object(map)),
                        None => None,
                    };
                    add(&mut open, value.ok_or(Refused::Invalid)?)
                }
                _ => return Err(Refused::Invalid),
            };
            if let Some(value) = done {
                return Ok(value);
            }
        }
    }
}

/// Put `value` into the innermost open container; the value itself once none is left.
fn add(open: &mut [Open], value: Value) -> Option<Value> {
    match open.last_mut() {
        None => Some(value),
        Some(Open::Array { items, .. }) => {
            items.push(value);
            None
        }
        Some(Open::Object { map, key }) => {
            map.insert(key.take().unwrap_or_default(), value);
            None
        }
    }
}

/// A scalar of the document, its cost spent first.
///
/// # Safety
/// SAFETY (callers): `v` was just filled by `JsonbIteratorNext` with a scalar.
unsafe fn scalar(v: &pg_sys::JsonbValue, budget: &mut Budget) -> Result<Value, Refused> {
    // SAFETY: the caller's contract: the union member read is the one `type_` names.
    unsafe {
        Ok(match v.type_ {
            pg_sys::jbvType::jbvNull => {
                budget.spend(6, VALUE_COST)?;
                Value::Null
            }
            pg_sys::jbvType::jbvBool => {
                budget.spend(7, VALUE_COST)?;
                Value::Bool(v.val.boolean)
            }
            pg_sys::jbvType::jbvString => {
                let len = v.val.string.len.max(0) as usize;
                budget.spend(len + 4, len + VALUE_COST)?;
                Value::String(string(v))
            }
            pg_sys::jbvType::jbvNumeric => {
                // The digits jsonb_out would print, read as serde reads them, then freed: the
                // walk may print many.
                let digits = pgrx::direct_function_call::<&std::ffi::CStr>(pg_sys::numeric_out, &[Some(pg_sys::Datum::from(v.val.numeric))])
                    .ok_or(Refused::Invalid)?;
                let parsed = budget
                    .spend(digits.to_bytes().len() + 2, VALUE_COST)
                    .map(|()| serde_json::from_slice::<Value>(digits.to_bytes()));
                pg_sys::pfree(digits.as_ptr().cast_mut().cast());
                match parsed? {
                    Ok(n @ Value::Number(_)) => n,
                    _ => return Err(Refused::Invalid),
                }
            }
            _ => return Err(Refused::Invalid),
        })
    }
}

/// The text of a string (or key) value, as serde reads it from jsonb_out's text.
///
/// # Safety
/// SAFETY (callers): `v` is a jbvString just filled by `JsonbIteratorNext`.
unsafe fn string(v: &pg_sys::JsonbValue) -> String {
    // SAFETY: the caller's contract: `val.string` points to `len` bytes of the document.
    unsafe {
        let s = v.val.string;
        String::from_utf8_lossy(std::slice::from_raw_parts(s.val.cast::<u8>(), s.len as usize)).into_owned()
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
arg_abi!(JsonbValue);
pgrx::impl_sql_translatable!(JsonText, arg_only = "json");
pgrx::impl_sql_translatable!(JsonbValue, arg_only = "jsonb");

#[cfg(any(test, feature = "pg_test"))]
#[pg_schema]
mod tests {
    use super::*;

    /// What serde reads from the value's canonical text: what the argument held before it was
    /// read straight from the stored form (issue 15), and must still hold.
    fn both(literal: &str) -> (Option<Value>, Option<Value>) {
        let text = std::ffi::CString::new(literal).unwrap();
        // SAFETY: jsonb_in takes a C string that outlives the call; jsonb_out and the argument
        // take the jsonb datum it made.
        unsafe {
            let datum = pgrx::direct_function_call::<pg_sys::Datum>(pg_sys::jsonb_in, &[Some(pg_sys::Datum::from(text.as_ptr()))]).unwrap();
            let canonical = pgrx::direct_function_call::<&std::ffi::CStr>(pg_sys::jsonb_out, &[Some(datum)]).unwrap();
            let walked = JsonbValue::from_polymorphic_datum(datum, false, pg_sys::JSONBOID).unwrap().0;
            (walked, serde_json::from_slice(canonical.to_bytes()).ok())
        }
    }

    /// Mutation: any change to `to_value`'s containers, scalars, raw scalars or depth limit
    /// makes one of these differ from serde's reading of jsonb_out.
    #[pg_test]
    fn jsonb_reads_as_serde_reads_its_text() {
        let deep = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
        let cases = [
            r##"{"ids": ["ab", "c\"d\\e\u0001\u00e9\ud83d\ude00"], "kinds": [0, 1, 65535], "since": 10, "#t": ["x"]}"##.to_owned(),
            r#"[{"a": {"b": [1, [2, {"c": null}]]}}, {}, [], true, false, null]"#.to_owned(),
            r#"[0, -0, 1.0, 1e2, 1.5e1, -5, 0.5, 12345678901234567890, 123456789012345678901234567890, 1e308, 1e400, -1e400]"#.to_owned(),
            r#"[1e400]"#.to_owned(),
            "1e400".to_owned(),
            r#"[0e-16383, -0.0, 0.0, 1E+2, 1e-400, 1.7976931348623157e308, 1.8e308, 9007199254740993]"#.to_owned(),
            r#"[18446744073709551615, 18446744073709551616, -9223372036854775808, -9223372036854775809]"#.to_owned(),
            r#"{"a": 1, "a": {"b": 1, "b": [2]}, "\u2028\n\t\/": "\u007f\b\f\r"}"#.to_owned(),
            r#"["", {"": ""}, [[]], [{}], {"": {}}]"#.to_owned(),
            r#""just a string""#.to_owned(),
            "5".to_owned(),
            "null".to_owned(),
            "{}".to_owned(),
            r#"{"": 1, "k": {"": []}}"#.to_owned(),
            deep(126),
            deep(127),
            deep(128),
            format!("{{\"a\": {}}}", deep(127)),
        ];
        for c in &cases {
            let (walked, serde) = both(c);
            assert_eq!(walked, serde, "{}", &c[..c.len().min(60)]);
        }
        // The limits themselves are exercised: the deepest accepted, the first refused.
        assert!(both(&deep(127)).0.is_some());
        assert!(both(&deep(128)).0.is_none());
        assert!(both("[1e400]").0.is_none());
    }
}
