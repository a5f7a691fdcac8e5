-- Adopting a production relay with zero hand edits (issue 10): the relay of
-- tests/fixture/production_relay.sql — its own community registry, community_id already on its
-- tenant tables, its own write fences reading buzz.* application settings, background
-- workers, relay-written logs, an operator table referencing a tenant table, a partitioned
-- log numbered by an identity — adopted by running the recipe blocks of docs/operations.md
-- verbatim (scripts/test extracts them), in a database of its own (relaydb). Then the gate,
-- and the isolation smoke: the same keys in two communities, nothing without a context,
-- cross-community UPDATE/DELETE touching nothing, a worker sweep confined to each community,
-- the relay refused enter_community, and the relay's own settings working.
\getenv abs_srcdir PG_ABS_SRCDIR
\i :abs_srcdir/include/base.psql
\set VERBOSITY terse
SELECT current_database() AS regress_db \gset
\set alpha '00000000-0000-4000-8000-00000000000a'
\set beta '00000000-0000-4000-8000-00000000000b'
\set gamma '00000000-0000-4000-8000-00000000000c'
CREATE DATABASE relaydb;
\c relaydb
\set VERBOSITY terse

-- The relay as it stands before adoption, with its data (three communities, the same keys in
-- several of them).
CREATE ROLE app_migrator;
GRANT CREATE ON DATABASE relaydb TO app_migrator;
SET ROLE app_migrator;
\i :abs_srcdir/fixture/production_relay.sql
INSERT INTO app.communities (id, slug, name) VALUES (:'alpha', 'alpha', 'Alpha'), (:'beta', 'beta', 'Beta'), (:'gamma', 'gamma', 'Gamma');
INSERT INTO app.community_domains VALUES ('a.example', :'alpha'), ('b.example', :'beta'), ('g.example', :'gamma');
INSERT INTO app.users (community_id, pubkey, nip05) VALUES
    (:'alpha', :'alice', 'alice@a.example'), (:'alpha', :'carol', NULL),
    (:'beta', :'alice', 'alice@b.example'), (:'beta', :'bob', NULL), (:'gamma', :'dave', NULL);
INSERT INTO app.channels (community_id, name) VALUES (:'alpha', 'general'), (:'beta', 'general'), (:'gamma', 'general');
INSERT INTO app.reports VALUES (:'alpha', 1, :'carol', 'm1', 'spam'), (:'beta', 1, :'bob', 'm1', 'spam');
INSERT INTO app.messages (community_id, id, pubkey, kind, content, created_at) VALUES
    (:'alpha', 'm1', :'alice', 1, 'hello from alpha', '2025-06-01'), (:'beta', 'm1', :'alice', 1, 'hello from beta', '2025-06-01');
INSERT INTO app.scheduled_fires (community_id, due_at, payload) VALUES
    (:'alpha', now() - interval '1 hour', 'alpha reminder'), (:'beta', now() - interval '1 hour', 'beta reminder'),
    (:'gamma', now() - interval '1 hour', 'gamma reminder'), (:'alpha', now() + interval '1 day', 'alpha tomorrow');
INSERT INTO app.push_queue (community_id, device, body) VALUES (:'alpha', 'd1', 'alpha push'), (:'beta', 'd2', 'beta push');
RESET ROLE;
REVOKE CREATE ON DATABASE relaydb FROM app_migrator;

-- 1. Install, roles, defaults.
\i :abs_srcdir/recipe_install.sql

-- A migration role without CREATE on a table's schema learns which privilege it lacks before
-- anything runs (PostgreSQL 15 grants no CREATE on public).
CREATE TABLE public.legacy (community_id uuid NOT NULL, code text UNIQUE);
ALTER TABLE public.legacy OWNER TO app_migrator;
SET ROLE app_migrator;
\set VERBOSITY default
SELECT buzz.enable_tenancy('public.legacy', rewrite_keys => true);
\set VERBOSITY terse
RESET ROLE;
DROP TABLE public.legacy;

-- 2. The relay's registry: ids, hosts, signing keys and members imported; new ones mirrored.
SET ROLE app_migrator;
\i :abs_srcdir/recipe_registry.sql
RESET ROLE;
SELECT c.slug, c.id = a.id AS same_id, string_agg(h.host, ',' ORDER BY h.host) AS hosts
  FROM buzz.communities c JOIN app.communities a ON a.slug = c.slug
  LEFT JOIN buzz.community_hosts h ON h.community_id = c.id GROUP BY 1, 2 ORDER BY 1;
-- An id already used, and the nil uuid, are refused.
SELECT buzz.create_community('alpha-two', 'Alpha two', id => :'alpha');
SELECT buzz.create_community('nil', 'Nil', id => '00000000-0000-0000-0000-000000000000');

-- 3. Adopt and declare (the DDL each call ran is not shown), 4. grants, 5. the gate.
SET ROLE app_migrator;
\o /dev/null
\i :abs_srcdir/recipe_adopt.sql
\o
\i :abs_srcdir/recipe_grants.sql
RESET ROLE;
\i :abs_srcdir/recipe_gate.sql
SELECT tbl, mode, anonymous_writes, worker_writes FROM buzz.tenancy_tables ORDER BY tbl::text;
SELECT check_id, object, status, detail FROM buzz.conformance('relay') WHERE status <> 'pass';

-- A community added later is created once, in the relay's registry.
INSERT INTO app.communities (id, slug, name) VALUES ('00000000-0000-4000-8000-00000000000d', 'delta', 'Delta');
INSERT INTO app.community_domains VALUES ('d.example', '00000000-0000-4000-8000-00000000000d');
SELECT slug, (SELECT host FROM buzz.community_hosts h WHERE h.community_id = c.id) AS host FROM buzz.communities c WHERE slug = 'delta';

-- The isolation smoke, as the relay role.
SET ROLE relay;
\set ECHO none
\set host a.example
\set sk :alice_sk
\i :abs_srcdir/include/login.psql
\set alice_token :token
\set host b.example
\i :abs_srcdir/include/login.psql
\set alice_beta_token :token
\set sk :bob_sk
\i :abs_srcdir/include/login.psql
\set bob_token :token
\set ECHO all
-- The same keys in two communities: each sees exactly its own row.
BEGIN;
SELECT buzz.enter('a.example', :'alice_token');
SELECT pubkey = :'alice' AS alice, nip05 FROM app.users WHERE pubkey = :'alice';
SELECT name FROM app.channels;
SELECT id, content FROM app.messages;
SELECT id, reason FROM app.reports;
COMMIT;
BEGIN;
SELECT buzz.enter('b.example', :'bob_token');
SELECT pubkey = :'alice' AS alice, nip05 FROM app.users WHERE pubkey = :'alice';
SELECT id, content FROM app.messages;
COMMIT;
-- Nothing without a context.
SELECT (SELECT count(*) FROM app.users) + (SELECT count(*) FROM app.channels) + (SELECT count(*) FROM app.messages)
     + (SELECT count(*) FROM app.reports) + (SELECT count(*) FROM app.scheduled_fires) + (SELECT count(*) FROM app.push_queue)
     + (SELECT count(*) FROM app.delivery_log) AS rows_without_context;
-- Cross-community UPDATE and DELETE touch nothing.
BEGIN;
SELECT buzz.enter('a.example', :'alice_token');
UPDATE app.channels SET name = 'taken' WHERE community_id = :'beta';
DELETE FROM app.messages WHERE community_id = :'beta';
DELETE FROM app.reports WHERE community_id <> :'alpha';
COMMIT;
-- The relay's own write fences keep their buzz.* settings.
BEGIN;
SELECT buzz.enter('a.example', :'alice_token');
SET LOCAL buzz.created_at_floor = '1767225600';                       -- 2026-01-01
SET LOCAL buzz.serving_community = :'alpha';
INSERT INTO app.messages (id, pubkey, kind, content, created_at) VALUES ('m2', :'alice', 1, 'after the floor', '2026-03-01');
SAVEPOINT s;
\set VERBOSITY sqlstate
INSERT INTO app.messages (id, pubkey, kind, content, created_at) VALUES ('m3', :'alice', 1, 'before the floor', '2025-03-01');
\set VERBOSITY terse
ROLLBACK TO SAVEPOINT s;
SELECT current_setting('buzz.created_at_floor') AS floor, app.serving_write_community() = :'alpha' AS serving_alpha;
COMMIT;
-- Per-community ids: each community's deliveries count from 1.
BEGIN;
SELECT buzz.enter('a.example', :'alice_token');
INSERT INTO app.delivery_log (subscriber) VALUES ('s1'), ('s2');
SELECT id, subscriber FROM app.delivery_log ORDER BY id;
COMMIT;
BEGIN;
SELECT buzz.enter('b.example', :'bob_token');
INSERT INTO app.delivery_log (subscriber) VALUES ('s3');
SELECT id, subscriber FROM app.delivery_log ORDER BY id;
COMMIT;
-- Relay-written logs: rows of the entered community only, never read back.
BEGIN;
SELECT buzz.enter('a.example', :'alice_token');
INSERT INTO app.rate_limit_violations (pubkey) VALUES (:'alice');
SAVEPOINT s;
INSERT INTO app.feedback (community_id, body) VALUES (:'beta', 'filed under beta');
ROLLBACK TO SAVEPOINT s;
\set VERBOSITY sqlstate
SELECT count(*) FROM app.rate_limit_violations;
\set VERBOSITY terse
ROLLBACK TO SAVEPOINT s;
COMMIT;
INSERT INTO app.outbox (community_id, topic, payload) VALUES (:'beta', 'push', '{}');
-- The relay cannot enter a community by id.
SELECT buzz.enter_community(:'beta');

-- A background worker's sweep: one community per transaction, each sees and fires only its
-- own due jobs; it may write the queue that allows worker writes, not the other.
SET ROLE relay_worker;
SELECT slug FROM buzz.communities_for_worker() ORDER BY slug;
BEGIN;
SELECT buzz.enter_community(:'alpha');
UPDATE app.scheduled_fires SET fired_at = now() WHERE due_at <= now() AND fired_at IS NULL RETURNING payload;
SELECT body FROM app.push_queue;
UPDATE app.push_queue SET body = 'rewritten';
COMMIT;
BEGIN;
SELECT buzz.enter_community(:'beta');
UPDATE app.scheduled_fires SET fired_at = now() WHERE due_at <= now() AND fired_at IS NULL RETURNING payload;
SELECT buzz.enter_community(:'gamma');
ROLLBACK;
BEGIN;
SELECT buzz.enter_community(:'beta');
UPDATE app.scheduled_fires SET fired_at = now() WHERE due_at <= now() AND fired_at IS NULL RETURNING payload;
COMMIT;
BEGIN;
SELECT buzz.enter_community(:'gamma');
UPDATE app.scheduled_fires SET fired_at = now() WHERE due_at <= now() AND fired_at IS NULL RETURNING payload;
COMMIT;
SELECT count(*) AS worker_sees_without_a_context FROM app.scheduled_fires;
RESET ROLE;
SELECT c.slug, f.payload, f.fired_at IS NOT NULL AS fired
  FROM app.scheduled_fires f JOIN app.communities c ON c.id = f.community_id ORDER BY 1, 2;
SELECT body FROM app.push_queue ORDER BY 1;
-- Operators keep their table's foreign key into reports.
INSERT INTO app.admin_actions (report_community_id, report_id, action) VALUES (:'beta', 1, 'hide');
SELECT buzz.assert_conformance('relay') AS still_conforms;
-- What the gate fails in such a deployment: the relay reading a log, a log without its guard,
-- the relay reading the registries or an operator-only table, or able to enter by id.
BEGIN;
GRANT SELECT ON app.feedback TO relay;
ALTER TABLE app.outbox DISABLE TRIGGER buzz_log_guard;
GRANT SELECT ON app.communities, app.community_domains TO relay;
GRANT SELECT ON app.admin_actions TO relay;
GRANT EXECUTE ON FUNCTION buzz.enter_community(uuid) TO relay;
SELECT check_id, object, detail FROM buzz.conformance('relay') WHERE status = 'fail';
ROLLBACK;

-- What an outside attack on the adopted deployment found, each now closed.
-- (1) The library is preloaded for the relay role (the recipe sets it; SANITIZER fails
-- without, see gate.sql): a fresh backend refuses LOCK and EXPLAIN ANALYZE of shared tables
-- from its first statement, before any buzz function was called.
\c - relay
BEGIN;
LOCK TABLE app.users, app.messages IN ACCESS EXCLUSIVE MODE;
ROLLBACK;
\c - relay
EXPLAIN (ANALYZE, COSTS off, TIMING off, SUMMARY off) SELECT 1 FROM app.users WHERE pubkey > 'a';
\c - postgres
\set VERBOSITY terse
-- ... and the relay cannot lift its own preload.
SET ROLE relay;
ALTER ROLE relay RESET session_preload_libraries;
RESET ROLE;
SELECT setconfig FROM pg_db_role_setting WHERE setrole = 'relay'::regrole;

-- (2) Relay-written logs keep their keys per community: INSERT ... ON CONFLICT needs only
-- INSERT, so a shared key would tell one community which keys the others wrote, and a shared
-- identity would let it squat their next ids. declare_log refuses such a log unless it makes
-- the keys composite and the numbers per community (mutation "declare_log accepts shared
-- log keys"); the gate fails one changed afterwards (mutation "log keys shared by every
-- community pass").
BEGIN;
CREATE TABLE app.probe_log (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                            community_id uuid NOT NULL REFERENCES app.communities (id), body text);
ALTER TABLE app.probe_log OWNER TO app_migrator;
SET ROLE app_migrator;
SAVEPOINT s;
SELECT buzz.declare_log('app.probe_log', 'probe');
ROLLBACK TO SAVEPOINT s;
SELECT buzz.declare_log('app.probe_log', 'probe', rewrite_keys => true);
ROLLBACK TO SAVEPOINT s;
SELECT buzz.declare_log('app.probe_log', 'probe', rewrite_keys => true, per_community_ids => true) <> '' AS declared;
RESET ROLE;
ROLLBACK;
BEGIN;
CREATE TABLE app.probe_log (community_id uuid NOT NULL REFERENCES app.communities (id), pubkey text UNIQUE);
ALTER TABLE app.probe_log OWNER TO app_migrator;
SET ROLE app_migrator;
SAVEPOINT s;
SELECT buzz.declare_log('app.probe_log', 'probe');
ROLLBACK TO SAVEPOINT s;
SELECT buzz.declare_log('app.probe_log', 'probe', rewrite_keys => true) <> '' AS declared;
RESET ROLE;
ROLLBACK;
BEGIN;
CREATE UNIQUE INDEX rate_limit_pubkey ON app.rate_limit_violations (pubkey);
ALTER TABLE app.feedback ADD COLUMN seq bigint GENERATED ALWAYS AS IDENTITY;
CREATE UNIQUE INDEX feedback_seq ON app.feedback (community_id, seq);
SELECT check_id, object, detail FROM buzz.conformance('relay') WHERE status = 'fail';
ROLLBACK;
-- With the recipe's keys, an id alpha writes does not exist for beta, and beta's own rows
-- are numbered by beta's counter.
SET ROLE relay;
BEGIN;
SELECT buzz.enter('a.example', :'alice_token');
INSERT INTO app.feedback (id, body) VALUES (7, 'alpha writes id 7') ON CONFLICT DO NOTHING;
COMMIT;
BEGIN;
SELECT buzz.enter('b.example', :'bob_token');
INSERT INTO app.feedback (id, body) VALUES (7, 'beta probes id 7') ON CONFLICT DO NOTHING;
INSERT INTO app.feedback (body) VALUES ('beta, numbered by its own counter');
COMMIT;
-- (8) Without a context, a row that needs a per-community number gets the catalog's answer
-- (mutation "per-community counters without a context raise raw errors").
INSERT INTO app.delivery_log (community_id, subscriber) VALUES (:'beta', 'x');
RESET ROLE;
SELECT c.slug, f.id, f.body FROM app.feedback f JOIN app.communities c ON c.id = f.community_id ORDER BY 1, 2;

-- (3) The registry mirror follows every change that routes traffic (mutation "the registry
-- mirror ignores host updates and deletes"): a host moved to another community, a host
-- deleted, a new signing key; TRUNCATE is refused.
BEGIN;
UPDATE app.community_domains SET community_id = :'beta' WHERE host = 'd.example';
DELETE FROM app.community_domains WHERE host = 'g.example';
UPDATE app.communities SET signing_pubkey = :'carol' WHERE slug = 'gamma';
SELECT h.host, c.slug FROM buzz.community_hosts h JOIN buzz.communities c ON c.id = h.community_id ORDER BY 1;
SELECT signing_pubkey = :'carol' AS gamma_key_mirrored FROM buzz.communities WHERE slug = 'gamma';
SAVEPOINT s;
TRUNCATE app.community_domains CASCADE;
ROLLBACK TO SAVEPOINT s;
UPDATE app.communities SET slug = 'gamma-two' WHERE slug = 'gamma';
ROLLBACK;

-- (4) What is derived from a table the relay may not read is not readable either: a view
-- over the registry (through another view), a sequence numbering a log; nor can it set a
-- sequence that numbers a tenant table (mutations "views over the registry pass", "sequences
-- of logs pass"). (6) An operator-only table's foreign key may not act on the relay's
-- deletes (mutation "operator-only cascades pass"); a plain one is reported (see above).
BEGIN;
CREATE VIEW app.community_names AS SELECT id, slug FROM app.communities;
CREATE VIEW app.community_names_again AS SELECT slug FROM app.community_names;
GRANT SELECT ON app.community_names_again TO relay;
ALTER TABLE app.outbox ADD COLUMN n bigserial;
GRANT USAGE ON SEQUENCE app.outbox_n_seq TO relay;
ALTER TABLE app.reactions ADD COLUMN n bigserial;
GRANT UPDATE ON SEQUENCE app.reactions_n_seq TO relay;
ALTER TABLE app.admin_actions DROP CONSTRAINT admin_actions_report_community_id_report_id_fkey,
    ADD FOREIGN KEY (report_community_id, report_id) REFERENCES app.reports (community_id, id) ON DELETE CASCADE;
SELECT check_id, object, detail FROM buzz.conformance('relay') WHERE status = 'fail';
ROLLBACK;

-- (5) The worker role has a gate of its own (the recipe runs it): judged like a relay, except
-- that it may enter communities by id (mutation "workers judged without an API allowlist").
BEGIN;
GRANT SELECT ON app.admin_actions, app.feedback TO relay_worker;
GRANT EXECUTE ON FUNCTION buzz.enter(text) TO relay_worker;
SELECT check_id, object, detail FROM buzz.conformance('relay_worker', 'worker') WHERE status = 'fail';
ROLLBACK;
SELECT count(*) AS worker_judged_as_relay_fails FROM buzz.conformance('relay_worker') WHERE status = 'fail';
SELECT buzz.conformance('relay', 'janitor');

-- A further attack on those fixes found more ways around the gate, each now failed:
-- a login role that can SET ROLE relay without preloading the library (a pooler's login role;
-- mutation "login members of the relay role need no preload") ...
BEGIN;
CREATE ROLE relay_pool LOGIN;
GRANT relay TO relay_pool;
SELECT check_id, object, detail FROM buzz.conformance('relay') WHERE status = 'fail';
ALTER ROLE relay_pool SET session_preload_libraries = 'buzz_tenancy';
SELECT count(*) AS failures_with_its_preload FROM buzz.conformance('relay') WHERE status = 'fail';
ROLLBACK;
-- ... an exclusion constraint on a log (mutation "log exclusion constraints pass"), the
-- registry read through a parent table or by a rule with its owner's rights (mutation
-- "registries are not protected"), a global table keyed by community under another column
-- name, a foreign key from a tenant table into the registry by slug (an oracle of its values;
-- mutation "foreign keys into hidden tables only warn"), and a sequence that numbers no tenant
-- table (mutation "sequences of non-tenant tables pass").
BEGIN;
ALTER TABLE app.rate_limit_violations ADD CONSTRAINT probe_excl EXCLUDE USING btree (pubkey WITH =);
CREATE TABLE app.named_things (id uuid, slug text, name text, signing_pubkey text, created_at timestamptz);
ALTER TABLE app.communities INHERIT app.named_things;
SELECT buzz.declare_global('app.named_things', 'probe') <> '' AS declared;
GRANT SELECT ON app.named_things TO relay;
CREATE RULE probe_rule AS ON INSERT TO app.reactions DO ALSO
    UPDATE app.users u SET nip05 = (SELECT string_agg(slug, ',') FROM app.communities) WHERE u.pubkey = NEW.pubkey;
CREATE TABLE app.subscriptions (community uuid PRIMARY KEY REFERENCES app.communities (id), billing_email text);
SELECT buzz.declare_global('app.subscriptions', 'probe') <> '' AS declared;
GRANT SELECT ON app.subscriptions TO relay;
ALTER TABLE app.users ADD COLUMN home text REFERENCES app.communities (slug);
CREATE SEQUENCE app.outbox_seq;
GRANT USAGE ON SEQUENCE app.outbox_seq TO relay;
SELECT check_id, object, detail FROM buzz.conformance('relay') WHERE status = 'fail';
ROLLBACK;
-- The fifth attack found: per-relation statistics counters and sizes count rows (and, on an
-- index not led by community_id, matching keys) of every community, and pg_notify reaches
-- every listener: the recipe revokes them, and the gate fails a relay that can still execute
-- one (mutation "statistics counters executable by the relay"); a foreign table (a loopback
-- server reads every community), USAGE on a foreign server and user mappings for PUBLIC
-- (mutations "foreign tables the relay reads pass", "foreign servers pass", "user mappings
-- for PUBLIC pass"); a login role with CREATEROLE, which can grant itself the relay role
-- (mutation "CREATEROLE login roles need no preload").
BEGIN;
GRANT EXECUTE ON FUNCTION pg_stat_get_xact_tuples_returned(oid), pg_relation_size(regclass), pg_notify(text, text) TO relay;
CREATE FOREIGN DATA WRAPPER probe_fdw;
CREATE SERVER probe_server FOREIGN DATA WRAPPER probe_fdw;
CREATE USER MAPPING FOR PUBLIC SERVER probe_server;
GRANT USAGE ON FOREIGN SERVER probe_server TO relay;
CREATE FOREIGN TABLE app.message_archive (community_id uuid, id text, content text) SERVER probe_server;
GRANT SELECT ON app.message_archive TO relay;
CREATE ROLE provisioner LOGIN CREATEROLE;
SELECT check_id, object, detail FROM buzz.conformance('relay') WHERE status = 'fail';
ROLLBACK;
-- The sixth attack found: tcn's C trigger sends a NOTIFY (with the row's key) that no hook
-- sees (mutation "C trigger functions pass"); a view over a foreign table reads every
-- community with its owner's user mapping (mutation "views over foreign tables pass"); a
-- login role that reaches CREATEROLE only through membership (mutation "CREATEROLE through
-- membership needs no preload"); the WAL position, database sizes and the lock table, and
-- contrib functions that read whole relations (pgrowlocks: executable by PUBLIC once
-- installed; pgstattuple: through pg_stat_scan_tables) (mutation "contrib relation readers
-- pass").
BEGIN;
CREATE EXTENSION tcn;
CREATE TRIGGER reports_changed AFTER INSERT ON app.reports FOR EACH ROW EXECUTE FUNCTION triggered_change_notification('changes');
CREATE FOREIGN DATA WRAPPER probe_fdw;
CREATE SERVER probe_server FOREIGN DATA WRAPPER probe_fdw;
CREATE FOREIGN TABLE app.report_archive (community_id uuid, id int) SERVER probe_server;
CREATE VIEW app.report_counts AS SELECT community_id, count(*) FROM app.report_archive GROUP BY 1;
GRANT SELECT ON app.report_counts TO relay;
CREATE ROLE role_admins NOLOGIN CREATEROLE;
CREATE ROLE pool_ops LOGIN IN ROLE role_admins;
GRANT EXECUTE ON FUNCTION pg_current_wal_insert_lsn(), pg_database_size(oid), pg_lock_status() TO relay;
CREATE EXTENSION pgrowlocks;
CREATE EXTENSION pgstattuple;
GRANT pg_stat_scan_tables TO relay;
SELECT check_id, object, detail FROM buzz.conformance('relay') WHERE status = 'fail';
ROLLBACK;
-- As deployed, the relay can run none of them, and NOTIFY is refused in a community
-- transaction (mutation "NOTIFY allowed in a community transaction").
SET ROLE relay;
\set VERBOSITY sqlstate
SELECT pg_stat_get_xact_tuples_returned('app.messages'::regclass);
SELECT pg_relation_size('app.messages');
\set VERBOSITY terse
BEGIN;
SELECT buzz.enter('a.example', :'alice_token');
NOTIFY alerts, 'hello from alpha';
ROLLBACK;
RESET ROLE;
-- The registry mirror compares one spelling of a host, follows renames, and refuses to
-- delete a community (mutation "the registry mirror ignores host updates and deletes" above).
BEGIN;
SAVEPOINT s;
INSERT INTO app.community_domains VALUES ('A.example', :'alpha');
ROLLBACK TO SAVEPOINT s;
UPDATE app.communities SET name = 'Gamma Two' WHERE slug = 'gamma';
SELECT name FROM buzz.communities WHERE slug = 'gamma';
INSERT INTO app.communities (id, slug, name) VALUES ('00000000-0000-4000-8000-00000000000e', 'epsilon', 'Epsilon');
SAVEPOINT s;
DELETE FROM app.communities WHERE slug = 'epsilon';
ROLLBACK TO SAVEPOINT s;
ROLLBACK;

\c :regress_db
DROP DATABASE relaydb;
DROP ROLE relay, relay_worker, app_migrator;
