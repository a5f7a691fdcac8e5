//! `buzz.req` / `buzz.count`: NIP-01 filters → one parameterized SQL statement over the
//! entered community. Every statement carries an explicit `community_id = $1` (the same value
//! RLS enforces), the visibility rules, and only LEAKPROOF comparisons on indexed columns, so
//! it can use the composite indexes under RLS.

use pgrx::datum::DatumWithOid;
use pgrx::prelude::*;
use pgrx::{pg_sys, PgMemoryContexts, Uuid};
use serde_json::Value;

use crate::nostr::event::Secs;

use crate::context::{self, TokenGrant};
use crate::errors::{raise, Error, OrRaise};
use crate::gucs;
use crate::json_args::JsonbValue;
use crate::materialized::MaterializedJsonb;
use crate::spi_cache::Planning;

/// One validated NIP-01 filter.
#[derive(Debug, Default, PartialEq)]
pub struct Filter {
    pub ids: Option<Vec<String>>,
    pub authors: Option<Vec<String>>,
    pub kinds: Option<Vec<i32>>,
    /// `#h`: channels, matched on the event's channel column.
    pub channels: Option<Vec<Uuid>>,
    /// Other `#x` filters: (letter, values).
    pub tags: Vec<(String, Vec<String>)>,
    pub since: Option<i64>,
    pub until: Option<i64>,
    limit: i64,
}

fn hex64_list(v: &Value) -> Result<Vec<String>, Error> {
    strings(v)?
        .into_iter()
        .map(|s| {
            let ok = s.len() == 64 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
            if ok { Ok(s) } else { Err(Error::FilterInvalid) }
        })
        .collect()
}

fn strings(v: &Value) -> Result<Vec<String>, Error> {
    let arr = v.as_array().ok_or(Error::FilterInvalid)?;
    if arr.len() > gucs::MAX_FILTER_VALUES.get() as usize {
        return Err(Error::TooManyFilters);
    }
    arr.iter()
        .map(|x| match x.as_str() {
            Some(s) if !s.contains('\0') => Ok(s.to_owned()),
            _ => Err(Error::FilterInvalid),
        })
        .collect()
}

fn timestamp(v: &Value) -> Result<i64, Error> {
    v.as_u64().and_then(|n| i64::try_from(n).ok()).ok_or(Error::FilterInvalid)
}

/// Parse one filter object. Unknown keys are refused rather than ignored, so a filter is
/// never silently broader than the client meant.
pub fn parse_filter(v: &Value) -> Result<Filter, Error> {
    let obj = v.as_object().ok_or(Error::FilterInvalid)?;
    let cap = i64::from(gucs::MAX_LIMIT.get());
    let mut f = Filter { limit: cap, ..Filter::default() };
    for (key, val) in obj {
        match key.as_str() {
            "ids" => f.ids = Some(hex64_list(val)?),
            "authors" => f.authors = Some(hex64_list(val)?),
            "kinds" => {
                let arr = val.as_array().ok_or(Error::FilterInvalid)?;
                if arr.len() > gucs::MAX_FILTER_VALUES.get() as usize {
                    return Err(Error::TooManyFilters);
                }
                let kinds = arr
                    .iter()
                    .map(|k| k.as_u64().filter(|k| *k <= 65_535).map(|k| k as i32).ok_or(Error::FilterInvalid))
                    .collect::<Result<_, _>>()?;
                f.kinds = Some(kinds);
            }
            "since" => f.since = Some(timestamp(val)?),
            "until" => f.until = Some(timestamp(val)?),
            "limit" => f.limit = timestamp(val)?.min(cap),
            "#h" => {
                // Values that are not channel ids can match nothing.
                f.channels = Some(strings(val)?.iter().filter_map(|s| context::parse_uuid(s)).collect());
            }
            k if k.len() == 2 && k.starts_with('#') && k.as_bytes()[1].is_ascii_alphabetic() => {
                f.tags.push((k[1..].to_owned(), strings(val)?));
            }
            _ => return Err(Error::FilterInvalid),
        }
    }
    Ok(f)
}

/// `filters` is one filter object or an array of them.
pub fn parse_filters(v: &Value) -> Result<Vec<Filter>, Error> {
    let list = match v {
        Value::Array(a) => a.iter().map(parse_filter).collect::<Result<Vec<_>, _>>()?,
        Value::Object(_) => vec![parse_filter(v)?],
        _ => return Err(Error::FilterInvalid),
    };
    if list.len() > gucs::MAX_FILTERS.get() as usize {
        return Err(Error::TooManyFilters);
    }
    Ok(list)
}

/// A statement under construction: SQL text plus its bound arguments.
pub(crate) struct Sql {
    pub text: String,
    pub args: Vec<DatumWithOid<'static>>,
}

impl Sql {
    /// A statement for `r`: `$1` community, `$2` now, `$3` readable channels.
    pub fn new(r: &Reader) -> Sql {
        Sql { text: String::new(), args: vec![r.community.into(), r.now.into(), r.channels.clone().into()] }
    }

    pub fn bind(&mut self, arg: DatumWithOid<'static>) -> String {
        self.args.push(arg);
        format!("${}", self.args.len())
    }
}

/// Who is asking: the community, the time "now", and the channels the actor may read.
/// No context: nobody (nothing is visible). A context that cannot read at all is told so, so
/// that a relay can answer NIP-42's `auth-required:` instead of an empty result: anonymous is
/// `auth_required`, an actor no longer admitted `not_member`.
pub(crate) struct Reader {
    pub community: Uuid,
    now: i64,
    channels: Vec<Uuid>,
    /// Events without a channel are visible (not to an API token limited to channels).
    pub channelless: bool,
}

/// The checks of [`reader`] that need no statement: an actor (not anonymous, not a worker),
/// and a token's read scope. `enter` checked the actor's admission when it opened the context;
/// `reader` checks it again, with the readable channels, before anything is read.
pub(crate) fn may_read(ctx: &context::Context) -> &str {
    let actor = ctx.actor.as_deref().unwrap_or_else(|| raise(Error::AuthRequired));
    if ctx.token.as_ref().is_some_and(|t| !t.read) {
        raise(Error::TokenScope);
    }
    actor
}

pub(crate) fn reader() -> Option<Reader> {
    let ctx = context::current()?;
    let actor = may_read(&ctx).to_owned();
    // Admission and the readable channels (absent: not a member).
    let Some(channels) = super::readable::readable_channels(ctx.community, [actor.as_str()]).remove(&actor) else {
        raise(Error::NotMember);
    };
    // An API token reads only its channels if it names some (the read scope: `may_read`).
    Some(Reader::of_actor(ctx.community, channels, ctx.token.as_ref(), crate::pg::now().secs()))
}

impl Reader {
    /// `actor`'s view of `community` now, given the channels it may read (see
    /// [`super::readable::readable_channels`]) and a token's channel limits, as `reader` computes it.
    pub(crate) fn of_actor(community: Uuid, mut channels: Vec<Uuid>, token: Option<&TokenGrant>, now: i64) -> Reader {
        let mut channelless = true;
        if let Some(claims) = token.and_then(|t| t.channels.as_ref()) {
            channels.retain(|c| claims.contains(c));
            channelless = false;
        }
        channels.sort_unstable();
        Reader { community, now, channels, channelless }
    }

    /// What the reader sees, apart from the community and "now": two readers of one community
    /// with equal views see exactly the same events in one snapshot.
    pub(crate) fn view(&self) -> (&[Uuid], bool) {
        (&self.channels, self.channelless)
    }
}

/// A jsonb value handed back exactly as stored: no serde round trip per row (pgrx's `JsonB`
/// would parse each event into a `serde_json::Value` and re-parse it on the way out).
/// Clone shares the datum: a row returned several times (`poll_many`'s entries that share a
/// statement) is one copy in the multi-call context, read again for each output row.
#[derive(Clone)]
pub struct RawJsonb(pg_sys::Datum);

impl RawJsonb {
    /// A copy of the jsonb datum `d` in `upper`, so it outlives SPI's memory.
    ///
    /// # Safety
    /// SAFETY (callers): `d` must be a jsonb datum valid now (e.g. of the current SPI row), and
    /// `upper` a memory context that lives until the datum is returned (the SRF's multi-call
    /// context).
    pub unsafe fn copy_into(d: pg_sys::Datum, upper: pg_sys::MemoryContext) -> RawJsonb {
        // SAFETY: the caller's contract.
        let copy = unsafe { PgMemoryContexts::For(upper).switch_to(|_| pg_sys::pg_detoast_datum_copy(d.cast_mut_ptr())) };
        RawJsonb(pg_sys::Datum::from(copy))
    }

    /// Its size in bytes (as stored: about the size of its text).
    pub fn size(&self) -> usize {
        // SAFETY: a RawJsonb holds a detoasted jsonb varlena (`copy_into`).
        unsafe { pgrx::varlena::varsize_any(self.0.cast_mut_ptr()) }
    }
}

impl IntoDatum for RawJsonb {
    fn into_datum(self) -> Option<pg_sys::Datum> {
        Some(self.0)
    }
    fn type_oid() -> pg_sys::Oid {
        pg_sys::JSONBOID
    }
}

pgrx::impl_sql_translatable!(RawJsonb, "jsonb");

// SAFETY: a RawJsonb is a jsonb datum copied into the SRF's multi-call memory context (see
// `poll`, `poll_many`), so it is valid to return as this function's jsonb result.
unsafe impl pgrx::callconv::BoxRet for RawJsonb {
    unsafe fn box_into<'fcx>(self, fcinfo: &mut pgrx::callconv::FcInfo<'fcx>) -> pgrx::datum::Datum<'fcx> {
        // SAFETY: see the impl.
        unsafe { fcinfo.return_raw_datum(self.0) }
    }
}

/// `col = $n` for one value, `col = ANY($n)` for several. An equality lets the planner walk
/// a `(…, col, created_at DESC)` index in order and stop at the limit; `= ANY` cannot
/// (PostgreSQL 15 does not merge array scans in index order).
pub(crate) fn match_values<T: IntoDatum + Clone>(q: &mut Sql, col: &str, values: &[T]) -> String
where
    Vec<T>: IntoDatum,
{
    match values {
        [one] => format!("{col} = {}", q.bind(one.clone().into())),
        _ => format!("{col} = ANY({})", q.bind(values.to_vec().into())),
    }
}

/// How a filter's rows come back.
#[derive(Clone, Copy)]
pub(crate) enum Order {
    /// req: newest first, at most the filter's limit.
    Newest,
    /// req of one filter, inner part: newest first by time alone, the first `$limit` rows
    /// and every row tied with the last (`build` orders those by id and cuts at the limit).
    /// Ordered by time only, the order an index `(…, created_at DESC)` gives, so that a plan
    /// made once reads in index order and stops, whatever the values.
    NewestTies { limit: usize },
    /// count: all of them, in no order.
    Unordered,
    /// poll: strictly after a delivery position, in delivery order, at most `limit`.
    Delivery { after: i64, limit: i64 },
}

/// `SELECT <columns>` of the visible events matching one filter, in `order`. For req, a filter
/// with a single-valued tag condition is driven from the tag index in `created_at` order, so
/// `#e`/`#p`/`#t` reads stop at the limit too.
pub(crate) fn filter_sql(q: &mut Sql, r: &Reader, f: &Filter, columns: &str, order: Order) -> String {
    let channels = if r.channelless { "(e.channel_id IS NULL OR e.channel_id = ANY($3))" } else { "e.channel_id = ANY($3)" };
    let mut w = vec![
        "e.community_id = $1".to_owned(),
        "(e.expires_at IS NULL OR e.expires_at > $2)".to_owned(),
        channels.to_owned(),
    ];
    if let Some(ids) = &f.ids {
        w.push(match_values(q, "e.id", ids));
    }
    if let Some(authors) = &f.authors {
        w.push(match_values(q, "e.pubkey", authors));
    }
    if let Some(kinds) = &f.kinds {
        w.push(match_values(q, "e.kind", kinds));
    }
    if let Some(channels) = &f.channels {
        w.push(match_values(q, "e.channel_id", channels));
    }
    // The driving tag (not for poll, which walks the delivery order): the first one with
    // exactly one value.
    let driver = match order {
        Order::Delivery { .. } => None,
        _ => f.tags.iter().position(|(_, values)| values.len() == 1),
    };
    let time = if driver.is_some() { "t.created_at" } else { "e.created_at" };
    if let Some(since) = f.since {
        w.push(format!("{time} >= {}", q.bind(since.into())));
    }
    if let Some(until) = f.until {
        w.push(format!("{time} <= {}", q.bind(until.into())));
    }
    for (i, (name, values)) in f.tags.iter().enumerate() {
        let n = q.bind(name.clone().into());
        if Some(i) == driver {
            w.push(format!("t.community_id = $1 AND t.name = {n} AND t.value = {}", q.bind(values[0].clone().into())));
        } else {
            let v = match_values(q, "x.value", values);
            w.push(format!(
                "e.id IN (SELECT x.event_id FROM buzz.event_tags x WHERE x.community_id = $1 AND x.name = {n} AND {v})"
            ));
        }
    }
    let from = if driver.is_some() {
        "buzz.event_tags t JOIN buzz.events e ON e.community_id = t.community_id AND e.id = t.event_id"
    } else {
        "buzz.events e"
    };
    let mut columns = columns.to_owned();
    let tail = match order {
        Order::Newest => format!(" ORDER BY {time} DESC, e.id LIMIT {}", q.bind(f.limit.into())),
        Order::NewestTies { limit } => {
            columns.push_str(&format!(", {time} AS at, e.id AS eid"));
            format!(" ORDER BY {time} DESC FETCH FIRST (${limit}) ROWS WITH TIES")
        }
        Order::Unordered => String::new(),
        Order::Delivery { after, limit } => {
            w.push(format!("e.position > {}", q.bind(after.into())));
            format!(" ORDER BY e.position LIMIT {}", q.bind(limit.into()))
        }
    };
    format!("SELECT {columns} FROM {from} WHERE {}{tail}", w.join(" AND "))
}

/// Build the req (`count = false`) or count statement for `filters`, read by `r`. One filter
/// (the common case) reads its events directly; several are united on `(id, created_at)`
/// (which removes events matched twice) and joined back for the event.
fn build(r: &Reader, filters: &[Filter], count: bool) -> Sql {
    let mut q = Sql::new(r);
    let order = if count { Order::Unordered } else { Order::Newest };
    q.text = match (filters, count) {
        // A time range alone: events_time (community_id, created_at DESC, id) is the whole
        // order, read to the limit (with ties it would read every event of the last second).
        // Ids: a few primary-key probes whose rows are sorted whatever the form; the plain one
        // starts up one Limit and one Sort instead of two of each.
        ([f], false) if time_only(f) || f.ids.is_some() => filter_sql(&mut q, r, f, "e.event", order),
        ([f], false) => {
            // The filter's newest rows with ties, then the tie-break by id and the limit.
            let limit = q.bind(f.limit.into());
            let ties = Order::NewestTies { limit: q.args.len() };
            format!("SELECT x.event FROM ({}) x ORDER BY x.at DESC, x.eid LIMIT {limit}", filter_sql(&mut q, r, f, "e.event", ties))
        }
        ([f], true) => filter_sql(&mut q, r, f, "count(*)", order),
        (_, _) => {
            let parts: Vec<String> =
                filters.iter().map(|f| format!("({})", filter_sql(&mut q, r, f, "e.id, e.created_at", order))).collect();
            let union = parts.join(" UNION ");
            if count {
                format!("SELECT count(*) FROM ({union}) m")
            } else {
                format!(
                    "SELECT e.event FROM ({union}) m
                       JOIN buzz.events e ON e.community_id = $1 AND e.id = m.id
                      ORDER BY m.created_at DESC, m.id"
                )
            }
        }
    };
    q
}

/// A filter of a time range only (`since`, `until`, `limit`).
fn time_only(f: &Filter) -> bool {
    f.ids.is_none() && f.authors.is_none() && f.kinds.is_none() && f.channels.is_none() && f.tags.is_empty()
}

/// Statements whose best plan does not depend on the values are planned once per backend:
/// planning one for each call cost as much as running it (pg_stat_statements: 60 µs to
/// plan `ids` against 46 to run it, 125 µs to plan a tag read). That is one filter that
/// - names ids (and no tag): the primary-key lookup `(community_id, id)`; or
/// - asks, besides `since`/`until`, for nothing, one kind, one author and one kind, one
///   channel (`#h`), or one tag value: each has an index `(community_id, …,
///   created_at DESC)` (`events_time`, `events_kind`, `events_author_kind`,
///   `events_channel`, `event_tags_pkey` read backward) that gives the order of
///   [`Order::NewestTies`], so the plan reads in index order and stops at the limit.
/// Anything else is planned for its values (see [`Planning::Custom`]): with several values
/// no index gives that order, and a generic plan sorts everything that matches (measured:
/// `author_kind` ×3.9, `#t` ×5.3 at 976k events when those were generic); several filters
/// are united and joined back (a generic join could scan the community).
/// A count has no order and no limit: it is planned once only for ids or a time range
/// (`events_time`), the shapes whose every match is found the same way whatever the values.
fn planning(filters: &[Filter], count: bool) -> Planning {
    fn n<T>(v: &Option<Vec<T>>) -> Option<usize> {
        v.as_ref().map(Vec::len)
    }
    let fixed = |f: &Filter| {
        if f.ids.is_some() {
            return f.tags.is_empty();
        }
        if count {
            return time_only(f);
        }
        let (authors, kinds, channels) = (n(&f.authors), n(&f.kinds), n(&f.channels));
        match f.tags.as_slice() {
            [] => matches!(
                (authors, kinds, channels),
                (None, None, None) | (None, Some(1), None) | (Some(1), Some(1), None) | (None, None, Some(1))
            ),
            [(_, values)] => values.len() == 1 && (authors, kinds, channels) == (None, None, None),
            _ => false,
        }
    };
    match filters {
        [f] if fixed(f) => Planning::Generic,
        _ => Planning::Custom,
    }
}

/// The filters of a request, parsed here rather than by pgrx so that anything serde refuses
/// (out-of-range numbers, deep nesting) is the catalog's `invalid:` answer.
pub(crate) fn parse_request(filters: Option<JsonbValue>) -> Vec<Filter> {
    let v = match filters {
        None => Value::Null,
        Some(JsonbValue(v)) => v.unwrap_or_else(|| raise(Error::FilterInvalid)),
    };
    parse_filters(&v).or_raise()
}

/// `buzz.req` (declared in src/api/relay.rs): the rows go into `out`, the call's result set.
pub(crate) fn req(filters: Option<JsonbValue>, out: MaterializedJsonb) -> MaterializedJsonb {
    crate::incident::guard(|| {
        let filters = parse_request(filters);
        let Some(r) = reader() else { return };
        if filters.is_empty() {
            return;
        }
        let q = build(&r, &filters, false);
        crate::spi_cache::select_to(&q.text, &q.args, planning(&filters, false), &out.receiver());
    });
    out
}

/// `buzz.count` (declared in src/api/relay.rs).
pub(crate) fn count(filters: Option<JsonbValue>) -> i64 {
    crate::incident::guard(|| {
        let filters = parse_request(filters);
        let Some(r) = reader() else { return 0 };
        if filters.is_empty() {
            return 0;
        }
        let q = build(&r, &filters, true);
        let mut n = 0i64;
        crate::spi_cache::select_dynamic(&q.text, &q.args, planning(&filters, true), |row| {
            n = row[0].map(|d| d.value() as i64).unwrap_or(0);
        });
        n
    })
}

/// `buzz.explain_req` (declared in src/api/operator.rs).
pub(crate) fn explain_req(filters: Option<JsonbValue>) -> SetOfIterator<'static, String> {
    let filters = parse_request(filters);
    let r = reader().unwrap_or_else(|| raise(Error::AuthRequired));
    if filters.is_empty() {
        return SetOfIterator::new(Vec::new());
    }
    let q = build(&r, &filters, false);
    // EXPLAIN is a utility statement: read-only SPI refuses it. A read-write statement, but
    // not through `SpiClient::update`, which would assign a transaction id (and fail on a
    // hot standby): see spi_cache::query. The plan shown is the one for these values; for the
    // shapes req plans once (see `planning`) it runs the plan made for any values, which
    // reads the same index in the same order (PostgreSQL 15 cannot EXPLAIN a generic plan of
    // bound parameters).
    let lines = Spi::connect(|c| {
        let types: Vec<pgrx::PgOid> = q.args.iter().map(|a| pgrx::PgOid::from(a.oid())).collect();
        let explain = c.prepare_mut(&format!("EXPLAIN (COSTS OFF) {}", q.text), &types)?;
        c.select(&explain, None, &q.args)?
            .map(|row| row.get::<String>(1))
            .filter_map(|r| r.transpose())
            .collect::<Result<Vec<String>, pgrx::spi::Error>>()
    })
    .or_raise();
    SetOfIterator::new(lines)
}

/// The statement's own community predicate, without RLS (superuser): pins it separately.
#[cfg(any(test, feature = "pg_test"))]
#[pg_schema]
mod tests {
    use super::*;
    use crate::test_fixtures::two_communities;
    #[allow(unused_imports)] // used by the plain #[test]s only
    use serde_json::json;


    /// Mutation: dropping `e.community_id = $1` from filter_sql returns beta's rows here.
    #[pg_test]
    fn req_is_confined_to_its_community() {
        let (alpha, beta) = two_communities("req");
        for (c, n) in [(alpha, 1), (beta, 2), (beta, 3)] {
            Spi::run_with_args(
                "INSERT INTO buzz.events (community_id, id, pubkey, created_at, kind, event, position)
                 VALUES ($1, repeat($2::text, 64), repeat('a', 64), 1, 1, '{}', $2::bigint)",
                &[c.into(), (n as i64).to_string().into()],
            )
            .unwrap();
        }
        let r = Reader { community: alpha, now: 2, channels: vec![], channelless: true };
        let all = parse_filters(&serde_json::json!({})).unwrap();
        let q = build(&r, &all, true);
        assert_eq!(Spi::get_one_with_args::<i64>(&q.text, &q.args).unwrap(), Some(1));
        let r = Reader { community: beta, ..r };
        let q = build(&r, &all, true);
        assert_eq!(Spi::get_one_with_args::<i64>(&q.text, &q.args).unwrap(), Some(2));
    }

    #[test]
    fn filters_parse_and_refuse() {
        let f = parse_filter(&json!({"kinds": [1, 7], "#t": ["nostr"], "since": 10, "limit": 5})).unwrap();
        assert_eq!(f.kinds, Some(vec![1, 7]));
        assert_eq!(f.tags, vec![("t".to_owned(), vec!["nostr".to_owned()])]);
        assert_eq!((f.since, f.limit), (Some(10), 5));
        for bad in [
            json!({"kinds": [70000]}),
            json!({"kinds": "1"}),
            json!({"ids": ["abc"]}),
            json!({"authors": ["ABCDEF0000000000000000000000000000000000000000000000000000000000"]}),
            json!({"since": -1}),
            json!({"limit": 1.5}),
            json!({"#tag": ["x"]}),
            json!({"search": "x"}),
            json!({"#e": [1]}),
            json!([1]),
        ] {
            assert!(parse_filters(&bad).is_err(), "{bad}");
        }
    }
}
