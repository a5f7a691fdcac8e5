//! Authentication: NIP-42 challenges and events, and the session tokens they mint.

pub mod challenge;
pub mod nip42;
pub mod nip98;
pub mod sessions;
pub mod tokens;


use crate::errors::{raise, Error};

/// The value of exactly one tag, or `err` for none or several.
pub fn exactly_one<'a>(mut values: impl Iterator<Item = &'a str>, err: Error) -> Result<&'a str, Error> {
    match (values.next(), values.next()) {
        (Some(v), None) => Ok(v),
        _ => Err(err),
    }
}

/// `N` bytes from PostgreSQL's strong random source (OpenSSL or /dev/urandom).
pub fn random_bytes<const N: usize>() -> [u8; N] {
    crate::pg::strong_random::<N>().unwrap_or_else(|| raise(Error::Internal))
}
