//! The event generator: a reproducible, relay-like stream of signed events over C communities.
//!
//! * Community sizes follow Zipf(0.7) over ranks (community 0 is the largest); authors per
//!   community ≈ events/40 (3..=500), and who posts follows Zipf(1.0) over the authors.
//! * Kinds: notes (1), reactions (7, `e`/`p`/`k`), reposts (6), NIP-22 comments (1111),
//!   replaceable 0/3/10002, addressable 30023 (`d`, a few versions each), deletions (5), and
//!   channel messages (kind 9 with an `h` tag).
//! * Channels only exist once the loader has created them through the relay API, so channel
//!   events are written as *templates* (no `h`, unsigned); the loader adds `["h", <uuid>]` and
//!   signs them with the same deterministic keys (see [`author_sk`]).
//!
//! File format, one event per line, ordered by time: `created_at \t community \t author \t
//! channel \t payload`, where channel is `-` and payload the signed NIP-01 JSON, or channel is
//! 0..2 and payload `{"kind":9,"tags":[...],"content":"..."}`. A manifest (`FILE.manifest.json`)
//! records the seeds and the per-community plan.

use std::collections::VecDeque;
use std::io::{BufWriter, Write};

use buzz_sign::{Keypair, Secp256k1};
use serde_json::{json, Value};

use crate::rng::{mix, Rng, Zipf};

/// Time of the first generated event (2023-11-14) and the span of the main stream.
pub const T0: i64 = 1_700_000_000;
pub const SPAN: i64 = 30 * 86_400;
/// Channels every community gets: two open, one private (authors 0..=2 are its members).
pub const CHANNELS: [(&str, &str); 3] = [("general", "open"), ("random", "open"), ("council", "private")];
pub const COUNCIL: usize = 3;

#[derive(Clone, Debug)]
pub struct CommunityPlan {
    pub events: usize,
    pub authors: usize,
}

/// Split `events` over `communities` by Zipf(0.7) weights.
pub fn plan(events: usize, communities: usize) -> Vec<CommunityPlan> {
    let w = Zipf::new(communities, 0.7).weights();
    let mut counts: Vec<usize> = w.iter().map(|x| (x * events as f64).floor() as usize).collect();
    let mut rest = events - counts.iter().sum::<usize>();
    let mut i = 0;
    while rest > 0 {
        counts[i % communities] += 1;
        rest -= 1;
        i += 1;
    }
    counts
        .into_iter()
        .map(|n| CommunityPlan { events: n, authors: (n / 40).clamp(3, 500) })
        .collect()
}

/// The secret key (hex) of author `a` of community `c`: a pure function of the key seed.
pub fn author_sk(key_seed: u64, c: usize, a: usize) -> String {
    let mut rng = Rng::new(mix(&[key_seed, 0xA17, c as u64, a as u64]));
    loop {
        let b = rng.bytes32();
        if secp256k1::SecretKey::from_slice(&b).is_ok() {
            return hex::encode(b);
        }
    }
}

pub fn keypairs(secp: &Secp256k1<secp256k1::All>, key_seed: u64, c: usize, n: usize) -> Vec<Keypair> {
    (0..n).map(|a| buzz_sign::keypair(secp, &author_sk(key_seed, c, a)).expect("valid key")).collect()
}

pub const HASHTAGS: &[&str] = &[
    "nostr", "bitcoin", "gm", "asknostr", "art", "music", "photography", "news", "dev", "rust", "food",
    "travel", "memes", "books", "zap", "plebchain", "grownostr", "coffee", "science", "privacy",
];

fn hashtag(rng: &mut Rng, z: &Zipf) -> String {
    let k = z.sample(rng);
    if k < HASHTAGS.len() { HASHTAGS[k].to_owned() } else { format!("topic{k}") }
}

fn word(rng: &mut Rng) -> String {
    const SYL: &[&str] = &["ka", "lo", "mi", "re", "tu", "sa", "ne", "po", "vi", "da", "zen", "bor", "qua", "lit", "mor", "fen"];
    let n = rng.range(1, 3);
    (0..n).map(|_| *rng.pick(SYL)).collect()
}

fn text(rng: &mut Rng, lo: u64, hi: u64) -> String {
    let n = rng.range(lo, hi);
    let mut s = String::new();
    for i in 0..n {
        if i > 0 {
            s.push(' ');
        }
        s.push_str(&word(rng));
    }
    if rng.chance(0.1) {
        s.push_str(" \"quoted\" \\ and\nnewline ✓");
    }
    s
}

/// One generated event: signed, or a channel template the loader finishes.
pub struct Gen {
    pub created_at: i64,
    pub community: usize,
    pub author: usize,
    pub seq: usize,
    /// None: `payload` is a signed event. Some(k): template for channel k.
    pub channel: Option<usize>,
    pub payload: String,
}

impl Gen {
    pub fn line(&self) -> String {
        let ch = self.channel.map(|c| c.to_string()).unwrap_or_else(|| "-".into());
        format!("{}\t{}\t{}\t{}\t{}", self.created_at, self.community, self.author, ch, self.payload)
    }

    pub fn parse_line(line: &str) -> Gen {
        let mut it = line.splitn(5, '\t');
        let created_at = it.next().unwrap().parse().unwrap();
        let community = it.next().unwrap().parse().unwrap();
        let author = it.next().unwrap().parse().unwrap();
        let ch = it.next().unwrap();
        let channel = if ch == "-" { None } else { Some(ch.parse().unwrap()) };
        Gen { created_at, community, author, seq: 0, channel, payload: it.next().unwrap().to_owned() }
    }
}

/// Sign a channel template for channel `channel_uuid`.
pub fn sign_template(secp: &Secp256k1<secp256k1::All>, kp: &Keypair, created_at: i64, template: &str, channel_uuid: &str) -> String {
    let t: Value = serde_json::from_str(template).expect("template json");
    let kind = t["kind"].as_u64().unwrap() as u16;
    let mut tags = vec![json!(["h", channel_uuid])];
    tags.extend(t["tags"].as_array().unwrap().iter().cloned());
    buzz_sign::sign_event(secp, kp, created_at, kind, &tags, t["content"].as_str().unwrap())
}

struct Recent {
    id: String,
    pubkey: String,
    kind: u16,
    author: usize,
    json: String,
}

/// All events of community `c` (in time order).
pub fn community_events(seed: u64, key_seed: u64, t0: i64, span: i64, c: usize, p: &CommunityPlan) -> Vec<Gen> {
    let secp = Secp256k1::new();
    let keys = keypairs(&secp, key_seed, c, p.authors);
    let pubs: Vec<String> = keys.iter().map(buzz_sign::pubkey_hex).collect();
    let mut rng = Rng::new(mix(&[seed, 0xC0, c as u64]));
    let who = Zipf::new(p.authors, 1.0);
    let tagz = Zipf::new(300, 1.1);
    let recentz = Zipf::new(200, 0.8);
    let mut times: Vec<i64> = (0..p.events).map(|_| t0 + rng.below(span as u64) as i64).collect();
    times.sort_unstable();
    let mut recent: VecDeque<Recent> = VecDeque::with_capacity(200);
    let mut out = Vec::with_capacity(p.events);
    for (seq, created_at) in times.into_iter().enumerate() {
        let a = who.sample(&mut rng);
        let kp = &keys[a];
        let r = rng.f64();
        // Target for reactions/reposts/comments: recent events, biased to the newest.
        let target = if recent.is_empty() { None } else { Some(recentz.sample(&mut rng) % recent.len()) };
        let (kind, tags, content, channel): (u16, Vec<Value>, String, Option<usize>) = if r < 0.44 || (r < 0.87 && target.is_none()) {
            let mut tags = vec![];
            if rng.chance(0.3) {
                for _ in 0..rng.range(1, 3) {
                    tags.push(json!(["t", hashtag(&mut rng, &tagz)]));
                }
            }
            if let (Some(i), true) = (target, rng.chance(0.15)) {
                let t = &recent[i];
                tags.push(json!(["e", t.id, "", "root"]));
                tags.push(json!(["p", t.pubkey]));
            } else if rng.chance(0.1) {
                tags.push(json!(["p", pubs[rng.below(p.authors as u64) as usize]]));
            }
            if rng.chance(0.01) {
                tags.push(json!(["expiration", "4102444800"]));
            }
            (1, tags, text(&mut rng, 4, 40), None)
        } else if r < 0.74 {
            let t = &recent[target.unwrap()];
            let content = if rng.chance(0.8) { "+".to_owned() } else { "🤙".to_owned() };
            (7, vec![json!(["e", t.id]), json!(["p", t.pubkey]), json!(["k", t.kind.to_string()])], content, None)
        } else if r < 0.79 {
            let t = &recent[target.unwrap()];
            (6, vec![json!(["e", t.id, ""]), json!(["p", t.pubkey])], t.json.clone(), None)
        } else if r < 0.87 {
            let t = &recent[target.unwrap()];
            let tags = vec![
                json!(["E", t.id, "", t.pubkey]),
                json!(["K", t.kind.to_string()]),
                json!(["P", t.pubkey]),
                json!(["e", t.id, "", t.pubkey]),
                json!(["k", t.kind.to_string()]),
                json!(["p", t.pubkey]),
            ];
            (1111, tags, text(&mut rng, 3, 30), None)
        } else if r < 0.885 {
            let name = word(&mut rng);
            let content = json!({"name": name, "about": text(&mut rng, 5, 20), "picture": format!("https://img.example/{c}/{a}.png")}).to_string();
            (0, vec![], content, None)
        } else if r < 0.90 {
            let n = rng.range(1, 50.min(p.authors as u64));
            let tags = (0..n).map(|_| json!(["p", pubs[rng.below(p.authors as u64) as usize]])).collect();
            (3, tags, String::new(), None)
        } else if r < 0.91 {
            let tags = (0..rng.range(1, 4)).map(|i| json!(["r", format!("wss://relay{i}.example")])).collect();
            (10002, tags, String::new(), None)
        } else if r < 0.93 {
            let d = format!("article-{}", rng.below(5));
            let mut tags = vec![json!(["d", d]), json!(["title", text(&mut rng, 2, 6)]), json!(["published_at", created_at.to_string()])];
            for _ in 0..rng.range(1, 4) {
                tags.push(json!(["t", hashtag(&mut rng, &tagz)]));
            }
            (30023, tags, text(&mut rng, 150, 450), None)
        } else if r < 0.933 {
            // Delete one of the author's own recent notes, if there is one.
            match recent.iter().find(|t| t.author == a && t.kind == 1) {
                Some(t) => (5, vec![json!(["e", t.id]), json!(["k", "1"])], "oops".to_owned(), None),
                None => (1, vec![], text(&mut rng, 4, 20), None),
            }
        } else {
            // Channel chat (kind 9): open channels for everyone, the private one for the council.
            let ch = if a < COUNCIL && rng.chance(0.3) { 2 } else if rng.chance(0.75) { 0 } else { 1 };
            let mut tags = vec![];
            if rng.chance(0.2) {
                tags.push(json!(["t", hashtag(&mut rng, &tagz)]));
            }
            (9, tags, text(&mut rng, 2, 25), Some(ch))
        };
        let payload = match channel {
            Some(_) => json!({"kind": kind, "tags": tags, "content": content}).to_string(),
            None => buzz_sign::sign_event(&secp, kp, created_at, kind, &tags, &content),
        };
        if channel.is_none() && matches!(kind, 1 | 1111) {
            let id = payload[7..71].to_owned();
            if recent.len() == 200 {
                recent.pop_back();
            }
            recent.push_front(Recent { id, pubkey: pubs[a].clone(), kind, author: a, json: payload.clone() });
        }
        out.push(Gen { created_at, community: c, author: a, seq, channel, payload });
    }
    out
}

/// Generate all communities' events on `threads` threads, merged in time order.
pub fn generate_all(seed: u64, key_seed: u64, t0: i64, span: i64, plan: &[CommunityPlan], threads: usize) -> Vec<Gen> {
    let mut all: Vec<Gen> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                s.spawn(move || {
                    let mut v = Vec::new();
                    for (c, p) in plan.iter().enumerate().filter(|(c, _)| c % threads == t) {
                        v.extend(community_events(seed, key_seed, t0, span, c, p));
                    }
                    v
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    all.sort_by_key(|g| (g.created_at, g.community, g.seq));
    all
}

pub fn write_file(path: &str, events: &[Gen], manifest: &Value) -> std::io::Result<()> {
    let mut w = BufWriter::new(std::fs::File::create(path)?);
    for g in events {
        writeln!(w, "{}", g.line())?;
    }
    w.flush()?;
    std::fs::write(format!("{path}.manifest.json"), serde_json::to_string_pretty(manifest).unwrap())
}

pub fn read_manifest(path: &str) -> Value {
    let text = std::fs::read_to_string(format!("{path}.manifest.json")).expect("manifest next to the events file");
    serde_json::from_str(&text).unwrap()
}

pub fn manifest_plan(m: &Value) -> Vec<CommunityPlan> {
    m["plan"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| CommunityPlan { events: p[0].as_u64().unwrap() as usize, authors: p[1].as_u64().unwrap() as usize })
        .collect()
}
