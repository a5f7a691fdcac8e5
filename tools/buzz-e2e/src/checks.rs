//! The checks, in order; each names the fence it would catch failing.

use std::collections::HashSet;
use std::time::Duration;

use nostr_sdk::prelude::*;

use crate::harness::{client, collect, e, wait_for, Report, World, WAIT};
use crate::limits;
use crate::raw::Raw;

const QUIET: Duration = Duration::from_millis(1500);

/// Runs check `$name`, the future `$f`, if the report wants it.
macro_rules! check {
    ($r:expr, $name:expr, $f:expr) => {
        if $r.wants($name) {
            let outcome = $f.await;
            $r.check($name, outcome);
        }
    };
}

pub async fn run(w: &mut World, r: &mut Report) {
    check!(r, "NIP-11: each host its own document, an unknown host 404", nip11(w));
    check!(r, "NIP-42 login through the client library; EVENT answered OK true", login_publish(w));
    check!(r, "REQ: stored answer, EOSE, then live events of its own community only", stored_and_live(w));
    check!(r, "a client of beta gets none of alpha's events, whatever its filters", any_filter(w));
    check!(r, "COUNT (NIP-45) counts the host's community only", count(w));
    check!(r, "NIP-09: a deletion is delivered live, the deleted event is gone", deletion(w));
    check!(r, "a forged h tag naming another community's channel is refused like an unknown one", forged_h(w));
    check!(r, "a private channel's events never reach a non-member, stored or live", private_channel(w));
    check!(r, "AUTH signed for the other host is refused; a fresh challenge follows", foreign_auth(w));
    check!(r, "logged out: REQ is CLOSED auth-required, re-run after AUTH on the same connection", logged_out(w));
    check!(r, "two logins on one connection: each event published with its author's login", two_logins(w));
    check!(r, "ephemeral events: delivered live within the community, never stored", ephemeral(w));
    check!(r, "a subscription that matched none of the news still gets the next match, once", past_the_news(w));
    check!(r, "an expired session ends its live subscriptions with CLOSED auth-required", expired_session(w));
    check!(r, "a frame over the limit is answered frame-too-large, then the connection closes", frame_too_large(w));
    check!(r, "/metrics is not on the public port, for any host", limits::metrics_private(w));
    check!(r, "an answer larger than the client's queue waits for it; past the answer cap it is cut", limits::big_answer(w));
    check!(r, "a subscription keeps reading with the login it was opened with", limits::sub_keeps_login(w));
    check!(r, "five failed AUTHs: rate-limited, then the connection closes", limits::auth_failures(w));
    check!(r, "a client that stops reading is let go, socket and all", limits::stalled_reader(w));
    check!(r, "what one address leaves unread is bounded for the address; a silent reader is let go", limits::queued_per_ip(w));
    check!(r, "connections per address are limited before the database is asked", limits::per_ip(w));
    check!(r, "new connections per address are rate-limited", limits::connect_rate(w));
    check!(r, "a half-sent HTTP request is closed after the handshake timeout", limits::slow_handshake(w));
    check!(r, "a frame that is not valid text is answered invalid:, then closed", limits::broken_frame(w));
    check!(r, "a poll the database refuses ends its subscriptions with CLOSED", limits::poll_refused(w));
    check!(r, "one address holds a few of the pool's connections; a statement past the timeout is canceled", limits::turns_per_ip(w));
    check!(r, "a connection's filters are capped in bytes", limits::filter_bytes(w));
    check!(r, "NIP-11 documents are kept a few seconds", limits::nip11_cached(w));
    check!(r, "a Host longer than a host name is refused before the database is asked", limits::long_host(w));
    check!(r, "a connection holds a few logins; one more is refused before the database is asked", limits::logins_per_connection(w));
    check!(r, "an address pays for its database time; in debt it is told to slow down, others are served", limits::db_time_per_ip(w));
    check!(r, "a freed pool connection goes to the address with the fewest calls running", limits::fair_pool(w));
    check!(r, "AUTH attempts are metered per address", limits::auth_per_ip(w));
    check!(r, "1,000 concurrent subscriptions each receive a new event once", thousand(w));
    check!(r, "a client that disconnects mid-subscription is forgotten", disconnect(w));
    check!(r, "PostgreSQL restarted under the relay: acknowledged events kept, clients recover", restart(w));
    check!(r, "SIGTERM: subscriptions end with CLOSED, the relay exits cleanly", shutdown(w));
}

fn note(keys: &Keys, text: &str, tags: Vec<Tag>) -> Result<Event, String> {
    EventBuilder::text_note(text).tags(tags).sign_with_keys(keys).map_err(e)
}

fn h(channel: &str) -> Tag {
    Tag::custom(TagKind::custom("h"), [channel.to_owned()])
}

async fn publish(c: &Client, ev: &Event) -> Result<(), String> {
    let out = c.send_event(ev).await.map_err(e)?;
    if out.success.is_empty() {
        return Err(format!("not accepted: {:?}", out.failed));
    }
    Ok(())
}

async fn refused(c: &Client, ev: &Event) -> Result<String, String> {
    match c.send_event(ev).await {
        Ok(out) if out.success.is_empty() => Ok(out.failed.values().next().cloned().unwrap_or_default()),
        Ok(_) => Err("accepted".into()),
        Err(x) => Ok(x.to_string()),
    }
}

async fn nip11(w: &mut World) -> Result<(), String> {
    let accept = "application/nostr+json";
    let (sa, a) = w.http_get(&format!("localhost:{}", w.port), "/", accept).await?;
    let (sb, b) = w.http_get(&format!("127.0.0.1:{}", w.port), "/", accept).await?;
    let (su, _) = w.http_get("unknown.example", "/", accept).await?;
    let name = |doc: &str| serde_json::from_str::<serde_json::Value>(doc).ok().and_then(|v| v["name"].as_str().map(str::to_owned));
    if (sa, sb, su) != (200, 200, 404) {
        return Err(format!("statuses {sa} {sb} {su}"));
    }
    match (name(&a), name(&b)) {
        (Some(x), Some(y)) if x == "Alpha" && y == "Beta" => Ok(()),
        other => Err(format!("names {other:?}")),
    }
}

async fn login_publish(w: &mut World) -> Result<(), String> {
    let (c, _) = client(&w.url_a(), Some(&w.alice)).await?;
    publish(&c, &note(&w.alice, "hello alpha", vec![])?).await?;
    c.shutdown().await;
    Ok(())
}

async fn stored_and_live(w: &mut World) -> Result<(), String> {
    let (a, _) = client(&w.url_a(), Some(&w.alice)).await?;
    let (carol, mut carol_notes) = client(&w.url_a(), Some(&w.carol)).await?;
    let (bob, mut bob_notes) = client(&w.url_b(), Some(&w.bob)).await?;
    let stored = note(&w.alice, "stored before REQ", vec![])?;
    publish(&a, &stored).await?;
    let filter = Filter::new().kind(Kind::TextNote);
    let sc = carol.subscribe(filter.clone(), None).await.map_err(e)?.val;
    let sb = bob.subscribe(filter, None).await.map_err(e)?.val;
    let (first, _) = collect(&mut carol_notes, &sc, QUIET).await;
    if !first.iter().any(|ev| ev.id == stored.id) {
        return Err("the stored event was not in carol's answer".into());
    }
    let live = note(&w.alice, "live after EOSE", vec![])?;
    publish(&a, &live).await?;
    if !wait_for(&mut carol_notes, &sc, WAIT, |ev| ev.id == live.id).await {
        return Err("carol did not receive the live event".into());
    }
    let (bob_got, _) = collect(&mut bob_notes, &sb, QUIET).await;
    if bob_got.iter().any(|ev| ev.pubkey == w.alice.public_key()) {
        return Err("bob (beta) received an event of alpha".into());
    }
    // ... and the other way round.
    let beta_ev = note(&w.bob, "beta only", vec![])?;
    publish(&bob, &beta_ev).await?;
    if !wait_for(&mut bob_notes, &sb, WAIT, |ev| ev.id == beta_ev.id).await {
        return Err("bob did not receive his own live event".into());
    }
    let (carol_got, _) = collect(&mut carol_notes, &sc, QUIET).await;
    if carol_got.iter().any(|ev| ev.id == beta_ev.id) {
        return Err("carol (alpha) received beta's event".into());
    }
    for c in [a, carol, bob] {
        c.shutdown().await;
    }
    Ok(())
}

async fn any_filter(w: &mut World) -> Result<(), String> {
    let (a, _) = client(&w.url_a(), Some(&w.alice)).await?;
    let (b, mut notes) = client(&w.url_b(), Some(&w.bob)).await?;
    let target = note(&w.alice, "alpha's, to be asked for by beta", vec![])?;
    publish(&a, &target).await?;
    let filters = vec![
        Filter::new().id(target.id),
        Filter::new().author(w.alice.public_key()),
        Filter::new().event(target.id),
        Filter::new().custom_tag(SingleLetterTag::lowercase(Alphabet::H), w.council.clone()),
        Filter::new(),
    ];
    let mut subs = Vec::new();
    for f in filters {
        subs.push(b.subscribe(f, None).await.map_err(e)?.val);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let live = note(&w.alice, "alpha's, live", vec![])?;
    publish(&a, &live).await?;
    let until = tokio::time::Instant::now() + QUIET;
    while let Ok(Ok(n)) = tokio::time::timeout_at(until, notes.recv()).await {
        if let RelayPoolNotification::Message { message: RelayMessage::Event { event, .. }, .. } = n {
            if event.pubkey == w.alice.public_key() {
                return Err(format!("beta's client received alpha's event {}", event.id));
            }
        }
    }
    a.shutdown().await;
    b.shutdown().await;
    Ok(())
}

async fn count(w: &mut World) -> Result<(), String> {
    let (a, _) = client(&w.url_a(), Some(&w.alice)).await?;
    let (b, _) = client(&w.url_b(), Some(&w.bob)).await?;
    let mut ra = None;
    for (c, k) in [(&a, &w.alice), (&b, &w.bob)] {
        let relay = c.relays().await.into_values().next().ok_or("no relay")?;
        let n = relay.count_events(Filter::new().author(k.public_key()), WAIT).await.map_err(e)?;
        let other = if ra.is_none() { w.bob.public_key() } else { w.alice.public_key() };
        let m = relay.count_events(Filter::new().author(other), WAIT).await.map_err(e)?;
        if n == 0 || m != 0 {
            return Err(format!("own {n}, other community's author {m}"));
        }
        ra = Some(n);
    }
    a.shutdown().await;
    b.shutdown().await;
    Ok(())
}

async fn deletion(w: &mut World) -> Result<(), String> {
    let (a, _) = client(&w.url_a(), Some(&w.alice)).await?;
    let (carol, mut notes) = client(&w.url_a(), Some(&w.carol)).await?;
    let doomed = note(&w.alice, "to be deleted", vec![])?;
    publish(&a, &doomed).await?;
    let sub = carol.subscribe(Filter::new().kinds([Kind::TextNote, Kind::EventDeletion]), None).await.map_err(e)?.val;
    collect(&mut notes, &sub, QUIET).await;
    let del = EventBuilder::delete(EventDeletionRequest::new().id(doomed.id)).sign_with_keys(&w.alice).map_err(e)?;
    publish(&a, &del).await?;
    if !wait_for(&mut notes, &sub, WAIT, |ev| ev.id == del.id).await {
        return Err("the deletion was not delivered live".into());
    }
    let again = carol.fetch_events(Filter::new().id(doomed.id), WAIT).await.map_err(e)?;
    if !again.is_empty() {
        return Err("the deleted event is still answered".into());
    }
    a.shutdown().await;
    carol.shutdown().await;
    Ok(())
}

async fn forged_h(w: &mut World) -> Result<(), String> {
    let (b, _) = client(&w.url_b(), Some(&w.bob)).await?;
    let foreign = refused(&b, &note(&w.bob, "into alpha's council", vec![h(&w.council)])?).await?;
    let unknown = refused(&b, &note(&w.bob, "into nowhere", vec![h("00000000-0000-4000-8000-000000000000")])?).await?;
    b.shutdown().await;
    if foreign != unknown || !foreign.starts_with("restricted:") {
        return Err(format!("foreign {foreign:?} vs unknown {unknown:?}"));
    }
    Ok(())
}

async fn private_channel(w: &mut World) -> Result<(), String> {
    let (a, _) = client(&w.url_a(), Some(&w.alice)).await?;
    let (carol, mut notes) = client(&w.url_a(), Some(&w.carol)).await?;
    let before = note(&w.alice, "council, stored", vec![h(&w.council)])?;
    publish(&a, &before).await?;
    let sub = carol.subscribe(Filter::new().kind(Kind::TextNote), None).await.map_err(e)?.val;
    let after = note(&w.alice, "council, live", vec![h(&w.council)])?;
    let open = note(&w.alice, "open, live", vec![])?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    publish(&a, &after).await?;
    publish(&a, &open).await?;
    let (got, _) = collect(&mut notes, &sub, QUIET).await;
    let ids: HashSet<EventId> = got.iter().map(|ev| ev.id).collect();
    a.shutdown().await;
    carol.shutdown().await;
    if ids.contains(&before.id) || ids.contains(&after.id) {
        return Err("carol received a council event".into());
    }
    if !ids.contains(&open.id) {
        return Err("carol did not receive the open event (the check would prove nothing)".into());
    }
    Ok(())
}

async fn foreign_auth(w: &mut World) -> Result<(), String> {
    let mut raw = Raw::connect(&w.url_a()).await?;
    let chal = raw.challenge().await?;
    let ok = raw.sign_in(&w.url_b(), &chal, &w.bob).await?;
    if ok[2] != false || !ok[3].as_str().unwrap_or("").starts_with("auth-required:") {
        return Err(format!("answer {ok}"));
    }
    if raw.next_of("AUTH").await.is_none() {
        return Err("no fresh challenge after a failed AUTH".into());
    }
    Ok(())
}

async fn logged_out(w: &mut World) -> Result<(), String> {
    let mut raw = Raw::connect(&w.url_a()).await?;
    let chal = raw.challenge().await?;
    raw.send(r#"["REQ","s",{"kinds":[1]}]"#.into()).await?;
    let closed = raw.next_of("CLOSED").await.ok_or("no CLOSED")?;
    if !closed[2].as_str().unwrap_or("").starts_with("auth-required:") {
        return Err(format!("answer {closed}"));
    }
    raw.send(r#"["COUNT","n",{"kinds":[1]}]"#.into()).await?;
    let closed = raw.next_of("CLOSED").await.ok_or("no CLOSED for COUNT")?;
    if !closed[2].as_str().unwrap_or("").starts_with("auth-required:") {
        return Err(format!("COUNT answer {closed}"));
    }
    if raw.sign_in(&w.url_a(), &chal, &w.carol).await?[2] != true {
        return Err("AUTH refused".into());
    }
    match raw.next_of("EOSE").await {
        Some(m) if m[1] == "s" => Ok(()),
        other => Err(format!("the subscription did not run after AUTH: {other:?}")),
    }
}

async fn two_logins(w: &mut World) -> Result<(), String> {
    // alice, then carol, log in on one connection.
    let mut raw = Raw::connect(&w.url_a()).await?;
    let chal = raw.challenge().await?;
    for k in [&w.alice, &w.carol] {
        if raw.sign_in(&w.url_a(), &chal, k).await?[2] != true {
            // A challenge is single-use: the second login needs the fresh one.
            let fresh = raw.challenge().await?;
            if raw.sign_in(&w.url_a(), &fresh, k).await?[2] != true {
                return Err("second login refused".into());
            }
        }
    }
    for k in [&w.alice, &w.carol] {
        let ev = note(k, "from one connection, two logins", vec![])?;
        raw.send(format!(r#"["EVENT",{}]"#, ev.as_json())).await?;
        let ok = raw.next_of("OK").await.ok_or("no OK")?;
        if ok[2] != true {
            return Err(format!("{ok}"));
        }
    }
    Ok(())
}

async fn ephemeral(w: &mut World) -> Result<(), String> {
    let (a, _) = client(&w.url_a(), Some(&w.alice)).await?;
    let (carol, mut notes) = client(&w.url_a(), Some(&w.carol)).await?;
    let (bob, mut bob_notes) = client(&w.url_b(), Some(&w.bob)).await?;
    let f = Filter::new().kind(Kind::Custom(20001));
    let sub = carol.subscribe(f.clone(), None).await.map_err(e)?.val;
    let sb = bob.subscribe(f.clone(), None).await.map_err(e)?.val;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let ev = EventBuilder::new(Kind::Custom(20001), "typing…").sign_with_keys(&w.alice).map_err(e)?;
    publish(&a, &ev).await?;
    if !wait_for(&mut notes, &sub, WAIT, |x| x.id == ev.id).await {
        return Err("carol did not receive the ephemeral event".into());
    }
    let (bob_got, _) = collect(&mut bob_notes, &sb, QUIET).await;
    if !bob_got.is_empty() {
        return Err("bob (beta) received alpha's ephemeral event".into());
    }
    let stored = carol.fetch_events(f, WAIT).await.map_err(e)?;
    if !stored.is_empty() {
        return Err("the ephemeral event is in a stored answer".into());
    }
    for c in [a, carol, bob] {
        c.shutdown().await;
    }
    Ok(())
}

/// After a wake-up that brought a subscription nothing, the relay moves its cursor past the
/// news (`buzz.cursor()` on the polls' snapshot); the next matching event must still arrive,
/// exactly once, and none of the news it did not ask for.
async fn past_the_news(w: &mut World) -> Result<(), String> {
    let (a, _) = client(&w.url_a(), Some(&w.alice)).await?;
    let (carol, mut notes) = client(&w.url_a(), Some(&w.carol)).await?;
    let reactions = Filter::new().kind(Kind::Reaction);
    let sub = carol.subscribe(reactions, None).await.map_err(e)?.val;
    let (stored, _) = collect(&mut notes, &sub, Duration::from_millis(300)).await;
    for i in 0..5 {
        publish(&a, &note(&w.alice, &format!("news {i}"), vec![])?).await?;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let reaction = EventBuilder::new(Kind::Reaction, "+").sign_with_keys(&w.alice).map_err(e)?;
    publish(&a, &reaction).await?;
    let (got, closed) = collect(&mut notes, &sub, QUIET).await;
    let ids: Vec<_> = got.iter().filter(|x| !stored.iter().any(|s| s.id == x.id)).map(|x| x.id).collect();
    for c in [a, carol] {
        c.shutdown().await;
    }
    match (ids.as_slice(), closed) {
        ([id], None) if *id == reaction.id => Ok(()),
        (other, closed) => Err(format!("received {} events after EOSE ({closed:?})", other.len())),
    }
}

/// Carol's and alice's subscriptions on one connection are polled in one call (`poll_many`):
/// carol's ends when her session expires, alice's goes on and gets the next event (mutant "a
/// refused entry fails its whole call").
async fn expired_session(w: &mut World) -> Result<(), String> {
    let mut raw = Raw::login(&w.url_a(), &w.carol).await?;
    raw.send(r#"["REQ","live",{"kinds":[1]}]"#.into()).await?;
    raw.next_of("EOSE").await.ok_or("no EOSE")?;
    // alice logs in too (the first challenge is used up: the refusal brings a fresh one) and
    // subscribes as herself.
    let used = raw.challenge().await.unwrap_or_default();
    if raw.sign_in(&w.url_a(), &used, &w.alice).await?[2] != true {
        let fresh = raw.challenge().await?;
        if raw.sign_in(&w.url_a(), &fresh, &w.alice).await?[2] != true {
            return Err("alice's login refused".into());
        }
    }
    raw.send(r#"["REQ","other",{"kinds":[1]}]"#.into()).await?;
    raw.next_of("EOSE").await.ok_or("no EOSE")?;
    // Time passes (as the superuser): carol's sessions expire.
    w.admin
        .execute("UPDATE buzz.sessions SET expires_at = now() - interval '1 second' WHERE pubkey = $1", &[&w.carol.public_key().to_hex()])
        .await
        .map_err(e)?;
    let (a, _) = client(&w.url_a(), Some(&w.alice)).await?;
    let ev = note(&w.alice, "after carol's session", vec![])?;
    let sent = publish(&a, &ev).await;
    a.shutdown().await;
    sent?;
    let (mut closed, mut delivered) = (false, false);
    while !(closed && delivered) {
        let m = raw.next().await.ok_or(format!("closed {closed}, delivered {delivered}"))?;
        match (m[0].as_str(), m[1].as_str()) {
            (Some("CLOSED"), Some("live")) if m[2].as_str().unwrap_or("").starts_with("auth-required:") => closed = true,
            (Some("EVENT"), Some("other")) if m[2]["id"] == ev.id.to_hex().as_str() => delivered = true,
            (Some("EVENT"), Some("live")) if m[2]["id"] == ev.id.to_hex().as_str() => return Err("carol's subscription got the event".into()),
            (Some("CLOSED"), _) => return Err(format!("answer {m}")),
            _ => {}
        }
    }
    Ok(())
}

async fn frame_too_large(w: &mut World) -> Result<(), String> {
    let mut raw = Raw::connect(&w.url_a()).await?;
    raw.next_of("AUTH").await.ok_or("no challenge")?;
    raw.send(format!(r##"["REQ","big",{{"#t":["{}"]}}]"##, "x".repeat(70_000))).await?;
    let notice = raw.next_of("NOTICE").await.ok_or("no NOTICE")?;
    if !notice[1].as_str().unwrap_or("").starts_with("frame-too-large:") {
        return Err(format!("answer {notice}"));
    }
    if raw.next().await.is_some() {
        return Err("the connection stayed open".into());
    }
    Ok(())
}

async fn thousand(w: &mut World) -> Result<(), String> {
    // 40 connections × 25 subscriptions (the relay allows 32 per connection).
    let mut clients = Vec::new();
    for _ in 0..40 {
        let mut raw = Raw::login(&w.url_a(), &w.carol).await?;
        for s in 0..25 {
            raw.send(format!(r#"["REQ","s{s}",{{"kinds":[1],"limit":1}}]"#)).await?;
        }
        clients.push(raw);
    }
    for raw in clients.iter_mut() {
        for _ in 0..25 {
            raw.next_of("EOSE").await.ok_or("missing EOSE")?;
        }
    }
    let subs = w.metric("buzz_relay_subscriptions").await?;
    if subs < 1000.0 {
        return Err(format!("{subs} subscriptions open"));
    }
    let (a, _) = client(&w.url_a(), Some(&w.alice)).await?;
    let (polls, calls) = (w.metric("buzz_relay_polls_total").await?, w.metric("buzz_relay_poll_calls_total").await?);
    let ev = note(&w.alice, "to a thousand subscriptions", vec![])?;
    publish(&a, &ev).await?;
    let id = ev.id.to_hex();
    for (i, raw) in clients.iter_mut().enumerate() {
        let mut seen = HashSet::new();
        while seen.len() < 25 {
            let m = raw.next_of("EVENT").await.ok_or(format!("connection {i}: {} of 25 subscriptions got it", seen.len()))?;
            if m[2]["id"] == id.as_str() && !seen.insert(m[1].as_str().unwrap_or("").to_owned()) {
                return Err(format!("connection {i}: delivered twice to one subscription"));
            }
        }
    }
    a.shutdown().await;
    // The 40 connections' wake-up polls shared database calls, 1.5 polls per call at least
    // (mutant "polls of one host never share a call": one call per connection).
    let polls = w.metric("buzz_relay_polls_total").await? - polls;
    let calls = w.metric("buzz_relay_poll_calls_total").await? - calls;
    if polls < 40.0 || 2.0 * polls < 3.0 * calls {
        return Err(format!("{polls} polls took {calls} database calls"));
    }
    Ok(())
}

/// A client that goes away mid-subscription (its TCP connection dropped, no close frame) is
/// forgotten: its session ends and its socket closes. Told apart from every other check's
/// connections by its own address: it fills that address's --max-connections-per-ip, and
/// the address gets a slot back only once the relay let go of the dropped connection. (The
/// process-wide connection count is not used: other checks' clients may still come and go.)
async fn disconnect(w: &mut World) -> Result<(), String> {
    let from = std::net::Ipv4Addr::new(127, 0, 0, 6);
    let mut idle = Vec::new();
    for _ in 1..crate::harness::MAX_CONNECTIONS_PER_IP {
        idle.push(Raw::connect_from(&w.url_a(), from, None).await?);
    }
    let mut raw = Raw::connect_from(&w.url_a(), from, None).await?;
    raw.next_of("AUTH").await;
    raw.send(r#"["REQ","s",{"kinds":[1]}]"#.into()).await?;
    raw.next_of("CLOSED").await;
    if Raw::connect_from(&w.url_a(), from, None).await.is_ok() {
        return Err("the address was not full".into());
    }
    drop(raw);
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if Raw::connect_from(&w.url_a(), from, None).await.is_ok() {
            return Ok(());
        }
    }
    Err("the dropped connection still holds its address's slot".into())
}

async fn restart(w: &mut World) -> Result<(), String> {
    let Some(cmd) = w.restart_cmd.clone() else { return Err("no --restart-cmd".into()) };
    let (a, _) = client(&w.url_a(), Some(&w.alice)).await?;
    let (carol, mut notes) = client(&w.url_a(), Some(&w.carol)).await?;
    let sub = carol.subscribe(Filter::new().kind(Kind::TextNote), None).await.map_err(e)?.val;
    let acked = note(&w.alice, "acknowledged before the restart", vec![])?;
    publish(&a, &acked).await?;
    // The restarted server must not inherit our output (a pipe would then never close).
    let status = tokio::process::Command::new("sh")
        .args(["-c", &cmd])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .await
        .map_err(e)?;
    if !status.success() {
        return Err(format!("restart command failed: {status}"));
    }
    // The admin connection died with the server.
    let admin = {
        let (c, conn) = tokio_postgres::connect(&w.relay_db.replace(&format!("user={}", crate::harness::ROLE), "user=postgres"), tokio_postgres::NoTls)
            .await
            .map_err(e)?;
        tokio::spawn(conn);
        c
    };
    w.admin = admin;
    // Publishing works again within a few seconds (the pool replaces dead connections).
    let after = note(&w.alice, "after the restart", vec![])?;
    let mut ok = false;
    for _ in 0..50 {
        if publish(&a, &after).await.is_ok() {
            ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    if !ok {
        return Err("publishing did not recover".into());
    }
    // The live subscription survived and delivers the new event (a wake-up after the
    // listener reconnected, or the timer).
    if !wait_for(&mut notes, &sub, Duration::from_secs(10), |ev| ev.id == after.id).await {
        return Err("the live subscription did not deliver after the restart".into());
    }
    let n: i64 = w
        .admin
        .query_one("SELECT count(*) FROM buzz.events WHERE id = $1", &[&acked.id.to_hex()])
        .await
        .map_err(e)?
        .get(0);
    a.shutdown().await;
    carol.shutdown().await;
    if n != 1 {
        return Err("an acknowledged event was lost".into());
    }
    Ok(())
}

async fn shutdown(w: &mut World) -> Result<(), String> {
    let mut raw = Raw::login(&w.url_a(), &w.carol).await?;
    raw.send(r#"["REQ","until-shutdown",{"kinds":[1]}]"#.into()).await?;
    raw.next_of("EOSE").await.ok_or("no EOSE")?;
    let stopping = w.stop_relay();
    let closed = raw.next_of("CLOSED");
    let (status, closed) = tokio::join!(stopping, closed);
    let closed = closed.ok_or("no CLOSED on shutdown")?;
    if closed[1] != "until-shutdown" || !closed[2].as_str().unwrap_or("").starts_with("error:") {
        return Err(format!("answer {closed}"));
    }
    match status {
        Some(s) if s.success() => Ok(()),
        other => Err(format!("relay exit {other:?}")),
    }
}
