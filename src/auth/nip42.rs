//! NIP-42: `buzz.auth_challenge()` and `buzz.authenticate(event)`.

use crate::context::{self, Context};
use crate::errors::{Error, OrRaise};
use crate::gucs::{self, CHALLENGE_TTL};
use ::nostr::types::Timestamp;

use crate::nostr::event::{self, Verified};
use crate::nostr::kinds;
use super::{challenge, exactly_one};
use crate::resolve;

/// `buzz.auth_challenge` (declared in src/api/relay.rs). Writes nothing (`challenge`): a
/// connection that never logs in costs the database no row, and a hot standby issues them too.
pub(crate) fn auth_challenge() -> String {
    crate::incident::guard(|| {
        let ctx = context::require();
        match challenge_key() {
            Some(key) => {
                let expires = now_ms() + 1_000 * CHALLENGE_TTL.get() as u64;
                challenge::seal(&key, &ctx.community, expires, super::random_bytes::<16>())
            }
            None => legacy::issue(ctx.community),
        }
    })
}

/// The database's challenge key; None while its SQL is still at 0.2.0 (no key table yet: the
/// library serves the previous version's SQL until `ALTER EXTENSION UPDATE`).
fn challenge_key() -> Option<Vec<u8>> {
    thread_local! {
        /// Set once the key table is known to exist (it never goes away again).
        static HAS_KEY_TABLE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    }
    if !HAS_KEY_TABLE.with(std::cell::Cell::get) {
        let exists = crate::spi_cache::read_one::<bool>("SELECT to_regclass('buzz.challenge_key') IS NOT NULL", &[]).or_raise();
        if exists != Some(true) {
            return None;
        }
        HAS_KEY_TABLE.with(|h| h.set(true));
    }
    let key = crate::spi_cache::read_one::<Vec<u8>>("SELECT key FROM buzz.challenge_key", &[]).or_raise();
    // The table exists but holds no key: someone deleted it. Refuse rather than seal with none.
    Some(key.unwrap_or_else(|| crate::errors::raise(Error::Internal)))
}

/// The wall clock, as `clock_timestamp()` reads it, in Unix milliseconds.
fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
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

/// Consume `challenge` if it is an unused, unexpired challenge of `community`: a challenge
/// issued on another community's host does not open, and one already used finds its row.
pub fn consume_challenge(community: pgrx::Uuid, challenge: &str) -> bool {
    if challenge.len() == legacy::TEXT_LEN {
        return legacy::consume(community, challenge);
    }
    let Some(key) = challenge_key() else { return false };
    let Some(expires) = challenge::open(&key, &community, challenge) else { return false };
    if expires <= now_ms() {
        return false;
    }
    // Used challenges are kept until they expire: the community's expired ones go first.
    crate::spi_cache::run(
        "DELETE FROM buzz.challenges WHERE community_id = $1 AND expires_at <= clock_timestamp()",
        &[community.into()],
    )
    .or_raise();
    // Two logins racing with one challenge: the second waits for the first's row, then finds it.
    crate::spi_cache::one::<bool>(
        "WITH used AS (INSERT INTO buzz.challenges (community_id, challenge, expires_at)
                       VALUES ($1, $2, to_timestamp($3::float8 / 1000))
                       ON CONFLICT DO NOTHING RETURNING 1)
         SELECT count(*) = 1 FROM used",
        &[community.into(), challenge.into(), (expires as f64).into()],
    )
    .or_raise()
    .unwrap_or(false)
}

/// Challenges as 0.2.0 issued them: 64 hex digits, one row each from issue to use. Issued
/// while the database's SQL is still at 0.2.0, and accepted for as long as a backend that
/// still runs the old library may have issued one; they never share a text with the sealed
/// ones (whose used rows live in the same table), so neither can stand in for the other.
mod legacy {
    use crate::errors::OrRaise;
    use crate::gucs::CHALLENGE_TTL;

    pub const TEXT_LEN: usize = 64;

    pub fn issue(community: pgrx::Uuid) -> String {
        let challenge = hex::encode(super::super::random_bytes::<32>());
        crate::spi_cache::run(
            "DELETE FROM buzz.challenges WHERE community_id = $1 AND expires_at <= clock_timestamp()",
            &[community.into()],
        )
        .or_raise();
        crate::spi_cache::run(
            "INSERT INTO buzz.challenges (community_id, challenge, expires_at)
             VALUES ($1, $2, clock_timestamp() + make_interval(secs => $3))",
            &[community.into(), challenge.as_str().into(), f64::from(CHALLENGE_TTL.get()).into()],
        )
        .or_raise();
        challenge
    }

    pub fn consume(community: pgrx::Uuid, challenge: &str) -> bool {
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

    /// A sealed challenge opens only in its community, once, until it expires. Mutations:
    /// "challenge seal ignores community" (beta's challenge passes on alpha), "used challenges
    /// forgotten" (it passes twice), "sealed challenges never expire".
    #[pg_test]
    fn challenge_is_consumed_once_only_in_its_community() {
        let (alpha, beta) = two_communities("chal");
        let key = challenge_key().expect("the key table");
        let c = challenge::seal(&key, &beta, now_ms() + 60_000, [1; 16]);
        assert!(!consume_challenge(alpha, &c));
        assert!(consume_challenge(beta, &c));
        assert!(!consume_challenge(beta, &c), "single use");
        let old = challenge::seal(&key, &beta, now_ms() - 1, [2; 16]);
        assert!(!consume_challenge(beta, &old), "expired");
    }

    /// Mutation "challenge lookup ignores community": dropping `community_id = $1` from the
    /// legacy lookup lets beta's challenge pass on alpha.
    #[pg_test]
    fn legacy_challenge_is_consumed_only_in_its_community() {
        let (alpha, beta) = two_communities("legchal");
        let c = "c1".repeat(32);
        Spi::run_with_args(
            "INSERT INTO buzz.challenges VALUES ($1, $2, clock_timestamp() + interval '1 minute')",
            &[beta.into(), c.as_str().into()],
        )
        .unwrap();
        assert!(!consume_challenge(alpha, &c));
        assert!(consume_challenge(beta, &c));
        assert!(!consume_challenge(beta, &c), "single use");
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
