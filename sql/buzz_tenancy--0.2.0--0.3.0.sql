-- buzz_tenancy 0.2.0 -> 0.3.0 (ALTER EXTENSION buzz_tenancy UPDATE).
--
-- scripts/test checks that a database updated from 0.1.0's script through this one (both
-- earlier install scripts are frozen in tests/upgrade/) has the schema of a fresh 0.3.0 install.
--   - NIP-42 challenges are stateless: auth_challenge seals its challenge under a key of the
--     database's (buzz.challenge_key, new) and writes nothing; buzz.challenges now holds the
--     challenges used, until they expire. Until this script runs, the 0.3.0 library issues
--     0.2.0's stored challenges; it accepts both kinds.
--   - enter(host, token) keeps the sessions it found in a per-backend cache; the new triggers
--     session_cache on sessions and members empty every backend's cache on any change that
--     could end a session. Until this script runs, the library caches nothing: without the
--     triggers nothing would tell it a session ended.
--   - each login deletes its community's expired sessions (index sessions_expiry, new) and
--     keeps at most 256 live sessions per pubkey.
--   - buzz.poll_many (new, in the relay API): poll for many subscriptions of one host in one
--     call, each under its own login. Existing relay roles get it when setup_relay_role runs
--     again: a grant made here would be an initial privilege, which pg_dump leaves out.
--   - buzz.publish(text[]) and buzz.publish(text, text, text[]) (new, in the relay API): a
--     batch of events answered one row each, and enter + batch in one statement. Granted
--     like poll_many, by setup_relay_role.
--   - buzz.forbid_retenant, the trigger keeping rows' community and keys immutable, is a C
--     function of the library (it was PL/pgSQL); same refusals, same triggers.
\echo Use "ALTER EXTENSION buzz_tenancy UPDATE TO '0.3.0'" to load this file. \quit

CREATE TABLE buzz.challenge_key (
    one boolean PRIMARY KEY DEFAULT true CHECK (one),
    key bytea NOT NULL CHECK (length(key) = 32)
);
INSERT INTO buzz.challenge_key (key)
SELECT sha256(uuid_send(gen_random_uuid()) || uuid_send(gen_random_uuid()) || uuid_send(gen_random_uuid()) || uuid_send(gen_random_uuid()));
ALTER TABLE buzz.challenge_key OWNER TO buzz_owner;
REVOKE ALL ON TABLE buzz.challenge_key FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('buzz.challenge_key', 'WHERE false');
COMMENT ON TABLE buzz.challenges IS 'Tenant: NIP-42 challenges used, kept until they expire (single use).';
COMMENT ON TABLE buzz.challenge_key IS 'The key NIP-42 challenges are sealed with; owner only, never dumped.';

-- A per-backend cache of sessions for enter(host, token), emptied everywhere by any change
-- that could end a session (src/auth/sessions.rs).
CREATE FUNCTION buzz.invalidate_session_cache() RETURNS void
STRICT VOLATILE PARALLEL UNSAFE
LANGUAGE c
AS 'MODULE_PATHNAME', 'invalidate_session_cache_wrapper';
ALTER FUNCTION buzz.invalidate_session_cache() OWNER TO buzz_owner;
REVOKE EXECUTE ON FUNCTION buzz.invalidate_session_cache() FROM PUBLIC;
COMMENT ON FUNCTION buzz.invalidate_session_cache() IS 'Internal: queue a relcache invalidation of buzz.sessions (session cache).';
CREATE FUNCTION buzz.sessions_changed() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM buzz.invalidate_session_cache();
    RETURN NULL;
END
$$;
ALTER FUNCTION buzz.sessions_changed() OWNER TO buzz_owner;
REVOKE EXECUTE ON FUNCTION buzz.sessions_changed() FROM PUBLIC;
COMMENT ON FUNCTION buzz.sessions_changed() IS 'Trigger: queue a session-cache invalidation for every backend.';
CREATE TRIGGER session_cache AFTER UPDATE OR TRUNCATE ON buzz.sessions
    FOR EACH STATEMENT EXECUTE FUNCTION buzz.sessions_changed();
ALTER TABLE buzz.sessions ENABLE ALWAYS TRIGGER session_cache;
CREATE FUNCTION buzz.sessions_deleted() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM gone WHERE expires_at > clock_timestamp()) THEN
        PERFORM buzz.invalidate_session_cache();
    END IF;
    RETURN NULL;
END
$$;
ALTER FUNCTION buzz.sessions_deleted() OWNER TO buzz_owner;
REVOKE EXECUTE ON FUNCTION buzz.sessions_deleted() FROM PUBLIC;
COMMENT ON FUNCTION buzz.sessions_deleted() IS 'Trigger: queue a session-cache invalidation for every backend when a live session is deleted.';
CREATE TRIGGER session_cache_delete AFTER DELETE ON buzz.sessions REFERENCING OLD TABLE AS gone
    FOR EACH STATEMENT EXECUTE FUNCTION buzz.sessions_deleted();
ALTER TABLE buzz.sessions ENABLE ALWAYS TRIGGER session_cache_delete;
CREATE TRIGGER session_cache AFTER UPDATE OR DELETE OR TRUNCATE ON buzz.members
    FOR EACH STATEMENT EXECUTE FUNCTION buzz.sessions_changed();
ALTER TABLE buzz.members ENABLE ALWAYS TRIGGER session_cache;
-- ALWAYS: changes made with session_replication_role = replica (a restore, a replication
-- tool) must empty the caches too (a logical replication subscriber's apply fires no statement
-- triggers: src/relcache_watch.rs turns the caches off for tables a subscription writes).
ALTER TABLE buzz.community_hosts ENABLE ALWAYS TRIGGER host_cache;

-- A per-backend cache of readable channels for req, count and poll, emptied everywhere by
-- any change to channels, channel members or members (src/store/readable.rs).
CREATE FUNCTION buzz.invalidate_reader_cache() RETURNS void
STRICT VOLATILE PARALLEL UNSAFE
LANGUAGE c
AS 'MODULE_PATHNAME', 'invalidate_reader_cache_wrapper';
ALTER FUNCTION buzz.invalidate_reader_cache() OWNER TO buzz_owner;
REVOKE EXECUTE ON FUNCTION buzz.invalidate_reader_cache() FROM PUBLIC;
COMMENT ON FUNCTION buzz.invalidate_reader_cache() IS 'Internal: queue a relcache invalidation of buzz.channel_members (readable-channels cache).';
CREATE FUNCTION buzz.readers_changed() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM buzz.invalidate_reader_cache();
    RETURN NULL;
END
$$;
ALTER FUNCTION buzz.readers_changed() OWNER TO buzz_owner;
REVOKE EXECUTE ON FUNCTION buzz.readers_changed() FROM PUBLIC;
COMMENT ON FUNCTION buzz.readers_changed() IS 'Trigger: queue a readable-channels cache invalidation for every backend.';
CREATE TRIGGER reader_cache AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON buzz.channels
    FOR EACH STATEMENT EXECUTE FUNCTION buzz.readers_changed();
ALTER TABLE buzz.channels ENABLE ALWAYS TRIGGER reader_cache;
CREATE TRIGGER reader_cache AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON buzz.channel_members
    FOR EACH STATEMENT EXECUTE FUNCTION buzz.readers_changed();
ALTER TABLE buzz.channel_members ENABLE ALWAYS TRIGGER reader_cache;
CREATE TRIGGER reader_cache AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON buzz.members
    FOR EACH STATEMENT EXECUTE FUNCTION buzz.readers_changed();
ALTER TABLE buzz.members ENABLE ALWAYS TRIGGER reader_cache;

-- Logins sweep their community's expired sessions and keep at most 256 live ones per pubkey.
CREATE INDEX sessions_expiry ON buzz.sessions (community_id, expires_at);

CREATE FUNCTION buzz.poll_many("entries" jsonb, "max_bytes" integer DEFAULT 4194304)
RETURNS TABLE ("entry" integer, "event" jsonb, "cursor" text, "error" text)
STABLE SECURITY DEFINER PARALLEL UNSAFE
SET search_path TO pg_catalog, pg_temp
LANGUAGE c
AS 'MODULE_PATHNAME', 'poll_many_wrapper';
ALTER FUNCTION buzz.poll_many(jsonb, integer) OWNER TO buzz_owner;
REVOKE EXECUTE ON FUNCTION buzz.poll_many(jsonb, integer) FROM PUBLIC;

CREATE FUNCTION buzz.publish("events" text[])
RETURNS TABLE ("n" integer, "accepted" boolean, "message" text)
VOLATILE SECURITY DEFINER PARALLEL UNSAFE
SET search_path TO pg_catalog, pg_temp
LANGUAGE c
AS 'MODULE_PATHNAME', 'publish_batch_wrapper';
ALTER FUNCTION buzz.publish(text[]) OWNER TO buzz_owner;
REVOKE EXECUTE ON FUNCTION buzz.publish(text[]) FROM PUBLIC;

CREATE FUNCTION buzz.publish("host" text, "credential" text, "events" text[])
RETURNS TABLE ("n" integer, "accepted" boolean, "message" text)
VOLATILE SECURITY DEFINER PARALLEL UNSAFE
SET search_path TO pg_catalog, pg_temp
LANGUAGE c
AS 'MODULE_PATHNAME', 'publish_entered_wrapper';
ALTER FUNCTION buzz.publish(text, text, text[]) OWNER TO buzz_owner;
REVOKE EXECUTE ON FUNCTION buzz.publish(text, text, text[]) FROM PUBLIC;

CREATE OR REPLACE FUNCTION buzz.forbid_retenant() RETURNS trigger
LANGUAGE c AS 'MODULE_PATHNAME', 'forbid_retenant';
