-- The deployment gate against deployments an operator can build with ordinary GRANT / ALTER /
-- CREATE (DESIGN §12.4, A-RLS-1/2/4, §12.12): each block below leaks tenant data, and the
-- gate fails it. Where it helps, the block first shows the leak as the relay role, then the
-- gate's new failures (findings beyond those of the deployment adopt.sql left, which conforms).
-- Every block is one rolled-back transaction. Each fence is removed by a mutant in
-- scripts/mutants that turns this suite red.
\getenv abs_srcdir PG_ABS_SRCDIR
\i :abs_srcdir/include/base.psql
\i :abs_srcdir/include/adopted.psql
\set VERBOSITY terse
\set ECHO none
\i :abs_srcdir/include/logins.psql
\set ECHO all
RESET ROLE;
SELECT buzz.assert_conformance('buzz_relay') AS conforms_before;
CREATE TEMP TABLE baseline AS SELECT check_id, object, status, detail FROM buzz.conformance('buzz_relay');
-- New failures (and warnings) since the baseline.
\set new_findings 'SELECT check_id, object, status, detail FROM buzz.conformance(''buzz_relay'') WHERE status <> ''pass'' EXCEPT SELECT * FROM baseline ORDER BY 1, 2, 4'
-- Rows of every community in relay.users, for the leak demonstrations.
SET ROLE buzz_relay;
BEGIN;
SELECT buzz.enter('a.example', :'alice_token') \gset
INSERT INTO relay.users (pubkey) VALUES ('alpha-user');
COMMIT;
BEGIN;
SELECT buzz.enter('b.example', :'bob_token') \gset
INSERT INTO relay.users (pubkey) VALUES ('beta-user');
COMMIT;
RESET ROLE;

-- 1. Roles the relay can become. Any membership lets a PostgreSQL 15 role SET ROLE, inherited
-- or not, so every check asks about every role the relay can reach, and every privilege they
-- hold (mutant "the gate judges only the relay role itself").
BEGIN;
CREATE ROLE esc_bypass BYPASSRLS;
GRANT USAGE ON SCHEMA relay TO esc_bypass;
GRANT SELECT ON relay.users TO esc_bypass;
GRANT esc_bypass TO buzz_relay;
SET ROLE buzz_relay;
SELECT buzz.enter('a.example');
SET LOCAL ROLE esc_bypass;                            -- the leak: every community's rows
SELECT pubkey FROM relay.users WHERE pubkey IN ('alpha-user', 'beta-user') ORDER BY 1;
RESET ROLE;
:new_findings;
ROLLBACK;
BEGIN;
CREATE ROLE esc_super SUPERUSER;
CREATE ROLE esc_createrole CREATEROLE;
CREATE ROLE esc_replication REPLICATION;
CREATE ROLE esc_middle NOINHERIT;                     -- reached through a chain
GRANT esc_super, esc_createrole TO esc_middle;
GRANT esc_middle, esc_replication TO buzz_relay;
ALTER ROLE buzz_relay NOINHERIT;
SELECT check_id, detail FROM buzz.conformance('buzz_relay') WHERE check_id = 'A-RLS-2' ORDER BY 2;
ROLLBACK;
BEGIN;
CREATE ROLE esc_reader IN ROLE pg_read_all_data;
CREATE ROLE esc_ops IN ROLE buzz_admin;
CREATE ROLE esc_truncator;
GRANT TRUNCATE, REFERENCES, TRIGGER ON relay.users TO esc_truncator;
ALTER ROLE buzz_relay NOINHERIT;                      -- privileges it only gets through SET ROLE
GRANT esc_reader, esc_ops, esc_truncator TO buzz_relay;
:new_findings;
ROLLBACK;
-- setup_relay_role judges the same set (fences.sql has the direct cases).
BEGIN;
CREATE ROLE esc_super SUPERUSER;
CREATE ROLE esc_creator;
SELECT format('GRANT CREATE ON DATABASE %I TO esc_creator', current_database()) \gexec
CREATE ROLE relay_via_super NOINHERIT IN ROLE esc_super;
CREATE ROLE relay_via_creator NOINHERIT IN ROLE esc_creator;
CREATE ROLE relay_via_reader NOINHERIT IN ROLE pg_read_all_data;
SAVEPOINT s;
SELECT buzz.setup_relay_role('relay_via_super');
ROLLBACK TO SAVEPOINT s;
SELECT buzz.setup_relay_role('relay_via_creator');
ROLLBACK TO SAVEPOINT s;
SELECT buzz.setup_relay_role('relay_via_reader');
ROLLBACK;

-- 2. Policies apply by inherited privileges, as PostgreSQL applies them: a NOINHERIT relay
-- does not use its groups' privileges, so a fence TO the group does not bind it, and a
-- permissive USING (true) opens every row (mutant "fence applicability by membership").
BEGIN;
CREATE ROLE fence_group;
GRANT fence_group TO buzz_relay;
ALTER ROLE buzz_relay NOINHERIT;
ALTER POLICY buzz_fence ON relay.users TO fence_group;
CREATE POLICY everyone ON relay.users FOR SELECT USING (true);
SET ROLE buzz_relay;
SELECT buzz.enter('a.example');
SELECT pubkey FROM relay.users WHERE pubkey IN ('alpha-user', 'beta-user') ORDER BY 1;
RESET ROLE;
:new_findings;
ROLLBACK;
-- ... and a fence TO the relay role does not bind a role the relay can SET ROLE to.
BEGIN;
CREATE ROLE channel_reader;
GRANT SELECT ON relay.channels TO channel_reader;
GRANT channel_reader TO buzz_relay;
ALTER POLICY buzz_fence ON relay.channels TO buzz_relay;
SELECT check_id, object, detail FROM buzz.conformance('buzz_relay') WHERE check_id = 'A-RLS-1' AND status = 'fail';
ROLLBACK;

-- 3. Rules run with the rights of the owner of their table. A superuser-owned table whose rule
-- reads a tenant table reads every community; a rule owned by an operator reads the
-- extension's directory (mutant "rules are not inspected").
BEGIN;
CREATE TABLE relay.peek (x int);
CREATE RULE peek AS ON INSERT TO relay.peek DO INSTEAD SELECT pubkey FROM relay.users WHERE pubkey IN ('alpha-user', 'beta-user');
GRANT INSERT ON relay.peek TO buzz_relay;
SELECT buzz.declare_global('relay.peek', 'a careless helper') <> '' AS declared;
SET ROLE buzz_relay;
SELECT buzz.enter('a.example');
INSERT INTO relay.peek VALUES (1);
RESET ROLE;
CREATE ROLE directory_reader IN ROLE buzz_admin;
CREATE TABLE relay.directory (x int);
ALTER TABLE relay.directory OWNER TO directory_reader;
CREATE RULE slugs AS ON UPDATE TO relay.directory DO INSTEAD SELECT slug FROM buzz.communities;
:new_findings;
ROLLBACK;
-- A tenant table (or a view over one) owned by a superuser or BYPASSRLS role: FORCE does not
-- bind such an owner (mutant "tenant tables owned by a superuser pass").
BEGIN;
ALTER TABLE relay.invites OWNER TO postgres;
CREATE ROLE bypass_owner BYPASSRLS;
CREATE VIEW relay.invite_codes WITH (security_invoker = true) AS SELECT code FROM relay.invites;
ALTER VIEW relay.invite_codes OWNER TO bypass_owner;
:new_findings;
ROLLBACK;

-- 4. A materialized view reading tenant rows through a function: the catalogs record no
-- dependency, and REFRESH ran as its owner. Any materialized view the relay can read fails
-- unless the operator declares it (mutant "readable materialized views pass").
BEGIN;
CREATE FUNCTION relay.all_pubkeys() RETURNS SETOF text LANGUAGE sql AS 'SELECT pubkey FROM relay.users';
CREATE MATERIALIZED VIEW relay.pubkey_cache AS SELECT * FROM relay.all_pubkeys() p WHERE p IN ('alpha-user', 'beta-user');
GRANT SELECT ON relay.pubkey_cache TO buzz_relay;
SET ROLE buzz_relay;
SELECT buzz.enter('a.example');
SELECT * FROM relay.pubkey_cache ORDER BY 1;
RESET ROLE;
:new_findings;
SELECT buzz.declare_global('relay.pubkey_cache', 'the operator vouches for it') <> '' AS declared;
:new_findings;
ROLLBACK;

-- 5. SECURITY DEFINER and LEAKPROOF functions are exempt only if they shipped with
-- PostgreSQL (by oid), never because of the schema they live in (mutant "definers exempt by
-- schema name").
BEGIN;
CREATE FUNCTION pg_catalog.count_everyone() RETURNS bigint LANGUAGE sql SECURITY DEFINER
    AS 'SELECT count(*) FROM relay.users';
CREATE FUNCTION pg_catalog.peek_eq(text, text) RETURNS boolean LANGUAGE sql IMMUTABLE LEAKPROOF AS 'SELECT $1 = $2';
:new_findings;
ROLLBACK;

-- 6. Directory reads: the relay holds no privilege on the extension's tables, whatever the
-- path, and cannot read a declared-global table that carries community_id (mutant "the relay
-- may read the extension's tables").
BEGIN;
GRANT SELECT ON buzz.community_hosts TO buzz_relay;
SET ROLE buzz_relay;
SELECT count(*) > 1 AS sees_every_host FROM buzz.community_hosts;
RESET ROLE;
CREATE TABLE relay.rate_violations (community_id uuid, what text);
SELECT buzz.declare_global('relay.rate_violations', 'operator log') <> '' AS declared;
GRANT SELECT ON relay.rate_violations TO PUBLIC;
:new_findings;
ROLLBACK;

-- 7. The sanitizer: no role the relay can act as may SET (or ALTER SYSTEM) a setting that
-- hides errors from the hook or loads code into its sessions (mutant "SET privilege on
-- log_min_messages passes").
BEGIN;
GRANT SET ON PARAMETER log_min_messages TO buzz_relay;
CREATE ROLE preloader;
GRANT SET ON PARAMETER session_preload_libraries TO preloader;
GRANT ALTER SYSTEM ON PARAMETER auto_explain.log_analyze TO preloader;
GRANT preloader TO buzz_relay;
:new_findings;
ROLLBACK;
-- With that privilege the relay could hide an error from the hook; the gate fails it, and a
-- community transaction starts with errors logged anyway (enter pins log_min_messages).
BEGIN;
GRANT SET ON PARAMETER log_min_messages TO buzz_relay;
SET ROLE buzz_relay;
SET LOCAL log_min_messages = fatal;
SELECT buzz.enter('a.example');
SHOW log_min_messages;
ROLLBACK;

-- 8. What the attack on these fixes found (each failed the gate before its check existed).
-- An inheritance parent returns its children's rows under its own policies: a tenant table
-- may not inherit from one that is not tenant (mutant "inheritance parents of tenant tables
-- pass").
BEGIN;
SET ROLE relay_migrator;
CREATE TABLE relay.base_notes (id uuid NOT NULL DEFAULT gen_random_uuid(), body text);
SELECT buzz.declare_global('relay.base_notes', 'note templates') <> '' AS declared;
CREATE TABLE relay.notes (id uuid NOT NULL DEFAULT gen_random_uuid(), body text,
                          community_id uuid NOT NULL DEFAULT buzz.current_community());
SELECT buzz.enable_tenancy('relay.notes') <> '' AS adopted;
ALTER TABLE relay.notes INHERIT relay.base_notes;    -- after adoption
SAVEPOINT s;
SELECT buzz.enable_tenancy('relay.notes');           -- the generator refuses this shape
ROLLBACK TO SAVEPOINT s;
SELECT buzz.declare_global('relay.base_notes', 'note templates');
ROLLBACK TO SAVEPOINT s;
RESET ROLE;
INSERT INTO relay.notes (community_id, body) SELECT id, 'note of ' || slug FROM buzz.communities WHERE slug IN ('alpha', 'beta');
GRANT SELECT ON relay.base_notes, relay.notes TO buzz_relay;
SET ROLE buzz_relay;
SELECT buzz.enter('a.example');
SELECT body FROM relay.base_notes ORDER BY 1;
RESET ROLE;
:new_findings;
ROLLBACK;
-- A schema the relay owns (its CREATE revoked): an owner may drop what is in it and grant
-- itself CREATE again; so may the owner of a function or type (mutant "objects owned by the
-- relay pass").
BEGIN;
ALTER SCHEMA relay OWNER TO buzz_relay;
REVOKE CREATE ON SCHEMA relay FROM buzz_relay;
CREATE FUNCTION public.relay_helper() RETURNS int LANGUAGE sql AS 'SELECT 1';
ALTER FUNCTION public.relay_helper() OWNER TO buzz_relay;
:new_findings;
ROLLBACK;
-- Functions PostgreSQL reserves to superusers: pg_read_binary_file reads the heap file of any
-- table (mutant "superuser-reserved functions pass").
BEGIN;
GRANT EXECUTE ON FUNCTION pg_read_binary_file(text) TO buzz_relay;
SET ROLE buzz_relay;
SELECT length(pg_read_binary_file(pg_relation_filepath('relay.users'))) > 0 AS reads_the_heap_file;
RESET ROLE;
:new_findings;
ROLLBACK;
-- Replica mode silences the guard triggers and foreign keys; a role that enters any
-- community by id is a worker, not a relay; a rule whose owner no fence binds.
BEGIN;
GRANT SET ON PARAMETER session_replication_role TO buzz_relay;
CREATE ROLE sweeper;
SELECT buzz.setup_worker_role('sweeper');
GRANT sweeper TO buzz_relay;
ALTER POLICY buzz_fence ON relay.users TO buzz_relay;
CREATE TABLE relay.peek (x int);
ALTER TABLE relay.peek OWNER TO relay_migrator;
CREATE RULE peek AS ON INSERT TO relay.peek DO INSTEAD SELECT pubkey FROM relay.users;
:new_findings;
ROLLBACK;

-- The library's hooks must be in place from a session's first statement: the relay role's
-- sessions preload it (mutation "the gate does not require the library preloaded").
BEGIN;
ALTER ROLE buzz_relay RESET session_preload_libraries;
:new_findings;
ROLLBACK;
-- The relay may run the relay API and nothing else of the extension (mutation "functions
-- outside the relay API pass"); it may not signal other roles' backends (one relay could
-- terminate every other pool's connections; mutation "pg_signal_backend passes").
BEGIN;
GRANT EXECUTE ON FUNCTION buzz.purge_http_seen(), buzz.explain_req(jsonb) TO buzz_relay;
GRANT pg_signal_backend TO buzz_relay;
:new_findings;
ROLLBACK;
SELECT buzz.assert_conformance('buzz_relay') AS conforms_after;
SET ROLE buzz_relay;
BEGIN;
SELECT buzz.enter('a.example', :'alice_token') \gset
DELETE FROM relay.users WHERE pubkey = 'alpha-user';
COMMIT;
BEGIN;
SELECT buzz.enter('b.example', :'bob_token') \gset
DELETE FROM relay.users WHERE pubkey = 'beta-user';
COMMIT;
RESET ROLE;
