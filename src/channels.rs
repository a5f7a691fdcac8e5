//! Channels: created inside the entered community by an authenticated member, which stamps
//! the community from the context (never from an argument); membership is managed by a
//! channel admin and limited, by composite foreign keys, to members of the same community.

use pgrx::prelude::*;
use serde_json::json;
use pgrx::Uuid;

use crate::authorize::{check_pubkey, is_channel_admin, is_member};
use crate::context;
use crate::errors::{raise, Error, OrRaise};

fn check_name(name: &str) -> Result<(), Error> {
    let n = name.chars().count();
    if (1..=200).contains(&n) && !name.contains('\0') { Ok(()) } else { Err(Error::NameInvalid) }
}

/// The authenticated, still-admitted actor of the entered community.
fn admitted_actor() -> (Uuid, String) {
    let (ctx, actor) = context::require_actor();
    if ctx.token.is_some() {
        // Channel administration is control plane: a signed session, never an API token
        // (a token must not exceed its scopes or claims, §12.7).
        raise(Error::TokenScope);
    }
    if !is_member(ctx.community, &actor) {
        raise(Error::NotMember);
    }
    (ctx.community, actor)
}

/// `buzz.create_channel` (declared in src/api/relay.rs).
pub(crate) fn create_channel(name: Option<&str>, visibility: Option<&str>) -> Uuid {
    crate::incident::guard(|| {
        let name = name.unwrap_or_default();
        check_name(name).or_raise();
        let visibility = visibility.unwrap_or_default();
        if !matches!(visibility, "open" | "private") {
            raise(Error::VisibilityInvalid);
        }
        let (community, actor) = admitted_actor();
        let id = crate::spi_cache::one::<Uuid>(
            "INSERT INTO buzz.channels (community_id, name, visibility, created_by)
             VALUES ($1, $2, $3, $4) RETURNING id",
            &[community.into(), name.into(), visibility.into(), actor.as_str().into()],
        )
        .or_raise()
        .unwrap_or_else(|| raise(Error::Internal));
        crate::spi_cache::run(
            "INSERT INTO buzz.channel_members (community_id, channel_id, pubkey, role)
             VALUES ($1, $2, $3, 'admin')",
            &[community.into(), id.into(), actor.as_str().into()],
        )
        .or_raise();
        crate::audit::append(community, None, "channel.create", &id.to_string(), json!({"name": name, "visibility": visibility}));
        id
    })
}

/// `buzz.add_channel_member` (declared in src/api/relay.rs).
pub(crate) fn add_channel_member(channel: Option<&str>, pubkey: Option<&str>, role: Option<&str>) {
    crate::incident::guard(|| {
        let pubkey = pubkey.unwrap_or_default();
        check_pubkey(pubkey).or_raise();
        let role = role.unwrap_or_default();
        if !matches!(role, "admin" | "member") {
            raise(Error::ChannelRoleInvalid);
        }
        let (community, actor) = admitted_actor();
        // Taken as text: a malformed id is just an unknown channel, never a raw cast error.
        let channel = channel.and_then(context::parse_uuid).unwrap_or_else(|| raise(Error::ChannelUnknown));
        if !is_channel_admin(community, channel, &actor) {
            raise(Error::ChannelUnknown);
        }
        if !is_member(community, pubkey) {
            raise(Error::NotMember);
        }
        crate::spi_cache::run(
            "INSERT INTO buzz.channel_members (community_id, channel_id, pubkey, role)
             VALUES ($1, $2, $3, $4)
             ON CONFLICT (community_id, channel_id, pubkey) DO UPDATE SET role = EXCLUDED.role",
            &[community.into(), channel.into(), pubkey.into(), role.into()],
        )
        .or_raise();
        crate::audit::append(community, None, "channel.member.add", &channel.to_string(), json!({"pubkey": pubkey, "role": role}));
    })
}

/// `buzz.remove_channel_member` (declared in src/api/relay.rs).
pub(crate) fn remove_channel_member(channel: Option<&str>, pubkey: Option<&str>) -> bool {
    crate::incident::guard(|| {
        let pubkey = pubkey.unwrap_or_default();
        check_pubkey(pubkey).or_raise();
        let (community, actor) = admitted_actor();
        // Taken as text: a malformed id is just an unknown channel, never a raw cast error.
        let channel = channel.and_then(context::parse_uuid).unwrap_or_else(|| raise(Error::ChannelUnknown));
        if !is_channel_admin(community, channel, &actor) {
            raise(Error::ChannelUnknown);
        }
        let removed = crate::spi_cache::one::<bool>(
            "WITH gone AS (DELETE FROM buzz.channel_members
                            WHERE community_id = $1 AND channel_id = $2 AND pubkey = $3 RETURNING 1)
             SELECT count(*) > 0 FROM gone",
            &[community.into(), channel.into(), pubkey.into()],
        )
        .or_raise()
        .unwrap_or(false);
        if removed {
            crate::audit::append(community, None, "channel.member.remove", &channel.to_string(), json!({"pubkey": pubkey}));
        }
        removed
    })
}

/// `buzz.list_channels` (declared in src/api/relay.rs).
pub(crate) fn list_channels() -> TableIterator<'static, (name!(id, Uuid), name!(name, String), name!(visibility, String), name!(my_role, Option<String>))> {
    crate::incident::guard(|| {
        // An API token lists with its read scope, and only the channels it is limited to.
        let (ctx, actor) = context::require_actor();
        let claims = match &ctx.token {
            Some(t) if !t.read => raise(Error::TokenScope),
            Some(t) => t.channels.clone(),
            None => None,
        };
        if !is_member(ctx.community, &actor) {
            raise(Error::NotMember);
        }
        let community = ctx.community;
        let rows = Spi::connect(|client| {
            client
                .select(
                    "SELECT c.id, c.name, c.visibility, m.role
                       FROM buzz.channels c
                       LEFT JOIN buzz.channel_members m
                              ON m.community_id = c.community_id AND m.channel_id = c.id AND m.pubkey = $2
                      WHERE c.community_id = $1 AND (c.visibility = 'open' OR m.pubkey IS NOT NULL)
                      ORDER BY c.name, c.id",
                    None,
                    &[community.into(), actor.as_str().into()],
                )?
                .map(|r| {
                    Ok((
                        r.get::<Uuid>(1)?.unwrap_or_else(|| raise(Error::Internal)),
                        r.get::<String>(2)?.unwrap_or_default(),
                        r.get::<String>(3)?.unwrap_or_default(),
                        r.get::<String>(4)?,
                    ))
                })
                .collect::<Result<Vec<_>, pgrx::spi::Error>>()
        })
        .or_raise();
        let rows: Vec<_> = match claims {
            Some(c) => rows.into_iter().filter(|r| c.contains(&r.0)).collect(),
            None => rows,
        };
        TableIterator::new(rows)
    })
}
