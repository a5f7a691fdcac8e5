//! Authorization: admission to a community, channel rights, the community's signing key, and
//! (`event`) everything between a verified event and storage. Every query here is scoped to
//! one community *and* runs under that community's RLS fence.

pub mod event;

use pgrx::Uuid;

use crate::errors::{Error, OrRaise};

fn exists(sql: &str, args: &[pgrx::datum::DatumWithOid]) -> bool {
    crate::spi_cache::one::<bool>(&format!("SELECT EXISTS ({sql})"), args)
        .or_raise()
        .unwrap_or(false)
}

pub fn is_member(community: Uuid, pubkey: &str) -> bool {
    exists(
        "SELECT 1 FROM buzz.members WHERE community_id = $1 AND pubkey = $2",
        &[community.into(), pubkey.into()],
    )
}

/// Admission for a freshly authenticated pubkey: an allowlist community requires membership;
/// an open community registers the pubkey — into this community only (S8) — unless banned.
pub fn admit_authenticated(community: Uuid, pubkey: &str) -> Result<(), Error> {
    let admission = crate::spi_cache::one::<String>(
        "SELECT admission FROM buzz.communities WHERE id = $1",
        &[community.into()],
    )
    .or_raise();
    match admission.as_deref() {
        Some("open") => {
            if exists(
                "SELECT 1 FROM buzz.bans WHERE community_id = $1 AND pubkey = $2",
                &[community.into(), pubkey.into()],
            ) {
                return Err(Error::Banned);
            }
            let registered = crate::spi_cache::one::<bool>(
                "WITH ins AS (INSERT INTO buzz.members (community_id, pubkey, role, source)
                              VALUES ($1, $2, 'member', 'open-auth') ON CONFLICT DO NOTHING RETURNING 1)
                 SELECT count(*) = 1 FROM ins",
                &[community.into(), pubkey.into()],
            )
            .or_raise()
            .unwrap_or(false);
            if registered {
                crate::audit::append(community, Some(pubkey), "member.register", pubkey, serde_json::json!({"source": "open-auth"}));
            }
            Ok(())
        }
        _ if is_member(community, pubkey) => Ok(()),
        _ => Err(Error::NotMember),
    }
}

/// True iff `pubkey` is an admin of `channel` in `community`. A channel of another community
/// is simply not found here, exactly like a channel that does not exist.
pub fn is_channel_admin(community: Uuid, channel: Uuid, pubkey: &str) -> bool {
    exists(
        "SELECT 1 FROM buzz.channel_members
          WHERE community_id = $1 AND channel_id = $2 AND pubkey = $3 AND role = 'admin'",
        &[community.into(), channel.into(), pubkey.into()],
    )
}

/// True iff `pubkey` may use `channel` of `community`: it is open, or private with `pubkey` as
/// a member. Another community's channel is simply not found (I2, S2).
pub fn may_use_channel(community: Uuid, channel: Uuid, pubkey: &str) -> bool {
    exists(
        "SELECT 1 FROM buzz.channels c
          WHERE c.community_id = $1 AND c.id = $2
            AND (c.visibility = 'open'
                 OR EXISTS (SELECT 1 FROM buzz.channel_members m
                             WHERE m.community_id = $1 AND m.channel_id = $2 AND m.pubkey = $3))",
        &[community.into(), channel.into(), pubkey.into()],
    )
}

/// The community's signing pubkey, if it has one: the only key community-signed events
/// (NIP-29 system events, NIP-43 member lists) may carry (S3, S7).
pub fn signing_key(community: Uuid) -> Option<String> {
    crate::spi_cache::one::<String>("SELECT signing_pubkey FROM buzz.communities WHERE id = $1", &[community.into()])
        .or_raise()
}

/// A pubkey argument: 64 lowercase hex characters.
pub fn check_pubkey(pubkey: &str) -> Result<(), Error> {
    let ok = pubkey.len() == 64 && pubkey.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if ok { Ok(()) } else { Err(Error::PubkeyMalformed) }
}

/// Explicit predicates on their own (superuser: RLS does not apply here).
#[cfg(any(test, feature = "pg_test"))]
#[pgrx::pg_schema]
mod tests {
    use super::*;
    use pgrx::prelude::*;
    use crate::test_fixtures::{two_communities, BOB};

    /// Mutation: dropping `community_id = $1` from is_member admits bob (beta) in alpha (I5).
    #[pg_test]
    fn membership_is_per_community() {
        let (alpha, beta) = two_communities("mem");
        assert!(is_member(beta, BOB));
        assert!(!is_member(alpha, BOB));
    }

    /// Mutation: dropping `community_id = $1` from is_channel_admin lets beta's channel admin
    /// manage it through alpha's host.
    #[pg_test]
    fn channel_admin_is_per_community() {
        let (alpha, beta) = two_communities("chan");
        let channel = Spi::get_one_with_args::<Uuid>(
            "INSERT INTO buzz.channels (community_id, name, visibility, created_by)
             VALUES ($1, 'room', 'open', $2) RETURNING id",
            &[beta.into(), BOB.into()],
        )
        .unwrap()
        .unwrap();
        Spi::run_with_args(
            "INSERT INTO buzz.channel_members VALUES ($1, $2, $3, 'admin')",
            &[beta.into(), channel.into(), BOB.into()],
        )
        .unwrap();
        assert!(is_channel_admin(beta, channel, BOB));
        assert!(!is_channel_admin(alpha, channel, BOB));
    }

    /// Open AUTH registers into the given community only (S8); allowlist refuses strangers.
    #[pg_test]
    fn open_auth_registers_in_one_community() {
        let (alpha, beta) = two_communities("open");
        let dave = "e493dbf1c10d80f3581e4904930b1404cc6c13900ee0758474fa94abe8c4cd13";
        assert_eq!(admit_authenticated(alpha, dave), Err(Error::NotMember));
        assert_eq!(admit_authenticated(beta, dave), Ok(()));
        assert!(is_member(beta, dave));
        assert!(!is_member(alpha, dave));
    }
}
