//! `buzz.poll_many`: live delivery for many subscriptions of the entered host in one call, each
//! read as its own login (DESIGN §12.19). When one event wakes M subscriber connections up, a
//! relay can ask once for all of them instead of M times; the extension, not the relay,
//! decides per entry who is reading (its credential, looked up in the entered community only)
//! and what that reader may see. Entries whose readers see the same channels and that ask the
//! same filters from the same position share one statement: they would get the same rows.

use std::collections::{BTreeSet, HashMap};

use pgrx::prelude::*;
use serde::Deserialize;
use serde_json::Value;

use crate::context::{self, TokenGrant};
use crate::errors::{raise, Error};
use crate::gucs;
use crate::json_args::JsonbValue;
use crate::store::delivery::{self, Key};
use crate::store::live;
use crate::nostr::event::Secs;
use crate::store::query::{self, Filter, RawJsonb, Reader};

/// `(entry, event, cursor, error)`; see [`poll_many`].
type Rows = TableIterator<
    'static,
    (name!(entry, i32), name!(event, Option<RawJsonb>), name!(cursor, Option<String>), name!(error, Option<String>)),
>;

/// Entries per call at most (a relay batches at most this many subscriptions).
pub const MAX_ENTRIES: usize = 1024;

/// The answer's bytes of events at most, whatever the caller asks (`max_bytes`): what one
/// call may hold in this backend's memory, beside one chunk of the statement being read.
pub const MAX_ANSWER_BYTES: i32 = 64 << 20;

/// `max_bytes` when the caller gives NULL (the SQL default too).
pub const DEFAULT_ANSWER_BYTES: i32 = 4 << 20;

/// Rows per statement when an entry's news is read: a page (`buzz_tenancy.max_limit`) of large
/// events is read in chunks, so that reading stops near the budget instead of after the page.
const CHUNK: i64 = 50;

/// One subscription as the relay holds it: the login it was opened with, its filters (as for
/// `poll`) and its cursor.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    token: Option<String>,
    filters: Value,
    cursor: Option<String>,
}

/// An entry whose login, filters and cursor are valid in the entered community.
struct Ready {
    actor: String,
    token: Option<TokenGrant>,
    filters: Vec<Filter>,
    /// The filters as text: entries share a statement only when this is equal.
    filters_text: String,
    after: i64,
}

/// Everything `poll` checks for one subscription, without raising: a failure belongs to its
/// entry only. The credential comes first, so that a logged-out entry is told to log in.
fn ready(community: pgrx::Uuid, cursors: &Key, e: Value) -> Result<Ready, Error> {
    // An object only (serde would also take the fields as an array, by position).
    if !e.is_object() {
        return Err(Error::MessageInvalid);
    }
    let e: Entry = serde_json::from_value(e).map_err(|_| Error::MessageInvalid)?;
    let credential = e.token.ok_or(Error::AuthRequired)?;
    let (actor, token) = crate::auth::actor_for_credential(community, &credential, false)?;
    if token.as_ref().is_some_and(|t| !t.read) {
        return Err(Error::TokenScope);
    }
    let filters = query::parse_filters(&e.filters)?;
    let after = cursors.position(e.cursor.as_deref().unwrap_or_default())?;
    Ok(Ready { actor, token, filters, filters_text: e.filters.to_string(), after })
}

/// `buzz.poll_many` (declared in src/api/relay.rs).
pub(crate) fn poll_many(entries: Option<JsonbValue>, max_bytes: Option<i32>) -> Rows {
    crate::incident::guard(|| {
        // A host's context (the worker's has none): the entries' logins are its community's.
        let ctx = context::current().filter(|c| !c.worker).unwrap_or_else(|| raise(Error::ContextMissing));
        live::unwritten();
        let entries = match entries {
            None => Vec::new(),
            Some(JsonbValue(Some(Value::Array(entries)))) => entries,
            Some(_) => raise(Error::MessageInvalid),
        };
        if entries.len() > MAX_ENTRIES {
            raise(Error::TooManySubs);
        }
        let budget = max_bytes.unwrap_or(DEFAULT_ANSWER_BYTES).clamp(1, MAX_ANSWER_BYTES) as usize;
        let community = ctx.community;
        let cursors = Key::of(community);
        // The head this snapshot sees: every entry is answered up to it. And one "now" for
        // every entry (entries that share a statement share its time window).
        let last = delivery::last_position(community);
        let now = crate::pg::now().secs();
        let entries: Vec<Result<Ready, Error>> = entries.into_iter().map(|e| ready(community, &cursors, e)).collect();
        let has_news = |r: &Ready| r.after < last && !r.filters.is_empty();
        let actors: BTreeSet<String> = entries.iter().flatten().filter(|r| has_news(r)).map(|r| r.actor.clone()).collect();
        let channels = if actors.is_empty() { HashMap::new() } else { super::readable::readable_channels(community, actors.iter().map(String::as_str)) };
        let page = i64::from(gucs::MAX_LIMIT.get());
        // SAFETY: a plain read of the backend's current memory context (the SRF's).
        let upper = unsafe { pg_sys::CurrentMemoryContext };
        let mut shared: HashMap<(Vec<pgrx::Uuid>, bool, String, i64), Page> = HashMap::new();
        let mut spent = 0usize;
        let mut out = Vec::new();
        for (i, entry) in entries.into_iter().enumerate() {
            let i = i as i32;
            let r = match entry {
                Ok(r) => r,
                Err(e) => {
                    out.push((i, None, None, Some(e.message().to_owned())));
                    continue;
                }
            };
            // The answer is full: this entry and every later one (refusals aside) get no row
            // at all, i.e. "ask again from where you are"; nothing more is read, and whether
            // an entry had news stays unsaid.
            if spent >= budget {
                continue;
            }
            if !has_news(&r) {
                // A fresh cursor for the same position: the answer does not tell whether
                // anything was written since (the news may be in channels it cannot read).
                out.push((i, None, Some(cursors.cursor(r.after)), None));
                continue;
            }
            // Not a member any more (a login outliving its membership is refused above; this
            // is the same check, read in this snapshot).
            let Some(readable) = channels.get(&r.actor) else {
                out.push((i, None, None, Some(Error::NotMember.message().to_owned())));
                continue;
            };
            let reader = Reader::of_actor(community, readable.clone(), r.token.as_ref(), now);
            let (view, channelless) = reader.view();
            let room = budget - spent;
            let p = shared
                .entry((view.to_vec(), channelless, r.filters_text, r.after))
                .or_insert_with(|| read_page(&reader, &r.filters, r.after, page, room, upper));
            // Rows while the answer has room (the first row of a call always: a single event
            // larger than the budget must not stall its subscription forever).
            let mut sent = 0;
            for (event, pos) in p.rows.iter() {
                if spent > 0 && spent + event.size() > budget {
                    break;
                }
                spent += event.size();
                sent += 1;
                out.push((i, Some(event.clone()), Some(cursors.cursor(*pos)), None));
            }
            if sent < p.rows.len() || !p.whole {
                // Cut: no end row; the entry resumes after its last row and asks again.
                spent = budget;
                continue;
            }
            // The end row: where to resume. A full page may have more after its last row; a
            // shorter one holds everything up to the head.
            let resume = match p.rows.last() {
                Some((_, pos)) if p.rows.len() as i64 >= page => *pos,
                _ => last,
            };
            out.push((i, None, Some(cursors.cursor(resume)), None));
        }
        TableIterator::new(out)
    })
}

/// What came after a position for one reader and filters: up to a page of (event, position).
struct Page {
    rows: Vec<(RawJsonb, i64)>,
    /// The rows are the statement's whole answer (not stopped at the room left).
    whole: bool,
}

/// Up to `page` rows after `after`, read `CHUNK` at a time and stopped once `room` bytes are
/// read (after at least one chunk): what one call reads past its budget is one chunk.
fn read_page(reader: &Reader, filters: &[Filter], after: i64, page: i64, room: usize, upper: pg_sys::MemoryContext) -> Page {
    let mut rows = Vec::new();
    let mut bytes = 0usize;
    let mut from = after;
    loop {
        let chunk = CHUNK.min(page - rows.len() as i64);
        let q = live::build(reader, filters, from, chunk);
        let mut n = 0;
        crate::spi_cache::select_dynamic(&q.text, &q.args, crate::spi_cache::Planning::Custom, |row| {
            if let (Some(event), Some(pos)) = (row[0], row[1]) {
                // SAFETY: `event` is a jsonb datum of the current SPI row, copied into the
                // SRF's multi-call context.
                let event = unsafe { RawJsonb::copy_into(event, upper) };
                bytes += event.size();
                rows.push((event, pos.value() as i64));
                n += 1;
            }
        });
        if n < chunk || rows.len() as i64 >= page {
            return Page { rows, whole: true };
        }
        if bytes >= room {
            return Page { rows, whole: false };
        }
        from = rows.last().map_or(from, |r| r.1);
    }
}
