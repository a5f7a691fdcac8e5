//! Authentication: NIP-42 challenges and events, and the session tokens they mint.

pub mod nip42;
pub mod nip98;
pub mod sessions;
pub mod tokens;

use pgrx::pg_sys;

use crate::errors::{raise, Error};

/// `N` bytes from PostgreSQL's strong random source (OpenSSL or /dev/urandom).
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    if !unsafe { pg_sys::pg_strong_random(buf.as_mut_ptr().cast(), N) } {
        raise(Error::Internal);
    }
    buf
}
