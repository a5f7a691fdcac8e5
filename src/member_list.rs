//! NIP-43 member lists (S7): `buzz.apply_member_list(event)` and the community signing key.
//!
//! A kind-13534 list is authoritative only when signed by the signing key of the community
//! the transaction entered (looked up from the context, never from the event): a list signed
//! by another community's key — or by nobody's — is refused, and so is a list not newer than
//! the last one applied. Applying replaces, in one statement each, the members the lists
//! created (`source = 'nip43'`, DESIGN §12.16): listed pubkeys become members, nip43 members
//! no longer listed are removed — and with them, by cascade, their channel memberships,
//! sessions and API tokens. Members admitted otherwise (operator, open AUTH) are untouched.

use pgrx::prelude::*;
use serde_json::json;

use crate::authorize::{check_pubkey, signing_key};
use crate::context;
use crate::errors::{raise, Error, OrRaise};
use crate::nostr::event::{self, Secs};
use crate::nostr::kinds;

/// `buzz.apply_member_list` (declared in src/api/relay.rs).
pub(crate) fn apply_member_list(list_event: Option<&str>) -> TableIterator<'static, (name!(added, i64), name!(removed, i64))> {
    crate::incident::guard(|| {
        let ctx = context::require();
        let now = crate::pg::now();
        let verified = event::verify_with(list_event.unwrap_or(""), event::of_kind(kinds::MEMBER_LIST, Error::MemberListKind)).or_raise();
        let ev = verified.event();
        // The key comes from the entered community, never from the event (S7).
        if signing_key(ctx.community).as_deref() != Some(ev.pubkey_hex().as_str()) {
            raise(Error::MemberListForeignKey);
        }
        // A list dated in the future would freeze the membership until then.
        ev.check_not_future(now).or_raise();
        let mut members: Vec<String> = ev.tag_values("member").map(str::to_owned).collect();
        if members.iter().any(|m| check_pubkey(m).is_err()) {
            raise(Error::PubkeyMalformed);
        }
        members.sort_unstable();
        members.dedup();
        let id = ev.id_hex();
        // Newer than the last applied list, or refused; the row lock serializes two lists.
        let fresh = crate::spi_cache::one::<bool>(
            "WITH up AS (
                 INSERT INTO buzz.member_lists AS m (community_id, created_at, event_id) VALUES ($1, $2, $3)
                 ON CONFLICT (community_id) DO UPDATE SET created_at = EXCLUDED.created_at, event_id = EXCLUDED.event_id,
                                                          applied_at = now()
                  WHERE m.created_at < EXCLUDED.created_at
                 RETURNING 1)
             SELECT count(*) = 1 FROM up",
            &[ctx.community.into(), ev.created_at.secs().into(), id.as_str().into()],
        )
        .or_raise()
        .unwrap_or(false);
        if !fresh {
            raise(Error::MemberListStale);
        }
        let added = crate::spi_cache::one::<i64>(
            "WITH ins AS (INSERT INTO buzz.members (community_id, pubkey, role, source)
                          SELECT $1, p, 'member', 'nip43' FROM unnest($2::text[]) p
                          ON CONFLICT (community_id, pubkey) DO NOTHING RETURNING 1)
             SELECT count(*) FROM ins",
            &[ctx.community.into(), members.clone().into()],
        )
        .or_raise()
        .unwrap_or(0);
        let removed = crate::spi_cache::one::<i64>(
            "WITH gone AS (DELETE FROM buzz.members
                            WHERE community_id = $1 AND source = 'nip43' AND pubkey <> ALL ($2::text[])
                           RETURNING 1)
             SELECT count(*) FROM gone",
            &[ctx.community.into(), members.into()],
        )
        .or_raise()
        .unwrap_or(0);
        let detail = json!({"event_id": id, "created_at": ev.created_at.secs(), "added": added, "removed": removed});
        crate::audit::append(ctx.community, Some(&ev.pubkey_hex()), "member_list.apply", &id, detail);
        TableIterator::once((added, removed))
    })
}
