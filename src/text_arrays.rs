//! `text[]` arguments, bounded before they are copied.
//!
//! pgrx's `Vec<Option<String>>` argument copies the whole array before the function body
//! runs, 24 bytes per element even for a NULL: an array of 130 million NULLs (17 MB on the
//! wire) became one 3 GB allocation, and a Rust allocation that fails aborts the backend, so
//! the postmaster restarts every community's sessions. Functions take pgrx's `Array` instead (a
//! view of the array PostgreSQL already holds) and list it with [`bounded`] once its length
//! is known to be within their limit, each element borrowed where PostgreSQL holds it.

use pgrx::datum::Array;

/// The elements in order (a multidimensional array flattened, as `unnest` does), borrowed
/// from the array (no element is copied either: an element of 400 MB is refused by the
/// caller's own size check, not copied first), or None when there are more than `max`.
pub fn bounded<'a>(array: &'a Array<'_, &str>, max: usize) -> Option<Vec<Option<&'a str>>> {
    (array.len() <= max).then(|| array.iter().collect())
}
