//! NIP-42: `buzz.auth_challenge()` and `buzz.authenticate(event)`.


use crate::context::{self, Context};
use crate::errors::{Error, OrRaise};
use crate::gucs;
use ::nostr::types::Timestamp;

use crate::nostr::event::{self, Verified};
use crate::nostr::kinds;
use super::exactly_one;
use crate::resolve;

/// `buzz.auth_challenge` (declared in src/api/relay.rs).
pub(crate) fn auth_challenge() -> String {
    crate::incident::guard(|| {
        let ctx = context::require();
        let challenge = hex::encode(super::random_bytes::<32>());
        crate::spi_cache::run(
            "DELETE FROM buzz.challenges WHERE community_id = $1 AND expires_at <= clock_timestamp()",
            &[ctx.community.into()],
        )
        .or_raise();
        crate::spi_cache::run(
            "INSERT INTO buzz.challenges (community_id, challenge, expires_at)
             VALUES ($1, $2, clock_timestamp() + make_interval(secs => $3))",
            &[ctx.community.into(), challenge.as_str().into(), f64::from(gucs::CHALLENGE_TTL.get()).into()],
        )
        .or_raise();
        challenge
    })
}

/// The stateless checks of an auth event for the entered host: kind, id, signature, window,
/// one `relay` tag naming this host, one `challenge` tag. Returns the verified event and its
/// challenge.
fn check_event(ctx: &Context, text: &str, now: Timestamp) -> Result<(Verified, String), Error> {
    let verified = event::verify_with(text, event::of_kind(kinds::AUTH, Error::AuthWrongKind))?;
    let ev = verified.event();
    if ev.created_at.as_secs().abs_diff(now.as_secs()) > gucs::AUTH_WINDOW.get() as u64 {
        return Err(Error::AuthStale);
    }
    let relay = exactly_one(ev.tag_values("relay"), Error::AuthRelayTag)?;
    if resolve::relay_url_host(relay).ok().as_deref() != Some(ctx.host.as_str()) {
        return Err(Error::AuthRelayMismatch);
    }
    let challenge = exactly_one(ev.tag_values("challenge"), Error::AuthChallengeTag)?.to_owned();
    Ok((verified, challenge))
}

/// Consume `challenge` if it is an unused, unexpired challenge of `community`: single use,
/// and a challenge issued on another community's host is simply not found.
pub fn consume_challenge(community: pgrx::Uuid, challenge: &str) -> bool {
    crate::spi_cache::one::<bool>(
        "WITH used AS (DELETE FROM buzz.challenges
                        WHERE community_id = $1 AND challenge = $2 AND expires_at > clock_timestamp()
                        RETURNING 1)
         SELECT count(*) = 1 FROM used",
        &[community.into(), challenge.into()],
    )
    .or_raise()
    .unwrap_or(false)
}

/// `buzz.authenticate` (declared in src/api/relay.rs).
pub(crate) fn authenticate(auth_event: Option<&str>) -> String {
    crate::incident::guard(|| {
        let ctx = context::require();
        let event = auth_event.unwrap_or_else(|| crate::errors::raise(Error::EventMalformed));
        let (verified, challenge) = check_event(&ctx, event, crate::pg::now()).or_raise();
        let pubkey = verified.event().pubkey_hex();

        if !consume_challenge(ctx.community, &challenge) {
            crate::errors::raise(Error::AuthChallenge);
        }

        crate::authorize::admit_authenticated(ctx.community, &pubkey).or_raise();
        super::sessions::mint(ctx.community, &pubkey)
    })
}

/// The explicit community predicates, tested on their own: these tests run as a superuser,
/// for whom RLS does not apply, so only the `community_id = $1` in each query fences them.
#[cfg(any(test, feature = "pg_test"))]
#[pgrx::pg_schema]
mod tests {
    use super::*;
    use pgrx::prelude::*;
    use crate::test_fixtures::{two_communities, BOB};

    /// Mutation: dropping `community_id = $1` from consume_challenge lets beta's challenge
    /// pass on alpha.
    #[pg_test]
    fn challenge_is_consumed_only_in_its_community() {
        let (alpha, beta) = two_communities("chal");
        Spi::run_with_args(
            "INSERT INTO buzz.challenges VALUES ($1, 'c1', clock_timestamp() + interval '1 minute')",
            &[beta.into()],
        )
        .unwrap();
        assert!(!consume_challenge(alpha, "c1"));
        assert!(consume_challenge(beta, "c1"));
        assert!(!consume_challenge(beta, "c1"), "single use");
    }

    /// Mutation: dropping `community_id = $1` from actor_for_token accepts beta's token on
    /// alpha (S5).
    #[pg_test]
    fn token_is_found_only_in_its_community() {
        let (alpha, beta) = two_communities("tok");
        let token = crate::auth::sessions::mint(beta, BOB);
        assert_eq!(crate::auth::sessions::actor_for_token(alpha, &token).unwrap(), None);
        assert_eq!(crate::auth::sessions::actor_for_token(beta, &token).unwrap().as_deref(), Some(BOB));
    }
}
