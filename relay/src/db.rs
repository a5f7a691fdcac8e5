//! The database side: every statement the relay runs, each in its own transaction that starts
//! with `buzz.enter(host, token)`. The relay passes the Host header and the client's token as
//! received; which community that is, and what the client may see or do there, is decided by
//! the extension.
//!
//! Statements go through `query_typed` (the extended protocol's unnamed statement): nothing is
//! prepared by name, so the pool may sit behind PgBouncer in transaction pooling mode.

use std::collections::HashMap;
use std::time::Instant;

use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod};
use tokio_postgres::types::Type;
use tokio_postgres::{IsolationLevel, NoTls, Transaction};

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

pub struct Db {
    pool: Pool,
    catalog: HashMap<String, String>,
    metrics: std::sync::Arc<Metrics>,
}

/// A subscription's rows: (event JSON, cursor to resume after it).
pub type Rows = Vec<(String, String)>;

impl Db {
    pub async fn connect(url: &str, size: usize, metrics: std::sync::Arc<Metrics>) -> Result<Db, String> {
        let config: tokio_postgres::Config = url.parse().map_err(|e| format!("database url: {e}"))?;
        let manager = Manager::from_config(config, NoTls, ManagerConfig { recycling_method: RecyclingMethod::Fast });
        let pool = Pool::builder(manager).max_size(size).build().map_err(|e| format!("pool: {e}"))?;
        let client = pool.get().await.map_err(|e| format!("database: {e}"))?;
        // The client-visible messages come from the extension's catalog, looked up by code.
        let rows = client
            .query_typed("SELECT code, message FROM buzz.error_catalog()", &[])
            .await
            .map_err(|e| format!("buzz.error_catalog(): {e}"))?;
        let catalog = rows.iter().map(|r| (r.get::<_, String>(0), r.get::<_, String>(1))).collect();
        Ok(Db { pool, catalog, metrics })
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

    /// Runs `body` in a transaction that entered `host` (with `token`, if any).
    async fn in_context<T>(
        &self,
        host: &str,
        token: Option<&str>,
        isolation: IsolationLevel,
        body: impl AsyncFnOnce(&Transaction<'_>) -> Result<T, tokio_postgres::Error>,
    ) -> Result<T, Refusal> {
        let started = Instant::now();
        let mut client = self.client().await?;
        let result = async {
            let tx = client.build_transaction().isolation_level(isolation).start().await?;
            match token {
                Some(t) => tx.query_typed("SELECT buzz.enter($1, $2)", &[(&host, Type::TEXT), (&t, Type::TEXT)]).await?,
                None => tx.query_typed("SELECT buzz.enter($1)", &[(&host, Type::TEXT)]).await?,
            };
            let out = body(&tx).await?;
            tx.commit().await?;
            Ok(out)
        }
        .await;
        self.metrics.db_call(started.elapsed());
        result.map_err(|e| self.refusal(&e))
    }

    /// A NIP-42 challenge for a connection to `host` (also how an unknown host is found out).
    pub async fn challenge(&self, host: &str) -> Result<String, Refusal> {
        self.in_context(host, None, IsolationLevel::ReadCommitted, async |tx| {
            Ok(tx.query_typed("SELECT buzz.auth_challenge()", &[]).await?[0].get(0))
        })
        .await
    }

    /// NIP-42 `AUTH`: the session token for the signed event.
    pub async fn authenticate(&self, host: &str, event: &str) -> Result<String, Refusal> {
        self.in_context(host, None, IsolationLevel::ReadCommitted, async |tx| {
            Ok(tx.query_typed("SELECT buzz.authenticate($1)", &[(&event, Type::TEXT)]).await?[0].get(0))
        })
        .await
    }

    /// NIP-01 `EVENT`: the extension's answer, forwarded unchanged as `OK`.
    pub async fn publish(&self, host: &str, token: Option<&str>, event: &str) -> Result<(bool, String), Refusal> {
        self.in_context(host, token, IsolationLevel::ReadCommitted, async |tx| {
            let row = tx.query_typed("SELECT accepted, message FROM buzz.publish($1)", &[(&event, Type::TEXT)]).await?;
            Ok((row[0].get(0), row[0].get(1)))
        })
        .await
    }

    /// `REQ`: the stored answer, the cursor after it and the wake-up channel, on one snapshot
    /// (REPEATABLE READ), so that live delivery resumes exactly after the answer.
    pub async fn req(&self, host: &str, token: Option<&str>, filters: &str) -> Result<(Vec<String>, String, String), Refusal> {
        self.in_context(host, token, IsolationLevel::RepeatableRead, async |tx| {
            let events = tx.query_typed("SELECT e::text FROM buzz.req($1::jsonb) e", &[(&filters, Type::TEXT)]).await?;
            let rest = tx.query_typed("SELECT buzz.cursor(), buzz.listen_channel()", &[]).await?;
            Ok((events.iter().map(|r| r.get(0)).collect(), rest[0].get(0), rest[0].get(1)))
        })
        .await
    }

    /// `COUNT` (NIP-45).
    pub async fn count(&self, host: &str, token: Option<&str>, filters: &str) -> Result<i64, Refusal> {
        self.in_context(host, token, IsolationLevel::ReadCommitted, async |tx| {
            Ok(tx.query_typed("SELECT buzz.count($1::jsonb)", &[(&filters, Type::TEXT)]).await?[0].get(0))
        })
        .await
    }

    /// Live delivery for several subscriptions of one connection, in one transaction: for
    /// each (filters, cursor), what came after the cursor.
    pub async fn poll(&self, host: &str, token: Option<&str>, subs: &[(String, String)]) -> Result<Vec<Rows>, Refusal> {
        self.in_context(host, token, IsolationLevel::ReadCommitted, async |tx| {
            let mut out = Vec::with_capacity(subs.len());
            for (filters, cursor) in subs {
                let rows = tx
                    .query_typed(
                        "SELECT event::text, cursor FROM buzz.poll($1::jsonb, $2)",
                        &[(filters, Type::TEXT), (cursor, Type::TEXT)],
                    )
                    .await?;
                out.push(rows.iter().map(|r| (r.get(0), r.get(1))).collect());
            }
            Ok(out)
        })
        .await
    }

    /// NIP-11 document of `host`; None for a host the relay does not serve.
    pub async fn relay_info(&self, host: &str) -> Result<Option<String>, Refusal> {
        let started = Instant::now();
        let client = self.client().await?;
        let r = client.query_typed("SELECT buzz.relay_info($1)::text", &[(&host, Type::TEXT)]).await;
        self.metrics.db_call(started.elapsed());
        r.map(|rows| rows[0].get(0)).map_err(|e| self.refusal(&e))
    }
}
