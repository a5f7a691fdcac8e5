//! `buzz.publish(event)`: raw → parsed → id-checked → signature-checked → authorized → stored.
//! Verification is `nostr::event`'s, authorization `authorize::event`'s: this module receives
//! an [`Authorized`] event, which only `authorize` can build, and stores it.
//! Client faults never raise: they are answered like a NIP-01 `OK` with a catalog message.

use pgrx::datum::Array;
use pgrx::prelude::*;
use pgrx::Uuid;

use crate::authorize::event::{self as authorization, Authorized, Checked};
use crate::context;
use crate::errors::{Error, OrRaise};
use crate::json_args::JsonText;
use crate::nostr::event::{self, Secs};
use crate::nostr::kinds::{self, Class};
use crate::store::delivery;

/// What the client is told on success (NIP-01 `OK` true with an empty message).
const ACCEPTED: &str = "";

/// The whole pipeline; `Ok` means accepted.
fn publish_text(text: &str) -> Result<(), Error> {
    store_checked(check_text(text)?)
}

/// Everything that needs no lock: the context, parsing, the id, the signature and the
/// authorization checks.
fn check_text(text: &str) -> Result<Checked, Error> {
    // Without an authenticated context nothing else is worth checking.
    let ctx = context::current().ok_or(Error::AuthRequired)?;
    if ctx.actor.is_none() {
        return Err(Error::AuthRequired);
    }
    let now = crate::pg::now();
    let verified = event::verify_with(text, |p| authorization::within_limits(p, now))?;
    authorization::check(&ctx, verified, now)
}

/// Position, author lock, storage. What is refused without a lock was refused before the
/// position is taken: a context that may not write this event cannot hold its community's
/// publishers up.
fn store_checked(checked: Checked) -> Result<(), Error> {
    // Before the author lock, in every publisher: see `delivery` (commit order, no deadlock).
    let position = delivery::next_position(checked.community());
    let a = checked.lock()?;
    if a.class() == Class::Ephemeral {
        refuse_deleted(&a)?;
        store_ephemeral(&a, position);
        delivery::notify(a.community());
        return Ok(());
    }
    refuse_deleted(&a)?;
    store(&a, position)?;
    if a.event().kind.as_u16() == kinds::DELETION {
        apply_deletion(&a);
    }
    delivery::notify(a.community());
    Ok(())
}

/// A deleted id (or a version of a deleted coordinate) cannot come back. A deletion is never
/// itself deletable (NIP-09), so tombstones do not apply to kind 5 — in either arrival order.
fn refuse_deleted(a: &Authorized) -> Result<(), Error> {
    let p = a.event();
    if p.kind.as_u16() == kinds::DELETION {
        return Ok(());
    }
    let deleted = crate::spi_cache::one::<bool>(
        "SELECT EXISTS (SELECT 1 FROM buzz.deleted_events
                         WHERE community_id = $1 AND event_id = $2 AND pubkey = $3)
             OR EXISTS (SELECT 1 FROM buzz.deleted_coords
                         WHERE community_id = $1 AND pubkey = $3 AND kind = $4 AND d_tag = $5 AND until >= $6)",
        &[
            a.community().into(),
            p.id_hex().into(),
            p.pubkey_hex().into(),
            i32::from(p.kind.as_u16()).into(),
            a.d_tag().unwrap_or_default().into(),
            p.created_at.secs().into(),
        ],
    )
    .or_raise()
    .unwrap_or(false);
    if deleted { Err(Error::Deleted) } else { Ok(()) }
}

/// The stored JSON: exactly the NIP-01 fields.
fn nip01_json(p: &event::Parsed) -> String {
    serde_json::json!({
        "id": p.id_hex(),
        "pubkey": p.pubkey_hex(),
        "created_at": p.created_at.as_secs(),
        "kind": p.kind.as_u16(),
        "tags": p.tags,
        "content": p.content,
        "sig": hex::encode(p.sig),
    })
    .to_string()
}

/// Single-letter tags, deduplicated, for the tag index.
fn index_tags(p: &event::Parsed) -> (Vec<String>, Vec<String>) {
    let mut pairs: Vec<(String, String)> = p
        .tags
        .iter()
        .filter(|t| t.len() >= 2 && t[0].len() == 1 && t[0].as_bytes()[0].is_ascii_alphabetic())
        .map(|t| (t[0].clone(), t[1].clone()))
        .collect();
    pairs.sort_unstable();
    pairs.dedup();
    pairs.into_iter().unzip()
}

/// Insert the event and its tag rows; false if the id is already stored here (or a
/// concurrent head won the unique index).
fn insert(a: &Authorized, position: i64) -> bool {
    let p = a.event();
    let (names, values) = index_tags(p);
    crate::spi_cache::one::<i64>(
        "WITH ins AS (
             INSERT INTO buzz.events (community_id, id, pubkey, created_at, kind, channel_id, d_tag, expires_at, event, position)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb, $12)
             ON CONFLICT DO NOTHING
             RETURNING id),
         tags AS (
             INSERT INTO buzz.event_tags (community_id, event_id, name, value, created_at)
             SELECT $1, ins.id, t.n, t.v, $4 FROM ins, unnest($10::text[], $11::text[]) AS t(n, v))
         SELECT count(*) FROM ins",
        &[
            a.community().into(),
            p.id_hex().into(),
            p.pubkey_hex().into(),
            p.created_at.secs().into(),
            i32::from(p.kind.as_u16()).into(),
            a.channel().into(),
            a.d_tag().into(),
            a.expires_at().into(),
            nip01_json(p).into(),
            names.into(),
            values.into(),
            position.into(),
        ],
    )
    .or_raise()
    .unwrap_or(0)
        == 1
}

/// Regular events: one row per id. Replaceable/addressable: one head per coordinate; the
/// newest `created_at` wins, ties go to the lowest id, older versions are not stored.
fn store(a: &Authorized, position: i64) -> Result<(), Error> {
    let Some(d_tag) = a.d_tag() else {
        return if insert(a, position) { Ok(()) } else { Err(Error::Duplicate) };
    };
    let p = a.event();
    let id = p.id_hex();
    // A concurrent publisher can win the head between our look and our insert; then we look
    // again (its row is committed or we wait on its lock).
    for _ in 0..3 {
        let head = crate::spi_cache::two::<String, i64>(
            "SELECT id, created_at FROM buzz.events
              WHERE community_id = $1 AND pubkey = $2 AND kind = $3 AND d_tag = $4
              FOR UPDATE",
            &[a.community().into(), p.pubkey_hex().into(), i32::from(p.kind.as_u16()).into(), d_tag.into()],
        );
        match head.or_raise() {
            (Some(old_id), Some(old_at)) => {
                if old_id == id {
                    return Err(Error::Duplicate);
                }
                let newer = p.created_at.secs() > old_at || (p.created_at.secs() == old_at && id < old_id);
                if !newer {
                    return Err(Error::Superseded);
                }
                crate::spi_cache::run(
                    "DELETE FROM buzz.events WHERE community_id = $1 AND id = $2",
                    &[a.community().into(), old_id.into()],
                )
                .or_raise();
                return if insert(a, position) { Ok(()) } else { Err(Error::Duplicate) };
            }
            _ => {
                if insert(a, position) {
                    return Ok(());
                }
                if id_stored(a.community(), &id) {
                    return Err(Error::Duplicate);
                }
            }
        }
    }
    Err(Error::Superseded)
}

/// Ephemeral: kept only for live delivery, and the community's expired ones purged. The same
/// id twice is delivered once.
fn store_ephemeral(a: &Authorized, position: i64) {
    let p = a.event();
    crate::spi_cache::run(
        "WITH purge AS (DELETE FROM buzz.ephemeral_events
                         WHERE community_id = $1 AND stored_at < clock_timestamp() - make_interval(secs => $2))
         INSERT INTO buzz.ephemeral_events (community_id, position, id, pubkey, created_at, kind, channel_id, expires_at, event)
         VALUES ($1, $3, $4, $5, $6, $7, $8, $10, $9::jsonb)
         ON CONFLICT DO NOTHING",
        &[
            a.community().into(),
            f64::from(crate::gucs::EPHEMERAL_RETENTION.get()).into(),
            position.into(),
            p.id_hex().into(),
            p.pubkey_hex().into(),
            p.created_at.secs().into(),
            i32::from(p.kind.as_u16()).into(),
            a.channel().into(),
            nip01_json(p).into(),
            a.expires_at().into(),
        ],
    )
    .or_raise();
}

fn id_stored(community: Uuid, id: &str) -> bool {
    crate::spi_cache::one::<bool>(
        "SELECT EXISTS (SELECT 1 FROM buzz.events WHERE community_id = $1 AND id = $2)",
        &[community.into(), id.into()],
    )
    .or_raise()
    .unwrap_or(false)
}

/// NIP-09: a kind 5 deletes its author's own events (`e`) and coordinates (`a`, only with the
/// author's pubkey) in this community, and leaves tombstones so they cannot come back.
fn apply_deletion(a: &Authorized) {
    let p = a.event();
    let author = p.pubkey_hex();
    let ids: Vec<String> = p
        .tag_values("e")
        .filter(|v| v.len() == 64 && v.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
        .map(str::to_owned)
        .collect();
    if !ids.is_empty() {
        crate::spi_cache::run(
            "WITH t AS (INSERT INTO buzz.deleted_events (community_id, pubkey, event_id)
                        SELECT $1, $2, unnest($3::text[]) ON CONFLICT DO NOTHING),
                  x AS (DELETE FROM buzz.ephemeral_events WHERE community_id = $1 AND pubkey = $2 AND id = ANY($3))
             DELETE FROM buzz.events WHERE community_id = $1 AND pubkey = $2 AND id = ANY($3) AND kind <> 5",
            &[a.community().into(), author.as_str().into(), ids.into()],
        )
        .or_raise();
    }
    for coord in p.tag_values("a") {
        let mut parts = coord.splitn(3, ':');
        let (Some(kind), Some(pubkey), d) = (parts.next(), parts.next(), parts.next().unwrap_or("")) else { continue };
        let Ok(kind) = kind.parse::<u16>() else { continue };
        if pubkey != author || !matches!(kinds::class(kind), Class::Replaceable | Class::Addressable) {
            continue;
        }
        let d = if kinds::class(kind) == Class::Replaceable { "" } else { d };
        crate::spi_cache::run(
            "WITH t AS (INSERT INTO buzz.deleted_coords (community_id, pubkey, kind, d_tag, until)
                        VALUES ($1, $2, $3, $4, $5)
                        ON CONFLICT (community_id, pubkey, kind, d_tag)
                        DO UPDATE SET until = greatest(buzz.deleted_coords.until, EXCLUDED.until))
             DELETE FROM buzz.events
              WHERE community_id = $1 AND pubkey = $2 AND kind = $3 AND d_tag = $4 AND created_at <= $5",
            &[a.community().into(), author.as_str().into(), i32::from(kind).into(), d.into(), p.created_at.secs().into()],
        )
        .or_raise();
    }
}

fn answer(result: Result<(), Error>) -> TableIterator<'static, (name!(accepted, bool), name!(message, &'static str))> {
    TableIterator::once(outcome(result))
}

/// At most this many events in one batch call: it bounds what one statement holds the
/// community's delivery position for (each event takes its turn in commit order).
pub const MAX_BATCH: usize = 256;

/// One row of a batch answer: the event's place in the array (from 1), then `OK`'s fields.
type BatchRow = (name!(n, i32), name!(accepted, bool), name!(message, &'static str));

/// `buzz.publish(events text[])` (declared in src/api/relay.rs): each event exactly as
/// `publish(text)` would take it, in order, each answered on its own row. A refused event
/// does not stop the others (client faults never raise); a database error fails the call,
/// like any statement.
pub(crate) fn publish_batch(events: Option<Array<'_, &str>>) -> TableIterator<'static, BatchRow> {
    crate::incident::guard(|| TableIterator::new(publish_each(events)))
}

/// `buzz.publish(host, credential, events text[])` (declared in src/api/relay.rs): `enter(host,
/// credential)` and the batch in one statement, so that a relay in autocommit publishes in
/// one round trip. The community is the host's, resolved here as `enter` resolves it.
pub(crate) fn publish_entered(host: Option<&str>, credential: Option<&str>, events: Option<Array<'_, &str>>) -> TableIterator<'static, BatchRow> {
    crate::incident::guard(|| {
        crate::enter::enter_session(host, credential);
        TableIterator::new(publish_each(events))
    })
}

fn publish_each(events: Option<Array<'_, &str>>) -> Vec<(i32, bool, &'static str)> {
    let events = match &events {
        None => Vec::new(),
        Some(a) => crate::text_arrays::bounded(a, MAX_BATCH).unwrap_or_else(|| crate::errors::raise(Error::TooManyEvents)),
    };
    // Every event is parsed, verified and checked before the first takes the community's
    // position (held to the end of the transaction): the signatures of a whole batch are not
    // checked while other publishers of the community wait.
    let checked: Vec<Result<Checked, Error>> =
        events.iter().map(|e| e.ok_or(Error::EventMalformed).and_then(check_text)).collect();
    checked
        .into_iter()
        .enumerate()
        .map(|(i, c)| {
            let (accepted, message) = outcome(c.and_then(store_checked));
            (i as i32 + 1, accepted, message)
        })
        .collect()
}

fn outcome(result: Result<(), Error>) -> (bool, &'static str) {
    match result {
        Ok(()) => (true, ACCEPTED),
        Err(e) => (false, e.message()),
    }
}

/// `buzz.publish` (declared in src/api/relay.rs).
pub(crate) fn publish_sql(event: Option<&str>) -> TableIterator<'static, (name!(accepted, bool), name!(message, &'static str))> {
    crate::incident::guard(|| {
        answer(event.ok_or(Error::EventMalformed).and_then(publish_text))
    })
}

/// `buzz.publish` (declared in src/api/relay.rs).
pub(crate) fn publish_json(event: Option<JsonText>) -> TableIterator<'static, (name!(accepted, bool), name!(message, &'static str))> {
    crate::incident::guard(|| {
        answer(match event {
            None => Err(Error::EventMalformed),
            // Refused unread, in the order publish_text answers: no context first.
            Some(JsonText(None)) => match context::current() {
                Some(ctx) if ctx.actor.is_some() => Err(Error::EventTooLarge),
                _ => Err(Error::AuthRequired),
            },
            Some(JsonText(Some(text))) => publish_text(&text),
        })
    })
}
