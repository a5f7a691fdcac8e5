//! Session tokens: 32 random bytes, returned once as hex, stored only as SHA-256 keyed
//! `(community_id, hash)`. A token is only ever looked up inside the entered host's community.

use pgrx::Uuid;
use sha2::{Digest, Sha256};

use crate::context;
use crate::errors::OrRaise;
use crate::gucs;

fn token_hash(token: &str) -> Option<Vec<u8>> {
    let raw: [u8; 32] = hex::decode(token).ok()?.try_into().ok()?;
    Some(Sha256::digest(raw).to_vec())
}

/// Mint a session for `pubkey` in `community`; returns the token (hex).
pub fn mint(community: Uuid, pubkey: &str) -> String {
    let token: [u8; 32] = super::random_bytes();
    let hash = Sha256::digest(token).to_vec();
    crate::spi_cache::run(
        "INSERT INTO buzz.sessions (community_id, token_hash, pubkey, expires_at)
         VALUES ($1, $2, $3, clock_timestamp() + make_interval(secs => $4))",
        &[community.into(), hash.into(), pubkey.into(), f64::from(gucs::SESSION_TTL.get()).into()],
    )
    .or_raise();
    hex::encode(token)
}

/// The actor of a live session whose holder is still admitted in `community`. Malformed,
/// unknown, expired and foreign tokens are all simply "no session".
pub fn actor_for_token(community: Uuid, token: &str) -> Result<Option<String>, pgrx::spi::Error> {
    let Some(hash) = token_hash(token) else { return Ok(None) };
    crate::spi_cache::read_one::<String>(
        "SELECT s.pubkey FROM buzz.sessions s
           JOIN buzz.members m ON m.community_id = s.community_id AND m.pubkey = s.pubkey
          WHERE s.community_id = $1 AND s.token_hash = $2 AND s.expires_at > clock_timestamp()",
        &[community.into(), hash.into()],
    )
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
