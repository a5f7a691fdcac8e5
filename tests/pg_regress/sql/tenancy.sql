-- The relay's own tables once adopted (suite adopt): the relay role sees and writes only its
-- own community in every table; the fences named below are each removed by a mutant in
-- scripts/mutants, which turns this suite red.
\getenv abs_srcdir PG_ABS_SRCDIR
\i :abs_srcdir/include/base.psql
\i :abs_srcdir/include/adopted.psql
\set VERBOSITY terse
SELECT id AS alpha_id FROM buzz.communities WHERE slug = 'alpha' \gset
SELECT id AS beta_id FROM buzz.communities WHERE slug = 'beta' \gset
\i :abs_srcdir/include/logins.psql
-- (logins.psql leaves the session as buzz_relay)

-- One row per table in each community, written by the relay role's own SQL. Repeated keys
-- (same pubkey, NIP-05, channel name, token hash, event id, invite code) coexist: a global
-- UNIQUE would refuse beta's copies. Mutant "unique indexes of adopted tables stay global (M3)".
BEGIN;
SELECT buzz.enter('a.example', :'alice_token');
\i :abs_srcdir/include/relay_rows.psql
COMMIT;
BEGIN;
SELECT buzz.enter('b.example', :'bob_token');
\i :abs_srcdir/include/relay_rows.psql
COMMIT;

-- Each community sees exactly its own row in every table (I1, I4).
BEGIN;
SELECT buzz.enter('a.example');
SELECT string_agg(format('SELECT %L AS tbl, count(*) AS visible,
                          count(*) FILTER (WHERE community_id = buzz.current_community()) AS own FROM %s', t, t),
                  ' UNION ALL ')
  FROM unnest(:'relay_tenant_tables'::text[]) t \gexec
ROLLBACK;
BEGIN;
SELECT buzz.enter('b.example');
SELECT string_agg(format('SELECT %L AS tbl, count(*) AS visible FROM %s', t, t), ' UNION ALL ')
  FROM unnest(:'relay_tenant_tables'::text[]) t \gexec
ROLLBACK;
-- Without a context: nothing, in every table (I4).
SELECT string_agg(format('SELECT %L AS tbl, count(*) AS no_context FROM %s', t, t), ' UNION ALL ')
  FROM unnest(:'relay_tenant_tables'::text[]) t \gexec

-- Writes across the fence: alpha's relay cannot touch beta's rows, name beta's community,
-- or move a row (UPDATE/DELETE affect nothing; INSERT/UPDATE of community_id refused).
BEGIN;
SELECT buzz.enter('a.example', :'alice_token');
UPDATE relay.channels SET name = 'hijacked' WHERE community_id = :'beta_id';
DELETE FROM relay.users WHERE community_id = :'beta_id';
INSERT INTO relay.channels (community_id, name) VALUES (:'beta_id', 'planted');
ROLLBACK;
BEGIN;
SELECT buzz.enter('a.example', :'alice_token');
UPDATE relay.channels SET community_id = :'beta_id';
ROLLBACK;
-- Anonymous contexts read but do not write (DESIGN §12.2).
BEGIN;
SELECT buzz.enter('a.example');
SELECT count(*) AS anonymous_reads FROM relay.channels;
\set VERBOSITY sqlstate
INSERT INTO relay.channels (name) VALUES ('anonymous');
\set VERBOSITY terse
ROLLBACK;

-- The relay's own permissive policy (open channels visible) cannot widen across
-- communities: the generated RESTRICTIVE fence bounds it. Mutant "adopted tables get no restrictive policy (I4)".
RESET ROLE;
CREATE POLICY open_channels ON relay.channels FOR SELECT USING (visibility = 'open');
SET ROLE buzz_relay;
BEGIN;
SELECT buzz.enter('a.example');
SELECT count(*) AS channels_visible_to_alpha FROM relay.channels;
ROLLBACK;
RESET ROLE;
DROP POLICY open_channels ON relay.channels;

-- The tables' owner is fenced too (FORCE): without a context it sees nothing and writes
-- nothing. Mutant "adopted tables not FORCEd (owner leak)".
SET ROLE relay_migrator;
SELECT count(*) AS owner_sees_without_context FROM relay.users;
WITH u AS (UPDATE relay.invites SET uses = uses + 1 RETURNING 1) SELECT count(*) AS owner_updated FROM u;
RESET ROLE;

-- community_id never changes, even for a superuser (who bypasses RLS), and a superuser in a
-- context cannot insert into another community. Mutant "community_id of adopted tables updatable
-- (re-tenanting)".
BEGIN;
SELECT buzz.enter('a.example');
UPDATE relay.users SET community_id = :'beta_id';
ROLLBACK;
BEGIN;
SELECT buzz.enter('a.example');
INSERT INTO relay.kind_registry VALUES (1, 'note');
INSERT INTO relay.thread_metadata (community_id, root_event_id) VALUES (:'beta_id', 'x');
ROLLBACK;
SELECT community_id = :'alpha_id' AS alpha, count(*) FROM relay.users GROUP BY 1 ORDER BY 1;

-- Partitions created or attached later are fenced like their parent (event trigger).
SET ROLE relay_migrator;
CREATE TABLE relay.events_2025_03 PARTITION OF relay.events
    FOR VALUES FROM ('2025-03-01 00:00:00+00') TO ('2025-04-01 00:00:00+00');
CREATE TABLE relay.events_2025_04 (LIKE relay.events INCLUDING DEFAULTS);
ALTER TABLE relay.events ATTACH PARTITION relay.events_2025_04
    FOR VALUES FROM ('2025-04-01 00:00:00+00') TO ('2025-05-01 00:00:00+00');
GRANT SELECT ON relay.events_2025_03, relay.events_2025_04 TO buzz_relay;
RESET ROLE;
SELECT c.oid::regclass AS partition, c.relrowsecurity AS rls, c.relforcerowsecurity AS forced,
       array(SELECT polname FROM pg_policy WHERE polrelid = c.oid ORDER BY 1) AS policies,
       EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = c.oid AND tgname = 'buzz_tenant_guard') AS guarded
  FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
 WHERE i.inhparent = 'relay.events'::regclass ORDER BY c.relname;
SET ROLE buzz_relay;
BEGIN;
SELECT buzz.enter('b.example', :'bob_token');
INSERT INTO relay.events (id, pubkey, kind, sig, created_at) VALUES ('march', 'p', 1, 's', '2025-03-02'),
    ('april', 'p', 1, 's', '2025-04-02');
COMMIT;
BEGIN;
SELECT buzz.enter('a.example');
SELECT count(*) AS alpha_sees_in_new_partitions FROM relay.events_2025_03;
SELECT count(*) AS alpha_sees_in_attached FROM relay.events_2025_04;
ROLLBACK;
BEGIN;
SELECT buzz.enter('b.example');
SELECT id FROM relay.events WHERE created_at >= '2025-03-01' ORDER BY id;
ROLLBACK;
RESET ROLE;
SELECT buzz.tenancy_plan('relay.events') AS events_plan_after_new_partitions;
