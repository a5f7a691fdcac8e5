//! The operator API (superuser or members of `buzz_admin`; EXECUTE revoked from PUBLIC):
//! communities, hosts, members, relay and worker roles, maintenance. Thin declarations over
//! `admin`, `auth`, `audit`, `store`, `worker` and `resolve`.

use pgrx::prelude::*;
use pgrx::Uuid;

use crate::json_args::JsonbValue;

/// `buzz.create_community(slug, name, admission, signing_pubkey, id)` → the new community's id.
/// `id` adopts an id the relay's rows already carry (from its own registry); NULL draws a
/// random one. The nil uuid and an id already used are refused.
#[pg_extern(volatile, parallel_unsafe, security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn create_community(
    slug: Option<&str>,
    name: Option<&str>,
    admission: default!(Option<&str>, "'allowlist'"),
    signing_pubkey: default!(Option<&str>, "NULL"),
    id: default!(Option<Uuid>, "NULL"),
) -> Uuid {
    crate::admin::create_community(slug, name, admission, signing_pubkey, id)
}

/// `buzz.add_host(community, host)` → the normalized host now serving `community`.
/// Idempotent for the same community; a host mapped elsewhere is `duplicate:`.
#[pg_extern(volatile, parallel_unsafe, security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn add_host(community: &str, host: &str) -> String {
    crate::admin::add_host(community, host)
}

/// `buzz.remove_host(host)`: unmap a host; true if it was mapped. Its community keeps its data.
#[pg_extern(volatile, parallel_unsafe, security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn remove_host(host: &str) -> bool {
    crate::admin::remove_host(host)
}

/// `buzz.admit(community, pubkey, role)`: admit (or re-role) a member; lifts a ban.
#[pg_extern(volatile, parallel_unsafe, security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn admit(community: &str, pubkey: &str, role: default!(&str, "'member'")) {
    crate::admin::admit(community, pubkey, role)
}

/// `buzz.revoke(community, pubkey)`: remove a member. Channel memberships and sessions go with
/// it (foreign keys cascade); in an open community a ban keeps open AUTH from re-admitting.
/// True if the pubkey was a member.
#[pg_extern(volatile, parallel_unsafe, security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn revoke(community: &str, pubkey: &str) -> bool {
    crate::admin::revoke(community, pubkey)
}

/// `buzz.set_signing_key(community, pubkey)`: the key whose signature makes NIP-43 member lists
/// and NIP-29 system events (kinds 39000–39002) authoritative for this community; NULL clears it.
#[pg_extern(volatile, parallel_unsafe, security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn set_signing_key(community: &str, signing_pubkey: Option<&str>) {
    crate::admin::set_signing_key(community, signing_pubkey)
}

/// `buzz.set_community_name(community, name)`: the display name (NIP-11 `name`), 1–200
/// characters.
#[pg_extern(volatile, parallel_unsafe, security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn set_community_name(community: &str, name: &str) {
    crate::admin::set_community_name(community, name)
}

/// `buzz.setup_relay_role(role)`: grant exactly the relay API to `role`, after refusing roles
/// that could defeat RLS. The role is judged with every role it can act as (any membership,
/// inherited or only through `SET ROLE`): the conformance gate's role checks (A-RLS-2: none is
/// a superuser, BYPASSRLS, CREATEROLE, REPLICATION, a file/program role, pg_read_all_data,
/// pg_write_all_data, buzz_owner, buzz_admin, the owner of a tenant table or of the database)
/// and none may create schemas or objects in any schema.
#[pg_extern(volatile, parallel_unsafe, security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn setup_relay_role(role: &str) {
    crate::admin::setup_relay_role(role)
}

/// `buzz.purge_http_seen()` (operators): remove seen-set entries older than twice the window
/// that was in force when they were recorded; returns how many.
#[pg_extern(volatile, parallel_unsafe, security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn purge_http_seen() -> i64 {
    crate::auth::nip98::purge_http_seen()
}

/// `buzz.audit_verify_operator()` (operators): verify the whole operator chain.
#[pg_extern(stable, parallel_unsafe, security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn audit_verify_operator() -> TableIterator<'static, (name!(checked, i64), name!(first_bad_seq, Option<i64>))> {
    crate::audit::audit_verify_operator()
}

/// `buzz.explain_req(filters)`: the plan of the statement `buzz.req` runs for `filters` in
/// the current context (operators only: for index checks and tuning).
#[pg_extern(volatile, parallel_unsafe, security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn explain_req(filters: Option<JsonbValue>) -> SetOfIterator<'static, String> {
    crate::store::query::explain_req(filters)
}

/// `buzz.setup_worker_role(role)` (operators): make `role` a background worker — USAGE on
/// `buzz`, EXECUTE on `enter_community` and `communities_for_worker`, nothing else.
/// Refused for roles a relay must not be (the gate's role checks) and for relay roles: a relay
/// that could enter any community by id would no longer need a host.
#[pg_extern(volatile, parallel_unsafe, security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn setup_worker_role(role: &str) {
    crate::worker::setup_worker_role(role)
}

/// `buzz.invalidate_host_cache()`: queue a relcache invalidation of buzz.community_hosts
/// (called by its statement trigger; delivered to every backend at commit).
#[pg_extern(volatile, parallel_unsafe)]
fn invalidate_host_cache() {
    crate::resolve::invalidate_host_cache()
}

/// `buzz.invalidate_session_cache()`: queue a relcache invalidation of buzz.sessions (called
/// by the statement triggers on sessions and members; delivered to every backend at commit).
#[pg_extern(volatile, parallel_unsafe)]
fn invalidate_session_cache() {
    crate::auth::sessions::invalidate_cache()
}

/// `buzz.invalidate_reader_cache()`: queue a relcache invalidation of buzz.channel_members
/// (called by the statement triggers on channels, channel_members and members; delivered to
/// every backend at commit).
#[pg_extern(volatile, parallel_unsafe)]
fn invalidate_reader_cache() {
    crate::store::readable::invalidate_cache()
}
