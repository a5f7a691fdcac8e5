-- buzz_tenancy finalize: RLS fences, ownership and privileges.

-- RLS on every tenant table: ENABLE + FORCE (the owner is fenced too), a RESTRICTIVE fence
-- and the PERMISSIVE policy access needs, both on the transaction's context. Without a
-- context buzz.current_community() is NULL and `=` matches nothing: fail closed.
DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['members', 'bans', 'channels', 'channel_members', 'challenges', 'sessions'] LOOP
        EXECUTE format('ALTER TABLE buzz.%I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE buzz.%I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY tenant_fence ON buzz.%I AS RESTRICTIVE FOR ALL
                          USING (community_id = buzz.current_community())
                          WITH CHECK (community_id = buzz.current_community())', t);
        EXECUTE format('CREATE POLICY tenant_access ON buzz.%I AS PERMISSIVE FOR ALL
                          USING (community_id = buzz.current_community())
                          WITH CHECK (community_id = buzz.current_community())', t);
    END LOOP;
END
$$;

-- Everything belongs to buzz_owner: SECURITY DEFINER code then runs as a role RLS binds.
ALTER SCHEMA buzz OWNER TO buzz_owner;
DO $$
DECLARE
    r record;
BEGIN
    FOR r IN SELECT c.oid::regclass AS rel FROM pg_class c
              WHERE c.relnamespace = 'buzz'::regnamespace AND c.relkind IN ('r', 'p') LOOP
        EXECUTE format('ALTER TABLE %s OWNER TO buzz_owner', r.rel);
    END LOOP;
    FOR r IN SELECT p.oid::regprocedure AS fn FROM pg_proc p
              WHERE p.pronamespace = 'buzz'::regnamespace LOOP
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
GRANT EXECUTE ON FUNCTION buzz.current_community(), buzz.current_actor(), buzz.error_catalog(),
    buzz.event_id(text), buzz.verify_event(text), buzz.schnorr_verify(text, text, text),
    buzz.normalize_host(text) TO PUBLIC;

-- Operators.
GRANT USAGE ON SCHEMA buzz TO buzz_admin;
GRANT EXECUTE ON FUNCTION buzz.create_community(text, text, text, text), buzz.add_host(text, text),
    buzz.remove_host(text), buzz.admit(text, text, text), buzz.revoke(text, text),
    buzz.setup_relay_role(text) TO buzz_admin;

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

COMMENT ON SCHEMA buzz IS 'buzz_tenancy: community tenancy for multi-tenant Nostr relays';
