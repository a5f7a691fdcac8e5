//! Live delivery over real connections (DESIGN §12.19):
//!  * commit order: 4 writers in 2 communities, random transaction lengths (some held open
//!    across others' commits, some rolled back), 2 pollers per community looping `poll`:
//!    every committed event of the poller's community arrives exactly once, nothing rolled
//!    back, nothing of the other community, in an order consistent with commit order
//!    (mutation "positions from max(position) + 1, without the counter lock");
//!  * the hand-over: `req` and `cursor()` on one REPEATABLE READ snapshot while a writer
//!    publishes, then `poll` from that cursor: no event lost or twice;
//!  * wake-ups: `LISTEN` on a community's channel hears its commits and nothing of another's
//!    (mutation "no wake-up notify").

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use postgres::fallible_iterator::FallibleIterator;
use postgres::{Client, IsolationLevel};
use serde_json::json;

use crate::prng::Rng;
use crate::report::Report;
use crate::setup::{self, err, Keys, Pg, Scratch};

const HOSTS: [&str; 3] = ["live-a.example", "live-b.example", "live-c.example"];
const WRITERS: usize = 4;
const TXNS_PER_WRITER: usize = 180;

/// A writer transaction that committed: its events and when COMMIT was sent and answered.
struct Committed {
    community: usize,
    ids: Vec<String>,
    sent: Instant,
    answered: Instant,
}

#[derive(Default)]
struct Log {
    committed: Vec<Committed>,
    rolled_back: HashSet<String>,
}

pub fn run(pg: &Pg, seed: u64, report: &mut Report) {
    let setup = fixture(pg, seed);
    let (s, keys, tokens) = match setup {
        Ok(x) => x,
        Err(e) => return report.check("live: setup", Err(e)),
    };
    println!("# live: seed {seed}");
    report.check("live: every committed event delivered once, in commit order, to its community only", commit_order(&s, &keys, &tokens, seed));
    report.check("live: req and cursor() on one snapshot, then poll: nothing lost, nothing twice", hand_over(&s, &keys, &tokens));
    report.check("live: LISTEN on a community's channel hears its commits and no other's", wake_ups(&s, &keys, &tokens));
}

/// Three communities; key 0..WRITERS write (writer w in community w % 2, key WRITERS+c reads c).
fn fixture(pg: &Pg, seed: u64) -> Result<(Scratch, Keys, Vec<String>), String> {
    let s = Scratch::create(pg, "live")?;
    let keys = Keys::generate(&mut Rng::new(seed ^ 0x11fe), WRITERS + HOSTS.len());
    let mut a = s.admin()?;
    for (c, host) in HOSTS.iter().enumerate() {
        let slug = format!("live{c}");
        setup::create_community(&mut a, &slug, host, "allowlist")?;
        setup::admit(&mut a, &slug, &keys.pks[WRITERS + c], "member")?;
    }
    for w in 0..WRITERS {
        setup::admit(&mut a, &format!("live{}", w % 2), &keys.pks[w], "member")?;
    }
    setup::admit(&mut a, "live2", &keys.pks[0], "member")?;
    let mut r = s.relay()?;
    let mut tokens = Vec::new();
    for w in 0..WRITERS {
        tokens.push(setup::login(&mut r, &keys, w, HOSTS[w % 2])?);
    }
    for c in 0..HOSTS.len() {
        tokens.push(setup::login(&mut r, &keys, WRITERS + c, HOSTS[c])?);
    }
    tokens.push(setup::login(&mut r, &keys, 0, HOSTS[2])?); // writer 0 in community 2: token WRITERS + 3
    Ok((s, keys, tokens))
}

/// `poll('{}', cursor)` in its own transaction: (event id, cursor) in delivery order.
fn poll(c: &mut Client, host: &str, token: &str, cursor: &str) -> Result<Vec<(String, String)>, String> {
    setup::txn(c, host, Some(token), |c| {
        let rows = c
            .query("SELECT event ->> 'id', cursor FROM buzz.poll('{}'::jsonb, $1)", &[&cursor])
            .map_err(|e| format!("poll: {}", err(&e)))?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    })
}

fn start_cursor(c: &mut Client, host: &str, token: &str) -> Result<String, String> {
    setup::txn(c, host, Some(token), |c| {
        c.query_one("SELECT buzz.cursor()", &[]).map(|r| r.get(0)).map_err(|e| err(&e))
    })
}

/// Writer `w`: transactions of 1–3 events, sometimes held open, sometimes rolled back.
fn writer(s: &Scratch, keys: &Keys, token: &str, w: usize, seed: u64, log: &Mutex<Log>) -> Result<(), String> {
    let mut c = s.relay()?;
    let mut rng = Rng::new(seed.wrapping_add(w as u64 * 7919));
    let host = HOSTS[w % 2];
    for t in 0..TXNS_PER_WRITER {
        setup::begin_enter(&mut c, host, Some(token))?;
        let mut ids = Vec::new();
        for i in 0..1 + rng.below(3) {
            let ev = keys.sign(w, setup::now(), 1, &[json!(["t", "live"])], &format!("w{w} t{t} e{i}"));
            let (ok, msg) = setup::publish_stmt(&mut c, &ev)?;
            if !ok {
                setup::rollback(&mut c);
                return Err(format!("writer {w}: publish refused: {msg}"));
            }
            ids.push(setup::id_of(&ev));
        }
        if rng.chance(30) {
            thread::sleep(Duration::from_millis(rng.below(15) as u64)); // held open across others' commits
        }
        if rng.chance(10) {
            setup::rollback(&mut c);
            log.lock().unwrap().rolled_back.extend(ids);
            continue;
        }
        let sent = Instant::now();
        setup::commit(&mut c)?;
        let answered = Instant::now();
        log.lock().unwrap().committed.push(Committed { community: w % 2, ids, sent, answered });
    }
    Ok(())
}

/// A poller of community `c` until the writers are done and one more poll brings nothing.
fn poller(s: &Scratch, token: &str, c: usize, done: &AtomicBool) -> Result<Vec<String>, String> {
    let mut conn = s.relay()?;
    let mut cursor = start_cursor(&mut conn, HOSTS[c], token)?;
    let mut got = Vec::new();
    loop {
        let finished = done.load(Ordering::SeqCst);
        let rows = poll(&mut conn, HOSTS[c], token, &cursor)?;
        if let Some((_, cur)) = rows.last() {
            cursor = cur.clone();
        }
        let empty = rows.is_empty();
        got.extend(rows.into_iter().map(|(id, _)| id));
        if finished && empty {
            return Ok(got);
        }
        if empty {
            thread::sleep(Duration::from_millis(2));
        }
    }
}

fn commit_order(s: &Scratch, keys: &Keys, tokens: &[String], seed: u64) -> Result<(), String> {
    let log = Mutex::new(Log::default());
    let done = AtomicBool::new(false);
    let (writers, pollers) = thread::scope(|sc| {
        let pollers: Vec<_> = (0..4).map(|p| {
            let (done, token) = (&done, &tokens[WRITERS + p % 2]);
            sc.spawn(move || poller(s, token, p % 2, done))
        }).collect();
        thread::sleep(Duration::from_millis(100)); // the pollers hold their start cursors
        let writers: Vec<_> = (0..WRITERS).map(|w| {
            let (log, token) = (&log, &tokens[w]);
            sc.spawn(move || writer(s, keys, token, w, seed, log))
        }).collect();
        let writers: Vec<_> = writers.into_iter().map(|h| h.join().unwrap_or(Err("writer panicked".into()))).collect();
        done.store(true, Ordering::SeqCst);
        let pollers: Vec<_> = pollers.into_iter().map(|h| h.join().unwrap_or(Err("poller panicked".into()))).collect();
        (writers, pollers)
    });
    for w in writers {
        w?;
    }
    let log = log.into_inner().unwrap();
    let total: usize = log.committed.iter().map(|t| t.ids.len()).sum();
    if total < 1000 {
        return Err(format!("only {total} committed events (need at least 1,000)"));
    }
    let community_of: HashMap<&str, usize> =
        log.committed.iter().flat_map(|t| t.ids.iter().map(move |id| (id.as_str(), t.community))).collect();
    // Cursors are opaque: the positions are read as the superuser.
    let stored: HashMap<String, i64> = s
        .admin()?
        .query("SELECT id, position FROM buzz.events", &[])
        .map_err(|e| err(&e))?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    for (p, got) in pollers.into_iter().enumerate() {
        let got = got?;
        let c = p % 2;
        let mut seen = HashSet::new();
        for id in &got {
            if !seen.insert(id.as_str()) {
                return Err(format!("poller {p}: {id} delivered twice"));
            }
            if log.rolled_back.contains(id) {
                return Err(format!("poller {p}: rolled-back {id} delivered"));
            }
            match community_of.get(id.as_str()) {
                Some(&k) if k == c => {}
                Some(_) => return Err(format!("poller {p} of community {c}: {id} of the other community delivered")),
                None => return Err(format!("poller {p}: {id} was never committed")),
            }
        }
        let expected = community_of.values().filter(|&&k| k == c).count();
        if seen.len() != expected {
            return Err(format!("poller {p}: {} of {expected} committed events delivered", seen.len()));
        }
        if got.windows(2).any(|w| stored.get(&w[0]) >= stored.get(&w[1])) {
            return Err(format!("poller {p}: not delivered in position order"));
        }
        // A transaction whose COMMIT was answered before another's was sent committed first:
        // all its events come before all of the other's (in the order delivered).
        let pos: HashMap<&str, usize> = got.iter().enumerate().map(|(i, id)| (id.as_str(), i)).collect();
        let txns: Vec<_> = log.committed.iter().filter(|t| t.community == c).collect();
        let span = |t: &Committed| {
            let ps = t.ids.iter().map(|id| pos[id.as_str()]);
            (ps.clone().min().unwrap_or(0), ps.max().unwrap_or(0))
        };
        for a in &txns {
            for b in &txns {
                if a.answered < b.sent && span(a).1 >= span(b).0 {
                    return Err(format!("poller {p}: a transaction committed later was delivered before an earlier one"));
                }
            }
        }
    }
    println!("# live: {total} committed events, {} rolled back, delivered to 2 pollers per community", log.rolled_back.len());
    Ok(())
}

fn hand_over(s: &Scratch, keys: &Keys, tokens: &[String]) -> Result<(), String> {
    let host = HOSTS[2];
    let (reader, writer_token) = (&tokens[WRITERS + 2], &tokens[WRITERS + 3]);
    let published = Mutex::new(Vec::new());
    let taken = AtomicBool::new(false);
    let done = AtomicBool::new(false);
    let result = thread::scope(|sc| {
        let w = sc.spawn(|| -> Result<(), String> {
            let mut c = s.relay()?;
            for i in 0..300 {
                let ev = keys.sign(0, setup::now(), 1, &[], &format!("hand-over {i}"));
                let (ok, msg) = setup::publish(&mut c, host, writer_token, &ev)?;
                if !ok {
                    return Err(format!("publish refused: {msg}"));
                }
                published.lock().unwrap().push(setup::id_of(&ev));
                if i > 250 && !taken.load(Ordering::SeqCst) {
                    thread::sleep(Duration::from_millis(5));
                }
            }
            done.store(true, Ordering::SeqCst);
            Ok(())
        });
        let h = sc.spawn(|| -> Result<(HashSet<String>, Vec<String>), String> {
            let mut c = s.relay()?;
            while published.lock().unwrap().len() < 100 {
                thread::sleep(Duration::from_millis(1));
            }
            let mut t = c.build_transaction().isolation_level(IsolationLevel::RepeatableRead).start().map_err(|e| err(&e))?;
            t.execute("SELECT buzz.enter($1, $2)", &[&host, reader]).map_err(|e| err(&e))?;
            let snapshot: HashSet<String> = t
                .query("SELECT e ->> 'id' FROM buzz.req('{}'::jsonb) e", &[])
                .map_err(|e| err(&e))?
                .iter()
                .map(|r| r.get(0))
                .collect();
            let mut cursor: String = t.query_one("SELECT buzz.cursor()", &[]).map_err(|e| err(&e))?.get(0);
            t.commit().map_err(|e| err(&e))?;
            taken.store(true, Ordering::SeqCst);
            let mut live = Vec::new();
            loop {
                let finished = done.load(Ordering::SeqCst);
                let rows = poll(&mut c, host, reader, &cursor)?;
                if let Some((_, cur)) = rows.last() {
                    cursor = cur.clone();
                }
                let empty = rows.is_empty();
                live.extend(rows.into_iter().map(|(id, _)| id));
                if finished && empty {
                    return Ok((snapshot, live));
                }
                thread::sleep(Duration::from_millis(1));
            }
        });
        let w = w.join().unwrap_or(Err("writer panicked".into()));
        let h = h.join().unwrap_or(Err("reader panicked".into()));
        w.and(h)
    });
    let (snapshot, live) = result?;
    let all: HashSet<String> = published.into_inner().unwrap().into_iter().collect();
    let twice = live.iter().filter(|id| snapshot.contains(*id)).count();
    let mut union = snapshot.clone();
    union.extend(live.iter().cloned());
    if twice > 0 || union != all || live.len() != live.iter().collect::<HashSet<_>>().len() {
        return Err(format!(
            "snapshot {} + live {} events, {twice} in both; {} published, {} never delivered",
            snapshot.len(), live.len(), all.len(), all.difference(&union).count()
        ));
    }
    if snapshot.len() < 100 || live.is_empty() {
        return Err(format!("the hand-over did not happen mid-stream (snapshot {}, live {})", snapshot.len(), live.len()));
    }
    Ok(())
}

fn wake_ups(s: &Scratch, keys: &Keys, tokens: &[String]) -> Result<(), String> {
    let mut l = s.relay()?;
    let channel = |c: &mut Client, community: usize| -> Result<String, String> {
        setup::txn(c, HOSTS[community], Some(&tokens[WRITERS + community]), |c| {
            c.query_one("SELECT buzz.listen_channel()", &[]).map(|r| r.get(0)).map_err(|e| err(&e))
        })
    };
    let (a, b) = (channel(&mut l, 0)?, channel(&mut l, 1)?);
    if a == b {
        return Err("two communities share a channel".into());
    }
    l.batch_execute(&format!("LISTEN \"{a}\"")).map_err(|e| format!("LISTEN: {}", err(&e)))?;
    let mut w = s.relay()?;
    let ev = keys.sign(1, setup::now(), 1, &[], "for b's listeners only");
    setup::publish(&mut w, HOSTS[1], &tokens[1], &ev)?;
    let heard = l.notifications().timeout_iter(Duration::from_millis(500)).count().map_err(|e| err(&e))?;
    if heard != 0 {
        return Err(format!("a's listener heard {heard} notifications of b's commit"));
    }
    let ev = keys.sign(0, setup::now(), 1, &[], "for a's listeners");
    setup::publish(&mut w, HOSTS[0], &tokens[0], &ev)?;
    let mut n = l.notifications();
    let mut it = n.timeout_iter(Duration::from_secs(5));
    match it.next() {
        Ok(Some(note)) if note.channel() == a && note.payload().is_empty() => Ok(()),
        Ok(Some(note)) => Err(format!("notification on {:?} with payload {:?}", note.channel(), note.payload())),
        Ok(None) => Err("no notification within 5 s of a's commit".into()),
        Err(e) => Err(err(&e)),
    }
}
