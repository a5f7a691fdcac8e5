//! buzz-bench: generator, loader and measurements for buzz_tenancy (docs/benchmarks.md).
//! Connects over PGHOST/PGPORT as `postgres` (operator, RLS bypassed) and as the relay role.

mod bench_enter;
mod bench_poll;
mod bench_publish;
mod bench_req;
mod bench_scale;
mod common;
mod gen;
mod load;
mod report;
mod rng;

use serde_json::json;

const USAGE: &str = "\
usage:
  buzz-bench generate --events N --communities C --seed S --out FILE [--threads 2]
  buzz-bench setup    --events-file FILE --db DB --state STATE [--role relay]
  buzz-bench load     --events-file FILE --state STATE --from A --to B --out RESULTS [--stage LABEL]
  buzz-bench bench req     --state STATE --stage LABEL --samples N --filters FILE --out RESULTS --raw CSV --plans TXT
  buzz-bench bench publish --state STATE --events-file FILE --n N --out RESULTS
  buzz-bench bench enter   --communities N --samples N --loop N --out RESULTS [--role relay]
  buzz-bench bench scale   --state STATE --events-file FILE --filters FILE --clients 1,2,4,8 --n N --secs S --out RESULTS
  buzz-bench report   --results RESULTS --outdir DIR";

struct Args(Vec<(String, String)>);

impl Args {
    fn parse(args: &[String]) -> Args {
        let mut v = vec![];
        let mut it = args.iter();
        while let Some(a) = it.next() {
            let k = a.strip_prefix("--").unwrap_or_else(|| die(&format!("unexpected argument {a}")));
            let val = it.next().unwrap_or_else(|| die(&format!("--{k} needs a value")));
            v.push((k.to_owned(), val.clone()));
        }
        Args(v)
    }
    fn get(&self, k: &str) -> Option<&str> {
        self.0.iter().find(|(x, _)| x == k).map(|(_, v)| v.as_str())
    }
    fn s(&self, k: &str) -> &str {
        self.get(k).unwrap_or_else(|| die(&format!("missing --{k}")))
    }
    fn n(&self, k: &str) -> usize {
        self.s(k).replace('_', "").parse().unwrap_or_else(|_| die(&format!("--{k} must be a number")))
    }
    fn n_or(&self, k: &str, d: usize) -> usize {
        if self.get(k).is_some() { self.n(k) } else { d }
    }
}

fn die(msg: &str) -> ! {
    eprintln!("buzz-bench: {msg}\n{USAGE}");
    std::process::exit(2)
}

fn main() {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let Some(cmd) = argv.first() else { die("no command") };
    match cmd.as_str() {
        "generate" => {
            let a = Args::parse(&argv[1..]);
            let (n, c, seed) = (a.n("events"), a.n("communities"), a.n("seed") as u64);
            let t = std::time::Instant::now();
            let plan = gen::plan(n, c);
            let events = gen::generate_all(seed, seed, gen::T0, gen::SPAN, &plan, a.n_or("threads", 2));
            let manifest = json!({
                "seed": seed, "key_seed": seed, "events": n, "communities": c, "t0": gen::T0, "span": gen::SPAN,
                "plan": plan.iter().map(|p| json!([p.events, p.authors])).collect::<Vec<_>>(),
            });
            gen::write_file(a.s("out"), &events, &manifest).unwrap();
            let templates = events.iter().filter(|g| g.channel.is_some()).count();
            eprintln!("generate: {} events ({} channel templates) over {c} communities, {} authors, in {:.1}s",
                      events.len(), templates, plan.iter().map(|p| p.authors).sum::<usize>(), t.elapsed().as_secs_f64());
        }
        "setup" => {
            let a = Args::parse(&argv[1..]);
            let m = gen::read_manifest(a.s("events-file"));
            let plan = gen::manifest_plan(&m);
            let st = load::setup(a.s("db"), a.get("role").unwrap_or("relay"), m["key_seed"].as_u64().unwrap(), &plan, "c");
            st.save(a.s("state"));
        }
        "load" => {
            let a = Args::parse(&argv[1..]);
            let st = common::State::load(a.s("state"));
            let (from, to) = (a.n("from"), a.n("to"));
            let events = load::read_lines(a.s("events-file"), from, to);
            let n = events.len();
            let (ok, refused, secs) = load::publish_all(&st, events);
            let refused_n: usize = refused.values().sum();
            common::emit(
                a.s("out"),
                &json!({"bench": "load", "stage": a.get("stage").unwrap_or(""), "from": from, "to": to, "events": n,
                        "accepted": ok, "refused": refused_n, "refusals": refused, "secs": common::r2(secs),
                        "events_per_s": common::r2(n as f64 / secs)}),
            );
        }
        "bench" => {
            let Some(which) = argv.get(1) else { die("bench what?") };
            let a = Args::parse(&argv[2..]);
            match which.as_str() {
                "req" => {
                    let st = common::State::load(a.s("state"));
                    bench_req::run(&st, a.s("stage"), a.n("samples"), a.s("filters"), a.s("out"), a.s("raw"), a.s("plans"));
                }
                "publish" => {
                    let st = common::State::load(a.s("state"));
                    let m = gen::read_manifest(a.s("events-file"));
                    // --seed: fresh events again on a database that already has a run's.
                    let seed = a.get("seed").map_or_else(|| m["seed"].as_u64().unwrap(), |s| s.parse().unwrap());
                    bench_publish::run(&st, &gen::manifest_plan(&m), a.n("n"), seed, a.s("out"));
                    bench_publish::run_round_trips(&st, &gen::manifest_plan(&m), a.n("n") / 2, seed, a.s("out"));
                }
                "enter" => bench_enter::run(a.n("communities"), a.n("samples"), a.n("loop") as i32, a.get("role").unwrap_or("relay"), a.s("out")),
                "poll" => bench_poll::run(a.n("communities"), a.n("events"), a.n("samples"), a.n("loop") as i32, a.get("role").unwrap_or("relay"), a.s("out")),
                "scale" => {
                    let st = common::State::load(a.s("state"));
                    let m = gen::read_manifest(a.s("events-file"));
                    let clients: Vec<usize> = a.s("clients").split(',').map(|c| c.parse().unwrap_or_else(|_| die("--clients 1,2,4,8"))).collect();
                    let secs: f64 = a.s("secs").parse().unwrap_or_else(|_| die("--secs must be a number"));
                    bench_scale::run(&st, &gen::manifest_plan(&m), m["seed"].as_u64().unwrap(), a.s("filters"), &clients, a.n("n"), secs, a.s("out"));
                }
                _ => die("bench req|publish|enter|poll|scale"),
            }
        }
        "report" => {
            let a = Args::parse(&argv[1..]);
            report::run(a.s("results"), a.s("outdir"));
        }
        _ => die("unknown command"),
    }
}
