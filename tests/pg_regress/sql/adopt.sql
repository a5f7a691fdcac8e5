-- Adopting a relay's own schema (DESIGN §7 A-RLS-1..5, §12.11): tests/fixture/relay_schema.sql
-- (19 tables: a range-partitioned event log, users with partial and expression unique
-- indexes, tokens, workflows, reactions, threads, an audit log, moderation, three
-- operator-global tables) as a careless deployment leaves it; the conformance report that
-- names each problem; adoption with enable_tenancy / declare_global; the report after.
\getenv abs_srcdir PG_ABS_SRCDIR
\i :abs_srcdir/include/base.psql
\set VERBOSITY terse
\i :abs_srcdir/include/relay_tables.psql
-- The relay's migration role owns its tables (not a superuser: FORCE matters for it) and
-- operates the extension.
CREATE ROLE relay_migrator NOLOGIN;
GRANT buzz_admin TO relay_migrator;
SELECT format('GRANT CREATE ON DATABASE %I TO relay_migrator', current_database()) \gexec
SET ROLE relay_migrator;
\o /dev/null
\i :abs_srcdir/fixture/relay_schema.sql
\o
-- Careless leftovers: a view that runs as its owner, a SECURITY DEFINER helper.
CREATE VIEW relay.channel_directory AS SELECT name, visibility FROM relay.channels;
CREATE FUNCTION relay.user_count() RETURNS bigint LANGUAGE sql SECURITY DEFINER
    AS $$ SELECT count(*) FROM relay.users $$;
RESET ROLE;
SELECT format('REVOKE CREATE ON DATABASE %I FROM relay_migrator', current_database()) \gexec
-- ... and every privilege on every relay table for the relay role.
GRANT USAGE ON SCHEMA relay TO buzz_relay;
GRANT ALL ON ALL TABLES IN SCHEMA relay TO buzz_relay;
GRANT EXECUTE ON FUNCTION relay.user_count() TO buzz_relay;

-- Before: every problem is named (operator-facing findings; warnings included).
SELECT check_id, object, status, detail FROM buzz.conformance('buzz_relay') WHERE status <> 'pass';
SELECT buzz.assert_conformance('buzz_relay');

-- The plan for a table, before anything runs: exactly the DDL enable_tenancy will run.
SELECT buzz.tenancy_plan('relay.reactions', add_column => true);

-- Adoption, as the migration role. Pass 1: column (added where missing), FK, RLS + FORCE,
-- policies, guard, registry. Pass 2: composite keys; foreign keys between tenant tables are
-- rewritten when their referenced key is.
SET ROLE relay_migrator;
SELECT t AS adopted, buzz.enable_tenancy(t::regclass, add_column => true) <> '' AS changed
  FROM unnest(:'relay_tenant_tables'::text[]) t;
-- Pass 2 for users: its key changes, so the foreign keys of six tables into it are dropped
-- and added back composite (a relay table referencing it that was not adopted would refuse).
SELECT buzz.tenancy_plan('relay.users', rewrite_keys => true);
SELECT t AS rekeyed, buzz.enable_tenancy(t::regclass, rewrite_keys => true) <> '' AS changed
  FROM unnest(:'relay_tenant_tables'::text[]) t;
SELECT buzz.declare_global('relay.kind_registry', 'NIP kind catalogue shared by every community');
SELECT buzz.declare_global('relay.rate_limit_tiers', 'plans the operator sells');
SELECT buzz.declare_global('relay.schema_migrations', 'the relay''s migration ledger');
-- Idempotent: nothing left to do for any table.
SELECT t AS not_idempotent FROM unnest(:'relay_tenant_tables'::text[]) t
 WHERE buzz.tenancy_plan(t::regclass, rewrite_keys => true) <> '';
SELECT buzz.enable_tenancy('relay.users', rewrite_keys => true) AS second_run;
-- The rest is the operator's own fix: the view runs as the caller, the definer helper goes.
ALTER VIEW relay.channel_directory SET (security_invoker = true);
DROP FUNCTION relay.user_count();
RESET ROLE;
REVOKE ALL ON ALL TABLES IN SCHEMA relay FROM buzz_relay;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA relay TO buzz_relay;
SELECT format('REVOKE SELECT, INSERT, UPDATE, DELETE ON %s FROM buzz_relay', t)
  FROM unnest(:'relay_global_tables'::text[]) t \gexec
GRANT SELECT ON relay.kind_registry, relay.rate_limit_tiers TO buzz_relay;
SELECT format('REVOKE TEMP ON DATABASE %I FROM PUBLIC', current_database()) \gexec
-- the recipe's revocation of statistics counters, relation sizes and pg_notify
DO $$
DECLARE
    f regprocedure;
BEGIN
    FOR f IN SELECT * FROM buzz.shared_state_functions() LOOP
        EXECUTE format('REVOKE EXECUTE ON FUNCTION %s FROM PUBLIC', f);
    END LOOP;
END $$;

-- After: every check passes; what remains are warnings about the server's configuration.
SELECT check_id, object, status, detail FROM buzz.conformance('buzz_relay') WHERE status <> 'pass';
SELECT check_id FROM buzz.conformance('buzz_relay') WHERE status = 'pass';
SELECT buzz.assert_conformance('buzz_relay');
-- Each check fails on the misconfiguration it exists for (one transaction, rolled back).
BEGIN;
ALTER ROLE buzz_relay BYPASSRLS;                                  -- A-RLS-2
GRANT buzz_admin TO buzz_relay;                                   -- A-RLS-2 (membership)
ALTER ROLE buzz_relay SET buzz_tenancy.max_limit = 100000;                -- A-RLS-3
ALTER ROLE buzz_relay SET log_min_messages = 'fatal';             -- SANITIZER
ALTER TABLE relay.users NO FORCE ROW LEVEL SECURITY;              -- A-RLS-1
DROP POLICY buzz_fence ON relay.channels;                         -- A-RLS-1
DROP TRIGGER buzz_tenant_guard ON relay.invites;                  -- A-RLS-1
CREATE UNIQUE INDEX users_global_nip05 ON relay.users (nip05);    -- A-RLS-5
GRANT TRUNCATE ON relay.users TO buzz_relay;                      -- A-RLS-4
CREATE VIEW relay.leaky AS SELECT pubkey FROM relay.users;        -- A-RLS-4
GRANT INSERT ON relay.kind_registry TO buzz_relay;                -- GLOBAL-WRITES
ALTER TABLE buzz.channels DISABLE TRIGGER immutable_tenant;       -- P-RESOLVE
CREATE TABLE relay.stray (id int);                                -- UNREGISTERED
SELECT format('GRANT TEMP ON DATABASE %I TO buzz_relay', current_database()) \gexec
SELECT check_id, object, status, detail FROM buzz.conformance('buzz_relay') WHERE status = 'fail';
ROLLBACK;
SELECT buzz.assert_conformance('buzz_relay') AS still_conforms;

-- The registry.
SELECT tbl, mode, reason, anonymous_writes FROM buzz.tenancy_tables ORDER BY tbl::text;
-- Every key and foreign key of every tenant table now leads with community_id.
SELECT conrelid::regclass AS tbl, conname, pg_get_constraintdef(oid) AS def
  FROM pg_constraint
 WHERE connamespace = 'relay'::regnamespace AND contype IN ('p', 'u', 'f') AND conparentid = 0
 ORDER BY conrelid::regclass::text, conname;
SELECT indexrelid::regclass AS unique_index, pg_get_indexdef(indexrelid) AS def
  FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
 WHERE c.relnamespace = 'relay'::regnamespace AND i.indisunique
   AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid)
   AND NOT i.indrelid::regclass::text LIKE 'relay.events\_%'
 ORDER BY indexrelid::regclass::text;
