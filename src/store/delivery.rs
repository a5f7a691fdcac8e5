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
//! `delivery_key` (in `buzz.communities`, which the relay cannot read). A cursor is a fresh
//! nonce, the position masked under the key and that nonce, and a MAC over both: a cursor of
//! another community, or an edited one, fails exactly like a malformed one, and a cursor says
//! nothing about the position (not even whether two cursors stand for the same one). The wake-up channel is a
//! hash of the key: the relay learns it only by entering one of the community's hosts.

use std::cell::RefCell;
use std::collections::HashMap;

use pgrx::prelude::*;
use pgrx::Uuid;
use sha2::{Digest, Sha256};

use crate::errors::{Error, OrRaise};

thread_local! {
    /// The top-level transaction that last took a position in this backend.
    static TOOK_POSITION: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// True when this transaction has taken a position, even one a savepoint rollback gave back
/// to the counter: the transaction still holds positions nobody else has committed yet.
pub fn took_position() -> bool {
    let top = crate::pg::top_xid();
    top != 0 && TOOK_POSITION.with(|t| t.get()) == top
}

/// The next position of `community` (locks its counter row until the transaction ends). A
/// plain UPDATE in the common case; the first event of a community creates the row.
pub fn next_position(community: Uuid) -> i64 {
    let position = take_position(community);
    TOOK_POSITION.with(|t| t.set(crate::pg::top_xid()));
    position
}

fn take_position(community: Uuid) -> i64 {
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

thread_local! {
    /// Where the counter row of a community and the member row of an actor were last found
    /// (their ctids), per (community, actor): an idle poll fetches both rows by address, one
    /// heap page each, so its cost does not grow with the number of communities (the btrees'
    /// depth does). A row that was updated or deleted since is not at its address any more
    /// (the old version is dead), and the lookup falls back to the indexes.
    static ROWS: RefCell<HashMap<(Uuid, String), (String, String)>> = RefCell::new(HashMap::new());
}

/// The last committed position of `community`, as [`last_position`], and whether `actor` is
/// admitted there: an idle `poll` answers from this (a member revoked after `enter` is told
/// so even when there is no news).
pub fn last_position_as(community: Uuid, actor: &str) -> (i64, bool) {
    let key = (community, actor.to_owned());
    if let Some((counter, member)) = ROWS.with(|r| r.borrow().get(&key).cloned()) {
        // The quals are the lookup's own: an address reused by another row does not match.
        let (last, admitted) = crate::spi_cache::read_two::<i64, bool>(
            "SELECT (SELECT last FROM buzz.community_counters
                      WHERE ctid = $3::tid AND community_id = $1 AND tbl = 'buzz.events'::regclass AND col = 'position'),
                    EXISTS (SELECT 1 FROM buzz.members WHERE ctid = $4::tid AND community_id = $1 AND pubkey = $2)",
            &[community.into(), actor.into(), counter.as_str().into(), member.as_str().into()],
        )
        .or_raise();
        if let (Some(last), Some(true)) = (last, admitted) {
            return (last, true);
        }
    }
    let (counter, last, member) = crate::spi_cache::read_query(
        "SELECT c.ctid::text, c.last, (SELECT m.ctid::text FROM buzz.members m WHERE m.community_id = $1 AND m.pubkey = $2)
           FROM (SELECT 1) one
           LEFT JOIN buzz.community_counters c
             ON c.community_id = $1 AND c.tbl = 'buzz.events'::regclass AND c.col = 'position'",
        &[community.into(), actor.into()],
        |rows| {
            let r = rows.first();
            Ok((r.get::<String>(1)?, r.get::<i64>(2)?, r.get::<String>(3)?))
        },
    )
    .or_raise();
    ROWS.with(|r| {
        let mut r = r.borrow_mut();
        match (counter, member.clone()) {
            (Some(counter), Some(member)) => {
                if r.len() >= 10_000 {
                    r.clear();
                }
                r.insert(key, (counter, member));
            }
            // Not a member (any more), or no events yet: nothing to remember, and a stale
            // address would only cost a failed fetch at every poll.
            _ => {
                r.remove(&key);
            }
        }
    });
    (last.unwrap_or(0), member.is_some())
}

/// A community's delivery key: what its cursors and its channel name are made from.
pub struct Key(Vec<u8>);

// 16 bytes: no two cursors of a community share a nonce (and so a mask) in practice.
const NONCE: usize = 16;
const TAG: usize = 12;
const CURSOR_BYTES: usize = NONCE + 8 + TAG;

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

    /// SHA-256 over the key, a purpose label and the data (fixed-length inputs, truncated
    /// outputs: no length extension).
    fn digest(&self, purpose: &[u8], data: &[&[u8]]) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(&self.0);
        h.update(purpose);
        for d in data {
            h.update(d);
        }
        h.finalize().into()
    }

    /// The position XORed with a pad only the key's holder can compute from the nonce.
    fn mask(&self, nonce: &[u8; NONCE], value: [u8; 8]) -> [u8; 8] {
        let pad = self.digest(b"mask", &[nonce]);
        std::array::from_fn(|i| value[i] ^ pad[i])
    }

    fn tag(&self, nonce: &[u8; NONCE], sealed: &[u8; 8]) -> [u8; TAG] {
        let d = self.digest(b"cursor", &[nonce, sealed]);
        std::array::from_fn(|i| d[i])
    }

    /// The cursor of `position`: hex of a fresh nonce, the masked position and a MAC over
    /// both. The position is sealed, not shown: a reader must not learn how many events
    /// (of channels it cannot read, say) lie between two cursors, nor compare two cursors.
    pub fn cursor(&self, position: i64) -> String {
        let nonce: [u8; NONCE] = crate::pg::strong_random().unwrap_or_else(|| crate::errors::raise(Error::Internal));
        let sealed = self.mask(&nonce, position.to_be_bytes());
        let tag = self.tag(&nonce, &sealed);
        let mut raw = Vec::with_capacity(CURSOR_BYTES);
        raw.extend_from_slice(&nonce);
        raw.extend_from_slice(&sealed);
        raw.extend_from_slice(&tag);
        hex::encode(raw)
    }

    /// The position a cursor stands for; any other text (another community's cursor and
    /// an edited one included) is [`Error::CursorInvalid`].
    pub fn position(&self, cursor: &str) -> Result<i64, Error> {
        // Lowercase hex only, so that a cursor has exactly one spelling.
        if cursor.len() != 2 * CURSOR_BYTES || !cursor.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(Error::CursorInvalid);
        }
        let raw = hex::decode(cursor).map_err(|_| Error::CursorInvalid)?;
        let nonce: [u8; NONCE] = raw[..NONCE].try_into().expect("length checked");
        let sealed: [u8; 8] = raw[NONCE..NONCE + 8].try_into().expect("length checked");
        let expected = self.tag(&nonce, &sealed);
        // Constant time: the comparison must not tell an attacker how much of a forged tag was right.
        let diff = expected.iter().zip(&raw[NONCE + 8..]).fold(0u8, |d, (a, b)| d | (a ^ b));
        if diff != 0 {
            return Err(Error::CursorInvalid);
        }
        let position = i64::from_be_bytes(self.mask(&nonce, sealed));
        if position < 0 { Err(Error::CursorInvalid) } else { Ok(position) }
    }

    /// The name of the community's wake-up channel (fits NAMEDATALEN).
    pub fn channel(&self) -> String {
        format!("buzz_{}", hex::encode(&self.digest(b"listen", &[])[..12]))
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
