//! End-to-end tests of `buzz-relay`: a real relay process on the extension, driven by a real
//! Nostr client library (nostr-sdk) over real WebSockets, with two hosts (`localhost:PORT`
//! and `127.0.0.1:PORT`) that are two communities. Run by scripts/test against its cluster:
//!
//!   buzz-e2e --admin "host=DIR port=P user=postgres" --relay-bin relay/target/release/buzz-relay
//!            --restart-cmd "pg_ctl -D … -w restart" [--relay-log FILE] [--pool "host=DIR port=P"]
//!
//! With `--pool`, the relay's pool goes through that PgBouncer (transaction pooling) and only
//! its wake-up `LISTEN` connects to PostgreSQL directly.
//!
//! Prints `ok - …` / `not ok - …` per check and `e2e: N passed, M failed`. With `--demo`, it
//! narrates the last act of scripts/demo instead.

mod checks;
mod demo;
mod harness;
mod limits;
mod raw;

use std::time::Duration;

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned();
    let (Some(admin), Some(relay_bin)) = (arg("--admin"), arg("--relay-bin")) else {
        eprintln!("usage: buzz-e2e --admin CONNINFO --relay-bin PATH [--restart-cmd CMD] [--relay-log FILE] [--pool CONNINFO] [--demo]");
        std::process::exit(2);
    };
    let mut report = harness::Report::default();
    match harness::World::start(&admin, arg("--pool").as_deref(), &relay_bin, arg("--restart-cmd"), arg("--relay-log")).await {
        Ok(mut world) if args.iter().any(|a| a == "--demo") => {
            let r = demo::run(&mut world).await;
            world.stop().await;
            if let Err(x) = r {
                eprintln!("demo: {x}");
                std::process::exit(1);
            }
            return;
        }
        Ok(mut world) => {
            checks::run(&mut world, &mut report).await;
            world.stop().await;
        }
        Err(e) => report.check("setup", Err(e)),
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    println!("e2e: {} passed, {} failed", report.passed, report.failed);
    std::process::exit(if report.failed == 0 { 0 } else { 1 });
}
