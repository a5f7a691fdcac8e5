//! `report`: results.jsonl → summary.md (tables, goals) and the .dat files bench/plot.gp draws.

use serde_json::Value;
use std::fmt::Write;

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or(f64::NAN)
}

fn verdict(ok: bool) -> &'static str {
    if ok { "met" } else { "**missed**" }
}

fn human(n: f64) -> String {
    if n >= 1e6 { format!("{:.2}M", n / 1e6) } else if n >= 1e3 { format!("{:.0}k", n / 1e3) } else { format!("{n}") }
}

pub fn run(results: &str, outdir: &str) {
    let text = std::fs::read_to_string(results).expect("results file");
    let recs: Vec<Value> = text.lines().filter(|l| !l.trim().is_empty()).map(|l| serde_json::from_str(l).unwrap()).collect();
    let by = |b: &str| recs.iter().filter(|r| r["bench"] == b).cloned().collect::<Vec<_>>();
    let req = by("req");
    let mut md = String::new();
    let mut goals = String::from("| goal (DESIGN §8) | target | measured | verdict |\n|---|---|---|---|\n");

    // Stages in load order.
    let mut stages: Vec<(String, i64)> = vec![];
    for r in &req {
        let s = r["stage"].as_str().unwrap().to_owned();
        if !stages.iter().any(|x| x.0 == s) {
            stages.push((s, r["events"].as_i64().unwrap()));
        }
    }
    for (stage, events) in &stages {
        let rs: Vec<&Value> = req.iter().filter(|r| r["stage"] == stage.as_str()).collect();
        let r0 = rs[0];
        writeln!(md, "### buzz.req vs. hand-written SQL — {} events, {} event_tags rows, {} communities\n",
                 human(*events as f64), human(f(&r0["event_tags"])), r0["communities"]).unwrap();
        writeln!(md, "Statement latency in µs (client-observed round trip of the one statement), {} samples per variant and shape, interleaved, rotating over {} communities.\n",
                 r0["req"]["n"], r0["sample_communities"]).unwrap();
        md.push_str("| shape | rows | req median | hand median | **ratio** | req p90 | hand p90 | ratio p90 | same | same, planned per call | count (all matches) | txn ratio |\n|---|---|---|---|---|---|---|---|---|---|---|---|\n");
        let mut logsum = 0.0;
        let mut worst: f64 = 0.0;
        for r in &rs {
            let ratio = f(&r["ratio_median"]);
            logsum += ratio.ln();
            worst = worst.max(ratio);
            let mm = r["result_mismatches"].as_i64().unwrap_or(0);
            writeln!(md, "| {}{} | {:.0} | {:.0} | {:.0} | **{:.2}** | {:.0} | {:.0} | {:.2} | {:.0} | {:.0} | {:.0} | {:.2} |",
                     r["shape"].as_str().unwrap(), if mm > 0 { " (results differ!)" } else { "" }, f(&r["avg_rows"]),
                     f(&r["req"]["median_us"]), f(&r["hand"]["median_us"]), ratio,
                     f(&r["req"]["p90_us"]), f(&r["hand"]["p90_us"]), f(&r["ratio_p90"]),
                     f(&r["same"]["median_us"]), f(&r["same_plan"]["median_us"]), f(&r["count"]["median_us"]), f(&r["ratio_txn_median"])).unwrap();
        }
        let geo = (logsum / rs.len() as f64).exp();
        writeln!(md, "\nGeometric mean of the median ratios: **{geo:.2}**; worst shape: **{worst:.2}**.\n").unwrap();
        if Some(stage) == stages.last().map(|s| &s.0) {
            writeln!(goals, "| buzz.req / hand-written, median latency ({} events) | ≤ 1.10 | {:.2}–{:.2} by shape (geo. mean {:.2}) | {} |",
                     human(*events as f64),
                     rs.iter().map(|r| f(&r["ratio_median"])).fold(f64::INFINITY, f64::min), worst, geo, verdict(worst <= 1.10)).unwrap();
        }
        let mut dat = String::from("# shape req_median hand_median same_median req_p90 hand_p90\n");
        for r in &rs {
            writeln!(dat, "{} {} {} {} {} {}", r["shape"].as_str().unwrap(), f(&r["req"]["median_us"]), f(&r["hand"]["median_us"]),
                     f(&r["same"]["median_us"]), f(&r["req"]["p90_us"]), f(&r["hand"]["p90_us"])).unwrap();
        }
        std::fs::write(format!("{outdir}/req_{stage}.dat"), dat).unwrap();
    }

    if stages.len() >= 2 {
        let (a, b) = (&stages[0], &stages[stages.len() - 1]);
        writeln!(md, "### Growth: the same filters at {} and {} events\n", human(a.1 as f64), human(b.1 as f64)).unwrap();
        md.push_str("| shape | req median small | req median large | req growth | hand median small | hand median large | hand growth |\n|---|---|---|---|---|---|---|\n");
        let mut dat = String::from("# shape req_small req_large hand_small hand_large\n");
        let mut worst: f64 = 0.0;
        for ra in req.iter().filter(|r| r["stage"] == a.0.as_str()) {
            let shape = ra["shape"].as_str().unwrap();
            let Some(rb) = req.iter().find(|r| r["stage"] == b.0.as_str() && r["shape"] == shape) else { continue };
            let (x1, x2, h1, h2) = (f(&ra["req"]["median_us"]), f(&rb["req"]["median_us"]), f(&ra["hand"]["median_us"]), f(&rb["hand"]["median_us"]));
            worst = worst.max(x2 / x1);
            writeln!(md, "| {shape} | {x1:.0} | {x2:.0} | {:.2}× | {h1:.0} | {h2:.0} | {:.2}× |", x2 / x1, h2 / h1).unwrap();
            writeln!(dat, "{shape} {x1} {x2} {h1} {h2}").unwrap();
        }
        writeln!(md, "\n(×{:.0} events; log-growth would predict ≈ ×{:.2} for a btree descent.)\n",
                 b.1 as f64 / a.1 as f64, (b.1 as f64).ln() / (a.1 as f64).ln()).unwrap();
        writeln!(goals, "| query cost grows with log(events) ({} → {}) | ≈ log | worst shape ×{worst:.2} | see growth table |",
                 human(a.1 as f64), human(b.1 as f64)).unwrap();
        std::fs::write(format!("{outdir}/growth.dat"), dat).unwrap();
    }

    for p in by("publish") {
        md.push_str("### buzz.publish vs. verify-in-Rust + plain INSERT\n\n");
        md.push_str("| side | events | events/s (2 connections) | µs per event per connection | stored |\n|---|---|---|---|---|\n");
        writeln!(md, "| buzz.publish (BEGIN; enter; publish; COMMIT) | {} | {:.0} | {:.0} | {} |", p["events_per_side"][0], f(&p["buzz_events_per_s"]),
                 f(&p["buzz_us_per_event_per_conn"]), p["buzz_accepted"]).unwrap();
        writeln!(md, "| baseline (Rust verify; INSERT … ON CONFLICT DO NOTHING) | {} | {:.0} | {:.0} | {} |", p["events_per_side"][1], f(&p["plain_events_per_s"]),
                 f(&p["plain_us_per_event_per_conn"]), p["plain_inserted"]).unwrap();
        writeln!(md, "\nRatio **{:.2}**. Mean client-observed µs per event — buzz: BEGIN+COMMIT {:.0}, enter {:.0}, publish {:.0}; baseline: verify {:.0} (in the relay), INSERT {:.0}. \
                      Client-side verification alone: {:.1} µs/event on one idle thread. Not stored: {}.\n",
                 f(&p["ratio"]), f(&p["buzz_mean_us"]["begin_commit"]), f(&p["buzz_mean_us"]["enter"]), f(&p["buzz_mean_us"]["publish"]),
                 f(&p["plain_mean_us"]["verify"]), f(&p["plain_mean_us"]["insert"]),
                 f(&p["client_verify_us_per_event_1_thread"]), p["not_stored"]).unwrap();
        md.push_str("| round | side | events | events/s |\n|---|---|---|---|\n");
        for (i, r) in p["rounds"].as_array().unwrap().iter().enumerate() {
            writeln!(md, "| {} | {} | {} | {:.0} |", i + 1, r["side"].as_str().unwrap(), r["events"], f(&r["events_per_s"])).unwrap();
        }
        md.push('\n');
        writeln!(goals, "| buzz.publish in the relay's four statements / baseline (informational) | — | {:.2} ({:.0} vs {:.0} events/s) | — |", f(&p["ratio"]),
                 f(&p["buzz_events_per_s"]), f(&p["plain_events_per_s"])).unwrap();
        std::fs::write(format!("{outdir}/publish.dat"),
                       format!("# side events_per_s\nbuzz.publish {}\nbaseline {}\n", f(&p["buzz_events_per_s"]), f(&p["plain_events_per_s"]))).unwrap();
    }

    for p in by("publish_round_trips") {
        md.push_str("### buzz.publish with the round trips counted the same way\n\n");
        md.push_str("Both sides in autocommit, 2 connections, rounds buzz, baseline, baseline, buzz. *One per statement*: \
                     `SELECT … FROM buzz.publish(host, token, ARRAY[event])` (enter and publish in one statement) against \
                     the baseline's one verified INSERT per event. *Batches of 16*: one author's events, up to 16 per \
                     `publish(host, token, events)`, against one INSERT of the same batch (rows from arrays).\n\n");
        md.push_str("| pattern | buzz events/s | baseline events/s | **ratio** | buzz / verify-only | stored, buzz / baseline |\n|---|---|---|---|---|---|\n");
        for q in p["pairs"].as_array().unwrap() {
            writeln!(md, "| {} | {:.0} | {:.0} | **{:.2}** | {:.3} | {} / {} |", q["pattern"].as_str().unwrap(), f(&q["buzz_events_per_s"]),
                     f(&q["plain_events_per_s"]), f(&q["ratio"]), f(&q["buzz_to_verify_only"]), q["buzz_stored"], q["plain_stored"]).unwrap();
        }
        writeln!(md, "\nVerify-only ceiling (two threads doing nothing but parse, id check and BIP-340): {:.0} events/s.\n",
                 f(&p["verify_only_events_per_s"])).unwrap();
        for q in p["pairs"].as_array().unwrap() {
            writeln!(goals, "| buzz.publish / baseline throughput, {} (same round trips) | ≥ 0.70 | {:.2} ({:.0} vs {:.0} events/s; {:.3} of verify-only) | {} |",
                     q["pattern"].as_str().unwrap(), f(&q["ratio"]), f(&q["buzz_events_per_s"]), f(&q["plain_events_per_s"]),
                     f(&q["buzz_to_verify_only"]), verdict(f(&q["ratio"]) >= 0.70)).unwrap();
        }
    }

    for e in by("enter") {
        let n = &e["communities"][1];
        writeln!(md, "### buzz.enter with 1 vs {n} communities\n").unwrap();
        writeln!(md, "Client-observed (relay role over the Unix socket; {} interleaved samples each), µs:\n", e["samples"]).unwrap();
        md.push_str("| measurement | 1: median | N: median | ratio | 1: p90 | N: p90 |\n|---|---|---|---|---|---|\n");
        for (k, v) in e["client"].as_object().unwrap() {
            writeln!(md, "| {k} | {:.1} | {:.1} | {:.2} | {:.1} | {:.1} |", f(&v["one"]["median_us"]), f(&v["many"]["median_us"]),
                     f(&v["ratio_median"]), f(&v["one"]["p90_us"]), f(&v["many"]["p90_us"])).unwrap();
        }
        writeln!(md, "\nA connection's NIP-42 challenge (`challenge_txn`: BEGIN; enter(host); auth_challenge(); COMMIT) writes {:.0} bytes of WAL.",
                 f(&e["challenge_wal_bytes"])).unwrap();
        writeln!(md, "\n`enter(host)` on a random one of the N hosts (a first use in this backend, so a host-map cache miss): median {:.1} µs, p90 {:.1} µs.",
                 f(&e["client_enter_host_random_many"]["median_us"]), f(&e["client_enter_host_random_many"]["p90_us"])).unwrap();
        writeln!(md, "\nServer-side (PL/pgSQL loop of {} calls in one transaction, median of 5; net = minus the loop around `buzz.current_community()`), µs per call:\n", e["loop_calls"]).unwrap();
        md.push_str("| loop body | 1 | N | 1 net | N net | ratio (net) |\n|---|---|---|---|---|---|\n");
        for (k, v) in e["server"].as_object().unwrap() {
            writeln!(md, "| {k} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} |", f(&v["one_us"]), f(&v["many_us"]), f(&v["one_net_us"]),
                     f(&v["many_net_us"]), f(&v["ratio_net"])).unwrap();
        }
        md.push('\n');
        let c = &e["client"]["enter_token_stmt"];
        let ch = &e["client"]["enter_host_stmt"];
        let s = &e["server"]["enter_token"];
        let sh = &e["server"]["enter_host"];
        writeln!(goals, "| enter(host), 1 vs {n} communities | ratio ≤ 1.10 | client {:.2}, server (net) {:.2} | {} |",
                 f(&ch["ratio_median"]), f(&sh["ratio_net"]), verdict(f(&ch["ratio_median"]) <= 1.10 && f(&sh["ratio_net"]) <= 1.10)).unwrap();
        writeln!(goals, "| enter(host, token), 1 vs {n} communities | ratio ≤ 1.10 | client {:.2}, server (net) {:.2} | {} |",
                 f(&c["ratio_median"]), f(&s["ratio_net"]), verdict(f(&c["ratio_median"]) <= 1.10 && f(&s["ratio_net"]) <= 1.10)).unwrap();
        writeln!(goals, "| enter(host) hot path, server-side | ≤ 5 µs | {:.1} µs ({n} communities; client-observed statement {:.0} µs) | {} |",
                 f(&sh["many_net_us"]), f(&ch["many"]["median_us"]), verdict(f(&sh["many_net_us"]) <= 5.0)).unwrap();
        writeln!(goals, "| enter(host, token) hot path, server-side | ≤ 5 µs | {:.1} µs ({n} communities; client-observed statement {:.0} µs) | {} |",
                 f(&s["many_net_us"]), f(&c["many"]["median_us"]), verdict(f(&s["many_net_us"]) <= 5.0)).unwrap();
        std::fs::write(
            format!("{outdir}/enter.dat"),
            format!(
                "# what one many\n\"client enter(host,token)\" {} {}\n\"server enter(host,token)\" {} {}\n\"server enter(host)\" {} {}\n\"server SPI lookup\" {} {}\n",
                f(&c["one"]["median_us"]), f(&c["many"]["median_us"]), f(&s["one_net_us"]), f(&s["many_net_us"]),
                f(&sh["one_net_us"]), f(&sh["many_net_us"]), f(&e["server"]["spi_lookup"]["one_net_us"]), f(&e["server"]["spi_lookup"]["many_net_us"])
            ),
        )
        .unwrap();
    }
    for p in by("poll") {
        let n = &p["communities"][1];
        let i = &p["idle_poll_server"];
        let w = &p["wakeup_latency"];
        writeln!(md, "### Live delivery: buzz.poll with 1 vs {n} communities\n").unwrap();
        writeln!(md, "Idle `poll` (no news), server-side (PL/pgSQL loop of {} calls, median of 9, net of the loop around `current_community()`): \
                      {:.1} µs alone, {:.1} µs among {n} communities while {} publishes went into others (ratio {:.2}).\n",
                 p["loop_calls"], f(&i["one_us"]), f(&i["many_us"]), i["busy_publishes_during"], f(&i["ratio"])).unwrap();
        writeln!(md, "The same with every community quiet: {:.1} µs alone, {:.1} µs among {n} (ratio {:.2}).\n",
                 f(&i["quiet_one_us"]), f(&i["quiet_many_us"]), f(&i["quiet_ratio"])).unwrap();
        writeln!(md, "Commit → wake-up → poll with {} subscriptions (LISTEN on every community's channel): median {:.0} µs, p90 {:.0} µs ({} samples).\n",
                 p["subscriptions"], f(&w["median_us"]), f(&w["p90_us"]), w["n"]).unwrap();
        writeln!(goals, "| idle poll, server-side | ≤ 50 µs | {:.1} µs ({n} communities) | {} |", f(&i["many_us"]), verdict(f(&i["many_us"]) <= 50.0)).unwrap();
        writeln!(goals, "| idle poll, 1 vs {n} busy communities | ratio ≤ 1.10 | {:.2} | {} |", f(&i["ratio"]), verdict(f(&i["ratio"]) <= 1.10)).unwrap();
        writeln!(goals, "| commit → wake-up → poll, {} subscriptions | median ≤ 5 ms | {:.2} ms | {} |", p["subscriptions"], f(&w["median_us"]) / 1000.0,
                 verdict(f(&w["median_us"]) <= 5000.0)).unwrap();
    }
    for sc in by("scale") {
        let cores = f(&sc["cores"]);
        writeln!(md, "### Scaling: 1, 2, 4, 8 client connections ({cores} cores)\n").unwrap();
        writeln!(md, "Each connection count side by side with its baseline (rounds buzz, baseline, baseline, buzz; means of two). Publish: {} fresh events per round, \
                      dealt round-robin to the connections. req: every connection cycles through the req bench's {} filters for {} s per round. \
                      Nothing is pinned. *Saturates at N*: going past N connections adds less than 10%.\n",
                 sc["publish_events_per_round"], sc["filters"], sc["req_secs_per_round"]).unwrap();
        let sat = |rows: &[Value], key: &str| -> String {
            let xs: Vec<(f64, f64)> = rows.iter().map(|r| (f(&r["clients"]), f(&r[key]))).collect();
            xs.windows(2).find(|w| w[1].1 < 1.10 * w[0].1).map_or("not by the last count".into(), |w| format!("at {} connections", w[0].0))
        };
        let mut dat = String::from("# clients buzz_publish plain_publish buzz_req hand_req\n");
        for (name, rows, a, b, unit) in [
            ("publish", &sc["publish"], "buzz_events_per_s", "plain_events_per_s", "events/s"),
            ("req", &sc["req"], "buzz_req_per_s", "hand_req_per_s", "requests/s"),
        ] {
            let rows = rows.as_array().unwrap();
            let base = if name == "publish" { "baseline" } else { "hand-written" };
            writeln!(md, "| connections | buzz {name} {unit} | per core | {base} {unit} | per core | ratio |\n|---:|---:|---:|---:|---:|---:|").unwrap();
            for r in rows {
                writeln!(md, "| {} | {:.0} | {:.0} | {:.0} | {:.0} | **{:.2}** |", r["clients"], f(&r[a]), f(&r[a]) / cores, f(&r[b]), f(&r[b]) / cores, f(&r["ratio"])).unwrap();
            }
            let total = |k: &str| rows.iter().map(|r| r[k].as_u64().unwrap_or(0)).sum::<u64>();
            let not_stored = if name == "publish" {
                format!(" Not stored (refused, or already there), buzz / baseline: {} / {}.", total("buzz_not_stored"), total("plain_not_stored"))
            } else {
                String::new()
            };
            writeln!(md, "\n{name}: buzz saturates {}, the {base} side {}.{not_stored}\n", sat(rows, a), sat(rows, b)).unwrap();
        }
        let (p, q) = (sc["publish"].as_array().unwrap(), sc["req"].as_array().unwrap());
        for (x, y) in p.iter().zip(q) {
            writeln!(dat, "{} {} {} {} {}", x["clients"], f(&x["buzz_events_per_s"]), f(&x["plain_events_per_s"]), f(&y["buzz_req_per_s"]), f(&y["hand_req_per_s"])).unwrap();
        }
        std::fs::write(format!("{outdir}/scale.dat"), dat).unwrap();
    }
    for l in by("load") {
        writeln!(md, "Load {}: {} events published in {:.0}s = {:.0} events/s (2 connections, one transaction per event); accepted {}, refused {}.\n",
                 l["stage"].as_str().unwrap_or(""), l["events"], f(&l["secs"]), f(&l["events_per_s"]), l["accepted"], l["refused"]).unwrap();
    }
    let out = format!("## Goals\n\n{goals}\n{md}");
    std::fs::write(format!("{outdir}/summary.md"), &out).unwrap();
    print!("{out}");
}
