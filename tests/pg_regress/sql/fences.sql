-- I4: a query that forgets the predicate, or runs without context, sees nothing; and the
-- relay role can neither read nor write any buzz table directly.
\getenv abs_srcdir PG_ABS_SRCDIR
\i :abs_srcdir/include/base.psql
\set VERBOSITY terse

-- The relay role, no context: every table refuses every command (mutation: granting the
-- relay any table privilege turns one of these into rows).
SET ROLE buzz_relay;
SELECT count(*) FROM buzz.communities;
SELECT count(*) FROM buzz.community_hosts;
SELECT count(*) FROM buzz.members;
SELECT count(*) FROM buzz.bans;
SELECT count(*) FROM buzz.channels;
SELECT count(*) FROM buzz.channel_members;
SELECT count(*) FROM buzz.challenges;
SELECT count(*) FROM buzz.sessions;
INSERT INTO buzz.members (community_id, pubkey, role, source) SELECT gen_random_uuid(), :'dave', 'member', 'admin';
UPDATE buzz.channels SET name = 'x';
DELETE FROM buzz.sessions;
TRUNCATE buzz.members;
-- ... nor with a context: privileges, not context, are what is missing.
-- (Inside a context the error is sanitized: SQLSTATE and a catalog phrase; suite sanitize.)
BEGIN;
SELECT buzz.enter('a.example');
\set VERBOSITY sqlstate
SELECT count(*) FROM buzz.members;
\set VERBOSITY terse
ROLLBACK;
RESET ROLE;

-- The owner role (what the extension's SECURITY DEFINER code runs as), no context: zero
-- rows of every tenant table, and no write lands (mutations: dropping FORCE ROW LEVEL
-- SECURITY, or the policies' NULL-matches-nothing `=`, shows the rows).
SET ROLE buzz_owner;
SELECT 'members' AS t, count(*) FROM buzz.members
UNION ALL SELECT 'bans', count(*) FROM buzz.bans
UNION ALL SELECT 'channels', count(*) FROM buzz.channels
UNION ALL SELECT 'channel_members', count(*) FROM buzz.channel_members
UNION ALL SELECT 'challenges', count(*) FROM buzz.challenges
UNION ALL SELECT 'sessions', count(*) FROM buzz.sessions;
INSERT INTO buzz.members (community_id, pubkey, role, source)
    SELECT id, :'dave', 'member', 'admin' FROM buzz.communities WHERE slug = 'alpha';
WITH u AS (UPDATE buzz.members SET role = 'admin' RETURNING 1) SELECT count(*) AS updated FROM u;
WITH d AS (DELETE FROM buzz.members RETURNING 1) SELECT count(*) AS deleted FROM d;
-- With alpha's context the owner sees alpha's rows only, and cannot write beta's.
BEGIN;
SELECT buzz.enter('a.example');
SELECT count(*) AS visible, count(*) FILTER (WHERE community_id <> buzz.current_community()) AS foreign_rows FROM buzz.members;
\set VERBOSITY sqlstate
INSERT INTO buzz.members (community_id, pubkey, role, source)
    SELECT id, :'dave', 'member', 'admin' FROM buzz.communities WHERE slug = 'beta';
\set VERBOSITY terse
ROLLBACK;
RESET ROLE;
-- (The operator sees everything: superusers bypass RLS.)
SELECT c.slug, count(m.*) AS members FROM buzz.communities c LEFT JOIN buzz.members m ON m.community_id = c.id GROUP BY 1 ORDER BY 1;

-- setup_relay_role refuses roles that could defeat RLS (mutation: removing any clause of
-- its safety query lets that role through).
CREATE ROLE unsafe_super SUPERUSER;
CREATE ROLE unsafe_bypass BYPASSRLS;
CREATE ROLE unsafe_createrole CREATEROLE;
CREATE ROLE unsafe_replication REPLICATION;
CREATE ROLE unsafe_files IN ROLE pg_read_server_files;
CREATE ROLE unsafe_owner_member IN ROLE buzz_owner;
CREATE ROLE unsafe_admin_member IN ROLE buzz_admin;
CREATE ROLE unsafe_table_owner;
CREATE TABLE public.tenant_stuff (community_id uuid NOT NULL);
ALTER TABLE public.tenant_stuff ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.tenant_stuff OWNER TO unsafe_table_owner;
CREATE ROLE unsafe_inherits_owner IN ROLE unsafe_table_owner;
CREATE ROLE unsafe_schema_creator;
CREATE SCHEMA unsafe_schema;
GRANT CREATE ON SCHEMA unsafe_schema TO unsafe_schema_creator;
CREATE ROLE unsafe_db_creator;
DO $$ BEGIN EXECUTE format('GRANT CREATE ON DATABASE %I TO unsafe_db_creator', current_database()); END $$;
CREATE ROLE unsafe_db_owner;
DO $$ BEGIN EXECUTE format('ALTER DATABASE %I OWNER TO unsafe_db_owner', current_database()); END $$;
SELECT buzz.setup_relay_role('unsafe_super');
SELECT buzz.setup_relay_role('unsafe_bypass');
SELECT buzz.setup_relay_role('unsafe_createrole');
SELECT buzz.setup_relay_role('unsafe_replication');
SELECT buzz.setup_relay_role('unsafe_files');
SELECT buzz.setup_relay_role('unsafe_owner_member');
SELECT buzz.setup_relay_role('unsafe_admin_member');
SELECT buzz.setup_relay_role('unsafe_table_owner');
SELECT buzz.setup_relay_role('unsafe_inherits_owner');
SELECT buzz.setup_relay_role('unsafe_schema_creator');
SELECT buzz.setup_relay_role('unsafe_db_creator');
SELECT buzz.setup_relay_role('unsafe_db_owner');
SELECT buzz.setup_relay_role('buzz_owner');
SELECT buzz.setup_relay_role('no_such_role');
SELECT count(*) AS grants_to_unsafe_roles
  FROM pg_proc p, aclexplode(p.proacl) a, pg_roles r
 WHERE p.pronamespace = 'buzz'::regnamespace AND r.oid = a.grantee AND r.rolname LIKE 'unsafe\_%';
-- A plain role is fine, and gets exactly what buzz_relay got.
CREATE ROLE relay_two LOGIN;
SELECT buzz.setup_relay_role('relay_two');
SELECT count(*) AS differing_privileges FROM pg_proc p WHERE p.pronamespace = 'buzz'::regnamespace
   AND has_function_privilege('relay_two', p.oid, 'EXECUTE') <> has_function_privilege('buzz_relay', p.oid, 'EXECUTE');
DROP TABLE public.tenant_stuff;
DROP SCHEMA unsafe_schema;
DO $$ BEGIN EXECUTE format('ALTER DATABASE %I OWNER TO postgres', current_database());
             EXECUTE format('REVOKE CREATE ON DATABASE %I FROM unsafe_db_creator', current_database()); END $$;
DROP ROLE unsafe_super, unsafe_bypass, unsafe_createrole, unsafe_replication, unsafe_files,
          unsafe_owner_member, unsafe_admin_member, unsafe_inherits_owner, unsafe_table_owner,
          unsafe_schema_creator, unsafe_db_creator, unsafe_db_owner;
