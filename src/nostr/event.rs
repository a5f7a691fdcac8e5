//! NIP-01 events: strict parsing, the canonical id, and the verification stages.
//!
//! Our wire parser stays in front (rust-nostr's deserializer is laxer about duplicate keys,
//! case variants, numbers and hex case); what it yields is rust-nostr's event model:
//! `EventId`, `PublicKey`, `Timestamp`, `Kind`. The canonical id is serialized here, on the
//! hot path, from our own fields (building rust-nostr `Tags` for `EventId::compute` would
//! allocate every tag again); the differential test (`tests/differential`) checks it against
//! rust-nostr's `EventId::compute` and verification on thousands of events it signed.

use std::fmt;

use ::nostr::event::{EventId, Kind};
use ::nostr::key::PublicKey;
use ::nostr::types::Timestamp;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::errors::{Error, OrRaise};

/// The wire shape. Unknown extra fields are ignored (real clients send them). Refused: a
/// duplicate of one of the seven fields, a key that differs from one of them only by case
/// (`"KIND"` next to `"kind"` must not be silently ignored), wrong types, and numbers that are
/// not plain non-negative integers (`1.7e9`, `1.0`, `-1`).
struct Wire {
    id: String,
    pubkey: String,
    created_at: u64,
    kind: u16,
    tags: Vec<Vec<String>>,
    content: String,
    sig: String,
}

const FIELDS: [&str; 7] = ["id", "pubkey", "created_at", "kind", "tags", "content", "sig"];

/// A key of the event object: one of the fields (by index in FIELDS), a case variant of one,
/// or anything else.
enum Key {
    Field(usize),
    CaseVariant,
    Other,
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Key, D::Error> {
        struct KeyVisitor;
        impl Visitor<'_> for KeyVisitor {
            type Value = Key;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an event field name")
            }
            fn visit_str<E: de::Error>(self, k: &str) -> Result<Key, E> {
                Ok(match FIELDS.iter().position(|f| *f == k) {
                    Some(i) => Key::Field(i),
                    None if FIELDS.iter().any(|f| f.eq_ignore_ascii_case(k)) => Key::CaseVariant,
                    None => Key::Other,
                })
            }
        }
        d.deserialize_identifier(KeyVisitor)
    }
}

impl<'de> Deserialize<'de> for Wire {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Wire, D::Error> {
        struct WireVisitor;
        impl<'de> Visitor<'de> for WireVisitor {
            type Value = Wire;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a NIP-01 event object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Wire, A::Error> {
                let (mut id, mut pubkey, mut created_at, mut kind, mut tags, mut content, mut sig) =
                    (None, None, None, None, None, None, None);
                fn once<T, E: de::Error>(slot: &mut Option<T>, v: T) -> Result<(), E> {
                    if slot.replace(v).is_some() { Err(E::custom("duplicate field")) } else { Ok(()) }
                }
                while let Some(key) = map.next_key::<Key>()? {
                    match key {
                        Key::Field(0) => once(&mut id, map.next_value()?)?,
                        Key::Field(1) => once(&mut pubkey, map.next_value()?)?,
                        Key::Field(2) => once(&mut created_at, map.next_value()?)?,
                        Key::Field(3) => once(&mut kind, map.next_value()?)?,
                        Key::Field(4) => once(&mut tags, map.next_value()?)?,
                        Key::Field(5) => once(&mut content, map.next_value()?)?,
                        Key::Field(_) => once(&mut sig, map.next_value()?)?,
                        Key::CaseVariant => return Err(de::Error::custom("field name in another case")),
                        Key::Other => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                let missing = |name| de::Error::missing_field(name);
                Ok(Wire {
                    id: id.ok_or_else(|| missing("id"))?,
                    pubkey: pubkey.ok_or_else(|| missing("pubkey"))?,
                    created_at: created_at.ok_or_else(|| missing("created_at"))?,
                    kind: kind.ok_or_else(|| missing("kind"))?,
                    tags: tags.ok_or_else(|| missing("tags"))?,
                    content: content.ok_or_else(|| missing("content"))?,
                    sig: sig.ok_or_else(|| missing("sig"))?,
                })
            }
        }
        d.deserialize_map(WireVisitor)
    }
}

/// A syntactically valid event: hex fields decoded, `created_at` within what the database
/// stores (a bigint), no NUL anywhere. Not yet trusted.
#[derive(Debug, Clone)]
pub struct Parsed {
    pub id: EventId,
    /// Any 32 bytes: a key off the curve parses, and then does not verify.
    pub pubkey: PublicKey,
    pub created_at: Timestamp,
    pub kind: Kind,
    pub tags: Vec<Vec<String>>,
    pub content: String,
    pub sig: [u8; 64],
}

/// Seconds as the database stores them. Every `Timestamp` the extension handles fits: event
/// times are checked at parse, the clock is the server's.
pub trait Secs {
    fn secs(&self) -> i64;
}

impl Secs for Timestamp {
    fn secs(&self) -> i64 {
        i64::try_from(self.as_secs()).unwrap_or(i64::MAX)
    }
}

/// An event whose stated id is the hash of its content.
#[derive(Debug, Clone)]
pub struct IdChecked(Parsed);

/// An event whose id matches and whose signature verifies against its pubkey.
#[derive(Debug, Clone)]
pub struct Verified(Parsed);

impl Verified {
    pub fn event(&self) -> &Parsed {
        &self.0
    }
}

/// Lowercase hex of exactly N bytes (NIP-01 requires lowercase).
fn lower_hex<const N: usize>(s: &str) -> Result<[u8; N], Error> {
    if s.len() != 2 * N || !s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        return Err(Error::EventMalformed);
    }
    let mut out = [0u8; N];
    hex::decode_to_slice(s, &mut out).map_err(|_| Error::EventMalformed)?;
    Ok(out)
}

/// Stage 1: text → `Parsed`.
pub fn parse(text: &str) -> Result<Parsed, Error> {
    // Bound the Rust-heap work before parsing (Rust allocations are not palloc: an oversized
    // input must be refused, not allowed to exhaust the backend).
    if text.len() > crate::gucs::MAX_EVENT_SIZE.get() as usize {
        return Err(Error::EventTooLarge);
    }
    // serde would also read the struct from a JSON array; an event is an object.
    if !text.trim_start().starts_with('{') {
        return Err(Error::EventMalformed);
    }
    // `\u0000` cannot be stored in text/jsonb; refuse it wherever it appears (raw or escaped).
    if text.contains('\0') {
        return Err(Error::EventNul);
    }
    let w: Wire = serde_json::from_str(text).map_err(|_| Error::EventMalformed)?;
    let has_nul = w.content.contains('\0') || w.tags.iter().flatten().any(|t| t.contains('\0'));
    if has_nul {
        return Err(Error::EventNul);
    }
    if i64::try_from(w.created_at).is_err() {
        return Err(Error::EventMalformed);
    }
    Ok(Parsed {
        id: EventId::from_byte_array(lower_hex(&w.id)?),
        pubkey: PublicKey::from_byte_array(lower_hex(&w.pubkey)?),
        created_at: Timestamp::from_secs(w.created_at),
        kind: Kind::from_u16(w.kind),
        tags: w.tags,
        content: w.content,
        sig: lower_hex(&w.sig)?,
    })
}

/// The one verification sequence (publish, NIP-42, NIP-98, member lists): parse, then the
/// caller's cheap checks (`precheck`: the expected kind, size limits), then the id, then the
/// signature — the expensive steps only for events worth them.
pub fn verify_with(text: &str, precheck: impl FnOnce(&Parsed) -> Result<(), Error>) -> Result<Verified, Error> {
    let parsed = parse(text)?;
    precheck(&parsed)?;
    parsed.check_id()?.check_sig()
}

/// A `precheck` for [`verify_with`]: the event is of `kind`, else `wrong`.
pub fn of_kind(kind: u16, wrong: Error) -> impl FnOnce(&Parsed) -> Result<(), Error> {
    move |p| if p.kind.as_u16() == kind { Ok(()) } else { Err(wrong) }
}

impl Parsed {
    /// NIP-01 id: sha256 of `[0,pubkey,created_at,kind,tags,content]` as compact JSON.
    /// serde_json escapes exactly what NIP-01 prescribes (`"`, `\`, control characters with
    /// `\n \r \t \b \f` short forms) and leaves `/` and non-ASCII alone.
    pub fn canonical_id(&self) -> [u8; 32] {
        let pubkey = self.pubkey.to_hex();
        let canonical = (0u8, pubkey, self.created_at.as_secs(), self.kind.as_u16(), &self.tags, &self.content);
        let json = serde_json::to_string(&canonical).expect("serializing strings cannot fail");
        Sha256::digest(json.as_bytes()).into()
    }

    /// Stage 2.
    pub fn check_id(self) -> Result<IdChecked, Error> {
        if &self.canonical_id() == self.id.as_bytes() {
            Ok(IdChecked(self))
        } else {
            Err(Error::EventBadId)
        }
    }

    /// Refuse an event dated more than `buzz_tenancy.max_future` seconds after `now`.
    pub fn check_not_future(&self, now: Timestamp) -> Result<(), Error> {
        let limit = now.as_secs().saturating_add(u64::try_from(crate::gucs::MAX_FUTURE.get()).unwrap_or(0));
        if self.created_at.as_secs() > limit { Err(Error::TooFarInFuture) } else { Ok(()) }
    }

    pub fn pubkey_hex(&self) -> String {
        self.pubkey.to_hex()
    }

    pub fn id_hex(&self) -> String {
        self.id.to_hex()
    }

    /// Values of tags named `name` (their second element); tags without a value are counted
    /// with an empty value so "exactly one" checks see them.
    pub fn tag_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.tags
            .iter()
            .filter(move |t| t.first().map(String::as_str) == Some(name))
            .map(|t| t.get(1).map(String::as_str).unwrap_or(""))
    }
}

impl IdChecked {
    /// Stage 3.
    pub fn check_sig(self) -> Result<Verified, Error> {
        let p = &self.0;
        if super::schnorr::verify(p.pubkey.as_bytes(), p.id.as_bytes(), &p.sig) {
            Ok(Verified(self.0))
        } else {
            Err(Error::EventBadSig)
        }
    }
}

/// The whole pipeline for one event, whatever its kind (the tests' shorthand).
#[cfg(any(test, feature = "pg_test"))]
pub fn verify(text: &str) -> Result<Verified, Error> {
    verify_with(text, |_| Ok(()))
}

/// `buzz.event_id` (declared in src/api/helpers.rs).
pub(crate) fn event_id(event: &str) -> String {
    hex::encode(parse(event).or_raise().canonical_id())
}

/// `buzz.verify_event` (declared in src/api/helpers.rs).
pub(crate) fn verify_event(event: &str) -> bool {
    let parsed = parse(event).or_raise();
    parsed.check_id().and_then(IdChecked::check_sig).is_ok()
}

#[cfg(any(test, feature = "pg_test"))]
#[pgrx::pg_schema]
mod tests {
    use super::*;
    use pgrx::prelude::*;

    fn field(line: &str, name: &str) -> serde_json::Value {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        v[name].clone()
    }

    /// Real events with emoji, CJK/Arabic, NBSP, escapes and extra fields verify, and the
    /// canonical id equals the published one (mutation: hashing a jsonb round-trip, or
    /// escaping `/` or non-ASCII, turns this red).
    #[pg_test]
    fn real_events_verify() {
        let mut n = 0;
        for line in include_str!("../../tests/vectors/nip01-real-events.jsonl").lines() {
            let ev = field(line, "event").to_string();
            let want = field(line, "expected_id");
            assert_eq!(hex::encode(parse(&ev).unwrap().canonical_id()), want.as_str().unwrap());
            assert!(verify(&ev).is_ok(), "{line}");
            n += 1;
        }
        assert!(n >= 20);
    }

    /// The same events as they arrive on the wire (\uXXXX escapes, `\/`, shuffled keys).
    #[pg_test]
    fn wire_escaped_events_verify() {
        for line in include_str!("../../tests/vectors/nip01-real-events-wire-escaped.jsonl").lines() {
            let wire = field(line, "wire_json");
            let want = field(line, "expected_id");
            let p = parse(wire.as_str().unwrap()).unwrap();
            assert_eq!(hex::encode(p.canonical_id()), want.as_str().unwrap());
            assert!(verify(wire.as_str().unwrap()).is_ok());
        }
    }

    /// Valid signature over a stated id that is not the content hash → rejected
    /// (mutation: skipping check_id and verifying the signature over the stated id).
    #[pg_test]
    fn id_mismatch_rejected() {
        for line in include_str!("../../tests/vectors/nip01-id-mismatch.jsonl").lines() {
            let ev = field(line, "event").to_string();
            assert_eq!(verify(&ev).err(), Some(Error::EventBadId));
        }
    }

    /// NIP-01 escaping pinned against a hand-written canonical form: `\n \" \\ \r \t \b \f`
    /// short forms, other C0 controls as `\u00XX` (as JSON.stringify, go-nostr and rust-nostr
    /// do), DEL, `/`, non-ASCII and astral characters verbatim; long content too.
    /// (Mutations: escaping `/` or non-ASCII, or hashing a jsonb round trip, change the id.)
    #[pg_test]
    fn canonical_escapes() {
        let content = "line\nquote\"back\\cr\rtab\tbs\u{8}ff\u{c}ctl\u{1}\u{1f}del\u{7f}/slash é 😀 ä";
        let pubkey = "79be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798";
        let expected = format!(
            "[0,\"{pubkey}\",1700000000,1,[[\"t\",\"x\\ny\"]],\"{}\"]",
            r#"line\nquote\"back\\cr\rtab\tbs\bff\fctl\u0001\u001fdel"#.to_owned() + "\u{7f}/slash é 😀 ä"
        );
        let p = Parsed {
            id: EventId::from_byte_array([0; 32]),
            pubkey: PublicKey::from_hex(pubkey).unwrap(),
            created_at: ::nostr::types::Timestamp::from_secs(1_700_000_000),
            kind: Kind::from_u16(1),
            tags: vec![vec!["t".into(), "x\ny".into()]],
            content: content.into(),
            sig: [0; 64],
        };
        let want: [u8; 32] = Sha256::digest(expected.as_bytes()).into();
        assert_eq!(p.canonical_id(), want);
        let long = Parsed { content: "ü".repeat(100_000), tags: vec![], ..p };
        let expected = format!("[0,\"{pubkey}\",1700000000,1,[],\"{}\"]", "ü".repeat(100_000));
        let want: [u8; 32] = Sha256::digest(expected.as_bytes()).into();
        assert_eq!(long.canonical_id(), want);
    }

    #[pg_test]
    fn malformed_inputs() {
        let good = field(include_str!("../../tests/vectors/nip01-real-events.jsonl").lines().next().unwrap(), "event");
        let with = |k: &str, v: serde_json::Value| {
            let mut e = good.clone();
            e[k] = v;
            e.to_string()
        };
        assert_eq!(parse("not json").err(), Some(Error::EventMalformed));
        assert_eq!(parse(&with("kind", serde_json::json!(70000))).err(), Some(Error::EventMalformed));
        assert_eq!(parse(&with("created_at", serde_json::json!(-1))).err(), Some(Error::EventMalformed));
        assert_eq!(parse(&with("created_at", serde_json::json!(1.5))).err(), Some(Error::EventMalformed));
        // Beyond a bigint: refused at parse (mutation: dropping that check stores it negative).
        assert_eq!(parse(&with("created_at", serde_json::json!(u64::MAX))).err(), Some(Error::EventMalformed));
        assert_eq!(parse(&with("id", serde_json::json!("ABC"))).err(), Some(Error::EventMalformed));
        let upper = good["id"].as_str().unwrap().to_uppercase();
        assert_eq!(parse(&with("id", serde_json::json!(upper))).err(), Some(Error::EventMalformed));
        assert_eq!(parse(&with("tags", serde_json::json!([[1]]))).err(), Some(Error::EventMalformed));
        assert_eq!(parse(&with("content", serde_json::json!("a\u{0}b"))).err(), Some(Error::EventNul));
        let dup = format!("{{\"kind\":1,{}", &good.to_string()[1..]);
        assert_eq!(parse(&dup).err(), Some(Error::EventMalformed));
    }

    /// One parser, one answer (issue 9 item 15): what a lax parser would silently accept is
    /// refused — a duplicate field written with escapes, a field name in another case next to
    /// (or instead of) the real one, and numbers that are not plain integers. Unknown fields
    /// stay allowed. (Mutations: the Key::CaseVariant arm ignored like an unknown key, or
    /// `once` overwriting a duplicate, turn this red.)
    #[pg_test]
    fn strict_keys_and_numbers() {
        let good = field(include_str!("../../tests/vectors/nip01-real-events.jsonl").lines().next().unwrap(), "event");
        let text = good.to_string();
        let body = &text[1..];
        assert!(parse(&text).is_ok());
        assert!(parse(&format!("{{\"relay_hint\":\"x\",{body}")).is_ok(), "unknown keys are ignored");
        for prefix in [
            r#"{"\u006bind":7,"#,           // "kind" again, spelled with an escape
            r#"{"KIND":7,"#,                 // case variants next to the real field
            r#"{"Kind":7,"#,
            r#"{"Created_At":1,"#,
            r#"{"SIG":"00","#,
        ] {
            assert_eq!(parse(&format!("{prefix}{body}")).err(), Some(Error::EventMalformed), "{prefix}");
        }
        let created = good["created_at"].as_u64().unwrap();
        for spelling in [format!("{created}.0"), format!("{}e1", created / 10), "1e400".to_owned()] {
            let t = text.replace(&format!("\"created_at\":{created}"), &format!("\"created_at\":{spelling}"));
            assert_ne!(t, text);
            assert_eq!(parse(&t).err(), Some(Error::EventMalformed), "{spelling}");
        }
    }
}
