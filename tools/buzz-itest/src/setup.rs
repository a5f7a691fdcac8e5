//! Connections, scratch databases, the operator-side setup, client keys and the relay-side
//! calls. Everything the relay does goes through `buzz.*` functions with bound parameters
//! (never literals), one `BEGIN; buzz.enter(...); ...; COMMIT` transaction per request.

use std::time::{SystemTime, UNIX_EPOCH};

use buzz_sign::{Keypair, Secp256k1};
use postgres::{Client, Config, NoTls};
use secp256k1::All;
use serde_json::{json, Value};

use crate::prng::Rng;

/// Cluster-wide relay role; created if missing, granted the relay API in each scratch database.
pub const RELAY_ROLE: &str = "buzz_itest_relay";

/// `(accepted, message)` as answered by `buzz.publish`.
pub type Answer = (bool, String);

/// The catalog phrases the checks expect.
pub const ACCEPTED: &str = "";
pub const DUPLICATE: &str = "duplicate: already have this event";
pub const SUPERSEDED: &str = "duplicate: have a newer version of this event";
pub const DELETED: &str = "blocked: event was deleted";
pub const CHANNEL_UNKNOWN: &str = "restricted: no such channel, or not permitted";

pub fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// The server's message for a database error, or the client error text.
pub fn err(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(d) => format!("{} ({})", d.message(), d.code().code()),
        None => e.to_string(),
    }
}

/// Connection parameters from PGHOST / PGPORT / PGUSER (a superuser).
#[derive(Clone)]
pub struct Pg {
    host: String,
    port: u16,
    superuser: String,
}

impl Pg {
    pub fn from_env() -> Result<Pg, String> {
        let host = std::env::var("PGHOST")
            .map_err(|_| "PGHOST is not set (start a cluster: source scripts/lib/cluster.sh; cluster_start itest)")?;
        let port = std::env::var("PGPORT").unwrap_or_else(|_| "5432".into());
        let port = port.parse().map_err(|e| format!("PGPORT {port:?}: {e}"))?;
        let superuser = std::env::var("PGUSER").unwrap_or_else(|_| "postgres".into());
        Ok(Pg { host, port, superuser })
    }

    /// The same server through another port in the same socket directory (PgBouncer).
    pub fn with_port(&self, port: u16) -> Pg {
        Pg { port, ..self.clone() }
    }

    /// The Unix socket of this host and port.
    pub fn socket(&self) -> String {
        format!("{}/.s.PGSQL.{}", self.host, self.port)
    }

    pub fn connect(&self, db: &str, user: &str) -> Result<Client, String> {
        let mut cfg = Config::new();
        cfg.port(self.port).user(user).dbname(db).application_name("buzz-itest");
        if self.host.starts_with('/') {
            cfg.host_path(&self.host);
        } else {
            cfg.host(&self.host);
        }
        cfg.connect(NoTls).map_err(|e| format!("connect to {db} as {user}: {}", err(&e)))
    }
}

/// A fresh database with the extension and the relay role set up; dropped on `Drop`.
pub struct Scratch {
    pg: Pg,
    pub db: String,
}

impl Scratch {
    pub fn create(pg: &Pg, label: &str) -> Result<Scratch, String> {
        let db = format!("itest_{label}_{}", std::process::id());
        let mut c = pg.connect("postgres", &pg.superuser)?;
        let has_role = c
            .query_opt("SELECT 1 FROM pg_roles WHERE rolname = $1", &[&RELAY_ROLE])
            .map_err(|e| err(&e))?
            .is_some();
        if !has_role {
            // Another process may win the race; an "already exists" is as good.
            if let Err(e) = c.batch_execute(&format!("CREATE ROLE {RELAY_ROLE} LOGIN")) {
                if e.code() != Some(&postgres::error::SqlState::DUPLICATE_OBJECT) {
                    return Err(format!("CREATE ROLE: {}", err(&e)));
                }
            }
        }
        // Each statement alone: DROP/CREATE DATABASE cannot run in a transaction block.
        c.batch_execute(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)")).map_err(|e| err(&e))?;
        c.batch_execute(&format!("CREATE DATABASE {db}")).map_err(|e| format!("CREATE DATABASE: {}", err(&e)))?;
        let s = Scratch { pg: pg.clone(), db };
        let mut a = s.admin()?;
        a.batch_execute("CREATE EXTENSION buzz_tenancy").map_err(|e| format!("CREATE EXTENSION: {}", err(&e)))?;
        a.execute("SELECT buzz.setup_relay_role($1)", &[&RELAY_ROLE])
            .map_err(|e| format!("setup_relay_role: {}", err(&e)))?;
        Ok(s)
    }

    /// A superuser connection (operator API, monitoring).
    pub fn admin(&self) -> Result<Client, String> {
        self.pg.connect(&self.db, &self.pg.superuser)
    }

    /// A connection as the relay role.
    pub fn relay(&self) -> Result<Client, String> {
        self.pg.connect(&self.db, RELAY_ROLE)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if let Ok(mut c) = self.pg.connect("postgres", &self.pg.superuser) {
            let _ = c.batch_execute(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.db));
        }
    }
}

// ---- operator API (superuser connection) -------------------------------------------------

/// `create_community` + `add_host`.
pub fn create_community(c: &mut Client, slug: &str, host: &str, admission: &str) -> Result<(), String> {
    c.execute("SELECT buzz.create_community($1, $2, $3)", &[&slug, &slug, &admission])
        .map_err(|e| format!("create_community {slug}: {}", err(&e)))?;
    c.execute("SELECT buzz.add_host($1, $2)", &[&slug, &host])
        .map_err(|e| format!("add_host {host}: {}", err(&e)))?;
    Ok(())
}

pub fn admit(c: &mut Client, slug: &str, pubkey: &str, role: &str) -> Result<(), String> {
    c.execute("SELECT buzz.admit($1, $2, $3)", &[&slug, &pubkey, &role])
        .map(drop)
        .map_err(|e| format!("admit into {slug}: {}", err(&e)))
}

// ---- client keys -------------------------------------------------------------------------

/// Client-side keys; the database only ever sees signed events.
pub struct Keys {
    pub secp: Secp256k1<All>,
    pub kps: Vec<Keypair>,
    pub pks: Vec<String>,
}

impl Keys {
    /// `n` keypairs drawn from `rng` (the same seed gives the same keys).
    pub fn generate(rng: &mut Rng, n: usize) -> Keys {
        let secp = Secp256k1::new();
        let mut kps = Vec::with_capacity(n);
        while kps.len() < n {
            // A random 32-byte string is a valid secret key with overwhelming probability.
            if let Ok(kp) = buzz_sign::keypair(&secp, &rng.hex32()) {
                kps.push(kp);
            }
        }
        let pks = kps.iter().map(buzz_sign::pubkey_hex).collect();
        Keys { secp, kps, pks }
    }

    /// Compact signed event JSON by key `k`.
    pub fn sign(&self, k: usize, created_at: i64, kind: u16, tags: &[Value], content: &str) -> String {
        buzz_sign::sign_event(&self.secp, &self.kps[k], created_at, kind, tags, content)
    }
}

/// The `id` field of an event JSON text.
pub fn id_of(event: &str) -> String {
    field(event, "id")
}

pub fn field(event: &str, name: &str) -> String {
    serde_json::from_str::<Value>(event)
        .ok()
        .and_then(|v| v.get(name).and_then(Value::as_str).map(str::to_owned))
        .unwrap_or_default()
}

// ---- relay API (relay-role connection) -----------------------------------------------------

/// `BEGIN; SELECT buzz.enter($1[, $2])` — leaves the transaction open.
pub fn begin_enter(c: &mut Client, host: &str, token: Option<&str>) -> Result<(), String> {
    c.batch_execute("BEGIN").map_err(|e| err(&e))?;
    let r = match token {
        Some(t) => c.execute("SELECT buzz.enter($1, $2)", &[&host, &t]),
        None => c.execute("SELECT buzz.enter($1)", &[&host]),
    };
    r.map(drop).map_err(|e| {
        rollback(c);
        format!("enter {host}: {}", err(&e))
    })
}

pub fn commit(c: &mut Client) -> Result<(), String> {
    c.batch_execute("COMMIT").map_err(|e| format!("COMMIT: {}", err(&e)))
}

pub fn rollback(c: &mut Client) {
    let _ = c.batch_execute("ROLLBACK");
}

/// One request: `BEGIN; enter; f; COMMIT`, rolled back if `f` fails so the connection
/// stays usable.
pub fn txn<T>(
    c: &mut Client,
    host: &str,
    token: Option<&str>,
    f: impl FnOnce(&mut Client) -> Result<T, String>,
) -> Result<T, String> {
    begin_enter(c, host, token)?;
    match f(c) {
        Ok(v) => commit(c).map(|()| v),
        Err(e) => {
            rollback(c);
            Err(e)
        }
    }
}

/// `buzz.publish` inside the caller's open transaction.
pub fn publish_stmt(c: &mut Client, event: &str) -> Result<Answer, String> {
    let row = c
        .query_one("SELECT accepted, message FROM buzz.publish($1::text)", &[&event])
        .map_err(|e| format!("publish: {}", err(&e)))?;
    Ok((row.get(0), row.get(1)))
}

pub fn publish(c: &mut Client, host: &str, token: &str, event: &str) -> Result<Answer, String> {
    txn(c, host, Some(token), |c| publish_stmt(c, event))
}

/// `buzz.req`: the events' JSON texts in server order (newest first).
pub fn req(c: &mut Client, host: &str, token: &str, filters: &Value) -> Result<Vec<String>, String> {
    txn(c, host, Some(token), |c| {
        let rows = c
            .query("SELECT e::text FROM buzz.req($1::jsonb) e", &[filters])
            .map_err(|e| format!("req {filters}: {}", err(&e)))?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    })
}

pub fn count(c: &mut Client, host: &str, token: &str, filters: &Value) -> Result<i64, String> {
    txn(c, host, Some(token), |c| {
        c.query_one("SELECT buzz.count($1::jsonb)", &[filters])
            .map(|r| r.get(0))
            .map_err(|e| format!("count {filters}: {}", err(&e)))
    })
}

/// NIP-42 login as a relay does it: a committed challenge, then a signed kind 22242 for this
/// relay URL and challenge turned into a session token.
pub fn login(c: &mut Client, keys: &Keys, k: usize, host: &str) -> Result<String, String> {
    let challenge: String = txn(c, host, None, |c| {
        c.query_one("SELECT buzz.auth_challenge()", &[]).map(|r| r.get(0)).map_err(|e| err(&e))
    })
    .map_err(|e| format!("auth_challenge on {host}: {e}"))?;
    let tags = [json!(["relay", format!("wss://{host}/")]), json!(["challenge", challenge])];
    let auth = keys.sign(k, now(), 22242, &tags, "");
    txn(c, host, None, |c| {
        c.query_one("SELECT buzz.authenticate($1)", &[&auth]).map(|r| r.get(0)).map_err(|e| err(&e))
    })
    .map_err(|e| format!("authenticate key {k} on {host}: {e}"))
}

/// `buzz.create_channel` → the channel uuid as text.
pub fn create_channel(c: &mut Client, host: &str, token: &str, name: &str, visibility: &str) -> Result<String, String> {
    txn(c, host, Some(token), |c| {
        c.query_one("SELECT buzz.create_channel($1, $2)::text", &[&name, &visibility])
            .map(|r| r.get(0))
            .map_err(|e| format!("create_channel {name}: {}", err(&e)))
    })
}

pub fn add_channel_member(c: &mut Client, host: &str, token: &str, channel: &str, pubkey: &str) -> Result<(), String> {
    txn(c, host, Some(token), |c| {
        c.execute("SELECT buzz.add_channel_member($1::text, $2::text)", &[&channel, &pubkey])
            .map(drop)
            .map_err(|e| format!("add_channel_member: {}", err(&e)))
    })
}
