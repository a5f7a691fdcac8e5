//! The per-community audit chain (S4 / L3, DESIGN §12.14) and the operator chain.
//!
//! Every control-plane change appends one row to its community's chain in the same
//! transaction as the change: seq n links to n - 1 through `prev_hash`, and `hash` is
//! `buzz.audit_hash(...)` (sql/schema.sql) over a domain-separated, length-prefixed encoding
//! of community, seq, time, action, actor, object, canonical detail and prev_hash. The append
//! locks the community's head row (`FOR UPDATE`), so appends in one community serialize — no
//! fork, no gap — and different communities never contend. Rows are append-only (a trigger
//! refuses UPDATE/DELETE/TRUNCATE for all but superusers). Operator-global actions (adopting
//! the relay's tables) go to `buzz.operator_audit_log`, a chain of its own.

use pgrx::prelude::*;
use pgrx::{JsonB, Uuid};
use serde_json::Value;

use crate::context;
use crate::errors::OrRaise;

const ZERO: [u8; 32] = [0; 32];

/// Append to `community`'s chain. Runs as the extension's owner role with `community` as the
/// context (the caller is inside `enter` or `with_operator_scope`). `actor` defaults to the
/// context's actor, else `operator:<session user>`.
pub fn append(community: Uuid, actor: Option<&str>, action: &str, object: &str, detail: Value) {
    let actor = actor.map(str::to_owned).or_else(|| context::current().and_then(|c| c.actor));
    crate::spi_cache::run(
        "INSERT INTO buzz.audit_heads (community_id, seq, hash) VALUES ($1, 0, $2)
         ON CONFLICT (community_id) DO NOTHING",
        &[community.into(), ZERO.to_vec().into()],
    )
    .or_raise();
    crate::spi_cache::run(
        "WITH h AS (SELECT seq, hash FROM buzz.audit_heads WHERE community_id = $1 FOR UPDATE),
              a AS (SELECT coalesce($2, 'operator:' || session_user) AS actor),
              ins AS (INSERT INTO buzz.audit_log (community_id, seq, prev_hash, hash, action, actor, object, detail, created_at)
                      SELECT $1, h.seq + 1, h.hash,
                             buzz.audit_hash($1, h.seq + 1, now(), $3, a.actor, $4, $5, h.hash),
                             $3, a.actor, $4, $5, now()
                        FROM h, a
                      RETURNING seq, hash)
         UPDATE buzz.audit_heads x SET seq = ins.seq, hash = ins.hash FROM ins WHERE x.community_id = $1",
        &[community.into(), actor.into(), action.into(), object.into(), JsonB(detail).into()],
    )
    .or_raise();
}

/// Append to the operator chain (actions that belong to no community).
pub fn append_operator(action: &str, object: &str, detail: Value) {
    Spi::run_with_args(
        "WITH last AS (SELECT seq, hash FROM buzz.operator_audit_log ORDER BY seq DESC LIMIT 1 FOR UPDATE),
              h AS (SELECT coalesce((SELECT seq FROM last), 0) AS seq,
                           coalesce((SELECT hash FROM last), $1) AS hash),
              a AS (SELECT 'operator:' || session_user AS actor)
         INSERT INTO buzz.operator_audit_log (seq, prev_hash, hash, action, actor, object, detail, created_at)
         SELECT h.seq + 1, h.hash, buzz.audit_hash(NULL, h.seq + 1, now(), $2, a.actor, $3, $4, h.hash),
                $2, a.actor, $3, $4, now()
           FROM h, a",
        &[ZERO.to_vec().into(), action.into(), object.into(), JsonB(detail).into()],
    )
    .or_raise();
}

/// One stored row as the verifier sees it.
struct Row {
    seq: i64,
    prev_hash: Vec<u8>,
    hash: Vec<u8>,
    hash_ok: bool,
}

fn rows(sql: &str, args: &[pgrx::datum::DatumWithOid<'_>]) -> Vec<Row> {
    Spi::connect(|c| {
        let mut out = Vec::new();
        for r in c.select(sql, None, args)? {
            out.push(Row {
                seq: r.get::<i64>(1)?.unwrap_or(0),
                prev_hash: r.get::<Vec<u8>>(2)?.unwrap_or_default(),
                hash: r.get::<Vec<u8>>(3)?.unwrap_or_default(),
                hash_ok: r.get::<bool>(4)?.unwrap_or(false),
            });
        }
        Ok::<_, pgrx::spi::Error>(out)
    })
    .or_raise()
}

/// The first bad seq of `rows` (ordered by seq) meant to cover `from..=to` and link to
/// `before` (the hash of seq `from - 1`): a missing or extra seq, a broken link, or a row
/// whose hash does not match its contents. `head` is the chain's recorded end, if any.
fn first_bad(rows: &[Row], from: i64, to: i64, before: Option<Vec<u8>>, head: Option<(i64, Vec<u8>)>) -> Option<i64> {
    let mut prev = match before {
        Some(h) => h,
        None => return Some(from),
    };
    let mut expected = from;
    for r in rows {
        if r.seq != expected || r.prev_hash != prev || !r.hash_ok {
            return Some(expected);
        }
        prev = r.hash.clone();
        expected += 1;
    }
    if let Some((head_seq, head_hash)) = head {
        // Rows missing before the head, or rows beyond it, or a head that is not the last row.
        if expected <= to.min(head_seq) {
            return Some(expected);
        }
        if to >= head_seq && expected - 1 == head_seq && prev != head_hash {
            return Some(head_seq);
        }
        if expected - 1 > head_seq {
            return Some(head_seq + 1);
        }
    }
    None
}

/// `buzz.audit_verify` (declared in src/api/relay.rs).
pub(crate) fn audit_verify(
    from_seq: i64,
    to_seq: Option<i64>,
) -> TableIterator<'static, (name!(checked, i64), name!(first_bad_seq, Option<i64>))> {
    crate::incident::guard(|| {
        let ctx = context::require();
        let from = from_seq.max(1);
        let head = crate::spi_cache::two::<i64, Vec<u8>>(
            "SELECT seq, hash FROM buzz.audit_heads WHERE community_id = $1",
            &[ctx.community.into()],
        )
        .or_raise();
        let head = match head {
            (Some(s), Some(h)) => Some((s, h)),
            _ => None,
        };
        let last = crate::spi_cache::one::<i64>(
            "SELECT max(seq) FROM buzz.audit_log WHERE community_id = $1",
            &[ctx.community.into()],
        )
        .or_raise()
        .unwrap_or(0);
        let to = to_seq.unwrap_or(last.max(head.as_ref().map_or(0, |h| h.0)));
        let before = if from == 1 {
            Some(ZERO.to_vec())
        } else {
            crate::spi_cache::one::<Vec<u8>>(
                "SELECT hash FROM buzz.audit_log WHERE community_id = $1 AND seq = $2",
                &[ctx.community.into(), (from - 1).into()],
            )
            .or_raise()
        };
        let rows = rows(
            "SELECT seq, prev_hash, hash,
                    hash = buzz.audit_hash(community_id, seq, created_at, action, actor, object, detail, prev_hash)
               FROM buzz.audit_log WHERE community_id = $1 AND seq BETWEEN $2 AND $3 ORDER BY seq",
            &[ctx.community.into(), from.into(), to.into()],
        );
        let bad = first_bad(&rows, from, to, before, head);
        TableIterator::once((rows.len() as i64, bad))
    })
}

/// `buzz.audit_verify_operator` (declared in src/api/operator.rs).
pub(crate) fn audit_verify_operator() -> TableIterator<'static, (name!(checked, i64), name!(first_bad_seq, Option<i64>))> {
    let rows = rows(
        "SELECT seq, prev_hash, hash,
                hash = buzz.audit_hash(NULL, seq, created_at, action, actor, object, detail, prev_hash)
           FROM buzz.operator_audit_log ORDER BY seq",
        &[],
    );
    let to = rows.last().map_or(0, |r| r.seq);
    let bad = first_bad(&rows, 1, to, Some(ZERO.to_vec()), None);
    TableIterator::once((rows.len() as i64, bad))
}

#[cfg(any(test, feature = "pg_test"))]
#[pg_schema]
mod tests {
    #[allow(unused_imports)] // used by the plain #[test]s only
    use super::*;

    #[cfg(test)]
    fn row(seq: i64, prev: u8, hash: u8) -> Row {
        Row { seq, prev_hash: vec![prev], hash: vec![hash], hash_ok: true }
    }

    #[test]
    fn the_first_break_is_reported() {
        let ok = [row(1, 0, 1), row(2, 1, 2), row(3, 2, 3)];
        assert_eq!(first_bad(&ok, 1, 3, Some(vec![0]), Some((3, vec![3]))), None);
        // a gap, a broken link, a bad hash, a head that is not the last row, rows past the head
        assert_eq!(first_bad(&[row(1, 0, 1), row(3, 2, 3)], 1, 3, Some(vec![0]), None), Some(2));
        assert_eq!(first_bad(&[row(1, 0, 1), row(2, 9, 2)], 1, 2, Some(vec![0]), None), Some(2));
        let mut bad = row(2, 1, 2);
        bad.hash_ok = false;
        assert_eq!(first_bad(&[row(1, 0, 1), bad], 1, 2, Some(vec![0]), None), Some(2));
        assert_eq!(first_bad(&ok, 1, 3, Some(vec![0]), Some((3, vec![7]))), Some(3));
        assert_eq!(first_bad(&ok, 1, 3, Some(vec![0]), Some((2, vec![2]))), Some(3));
        assert_eq!(first_bad(&ok[..2], 1, 3, Some(vec![0]), Some((3, vec![3]))), Some(3));
        // a range whose predecessor is gone
        assert_eq!(first_bad(&ok[1..], 2, 3, None, None), Some(2));
    }
}
