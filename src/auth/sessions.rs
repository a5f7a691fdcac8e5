//! Session tokens: 32 random bytes, returned once as hex, stored only as SHA-256 keyed
//! `(community_id, hash)`. A token is only ever looked up inside the entered host's community.

use pgrx::Uuid;
use sha2::{Digest, Sha256};

use crate::context;
use crate::errors::OrRaise;
use crate::gucs;
use crate::relcache_watch::{self, Table};

fn token_hash(token: &str) -> Option<Vec<u8>> {
    let raw: [u8; 32] = hex::decode(token).ok()?.try_into().ok()?;
    Some(Sha256::digest(raw).to_vec())
}

/// Live sessions one pubkey keeps in a community: a login past it ends the oldest (a client
/// that logs in on every connection has this many connections' worth).
const MAX_SESSIONS_PER_PUBKEY: i64 = 256;

/// Mint a session for `pubkey` in `community`; returns the token (hex). Logins also keep the
/// table bounded: the community's expired sessions go (deleting them empties no cache, see
/// the session_cache_delete trigger), and so do the pubkey's oldest past
/// MAX_SESSIONS_PER_PUBKEY.
pub fn mint(community: Uuid, pubkey: &str) -> String {
    let token: [u8; 32] = super::random_bytes();
    let hash = Sha256::digest(token).to_vec();
    crate::spi_cache::run(
        "DELETE FROM buzz.sessions WHERE community_id = $1 AND expires_at <= clock_timestamp()",
        &[community.into()],
    )
    .or_raise();
    crate::spi_cache::run(
        "INSERT INTO buzz.sessions (community_id, token_hash, pubkey, expires_at)
         VALUES ($1, $2, $3, clock_timestamp() + make_interval(secs => $4))",
        &[community.into(), hash.into(), pubkey.into(), f64::from(gucs::SESSION_TTL.get()).into()],
    )
    .or_raise();
    crate::spi_cache::run(
        "DELETE FROM buzz.sessions
          WHERE community_id = $1 AND pubkey = $2
            AND token_hash IN (SELECT token_hash FROM buzz.sessions WHERE community_id = $1 AND pubkey = $2
                                ORDER BY expires_at DESC, token_hash OFFSET $3)",
        &[community.into(), pubkey.into(), MAX_SESSIONS_PER_PUBKEY.into()],
    )
    .or_raise();
    hex::encode(token)
}

/// The actor of a live session whose holder is still admitted in `community`. Malformed,
/// unknown, expired and foreign tokens are all simply "no session".
pub fn actor_for_token(community: Uuid, token: &str) -> Result<Option<String>, pgrx::spi::Error> {
    let Some(hash) = token_hash(token) else { return Ok(None) };
    relcache_watch::accept_pending();
    if let Some(actor) = cache::get(community, &hash) {
        return Ok(Some(actor));
    }
    let before = relcache_watch::generation(Table::Sessions);
    let cacheable = relcache_watch::enabled(Table::Sessions);
    // Under a snapshot taken after the invalidations were accepted (relcache_watch::accept_pending).
    let (pubkey, expires_us) = crate::pg::with_latest_snapshot(|| live_session(community, &hash))?;
    let Some(pubkey) = pubkey else { return Ok(None) };
    // Cache only what is current (as the host map does): nothing read under a snapshot older
    // than an invalidation this backend accepted, nothing an invalidation raced with.
    if cacheable && crate::pg::reads_latest() && relcache_watch::generation(Table::Sessions) == before {
        cache::put(community, hash, pubkey.clone(), expires_us.unwrap_or(0), before);
    }
    Ok(Some(pubkey))
}

/// The holder of a live session (still a member) and the session's expiry, in microseconds.
fn live_session(community: Uuid, hash: &[u8]) -> Result<(Option<String>, Option<i64>), pgrx::spi::Error> {
    crate::spi_cache::read_two::<String, i64>(
        "SELECT s.pubkey, (extract(epoch FROM s.expires_at) * 1000000)::int8 FROM buzz.sessions s
           JOIN buzz.members m ON m.community_id = s.community_id AND m.pubkey = s.pubkey
          WHERE s.community_id = $1 AND s.token_hash = $2 AND s.expires_at > clock_timestamp()",
        &[community.into(), hash.to_vec().into()],
    )
}

/// `buzz.invalidate_session_cache` (declared in src/api/operator.rs).
pub(crate) fn invalidate_cache() {
    let relid = crate::spi_cache::read_one::<pgrx::pg_sys::Oid>("SELECT 'buzz.sessions'::regclass::oid", &[])
        .or_raise()
        .unwrap_or_else(|| crate::errors::raise(crate::errors::Error::Internal));
    crate::pg::invalidate_relcache(relid);
}

/// A per-backend map of the sessions this backend has entered with (issue 15): `enter(host,
/// token)` then costs a hash and a map lookup instead of an SPI query. Ending a session, a
/// sweep of expired ones and revoking a member (any UPDATE, DELETE or TRUNCATE of sessions or
/// members) fire statement triggers that empty every backend's map before its next
/// transaction (relcache_watch); a new session needs nothing, it is not in any map yet. Expiry
/// is checked against the clock at every use.
mod cache {
    use std::cell::{Cell, RefCell};
    use std::collections::HashMap;

    use pgrx::Uuid;

    use crate::relcache_watch::{self, Table};

    /// Past this many entries the map starts over (a backend serves a few communities' users).
    const MAX_ENTRIES: usize = 10_000;

    struct Entry {
        pubkey: String,
        expires_us: i64,
    }

    thread_local! {
        static MAP: RefCell<HashMap<(Uuid, Vec<u8>), Entry>> = RefCell::new(HashMap::new());
        static GENERATION: Cell<u64> = const { Cell::new(0) };
    }

    fn now_us() -> i64 {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_micros() as i64)
    }

    pub fn get(community: Uuid, hash: &[u8]) -> Option<String> {
        let generation = relcache_watch::generation(Table::Sessions);
        MAP.with(|m| {
            let mut m = m.borrow_mut();
            if GENERATION.with(Cell::get) != generation {
                m.clear();
                GENERATION.with(|g| g.set(generation));
            }
            let e = m.get(&(community, hash.to_vec()))?;
            (e.expires_us > now_us()).then(|| e.pubkey.clone())
        })
    }

    /// Keeps a lookup made under `generation` (nothing, if the map has moved on since).
    pub fn put(community: Uuid, hash: Vec<u8>, pubkey: String, expires_us: i64, generation: u64) {
        MAP.with(|m| {
            let mut m = m.borrow_mut();
            if GENERATION.with(Cell::get) != generation {
                return;
            }
            if m.len() >= MAX_ENTRIES {
                m.clear();
            }
            m.insert((community, hash), Entry { pubkey, expires_us });
        })
    }
}

/// `buzz.end_session` (declared in src/api/relay.rs).
pub(crate) fn end_session(session_token: Option<&str>) -> bool {
    crate::incident::guard(|| {
        let ctx = context::require();
        let Some(hash) = session_token.and_then(token_hash) else { return false };
        crate::spi_cache::one::<bool>(
            "WITH gone AS (DELETE FROM buzz.sessions WHERE community_id = $1 AND token_hash = $2 RETURNING 1)
             SELECT count(*) > 0 FROM gone",
            &[ctx.community.into(), hash.into()],
        )
        .or_raise()
        .unwrap_or(false)
    })
}
