//! Authorization: admission to a community and channel rights. Every query here is scoped to
//! one community *and* runs under that community's RLS fence.

use pgrx::prelude::*;
use pgrx::Uuid;

use crate::errors::{Error, OrRaise};

fn exists(sql: &str, args: &[pgrx::datum::DatumWithOid]) -> bool {
    Spi::get_one_with_args::<bool>(&format!("SELECT EXISTS ({sql})"), args)
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
    let admission = Spi::get_one_with_args::<String>(
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
            Spi::run_with_args(
                "INSERT INTO buzz.members (community_id, pubkey, role, source)
                 VALUES ($1, $2, 'member', 'open-auth') ON CONFLICT DO NOTHING",
                &[community.into(), pubkey.into()],
            )
            .or_raise();
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

/// A pubkey argument: 64 lowercase hex characters.
pub fn check_pubkey(pubkey: &str) -> Result<(), Error> {
    let ok = pubkey.len() == 64 && pubkey.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if ok { Ok(()) } else { Err(Error::PubkeyMalformed) }
}
