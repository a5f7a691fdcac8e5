-- buzz_tenancy finalize: RLS fences, ownership and privileges.

-- RLS on every tenant table: ENABLE + FORCE (the owner is fenced too), a RESTRICTIVE fence
-- and the PERMISSIVE policy access needs, both on the transaction's context. Without a
-- context buzz.current_community() is NULL and `=` matches nothing: fail closed.
DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['members', 'bans', 'channels', 'channel_members', 'challenges', 'sessions',
                             'events', 'event_tags', 'deleted_events', 'deleted_coords', 'http_seen',
                             'audit_heads', 'audit_log', 'api_tokens', 'api_token_channels', 'member_lists', 'http_nonces',
                             'community_counters', 'ephemeral_events'] LOOP
        EXECUTE format('ALTER TABLE buzz.%I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE buzz.%I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY tenant_fence ON buzz.%I AS RESTRICTIVE FOR ALL USING %s WITH CHECK %s',
                       t, buzz.fence_expression(), buzz.fence_expression());
        EXECUTE format('CREATE POLICY tenant_access ON buzz.%I AS PERMISSIVE FOR ALL USING %s WITH CHECK %s',
                       t, buzz.fence_expression(), buzz.fence_expression());
    END LOOP;
END
$$;

-- Everything the extension created belongs to buzz_owner: SECURITY DEFINER code then runs
-- as a role RLS binds. Only extension members (pg_depend 'e') are touched.
ALTER SCHEMA buzz OWNER TO buzz_owner;
DO $$
DECLARE
    r record;
BEGIN
    FOR r IN SELECT c.oid::regclass AS rel FROM pg_class c
               JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e'
               JOIN pg_extension x ON x.oid = d.refobjid AND x.extname = 'buzz_tenancy'
              WHERE c.relkind IN ('r', 'p') LOOP
        EXECUTE format('ALTER TABLE %s OWNER TO buzz_owner', r.rel);
    END LOOP;
    FOR r IN SELECT p.oid::regprocedure AS fn FROM pg_proc p
               JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e'
               JOIN pg_extension x ON x.oid = d.refobjid AND x.extname = 'buzz_tenancy' LOOP
        EXECUTE format('ALTER FUNCTION %s OWNER TO buzz_owner', r.fn);
    END LOOP;
END
$$;

-- Nobody gets anything by default.
REVOKE ALL ON ALL TABLES IN SCHEMA buzz FROM PUBLIC;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA buzz FROM PUBLIC;
REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA buzz FROM PUBLIC;

-- Pure helpers and context readers are harmless to anyone who can reach the schema
-- (policies on a relay's own tables call buzz.current_community() as the querying role).
GRANT EXECUTE ON FUNCTION buzz.current_community(), buzz.current_actor(), buzz.current_scopes(), buzz.current_worker(), buzz.error_catalog(),
    buzz.event_id(text), buzz.verify_event(text), buzz.schnorr_verify(text, text, text),
    buzz.normalize_host(text) TO PUBLIC;

-- Operators.
GRANT USAGE ON SCHEMA buzz TO buzz_admin;
GRANT EXECUTE ON FUNCTION buzz.create_community(text, text, text, text, uuid), buzz.add_host(text, text), buzz.setup_worker_role(text),
    buzz.remove_host(text), buzz.admit(text, text, text), buzz.revoke(text, text),
    buzz.setup_relay_role(text), buzz.explain_req(jsonb), buzz.set_community_name(text, text), buzz.purge_http_seen(), buzz.set_signing_key(text, text),
    buzz.audit_verify_operator() TO buzz_admin;

-- Adopting the relay's own tables (SECURITY INVOKER: the DDL runs as the operator, who owns
-- the tables; the foreign key to communities needs REFERENCES, a backfill needs SELECT).
GRANT EXECUTE ON FUNCTION buzz.enable_tenancy(regclass, boolean, boolean, text, boolean, boolean, boolean),
    buzz.tenancy_plan(regclass, boolean, boolean, text, boolean, boolean, boolean), buzz.disable_tenancy(regclass),
    buzz.declare_global(regclass, text), buzz.declare_log(regclass, text, boolean, boolean), buzz.declare_operator_only(regclass, text),
    buzz.tenant_guard(), buzz.log_guard(), buzz.assign_community_ids(),
    buzz.conformance(text, text), buzz.assert_conformance(text, text), buzz.fence_expression(),
    buzz.relay_api(), buzz.worker_api() TO buzz_admin;
-- ... the gate runs as the operator: its checks too.
GRANT EXECUTE ON FUNCTION buzz.conformance_scope(text, text), buzz.any_role_can(oid[], oid, text[]),
    buzz.effective_setting(buzz.conformance_scope, text), buzz.role_setting(oid, oid, text), buzz.shared_state_functions(),
    buzz.conformance_rls(buzz.conformance_scope),
    buzz.conformance_roles(buzz.conformance_scope), buzz.conformance_settings(buzz.conformance_scope),
    buzz.conformance_definers(buzz.conformance_scope), buzz.conformance_keys(buzz.conformance_scope),
    buzz.conformance_activity(buzz.conformance_scope), buzz.conformance_directory(buzz.conformance_scope),
    buzz.conformance_global_writes(buzz.conformance_scope), buzz.conformance_survives(buzz.conformance_scope),
    buzz.conformance_resolve(buzz.conformance_scope), buzz.conformance_sanitizer(buzz.conformance_scope),
    buzz.conformance_unregistered(buzz.conformance_scope) TO buzz_admin;
GRANT SELECT, INSERT, UPDATE, DELETE ON buzz.tenancy_tables TO buzz_admin;
GRANT SELECT, REFERENCES ON buzz.communities TO buzz_admin;
-- ... and it records what it did on the operator audit chain (the append locks the last row,
-- which needs UPDATE; the append-only trigger still refuses any change but a superuser's).
GRANT SELECT, INSERT, UPDATE ON buzz.operator_audit_log TO buzz_admin;
GRANT EXECUTE ON FUNCTION buzz.audit_hash(uuid, bigint, timestamptz, text, text, text, jsonb, bytea),
    buzz.audit_field(bytea) TO buzz_admin;
-- Whoever creates or attaches a partition of an adopted table must be able to fence it: the
-- event trigger calls tenancy_sync as that role, so such migration roles are operators. For
-- anyone else the CREATE fails (closed), and the relay role keeps only the relay API (§12.1).
GRANT EXECUTE ON FUNCTION buzz.tenancy_sync(regclass) TO buzz_admin;

-- pg_dump keeps the extension's state (one call per statement: each updates pg_extension).
DO $$
DECLARE
    r record;
BEGIN
    FOR r IN SELECT c.oid::regclass AS rel FROM pg_class c
              WHERE c.relnamespace = 'buzz'::regnamespace AND c.relkind = 'r' LOOP
        PERFORM pg_catalog.pg_extension_config_dump(r.rel, '');
    END LOOP;
END
$$;
-- ... except the challenge key: a secret that lives in the database only (schema.sql).
SELECT pg_catalog.pg_extension_config_dump('buzz.challenge_key', 'WHERE false');

COMMENT ON SCHEMA buzz IS 'buzz_tenancy: community tenancy for multi-tenant Nostr relays';

-- One line each, shown by \df+ (details: docs/api.md).
COMMENT ON FUNCTION buzz.enter(text) IS 'Bind this transaction to the community serving host (anonymous actor).';
COMMENT ON FUNCTION buzz.enter(text, text) IS 'Bind this transaction to the community serving host, as the actor of a session token of that community.';
COMMENT ON FUNCTION buzz.enter_http(text, text, text, text, text) IS 'NIP-98: bind this transaction to the community serving host, as the signer of an HTTP auth event for this request (single use across replicas).';
COMMENT ON FUNCTION buzz.purge_http_seen() IS 'Operator: remove NIP-98 seen-set entries older than twice the window; returns how many.';
COMMENT ON FUNCTION buzz.relay_info(text) IS 'NIP-11 document for one host: static settings and that community''s public fields; NULL for an unknown host.';
COMMENT ON FUNCTION buzz.audit_verify(bigint, bigint) IS 'Verify the entered community''s audit chain over a seq range; returns rows checked and the first bad seq.';
COMMENT ON FUNCTION buzz.audit_verify_operator() IS 'Operator: verify the operator audit chain.';
COMMENT ON TABLE buzz.audit_heads IS 'Tenant: the head (last seq and hash) of each community''s audit chain; appends lock it.';
COMMENT ON TABLE buzz.audit_log IS 'Tenant: the per-community, append-only, hash-chained audit log.';
COMMENT ON TABLE buzz.operator_audit_log IS 'Operator-global: the append-only, hash-chained log of operator actions (tenancy of relay tables).';
COMMENT ON FUNCTION buzz.mint_token(text, text[], text[], interval) IS 'An API token for the actor of a signed session, limited to scopes and channels; returned once.';
COMMENT ON FUNCTION buzz.revoke_token(text) IS 'Revoke the actor''s API token of that name; true if one was revoked.';
COMMENT ON TABLE buzz.api_tokens IS 'Tenant: API tokens, stored as SHA-256 only, keyed (community, hash).';
COMMENT ON TABLE buzz.api_token_channels IS 'Tenant: the channels an API token is limited to.';
COMMENT ON FUNCTION buzz.apply_member_list(text) IS 'NIP-43: apply a kind-13534 member list signed by the entered community''s key; returns (added, removed).';
COMMENT ON FUNCTION buzz.set_signing_key(text, text) IS 'Operator: set (or clear) a community''s signing pubkey (NIP-43 lists, NIP-29 system events).';
COMMENT ON TABLE buzz.member_lists IS 'Tenant: the last NIP-43 member list applied per community.';
COMMENT ON FUNCTION buzz.claim_http(text, text, text, text, text) IS 'NIP-98 claim step: verify and consume an HTTP auth event in a transaction of its own; returns a single-use nonce for enter_http(host, nonce).';
COMMENT ON FUNCTION buzz.enter_http(text, text) IS 'Bind this transaction to the community serving host, as the signer of a NIP-98 event claimed by claim_http (single-use nonce).';
COMMENT ON TABLE buzz.http_nonces IS 'Tenant: single-use nonces of NIP-98 claims, stored as SHA-256 only.';
COMMENT ON FUNCTION buzz.current_community() IS 'Community of the current transaction, or NULL (STABLE; used by every RLS policy).';
COMMENT ON FUNCTION buzz.current_scopes() IS 'What the actor may do: {read,write} for a signed session, an API token''s scopes, NULL without an actor.';
COMMENT ON FUNCTION buzz.current_actor() IS 'Authenticated pubkey of the current transaction, or NULL.';
COMMENT ON FUNCTION buzz.auth_challenge() IS 'NIP-42: a fresh single-use challenge bound to the entered community.';
COMMENT ON FUNCTION buzz.authenticate(text) IS 'NIP-42: verify a kind-22242 event for the entered host and return a session token.';
COMMENT ON FUNCTION buzz.end_session(text) IS 'End a session of the entered community; true if one ended.';
COMMENT ON FUNCTION buzz.create_channel(text, text) IS 'Create a channel in the entered community; the authenticated creator becomes its admin.';
COMMENT ON FUNCTION buzz.add_channel_member(text, text, text) IS 'Channel admin only: add a member of the same community to a channel.';
COMMENT ON FUNCTION buzz.remove_channel_member(text, text) IS 'Channel admin only: remove a pubkey from a channel.';
COMMENT ON FUNCTION buzz.list_channels() IS 'Channels of the entered community visible to the authenticated actor.';
COMMENT ON FUNCTION buzz.event_id(text) IS 'NIP-01 canonical id of an event, computed from its fields.';
COMMENT ON FUNCTION buzz.verify_event(text) IS 'True iff the event id matches its content and the BIP-340 signature verifies.';
COMMENT ON FUNCTION buzz.schnorr_verify(text, text, text) IS 'BIP-340 verification of a 32-byte message (hex key, message, signature).';
COMMENT ON FUNCTION buzz.normalize_host(text) IS 'The normalized host[:port] that enter and add_host compare.';
COMMENT ON FUNCTION buzz.invalidate_host_cache() IS 'Internal: queue a relcache invalidation of buzz.community_hosts (host cache).';
COMMENT ON FUNCTION buzz.invalidate_session_cache() IS 'Internal: queue a relcache invalidation of buzz.sessions (session cache).';
COMMENT ON FUNCTION buzz.invalidate_reader_cache() IS 'Internal: queue a relcache invalidation of buzz.channel_members (readable-channels cache).';
COMMENT ON FUNCTION buzz.error_catalog() IS 'Every client-visible message (the error alphabet).';
COMMENT ON FUNCTION buzz.create_community(text, text, text, text, uuid) IS 'Operator: create a community (admission open or allowlist), with a given id or a random one; returns its id.';
COMMENT ON FUNCTION buzz.add_host(text, text) IS 'Operator: map a host to a community; returns the normalized host.';
COMMENT ON FUNCTION buzz.remove_host(text) IS 'Operator: unmap a host; true if it was mapped.';
COMMENT ON FUNCTION buzz.admit(text, text, text) IS 'Operator: admit a pubkey to a community (or change its role); lifts a ban.';
COMMENT ON FUNCTION buzz.revoke(text, text) IS 'Operator: remove a member; cascades channel memberships and sessions, bans in open communities.';
COMMENT ON FUNCTION buzz.setup_relay_role(text) IS 'Operator: grant exactly the relay API to a role, refusing roles that could bypass RLS.';
COMMENT ON FUNCTION buzz.publish(text) IS 'Store a signed event in the entered community; answers (accepted, message) like NIP-01 OK.';
COMMENT ON FUNCTION buzz.publish(json) IS 'buzz.publish for an event typed as json.';
COMMENT ON FUNCTION buzz.req(jsonb) IS 'NIP-01 REQ: visible events of the entered community matching the filters, newest first.';
COMMENT ON FUNCTION buzz.count(jsonb) IS 'NIP-45 COUNT: exactly how many events buzz.req would return without limits.';
COMMENT ON FUNCTION buzz.explain_req(jsonb) IS 'Operator: EXPLAIN (COSTS OFF) of the statement buzz.req runs for these filters here.';
COMMENT ON FUNCTION buzz.enable_tenancy(regclass, boolean, boolean, text, boolean, boolean, boolean) IS 'Operator: make a relay table tenant (column, FK, RLS+FORCE, policies, guard; optionally composite keys, worker writes, per-community ids); returns the DDL it ran.';
COMMENT ON FUNCTION buzz.tenancy_plan(regclass, boolean, boolean, text, boolean, boolean, boolean) IS 'Operator: the DDL enable_tenancy would run with the same arguments.';
COMMENT ON FUNCTION buzz.disable_tenancy(regclass) IS 'Operator: remove the generated fences and the registry entry of a relay table; returns the DDL it ran.';
COMMENT ON FUNCTION buzz.declare_global(regclass, text) IS 'Operator: record a relay table (or materialized view) as deliberately operator-global, with a reason.';
COMMENT ON FUNCTION buzz.declare_log(regclass, text, boolean, boolean) IS 'Operator: a relay-written log: the relay adds rows of the entered community only and reads none.';
COMMENT ON FUNCTION buzz.declare_operator_only(regclass, text) IS 'Operator: a table for operators only; it may keep foreign keys into tenant tables.';
COMMENT ON FUNCTION buzz.setup_worker_role(text) IS 'Operator: let a role run background jobs: enter_community(id) and communities_for_worker(), nothing else.';
COMMENT ON FUNCTION buzz.enter_community(uuid) IS 'Worker roles only: bind this transaction to a community by id (no host, no actor).';
COMMENT ON FUNCTION buzz.communities_for_worker() IS 'Worker roles only: every community''s id and slug, for a sweep.';
COMMENT ON FUNCTION buzz.current_worker() IS 'True in a background worker''s context (for the write policies of tables that allow worker writes).';
COMMENT ON TABLE buzz.ephemeral_events IS 'Tenant: ephemeral events, deliverable by poll for buzz_tenancy.ephemeral_retention seconds.';
COMMENT ON TABLE buzz.community_counters IS 'Tenant: per-community counters of relay tables adopted with per_community_ids.';
COMMENT ON FUNCTION buzz.tenancy_sync(regclass) IS 'Internal (event trigger): fence every partition of an adopted table.';
COMMENT ON FUNCTION buzz.conformance(text, text) IS 'Operator: deployment checks for a relay role (A-RLS-1..5, P-RESOLVE, …), one row per finding.';
COMMENT ON FUNCTION buzz.assert_conformance(text, text) IS 'Operator: the deployment gate; raises if any conformance check fails.';
COMMENT ON TABLE buzz.tenancy_tables IS 'Operator-global: relay tables adopted as tenant or declared global.';
COMMENT ON TABLE buzz.events IS 'Tenant: the event log; event is the exact NIP-01 JSON.';
COMMENT ON TABLE buzz.event_tags IS 'Tenant: single-letter tags of events, for #x filters.';
COMMENT ON TABLE buzz.deleted_events IS 'Tenant: NIP-09 tombstones (community, author, id).';
COMMENT ON TABLE buzz.deleted_coords IS 'Tenant: NIP-09 deleted coordinates of replaceable/addressable events.';
COMMENT ON TABLE buzz.communities IS 'Operator-global: the communities.';
COMMENT ON TABLE buzz.community_hosts IS 'Operator-global: normalized host -> community.';
COMMENT ON TABLE buzz.members IS 'Tenant: admitted pubkeys per community.';
COMMENT ON TABLE buzz.bans IS 'Tenant: pubkeys revoked from an open community.';
COMMENT ON TABLE buzz.channels IS 'Tenant: channels; community and id never change.';
COMMENT ON TABLE buzz.channel_members IS 'Tenant: channel membership, composite FKs to channels and members.';
COMMENT ON TABLE buzz.challenges IS 'Tenant: NIP-42 challenges used, kept until they expire (single use).';
COMMENT ON TABLE buzz.challenge_key IS 'The key NIP-42 challenges are sealed with; owner only, never dumped.';
COMMENT ON TABLE buzz.http_seen IS 'Tenant: NIP-98 events already used, per community (replay protection across replicas).';
COMMENT ON TABLE buzz.sessions IS 'Tenant: session tokens, stored as sha256 only.';
COMMENT ON TYPE buzz.conformance_scope IS 'Internal: what the deployment checks look at for one relay role (its reachable roles, tenant, global, protected tables ...).';
COMMENT ON FUNCTION buzz.conformance_scope(text, text) IS 'Internal: the scope of buzz.conformance for a relay role, every role it can act as included.';
COMMENT ON FUNCTION buzz.any_role_can(oid[], oid, text[]) IS 'Internal: true if one of the roles holds one of the privileges on the relation (table or column level).';
COMMENT ON FUNCTION buzz.effective_setting(buzz.conformance_scope, text) IS 'Internal: a setting as the relay role''s sessions in this database start with it.';
COMMENT ON FUNCTION buzz.shared_state_functions() IS 'Built-in functions that read state every community shares around row level security (statistics counters, sizes, pg_notify); the recipe revokes them from PUBLIC.';
COMMENT ON FUNCTION buzz.role_setting(oid, oid, text) IS 'Internal: a setting as a role''s sessions in a database start with it.';
COMMENT ON FUNCTION buzz.conformance_rls(buzz.conformance_scope) IS 'Deployment check A-RLS-1: RLS, FORCE, an applicable fence, community_id, the immutability trigger, an owner bound by RLS.';
COMMENT ON FUNCTION buzz.conformance_roles(buzz.conformance_scope) IS 'Deployment check A-RLS-2: no role the relay can act as bypasses RLS.';
COMMENT ON FUNCTION buzz.conformance_settings(buzz.conformance_scope) IS 'Deployment check A-RLS-3: the extension''s settings cannot be changed by the relay.';
COMMENT ON FUNCTION buzz.conformance_definers(buzz.conformance_scope) IS 'Deployment check A-RLS-4: nothing runs with another role''s rights over protected data; no privilege ignores RLS.';
COMMENT ON FUNCTION buzz.conformance_keys(buzz.conformance_scope) IS 'Deployment check A-RLS-5: every key of a tenant table includes community_id.';
COMMENT ON FUNCTION buzz.conformance_activity(buzz.conformance_scope) IS 'Deployment check ACTIVITY: warnings about query text visible to same-role backends.';
COMMENT ON FUNCTION buzz.conformance_directory(buzz.conformance_scope) IS 'Deployment check DIRECTORY: no privilege on the extension''s tables; no read of global tables with community_id.';
COMMENT ON FUNCTION buzz.conformance_global_writes(buzz.conformance_scope) IS 'Deployment check GLOBAL-WRITES: no writes to the relay''s global tables.';
COMMENT ON FUNCTION buzz.conformance_survives(buzz.conformance_scope) IS 'Deployment check NOTHING-SURVIVES: nothing the relay creates outlives its transaction.';
COMMENT ON FUNCTION buzz.conformance_resolve(buzz.conformance_scope) IS 'Deployment check P-RESOLVE: channel communities stay immutable.';
COMMENT ON FUNCTION buzz.conformance_sanitizer(buzz.conformance_scope) IS 'Deployment check SANITIZER: every error reaches the sanitizer; the relay cannot change what decides that.';
COMMENT ON FUNCTION buzz.conformance_unregistered(buzz.conformance_scope) IS 'Deployment check UNREGISTERED: every reachable table is tenant or global.';
