//! Stateless NIP-42 challenges: issuing one writes nothing.
//!
//! A challenge is its expiry and a random nonce, sealed with HMAC-SHA256 under the database's
//! challenge key (`buzz.challenge_key`, readable by the extension's owner only: the relay role
//! never sees it) over the community it was issued for. Whoever presents it proves nothing
//! until the seal verifies for the community of the host it is presented on: a challenge of
//! another community, a changed expiry or a made-up one fails the same way. Single use is kept
//! where the challenge is consumed (`nip42::consume_challenge`), with a row that lives until the
//! challenge expires.
//!
//! Text form: 112 lowercase hex digits (expiry in Unix milliseconds, 8 bytes big-endian; nonce,
//! 16 bytes; tag, 32 bytes). Only the lowercase form is accepted, so one challenge has exactly
//! one spelling and its single-use row cannot be dodged by changing case.

use hmac::{Hmac, Mac};
use pgrx::Uuid;
use sha2::Sha256;

/// Bytes of the sealed part (expiry, nonce) and of the whole challenge.
const BODY: usize = 8 + 16;
const LEN: usize = BODY + 32;
/// Hex digits of a challenge.
pub const TEXT_LEN: usize = 2 * LEN;

/// Separates this MAC's inputs from any other use of the key.
const DOMAIN: &[u8] = b"buzz_tenancy nip42 challenge v1\0";

fn mac(key: &[u8], community: &Uuid, body: &[u8]) -> Hmac<Sha256> {
    let mut m = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes a key of any length");
    m.update(DOMAIN);
    m.update(community.as_bytes());
    m.update(body);
    m
}

/// A challenge of `community` that expires at `expires_ms` (Unix milliseconds).
pub fn seal(key: &[u8], community: &Uuid, expires_ms: u64, nonce: [u8; 16]) -> String {
    let mut raw = [0u8; LEN];
    raw[..8].copy_from_slice(&expires_ms.to_be_bytes());
    raw[8..BODY].copy_from_slice(&nonce);
    let tag = mac(key, community, &raw[..BODY]).finalize().into_bytes();
    raw[BODY..].copy_from_slice(&tag);
    hex::encode(raw)
}

/// The expiry (Unix milliseconds) of `text` if it is a challenge sealed under `key` for
/// `community`; None for anything else (another community's, altered, malformed).
pub fn open(key: &[u8], community: &Uuid, text: &str) -> Option<u64> {
    if text.len() != TEXT_LEN || !text.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        return None;
    }
    let raw = hex::decode(text).ok()?;
    // Constant time: the comparison says nothing about how much of a guessed tag was right.
    mac(key, community, &raw[..BODY]).verify_slice(&raw[BODY..]).ok()?;
    Some(u64::from_be_bytes(raw[..8].try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: [u8; 32] = [7; 32];

    fn community(n: u8) -> Uuid {
        Uuid::from_bytes([n; 16])
    }

    #[test]
    fn opens_only_for_its_community_and_key() {
        let c = seal(&KEY, &community(1), 1_000, [9; 16]);
        assert_eq!(c.len(), TEXT_LEN);
        assert_eq!(open(&KEY, &community(1), &c), Some(1_000));
        assert_eq!(open(&KEY, &community(2), &c), None, "another community's");
        assert_eq!(open(&[8; 32], &community(1), &c), None, "another key's");
    }

    #[test]
    fn refuses_altered_and_respelled_challenges() {
        let c = seal(&KEY, &community(1), 1_000, [9; 16]);
        // A later expiry written over the sealed one.
        let later = format!("{:016x}{}", 1_000_000u64, &c[16..]);
        assert_eq!(open(&KEY, &community(1), &later), None);
        // Each digit changed in turn.
        for i in 0..c.len() {
            let mut b = c.clone().into_bytes();
            b[i] = if b[i] == b'0' { b'1' } else { b'0' };
            assert_eq!(open(&KEY, &community(1), std::str::from_utf8(&b).unwrap()), None, "digit {i}");
        }
        assert_eq!(open(&KEY, &community(1), &c.to_uppercase()), None, "one spelling only");
        assert_eq!(open(&KEY, &community(1), &c[..TEXT_LEN - 2]), None);
        assert_eq!(open(&KEY, &community(1), ""), None);
    }
}
