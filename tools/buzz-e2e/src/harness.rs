//! The world the checks run in: a database with two communities, a `buzz-relay` process
//! serving both on one port, and nostr-sdk clients.

use std::process::Stdio;
use std::time::Duration;

use nostr_sdk::prelude::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, Command};
use tokio::sync::broadcast;
use tokio_postgres::NoTls;

pub const DB: &str = "buzz_e2e";
pub const ROLE: &str = "buzz_e2e_relay";
pub const WAIT: Duration = Duration::from_secs(5);
/// The relay's limits in these checks.
pub const OUTBOUND_QUEUE_BYTES: usize = 65_536;
pub const OUTBOUND_BYTES_PER_IP: usize = 131_072;
pub const MAX_LOGINS: usize = 2;
pub const MAX_ANSWER_BYTES: usize = 262_144;
pub const MAX_CONNECTIONS_PER_IP: usize = 100;
pub const CONNECT_RATE_PER_IP: usize = 50;
pub const CONNECT_BURST_PER_IP: usize = 200;
pub const SEND_TIMEOUT_SECS: u64 = 3;
pub const HANDSHAKE_TIMEOUT_SECS: u64 = 2;
pub const MAX_REQUESTS_PER_IP: usize = 3;
pub const MAX_FILTER_BYTES: usize = 16_384;
pub const STATEMENT_TIMEOUT_MS: u64 = 3_000;

#[derive(Default)]
pub struct Report {
    pub passed: usize,
    pub failed: usize,
}

impl Report {
    /// Whether check `name` runs: all of them, unless BUZZ_E2E_ONLY (a developer's loop)
    /// names part of the ones to run (alternatives separated by `|`). Later checks do not
    /// depend on earlier ones.
    pub fn wants(&self, name: &str) -> bool {
        std::env::var("BUZZ_E2E_ONLY").map_or(true, |only| only.split('|').any(|o| name.contains(o)))
    }

    pub fn check(&mut self, name: &str, r: Result<(), String>) {
        match r {
            Ok(()) => {
                self.passed += 1;
                println!("ok - e2e: {name}");
            }
            Err(e) => {
                self.failed += 1;
                println!("not ok - e2e: {name}: {e}");
            }
        }
    }
}

pub struct World {
    pub admin: tokio_postgres::Client,
    pub port: u16,
    /// The relay's private `/metrics` port.
    pub metrics_port: u16,
    relay_bin: String,
    pub relay_db: String,
    /// Where the relay's pool connects: `relay_db`, or PgBouncer in front of it.
    pool_db: String,
    relay: Option<Child>,
    relay_log: Option<String>,
    pub restart_cmd: Option<String>,
    pub alice: Keys,
    pub bob: Keys,
    pub carol: Keys,
    pub council: String,
}

pub fn e<E: std::fmt::Display>(err: E) -> String {
    err.to_string()
}

fn free_port() -> Result<u16, String> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(e)?;
    Ok(l.local_addr().map_err(e)?.port())
}

async fn listening(port: u16) -> Result<(), String> {
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err("the relay did not start listening".into())
}

pub async fn connect(conninfo: &str) -> Result<tokio_postgres::Client, String> {
    let (client, conn) = tokio_postgres::connect(conninfo, NoTls).await.map_err(e)?;
    tokio::spawn(conn);
    Ok(client)
}

impl World {
    /// `pool`: the conninfo (host, port) of a PgBouncer in front of the database, for the
    /// relay's pool; its wake-up `LISTEN` always connects directly.
    pub async fn start(
        admin: &str,
        pool: Option<&str>,
        relay_bin: &str,
        restart_cmd: Option<String>,
        relay_log: Option<String>,
    ) -> Result<World, String> {
        let root = connect(&format!("{admin} dbname=postgres")).await?;
        root.batch_execute(&format!("DROP DATABASE IF EXISTS {DB} WITH (FORCE)")).await.map_err(e)?;
        root.batch_execute(&format!("CREATE DATABASE {DB}")).await.map_err(e)?;
        let db = connect(&format!("{admin} dbname={DB}")).await?;
        let (port, metrics_port) = (free_port()?, free_port()?);
        let (alice, bob, carol) = (Keys::generate(), Keys::generate(), Keys::generate());
        db.batch_execute(&format!(
            "CREATE EXTENSION buzz_tenancy;
             DO $$ BEGIN
                 IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{ROLE}') THEN CREATE ROLE {ROLE} LOGIN; END IF;
             END $$;
             SELECT buzz.setup_relay_role('{ROLE}');
             ALTER ROLE {ROLE} SET session_preload_libraries = 'buzz_tenancy';
             SELECT buzz.create_community('alpha', 'Alpha', 'allowlist');
             SELECT buzz.create_community('beta', 'Beta', 'allowlist');
             SELECT buzz.add_host('alpha', 'localhost:{port}');
             SELECT buzz.add_host('beta', '127.0.0.1:{port}');
             SELECT buzz.admit('alpha', '{a}', 'owner');
             SELECT buzz.admit('alpha', '{c}');
             SELECT buzz.admit('beta', '{b}', 'owner');",
            a = alice.public_key().to_hex(),
            b = bob.public_key().to_hex(),
            c = carol.public_key().to_hex(),
        ))
        .await
        .map_err(|x| format!("setup: {x:?}"))?;
        let relay_db = format!("{admin} user={ROLE} dbname={DB}");
        let council = private_channel(&relay_db, port, &alice).await?;
        let pool_db = pool.map_or(relay_db.clone(), |p| format!("{p} user={ROLE} dbname={DB}"));
        let mut w = World { admin: db, port, metrics_port, relay_bin: relay_bin.to_owned(), relay_db, pool_db, relay: None, relay_log, restart_cmd, alice, bob, carol, council };
        w.start_relay().await?;
        Ok(w)
    }

    /// The relay's command line: listening on `port` (and `metrics_port`), with the checks'
    /// limits, each of `overrides` (flag, value) in place of the default one.
    fn relay_command(&self, port: u16, metrics_port: u16, overrides: &[(&str, String)]) -> Result<Command, String> {
        let mut flags: Vec<(&str, String)> = vec![
            ("--listen", format!("127.0.0.1:{port}")),
            ("--database-url", self.pool_db.clone()),
            ("--listen-database-url", self.relay_db.clone()),
            ("--metrics-listen", format!("127.0.0.1:{metrics_port}")),
            ("--poll-interval", "2".into()),
            ("--max-frame-bytes", "65536".into()),
            ("--drain-secs", "3".into()),
            // Small enough for the checks to pass them: a queue, an answer, connections per address.
            ("--outbound-queue-bytes", OUTBOUND_QUEUE_BYTES.to_string()),
            ("--max-answer-bytes", MAX_ANSWER_BYTES.to_string()),
            ("--max-connections-per-ip", MAX_CONNECTIONS_PER_IP.to_string()),
            ("--connect-rate-per-ip", CONNECT_RATE_PER_IP.to_string()),
            ("--connect-burst-per-ip", CONNECT_BURST_PER_IP.to_string()),
            ("--send-timeout", SEND_TIMEOUT_SECS.to_string()),
            ("--handshake-timeout", HANDSHAKE_TIMEOUT_SECS.to_string()),
            ("--max-requests-per-ip", MAX_REQUESTS_PER_IP.to_string()),
            ("--max-filter-bytes", MAX_FILTER_BYTES.to_string()),
            ("--statement-timeout-ms", STATEMENT_TIMEOUT_MS.to_string()),
            ("--outbound-bytes-per-ip", OUTBOUND_BYTES_PER_IP.to_string()),
            ("--max-logins", MAX_LOGINS.to_string()),
            // Generous: every check but one runs from 127.0.0.1 (that one uses its own relay).
            ("--db-seconds-per-ip", "5".into()),
            ("--db-burst-seconds-per-ip", "60".into()),
            ("--auth-per-ip", "100".into()),
            ("--auth-burst-per-ip", "1000".into()),
        ];
        for (flag, value) in overrides {
            match flags.iter_mut().find(|(f, _)| f == flag) {
                Some(slot) => slot.1 = value.clone(),
                None => flags.push((flag, value.clone())),
            }
        }
        // The relay logs to stdout.
        let log = match &self.relay_log {
            Some(path) => Stdio::from(std::fs::OpenOptions::new().create(true).append(true).open(path).map_err(e)?),
            None => Stdio::null(),
        };
        let mut cmd = Command::new(&self.relay_bin);
        for (flag, value) in flags {
            cmd.args([flag, value.as_str()]);
        }
        cmd.env("RUST_LOG", "info").stdin(Stdio::null()).stdout(log).stderr(Stdio::inherit()).kill_on_drop(true);
        Ok(cmd)
    }

    pub async fn start_relay(&mut self) -> Result<(), String> {
        let child = self.relay_command(self.port, self.metrics_port, &[])?.spawn().map_err(|x| format!("{}: {x}", self.relay_bin))?;
        self.relay = Some(child);
        listening(self.port).await
    }

    /// Another relay process on the same database, with `overrides`: its port (killed when
    /// the child is dropped).
    pub async fn extra_relay(&self, overrides: &[(&str, String)]) -> Result<(Child, u16), String> {
        let (port, metrics_port) = (free_port()?, free_port()?);
        let child = self.relay_command(port, metrics_port, overrides)?.spawn().map_err(|x| format!("{}: {x}", self.relay_bin))?;
        listening(port).await?;
        Ok((child, port))
    }

    /// SIGTERM, then the exit status (None if it had to be killed).
    pub async fn stop_relay(&mut self) -> Option<std::process::ExitStatus> {
        let mut child = self.relay.take()?;
        if let Some(pid) = child.id() {
            let _ = Command::new("kill").args(["-TERM", &pid.to_string()]).status().await;
        }
        match tokio::time::timeout(Duration::from_secs(10), child.wait()).await {
            Ok(Ok(status)) => Some(status),
            _ => {
                let _ = child.kill().await;
                None
            }
        }
    }

    pub async fn stop(&mut self) {
        self.stop_relay().await;
    }

    /// A new superuser connection to the test database (the restart check replaces `admin`).
    pub async fn superuser(&self) -> Result<tokio_postgres::Client, String> {
        connect(&self.relay_db.replace(&format!("user={ROLE}"), "user=postgres")).await
    }

    pub fn url_a(&self) -> String {
        format!("ws://localhost:{}", self.port)
    }

    pub fn url_b(&self) -> String {
        format!("ws://127.0.0.1:{}", self.port)
    }

    /// A plain HTTP GET of the public port with the given Host header: (status, body).
    pub async fn http_get(&self, host: &str, path: &str, accept: &str) -> Result<(u16, String), String> {
        http_get(self.port, host, path, accept).await
    }

    /// A metric's value from /metrics (on its own port).
    pub async fn metric(&self, name: &str) -> Result<f64, String> {
        let (_, body) = http_get(self.metrics_port, "localhost", "/metrics", "text/plain").await?;
        body.lines()
            .find_map(|l| l.strip_prefix(name).and_then(|v| v.trim().parse().ok()))
            .ok_or(format!("no metric {name}"))
    }
}

async fn http_get(port: u16, host: &str, path: &str, accept: &str) -> Result<(u16, String), String> {
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.map_err(e)?;
    let req = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nAccept: {accept}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.map_err(e)?;
    let mut buf = Vec::new();
    tokio::time::timeout(WAIT, s.read_to_end(&mut buf)).await.map_err(e)?.map_err(e)?;
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status = text.split(' ').nth(1).and_then(|c| c.parse().ok()).ok_or(format!("no status in {text:?}"))?;
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    Ok((status, body))
}

/// alice creates the private channel `council` in alpha through the relay API (SQL).
async fn private_channel(relay_db: &str, port: u16, alice: &Keys) -> Result<String, String> {
    let c = connect(relay_db).await?;
    let host = format!("localhost:{port}");
    let one = async |sql: &str, args: &[&(dyn tokio_postgres::types::ToSql + Sync)]| -> Result<tokio_postgres::Row, String> {
        c.query_one(sql, args).await.map_err(e)
    };
    c.batch_execute("BEGIN").await.map_err(e)?;
    one("SELECT buzz.enter($1::text)", &[&host]).await?;
    let chal: String = one("SELECT buzz.auth_challenge()", &[]).await?.get(0);
    c.batch_execute("COMMIT").await.map_err(e)?;
    let url = RelayUrl::parse(&format!("ws://{host}")).map_err(e)?;
    let auth = EventBuilder::auth(chal, url).sign_with_keys(alice).map_err(e)?;
    c.batch_execute("BEGIN").await.map_err(e)?;
    one("SELECT buzz.enter($1::text)", &[&host]).await?;
    let token: String = one("SELECT buzz.authenticate($1::text)", &[&auth.as_json()]).await?.get(0);
    c.batch_execute("COMMIT").await.map_err(e)?;
    c.batch_execute("BEGIN").await.map_err(e)?;
    one("SELECT buzz.enter($1::text, $2::text)", &[&host, &token]).await?;
    let id: String = one("SELECT buzz.create_channel('council', 'private')::text", &[]).await?.get(0);
    c.batch_execute("COMMIT").await.map_err(e)?;
    Ok(id)
}

/// A connected client of `url`; with keys, it logs in (NIP-42) before this returns.
pub async fn client(url: &str, keys: Option<&Keys>) -> Result<(Client, broadcast::Receiver<RelayPoolNotification>), String> {
    let c = match keys {
        Some(k) => Client::builder().signer(k.clone()).build(),
        None => Client::default(),
    };
    c.automatic_authentication(keys.is_some());
    let mut notes = c.notifications();
    c.add_relay(url).await.map_err(e)?;
    c.try_connect(WAIT).await;
    if keys.is_some() {
        let until = tokio::time::Instant::now() + WAIT;
        loop {
            match tokio::time::timeout_at(until, notes.recv()).await {
                Ok(Ok(RelayPoolNotification::Message { message: RelayMessage::Ok { status, message, .. }, .. })) => {
                    if status {
                        break;
                    }
                    return Err(format!("AUTH refused: {message}"));
                }
                Ok(Ok(_)) => {}
                Ok(Err(x)) => return Err(e(x)),
                Err(_) => return Err(format!("no AUTH answer from {url}")),
            }
        }
    }
    Ok((c, notes))
}

/// Events received for `sub` within `dur`, and the CLOSED message if one came.
pub async fn collect(
    notes: &mut broadcast::Receiver<RelayPoolNotification>,
    sub: &SubscriptionId,
    dur: Duration,
) -> (Vec<Event>, Option<String>) {
    let until = tokio::time::Instant::now() + dur;
    let mut got = Vec::new();
    loop {
        match tokio::time::timeout_at(until, notes.recv()).await {
            Ok(Ok(RelayPoolNotification::Message { message, .. })) => match message {
                RelayMessage::Event { subscription_id, event } if subscription_id.as_ref() == sub => got.push(event.into_owned()),
                RelayMessage::Closed { subscription_id, message } if subscription_id.as_ref() == sub => {
                    return (got, Some(message.into_owned()));
                }
                _ => {}
            },
            Ok(Ok(_)) | Ok(Err(broadcast::error::RecvError::Lagged(_))) => {}
            Ok(Err(_)) | Err(_) => return (got, None),
        }
    }
}

/// Waits until `pred` holds for an event of `sub` (true) or `dur` passes (false).
pub async fn wait_for(
    notes: &mut broadcast::Receiver<RelayPoolNotification>,
    sub: &SubscriptionId,
    dur: Duration,
    pred: impl Fn(&Event) -> bool,
) -> bool {
    let until = tokio::time::Instant::now() + dur;
    loop {
        match tokio::time::timeout_at(until, notes.recv()).await {
            Ok(Ok(RelayPoolNotification::Message { message: RelayMessage::Event { subscription_id, event }, .. }))
                if subscription_id.as_ref() == sub && pred(&event) =>
            {
                return true
            }
            Ok(Ok(_)) | Ok(Err(broadcast::error::RecvError::Lagged(_))) => {}
            Ok(Err(_)) | Err(_) => return false,
        }
    }
}
