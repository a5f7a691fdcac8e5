//! `buzz-e2e --demo`: the last act of scripts/demo, narrated. The relay on a local port, a
//! client of each host, and the isolation of the SQL acts shown again over WebSockets.

use std::time::Duration;

use nostr_sdk::prelude::*;

use crate::harness::{client, collect, e, wait_for, World, WAIT};

fn say(s: &str) {
    println!("   {s}");
}

pub async fn run(w: &mut World) -> Result<(), String> {
    say(&format!("buzz-relay listens on 127.0.0.1:{}; host localhost:{} is community alpha, 127.0.0.1:{} is beta", w.port, w.port, w.port));
    let (alice, _) = client(&w.url_a(), Some(&w.alice)).await?;
    let (carol, mut carol_notes) = client(&w.url_a(), Some(&w.carol)).await?;
    let (bob, mut bob_notes) = client(&w.url_b(), Some(&w.bob)).await?;
    say("alice and carol (nostr-sdk) logged in to alpha with NIP-42, bob to beta: the relay passed each Host header to buzz.enter");
    let f = Filter::new().kind(Kind::TextNote);
    let sc = carol.subscribe(f.clone(), None).await.map_err(e)?.val;
    let sb = bob.subscribe(f, None).await.map_err(e)?.val;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let ev = EventBuilder::text_note("hello from alpha, over a WebSocket").sign_with_keys(&w.alice).map_err(e)?;
    let out = alice.send_event(&ev).await.map_err(e)?;
    say(&format!("alice publishes a note: OK {}", !out.success.is_empty()));
    let carol_got = wait_for(&mut carol_notes, &sc, WAIT, |x| x.id == ev.id).await;
    say(&format!("carol's live subscription on alpha receives it: {carol_got}"));
    let (bob_got, _) = collect(&mut bob_notes, &sb, Duration::from_millis(1500)).await;
    say(&format!("bob's live subscription on beta receives {} event(s) of alpha", bob_got.iter().filter(|x| x.id == ev.id).count()));
    let forged = EventBuilder::text_note("bob names alpha's private channel")
        .tag(Tag::custom(TagKind::custom("h"), [w.council.clone()]))
        .sign_with_keys(&w.bob)
        .map_err(e)?;
    let answer = match bob.send_event(&forged).await {
        Ok(out) if out.success.is_empty() => out.failed.values().next().cloned().unwrap_or_default(),
        Ok(_) => "accepted".into(),
        Err(x) => x.to_string(),
    };
    say(&format!("bob forges an h tag naming alpha's private channel: {answer}"));
    let (status, _) = w.http_get("unknown.example", "/", "application/nostr+json").await?;
    say(&format!("NIP-11 for a host the database does not map: HTTP {status}"));
    for c in [alice, carol, bob] {
        c.shutdown().await;
    }
    if !carol_got || !bob_got.is_empty() {
        return Err("the demo did not go as shown".into());
    }
    Ok(())
}
