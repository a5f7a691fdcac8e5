//! The kinds the extension treats specially, and the NIP-01 classes. Ephemeral and
//! addressable ranges come from rust-nostr's `Kind`; "replaceable" is NIP-01's own list (0, 3,
//! 10000–19999): rust-nostr also counts kind 41 (NIP-28 channel metadata), which NIP-01 does not.

use ::nostr::event::Kind;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// Stored; only ever one row per id.
    Regular,
    /// One head per (community, pubkey, kind).
    Replaceable,
    /// Validated and answered, never stored.
    Ephemeral,
    /// One head per (community, pubkey, kind, d tag).
    Addressable,
}

/// NIP-09 deletion.
pub const DELETION: u16 = 5;
/// NIP-42 authentication: answered by `authenticate`, never published.
pub const AUTH: u16 = 22242;
/// NIP-98 HTTP authorization.
pub const HTTP_AUTH: u16 = 27235;
/// NIP-43 member list, signed by the community's key.
pub const MEMBER_LIST: u16 = 13534;

/// NIP-29 group metadata, admins and members: published only under the community's own key
/// (S3).
pub fn is_system(kind: u16) -> bool {
    (39_000..=39_002).contains(&kind)
}

pub fn class(kind: u16) -> Class {
    let k = Kind::from_u16(kind);
    if matches!(kind, 0 | 3 | 10_000..=19_999) {
        Class::Replaceable
    } else if k.is_ephemeral() {
        Class::Ephemeral
    } else if k.is_addressable() {
        Class::Addressable
    } else {
        Class::Regular
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes() {
        assert_eq!(class(1), Class::Regular);
        assert_eq!(class(5), Class::Regular);
        assert_eq!(class(0), Class::Replaceable);
        assert_eq!(class(3), Class::Replaceable);
        assert_eq!(class(10_002), Class::Replaceable);
        assert_eq!(class(19_999), Class::Replaceable);
        assert_eq!(class(20_000), Class::Ephemeral);
        assert_eq!(class(29_999), Class::Ephemeral);
        assert_eq!(class(30_023), Class::Addressable);
        assert_eq!(class(40_000), Class::Regular);
        assert_eq!(class(41), Class::Regular, "NIP-01, not rust-nostr's channel-metadata exception");
    }
}
