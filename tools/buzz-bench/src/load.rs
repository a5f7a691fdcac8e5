//! The loader: communities, hosts and members through the operator API; NIP-42 logins and
//! channels through the relay API; then every event through `buzz.publish($1)` as the relay
//! role, one transaction per event (`BEGIN; enter(host, token); publish; COMMIT`), on two
//! connections in parallel (events are split by community, so each keeps its time order).

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::time::Instant;

use buzz_sign::{Keypair, Secp256k1};
use postgres::Client;
use serde_json::json;

use crate::common::{connect, Community, State};
use crate::gen::{self, CommunityPlan, CHANNELS, COUNCIL};

pub fn host_of(slug: &str) -> String {
    format!("{slug}.bench.example")
}

/// Create the relay role (cluster-wide, once) and grant it the relay API in this database.
pub fn relay_role(admin: &mut Client, role: &str) {
    admin
        .batch_execute(&format!(
            "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{role}') THEN CREATE ROLE {role} LOGIN; END IF; END $$;"
        ))
        .unwrap();
    admin.execute("SELECT buzz.setup_relay_role($1)", &[&role]).unwrap();
}

/// NIP-42 as a relay does it: a committed challenge, then authenticate → session token.
pub fn login(relay: &mut Client, secp: &Secp256k1<secp256k1::All>, kp: &Keypair, host: &str) -> String {
    let mut tx = relay.transaction().unwrap();
    tx.execute("SELECT buzz.enter($1::text)", &[&host]).unwrap();
    let chal: String = tx.query_one("SELECT buzz.auth_challenge()", &[]).unwrap().get(0);
    tx.commit().unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let tags = [json!(["relay", format!("wss://{host}/")]), json!(["challenge", chal])];
    let ev = buzz_sign::sign_event(secp, kp, now, 22242, &tags, "");
    let mut tx = relay.transaction().unwrap();
    tx.execute("SELECT buzz.enter($1::text)", &[&host]).unwrap();
    let token: String = tx.query_one("SELECT buzz.authenticate($1::text)", &[&ev]).unwrap().get(0);
    tx.commit().unwrap();
    token
}

/// Communities, hosts, members (operator API), logins and channels (relay API).
pub fn setup(db: &str, role: &str, key_seed: u64, plan: &[CommunityPlan], slug_prefix: &str) -> State {
    let t = Instant::now();
    let mut admin = connect("postgres", db);
    relay_role(&mut admin, role);
    let secp = Secp256k1::new();
    let mut communities = Vec::with_capacity(plan.len());
    for (c, p) in plan.iter().enumerate() {
        let slug = format!("{slug_prefix}{c}");
        let host = host_of(&slug);
        let keys = gen::keypairs(&secp, key_seed, c, p.authors);
        let pubkeys: Vec<String> = keys.iter().map(buzz_sign::pubkey_hex).collect();
        let mut tx = admin.transaction().unwrap();
        let id: uuid::Uuid = tx
            .query_one("SELECT buzz.create_community($1, $2, 'allowlist')", &[&slug, &format!("Bench community {c}")])
            .unwrap()
            .get(0);
        tx.execute("SELECT buzz.add_host($1, $2)", &[&slug, &host]).unwrap();
        tx.execute(
            "SELECT buzz.admit($1, pk, CASE WHEN o = 1 THEN 'owner' ELSE 'member' END)
               FROM unnest($2::text[]) WITH ORDINALITY AS u(pk, o)",
            &[&slug, &pubkeys],
        )
        .unwrap();
        tx.commit().unwrap();
        communities.push(Community { slug, host, id, channels: vec![], pubkeys, tokens: vec![] });
    }
    eprintln!("setup: {} communities, {} members via the operator API in {:.1}s", plan.len(),
              communities.iter().map(|c| c.pubkeys.len()).sum::<usize>(), t.elapsed().as_secs_f64());

    // Logins and channels, on two relay connections.
    let t = Instant::now();
    let mut parts: Vec<Vec<(usize, Community)>> = vec![vec![], vec![]];
    for (i, c) in communities.into_iter().enumerate() {
        parts[i % 2].push((i, c));
    }
    let done: Vec<(usize, Community)> = std::thread::scope(|s| {
        let hs: Vec<_> = parts
            .into_iter()
            .map(|part| {
                s.spawn(move || {
                    let secp = Secp256k1::new();
                    let mut relay = connect(role, db);
                    let mut out = vec![];
                    for (i, mut c) in part {
                        let keys = gen::keypairs(&secp, key_seed, i, c.pubkeys.len());
                        c.tokens = keys.iter().map(|kp| login(&mut relay, &secp, kp, &c.host)).collect();
                        let mut tx = relay.transaction().unwrap();
                        tx.execute("SELECT buzz.enter($1::text, $2::text)", &[&c.host, &c.tokens[0]]).unwrap();
                        for (name, vis) in CHANNELS {
                            let ch: uuid::Uuid =
                                tx.query_one("SELECT buzz.create_channel($1, $2)", &[&name, &vis]).unwrap().get(0);
                            c.channels.push(ch);
                        }
                        // The channel parameter is uuid in the source and was text in older builds.
                        let add = tx.prepare("SELECT buzz.add_channel_member($1, $2::text, 'member')").unwrap();
                        let council = c.channels[2].to_string();
                        for pk in c.pubkeys.iter().take(COUNCIL).skip(1) {
                            if add.params()[0] == postgres::types::Type::UUID {
                                tx.execute(&add, &[&c.channels[2], pk]).unwrap();
                            } else {
                                tx.execute(&add, &[&council, pk]).unwrap();
                            }
                        }
                        tx.commit().unwrap();
                        out.push((i, c));
                    }
                    out
                })
            })
            .collect();
        hs.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    let mut communities: Vec<(usize, Community)> = done;
    communities.sort_by_key(|(i, _)| *i);
    let communities: Vec<Community> = communities.into_iter().map(|(_, c)| c).collect();
    eprintln!("setup: {} NIP-42 logins + {} channels via the relay API in {:.1}s",
              communities.iter().map(|c| c.tokens.len()).sum::<usize>(), 3 * communities.len(), t.elapsed().as_secs_f64());
    State { db: db.into(), relay_role: role.into(), key_seed, communities }
}

/// Finish a generated line into signed event JSON (signing channel templates here).
pub struct Finisher {
    secp: Secp256k1<secp256k1::All>,
    keys: HashMap<(usize, usize), Keypair>,
    key_seed: u64,
}

impl Finisher {
    pub fn new(key_seed: u64) -> Finisher {
        Finisher { secp: Secp256k1::new(), keys: HashMap::new(), key_seed }
    }

    pub fn finish(&mut self, g: &gen::Gen, st: &State) -> String {
        match g.channel {
            None => g.payload.clone(),
            Some(ch) => {
                let (c, a, seed) = (g.community, g.author, self.key_seed);
                let secp = &self.secp;
                let kp = self.keys.entry((c, a)).or_insert_with(|| buzz_sign::keypair(secp, &gen::author_sk(seed, c, a)).unwrap());
                gen::sign_template(&self.secp, kp, g.created_at, &g.payload, &st.communities[c].channels[ch].to_string())
            }
        }
    }
}

pub struct Publisher {
    pub client: Client,
    enter: postgres::Statement,
    publish: postgres::Statement,
}

impl Publisher {
    pub fn new(role: &str, db: &str) -> Publisher {
        let mut client = connect(role, db);
        let enter = client.prepare("SELECT buzz.enter($1::text, $2::text)").unwrap();
        let publish = client.prepare("SELECT accepted, message FROM buzz.publish($1::text)").unwrap();
        Publisher { client, enter, publish }
    }

    /// One relay request: BEGIN; enter(host, token); publish(event); COMMIT.
    pub fn publish(&mut self, host: &str, token: &str, event: &str) -> (bool, String) {
        let (ok, msg, _) = self.publish_timed(host, token, event);
        (ok, msg)
    }

    /// The same, with the client-observed µs of [BEGIN + COMMIT, enter, publish].
    pub fn publish_timed(&mut self, host: &str, token: &str, event: &str) -> (bool, String, [f64; 3]) {
        let t0 = std::time::Instant::now();
        let mut tx = self.client.transaction().unwrap();
        let t1 = std::time::Instant::now();
        tx.execute(&self.enter, &[&host, &token]).unwrap();
        let t2 = std::time::Instant::now();
        let row = tx.query_one(&self.publish, &[&event]).unwrap();
        let t3 = std::time::Instant::now();
        tx.commit().unwrap();
        let us = |d: std::time::Duration| d.as_secs_f64() * 1e6;
        let times = [us(t1 - t0) + us(t3.elapsed()), us(t2 - t1), us(t3 - t2)];
        (row.get(0), row.get(1), times)
    }
}

/// Read lines [from, to) of a generated file.
pub fn read_lines(path: &str, from: usize, to: usize) -> Vec<gen::Gen> {
    let f = BufReader::new(std::fs::File::open(path).expect("events file"));
    f.lines().skip(from).take(to.saturating_sub(from)).map(|l| gen::Gen::parse_line(&l.unwrap())).collect()
}

/// Publish `events` on two connections; returns (accepted, refused by message, seconds).
pub fn publish_all(st: &State, events: Vec<gen::Gen>) -> (usize, HashMap<String, usize>, f64) {
    let mut parts: Vec<Vec<gen::Gen>> = vec![vec![], vec![]];
    for g in events {
        parts[g.community % 2].push(g);
    }
    let t = Instant::now();
    let results: Vec<(usize, HashMap<String, usize>)> = std::thread::scope(|s| {
        let hs: Vec<_> = parts
            .into_iter()
            .enumerate()
            .map(|(cpu, part)| {
                s.spawn(move || {
                    let mut p = Publisher::new(&st.relay_role, &st.db);
                    crate::common::pin_pair(&mut p.client, cpu);
                    let mut fin = Finisher::new(st.key_seed);
                    let (mut ok, mut refused) = (0usize, HashMap::new());
                    for (i, g) in part.iter().enumerate() {
                        let c = &st.communities[g.community];
                        let ev = fin.finish(g, st);
                        let (accepted, msg) = p.publish(&c.host, &c.tokens[g.author], &ev);
                        if accepted {
                            ok += 1;
                        } else {
                            *refused.entry(msg).or_insert(0) += 1;
                        }
                        if i > 0 && i % 100_000 == 0 {
                            eprintln!("  … {i} events on one connection, {:.0}s", t.elapsed().as_secs_f64());
                        }
                    }
                    (ok, refused)
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let secs = t.elapsed().as_secs_f64();
    let mut ok = 0;
    let mut refused = HashMap::new();
    for (o, r) in results {
        ok += o;
        for (k, v) in r {
            *refused.entry(k).or_insert(0) += v;
        }
    }
    (ok, refused, secs)
}
