-- The state every suite starts from (include/base.psql, which each suite runs first in a
-- database of its own): the extension, a relay role, two communities.
-- alpha: allowlist, hosts a.example and alpha.example:8443. beta: open, host b.example.
\getenv abs_srcdir PG_ABS_SRCDIR
\i :abs_srcdir/include/base.psql
\set VERBOSITY terse
\dn buzz
SELECT c.slug, c.admission, array_agg(h.host ORDER BY h.host) AS hosts
  FROM buzz.communities c JOIN buzz.community_hosts h ON h.community_id = c.id
 GROUP BY c.slug, c.admission ORDER BY 1;
-- What the relay role may execute: the relay API and nothing else.
SELECT p.oid::regprocedure AS relay_can_execute
  FROM pg_proc p
 WHERE p.pronamespace = 'buzz'::regnamespace
   AND has_function_privilege('buzz_relay', p.oid, 'EXECUTE')
 ORDER BY p.oid::regprocedure::text;
-- ... and no table, sequence or schema-creation privilege at all (DESIGN §12.1).
SELECT c.relname, has_table_privilege('buzz_relay', c.oid, 'SELECT,INSERT,UPDATE,DELETE,TRUNCATE,REFERENCES,TRIGGER') AS any_priv
  FROM pg_class c WHERE c.relnamespace = 'buzz'::regnamespace AND c.relkind IN ('r', 'S', 'v', 'm')
 ORDER BY 1;
SELECT has_schema_privilege('buzz_relay', 'buzz', 'CREATE') AS relay_can_create_in_buzz;
-- Every table belongs to the NOLOGIN, NOBYPASSRLS owner; tenant tables force RLS.
SELECT c.relname, pg_get_userbyid(c.relowner) AS owner, c.relrowsecurity AS rls, c.relforcerowsecurity AS forced
  FROM pg_class c WHERE c.relnamespace = 'buzz'::regnamespace AND c.relkind = 'r' ORDER BY 1;
SELECT rolname, rolsuper, rolbypassrls, rolcanlogin FROM pg_roles WHERE rolname IN ('buzz_owner', 'buzz_admin') ORDER BY 1;
SELECT tablename, policyname, permissive, cmd, qual, with_check FROM pg_policies WHERE schemaname = 'buzz' ORDER BY 1, 2;
-- Functions are STABLE readers and SECURITY DEFINER only where they must be.
SELECT p.oid::regprocedure AS fn, p.provolatile, p.prosecdef, p.proparallel, p.proconfig
  FROM pg_proc p WHERE p.pronamespace = 'buzz'::regnamespace ORDER BY p.oid::regprocedure::text;
SELECT c.slug, m.pubkey, m.role FROM buzz.members m JOIN buzz.communities c ON c.id = m.community_id ORDER BY 1, 2;
