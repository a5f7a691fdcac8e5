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
use crate::json_args::JsonbText;
use crate::store::delivery::{self, Key};
use crate::store::live;
use crate::store::query::{self, Filter, RawJsonb, Reader};

/// `(entry, event, cursor, error)`; see [`poll_many`].
type Rows = TableIterator<
    'static,
    (name!(entry, i32), name!(event, Option<RawJsonb>), name!(cursor, Option<String>), name!(error, Option<String>)),
>;

/// Entries per call at most (a relay batches at most this many subscriptions).
pub const MAX_ENTRIES: usize = 1024;

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
    /// The cursor as given (valid): an entry with no news keeps it.
    given: String,
}

/// Everything `poll` checks for one subscription, without raising: a failure belongs to its
/// entry only. The credential comes first, so that a logged-out entry is told to log in.
fn ready(community: pgrx::Uuid, cursors: &Key, e: Entry) -> Result<Ready, Error> {
    let credential = e.token.ok_or(Error::AuthRequired)?;
    let (actor, token) = crate::auth::actor_for_credential(community, &credential, false)?;
    if token.as_ref().is_some_and(|t| !t.read) {
        return Err(Error::TokenScope);
    }
    let filters = query::parse_filters(&e.filters)?;
    let given = e.cursor.unwrap_or_default();
    let after = cursors.position(&given)?;
    Ok(Ready { actor, token, filters, filters_text: e.filters.to_string(), after, given })
}

/// `buzz.poll_many` (declared in src/api/relay.rs).
pub(crate) fn poll_many(entries: Option<JsonbText>) -> Rows {
    crate::incident::guard(|| {
        let entries: Vec<Entry> = match entries {
            None => Vec::new(),
            Some(JsonbText(text)) => serde_json::from_str(&text).unwrap_or_else(|_| raise(Error::MessageInvalid)),
        };
        if entries.len() > MAX_ENTRIES {
            raise(Error::TooManySubs);
        }
        // A host's context (the worker's has none): the entries' logins are its community's.
        let ctx = context::current().filter(|c| !c.worker).unwrap_or_else(|| raise(Error::ContextMissing));
        live::unwritten();
        let community = ctx.community;
        let cursors = Key::of(community);
        // The head this snapshot sees: every entry is answered up to it.
        let last = delivery::last_position(community);
        let entries: Vec<Result<Ready, Error>> = entries.into_iter().map(|e| ready(community, &cursors, e)).collect();
        let has_news = |r: &Ready| r.after < last && !r.filters.is_empty();
        let actors: BTreeSet<String> = entries.iter().flatten().filter(|r| has_news(r)).map(|r| r.actor.clone()).collect();
        let channels = if actors.is_empty() { HashMap::new() } else { query::readable_channels(community, actors.into_iter().collect()) };
        let page = i64::from(gucs::MAX_LIMIT.get());
        // SAFETY: a plain read of the backend's current memory context (the SRF's).
        let upper = unsafe { pg_sys::CurrentMemoryContext };
        let mut shared: HashMap<(Vec<pgrx::Uuid>, bool, String, i64), Vec<(RawJsonb, i64)>> = HashMap::new();
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
            if !has_news(&r) {
                out.push((i, None, Some(r.given), None));
                continue;
            }
            // Not a member any more (a login outliving its membership is refused above; this
            // is the same check, read in this snapshot).
            let Some(readable) = channels.get(&r.actor) else {
                out.push((i, None, None, Some(Error::NotMember.message().to_owned())));
                continue;
            };
            let reader = Reader::of_actor(community, readable.clone(), r.token.as_ref());
            let (view, channelless) = reader.view();
            let rows = shared.entry((view.to_vec(), channelless, r.filters_text, r.after)).or_insert_with(|| {
                let q = live::build(&reader, &r.filters, r.after, page);
                let mut rows = Vec::new();
                crate::spi_cache::select_dynamic(&q.text, &q.args, |row| {
                    if let (Some(event), Some(pos)) = (row[0], row[1]) {
                        // SAFETY: `event` is a jsonb datum of the current SPI row, copied into
                        // the SRF's multi-call context.
                        rows.push((unsafe { RawJsonb::copy_into(event, upper) }, pos.value() as i64));
                    }
                });
                rows
            });
            for (event, pos) in rows.iter() {
                out.push((i, Some(event.clone()), Some(cursors.cursor(*pos)), None));
            }
            // The end row: where to resume. A full page may have more after its last row; a
            // shorter one holds everything up to the head.
            let resume = match rows.last() {
                Some((_, pos)) if rows.len() as i64 >= page => *pos,
                _ => last,
            };
            out.push((i, None, Some(cursors.cursor(resume)), None));
        }
        TableIterator::new(out)
    })
}
