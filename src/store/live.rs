//! `buzz.poll` / `buzz.cursor` / `buzz.listen_channel`: live delivery of the entered
//! community's events after a cursor, with exactly `req`'s visibility (DESIGN §12.19; the
//! ordering argument is in `delivery`). The relay matches and routes nothing itself: it asks,
//! per subscription, for what came after the last cursor it was given.

use pgrx::prelude::*;

use crate::context;
use crate::errors::{raise, Error, OrRaise};
use crate::gucs;
use crate::json_args::JsonbText;
use crate::store::delivery;
use crate::store::query::{self, filter_sql, Filter, Order, RawJsonb, Reader, Sql};

type Rows = TableIterator<'static, (name!(event, RawJsonb), name!(cursor, String))>;

/// The poll statement: the visible events matching any filter, strictly after `after`, in
/// delivery order, at most `limit` (several filters are united on `(id, position)`).
fn build(r: &Reader, filters: &[Filter], after: i64, limit: i64) -> Sql {
    let mut q = Sql::new(r);
    let order = Order::Delivery { after, limit };
    q.text = match filters {
        [f] => filter_sql(&mut q, r, f, "e.event, e.position", order),
        _ => {
            let parts: Vec<String> =
                filters.iter().map(|f| format!("({})", filter_sql(&mut q, r, f, "e.id, e.position", order))).collect();
            let lim = q.bind(limit.into());
            format!(
                "SELECT e.event, e.position FROM ({}) m
                   JOIN buzz.events e ON e.community_id = $1 AND e.id = m.id
                  ORDER BY m.position LIMIT {lim}",
                parts.join(" UNION ")
            )
        }
    };
    q
}

/// `buzz.poll` (declared in src/api/relay.rs).
pub(crate) fn poll(filters: Option<JsonbText>, cursor: Option<&str>) -> Rows {
    crate::incident::guard(|| {
        let filters = query::parse_request(filters);
        let community = context::current().map(|c| c.community).unwrap_or_else(|| raise(Error::ContextMissing));
        let key = delivery::Key::of(community);
        let after = key.position(cursor.unwrap_or("")).or_raise();
        let Some(r) = query::reader() else { return TableIterator::new(Vec::new()) };
        if filters.is_empty() {
            return TableIterator::new(Vec::new());
        }
        let q = build(&r, &filters, after, i64::from(gucs::MAX_LIMIT.get()));
        // SAFETY: a plain read of the backend's current memory context (the SRF's).
        let upper = unsafe { pg_sys::CurrentMemoryContext };
        let mut rows = Vec::new();
        crate::spi_cache::select_dynamic(&q.text, &q.args, |row| {
            if let (Some(event), Some(pos)) = (row[0], row[1]) {
                // SAFETY: `event` is a jsonb datum of the current SPI row, copied into the
                // SRF's multi-call context.
                rows.push((unsafe { RawJsonb::copy_into(event, upper) }, pos.value() as i64));
            }
        });
        let rows: Vec<_> = rows.into_iter().map(|(e, pos)| (e, key.cursor(pos))).collect();
        TableIterator::new(rows)
    })
}

/// `buzz.cursor` (declared in src/api/relay.rs).
pub(crate) fn cursor() -> String {
    crate::incident::guard(|| {
        let community = context::current().map(|c| c.community).unwrap_or_else(|| raise(Error::ContextMissing));
        delivery::Key::of(community).cursor(delivery::last_position(community))
    })
}

/// `buzz.listen_channel` (declared in src/api/relay.rs).
pub(crate) fn listen_channel() -> String {
    crate::incident::guard(|| {
        let community = context::current().map(|c| c.community).unwrap_or_else(|| raise(Error::ContextMissing));
        delivery::Key::of(community).channel()
    })
}
