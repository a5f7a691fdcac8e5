//! Connections, the loader's state file, and statistics.

use postgres::types::{FromSql, Type};
use postgres::{Client, Config, NoTls};
use serde_json::{json, Value};

/// Connect over the Unix socket (or host) in PGHOST/PGPORT as `user` to `db`.
pub fn connect(user: &str, db: &str) -> Client {
    let mut c = Config::new();
    c.host(&std::env::var("PGHOST").unwrap_or_else(|_| "/var/run/postgresql".into()));
    c.port(std::env::var("PGPORT").ok().and_then(|p| p.parse().ok()).unwrap_or(5432));
    c.user(user);
    c.dbname(db);
    c.application_name("buzz-bench");
    c.connect(NoTls).unwrap_or_else(|e| panic!("connect {user}@{db}: {e}"))
}

/// Accepts any column and keeps only its size: the benchmarks time the server, not the
/// client's JSON parsing.
pub struct Raw(pub usize);
impl<'a> FromSql<'a> for Raw {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(Raw(raw.len()))
    }
    fn accepts(_: &Type) -> bool {
        true
    }
}

/// What the loader set up: per community its host, id, channels, authors and their tokens.
pub struct Community {
    pub slug: String,
    pub host: String,
    pub id: uuid::Uuid,
    pub channels: Vec<uuid::Uuid>,
    pub pubkeys: Vec<String>,
    pub tokens: Vec<String>,
}

pub struct State {
    pub db: String,
    pub relay_role: String,
    pub key_seed: u64,
    pub communities: Vec<Community>,
}

impl State {
    pub fn save(&self, path: &str) {
        let cs: Vec<Value> = self
            .communities
            .iter()
            .map(|c| {
                json!({"slug": c.slug, "host": c.host, "id": c.id.to_string(),
                       "channels": c.channels.iter().map(|u| u.to_string()).collect::<Vec<_>>(),
                       "pubkeys": c.pubkeys, "tokens": c.tokens})
            })
            .collect();
        let v = json!({"db": self.db, "relay_role": self.relay_role, "key_seed": self.key_seed, "communities": cs});
        std::fs::write(path, serde_json::to_string(&v).unwrap()).expect("write state");
    }

    pub fn load(path: &str) -> State {
        let v: Value = serde_json::from_str(&std::fs::read_to_string(path).expect("state file")).unwrap();
        let strs = |x: &Value| x.as_array().unwrap().iter().map(|s| s.as_str().unwrap().to_owned()).collect::<Vec<_>>();
        let communities = v["communities"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| Community {
                slug: c["slug"].as_str().unwrap().into(),
                host: c["host"].as_str().unwrap().into(),
                id: c["id"].as_str().unwrap().parse().unwrap(),
                channels: strs(&c["channels"]).iter().map(|s| s.parse().unwrap()).collect(),
                pubkeys: strs(&c["pubkeys"]),
                tokens: strs(&c["tokens"]),
            })
            .collect();
        State {
            db: v["db"].as_str().unwrap().into(),
            relay_role: v["relay_role"].as_str().unwrap().into(),
            key_seed: v["key_seed"].as_u64().unwrap(),
            communities,
        }
    }
}

/// Summary statistics of latencies in microseconds.
#[derive(Clone, Copy, Debug)]
pub struct Stats {
    pub n: usize,
    pub median: f64,
    pub p10: f64,
    pub p90: f64,
    pub p99: f64,
    pub mean: f64,
}

pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let pos = q * (sorted.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

pub fn stats(xs: &[f64]) -> Stats {
    let mut v = xs.to_vec();
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    Stats {
        n: v.len(),
        median: quantile(&v, 0.5),
        p10: quantile(&v, 0.1),
        p90: quantile(&v, 0.9),
        p99: quantile(&v, 0.99),
        mean: v.iter().sum::<f64>() / v.len().max(1) as f64,
    }
}

impl Stats {
    pub fn json(&self) -> Value {
        json!({"n": self.n, "median_us": r2(self.median), "p10_us": r2(self.p10), "p90_us": r2(self.p90),
               "p99_us": r2(self.p99), "mean_us": r2(self.mean)})
    }
}

pub fn r2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

pub fn r3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

pub fn us(d: std::time::Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// Append one JSON record to a JSON-lines results file (and echo it).
pub fn emit(out: &str, v: &Value) {
    use std::io::Write;
    let line = serde_json::to_string(v).unwrap();
    println!("{line}");
    let mut f = std::fs::OpenOptions::new().create(true).append(true).open(out).expect("results file");
    writeln!(f, "{line}").unwrap();
}

/// Pin this client thread and the backend serving `client` to one CPU (root only; a no-op
/// where taskset is missing). On a VM a round trip between two vCPUs costs ~10× one on the
/// same vCPU, and the scheduler's placement would otherwise decide the result.
pub fn pin_pair(client: &mut Client, cpu: usize) {
    let ncpu = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let cpu = (cpu % ncpu).to_string();
    let backend: i32 = client.query_one("SELECT pg_backend_pid()", &[]).unwrap().get(0);
    let tid = std::fs::read_link("/proc/thread-self")
        .ok()
        .and_then(|p| p.file_name().map(|f| f.to_string_lossy().into_owned()));
    for pid in [Some(backend.to_string()), tid].into_iter().flatten() {
        let _ = std::process::Command::new("taskset")
            .args(["-p", "-c", &cpu, &pid])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
    }
}
