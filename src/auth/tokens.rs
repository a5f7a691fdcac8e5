//! API tokens (S1, S2, S5, S6, DESIGN §12.7): `buzz.mint_token`, `buzz.revoke_token`, and the
//! lookup behind `buzz.enter(host, api_token)`.
//!
//! A token is `buzz_api_` + 32 random bytes in hex, returned once and stored as the SHA-256 of
//! the bytes, keyed `(community_id, hash)` and stamped with the minting context's community:
//! presented on another community's host it is simply not found, exactly like a random token.
//! It never exceeds its minter: minting needs a signed session (NIP-42 or NIP-98, not a token),
//! every channel it names must be one the minter may use in that community (else the same
//! answer as an unknown channel), and every `enter` re-checks the minter's admission and
//! channel membership. Scopes (`read`, `write`) and channel claims travel in the context and
//! bound `publish`, `req` and `count`. Revocation, expiry and the minter's revocation take
//! effect at the next `enter`. Usage is recorded at most once an hour per token, never in a
//! read-only transaction: reads do not each cost a write.

use pgrx::datum::{Array, Interval};
use pgrx::Uuid;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::context::{self, TokenGrant};
use crate::errors::{raise, Error, OrRaise};
use crate::gucs;
use crate::text_arrays::bounded;

pub const PREFIX: &str = "buzz_api_";

fn token_hash(token: &str) -> Option<Vec<u8>> {
    let raw: [u8; 32] = hex::decode(token.strip_prefix(PREFIX)?).ok()?.try_into().ok()?;
    Some(Sha256::digest(raw).to_vec())
}

/// Advisory lock class of the extension's last-use writes ("buzz").
const LAST_USE_LOCK_CLASS: i32 = 0x6275_7a7a;

/// `pg_try_advisory_xact_lock` on the token (its hash's first four bytes): never waits, takes
/// no transaction id. A collision with another lock only skips one last-use write.
fn try_claim_last_use(hash: &[u8]) -> bool {
    let key = i32::from_be_bytes([hash[0], hash[1], hash[2], hash[3]]);
    crate::spi_cache::read_one::<bool>("SELECT pg_try_advisory_xact_lock($1, $2)", &[LAST_USE_LOCK_CLASS.into(), key.into()])
        .or_raise()
        .unwrap_or(false)
}

/// The minter and the rights of a live API token of `community` whose minter is still
/// admitted; None for anything else (not a token, unknown, expired, revoked, foreign).
/// `note_use`: record the token's last use (a write, at most hourly); `poll_many`, which must
/// stay a read of one snapshot, skips it (the subscription's `req` entered with the token).
pub fn grant_for_token(community: Uuid, token: &str, note_use: bool) -> Option<(String, TokenGrant)> {
    let hash = token_hash(token)?;
    let row = crate::spi_cache::read_query(
        "SELECT t.pubkey, t.scopes, t.channel_limited,
                t.last_used_at IS NULL OR t.last_used_at < clock_timestamp() - interval '1 hour',
                ARRAY(SELECT tc.channel_id
                        FROM buzz.api_token_channels tc
                        JOIN buzz.channels c ON c.community_id = tc.community_id AND c.id = tc.channel_id
                       WHERE tc.community_id = $1 AND tc.token_hash = $2
                         AND (c.visibility = 'open'
                              OR EXISTS (SELECT 1 FROM buzz.channel_members cm
                                          WHERE cm.community_id = $1 AND cm.channel_id = c.id AND cm.pubkey = t.pubkey)))
           FROM buzz.api_tokens t
           JOIN buzz.members m ON m.community_id = t.community_id AND m.pubkey = t.pubkey
          WHERE t.community_id = $1 AND t.token_hash = $2 AND t.expires_at > clock_timestamp()",
        &[community.into(), hash.clone().into()],
        |rows| {
            let r = rows.first();
            Ok((r.get::<String>(1)?, r.get::<Vec<String>>(2)?, r.get::<bool>(3)?, r.get::<bool>(4)?, r.get::<Vec<Uuid>>(5)?))
        },
    );
    let (Some(pubkey), Some(scopes), Some(limited), stale, channels) = (match row {
        Ok(r) => r,
        Err(pgrx::spi::Error::InvalidPosition) => return None,
        Err(e) => {
            Err::<(), _>(e).or_raise();
            return None;
        }
    }) else {
        return None;
    };
    // Written at most hourly, so that entering with a token is a read (no transaction id);
    // and only by a transaction that gets the token's advisory lock at once: concurrent
    // enters with the same token skip the write instead of waiting for the row lock of
    // whichever got there first (and taking a transaction id to re-check it).
    if note_use && stale == Some(true) && !crate::pg::xact_read_only() && try_claim_last_use(&hash) {
        crate::spi_cache::run(
            "UPDATE buzz.api_tokens SET last_used_at = clock_timestamp()
              WHERE community_id = $1 AND token_hash = $2
                AND (last_used_at IS NULL OR last_used_at < clock_timestamp() - interval '1 hour')",
            &[community.into(), hash.into()],
        )
        .or_raise();
    }
    let grant = TokenGrant {
        read: scopes.iter().any(|s| s == "read"),
        write: scopes.iter().any(|s| s == "write"),
        channels: limited.then(|| channels.unwrap_or_default()),
    };
    Some((pubkey, grant))
}

/// The channels of `names` (text, as a relay passes them) that `actor` may use in
/// `community`, or `channel_unknown` for the first that is malformed, unknown, another
/// community's, or private without the actor.
fn usable_channels(community: Uuid, actor: &str, names: &[&str]) -> Vec<Uuid> {
    let mut out = Vec::with_capacity(names.len());
    for name in names {
        let id = context::parse_uuid(name).unwrap_or_else(|| raise(Error::ChannelUnknown));
        if !crate::authorize::may_use_channel(community, id, actor) {
            raise(Error::ChannelUnknown);
        }
        if !out.contains(&id) {
            out.push(id);
        }
    }
    out
}

/// Most entries `mint_token` copies from its `scopes` (`token_scope_invalid` past it) and
/// `channel_ids` (`channel_unknown`) arrays: far above any real use, small in memory.
const MAX_SCOPES: usize = 16;
const MAX_TOKEN_CHANNELS: usize = 10_000;

/// `buzz.mint_token` (declared in src/api/relay.rs).
pub(crate) fn mint_token(
    name: Option<&str>,
    scopes: Option<Array<'_, &str>>,
    channel_ids: Option<Array<'_, &str>>,
    ttl: Option<Interval>,
) -> String {
    crate::incident::guard(|| {
        let (ctx, actor) = context::require_actor();
        if ctx.token.is_some() {
            raise(Error::TokenCannotMint);
        }
        let name = name.unwrap_or_default();
        if !(1..=200).contains(&name.chars().count()) {
            raise(Error::NameInvalid);
        }
        let scopes: Vec<&str> = match &scopes {
            None => Vec::new(),
            Some(a) => bounded(a, MAX_SCOPES).unwrap_or_else(|| raise(Error::TokenScopeInvalid)),
        }
        .into_iter()
        .map(Option::unwrap_or_default)
        .collect();
        if scopes.is_empty() || scopes.iter().any(|s| *s != "read" && *s != "write") {
            raise(Error::TokenScopeInvalid);
        }
        let channels = channel_ids.as_ref().map(|c| {
            let c = bounded(c, MAX_TOKEN_CHANNELS).unwrap_or_else(|| raise(Error::ChannelUnknown));
            let names: Vec<&str> = c.into_iter().map(Option::unwrap_or_default).collect();
            usable_channels(ctx.community, &actor, &names)
        });
        // Lifetimes are compared as the expiry timestamps they produce, never as intervals:
        // interval comparison counts a month as 30 days while adding one to a timestamp is
        // calendar arithmetic ('2 months 30 days' compares below 90 days yet can add 92).
        if let Some(t) = ttl {
            if !crate::spi_cache::one::<bool>("SELECT t + $1 > t FROM (SELECT clock_timestamp() AS t) c", &[t.into()])
                .or_raise()
                .unwrap_or(false)
            {
                raise(Error::TtlInvalid);
            }
        }
        let raw: [u8; 32] = super::random_bytes();
        let hash = Sha256::digest(raw).to_vec();
        let expires = crate::spi_cache::one::<String>(
            "WITH ins AS (
                 INSERT INTO buzz.api_tokens (community_id, token_hash, pubkey, name, scopes, channel_limited, expires_at)
                 SELECT $1, $2, $3, $4, $5, $6,
                        least(t.now + coalesce($7, make_interval(secs => $8)), t.now + make_interval(secs => $8))
                   FROM (SELECT clock_timestamp() AS now) t
                 ON CONFLICT (community_id, pubkey, name) DO NOTHING
                 RETURNING expires_at)
             SELECT to_char(expires_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') FROM ins",
            &[
                ctx.community.into(),
                hash.clone().into(),
                actor.as_str().into(),
                name.into(),
                scopes.clone().into(),
                channels.is_some().into(),
                ttl.into(),
                f64::from(gucs::TOKEN_MAX_TTL.get()).into(),
            ],
        )
        .or_raise();
        let expires = expires.unwrap_or_else(|| raise(Error::TokenNameTaken));
        for channel in channels.iter().flatten() {
            crate::spi_cache::run(
                "INSERT INTO buzz.api_token_channels (community_id, token_hash, channel_id) VALUES ($1, $2, $3)",
                &[ctx.community.into(), hash.clone().into(), (*channel).into()],
            )
            .or_raise();
        }
        let detail = json!({"scopes": scopes, "channels": channels.as_ref().map(Vec::len), "expires_at": expires});
        crate::audit::append(ctx.community, None, "token.mint", name, detail);
        format!("{PREFIX}{}", hex::encode(raw))
    })
}

/// `buzz.revoke_token` (declared in src/api/relay.rs).
pub(crate) fn revoke_token(name: Option<&str>) -> bool {
    crate::incident::guard(|| {
        let (ctx, actor) = context::require_actor();
        if ctx.token.is_some() {
            raise(Error::TokenScope);
        }
        let gone = crate::spi_cache::one::<bool>(
            "WITH gone AS (DELETE FROM buzz.api_tokens WHERE community_id = $1 AND pubkey = $2 AND name = $3 RETURNING 1)
             SELECT count(*) > 0 FROM gone",
            &[ctx.community.into(), actor.as_str().into(), name.unwrap_or_default().into()],
        )
        .or_raise()
        .unwrap_or(false);
        if gone {
            crate::audit::append(ctx.community, None, "token.revoke", name.unwrap_or_default(), json!({}));
        }
        gone
    })
}

#[cfg(any(test, feature = "pg_test"))]
#[pgrx::pg_schema]
mod tests {
    #[allow(unused_imports)] // used by the plain #[test]s only
    use super::*;
    use pgrx::prelude::*;
    use crate::test_fixtures::{two_communities, BOB};

    #[test]
    fn only_prefixed_tokens_hash() {
        let raw = "00".repeat(32);
        assert!(token_hash(&format!("{PREFIX}{raw}")).is_some());
        assert!(token_hash(&raw).is_none(), "a session token is not an API token");
        assert!(token_hash(&format!("{PREFIX}zz")).is_none());
    }

    /// Mutation "mint accepts another community's channel": dropping `c.community_id = $1`
    /// from usable_channels lets alpha's minter claim beta's channel (S2; under the extension's
    /// own RLS fence it would still be hidden, so this pins the explicit predicate).
    #[pg_test(error = "restricted: no such channel, or not permitted")]
    fn mint_cannot_claim_another_communitys_channel() {
        let (alpha, beta) = two_communities("mintch");
        let channel = Spi::get_one_with_args::<Uuid>(
            "INSERT INTO buzz.channels (community_id, name, visibility, created_by) VALUES ($1, 'b-open', 'open', $2) RETURNING id",
            &[beta.into(), BOB.into()],
        )
        .unwrap()
        .unwrap();
        assert_eq!(usable_channels(beta, BOB, &[channel.to_string().as_str()]), vec![channel]);
        usable_channels(alpha, BOB, &[channel.to_string().as_str()]);
    }

    /// Mutation: dropping `t.community_id = $1` from grant_for_token accepts beta's token on
    /// alpha (S5).
    #[pg_test]
    fn api_token_is_found_only_in_its_community() {
        let (alpha, beta) = two_communities("apitok");
        let raw = [7u8; 32];
        let token = format!("{PREFIX}{}", hex::encode(raw));
        Spi::run_with_args(
            "INSERT INTO buzz.api_tokens (community_id, token_hash, pubkey, name, scopes, channel_limited, expires_at)
             VALUES ($1, $2, $3, 'bot', '{read}', false, clock_timestamp() + interval '1 hour')",
            &[beta.into(), Sha256::digest(raw).to_vec().into(), BOB.into()],
        )
        .unwrap();
        assert!(grant_for_token(alpha, &token, true).is_none());
        assert_eq!(grant_for_token(beta, &token, true).map(|(pk, g)| (pk, g.read, g.write)), Some((BOB.to_owned(), true, false)));
    }
}
