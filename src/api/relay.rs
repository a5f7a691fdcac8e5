//! The relay API: every function a relay role may execute (`setup_relay_role` grants exactly
//! [`RELAY_API`], the conformance gate fails any other EXECUTE of the extension it holds, and
//! docs/api.md lists the same set — scripts/test checks they agree). Each function is a thin
//! declaration: markers, `search_path`, and a call into the module that does the work. Client
//! faults are answered from the error catalog; a database error or a panic inside is an
//! incident (`incident::guard`, inside the called functions).

use pgrx::prelude::*;
use pgrx::Uuid;

use crate::json_args::{JsonText, JsonbValue};
use crate::materialized::MaterializedJsonb;
use crate::store::query::RawJsonb;

/// The functions a relay role may execute (and nothing else in `buzz`): the single source for
/// `setup_relay_role`, `buzz.relay_api()` (the gate's allowlist) and docs/api.md.
pub const RELAY_API: &[&str] = &[
    "buzz.enter(text)",
    "buzz.enter(text, text)",
    "buzz.enter_http(text, text, text, text, text)",
    "buzz.enter_http(text, text)",
    "buzz.claim_http(text, text, text, text, text)",
    "buzz.current_community()",
    "buzz.current_actor()",
    "buzz.current_scopes()",
    "buzz.current_worker()",
    "buzz.auth_challenge()",
    "buzz.authenticate(text)",
    "buzz.end_session(text)",
    "buzz.create_channel(text, text)",
    "buzz.add_channel_member(text, text, text)",
    "buzz.remove_channel_member(text, text)",
    "buzz.list_channels()",
    "buzz.publish(text)",
    "buzz.publish(json)",
    "buzz.publish(text[])",
    "buzz.publish(text, text, text[])",
    "buzz.req(jsonb)",
    "buzz.count(jsonb)",
    "buzz.poll(jsonb, text)",
    "buzz.poll_many(jsonb, integer)",
    "buzz.cursor()",
    "buzz.listen_channel()",
    "buzz.event_id(text)",
    "buzz.verify_event(text)",
    "buzz.schnorr_verify(text, text, text)",
    "buzz.normalize_host(text)",
    "buzz.error_catalog()",
    "buzz.relay_info(text)",
    "buzz.audit_verify(bigint, bigint)",
    "buzz.mint_token(text, text[], text[], interval)",
    "buzz.revoke_token(text)",
    "buzz.apply_member_list(text)",
    "buzz.relay_api()",
];

/// `buzz.relay_api()`: the signatures of the relay API (what `setup_relay_role` grants).
#[pg_extern(immutable, parallel_safe)]
fn relay_api() -> SetOfIterator<'static, &'static str> {
    SetOfIterator::new(RELAY_API.iter().copied())
}

/// `buzz.enter(host)`: bind this transaction to the community that serves `host`, anonymously.
#[pg_extern(volatile, parallel_unsafe, security_definer, name = "enter")]
#[search_path(pg_catalog, pg_temp)]
fn enter_anonymous(host: Option<&str>) {
    crate::enter::enter_anonymous(host)
}

/// `buzz.enter(host, session_token)`: as `enter(host)`, with the actor of a session minted by
/// `buzz.authenticate` on a host of the same community. The session is looked up only inside
/// the host's community (key `(community_id, hash)`), so a token from another community fails
/// exactly like a random one (S5). Admission is re-checked on every call.
#[pg_extern(volatile, parallel_unsafe, security_definer, name = "enter")]
#[search_path(pg_catalog, pg_temp)]
fn enter_session(host: Option<&str>, session_token: Option<&str>) {
    crate::enter::enter_session(host, session_token)
}

/// `buzz.enter_http(host, method, url, auth_event, body_sha256)`: bind this transaction to the
/// community serving `host`, as the signer of a NIP-98 event for exactly this request. The
/// claim commits (or not) with this transaction; `claim_http` commits it on its own.
#[pg_extern(volatile, parallel_unsafe, security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn enter_http(
    host: Option<&str>,
    method: Option<&str>,
    url: Option<&str>,
    auth_event: Option<&str>,
    body_sha256: default!(Option<&str>, "NULL"),
) {
    crate::auth::nip98::enter_http(host, method, url, auth_event, body_sha256)
}

/// `buzz.claim_http(host, method, url, auth_event, body_sha256)` (DESIGN §12.9): the checks and
/// the claim of `enter_http`, in a transaction of their own — so the event stays consumed even
/// if the request that follows fails — returning a single-use nonce for
/// `enter_http(host, nonce)`, valid for `buzz_tenancy.http_auth_window` seconds. Refused inside a
/// transaction block, where the claim would share the request's fate.
#[pg_extern(volatile, parallel_unsafe, security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn claim_http(
    host: Option<&str>,
    method: Option<&str>,
    url: Option<&str>,
    auth_event: Option<&str>,
    body_sha256: default!(Option<&str>, "NULL"),
) -> String {
    crate::auth::nip98::claim_http(host, method, url, auth_event, body_sha256)
}

/// `buzz.enter_http(host, nonce)`: bind this transaction to the community serving `host`, as the
/// signer whose NIP-98 event `claim_http` accepted. The nonce is used up by a committed
/// transaction; one of another community, expired or used fails like an invalid session.
#[pg_extern(volatile, parallel_unsafe, security_definer, name = "enter_http")]
#[search_path(pg_catalog, pg_temp)]
fn enter_http_nonce(host: Option<&str>, nonce: Option<&str>) {
    crate::auth::nip98::enter_http_nonce(host, nonce)
}

/// `buzz.current_community()`: the community this transaction entered, or NULL.
/// STABLE, never IMMUTABLE: an immutable reader would be folded into cached plans.
#[pg_extern(stable, parallel_safe)]
fn current_community() -> Option<Uuid> {
    crate::context::current_community()
}

/// `buzz.current_scopes()`: what the actor may do — `{read,write}` for a signed session, an
/// API token's scopes, NULL without an actor. STABLE, for policies on the relay's own tables.
#[pg_extern(stable, parallel_safe)]
fn current_scopes() -> Option<Vec<&'static str>> {
    crate::context::current_scopes()
}

/// `buzz.current_actor()`: the authenticated pubkey of this transaction, or NULL.
#[pg_extern(stable, parallel_safe)]
fn current_actor() -> Option<String> {
    crate::context::current_actor()
}

/// `buzz.auth_challenge()`: a fresh single-use challenge (32 random bytes, hex) bound to the
/// entered community, expiring after `buzz_tenancy.challenge_ttl` seconds.
#[pg_extern(volatile, parallel_unsafe, security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn auth_challenge() -> String {
    crate::auth::nip42::auth_challenge()
}

/// `buzz.authenticate(auth_event)`: verify a NIP-42 event for the entered host and return a
/// session token for use with `buzz.enter(host, token)`.
#[pg_extern(volatile, parallel_unsafe, security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn authenticate(auth_event: Option<&str>) -> String {
    crate::auth::nip42::authenticate(auth_event)
}

/// `buzz.end_session(token)`: end a session of the entered community; true if one ended.
#[pg_extern(volatile, parallel_unsafe, security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn end_session(session_token: Option<&str>) -> bool {
    crate::auth::sessions::end_session(session_token)
}

/// `buzz.create_channel(name, visibility)`: a new channel of the entered community, with a
/// server-generated id; the creator becomes its admin.
#[pg_extern(volatile, parallel_unsafe, security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn create_channel(name: Option<&str>, visibility: default!(Option<&str>, "'open'")) -> Uuid {
    crate::channels::create_channel(name, visibility)
}

/// `buzz.add_channel_member(channel, pubkey, role)`: by a channel admin, for a pubkey admitted
/// to the same community. Re-adding updates the role.
#[pg_extern(volatile, parallel_unsafe, security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn add_channel_member(channel: Option<&str>, pubkey: Option<&str>, role: default!(Option<&str>, "'member'")) {
    crate::channels::add_channel_member(channel, pubkey, role)
}

/// `buzz.remove_channel_member(channel, pubkey)`: by a channel admin; true if removed.
#[pg_extern(volatile, parallel_unsafe, security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn remove_channel_member(channel: Option<&str>, pubkey: Option<&str>) -> bool {
    crate::channels::remove_channel_member(channel, pubkey)
}

/// `buzz.list_channels()`: the channels of the entered community the actor may see — open
/// channels, and private ones they belong to — ordered by name.
#[pg_extern(stable, parallel_unsafe, security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn list_channels() -> TableIterator<'static, (name!(id, Uuid), name!(name, String), name!(visibility, String), name!(my_role, Option<String>))> {
    crate::channels::list_channels()
}

/// `buzz.publish(event text)`: store a signed event in the entered community, answering
/// `(accepted, message)` like NIP-01 `OK`.
#[pg_extern(volatile, parallel_unsafe, security_definer, name = "publish")]
#[search_path(pg_catalog, pg_temp)]
fn publish_sql(event: Option<&str>) -> TableIterator<'static, (name!(accepted, bool), name!(message, &'static str))> {
    crate::store::publish::publish_sql(event)
}

/// `buzz.publish(event json)`: the same, for a relay that passes the event typed as json. The
/// text is parsed exactly as sent (PostgreSQL keeps json as text), so it meets the same strict
/// parser. There is no jsonb form: a jsonb value has already lost duplicate keys and number
/// spellings the parser must refuse.
#[pg_extern(volatile, parallel_unsafe, security_definer, name = "publish")]
#[search_path(pg_catalog, pg_temp)]
fn publish_json(event: Option<JsonText>) -> TableIterator<'static, (name!(accepted, bool), name!(message, &'static str))> {
    crate::store::publish::publish_json(event)
}

/// `buzz.publish(events text[])`: several events of one connection in one call, each taken
/// as `publish(text)` takes it and answered on its own row `(n, accepted, message)`, `n` its
/// place in the array from 1. A refused event does not stop the others. At most 256 events.
#[pg_extern(volatile, parallel_unsafe, security_definer, name = "publish")]
#[search_path(pg_catalog, pg_temp)]
fn publish_batch(
    events: Option<pgrx::datum::Array<'_, &str>>,
) -> TableIterator<'static, (name!(n, i32), name!(accepted, bool), name!(message, &'static str))> {
    crate::store::publish::publish_batch(events)
}

/// `buzz.publish(host, credential, events text[])`: `enter(host, credential)` and then
/// `publish(events)`, in one statement: one round trip for a relay in autocommit. The relay
/// passes the request's Host as received; the extension resolves the community.
#[pg_extern(volatile, parallel_unsafe, security_definer, name = "publish")]
#[search_path(pg_catalog, pg_temp)]
fn publish_entered(
    host: Option<&str>,
    credential: Option<&str>,
    events: Option<pgrx::datum::Array<'_, &str>>,
) -> TableIterator<'static, (name!(n, i32), name!(accepted, bool), name!(message, &'static str))> {
    crate::store::publish::publish_entered(host, credential, events)
}

/// `buzz.req(filters)`: the visible events of the entered community matching any filter,
/// newest first (id breaks ties), each exactly its NIP-01 JSON. Nothing without an
/// authenticated, admitted actor.
///
/// Its SQL is written out: pgrx derives `SETOF` only from its own iterator types, and the rows
/// are returned in materialize mode (src/materialized.rs); the declaration is the one pgrx
/// generated for the iterator.
#[pg_extern(
    stable,
    parallel_unsafe,
    security_definer,
    sql = r#"CREATE  FUNCTION "req"(
	"filters" jsonb /* Option < JsonbValue > */
) RETURNS SETOF jsonb /* RawJsonb */
STABLE SECURITY DEFINER PARALLEL UNSAFE
SET search_path TO pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'req_wrapper';"#
)]
fn req(filters: Option<JsonbValue>, fcinfo: pg_sys::FunctionCallInfo) -> MaterializedJsonb {
    // SAFETY: fcinfo is this call's (pgrx passes it through), and buzz.req is SETOF jsonb.
    let out = unsafe { MaterializedJsonb::start(fcinfo) };
    crate::store::query::req(filters, out)
}

/// `buzz.count(filters)`: exactly how many events `buzz.req` would return without limits.
#[pg_extern(stable, parallel_unsafe, security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn count(filters: Option<JsonbValue>) -> i64 {
    crate::store::query::count(filters)
}

/// `buzz.poll(filters, cursor)`: live delivery. The visible events of the entered community
/// matching any filter (exactly `req`'s visibility) that come after `cursor` in delivery order,
/// which is commit order, each with the cursor to resume after it; at most
/// `buzz_tenancy.max_limit` rows per call. A cursor of another community is refused like a
/// malformed one. Filter limits (NIP-01: for the stored answer only) do not apply.
#[pg_extern(stable, parallel_unsafe, security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn poll(
    filters: Option<JsonbValue>,
    cursor: Option<&str>,
) -> TableIterator<'static, (name!(event, RawJsonb), name!(cursor, String))> {
    crate::store::live::poll(filters, cursor)
}

/// `buzz.poll_many(entries, max_bytes)`: `poll` for many subscriptions of the entered host at
/// once, each under its own login. `entries` is a JSON array (at most 1,024) of `{"token": …,
/// "filters": […], "cursor": …}`; each credential is looked up in the entered community only.
/// Per entry, in order: its events after its cursor (`event`, `cursor`), then an end row
/// (`event` NULL) whose cursor is where to resume; or one row with a catalog message in `error`
/// instead, for that entry alone (logged out, not a member, bad entry, filters or cursor).
/// Events stop at `max_bytes` (default 4 MiB, at most 64 MiB; the first event always comes):
/// an entry without its end row resumes after its last row and asks again.
#[pg_extern(stable, parallel_unsafe, security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn poll_many(
    entries: Option<JsonbValue>,
    max_bytes: default!(Option<i32>, 4194304),
) -> TableIterator<
    'static,
    (name!(entry, i32), name!(event, Option<RawJsonb>), name!(cursor, Option<String>), name!(error, Option<String>)),
> {
    crate::store::poll_many::poll_many(entries, max_bytes)
}

/// `buzz.cursor()`: the cursor of everything this snapshot sees in the entered community. Run
/// it on `req`'s snapshot (the same statement, or one REPEATABLE READ transaction) and the
/// first `poll` after it continues exactly where `req`'s answer ended.
#[pg_extern(stable, parallel_unsafe, security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn cursor() -> String {
    crate::store::live::cursor()
}

/// `buzz.listen_channel()`: the name of the entered community's wake-up channel. After every
/// commit that stored its events the extension notifies it, with an empty payload.
#[pg_extern(stable, parallel_unsafe, security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn listen_channel() -> String {
    crate::store::live::listen_channel()
}

#[pg_extern(stable, parallel_unsafe, security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn relay_info(host: Option<&str>) -> Option<pgrx::JsonB> {
    crate::relay_info::relay_info(host)
}

/// `buzz.audit_verify(from_seq, to_seq)`: verify the entered community's chain from `from_seq`
/// to `to_seq` (default: its last row). Returns how many rows were checked and the first bad
/// seq (NULL if the range is intact). Only the context community's rows are read.
#[pg_extern(stable, parallel_unsafe, security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn audit_verify(
    from_seq: default!(Option<i64>, 1),
    to_seq: default!(Option<i64>, "NULL"),
) -> TableIterator<'static, (name!(checked, i64), name!(first_bad_seq, Option<i64>))> {
    // NULL from_seq: from the start, like the default.
    crate::audit::audit_verify(from_seq.unwrap_or(1), to_seq)
}

/// `buzz.mint_token(name, scopes, channel_ids, ttl)`: in a context entered with a signed
/// session, a new API token for the actor, returned once. `channel_ids` NULL: every channel
/// the minter may use; otherwise only those. `ttl` NULL: `buzz_tenancy.token_max_ttl`, which also caps it.
#[pg_extern(volatile, parallel_unsafe, security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn mint_token(
    name: Option<&str>,
    scopes: Option<pgrx::datum::Array<'_, &str>>,
    channel_ids: default!(Option<pgrx::datum::Array<'_, &str>>, "NULL"),
    ttl: default!(Option<Interval>, "NULL"),
) -> String {
    crate::auth::tokens::mint_token(name, scopes, channel_ids, ttl)
}

/// `buzz.revoke_token(name)`: revoke the actor's token of that name; true if one was revoked.
#[pg_extern(volatile, parallel_unsafe, security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn revoke_token(name: Option<&str>) -> bool {
    crate::auth::tokens::revoke_token(name)
}

/// `buzz.apply_member_list(event)`: apply a NIP-43 member list of the entered community.
/// Returns (added, removed).
#[pg_extern(volatile, parallel_unsafe, security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn apply_member_list(list_event: Option<&str>) -> TableIterator<'static, (name!(added, i64), name!(removed, i64))> {
    crate::member_list::apply_member_list(list_event)
}
