//! NIP-42: `buzz.auth_challenge()` and `buzz.authenticate(event)`.

use std::time::{SystemTime, UNIX_EPOCH};

use pgrx::prelude::*;

use crate::context::{self, Context};
use crate::errors::{Error, OrRaise};
use crate::gucs;
use crate::nostr::event::{self, Verified};
use crate::resolve;

pub const AUTH_KIND: u16 = 22242;

/// `buzz.auth_challenge()`: a fresh single-use challenge (32 random bytes, hex) bound to the
/// entered community, expiring after `buzz.challenge_ttl` seconds.
#[pg_extern(volatile, parallel_unsafe, security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn auth_challenge() -> String {
    let ctx = context::require();
    let challenge = hex::encode(super::random_bytes::<32>());
    Spi::run_with_args(
        "DELETE FROM buzz.challenges WHERE community_id = $1 AND expires_at <= now()",
        &[ctx.community.into()],
    )
    .or_raise();
    Spi::run_with_args(
        "INSERT INTO buzz.challenges (community_id, challenge, expires_at)
         VALUES ($1, $2, now() + make_interval(secs => $3))",
        &[ctx.community.into(), challenge.as_str().into(), f64::from(gucs::CHALLENGE_TTL.get()).into()],
    )
    .or_raise();
    challenge
}

fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

fn exactly_one<'a>(mut values: impl Iterator<Item = &'a str>, err: Error) -> Result<&'a str, Error> {
    match (values.next(), values.next()) {
        (Some(v), None) => Ok(v),
        _ => Err(err),
    }
}

/// The stateless checks of an auth event for the entered host: kind, id, signature, window,
/// one `relay` tag naming this host, one `challenge` tag. Returns the verified event and its
/// challenge.
fn check_event(ctx: &Context, text: &str, now: u64) -> Result<(Verified, String), Error> {
    let parsed = event::parse(text)?;
    if parsed.kind != AUTH_KIND {
        return Err(Error::AuthWrongKind);
    }
    let verified = parsed.check_id()?.check_sig()?;
    let ev = verified.event();
    if ev.created_at.abs_diff(now) > gucs::AUTH_WINDOW.get() as u64 {
        return Err(Error::AuthStale);
    }
    let relay = exactly_one(ev.tag_values("relay"), Error::AuthRelayTag)?;
    if resolve::relay_url_host(relay).ok().as_deref() != Some(ctx.host.as_str()) {
        return Err(Error::AuthRelayMismatch);
    }
    let challenge = exactly_one(ev.tag_values("challenge"), Error::AuthChallengeTag)?.to_owned();
    Ok((verified, challenge))
}

/// `buzz.authenticate(auth_event)`: verify a NIP-42 event for the entered host and return a
/// session token for use with `buzz.enter(host, token)`.
#[pg_extern(volatile, parallel_unsafe, security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn authenticate(auth_event: &str) -> String {
    let ctx = context::require();
    let (verified, challenge) = check_event(&ctx, auth_event, now_secs()).or_raise();
    let pubkey = verified.event().pubkey_hex();

    // Consume the challenge: single use, this community only, unexpired.
    let consumed = Spi::get_one_with_args::<bool>(
        "WITH used AS (DELETE FROM buzz.challenges
                        WHERE community_id = $1 AND challenge = $2 AND expires_at > now()
                        RETURNING 1)
         SELECT count(*) = 1 FROM used",
        &[ctx.community.into(), challenge.as_str().into()],
    )
    .or_raise()
    .unwrap_or(false);
    if !consumed {
        crate::errors::raise(Error::AuthChallenge);
    }

    crate::authorize::admit_authenticated(ctx.community, &pubkey).or_raise();
    super::sessions::mint(ctx.community, &pubkey)
}
