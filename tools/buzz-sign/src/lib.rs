//! Client-side Nostr signing shared by the `buzz-sign` CLI, the integration tests and the
//! benchmarks, built on rust-nostr's `Keys`, `EventBuilder` and `Event` (not on the
//! extension's code). The database never sees a secret key (DESIGN §11).

use nostr::event::{Event, EventBuilder, EventId, FinalizeUnsignedEvent, Kind, Tag, Tags};
use nostr::key::{Keys, PublicKey, SecretKey};
use nostr::types::Timestamp;
pub use secp256k1::{Keypair, Secp256k1, Signing};
use serde_json::Value;

/// A keypair from a 64-hex secret key.
pub fn keypair<C: Signing>(secp: &Secp256k1<C>, sk_hex: &str) -> Result<Keypair, String> {
    let sk = hex::decode(sk_hex).map_err(|e| format!("--sk is not hex: {e}"))?;
    if sk.len() != 32 {
        return Err(format!("--sk must be 32 bytes (64 hex chars), got {}", sk.len()));
    }
    Keypair::from_seckey_slice(secp, &sk).map_err(|_| "--sk is not a valid secp256k1 secret key".into())
}

/// The x-only public key, lowercase hex.
pub fn pubkey_hex(kp: &Keypair) -> String {
    hex::encode(kp.x_only_public_key().0.serialize())
}

fn keys(kp: &Keypair) -> Keys {
    Keys::new(SecretKey::from_slice(&kp.secret_bytes()).expect("a keypair's secret key is valid"))
}

/// NIP-1 tags from JSON arrays of strings (each non-empty).
fn nostr_tags(tags: &[Value]) -> Tags {
    let parsed = tags.iter().map(|t| {
        let cells: Vec<String> = t
            .as_array()
            .expect("a tag is a JSON array")
            .iter()
            .map(|c| c.as_str().expect("tag cells are strings").to_owned())
            .collect();
        Tag::parse(cells).expect("a tag is not empty")
    });
    Tags::from_list(parsed.collect())
}

/// NIP-01 id, as rust-nostr computes it: sha256 of `[0,pubkey,created_at,kind,tags,content]`.
pub fn event_id(pubkey: &str, created_at: i64, kind: u16, tags: &[Value], content: &str) -> [u8; 32] {
    let pk = PublicKey::from_hex(pubkey).expect("a 64-hex pubkey");
    let ts = Timestamp::from_secs(u64::try_from(created_at).expect("created_at is not negative"));
    EventId::compute(&pk, &ts, &Kind::from_u16(kind), &nostr_tags(tags), content).to_bytes()
}

/// Builds and signs an event with rust-nostr and returns it as one compact JSON line (its
/// serialization: `id, pubkey, created_at, kind, tags, content, sig`). The BIP-340 nonce uses
/// 32 zero bytes of aux randomness, so the same inputs always give the same event.
pub fn sign(kp: &Keypair, created_at: i64, kind: u16, tags: &[Value], content: &str) -> Event {
    let keys = keys(kp);
    let ts = Timestamp::from_secs(u64::try_from(created_at).expect("created_at is not negative"));
    let mut unsigned = EventBuilder::new(Kind::from_u16(kind), content)
        .tags(nostr_tags(tags))
        .custom_created_at(ts)
        .finalize_unsigned(keys.public_key());
    let id = unsigned.id();
    let sig = keys.sign_schnorr_with_aux_rand(&Secp256k1::signing_only(), id.as_bytes(), &[0u8; 32]);
    unsigned.add_signature(sig).expect("rust-nostr verifies what it just signed")
}

/// [`sign`], as the JSON line clients send.
pub fn sign_event<C: Signing>(
    _secp: &Secp256k1<C>,
    kp: &Keypair,
    created_at: i64,
    kind: u16,
    tags: &[Value],
    content: &str,
) -> String {
    sign(kp, created_at, kind, tags, content).as_json()
}
