//! Live delivery (DESIGN §12.19): where an event stands in its community's delivery order, the
//! opaque cursors `poll` resumes from, and the wake-up channel of a community.
//!
//! **Positions follow commit order.** `publish` takes its community's next position from a
//! counter row (`community_counters`, table `buzz.events`, column `position`) whose update
//! locks the row until the transaction ends. A second publisher of the same community waits
//! there until the first commits or rolls back, so positions are assigned in commit order:
//! whoever sees the event at position P committed also sees every event below P committed
//! (their transactions committed earlier). A rolled-back transaction takes its increment with
//! it. The counter is per community, so no tenant observes another's volume. The lock is taken
//! before the author lock (`authorize`), in the same order by every publisher: no deadlock.
//!
//! **Cursors and channel names are keyed per community.** Each community has a random
//! `delivery_key` (in `buzz.communities`, which the relay cannot read). A cursor is
//! `<position>.<mac>` with a MAC over the community's key and the position: a cursor of another
//! community, or an edited one, fails exactly like a malformed one. The wake-up channel is a
//! hash of the key: the relay learns it only by entering one of the community's hosts.

use std::cell::RefCell;
use std::collections::HashMap;

use pgrx::prelude::*;
use pgrx::Uuid;
use sha2::{Digest, Sha256};

use crate::errors::{Error, OrRaise};

/// The next position of `community` (locks its counter row until the transaction ends). A
/// plain UPDATE in the common case; the first event of a community creates the row.
pub fn next_position(community: Uuid) -> i64 {
    let next = crate::spi_cache::one::<i64>(
        "UPDATE buzz.community_counters SET last = last + 1
          WHERE community_id = $1 AND tbl = 'buzz.events'::regclass AND col = 'position'
         RETURNING last",
        &[community.into()],
    )
    .or_raise();
    next.or_else(|| {
        crate::spi_cache::one::<i64>(
            "INSERT INTO buzz.community_counters AS c (community_id, tbl, col, last)
             VALUES ($1, 'buzz.events'::regclass, 'position', 1)
             ON CONFLICT (community_id, tbl, col) DO UPDATE SET last = c.last + 1
             RETURNING last",
            &[community.into()],
        )
        .or_raise()
    })
    .unwrap_or_else(|| crate::errors::raise(Error::Internal))
}

/// The last position of `community` this snapshot sees committed (0 before the first event).
pub fn last_position(community: Uuid) -> i64 {
    crate::spi_cache::read_one::<i64>(
        "SELECT last FROM buzz.community_counters
          WHERE community_id = $1 AND tbl = 'buzz.events'::regclass AND col = 'position'",
        &[community.into()],
    )
    .or_raise()
    .unwrap_or(0)
}

/// A community's delivery key: what its cursors and its channel name are made from.
pub struct Key(Vec<u8>);

thread_local! {
    /// Delivery keys read in this backend (a key never changes), with the host-map generation
    /// they were read under: a community dropped and made again starts over with the host map.
    static KEYS: RefCell<(u64, HashMap<Uuid, Vec<u8>>)> = RefCell::new((0, HashMap::new()));
}

impl Key {
    pub fn of(community: Uuid) -> Key {
        let generation = crate::resolve::invalidations();
        let cached = KEYS.with(|k| {
            let mut k = k.borrow_mut();
            if k.0 != generation {
                *k = (generation, HashMap::new());
            }
            k.1.get(&community).cloned()
        });
        if let Some(key) = cached {
            return Key(key);
        }
        let key = crate::spi_cache::read_query(
            "SELECT delivery_key FROM buzz.communities WHERE id = $1",
            &[community.into()],
            |rows| rows.first().get_one::<Vec<u8>>(),
        )
        .or_raise()
        .unwrap_or_else(|| crate::errors::raise(Error::Internal));
        KEYS.with(|k| k.borrow_mut().1.insert(community, key.clone()));
        Key(key)
    }

    fn mac(&self, purpose: &[u8], data: &[u8]) -> String {
        let mut h = Sha256::new();
        h.update(&self.0);
        h.update(purpose);
        h.update(data);
        hex::encode(&h.finalize()[..12])
    }

    /// The cursor of `position`.
    pub fn cursor(&self, position: i64) -> String {
        format!("{position}.{}", self.mac(b"cursor", &position.to_be_bytes()))
    }

    /// The position a cursor stands for; any other text (another community's cursor
    /// included) is [`Error::CursorInvalid`].
    pub fn position(&self, cursor: &str) -> Result<i64, Error> {
        let (pos, tag) = cursor.split_once('.').ok_or(Error::CursorInvalid)?;
        let canonical = !pos.is_empty() && pos.len() <= 18 && pos.bytes().all(|b| b.is_ascii_digit()) && (pos == "0" || !pos.starts_with('0'));
        let pos: i64 = if canonical { pos.parse().map_err(|_| Error::CursorInvalid)? } else { return Err(Error::CursorInvalid) };
        if self.mac(b"cursor", &pos.to_be_bytes()) == tag { Ok(pos) } else { Err(Error::CursorInvalid) }
    }

    /// The name of the community's wake-up channel (fits NAMEDATALEN).
    pub fn channel(&self) -> String {
        format!("buzz_{}", self.mac(b"listen", &[]))
    }
}

// commands/async.h is not among pgrx's bindings.
extern "C-unwind" {
    fn Async_Notify(channel: *const std::ffi::c_char, payload: *const std::ffi::c_char);
}

/// Wake the listeners of `community` when this transaction commits: an empty payload on its
/// channel (PostgreSQL folds identical notifications of one transaction into one).
pub fn notify(community: Uuid) {
    let name = std::ffi::CString::new(Key::of(community).channel()).expect("hex has no NUL");
    // SAFETY: called on the backend's main thread; both arguments are valid NUL-terminated
    // strings for the duration of the call (Async_Notify copies them into the transaction's
    // pending notifications). The guard turns an `ereport` inside (out of memory, a full
    // queue) into a panic pgrx re-raises as an error, instead of a longjmp over Rust frames.
    unsafe { pg_sys::ffi::pg_guard_ffi_boundary(|| Async_Notify(name.as_ptr(), c"".as_ptr())) }
}
