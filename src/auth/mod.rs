//! Authentication: NIP-42 challenges and events, and the session tokens they mint.

pub mod challenge;
pub mod nip42;
pub mod nip98;
pub mod sessions;
pub mod tokens;


use pgrx::Uuid;

use crate::context::TokenGrant;
use crate::errors::{raise, Error, OrRaise};

/// The actor `credential` (an API token, told apart by its prefix, or a session token) stands
/// for in `community`, with a token's rights. Both are looked up only inside `community`, so
/// another community's credential fails exactly like a random one (S5); either lookup also
/// requires the actor to be a member now. `note_use`: see [`tokens::grant_for_token`].
pub fn actor_for_credential(community: Uuid, credential: &str, note_use: bool) -> Result<(String, Option<TokenGrant>), Error> {
    if let Some((actor, grant)) = tokens::grant_for_token(community, credential, note_use) {
        return Ok((actor, Some(grant)));
    }
    let actor = sessions::actor_for_token(community, credential).or_raise();
    actor.map(|a| (a, None)).ok_or(Error::SessionInvalid)
}

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
