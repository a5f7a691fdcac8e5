//! Differential test of the extension's event id and verification against rust-nostr: events
//! built and signed by rust-nostr (random unicode, every JSON escape, control characters,
//! long tags, odd kinds and times) must get the same id from `buzz.event_id` and the same
//! answer from `buzz.verify_event` as rust-nostr gives — and so must tampered copies (content,
//! tag, time, kind or signature changed after signing). The extension and rust-nostr share no
//! serialization code, so a bug in one shows up as a difference. NUL is excluded: the database
//! cannot store it, so the extension refuses it by design.

use nostr::event::{Event, EventBuilder, EventId, FinalizeUnsignedEvent, Kind, Signature, Tag};
use nostr::key::{Keys, SecretKey};
use nostr::types::Timestamp;
use postgres::Client;

use crate::prng::Rng;
use crate::report::Report;
use crate::setup::{err, Pg, Scratch};

/// How many signed events (each also checked in three tampered forms).
const EVENTS: usize = 3000;

/// Characters that stress the canonical serialization.
const SPECIAL: &[char] = &[
    '"', '\\', '/', '\n', '\r', '\t', '\u{8}', '\u{c}', '\u{1}', '\u{1f}', '\u{7f}', '\u{80}', '\u{a0}', '\u{ad}',
    '\u{2028}', '\u{2029}', '\u{feff}', '\u{fffd}', 'é', 'ü', '中', 'ا', '\u{301}', '😀', '𝄞', '\u{10ffff}', '<', '>', '&', '\'',
];

fn random_char(rng: &mut Rng) -> char {
    match rng.below(10) {
        0..=3 => (b'a' + rng.below(26) as u8) as char,
        4..=6 => *rng.pick(SPECIAL),
        7 => char::from_u32(1 + rng.below(0x1f) as u32).unwrap(), // C0 controls but NUL
        8 => char::from_u32(0xa0 + rng.below(0xd7ff - 0xa0) as u32).unwrap_or('x'),
        _ => char::from_u32(0x1_0000 + rng.below(0xf_ffff) as u32).unwrap_or('y'),
    }
}

fn random_text(rng: &mut Rng, max: usize) -> String {
    let len = if rng.chance(5) { max } else { rng.below(max.min(64) + 1) };
    (0..len).map(|_| random_char(rng)).collect()
}

fn random_event(rng: &mut Rng) -> Event {
    let secret = loop {
        if let Ok(sk) = SecretKey::from_hex(&rng.hex32()) {
            break sk;
        }
    };
    let keys = Keys::new(secret);
    let kind = *rng.pick(&[0u16, 1, 3, 5, 7, 1059, 10_002, 22_242, 27_235, 30_023, 39_000, 65_535]);
    let created_at = *rng.pick(&[0u64, 1, 1_700_000_000, 4_102_444_800, i64::MAX as u64]);
    let tags: Vec<Tag> = (0..rng.below(8))
        .map(|_| {
            let name = if rng.chance(50) { rng.pick(&["e", "p", "t", "h", "d", "expiration"]).to_string() } else { random_text(rng, 8) };
            let cells = std::iter::once(name).chain((0..rng.below(4)).map(|_| random_text(rng, 300)));
            Tag::parse(cells.collect::<Vec<_>>()).expect("non-empty")
        })
        .collect();
    let content = random_text(rng, 6_000);
    let mut unsigned = EventBuilder::new(Kind::from_u16(kind), content)
        .tags(tags)
        .custom_created_at(Timestamp::from_secs(created_at))
        .finalize_unsigned(keys.public_key());
    let id = unsigned.id();
    let aux: [u8; 32] = hex::decode(rng.hex32()).unwrap().try_into().unwrap();
    let sig = keys.sign_schnorr_with_aux_rand(&secp256k1::Secp256k1::signing_only(), id.as_bytes(), &aux);
    unsigned.add_signature(sig).expect("rust-nostr verifies what it signed")
}

/// Copies changed after signing: the stated id and signature no longer match.
fn tampered(ev: &Event, rng: &mut Rng) -> Vec<Event> {
    let mut content = ev.clone();
    content.content.push(random_char(rng));
    let mut time = ev.clone();
    time.created_at = Timestamp::from_secs(time.created_at.as_secs() ^ 1);
    let mut sig = ev.clone();
    let mut bytes = sig.sig.to_bytes();
    bytes[rng.below(64)] ^= 1 << rng.below(8);
    sig.sig = Signature::from_byte_array(bytes);
    let mut tags = ev.clone();
    tags.tags.push(Tag::parse(["t", "extra"]).unwrap());
    vec![content, time, sig, tags]
}

/// rust-nostr's id of the fields as they stand (not the stated id).
fn nostr_id(ev: &Event) -> EventId {
    EventId::compute(&ev.pubkey, &ev.created_at, &ev.kind, &ev.tags, &ev.content)
}

fn compare(c: &mut Client, ev: &Event) -> Result<(), String> {
    let json = ev.as_json();
    let row = c
        .query_one("SELECT buzz.event_id($1), buzz.verify_event($1)", &[&json])
        .map_err(|e| format!("{} for {json:.200}", err(&e)))?;
    let (id, ok): (String, bool) = (row.get(0), row.get(1));
    let want_id = nostr_id(ev).to_hex();
    let want_ok = ev.verify().is_ok();
    if id != want_id || ok != want_ok {
        return Err(format!("extension says ({id}, {ok}), rust-nostr ({want_id}, {want_ok}) for {json:.300}"));
    }
    Ok(())
}

pub fn run(pg: &Pg, seed: u64, report: &mut Report) {
    let s = match Scratch::create(pg, "differential") {
        Ok(s) => s,
        Err(e) => return report.check("differential: setup", Err(e)),
    };
    let mut rng = Rng::new(seed ^ 0xD1FF);
    let r = s.relay().and_then(|mut c| {
        let (mut valid, mut invalid) = (0, 0);
        for _ in 0..EVENTS {
            // Within buzz_tenancy.max_event_size (64 KiB), which the extension enforces first.
            let ev = std::iter::repeat_with(|| random_event(&mut rng)).find(|e| e.as_json().len() < 60_000).unwrap();
            compare(&mut c, &ev)?;
            valid += 1;
            for t in tampered(&ev, &mut rng) {
                compare(&mut c, &t)?;
                invalid += usize::from(t.verify().is_err());
            }
        }
        println!("# differential: {valid} signed events and {} tampered copies ({invalid} invalid) agree with rust-nostr (seed {seed})", 4 * valid);
        Ok(())
    });
    report.check(&format!("differential: {EVENTS} rust-nostr events (and tampered copies): same id and verification answer"), r);
}
