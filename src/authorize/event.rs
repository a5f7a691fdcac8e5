//! Everything between a verified event and storage: the size and time limits, the kind rules
//! (no AUTH events, community-signed system events), the author (and its membership row
//! lock), the `h` channel fence, NIP-40 expiration, the replaceable coordinate and an API
//! token's claims. The result, [`Authorized`], can only be built here, and it is the only thing
//! `store` accepts.

use ::nostr::types::Timestamp;
use pgrx::Uuid;

use crate::context::{self, Context};
use crate::errors::{Error, OrRaise};
use crate::gucs;
use crate::nostr::event::{Parsed, Secs, Verified};
use crate::nostr::kinds::{self, Class};

/// A verified event cleared for the entered community, with its storage projections.
pub struct Authorized {
    ev: Verified,
    community: Uuid,
    channel: Option<Uuid>,
    class: Class,
    d_tag: Option<String>,
    expires_at: Option<i64>,
}

impl Authorized {
    pub fn event(&self) -> &Parsed {
        self.ev.event()
    }
    pub fn community(&self) -> Uuid {
        self.community
    }
    /// The channel of this community the event is posted in (its `h` tag), if any.
    pub fn channel(&self) -> Option<Uuid> {
        self.channel
    }
    pub fn class(&self) -> Class {
        self.class
    }
    /// The coordinate's `d` value: `""` for replaceable events, the `d` tag for addressable
    /// ones, None for the others.
    pub fn d_tag(&self) -> Option<&str> {
        self.d_tag.as_deref()
    }
    pub fn expires_at(&self) -> Option<i64> {
        self.expires_at
    }
}

/// Cheap checks before the id and signature are computed: tag count and size, and a
/// `created_at` not too far in the future.
pub fn within_limits(p: &Parsed, now: Timestamp) -> Result<(), Error> {
    if p.tags.len() > gucs::MAX_TAGS.get() as usize {
        return Err(Error::TooManyTags);
    }
    let max = gucs::MAX_TAG_LENGTH.get() as usize;
    if p.tags.iter().flatten().any(|t| t.len() > max) {
        return Err(Error::TagTooLong);
    }
    p.check_not_future(now)
}

/// The `h` fence: at most one distinct channel, and it must be a channel of *this* community
/// the actor may post in. Unknown, foreign, malformed and forbidden channels are answered
/// identically. Runs before any lookup that could reveal another community's event.
fn channel_for(community: Uuid, actor: &str, p: &Parsed) -> Result<Option<Uuid>, Error> {
    let mut values: Vec<&str> = p.tag_values("h").collect();
    values.sort_unstable();
    values.dedup();
    let value = match values.as_slice() {
        [] => return Ok(None),
        [one] => *one,
        _ => return Err(Error::ChannelAmbiguous),
    };
    let channel = context::parse_uuid(value).ok_or(Error::ChannelUnknown)?;
    if super::may_use_channel(community, channel, actor) { Ok(Some(channel)) } else { Err(Error::ChannelUnknown) }
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
fn expiration(p: &Parsed, now: Timestamp) -> Result<Option<i64>, Error> {
    let Some(v) = p.tag_values("expiration").next() else { return Ok(None) };
    let at: i64 = v.parse().map_err(|_| Error::ExpirationInvalid)?;
    if at <= now.secs() { Err(Error::Expired) } else { Ok(Some(at)) }
}

/// An API token's scope and channel claims (S6): without the write scope, or for a channel (or
/// no channel) outside its claims, nothing is stored. Deletions and replaceable/addressable
/// versions act on the author's events in every channel, so a token limited to channels may
/// not publish them.
fn within_token(ctx: &Context, kind: u16, class: Class, channel: Option<Uuid>) -> Result<(), Error> {
    let Some(t) = &ctx.token else { return Ok(()) };
    let spans_channels = kind == kinds::DELETION || matches!(class, Class::Replaceable | Class::Addressable);
    let allowed = t.write && t.channels.as_ref().is_none_or(|c| !spans_channels && channel.is_some_and(|ch| c.contains(&ch)));
    if allowed { Ok(()) } else { Err(Error::TokenScope) }
}

/// An event that passed every check that takes no lock; [`Checked::lock`] makes it
/// [`Authorized`]. `publish` takes its community's delivery position between the two, so
/// that an event refused here neither spends a position nor holds the community's
/// publishers up (threat model, row 56).
pub struct Checked {
    authorized: Authorized,
    actor: String,
    deletion: bool,
}

impl Checked {
    /// The community the event is checked for (the entered one).
    pub fn community(&self) -> Uuid {
        self.authorized.community
    }

    /// Locks the author's membership row (`lock_author`): a member revoked meanwhile is
    /// refused, and a revocation waits for this transaction.
    pub fn lock(self) -> Result<Authorized, Error> {
        let a = self.authorized;
        if !lock_author(a.community, &self.actor, self.deletion) {
            return Err(Error::NotMember);
        }
        Ok(a)
    }
}

/// Every check between a verified event and storage but the author's lock, for the
/// authenticated actor of `ctx`.
pub fn check(ctx: &Context, ev: Verified, now: Timestamp) -> Result<Checked, Error> {
    let actor = ctx.actor.as_deref().ok_or(Error::AuthRequired)?;
    let community = ctx.community;
    let p = ev.event();
    let kind = p.kind.as_u16();
    if kind == kinds::AUTH {
        return Err(Error::AuthKindRefused);
    }
    let system = kinds::is_system(kind);
    if system {
        // Community-signed system events (S3): the key is the entered community's, looked up
        // from the context; the submitting actor need not be its holder. No channel.
        if super::signing_key(community).as_deref() != Some(p.pubkey_hex().as_str()) {
            return Err(Error::SystemEventForeignKey);
        }
        if p.tag_values("h").next().is_some() {
            return Err(Error::ChannelUnknown);
        }
    } else if p.pubkey_hex() != actor {
        return Err(Error::WrongAuthor);
    }
    let channel = if system { None } else { channel_for(community, actor, p)? };
    let expires_at = expiration(p, now)?;
    let class = kinds::class(kind);
    let d_tag = match class {
        Class::Replaceable => Some(String::new()),
        Class::Addressable => Some(p.tag_values("d").next().unwrap_or("").to_owned()),
        Class::Regular | Class::Ephemeral => None,
    };
    within_token(ctx, kind, class, channel)?;
    let deletion = kind == kinds::DELETION;
    Ok(Checked { authorized: Authorized { community, channel, class, d_tag, expires_at, ev }, actor: actor.to_owned(), deletion })
}
