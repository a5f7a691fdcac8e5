//! buzz-itest: integration tests of buzz_tenancy's event log against a running PostgreSQL
//! with the extension installed (connection from PGHOST / PGPORT / PGUSER, a superuser).
//!
//!   buzz-itest concurrency                               publish, NIP-98 and audit-append races, the host cache under snapshot isolation
//!   buzz-itest noninterference [--seed N] [--ops N]      B alone vs. B interleaved with A
//!   buzz-itest sanitize                                  error fields the relay's own SQL shows
//!   buzz-itest differential [--seed N]                   event ids and verification vs. rust-nostr
//!   buzz-itest live [--seed N]                           live delivery: commit order, hand-over, wake-ups
//!   buzz-itest all [--seed N] [--ops N]                  all of them
//!   buzz-itest pooler --port P [--seed N]                through PgBouncer (transaction mode) on port P
//!
//! Prints `ok - name` / `not ok - name: why` per check and `itest: N passed, M failed`; exits
//! non-zero if anything failed.

mod audit;
mod concurrency;
mod differential;
mod hosts;
mod live;
mod nip98;
mod noninterference;
mod pooler;
mod prng;
mod readers;
mod report;
mod sanitize;
mod sessions;
mod setup;

use std::process::exit;
use std::time::{SystemTime, UNIX_EPOCH};

use report::Report;

const USAGE: &str =
    "usage: buzz-itest concurrency | noninterference [--seed N] [--ops N] | sanitize | differential [--seed N] | live [--seed N] | all [--seed N] [--ops N] | pooler --port P [--seed N]";

struct Args {
    command: String,
    seed: u64,
    ops: usize,
    port: u16,
}

fn parse(args: &[String]) -> Result<Args, String> {
    let command = args.first().cloned().ok_or("missing subcommand")?;
    if !["concurrency", "noninterference", "sanitize", "differential", "live", "all", "pooler"].contains(&command.as_str()) {
        return Err(format!("unknown subcommand {command:?}"));
    }
    // Default seed from the clock: every run explores a new plan; failures print the seed.
    let mut seed = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(1);
    let mut ops = noninterference::DEFAULT_OPS;
    let mut port = 0;
    let mut rest = args[1..].iter();
    while let Some(flag) = rest.next() {
        let value = rest.next().ok_or(format!("{flag} needs a value"))?;
        match (command.as_str(), flag.as_str()) {
            ("noninterference" | "differential" | "live" | "all" | "pooler", "--seed") => seed = value.parse().map_err(|e| format!("--seed: {e}"))?,
            ("noninterference" | "all", "--ops") => {
                ops = value.parse().map_err(|e| format!("--ops: {e}"))?;
                // The run's coverage checks (some forged channels, cross-author deletions, ...)
                // are sized for the minimum of 1,000 operations.
                if ops < 1000 {
                    return Err("--ops must be at least 1000".into());
                }
            }
            ("pooler", "--port") => port = value.parse().map_err(|e| format!("--port: {e}"))?,
            _ => return Err(format!("unexpected argument {flag:?}")),
        }
    }
    if command == "pooler" && port == 0 {
        return Err("pooler needs --port".into());
    }
    Ok(Args { command, seed, ops, port })
}

fn main() {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let args = parse(&argv).unwrap_or_else(|e| {
        eprintln!("buzz-itest: {e}\n{USAGE}");
        exit(2)
    });
    let mut report = Report::default();
    match setup::Pg::from_env() {
        Err(e) => report.check("connection parameters", Err(e)),
        Ok(pg) => {
            if matches!(args.command.as_str(), "concurrency" | "all") {
                concurrency::run(&pg, &mut report);
                nip98::run(&pg, &mut report);
                audit::run(&pg, &mut report);
                hosts::run(&pg, &mut report);
                sessions::run(&pg, &mut report);
                readers::run(&pg, &mut report);
            }
            if matches!(args.command.as_str(), "noninterference" | "all") {
                noninterference::run(&pg, args.seed, args.ops, &mut report);
            }
            if matches!(args.command.as_str(), "sanitize" | "all") {
                sanitize::run(&pg, &mut report);
            }
            if matches!(args.command.as_str(), "differential" | "all") {
                differential::run(&pg, args.seed, &mut report);
            }
            if matches!(args.command.as_str(), "live" | "all") {
                live::run(&pg, args.seed, &mut report);
            }
            if args.command == "pooler" {
                pooler::run(&pg, args.port, args.seed, &mut report);
            }
        }
    }
    println!("{}", report.summary());
    exit(if report.failed() == 0 { 0 } else { 1 });
}
