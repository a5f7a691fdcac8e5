//! BIP-340 verification (the database only ever verifies; signing happens client-side).

use std::sync::OnceLock;

use secp256k1::{schnorr::Signature, Secp256k1, VerifyOnly, XOnlyPublicKey};

use crate::errors::{Error, OrRaise};

fn secp() -> &'static Secp256k1<VerifyOnly> {
    static CTX: OnceLock<Secp256k1<VerifyOnly>> = OnceLock::new();
    CTX.get_or_init(Secp256k1::verification_only)
}

/// True iff `sig` is a valid BIP-340 signature of `msg` by the x-only key `pubkey`.
/// A key that is not on the curve simply does not verify.
pub fn verify(pubkey: &[u8; 32], msg: &[u8; 32], sig: &[u8; 64]) -> bool {
    let Ok(pk) = XOnlyPublicKey::from_slice(pubkey) else { return false };
    let Ok(sig) = Signature::from_slice(sig) else { return false };
    secp().verify_schnorr(&sig, msg, &pk).is_ok()
}

fn decode_fixed<const N: usize>(s: &str) -> Result<[u8; N], Error> {
    let v = hex::decode(s).map_err(|_| Error::HexMalformed)?;
    v.try_into().map_err(|_| Error::HexMalformed)
}

/// `buzz.schnorr_verify` (declared in src/api/helpers.rs).
pub(crate) fn schnorr_verify(pubkey: &str, message: &str, signature: &str) -> bool {
    let pk = decode_fixed::<32>(pubkey).or_raise();
    let msg = decode_fixed::<32>(message).or_raise();
    let sig = decode_fixed::<64>(signature).or_raise();
    verify(&pk, &msg, &sig)
}

#[cfg(any(test, feature = "pg_test"))]
#[pgrx::pg_schema]
mod tests {
    #[allow(unused_imports)] // the #[pg_test]s use it; the plain #[test] build does not
    use super::*;

    /// All 15 rows of the BIP-340 vectors (tests/vectors/bip340-test-vectors.csv, the corrected
    /// copy whose row 14 is a 32-byte key above the field size). Strict: every row must decode,
    /// so a corrupt row fails here instead of passing through the malformed-hex path as `false`.
    #[test]
    fn bip340_vectors() {
        let csv = include_str!("../../tests/vectors/bip340-test-vectors.csv");
        let mut rows = 0;
        for line in csv.lines().skip(1).filter(|l| !l.trim().is_empty()) {
            let f: Vec<&str> = line.split(',').collect();
            let (pk, msg, sig, expect) = (f[2], f[4], f[5], f[6] == "TRUE");
            let decoded = (decode_fixed::<32>(pk), decode_fixed::<32>(msg), decode_fixed::<64>(sig));
            let (Ok(p), Ok(m), Ok(s)) = decoded else { panic!("vector {} does not decode: {decoded:?}", f[0]) };
            assert_eq!(verify(&p, &m, &s), expect, "vector {}", f[0]);
            rows += 1;
        }
        assert_eq!(rows, 15);
    }
}
