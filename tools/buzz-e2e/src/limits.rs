//! Checks of the relay's own limits and plumbing, each found by an outside attack of the relay
//! (issue 13): what it serves where, how much one client may make it hold, whose login a
//! subscription reads with, and that a refused poll is said, not swallowed.

use std::net::Ipv4Addr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use nostr_sdk::prelude::*;

use crate::harness::{client, e, World, CONNECT_BURST_PER_IP, HANDSHAKE_TIMEOUT_SECS, MAX_ANSWER_BYTES, MAX_CONNECTIONS_PER_IP, MAX_FILTER_BYTES, MAX_LOGINS, MAX_REQUESTS_PER_IP, OUTBOUND_BYTES_PER_IP, ROLE, SEND_TIMEOUT_SECS, STATEMENT_TIMEOUT_MS};
use crate::raw::{tcp_from, Raw};

/// The process's counters are every community's traffic: a client of any host must not read
/// them. Mutant "relay serves /metrics publicly" turns this red.
pub async fn metrics_private(w: &mut World) -> Result<(), String> {
    for host in [format!("localhost:{}", w.port), format!("127.0.0.1:{}", w.port), "unknown.example".into()] {
        let (status, body) = w.http_get(&host, "/metrics", "text/plain").await?;
        if status != 404 || body.contains("buzz_relay") {
            return Err(format!("/metrics on the public port for {host}: {status}"));
        }
    }
    // A plain GET is not answered with a text of the relay's own.
    let (status, body) = w.http_get(&format!("localhost:{}", w.port), "/", "text/html").await?;
    if status != 426 || !body.is_empty() {
        return Err(format!("plain GET: {status} {body:?}"));
    }
    w.metric("buzz_relay_connections").await.map(|_| ())
}

/// Answers larger than the client's queue and its socket's buffers wait for the client to read
/// (mutant "outbox gives up at once": drop the client when the queue is full, as the
/// message-counted queue did), and one larger than --max-answer-bytes is cut short (mutant
/// "answers uncapped").
pub async fn big_answer(w: &mut World) -> Result<(), String> {
    const REQS: usize = 4;
    let size = big_events(w).await?;
    let raw = Raw::connect_small_buffer(&w.url_a(), 4096).await?;
    let mut raw = raw.logged_in(&w.url_a(), &w.carol).await?;
    for i in 0..REQS {
        raw.send(format!(r#"["REQ","big{i}",{{"kinds":[4444],"limit":500}}]"#)).await?;
    }
    // Not reading: the answers (≈ 16 × the queue, more than the socket buffers hold) have to
    // wait in the relay, for less than --send-timeout.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let mut got = [0usize; REQS];
    let mut done = 0;
    while done < REQS {
        let m = raw.next().await.ok_or(format!("disconnected after {got:?} events"))?;
        let sub = m[1].as_str().and_then(|s| s.strip_prefix("big")).and_then(|n| n.parse::<usize>().ok()).filter(|n| *n < REQS);
        match (m[0].as_str(), sub) {
            (Some("EVENT"), Some(n)) => got[n] += 1,
            (Some("EOSE"), Some(_)) => done += 1,
            _ => {}
        }
    }
    let most = MAX_ANSWER_BYTES / size + 1;
    if got.iter().any(|&n| n > most || n + 2 < most) {
        return Err(format!("{got:?} events of {BIG_EVENTS} ({size} bytes each) under a {MAX_ANSWER_BYTES}-byte cap"));
    }
    // The connection is still served.
    raw.send(r#"["COUNT","n",{"kinds":[4444]}]"#.into()).await?;
    match raw.next_of("COUNT").await {
        Some(m) if m[2]["count"] == BIG_EVENTS => Ok(()),
        other => Err(format!("COUNT after the answer: {other:?}")),
    }
}

const BIG_EVENTS: usize = 100;

/// alpha's BIG_EVENTS events of kind 4444, ≈ 4 kB each (published once): their size.
async fn big_events(w: &mut World) -> Result<usize, String> {
    let body = "x".repeat(4000);
    let sized = |i: usize| EventBuilder::new(Kind::Custom(4444), format!("{i} {body}")).sign_with_keys(&w.alice).map_err(e);
    let size = sized(0)?.as_json().len();
    let have: i64 = w.admin.query_one("SELECT count(*) FROM buzz.events WHERE kind = 4444", &[]).await.map_err(e)?.get(0);
    if have as usize >= BIG_EVENTS {
        return Ok(size);
    }
    let (a, _) = client(&w.url_a(), Some(&w.alice)).await?;
    for i in 0..BIG_EVENTS {
        let out = a.send_event(&sized(i)?).await.map_err(e)?;
        if out.success.is_empty() {
            return Err(format!("not accepted: {:?}", out.failed));
        }
    }
    a.shutdown().await;
    Ok(size)
}

/// What one address leaves unread is bounded for the address, not per connection: six
/// connections from 127.0.0.8 that read nothing hold at most --outbound-bytes-per-ip queued
/// (mutant "an address's queues unbounded": 6 × --outbound-queue-bytes), another address is
/// served meanwhile, and all of it is let go after --send-timeout. A connection whose answer
/// is all queued, but which takes none of it, is let go too (mutant "a writer waits for its
/// client forever": it would hold its address's room for as long as it stays).
pub async fn queued_per_ip(w: &mut World) -> Result<(), String> {
    big_events(w).await?;
    let queued = async || w.metric("buzz_relay_outbound_bytes").await.map(|b| b as usize);
    let mut conns = Vec::new();
    for _ in 0..6 {
        let raw = Raw::connect_from(&w.url_a(), Ipv4Addr::new(127, 0, 0, 8), Some(4096)).await?;
        conns.push(raw.logged_in(&w.url_a(), &w.carol).await?);
    }
    // (Only then: answers waiting for room keep the address's turns meanwhile.)
    for raw in &mut conns {
        for i in 0..4 {
            raw.send(format!(r#"["REQ","q{i}",{{"kinds":[4444],"limit":500}}]"#)).await?;
        }
    }
    let mut most = 0;
    for _ in 0..10 {
        tokio::time::sleep(Duration::from_millis(150)).await;
        most = most.max(queued().await?);
    }
    if most > OUTBOUND_BYTES_PER_IP || most < OUTBOUND_BYTES_PER_IP / 2 {
        return Err(format!("{most} bytes queued for one address (its budget {OUTBOUND_BYTES_PER_IP})"));
    }
    let mut other = Raw::login(&w.url_a(), &w.alice).await?;
    other.send(r#"["COUNT","n",{"kinds":[4444]}]"#.into()).await?;
    match other.next_of("COUNT").await {
        Some(m) if m[2]["count"] == BIG_EVENTS => {}
        got => return Err(format!("another address's COUNT meanwhile: {got:?}")),
    }
    wait_queued(w, 0, "the unread connections' queues").await?;
    drop(conns);

    // Answers of 4 events (≈ 16 kB, a quarter of the connection's queue) until some of it
    // waits in the relay: all of it is queued, nothing waits for room.
    let tcp = tcp_from(&w.url_a(), Ipv4Addr::new(127, 0, 0, 9), Some(4096)).await?;
    let client = tcp.local_addr().map_err(e)?;
    let mut raw = Raw::over(&w.url_a(), tcp).await?.logged_in(&w.url_a(), &w.carol).await?;
    let mut reqs = 0;
    while queued().await? == 0 {
        if reqs == 100 {
            return Err("nothing queued after 100 answers".into());
        }
        raw.send(r#"["REQ","w",{"kinds":[4444],"limit":4}]"#.into()).await?;
        reqs += 1;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    wait_queued(w, 0, "a queue with its whole answer in it").await?;
    if relay_side(w.port, client)? == Some(ESTABLISHED) {
        return Err("the connection stayed open".into());
    }
    Ok(())
}

/// Waits (up to --send-timeout and a few seconds) for the relay to hold `bytes` queued.
async fn wait_queued(w: &World, bytes: usize, what: &str) -> Result<(), String> {
    let mut now = 0;
    for _ in 0..(SEND_TIMEOUT_SECS * 10 + 50) {
        tokio::time::sleep(Duration::from_millis(100)).await;
        now = w.metric("buzz_relay_outbound_bytes").await? as usize;
        if now == bytes {
            return Ok(());
        }
    }
    Err(format!("{what}: {now} bytes still queued {}s later", SEND_TIMEOUT_SECS + 5))
}

/// A client that stops reading is disconnected after --send-timeout, and its socket (with
/// everything queued for it) is let go then, not when the client finally reads or goes.
/// Witness: the relay's side of the TCP connection leaves ESTABLISHED (the kernel's table,
/// /proc/net/tcp). Mutant "writer outlives its session".
pub async fn stalled_reader(w: &mut World) -> Result<(), String> {
    let tcp = tcp_from(&w.url_a(), Ipv4Addr::new(127, 0, 0, 3), Some(4096)).await?;
    let client = tcp.local_addr().map_err(e)?;
    let raw = Raw::over(&w.url_a(), tcp).await?;
    let mut raw = raw.logged_in(&w.url_a(), &w.carol).await?;
    for i in 0..4 {
        raw.send(format!(r#"["REQ","stall{i}",{{"kinds":[4444],"limit":500}}]"#)).await?;
    }
    if relay_side(w.port, client)? != Some(ESTABLISHED) {
        return Err("the relay's side of the connection is not established".into());
    }
    for _ in 0..(SEND_TIMEOUT_SECS * 10 + 80) {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if relay_side(w.port, client)? != Some(ESTABLISHED) {
            drop(raw);
            return Ok(());
        }
    }
    Err(format!("the socket of a client that stopped reading is still open {}s later", SEND_TIMEOUT_SECS + 8))
}

const ESTABLISHED: u8 = 1;

/// The TCP state of the relay's end of the connection from `client` (None: gone).
fn relay_side(port: u16, client: std::net::SocketAddr) -> Result<Option<u8>, String> {
    let hex = |a: std::net::SocketAddr| match a {
        std::net::SocketAddr::V4(v4) => format!("{:08X}:{:04X}", u32::from_le_bytes(v4.ip().octets()), v4.port()),
        v6 => format!("{v6}"),
    };
    let local = hex(std::net::SocketAddr::from((Ipv4Addr::LOCALHOST, port)));
    let remote = hex(client);
    let table = std::fs::read_to_string("/proc/net/tcp").map_err(e)?;
    Ok(table.lines().skip(1).find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        (f.len() > 3 && f[1] == local && f[2] == remote).then(|| u8::from_str_radix(f[3], 16).ok()).flatten()
    }))
}

/// A subscription keeps the login it was opened with: alice's subscription of the private
/// channel still gets the channel's events after carol (not a member of it) logs in on the same
/// connection. Mutant "subscriptions read as the latest login" turns this red.
pub async fn sub_keeps_login(w: &mut World) -> Result<(), String> {
    let mut raw = Raw::login(&w.url_a(), &w.alice).await?;
    raw.send(format!(r##"["REQ","council",{{"#h":["{}"]}}]"##, w.council)).await?;
    raw.next_of("EOSE").await.ok_or("no EOSE")?;
    // carol logs in too (the first challenge is used up: the refusal brings a fresh one).
    let used = raw.challenge().await.unwrap_or_default();
    if raw.sign_in(&w.url_a(), &used, &w.carol).await?[2] != true {
        let fresh = raw.challenge().await?;
        if raw.sign_in(&w.url_a(), &fresh, &w.carol).await?[2] != true {
            return Err("carol's login refused".into());
        }
    }
    let (a, _) = client(&w.url_a(), Some(&w.alice)).await?;
    let ev = EventBuilder::text_note("council, after carol logged in")
        .tags([Tag::custom(TagKind::custom("h"), [w.council.clone()])])
        .sign_with_keys(&w.alice)
        .map_err(e)?;
    let out = a.send_event(&ev).await.map_err(e)?;
    a.shutdown().await;
    if out.success.is_empty() {
        return Err(format!("not accepted: {:?}", out.failed));
    }
    loop {
        let m = raw.next().await.ok_or("alice's subscription did not get the channel's event")?;
        match m[0].as_str() {
            Some("EVENT") if m[1] == "council" && m[2]["id"] == ev.id.to_hex().as_str() => return Ok(()),
            Some("CLOSED") if m[1] == "council" => return Err(format!("closed: {m}")),
            _ => {}
        }
    }
}

/// Each failed AUTH costs the database a fresh challenge: after --max-auth-failures (5) the
/// connection is told `rate-limited:` and closed. Mutant "failed AUTHs unbounded".
pub async fn auth_failures(w: &mut World) -> Result<(), String> {
    let mut raw = Raw::connect(&w.url_a()).await?;
    let mut chal = raw.challenge().await?;
    for i in 1..=5 {
        // Signed for the other host: refused.
        let ok = raw.sign_in(&w.url_b(), &chal, &w.carol).await?;
        if ok[2] != false {
            return Err(format!("attempt {i} accepted"));
        }
        if i < 5 {
            chal = raw.challenge().await.map_err(|x| format!("attempt {i}: {x}"))?;
        }
    }
    let notice = raw.next_of("NOTICE").await.ok_or("no NOTICE after the last attempt")?;
    if !notice[1].as_str().unwrap_or("").starts_with("rate-limited:") {
        return Err(format!("answer {notice}"));
    }
    if raw.next().await.is_some() {
        return Err("the connection stayed open".into());
    }
    Ok(())
}

/// One address holds at most --max-connections-per-ip connections, refused (HTTP 429, or the
/// socket closed) at accept, before the database is asked for anything, and given back when
/// they close. Mutant "connections per address unbounded".
pub async fn per_ip(w: &mut World) -> Result<(), String> {
    let from = Ipv4Addr::new(127, 0, 0, 2);
    let mut open = Vec::new();
    let mut refused = None;
    for _ in 0..MAX_CONNECTIONS_PER_IP + 10 {
        match Raw::connect_from(&w.url_a(), from, None).await {
            Ok(raw) => open.push(raw),
            Err(x) => {
                refused = Some(x);
                break;
            }
        }
    }
    let n = open.len();
    drop(open);
    if n != MAX_CONNECTIONS_PER_IP || refused.is_none() {
        return Err(format!("{n} connections, then {refused:?}"));
    }
    // Other addresses are not affected.
    Raw::connect(&w.url_a()).await.map_err(|x| format!("another address refused: {x}"))?;
    // The slots come back when the connections close.
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if Raw::connect_from(&w.url_a(), from, None).await.is_ok() {
            return Ok(());
        }
    }
    Err("no connection accepted after the others closed".into())
}

/// An address opening connections faster than --connect-rate-per-ip (past its burst) is
/// refused at accept, even though it closes each one at once; other addresses are not.
/// Mutant "connection rate unbounded".
pub async fn connect_rate(w: &mut World) -> Result<(), String> {
    let from = Ipv4Addr::new(127, 0, 0, 4);
    let (mut ok, mut refused) = (0, 0);
    for _ in 0..CONNECT_BURST_PER_IP * 2 {
        match Raw::connect_from(&w.url_a(), from, None).await {
            Ok(_) => ok += 1,
            Err(_) => refused += 1,
        }
    }
    if ok < CONNECT_BURST_PER_IP || refused == 0 {
        return Err(format!("{ok} accepted, {refused} refused, burst {CONNECT_BURST_PER_IP}"));
    }
    Raw::connect(&w.url_a()).await.map(|_| ()).map_err(|x| format!("another address refused: {x}"))
}

/// A connection that never finishes its HTTP request (slowloris) is closed after
/// --handshake-timeout. Mutant "handshakes never time out".
pub async fn slow_handshake(w: &mut World) -> Result<(), String> {
    let mut tcp = tcp_from(&w.url_a(), Ipv4Addr::new(127, 0, 0, 5), None).await?;
    tcp.write_all(format!("GET / HTTP/1.1\r\nHost: localhost:{}\r\nUpgrade: websocket\r\n", w.port).as_bytes()).await.map_err(e)?;
    let mut buf = [0u8; 256];
    let wait = Duration::from_secs(HANDSHAKE_TIMEOUT_SECS + 5);
    match tokio::time::timeout(wait, tcp.read(&mut buf)).await {
        Ok(Ok(_)) | Ok(Err(_)) => Ok(()),
        Err(_) => Err(format!("a half-sent request still open after {wait:?}")),
    }
}

/// A frame that breaks the protocol (text that is not UTF-8) is answered `invalid:`, not
/// `frame-too-large:`, then the connection closes. Mutant "broken frames called too large".
pub async fn broken_frame(w: &mut World) -> Result<(), String> {
    let mut raw = Raw::connect(&w.url_a()).await?;
    raw.challenge().await?;
    // FIN + text, masked, 2 bytes: 0xC3 0x28 is not UTF-8. The mask is zero: the payload goes as is.
    raw.send_bytes(&[0x81, 0x82, 0, 0, 0, 0, 0xC3, 0x28]).await?;
    let notice = raw.next_of("NOTICE").await.ok_or("no NOTICE")?;
    if !notice[1].as_str().unwrap_or("").starts_with("invalid:") {
        return Err(format!("answer {notice}"));
    }
    if raw.next().await.is_some() {
        return Err("the connection stayed open".into());
    }
    Ok(())
}

/// A poll the database refuses for a reason other than the login ends its subscriptions with
/// the catalog's answer instead of leaving them silently stalled (mutant
/// "poll refusals swallowed"). The fault is an operator's REVOKE of `buzz.poll_many` from the
/// relay role.
pub async fn poll_refused(w: &mut World) -> Result<(), String> {
    let mut raw = Raw::login(&w.url_a(), &w.carol).await?;
    raw.send(r#"["REQ","live",{"kinds":[1]}]"#.into()).await?;
    raw.next_of("EOSE").await.ok_or("no EOSE")?;
    let poll = "FUNCTION buzz.poll_many(jsonb, integer)";
    w.admin.batch_execute(&format!("REVOKE EXECUTE ON {poll} FROM {ROLE}")).await.map_err(e)?;
    let (a, _) = client(&w.url_a(), Some(&w.alice)).await?;
    let ev = EventBuilder::text_note("while poll is revoked").sign_with_keys(&w.alice).map_err(e)?;
    let sent = a.send_event(&ev).await;
    let closed = raw.next_of("CLOSED").await;
    w.admin.batch_execute(&format!("GRANT EXECUTE ON {poll} TO {ROLE}")).await.map_err(e)?;
    a.shutdown().await;
    sent.map_err(e)?;
    let closed = closed.ok_or("the subscription stalled: no CLOSED")?;
    // The extension's sanitized answer to the denied call (`restricted: not permitted …`).
    let msg = closed[2].as_str().unwrap_or("");
    if closed[1] != "live" || !(msg.starts_with("restricted:") || msg.starts_with("error:")) {
        return Err(format!("answer {closed}"));
    }
    Ok(())
}

/// The relay's backends waiting for a lock (the blocked publishes of `turns_per_ip`).
async fn lock_waiters(admin: &tokio_postgres::Client) -> Result<i64, String> {
    let q = format!("SELECT count(*) FROM pg_stat_activity WHERE usename = '{ROLE}' AND state = 'active' AND wait_event_type = 'Lock'");
    admin.query_one(&q, &[]).await.map(|r| r.get(0)).map_err(e)
}

/// One address's requests hold at most --max-requests-per-ip of the database pool, however
/// many connections it opens, and another address is served meanwhile; a statement that runs
/// past --statement-timeout-ms is canceled and answered from the catalog. The blocker: a
/// transaction holding EXCLUSIVE on buzz.events (reads go on, every insert waits).
/// Mutants "an address takes the whole pool", "statements run without end".
pub async fn turns_per_ip(w: &mut World) -> Result<(), String> {
    let from = Ipv4Addr::new(127, 0, 0, 7);
    let mut conns = Vec::new();
    for _ in 0..MAX_REQUESTS_PER_IP + 3 {
        conns.push(Raw::connect_from(&w.url_a(), from, None).await?.logged_in(&w.url_a(), &w.alice).await?);
    }
    let locker = w.superuser().await?;
    let watcher = w.superuser().await?;
    locker.batch_execute("BEGIN; LOCK TABLE buzz.events IN EXCLUSIVE MODE").await.map_err(e)?;
    for (i, c) in conns.iter_mut().enumerate() {
        let ev = EventBuilder::text_note(format!("waits its turn {i}")).sign_with_keys(&w.alice).map_err(e)?;
        c.send(format!(r#"["EVENT",{}]"#, ev.as_json())).await?;
    }
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let waiting = lock_waiters(&watcher).await?;
    // Another address (127.0.0.1) logs in and reads meanwhile.
    let counted = async {
        let mut b = Raw::login(&w.url_b(), &w.bob).await?;
        b.send(r#"["COUNT","c",{"kinds":[1]}]"#.into()).await?;
        b.next_of("COUNT").await.ok_or_else(|| "no COUNT".to_owned())
    };
    let counted = tokio::time::timeout(Duration::from_secs(3), counted).await;
    locker.batch_execute("COMMIT").await.map_err(e)?;
    let mut acks = Vec::new();
    for c in conns.iter_mut() {
        acks.push(c.next_of("OK").await.map(|ok| ok[2] == true));
    }
    if waiting != MAX_REQUESTS_PER_IP as i64 {
        return Err(format!("{waiting} of the address's requests held pooled connections at once"));
    }
    if !matches!(counted, Ok(Ok(_))) {
        return Err(format!("another address was not served meanwhile: {counted:?}"));
    }
    if acks.iter().any(|a| *a != Some(true)) {
        return Err(format!("acknowledgements after the lock was released: {acks:?}"));
    }
    // A statement still blocked at the timeout is canceled: its connection goes back to the pool.
    let canceled: String = w.admin.query_one("SELECT message FROM buzz.error_catalog() WHERE code = 'sql_canceled'", &[]).await.map_err(e)?.get(0);
    locker.batch_execute("BEGIN; LOCK TABLE buzz.events IN EXCLUSIVE MODE").await.map_err(e)?;
    let ev = EventBuilder::text_note("runs into the statement timeout").sign_with_keys(&w.alice).map_err(e)?;
    let started = std::time::Instant::now();
    conns[0].send(format!(r#"["EVENT",{}]"#, ev.as_json())).await?;
    let ok = conns[0].next_of("OK").await;
    let took = started.elapsed();
    locker.batch_execute("COMMIT").await.map_err(e)?;
    match ok {
        // The catalog's message (with the incident the server log has the details under).
        Some(ok) if ok[2] == false && ok[3].as_str().is_some_and(|m| m.starts_with(canceled.as_str())) && took >= Duration::from_millis(STATEMENT_TIMEOUT_MS) => Ok(()),
        other => Err(format!("a blocked publish after {took:?}: {other:?}")),
    }
}

/// The filters a connection's subscriptions hold are capped in bytes (every poll runs all of
/// them): a REQ past --max-filter-bytes is CLOSED like one subscription too many, and room
/// comes back with CLOSE. Mutant "filter bytes unbounded".
pub async fn filter_bytes(w: &mut World) -> Result<(), String> {
    let mut raw = Raw::login(&w.url_a(), &w.carol).await?;
    // About a quarter of the budget per REQ: 64-hex authors.
    let authors: Vec<String> = (0..(MAX_FILTER_BYTES / 4 / 67)).map(|i| format!("\"{:064x}\"", i)).collect();
    let req = |id: &str| format!(r#"["REQ","{id}",{{"authors":[{}]}}]"#, authors.join(","));
    let mut answers = Vec::new();
    for id in ["f1", "f2", "f3", "f4", "f5"] {
        raw.send(req(id)).await?;
        let m = loop {
            let m = raw.next().await.ok_or("no answer")?;
            if m[0] == "EOSE" || m[0] == "CLOSED" {
                break m;
            }
        };
        answers.push(m[0].as_str().unwrap_or("").to_owned());
    }
    let too_many: String = w.admin.query_one("SELECT message FROM buzz.error_catalog() WHERE code = 'too_many_subscriptions'", &[]).await.map_err(e)?.get(0);
    raw.send(r#"["CLOSE","f1"]"#.into()).await?;
    raw.send(req("f6")).await?;
    let after_close = raw.next_of("EOSE").await;
    raw.send(req("f7")).await?;
    let over = raw.next_of("CLOSED").await;
    if answers[..3] != ["EOSE", "EOSE", "EOSE"] || answers[4] != "CLOSED" {
        return Err(format!("answers {answers:?}"));
    }
    match (after_close, over) {
        (Some(_), Some(c)) if c[1] == "f7" && c[2] == too_many.as_str() => Ok(()),
        other => Err(format!("after CLOSE: {other:?}")),
    }
}

/// A NIP-11 document is kept a few seconds: repeated GETs do not each cost the database a
/// call. Mutant "NIP-11 asks the database every time".
pub async fn nip11_cached(w: &mut World) -> Result<(), String> {
    let host = format!("localhost:{}", w.port);
    w.http_get(&host, "/", "application/nostr+json").await?;
    let before = w.metric("buzz_relay_db_calls_total").await?;
    for _ in 0..20 {
        let (status, _) = w.http_get(&host, "/", "application/nostr+json").await?;
        if status != 200 {
            return Err(format!("status {status}"));
        }
    }
    let calls = w.metric("buzz_relay_db_calls_total").await? - before;
    if calls > 2.0 {
        return Err(format!("20 GETs cost {calls} database calls"));
    }
    Ok(())
}

/// A Host longer than a DNS name and a port is refused (400) before it costs the relay memory
/// (the NIP-11 cache keeps one entry per Host) or the database a call. Mutant "hosts of any
/// length": it is looked up (404, one more database call).
pub async fn long_host(w: &mut World) -> Result<(), String> {
    let calls = w.metric("buzz_relay_db_calls_total").await?;
    let host = format!("{}.example:{}", "a".repeat(300), w.port);
    let (status, _) = w.http_get(&host, "/", "application/nostr+json").await?;
    let after = w.metric("buzz_relay_db_calls_total").await?;
    if status != 400 || after != calls {
        return Err(format!("a {}-byte Host: HTTP {status}, {} database calls", host.len(), after - calls));
    }
    Ok(())
}

/// A connection holds at most --max-logins logins (each is a session it keeps, and its
/// subscriptions' own polls): an AUTH for one more pubkey is refused before the database is
/// asked, so its challenge stays good. Mutant "logins per connection unbounded".
pub async fn logins_per_connection(w: &mut World) -> Result<(), String> {
    let dave = Keys::generate();
    w.admin.execute("SELECT buzz.admit('alpha', $1)", &[&dave.public_key().to_hex()]).await.map_err(e)?;
    let url = w.url_a();
    let mut raw = Raw::login(&url, &w.alice).await?;
    // The used challenge is refused, with a fresh one to sign (NIP-42: one login per challenge).
    let fresh = async |raw: &mut Raw| -> Result<String, String> {
        let used = EventBuilder::auth("used", RelayUrl::parse(&url).map_err(e)?).sign_with_keys(&w.carol).map_err(e)?;
        raw.send(format!(r#"["AUTH",{}]"#, used.as_json())).await?;
        raw.next_of("OK").await.ok_or("no OK")?;
        raw.challenge().await
    };
    let chal = fresh(&mut raw).await?;
    if raw.sign_in(&url, &chal, &w.carol).await?[2] != true {
        return Err("the second login was refused".into());
    }
    let too_many: String = w.admin.query_one("SELECT message FROM buzz.error_catalog() WHERE code = 'too_many_logins'", &[]).await.map_err(e)?.get(0);
    let chal = fresh(&mut raw).await?;
    let third = raw.sign_in(&url, &chal, &dave).await?;
    if third[2] != false || third[3] != too_many.as_str() {
        return Err(format!("a third login on one connection ({MAX_LOGINS} allowed): {third}"));
    }
    // Nothing was tried: the same challenge still logs in one of the connection's pubkeys again.
    match raw.sign_in(&url, &chal, &w.alice).await?[2] == true {
        true => Ok(()),
        false => Err("the challenge of the refused login was used up".into()),
    }
}

/// An address pays for the database time its requests take: past --db-burst-seconds-per-ip it
/// waits, and is told `rate-limited:` at once when the wait would be longer than a request
/// may wait; another address is served meanwhile. On a relay of its own (a budget of 1 s,
/// 0.2 s/s) two publishes from 127.0.0.10, blocked by a lock until the statement timeout
/// (1.5 s each), leave it 2 s in debt: 10 s to pay back. Mutant "database time is free".
pub async fn db_time_per_ip(w: &mut World) -> Result<(), String> {
    let overrides = [
        ("--db-seconds-per-ip", "0.2".to_owned()),
        ("--db-burst-seconds-per-ip", "1".to_owned()),
        ("--statement-timeout-ms", "1500".to_owned()),
    ];
    let (_relay, port) = w.extra_relay(&overrides).await?;
    w.admin.execute("SELECT buzz.add_host('alpha', $1)", &[&format!("localhost:{port}")]).await.map_err(e)?;
    let url = format!("ws://localhost:{port}");
    let mut heavy = Raw::connect_from(&url, Ipv4Addr::new(127, 0, 0, 10), None).await?.logged_in(&url, &w.alice).await?;
    let locker = w.superuser().await?;
    locker.batch_execute("BEGIN; LOCK TABLE buzz.events IN EXCLUSIVE MODE").await.map_err(e)?;
    for i in 0..2 {
        let ev = EventBuilder::text_note(format!("blocked {i}")).sign_with_keys(&w.alice).map_err(e)?;
        heavy.send(format!(r#"["EVENT",{}]"#, ev.as_json())).await?;
    }
    let mut oks = Vec::new();
    for _ in 0..2 {
        oks.push(heavy.next_of("OK").await);
    }
    locker.batch_execute("COMMIT").await.map_err(e)?;
    if oks.iter().any(|ok| !matches!(ok, Some(ok) if ok[2] == false)) {
        return Err(format!("blocked publishes: {oks:?}"));
    }
    let busy: String = w.admin.query_one("SELECT message FROM buzz.error_catalog() WHERE code = 'too_busy'", &[]).await.map_err(e)?.get(0);
    let started = std::time::Instant::now();
    heavy.send(r#"["COUNT","c",{"kinds":[1]}]"#.into()).await?;
    let answer = heavy.next().await;
    if !matches!(&answer, Some(m) if m[0] == "CLOSED" && m[2] == busy.as_str()) || started.elapsed() > Duration::from_secs(1) {
        return Err(format!("the indebted address's COUNT after {:?}: {answer:?}", started.elapsed()));
    }
    let mut other = Raw::connect_from(&url, Ipv4Addr::new(127, 0, 0, 11), None).await?.logged_in(&url, &w.alice).await?;
    other.send(r#"["COUNT","c",{"kinds":[1]}]"#.into()).await?;
    match other.next_of("COUNT").await {
        Some(_) => Ok(()),
        None => Err("another address was not served".into()),
    }
}

/// When every pool connection is busy, the next one freed goes to the address with the fewest
/// calls running, not to the longest queue. On a relay of its own (a pool of 2, a 2 s statement
/// timeout), two addresses each queue three publishes (on three connections) that a lock
/// blocks; an address with
/// nothing running asks for a COUNT after them and is answered when the first two time out
/// (≈ 2 s), not after the four queued ahead of it (≈ 4 s). Mutant "pool first come, first served".
pub async fn fair_pool(w: &mut World) -> Result<(), String> {
    let overrides = [("--pool-size", "2".to_owned()), ("--statement-timeout-ms", "2000".to_owned()), ("--max-requests-per-ip", "3".to_owned())];
    let (_relay, port) = w.extra_relay(&overrides).await?;
    w.admin.execute("SELECT buzz.add_host('alpha', $1)", &[&format!("localhost:{port}")]).await.map_err(e)?;
    let url = format!("ws://localhost:{port}");
    // Three connections each (a connection has one request in progress at a time).
    let mut busy = Vec::new();
    for last in [12, 12, 12, 13, 13, 13] {
        busy.push(Raw::connect_from(&url, Ipv4Addr::new(127, 0, 0, last), None).await?.logged_in(&url, &w.alice).await?);
    }
    let mut idle = Raw::connect_from(&url, Ipv4Addr::new(127, 0, 0, 14), None).await?.logged_in(&url, &w.carol).await?;
    let locker = w.superuser().await?;
    locker.batch_execute("BEGIN; LOCK TABLE buzz.events IN EXCLUSIVE MODE").await.map_err(e)?;
    for (n, c) in busy.iter_mut().enumerate() {
        let ev = EventBuilder::text_note(format!("queued {n}")).sign_with_keys(&w.alice).map_err(e)?;
        c.send(format!(r#"["EVENT",{}]"#, ev.as_json())).await?;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = std::time::Instant::now();
    idle.send(r#"["COUNT","c",{"kinds":[1]}]"#.into()).await?;
    let answer = idle.next_of("COUNT").await;
    let took = started.elapsed();
    locker.batch_execute("COMMIT").await.map_err(e)?;
    for c in busy.iter_mut() {
        c.next_of("OK").await;
    }
    if answer.is_none() || took > Duration::from_millis(3_000) {
        return Err(format!("the idle address's COUNT: {answer:?} after {took:?}"));
    }
    Ok(())
}

/// AUTH attempts are metered per address (each checks a signature and may register a member
/// of an open community): on a relay of its own (burst 2 at 0.2/s) the fourth login of
/// 127.0.0.16 within a second is refused before the database is asked, another address logs
/// in. Mutant "AUTH unmetered".
pub async fn auth_per_ip(w: &mut World) -> Result<(), String> {
    let overrides = [("--auth-per-ip", "0.2".to_owned()), ("--auth-burst-per-ip", "2".to_owned())];
    let (_relay, port) = w.extra_relay(&overrides).await?;
    w.admin.execute("SELECT buzz.add_host('alpha', $1)", &[&format!("localhost:{port}")]).await.map_err(e)?;
    let url = format!("ws://localhost:{port}");
    let busy: String = w.admin.query_one("SELECT message FROM buzz.error_catalog() WHERE code = 'too_busy'", &[]).await.map_err(e)?.get(0);
    let mut answers = Vec::new();
    for _ in 0..4 {
        let mut raw = Raw::connect_from(&url, Ipv4Addr::new(127, 0, 0, 16), None).await?;
        let chal = raw.challenge().await?;
        answers.push(raw.sign_in(&url, &chal, &w.carol).await?);
    }
    let ok: Vec<bool> = answers.iter().map(|a| a[2] == true).collect();
    if ok != [true, true, true, false] || answers[3][3] != busy.as_str() {
        return Err(format!("four logins from one address: {answers:?}"));
    }
    Raw::connect_from(&url, Ipv4Addr::new(127, 0, 0, 17), None).await?.logged_in(&url, &w.carol).await.map(|_| ())
}
