//! The database side: every statement the relay runs, each in its own transaction that starts
//! with `buzz.enter(host, token)`. The relay passes the Host header and the client's token as
//! received; which community that is, and what the client may see or do there, is decided by
//! the extension.
//!
//! Statements go through `query_typed` (the extended protocol's unnamed statement): nothing is
//! prepared by name, so the pool may sit behind PgBouncer in transaction pooling mode.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::time::{Duration, Instant};

use std::future::Future;
use std::pin::Pin;
use std::task::Poll;

use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime};
use futures_util::future::{maybe_done, BoxFuture, MaybeDone};
use futures_util::{FutureExt, TryFutureExt, TryStreamExt};
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{NoTls, Row};

use crate::metrics::Metrics;

/// What the client is told when a request fails.
#[derive(Debug, Clone)]
pub struct Refusal(pub String);

impl Refusal {
    pub fn auth_required(&self) -> bool {
        self.0.starts_with("auth-required:")
    }
}

/// NIP-01 prefixes the extension's catalog messages start with (DESIGN §6).
const PREFIXES: [&str; 9] =
    ["auth-required:", "restricted:", "invalid:", "duplicate:", "pow:", "rate-limited:", "blocked:", "error:", "frame-too-large:"];

/// A statement's parameters, each with its type (`query_typed`: nothing is prepared).
type Params<'a> = Vec<(&'a (dyn ToSql + Sync), Type)>;

/// How many rows of a statement the relay keeps.
#[derive(Clone, Copy, PartialEq)]
enum Keep {
    /// Every row (a statement of one row).
    All,
    /// Rows of events, while the transaction's answer is under `--max-answer-bytes`; past it,
    /// each such statement keeps its first row only.
    Capped,
    /// `poll_many`'s rows: events while the answer is under `--max-answer-bytes` (the first
    /// one always); past it, every event row is dropped, and so is the end row of an entry that lost one (it
    /// resumes after its last row kept), while other entries' end rows and refusals are kept.
    Polled,
}

/// SQLSTATE classes that mean the database (or PgBouncer in front of it) could not serve the
/// request right now: connection exceptions, insufficient resources, operator intervention.
fn unavailable(code: &str) -> bool {
    code.starts_with("08") || code.starts_with("53") || code.starts_with("57P")
}

/// How a transaction begins.
#[derive(Clone, Copy)]
enum Begin {
    ReadCommitted,
    /// One snapshot for every statement.
    RepeatableRead,
}

impl Begin {
    fn sql(self) -> &'static str {
        match self {
            Begin::ReadCommitted => "BEGIN",
            Begin::RepeatableRead => "BEGIN ISOLATION LEVEL REPEATABLE READ",
        }
    }
}

/// Polls every step once, in order, then waits for all of them: tokio-postgres sends a
/// request when its future is first polled and runs requests in that order, so this pipelines
/// the steps in the order given.
async fn in_order<T>(steps: Vec<BoxFuture<'_, T>>) -> Vec<T> {
    let mut steps: Vec<MaybeDone<BoxFuture<'_, T>>> = steps.into_iter().map(maybe_done).collect();
    std::future::poll_fn(|cx| {
        let mut ready = true;
        for step in steps.iter_mut() {
            ready &= Pin::new(step).poll(cx).is_ready();
        }
        if ready { Poll::Ready(()) } else { Poll::Pending }
    })
    .await;
    steps.iter_mut().map(|s| Pin::new(s).take_output().expect("every step is done")).collect()
}

/// One statement's rows, read as they arrive (see `Keep`). The request goes out when the
/// future is first polled (`in_order` relies on it).
async fn read(
    client: &Object,
    sql: &str,
    params: &Params<'_>,
    keep: Keep,
    budget: &AtomicUsize,
) -> Result<Vec<Row>, tokio_postgres::Error> {
    let stream = client.query_typed_raw(sql, params.iter().map(|(v, t)| (*v, t.clone()))).await?;
    let mut stream = std::pin::pin!(stream);
    let mut rows = Vec::new();
    // Polled: the entry whose event rows are being dropped (entries come in order), and
    // whether an event was kept (the first always is, as the extension always sends one: a
    // single event larger than the cap must not stall its subscription).
    let mut lost: Option<i32> = None;
    let mut kept = false;
    while let Some(row) = stream.try_next().await? {
        if keep == Keep::Polled {
            let entry = row.try_get::<_, i32>(2).ok();
            match row.try_get::<_, Option<&str>>(0).ok().flatten() {
                Some(event) => {
                    let left = budget.load(Relaxed);
                    if kept && event.len() > left || lost.is_some() {
                        budget.store(0, Relaxed);
                        lost = entry;
                        continue;
                    }
                    budget.store(left.saturating_sub(event.len()), Relaxed);
                    kept = true;
                }
                None if lost.is_some() && lost == entry => continue,
                None => {}
            }
            rows.push(row);
            continue;
        }
        let size = row.try_get::<_, &str>(0).map_or(0, str::len);
        rows.push(row);
        if keep == Keep::Capped {
            let left = budget.load(Relaxed);
            if left <= size {
                budget.store(0, Relaxed);
                break;
            }
            budget.store(left - size, Relaxed);
        }
    }
    Ok(rows)
}

pub struct Db {
    pool: Pool,
    catalog: HashMap<String, String>,
    metrics: std::sync::Arc<Metrics>,
    max_answer_bytes: usize,
    /// `SET LOCAL statement_timeout` of every transaction (0: the server's).
    statement_timeout_ms: u64,
    /// NIP-11 documents by Host header, for a few seconds (see `relay_info`).
    info: std::sync::Mutex<HashMap<String, (Instant, Option<String>)>>,
}

/// How long a NIP-11 document (or a host's absence) is served from memory.
const INFO_TTL: Duration = Duration::from_secs(5);
/// Host headers remembered at most; past it the memory is cleared (any Host value can be sent).
const INFO_HOSTS: usize = 1024;

/// What one transaction returned: each statement's rows.
struct Answer {
    rows: Vec<Vec<Row>>,
}

/// A subscription's rows: (event JSON, cursor to resume after it).
pub type Rows = Vec<(String, String)>;

/// What `poll_many` returned for one entry.
pub enum Polled {
    /// Its events, where to resume (None: the answer was cut before its end; resume after the
    /// last row) and whether more may be waiting (a full page, or cut).
    Events { rows: Rows, resume: Option<String>, more: bool },
    /// The extension refused this entry (its login ended, bad filters, …).
    Refused(Refusal),
}

/// One subscription in a `poll_many` call: its login, filters (a JSON array) and cursor.
pub struct Entry {
    pub token: Option<String>,
    pub filters: String,
    pub cursor: String,
}

fn json_str(s: &str) -> String {
    serde_json::to_string(s).expect("a string serializes")
}

impl Db {
    /// The pool: `size` connections; a request waits at most `wait` for one (then the client is
    /// told `relay_unavailable` instead of queueing behind everyone else's work without end).
    pub async fn connect(url: &str, size: usize, wait: Duration, max_answer_bytes: usize, statement_timeout_ms: u64, metrics: std::sync::Arc<Metrics>) -> Result<Db, String> {
        let config: tokio_postgres::Config = url.parse().map_err(|e| format!("database url: {e}"))?;
        let manager = Manager::from_config(config, NoTls, ManagerConfig { recycling_method: RecyclingMethod::Fast });
        let pool = Pool::builder(manager)
            .max_size(size)
            .wait_timeout(Some(wait))
            .runtime(Runtime::Tokio1)
            .build()
            .map_err(|e| format!("pool: {e}"))?;
        let client = pool.get().await.map_err(|e| format!("database: {e}"))?;
        // The client-visible messages come from the extension's catalog, looked up by code.
        let rows = client
            .query_typed("SELECT code, message FROM buzz.error_catalog()", &[])
            .await
            .map_err(|e| format!("buzz.error_catalog(): {e}"))?;
        let catalog = rows.iter().map(|r| (r.get::<_, String>(0), r.get::<_, String>(1))).collect();
        Ok(Db { pool, catalog, metrics, max_answer_bytes, statement_timeout_ms, info: Default::default() })
    }

    /// The catalog message for `code` (never a message the relay made up).
    pub fn message(&self, code: &str) -> Refusal {
        Refusal(self.catalog.get(code).or_else(|| self.catalog.get("internal")).cloned().unwrap_or_else(|| "error: internal error".into()))
    }

    /// A failed statement as the client may see it: the extension's catalog message, or the
    /// catalog's `relay_unavailable` when the database could not be reached or answered with
    /// something that is not from the catalog (that text stays in the relay's log).
    fn refusal(&self, e: &tokio_postgres::Error) -> Refusal {
        if let Some(db) = e.as_db_error() {
            if PREFIXES.iter().any(|p| db.message().starts_with(p)) {
                return Refusal(db.message().to_owned());
            }
            tracing::warn!(sqlstate = db.code().code(), error = %db.message(), "statement failed");
            // PgBouncer's own refusals (pool full, server gone) and a server shutting down.
            if unavailable(db.code().code()) {
                return self.message("relay_unavailable");
            }
            return self.message("internal");
        }
        tracing::warn!(error = %e, "database unavailable");
        self.message("relay_unavailable")
    }

    async fn client(&self) -> Result<Object, Refusal> {
        self.pool.get().await.map_err(|e| {
            tracing::warn!(error = %e, "no database connection");
            self.message("relay_unavailable")
        })
    }

    /// Runs `stmts` in one transaction that entered `host` (with `token`, if any), pipelined:
    /// BEGIN, `enter`, the statements and COMMIT go out together and the relay waits for the
    /// answers once (one round trip instead of one per statement). The statements do not
    /// depend on each other's answers. If one fails, those after it fail too (the transaction
    /// is aborted) and COMMIT rolls back; the first failure is the answer.
    ///
    /// Rows are read as they arrive, and the `Capped` statements stop reading once the
    /// transaction's answer passes `--max-answer-bytes` (the rest is dropped unread): one
    /// request never holds more than about that much of the relay's memory.
    async fn in_context(&self, host: &str, token: Option<&str>, begin: Begin, stmts: &[(&str, Params<'_>, Keep)]) -> Result<Answer, Refusal> {
        let started = Instant::now();
        let client = self.client().await?;
        let enter: (&str, Params<'_>, Keep) = match &token {
            Some(t) => ("SELECT buzz.enter($1, $2)", vec![(&host, Type::TEXT), (t, Type::TEXT)], Keep::All),
            None => ("SELECT buzz.enter($1)", vec![(&host, Type::TEXT)], Keep::All),
        };
        let budget = AtomicUsize::new(self.max_answer_bytes);
        // A statement that runs too long is canceled (the extension answers `sql_canceled`)
        // instead of holding its pooled connection.
        let begin = match self.statement_timeout_ms {
            0 => begin.sql().to_owned(),
            ms => format!("{}; SET LOCAL statement_timeout = {ms}", begin.sql()),
        };
        let mut steps: Vec<BoxFuture<'_, Result<Vec<Row>, tokio_postgres::Error>>> = Vec::with_capacity(stmts.len() + 3);
        steps.push(client.batch_execute(&begin).map_ok(|()| Vec::new()).boxed());
        for (sql, params, keep) in std::iter::once(&enter).chain(stmts) {
            steps.push(read(&client, sql, params, *keep, &budget).boxed());
        }
        steps.push(client.batch_execute("COMMIT").map_ok(|()| Vec::new()).boxed());
        let answers = in_order(steps).await;
        self.metrics.db_call(started.elapsed());
        let mut rows = Vec::with_capacity(answers.len());
        for a in answers {
            rows.push(a.map_err(|e| self.refusal(&e))?);
        }
        // Only the statements' own answers: not BEGIN's, enter's or COMMIT's.
        rows.truncate(rows.len() - 1);
        rows.drain(..2);
        Ok(Answer { rows })
    }

    /// A NIP-42 challenge for a connection to `host` (also how an unknown host is found out).
    pub async fn challenge(&self, host: &str) -> Result<String, Refusal> {
        let a = self.in_context(host, None, Begin::ReadCommitted, &[("SELECT buzz.auth_challenge()", vec![], Keep::All)]).await?;
        Ok(a.rows[0][0].get(0))
    }

    /// NIP-42 `AUTH`: the session token for the signed event.
    pub async fn authenticate(&self, host: &str, event: &str) -> Result<String, Refusal> {
        let stmt = ("SELECT buzz.authenticate($1)", vec![(&event as &(dyn ToSql + Sync), Type::TEXT)], Keep::All);
        let a = self.in_context(host, None, Begin::ReadCommitted, &[stmt]).await?;
        Ok(a.rows[0][0].get(0))
    }

    /// NIP-01 `EVENT`: the extension's answer, forwarded unchanged as `OK`.
    pub async fn publish(&self, host: &str, token: Option<&str>, event: &str) -> Result<(bool, String), Refusal> {
        let stmt = ("SELECT accepted, message FROM buzz.publish($1)", vec![(&event as &(dyn ToSql + Sync), Type::TEXT)], Keep::All);
        let a = self.in_context(host, token, Begin::ReadCommitted, &[stmt]).await?;
        Ok((a.rows[0][0].get(0), a.rows[0][0].get(1)))
    }

    /// `REQ`: the stored answer, the cursor after it and the wake-up channel, on one snapshot
    /// (REPEATABLE READ), so that live delivery resumes exactly after the answer. A stored
    /// answer over `--max-answer-bytes` is cut short (like a lower `limit`).
    pub async fn req(&self, host: &str, token: Option<&str>, filters: &str) -> Result<(Vec<String>, String, String), Refusal> {
        let stmts = [
            ("SELECT e::text FROM buzz.req($1::jsonb) e", vec![(&filters as &(dyn ToSql + Sync), Type::TEXT)], Keep::Capped),
            ("SELECT buzz.cursor(), buzz.listen_channel()", vec![], Keep::All),
        ];
        let a = self.in_context(host, token, Begin::RepeatableRead, &stmts).await?;
        Ok((a.rows[0].iter().map(|r| r.get(0)).collect(), a.rows[1][0].get(0), a.rows[1][0].get(1)))
    }

    /// `COUNT` (NIP-45).
    pub async fn count(&self, host: &str, token: Option<&str>, filters: &str) -> Result<i64, Refusal> {
        let stmt = ("SELECT buzz.count($1::jsonb)", vec![(&filters as &(dyn ToSql + Sync), Type::TEXT)], Keep::All);
        let a = self.in_context(host, token, Begin::ReadCommitted, &[stmt]).await?;
        Ok(a.rows[0][0].get(0))
    }

    /// Live delivery for many subscriptions of connections to `host`, in one statement
    /// (`buzz.poll_many`): per entry, what came after its cursor, read under the entry's own
    /// login, or that entry's refusal.
    pub async fn poll_many(&self, host: &str, entries: &[&Entry]) -> Result<Vec<Polled>, Refusal> {
        let mut list = String::from("[");
        for (i, e) in entries.iter().enumerate() {
            if i > 0 {
                list.push(',');
            }
            let token = e.token.as_deref().map_or_else(|| "null".to_owned(), json_str);
            // The filters are the client's JSON array, already parsed as JSON by the session.
            list.push_str(&format!(r#"{{"token":{token},"filters":{},"cursor":{}}}"#, e.filters, json_str(&e.cursor)));
        }
        list.push(']');
        // The extension stops reading at this many bytes of events (and answers the entries it
        // did not reach "ask again"): the whole call, not each connection in it, gets the
        // budget of one answer.
        let budget = i32::try_from(self.max_answer_bytes).unwrap_or(i32::MAX);
        let stmts = [
            (
                "SELECT event::text, cursor, entry, error FROM buzz.poll_many($1::jsonb, $2)",
                vec![(&list as &(dyn ToSql + Sync), Type::TEXT), (&budget, Type::INT4)],
                Keep::Polled,
            ),
            // poll_many answers at most a page of this many rows per entry; a full page may
            // have more after it.
            ("SELECT current_setting('buzz_tenancy.max_limit')::int", vec![], Keep::All),
        ];
        let a = self.in_context(host, None, Begin::ReadCommitted, &stmts).await?;
        let page = a.rows[1][0].get::<_, i32>(0).max(1) as usize;
        let mut out: Vec<Polled> = entries.iter().map(|_| Polled::Events { rows: Vec::new(), resume: None, more: true }).collect();
        for r in &a.rows[0] {
            let Some(slot) = usize::try_from(r.get::<_, i32>(2)).ok().and_then(|i| out.get_mut(i)) else { continue };
            let (event, cursor, error) = (r.get::<_, Option<String>>(0), r.get::<_, Option<String>>(1), r.get::<_, Option<String>>(3));
            match (slot, event, cursor, error) {
                (slot, _, _, Some(error)) => *slot = Polled::Refused(self.catalog_or_internal(error)),
                (Polled::Events { rows, .. }, Some(event), Some(cursor), None) => rows.push((event, cursor)),
                // The end row: everything up to the head was read (unless the page was full).
                (Polled::Events { rows, resume, more }, None, Some(cursor), None) => {
                    *more = rows.len() >= page;
                    *resume = Some(cursor);
                }
                _ => {}
            }
        }
        // An entry without its end row was cut by the byte cap: it resumes after its last row
        // and polls again (`more` stays set).
        Ok(out)
    }

    /// A message the extension returned as data: its own catalog text, never anything else.
    fn catalog_or_internal(&self, text: String) -> Refusal {
        if PREFIXES.iter().any(|p| text.starts_with(p)) { Refusal(text) } else { self.message("internal") }
    }

    /// NIP-11 document of `host`; None for a host the relay does not serve. Kept for
    /// `INFO_TTL` per Host header as received, so repeated GETs do not each cost the database
    /// a call (a document is public, the same for every client of the host).
    pub async fn relay_info(&self, host: &str) -> Result<Option<String>, Refusal> {
        let now = Instant::now();
        if let Some((at, doc)) = self.info.lock().unwrap().get(host) {
            if now.duration_since(*at) < INFO_TTL {
                return Ok(doc.clone());
            }
        }
        let client = self.client().await?;
        let r = client.query_typed("SELECT buzz.relay_info($1)::text", &[(&host, Type::TEXT)]).await;
        self.metrics.db_call(now.elapsed());
        let doc: Option<String> = r.map(|rows| rows[0].get(0)).map_err(|e| self.refusal(&e))?;
        let mut info = self.info.lock().unwrap();
        if info.len() >= INFO_HOSTS {
            info.clear();
        }
        info.insert(host.to_owned(), (now, doc.clone()));
        Ok(doc)
    }
}
