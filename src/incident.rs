//! Incidents: one path for every error whose raw text may name tables, constraints, code or
//! row values. The raw text goes to the server log only (`LOG_SERVER_ONLY`: never sent to a
//! client, whatever its `client_min_messages`), tagged with the community and a random
//! incident id; the client gets a catalog phrase with the same id. Used by [`guard`] (errors
//! inside the extension's relay-facing functions) and by the sanitizer (errors of the relay's
//! own SQL, `sanitize.rs`).

use std::panic::AssertUnwindSafe;

use pgrx::pg_sys::panic::CaughtError;
use pgrx::{ereport, pg_sys, PgLogLevel, PgSqlErrorCode as C, PgTryBuilder};

use crate::errors::{raise_incident, Error, OrRaise};

/// 64 random bits, hex: enough to find the log line, nothing to learn from.
pub fn new_id() -> String {
    let mut b = [0u8; 8];
    // SAFETY: fills the 8-byte buffer it is given.
    if !unsafe { pg_sys::pg_strong_random(b.as_mut_ptr().cast(), b.len()) } {
        // Never fail the error path: fall back to time and pid.
        let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
        b = ((t as u64) ^ (u64::from(std::process::id()) << 40)).to_be_bytes();
    }
    hex::encode(b)
}

/// Write the raw error to the server log only, under `id`, with the entered community.
pub fn log(id: &str, sqlstate: &str, raw: &str) {
    let community = crate::context::current().map(|c| c.community.to_string());
    let line = format!(
        "buzz_tenancy incident {id} community {} sqlstate {sqlstate}: {raw}",
        community.as_deref().unwrap_or("none")
    );
    ereport!(PgLogLevel::LOG_SERVER_ONLY, C::ERRCODE_SUCCESSFUL_COMPLETION, line);
}

/// Log `detail` as a new incident and raise `error: internal error (incident <id>)`.
pub fn internal(detail: &str) -> ! {
    internal_as("XX000", detail)
}

/// As [`internal`], logging the SQLSTATE the raw error had (the operator's clue).
fn internal_as(sqlstate: &str, detail: &str) -> ! {
    let id = new_id();
    log(&id, sqlstate, detail);
    raise_incident(Error::Internal, &id)
}

/// The five characters of a packed SQLSTATE (PostgreSQL's MAKE_SQLSTATE: six bits each).
fn sqlstate(code: i32) -> String {
    (0..5).map(|i| char::from(b'0' + ((code >> (6 * i)) & 0x3F) as u8)).collect()
}

/// SPI failures are internal: the detail stays server-side, the client sees the catalog phrase.
impl<T> OrRaise<T> for Result<T, pgrx::spi::Error> {
    fn or_raise(self) -> T {
        self.unwrap_or_else(|e| internal(&e.to_string()))
    }
}

/// Log `detail` as a new incident and raise the catalog's `read_only`: a write refused because
/// the server is a hot standby or the transaction is READ ONLY.
pub fn read_only(detail: &str) -> ! {
    let id = new_id();
    log(&id, "25006", detail);
    raise_incident(Error::ReadOnly, &id)
}

/// Run a relay-facing function body so that a PostgreSQL error raised inside it (a read-only
/// transaction, a constraint race, …) or a Rust panic (whose message names a source file)
/// reaches the client as the catalog's `internal` entry and an incident id instead of a raw
/// message naming tables, constraints or code (a write refused on a standby or in a READ ONLY
/// transaction: the catalog's `read_only`). Catalog errors pass unchanged, and so do
/// cancellations and serialization failures, whose SQLSTATE a relay acts on.
pub fn guard<R>(body: impl FnOnce() -> R) -> R {
    PgTryBuilder::new(AssertUnwindSafe(body))
        .catch_others(|caught| match caught {
            CaughtError::PostgresError(report) => match report.sql_error_code() {
                C::ERRCODE_QUERY_CANCELED | C::ERRCODE_T_R_SERIALIZATION_FAILURE | C::ERRCODE_T_R_DEADLOCK_DETECTED
                | C::ERRCODE_LOCK_NOT_AVAILABLE | C::ERRCODE_ADMIN_SHUTDOWN => CaughtError::PostgresError(report).rethrow(),
                // A write on a hot standby or in a READ ONLY transaction: say that, not
                // "internal". (No relay path asks for a transaction id before its first write,
                // so a standby refuses them all with this SQLSTATE.)
                C::ERRCODE_READ_ONLY_SQL_TRANSACTION => read_only(report.message()),
                code => internal_as(&sqlstate(code as i32), report.message()),
            },
            CaughtError::RustPanic { ereport, .. } => internal(ereport.message()),
            other => other.rethrow(),
        })
        .execute()
}

#[cfg(any(test, feature = "pg_test"))]
#[pgrx::pg_schema]
mod tests {
    use super::*;
    use pgrx::prelude::*;

    /// A Rust panic inside a guarded function (an `expect` in a conversion, say) reaches the
    /// client as the catalog's internal error with an incident id, never with its message or
    /// source location (mutant "panics reach the client raw").
    #[pg_test(error = "error: internal error")]
    fn guard_hides_panics() {
        let caught = PgTryBuilder::new(|| guard(|| -> () { panic!("conversion failed at src/somewhere.rs:48") }))
            .catch_others(|e| match e {
                CaughtError::ErrorReport(r) | CaughtError::PostgresError(r) => {
                    let m = r.message().to_owned();
                    assert!(m.starts_with("error: internal error (incident ") && !m.contains("src/"), "{m}");
                    crate::errors::raise(Error::Internal)
                }
                other => other.rethrow(),
            })
            .execute();
        caught
    }
}
