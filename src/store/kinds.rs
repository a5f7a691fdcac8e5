//! NIP-01 kind classes.

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

pub const DELETION: u16 = 5;

/// NIP-29 group metadata, admins and members: published only under the community's own key
/// (S3).
pub fn is_system(kind: u16) -> bool {
    (39_000..=39_002).contains(&kind)
}

pub fn class(kind: u16) -> Class {
    match kind {
        0 | 3 | 10_000..=19_999 => Class::Replaceable,
        20_000..=29_999 => Class::Ephemeral,
        30_000..=39_999 => Class::Addressable,
        _ => Class::Regular,
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
    }
}
