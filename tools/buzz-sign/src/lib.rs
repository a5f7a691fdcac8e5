//! Client-side Nostr signing shared by the `buzz-sign` CLI, the integration tests and the
//! benchmarks. The database never sees a secret key (DESIGN §11).

pub use secp256k1::{Keypair, Secp256k1, Signing};
use serde_json::Value;
use sha2::{Digest, Sha256};

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

/// NIP-01 id: sha256 of `[0,pubkey,created_at,kind,tags,content]`. serde_json's
/// compact output escapes exactly what NIP-01 requires (`"`, `\`, control chars,
/// using \n \r \t \b \f short forms) and leaves `/` and non-ASCII untouched.
pub fn event_id(pubkey: &str, created_at: i64, kind: u16, tags: &[Value], content: &str) -> [u8; 32] {
    let arr = serde_json::json!([0, pubkey, created_at, kind, tags, content]);
    Sha256::digest(serde_json::to_string(&arr).unwrap().as_bytes()).into()
}

/// Builds and signs an event, returning it as one compact JSON line with keys in
/// the conventional order (written by hand: serde_json's Map would sort them).
pub fn sign_event<C: Signing>(
    secp: &Secp256k1<C>,
    kp: &Keypair,
    created_at: i64,
    kind: u16,
    tags: &[Value],
    content: &str,
) -> String {
    let pubkey = hex::encode(kp.x_only_public_key().0.serialize());
    let id = event_id(&pubkey, created_at, kind, tags, content);
    // Zero aux rand == BIP-340 vector 0 style deterministic nonce.
    let sig = secp.sign_schnorr_with_aux_rand(&id, kp, &[0u8; 32]);
    format!(
        r#"{{"id":"{}","pubkey":"{}","created_at":{},"kind":{},"tags":{},"content":{},"sig":"{}"}}"#,
        hex::encode(id),
        pubkey,
        created_at,
        kind,
        serde_json::to_string(tags).unwrap(),
        serde_json::to_string(content).unwrap(),
        hex::encode(sig.to_byte_array())
    )
}

