//! NIP-98 HTTP auth: `buzz.enter_http(host, method, url, auth_event, body_sha256)` and the
//! cluster-wide seen-set that makes an auth event single-use across every relay replica (P3).
//!
//! The stateless checks (kind 27235, NIP-01 id, BIP-340 signature, `created_at` within
//! `buzz_tenancy.http_auth_window`, exactly one `u` tag equal to the request URL with its host equal
//! to the entered host, exactly one `method` tag, and with a body hash exactly one matching
//! `payload` tag — DESIGN §12.17) run before the claim. The claim is an
//! `INSERT … ON CONFLICT DO NOTHING` into `buzz.http_seen`, keyed `(community_id, event_id)`,
//! in the request's transaction: a second presentation — from any connection of any replica
//! sharing the database — finds the row (or waits on the first claim's lock and then finds it)
//! and is refused. Entries are kept until twice the window has passed; `buzz.purge_http_seen()`
//! removes older ones. A read-only transaction or a standby cannot record the claim, so no
//! context is established there (§12.9).

use pgrx::prelude::*;

use crate::context::{self, Context};
use crate::errors::{raise, Error, OrRaise};
use crate::gucs;
use crate::nostr::event::{self, Verified};
use crate::nostr::kinds;
use ::nostr::types::Timestamp;
use sha2::{Digest, Sha256};
use super::exactly_one;
use crate::resolve::normalize_host;

/// An absolute http(s) URL split as NIP-98 compares it: scheme and authority case-folded,
/// the rest (path, query) byte for byte. Userinfo and fragments are refused.
#[derive(Debug, PartialEq, Eq)]
struct HttpUrl {
    scheme: String,
    authority: String,
    rest: String,
}

fn parse_url(url: &str) -> Option<HttpUrl> {
    let (scheme, after) = url.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    if scheme != "http" && scheme != "https" {
        return None;
    }
    let cut = after.find(['/', '?']).unwrap_or(after.len());
    let (authority, rest) = after.split_at(cut);
    if authority.is_empty() || authority.contains('@') || url.contains('#') {
        return None;
    }
    let rest = if rest.is_empty() { "/" } else { rest };
    Some(HttpUrl { scheme, authority: authority.to_ascii_lowercase(), rest: rest.to_owned() })
}

/// The request as the relay saw it.
pub struct Request<'a> {
    pub method: &'a str,
    pub url: &'a str,
    pub body_sha256: Option<&'a str>,
}

/// The stateless checks of a NIP-98 event for `req` on the entered host.
fn check_event(ctx: &Context, text: &str, req: &Request<'_>, now: Timestamp) -> Result<Verified, Error> {
    let verified = event::verify_with(text, event::of_kind(kinds::HTTP_AUTH, Error::HttpWrongKind))?;
    let ev = verified.event();
    if ev.created_at.as_secs().abs_diff(now.as_secs()) > gucs::HTTP_AUTH_WINDOW.get() as u64 {
        return Err(Error::HttpStale);
    }
    let u = exactly_one(ev.tag_values("u"), Error::HttpUrlTag)?;
    let signed = parse_url(u).ok_or(Error::HttpUrlMismatch)?;
    let requested = parse_url(req.url).ok_or(Error::HttpUrlMismatch)?;
    if signed != requested || normalize_host(&signed.authority).ok().as_deref() != Some(ctx.host.as_str()) {
        return Err(Error::HttpUrlMismatch);
    }
    let method = exactly_one(ev.tag_values("method"), Error::HttpMethodTag)?;
    if !method.eq_ignore_ascii_case(req.method) {
        return Err(Error::HttpMethodMismatch);
    }
    if let Some(body) = req.body_sha256 {
        let payload = exactly_one(ev.tag_values("payload"), Error::HttpPayloadMismatch)?;
        if !payload.eq_ignore_ascii_case(body) {
            return Err(Error::HttpPayloadMismatch);
        }
    }
    Ok(verified)
}

/// Record `event_id` as used in `community`; false if it already was (or a concurrent
/// transaction that claimed it committed first).
fn claim(community: pgrx::Uuid, event_id: &str) -> bool {
    crate::spi_cache::one::<bool>(
        "WITH claimed AS (
             INSERT INTO buzz.http_seen (community_id, event_id, expires_at)
             VALUES ($1, $2, clock_timestamp() + make_interval(secs => 2 * $3))
             ON CONFLICT (community_id, event_id) DO NOTHING RETURNING 1)
         SELECT count(*) = 1 FROM claimed",
        &[community.into(), event_id.into(), f64::from(gucs::HTTP_AUTH_WINDOW.get()).into()],
    )
    .or_raise()
    .unwrap_or(false)
}

/// A claim (or a nonce's use) must be recordable: never hand out a context in a read-only
/// transaction or on a standby, where it could not be consumed (§12.9).
fn refuse_unrecordable() {
    if crate::pg::read_only() {
        raise(Error::HttpReadOnly);
    }
}

/// Enter `host`, check `auth_event` for `req`, claim it and check the signer's admission;
/// returns the signer. Refused where the claim could not be recorded.
fn verify_and_claim(host: Option<&str>, req: &Request<'_>, auth_event: Option<&str>) -> (Context, String) {
    refuse_unrecordable();
    // Anonymous first, so the claim and the admission check run under the fence.
    crate::enter::enter_host(host);
    let ctx = context::require();
    let event = auth_event.unwrap_or_else(|| raise(Error::EventMalformed));
    let verified = check_event(&ctx, event, req, crate::pg::now()).or_raise();
    if !claim(ctx.community, &verified.event().id_hex()) {
        raise(Error::HttpReplay);
    }
    let pubkey = verified.event().pubkey_hex();
    crate::authorize::admit_authenticated(ctx.community, &pubkey).or_raise();
    (ctx, pubkey)
}

/// `buzz.enter_http` (declared in src/api/relay.rs).
pub(crate) fn enter_http(
    host: Option<&str>,
    method: Option<&str>,
    url: Option<&str>,
    auth_event: Option<&str>,
    body_sha256: Option<&str>,
) {
    crate::incident::guard(|| {
        let req = Request { method: method.unwrap_or(""), url: url.unwrap_or(""), body_sha256 };
        let (_, pubkey) = verify_and_claim(host, &req, auth_event);
        crate::enter::set_actor(pubkey);
    })
}

pub const NONCE_PREFIX: &str = "buzz_http_";

fn nonce_hash(nonce: &str) -> Option<Vec<u8>> {
    let raw: [u8; 32] = hex::decode(nonce.strip_prefix(NONCE_PREFIX)?).ok()?.try_into().ok()?;
    Some(Sha256::digest(raw).to_vec())
}

/// `buzz.claim_http` (declared in src/api/relay.rs).
pub(crate) fn claim_http(
    host: Option<&str>,
    method: Option<&str>,
    url: Option<&str>,
    auth_event: Option<&str>,
    body_sha256: Option<&str>,
) -> String {
    crate::incident::guard(|| {
        if crate::pg::in_transaction_block() {
            raise(Error::HttpClaimInTransaction);
        }
        let req = Request { method: method.unwrap_or(""), url: url.unwrap_or(""), body_sha256 };
        let (ctx, pubkey) = verify_and_claim(host, &req, auth_event);
        let raw: [u8; 32] = super::random_bytes();
        crate::spi_cache::run(
            "INSERT INTO buzz.http_nonces (community_id, nonce_hash, pubkey, expires_at)
             VALUES ($1, $2, $3, clock_timestamp() + make_interval(secs => $4))",
            &[ctx.community.into(), Sha256::digest(raw).to_vec().into(), pubkey.as_str().into(),
              f64::from(gucs::HTTP_AUTH_WINDOW.get()).into()],
        )
        .or_raise();
        format!("{NONCE_PREFIX}{}", hex::encode(raw))
    })
}

/// `buzz.enter_http` (declared in src/api/relay.rs).
pub(crate) fn enter_http_nonce(host: Option<&str>, nonce: Option<&str>) {
    crate::incident::guard(|| {
        refuse_unrecordable();
        crate::enter::enter_host(host);
        let ctx = context::require();
        let hash = nonce.and_then(nonce_hash).unwrap_or_else(|| raise(Error::SessionInvalid));
        let pubkey = crate::spi_cache::one::<String>(
            "DELETE FROM buzz.http_nonces n
              USING buzz.members m
              WHERE n.community_id = $1 AND n.nonce_hash = $2 AND n.expires_at > clock_timestamp()
                AND n.claim_xact <> pg_current_xact_id()
                AND m.community_id = n.community_id AND m.pubkey = n.pubkey
             RETURNING n.pubkey",
            &[ctx.community.into(), hash.into()],
        )
        .or_raise()
        .unwrap_or_else(|| raise(Error::SessionInvalid));
        crate::enter::set_actor(pubkey);
    })
}

/// `buzz.purge_http_seen` (declared in src/api/operator.rs).
pub(crate) fn purge_http_seen() -> i64 {
    let communities: Vec<pgrx::Uuid> = Spi::connect(|c| {
        c.select("SELECT id FROM buzz.communities", None, &[])?
            .map(|row| row.get::<pgrx::Uuid>(1))
            .collect::<Result<Vec<_>, _>>()
            .map(|v| v.into_iter().flatten().collect())
    })
    .or_raise();
    communities
        .into_iter()
        .map(|community| {
            crate::enter::with_operator_scope(community, || {
                crate::spi_cache::one::<i64>(
                    "WITH gone AS (DELETE FROM buzz.http_seen WHERE community_id = $1 AND expires_at <= clock_timestamp() RETURNING 1),
                          used AS (DELETE FROM buzz.http_nonces WHERE community_id = $1 AND expires_at <= clock_timestamp())
                     SELECT count(*) FROM gone",
                    &[community.into()],
                )
                .or_raise()
                .unwrap_or(0)
            })
        })
        .sum()
}

#[cfg(any(test, feature = "pg_test"))]
#[pg_schema]
mod tests {
    #[allow(unused_imports)] // used by the plain #[test]s only
    use super::*;
    use crate::test_fixtures::two_communities;

    #[test]
    fn urls_compare_scheme_and_host_case_insensitively_and_the_rest_exactly() {
        let a = parse_url("HTTPS://Relay.Example/api/v1?x=1").unwrap();
        assert_eq!(a, parse_url("https://relay.example/api/v1?x=1").unwrap());
        assert_ne!(a, parse_url("https://relay.example/API/v1?x=1").unwrap());
        assert_ne!(a, parse_url("http://relay.example/api/v1?x=1").unwrap());
        assert_eq!(parse_url("https://relay.example").unwrap(), parse_url("https://relay.example/").unwrap());
        assert!(parse_url("https://user@relay.example/").is_none());
        assert!(parse_url("https://relay.example/#frag").is_none());
        assert!(parse_url("ftp://relay.example/").is_none());
        assert!(parse_url("relay.example/").is_none());
    }

    /// Mutation: keying the seen-set claim by event id only (dropping community_id from the
    /// key) makes beta's claim of the same id fail after alpha's.
    #[pg_test]
    fn seen_set_is_per_community() {
        let (alpha, beta) = two_communities("seen");
        assert!(claim(alpha, "e1"));
        assert!(!claim(alpha, "e1"), "single use");
        assert!(claim(beta, "e1"), "another community's claim is its own");
    }
}
