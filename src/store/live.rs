//! `buzz.poll` / `buzz.cursor` / `buzz.listen_channel`: live delivery of the entered
//! community's events after a cursor, with exactly `req`'s visibility (DESIGN §12.19; the
//! ordering argument is in `delivery`). The relay matches and routes nothing itself: it asks,
//! per subscription, for what came after the last cursor it was given.

use pgrx::prelude::*;

use crate::errors::{raise, Error, OrRaise};
use crate::gucs;
use crate::json_args::JsonbValue;
use crate::store::delivery;
use crate::store::query::{self, filter_sql, Filter, Order, RawJsonb, Reader, Sql};

type Rows = TableIterator<'static, (name!(event, RawJsonb), name!(cursor, String))>;

/// The ephemeral events matching `f`: the same fields as stored events, tags matched on the
/// event's own JSON (the table is small: it holds `ephemeral_retention` seconds of them).
fn ephemeral_sql(q: &mut Sql, r: &Reader, f: &Filter, order: Order) -> String {
    let Order::Delivery { after, limit } = order else { unreachable!("poll only") };
    let channels = if r.channelless { "(x.channel_id IS NULL OR x.channel_id = ANY($3))" } else { "x.channel_id = ANY($3)" };
    let mut w = vec![
        "x.community_id = $1".to_owned(),
        "(x.expires_at IS NULL OR x.expires_at > $2)".to_owned(),
        channels.to_owned(),
    ];
    let retention = f64::from(gucs::EPHEMERAL_RETENTION.get());
    w.push(format!("x.stored_at >= clock_timestamp() - make_interval(secs => {})", q.bind(retention.into())));
    if let Some(ids) = &f.ids {
        w.push(query::match_values(q, "x.id", ids));
    }
    if let Some(authors) = &f.authors {
        w.push(query::match_values(q, "x.pubkey", authors));
    }
    if let Some(kinds) = &f.kinds {
        w.push(query::match_values(q, "x.kind", kinds));
    }
    if let Some(channels) = &f.channels {
        w.push(query::match_values(q, "x.channel_id", channels));
    }
    if let Some(since) = f.since {
        w.push(format!("x.created_at >= {}", q.bind(since.into())));
    }
    if let Some(until) = f.until {
        w.push(format!("x.created_at <= {}", q.bind(until.into())));
    }
    for (name, values) in &f.tags {
        let (n, v) = (q.bind(name.clone().into()), q.bind(values.clone().into()));
        w.push(format!(
            "EXISTS (SELECT 1 FROM jsonb_array_elements(x.event -> 'tags') t WHERE t ->> 0 = {n} AND t ->> 1 = ANY({v}))"
        ));
    }
    w.push(format!("x.position > {}", q.bind(after.into())));
    format!(
        "SELECT x.event, x.position FROM buzz.ephemeral_events x WHERE {} ORDER BY x.position LIMIT {}",
        w.join(" AND "),
        q.bind(limit.into())
    )
}

/// The poll statement: the visible events, stored and ephemeral, matching any filter,
/// strictly after `after`, in delivery order, at most `limit`.
pub(crate) fn build(r: &Reader, filters: &[Filter], after: i64, limit: i64) -> Sql {
    let mut q = Sql::new(r);
    let order = Order::Delivery { after, limit };
    let mut parts = Vec::new();
    for f in filters {
        parts.push(format!("({})", filter_sql(&mut q, r, f, "e.event, e.position", order)));
        parts.push(format!("({})", ephemeral_sql(&mut q, r, f, order)));
    }
    let lim = q.bind(limit.into());
    q.text = format!("SELECT u.event, u.position FROM ({}) u ORDER BY u.position LIMIT {lim}", parts.join(" UNION "));
    q
}

/// `buzz.poll` (declared in src/api/relay.rs).
pub(crate) fn poll(filters: Option<JsonbValue>, cursor: Option<&str>) -> Rows {
    crate::incident::guard(|| {
        let filters = query::parse_request(filters);
        let ctx = crate::context::current().unwrap_or_else(|| raise(Error::ContextMissing));
        let actor = query::may_read(&ctx);
        unwritten();
        let key = delivery::Key::of(ctx.community);
        let after = key.position(cursor.unwrap_or("")).or_raise();
        // No news (the common case of a wake-up for another subscription, or a timer): the
        // counter and the actor's admission say so in one statement, without the readable
        // channels or planning the filters' statement.
        let (last, member) = delivery::last_position_as(ctx.community, actor);
        if !member {
            raise(Error::NotMember);
        }
        if filters.is_empty() || last <= after {
            return TableIterator::new(Vec::new());
        }
        let r = reading();
        let q = build(&r, &filters, after, i64::from(gucs::MAX_LIMIT.get()));
        // SAFETY: a plain read of the backend's current memory context (the SRF's).
        let upper = unsafe { pg_sys::CurrentMemoryContext };
        let mut rows = Vec::new();
        crate::spi_cache::select_dynamic(&q.text, &q.args, crate::spi_cache::Planning::Custom, |row| {
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

/// The entered context as a reader: `req`'s admission (a context, an actor, membership, a
/// token's read scope). A context that cannot read gets no cursor and no channel either: they
/// would tell it when, and how much, its community writes.
fn reading() -> Reader {
    query::reader().unwrap_or_else(|| raise(Error::ContextMissing))
}

/// A transaction that published has taken positions that are not committed, and keeps them
/// (uncommitted) after a savepoint rollback returned them to the counter: a cursor minted
/// there could stand for a position that another event will take, and polling with it would
/// tell where that event lands, so how many events the caller cannot see lie between
/// (threat model, row 56). Delivery reads run in transactions that took no position.
pub(crate) fn unwritten() {
    if delivery::took_position() {
        raise(Error::FeedAfterWrite);
    }
}

/// `buzz.cursor` (declared in src/api/relay.rs).
pub(crate) fn cursor() -> String {
    crate::incident::guard(|| {
        let r = reading();
        unwritten();
        delivery::Key::of(r.community).cursor(delivery::last_position(r.community))
    })
}

/// `buzz.listen_channel` (declared in src/api/relay.rs).
pub(crate) fn listen_channel() -> String {
    crate::incident::guard(|| delivery::Key::of(reading().community).channel())
}
