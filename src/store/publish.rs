//! `buzz.publish(event)`: raw → parsed → id-checked → signature-checked → authorized → stored.
//! Only an [`Authorized`] event (which can only be built from a `Verified` one) reaches storage.
//! Client faults never raise: they are answered like a NIP-01 `OK` with a catalog message.

use pgrx::prelude::*;
use pgrx::Uuid;

use super::kinds::{self, Class};
use super::now_secs;
use crate::context;
use crate::errors::{Error, OrRaise};
use crate::gucs;
use crate::json_args::JsonText;
use crate::nostr::event::{self, Verified};

/// A verified event cleared for the entered community, with its storage projections.
struct Authorized {
    ev: Verified,
    community: Uuid,
    channel: Option<Uuid>,
    class: Class,
    d_tag: Option<String>,
    expires_at: Option<i64>,
}

/// What the client is told on success (NIP-01 `OK` true with an empty message).
const ACCEPTED: &str = "";

fn tag_limits(p: &event::Parsed) -> Result<(), Error> {
    if p.tags.len() > gucs::MAX_TAGS.get() as usize {
        return Err(Error::TooManyTags);
    }
    let max = gucs::MAX_TAG_LENGTH.get() as usize;
    if p.tags.iter().flatten().any(|t| t.len() > max) {
        return Err(Error::TagTooLong);
    }
    if p.created_at > (now_secs() + i64::from(gucs::MAX_FUTURE.get())) as u64 {
        return Err(Error::TooFarInFuture);
    }
    Ok(())
}

/// The `h` fence: at most one distinct channel, and it must be a channel of *this* community
/// the actor may post in. Unknown, foreign, malformed and forbidden channels are answered
/// identically. Runs before any lookup that could reveal another community's event.
fn channel_for(community: Uuid, actor: &str, p: &event::Parsed) -> Result<Option<Uuid>, Error> {
    let mut values: Vec<&str> = p.tag_values("h").collect();
    values.sort_unstable();
    values.dedup();
    let value = match values.as_slice() {
        [] => return Ok(None),
        [one] => *one,
        _ => return Err(Error::ChannelAmbiguous),
    };
    let channel = context::parse_uuid(value).ok_or(Error::ChannelUnknown)?;
    if crate::authorize::may_use_channel(community, channel, actor) { Ok(Some(channel)) } else { Err(Error::ChannelUnknown) }
}

/// Check the author is a member and lock their membership row: KEY SHARE for ordinary events,
/// UPDATE for a deletion. A deletion and a publish by the same author therefore never overlap:
/// whichever commits second sees the other (the tombstone, or the event to delete) in its next
/// statement. Row locks, not advisory locks, so nothing one tenant does can block another.
fn lock_author(community: Uuid, pubkey: &str, deletion: bool) -> bool {
    let sql = if deletion {
        "SELECT true FROM buzz.members WHERE community_id = $1 AND pubkey = $2 FOR UPDATE"
    } else {
        "SELECT true FROM buzz.members WHERE community_id = $1 AND pubkey = $2 FOR KEY SHARE"
    };
    crate::spi_cache::one::<bool>(sql, &[community.into(), pubkey.into()]).or_raise().unwrap_or(false)
}

/// NIP-40 expiration (`["expiration", "<unix seconds>"]`), refused if already past.
fn expiration(p: &event::Parsed) -> Result<Option<i64>, Error> {
    let Some(v) = p.tag_values("expiration").next() else { return Ok(None) };
    let at: i64 = v.parse().map_err(|_| Error::ExpirationInvalid)?;
    if at <= now_secs() { Err(Error::Expired) } else { Ok(Some(at)) }
}

/// Every check between a verified event and storage, for `actor` in `community`.
fn authorize(community: Uuid, actor: &str, ev: Verified) -> Result<Authorized, Error> {
    let p = ev.event();
    if p.kind == crate::auth::nip42::AUTH_KIND {
        return Err(Error::AuthKindRefused);
    }
    let system = kinds::is_system(p.kind);
    if system {
        // Community-signed system events (S3): the key is the entered community's, looked up
        // from the context; the submitting actor need not be its holder. No channel.
        if crate::member_list::signing_key(community).as_deref() != Some(p.pubkey_hex().as_str()) {
            return Err(Error::SystemEventForeignKey);
        }
        if p.tag_values("h").next().is_some() {
            return Err(Error::ChannelUnknown);
        }
    } else if p.pubkey_hex() != actor {
        return Err(Error::WrongAuthor);
    }
    if !lock_author(community, actor, p.kind == kinds::DELETION) {
        return Err(Error::NotMember);
    }
    let channel = if system { None } else { channel_for(community, actor, p)? };
    let expires_at = expiration(p)?;
    let class = kinds::class(p.kind);
    let d_tag = match class {
        Class::Replaceable => Some(String::new()),
        Class::Addressable => Some(p.tag_values("d").next().unwrap_or("").to_owned()),
        Class::Regular | Class::Ephemeral => None,
    };
    Ok(Authorized { community, channel, class, d_tag, expires_at, ev })
}

/// The whole pipeline; `Ok` means accepted.
fn publish_text(text: &str) -> Result<(), Error> {
    // Without an authenticated context nothing else is worth checking.
    let ctx = context::current().ok_or(Error::AuthRequired)?;
    let actor = ctx.actor.ok_or(Error::AuthRequired)?;
    let parsed = event::parse(text)?;
    tag_limits(&parsed)?;
    let verified = parsed.check_id()?.check_sig()?;
    let a = authorize(ctx.community, &actor, verified)?;
    if let Some(t) = &ctx.token {
        // An API token's scope and channel claims (S6): no write scope, or a channel (or no
        // channel) outside its claims, and nothing is stored.
        // Deletions and replaceable/addressable versions act on the author's events in every
        // channel, so a token limited to channels may not publish them.
        let spans_channels = a.ev.event().kind == kinds::DELETION || matches!(a.class, Class::Replaceable | Class::Addressable);
        let allowed = t.write
            && t.channels.as_ref().is_none_or(|c| !spans_channels && a.channel.is_some_and(|ch| c.contains(&ch)));
        if !allowed {
            return Err(Error::TokenScope);
        }
    }
    if a.class == Class::Ephemeral {
        return Ok(());
    }
    refuse_deleted(&a)?;
    store(&a)?;
    if a.ev.event().kind == kinds::DELETION {
        apply_deletion(&a);
    }
    Ok(())
}

/// A deleted id (or a version of a deleted coordinate) cannot come back. A deletion is never
/// itself deletable (NIP-09), so tombstones do not apply to kind 5 — in either arrival order.
fn refuse_deleted(a: &Authorized) -> Result<(), Error> {
    let p = a.ev.event();
    if p.kind == kinds::DELETION {
        return Ok(());
    }
    let deleted = crate::spi_cache::one::<bool>(
        "SELECT EXISTS (SELECT 1 FROM buzz.deleted_events
                         WHERE community_id = $1 AND event_id = $2 AND pubkey = $3)
             OR EXISTS (SELECT 1 FROM buzz.deleted_coords
                         WHERE community_id = $1 AND pubkey = $3 AND kind = $4 AND d_tag = $5 AND until >= $6)",
        &[
            a.community.into(),
            hex::encode(p.id).into(),
            p.pubkey_hex().into(),
            i32::from(p.kind).into(),
            a.d_tag.clone().unwrap_or_default().into(),
            (p.created_at as i64).into(),
        ],
    )
    .or_raise()
    .unwrap_or(false);
    if deleted { Err(Error::Deleted) } else { Ok(()) }
}

/// The stored JSON: exactly the NIP-01 fields.
fn nip01_json(p: &event::Parsed) -> String {
    serde_json::json!({
        "id": hex::encode(p.id),
        "pubkey": p.pubkey_hex(),
        "created_at": p.created_at,
        "kind": p.kind,
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
fn insert(a: &Authorized) -> bool {
    let p = a.ev.event();
    let (names, values) = index_tags(p);
    crate::spi_cache::one::<i64>(
        "WITH ins AS (
             INSERT INTO buzz.events (community_id, id, pubkey, created_at, kind, channel_id, d_tag, expires_at, event)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb)
             ON CONFLICT DO NOTHING
             RETURNING id),
         tags AS (
             INSERT INTO buzz.event_tags (community_id, event_id, name, value, created_at)
             SELECT $1, ins.id, t.n, t.v, $4 FROM ins, unnest($10::text[], $11::text[]) AS t(n, v))
         SELECT count(*) FROM ins",
        &[
            a.community.into(),
            hex::encode(p.id).into(),
            p.pubkey_hex().into(),
            (p.created_at as i64).into(),
            i32::from(p.kind).into(),
            a.channel.into(),
            a.d_tag.clone().into(),
            a.expires_at.into(),
            nip01_json(p).into(),
            names.into(),
            values.into(),
        ],
    )
    .or_raise()
    .unwrap_or(0)
        == 1
}

/// Regular events: one row per id. Replaceable/addressable: one head per coordinate; the
/// newest `created_at` wins, ties go to the lowest id, older versions are not stored.
fn store(a: &Authorized) -> Result<(), Error> {
    let Some(d_tag) = &a.d_tag else {
        return if insert(a) { Ok(()) } else { Err(Error::Duplicate) };
    };
    let p = a.ev.event();
    let id = hex::encode(p.id);
    // A concurrent publisher can win the head between our look and our insert; then we look
    // again (its row is committed or we wait on its lock).
    for _ in 0..3 {
        let head = crate::spi_cache::two::<String, i64>(
            "SELECT id, created_at FROM buzz.events
              WHERE community_id = $1 AND pubkey = $2 AND kind = $3 AND d_tag = $4
              FOR UPDATE",
            &[a.community.into(), p.pubkey_hex().into(), i32::from(p.kind).into(), d_tag.as_str().into()],
        );
        match head.or_raise() {
            (Some(old_id), Some(old_at)) => {
                if old_id == id {
                    return Err(Error::Duplicate);
                }
                let newer = (p.created_at as i64) > old_at || ((p.created_at as i64) == old_at && id < old_id);
                if !newer {
                    return Err(Error::Superseded);
                }
                crate::spi_cache::run(
                    "DELETE FROM buzz.events WHERE community_id = $1 AND id = $2",
                    &[a.community.into(), old_id.into()],
                )
                .or_raise();
                return if insert(a) { Ok(()) } else { Err(Error::Duplicate) };
            }
            _ => {
                if insert(a) {
                    return Ok(());
                }
                if id_stored(a.community, &id) {
                    return Err(Error::Duplicate);
                }
            }
        }
    }
    Err(Error::Superseded)
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
    let p = a.ev.event();
    let author = p.pubkey_hex();
    let ids: Vec<String> = p
        .tag_values("e")
        .filter(|v| v.len() == 64 && v.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
        .map(str::to_owned)
        .collect();
    if !ids.is_empty() {
        crate::spi_cache::run(
            "WITH t AS (INSERT INTO buzz.deleted_events (community_id, pubkey, event_id)
                        SELECT $1, $2, unnest($3::text[]) ON CONFLICT DO NOTHING)
             DELETE FROM buzz.events WHERE community_id = $1 AND pubkey = $2 AND id = ANY($3) AND kind <> 5",
            &[a.community.into(), author.as_str().into(), ids.into()],
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
            &[a.community.into(), author.as_str().into(), i32::from(kind).into(), d.into(), (p.created_at as i64).into()],
        )
        .or_raise();
    }
}

fn answer(result: Result<(), Error>) -> TableIterator<'static, (name!(accepted, bool), name!(message, &'static str))> {
    let row = match result {
        Ok(()) => (true, ACCEPTED),
        Err(e) => (false, e.message()),
    };
    TableIterator::once(row)
}

/// `buzz.publish` (declared in src/api/relay.rs).
pub(crate) fn publish_sql(event: Option<&str>) -> TableIterator<'static, (name!(accepted, bool), name!(message, &'static str))> {
    crate::incident::guard(|| {
        answer(event.ok_or(Error::EventMalformed).and_then(publish_text))
    })
}

/// `buzz.publish` (declared in src/api/relay.rs).
pub(crate) fn publish_json(event: Option<JsonText>) -> TableIterator<'static, (name!(accepted, bool), name!(message, &'static str))> {
    crate::incident::guard(|| answer(event.as_ref().map(|j| j.0.as_str()).ok_or(Error::EventMalformed).and_then(publish_text)))
}
