-- Read-only paths (issue 14): a read costs no transaction id on the primary, and works on a
-- streaming hot standby of this cluster (scripts/lib/standby.sh starts it next to the test
-- cluster: BUZZ_STANDBY_PORT) with credentials minted on the primary; every write there is
-- answered with the catalog's read_only, not an internal error. enter pins row_security on
-- for its transaction. Mutants: "reads take a transaction id" (spi_cache::query through
-- pgrx's SpiClient::update again), "enter leaves row_security to the session", "read-only
-- writes answered internal".
\getenv abs_srcdir PG_ABS_SRCDIR
\getenv standby_port BUZZ_STANDBY_PORT
\i :abs_srcdir/include/base.psql
\set VERBOSITY terse
\i :abs_srcdir/include/channels.psql
\i :abs_srcdir/include/events.psql
\o /dev/null
BEGIN;
SELECT buzz.enter('a.example', :'alice_token');
SELECT buzz.mint_token('reader', '{read}') AS read_token \gset
COMMIT;
\o
-- A background worker's role (cluster-wide: made once).
\o /dev/null
RESET ROLE;
DO $$ BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'buzz_standby_worker') THEN
        CREATE ROLE buzz_standby_worker;
    END IF;
END $$;
SELECT buzz.setup_worker_role('buzz_standby_worker');
SELECT id AS alpha_id FROM buzz.communities WHERE slug = 'alpha' \gset
SET ROLE buzz_relay;
\o
-- A signed event nobody has published, for the refusals below.
\set sk :carol_sk
\set kind 1
\set content 'written on a standby?'
\set tags '[]'
\set at 1700000900
\i :abs_srcdir/include/sign.psql
\set unpublished :ev
-- And a NIP-42 answer to a challenge minted here, to be spent on the standby.
\set host a.example
\set sk :carol_sk
\i :abs_srcdir/include/challenge.psql
\set auth_answer :ev

-- Every read entry point of the relay API, each in a transaction of its own: no transaction id.
BEGIN;
SELECT buzz.enter('a.example');
SELECT buzz.current_community() IS NOT NULL AS entered, buzz.current_actor() IS NULL AS anonymous;
SELECT pg_current_xact_id_if_assigned() IS NULL AS no_transaction_id;
COMMIT;
BEGIN;
SELECT buzz.enter('a.example', :'alice_token');
SELECT buzz.current_actor() = :'alice' AS alice, buzz.current_scopes();
SELECT count(*) > 0 AS events FROM buzz.req('[{"kinds":[1]}]');
SELECT buzz.count('[{"kinds":[1]}]') > 0 AS counted;
SELECT count(*) AS channels FROM buzz.list_channels();
SELECT checked > 0 AS checked_some, first_bad_seq FROM buzz.audit_verify();
SELECT pg_current_xact_id_if_assigned() IS NULL AS no_transaction_id;
COMMIT;
-- An API token's last use is recorded at most hourly (its first enter here writes it).
BEGIN;
SELECT buzz.enter('a.example', :'read_token');
SELECT pg_current_xact_id_if_assigned() IS NULL AS no_transaction_id;
COMMIT;
BEGIN;
SELECT buzz.enter('a.example', :'read_token');
SELECT buzz.current_actor() = :'alice' AS alice, buzz.current_scopes();
SELECT count(*) > 0 AS events FROM buzz.req('[{"kinds":[1]}]');
SELECT pg_current_xact_id_if_assigned() IS NULL AS no_transaction_id;
COMMIT;
BEGIN;
SELECT buzz.relay_info('a.example')::jsonb ->> 'name' AS name;
SELECT pg_current_xact_id_if_assigned() IS NULL AS no_transaction_id;
COMMIT;
-- Live delivery's reads: the wake-up channel, a cursor, a poll from it.
BEGIN;
SELECT buzz.enter('a.example', :'carol_token');
SELECT buzz.listen_channel() IS NOT NULL AS channel, buzz.cursor() AS c0 \gset
SELECT :'channel' AS channel, count(*) AS news FROM buzz.poll('[{"kinds":[1]}]', :'c0');
SELECT pg_current_xact_id_if_assigned() IS NULL AS no_transaction_id;
COMMIT;
-- A worker entering a community by id.
SET ROLE buzz_standby_worker;
BEGIN;
SELECT buzz.enter_community(:'alpha_id');
SELECT buzz.current_worker() AS worker;
SELECT pg_current_xact_id_if_assigned() IS NULL AS no_transaction_id;
COMMIT;
SET ROLE buzz_relay;

-- A session-level row_security = off (left by an earlier client of a pooled connection)
-- neither breaks enter nor changes what it sees.
SET row_security = off;
BEGIN;
SELECT buzz.enter('a.example', :'alice_token');
SELECT count(*) > 0 AS events FROM buzz.req('[{"kinds":[1]}]');
SHOW row_security;
COMMIT;
SHOW row_security;
RESET row_security;

-- A write in a READ ONLY transaction on the primary: the catalog's read_only.
BEGIN READ ONLY;
SELECT buzz.enter('a.example', :'carol_token');
\set VERBOSITY sqlstate
SELECT buzz.publish(:'unpublished');
\set VERBOSITY terse
ROLLBACK;
\i :abs_srcdir/include/last_error.psql

-- The standby, once it has replayed everything above.
RESET ROLE;
SELECT pg_current_wal_lsn() AS lsn, current_setting('port') AS primary_port \gset
\c - - - :standby_port
SELECT pg_is_in_recovery() AS standby;
-- (quietly: the position differs from run to run)
\set ECHO none
SELECT format('DO $w$ BEGIN WHILE pg_last_wal_replay_lsn() < %L::pg_lsn LOOP PERFORM pg_sleep(0.01); END LOOP; END $w$', :'lsn') \gexec
\set ECHO all
SET ROLE buzz_relay;
-- Reads, with the primary's session and API token.
BEGIN;
SELECT buzz.enter('a.example');
SELECT buzz.current_community() IS NOT NULL AS entered;
COMMIT;
BEGIN;
SELECT buzz.enter('a.example', :'alice_token');
SELECT buzz.current_actor() = :'alice' AS alice;
SELECT count(*) > 0 AS events FROM buzz.req('[{"kinds":[1]}]');
SELECT buzz.count('[{"kinds":[1]}]') > 0 AS counted;
SELECT count(*) AS channels FROM buzz.list_channels();
SELECT checked > 0 AS checked_some, first_bad_seq FROM buzz.audit_verify();
SELECT buzz.cursor() IS NOT NULL AS cursor;
COMMIT;
BEGIN;
SELECT buzz.enter('a.example', :'read_token');
SELECT count(*) > 0 AS events FROM buzz.req('[{"kinds":[1]}]');
COMMIT;
SELECT buzz.relay_info('a.example')::jsonb ->> 'name' AS name;
BEGIN;
SELECT buzz.enter('a.example', :'carol_token');
SELECT buzz.listen_channel() IS NOT NULL AS channel, count(*) AS news FROM buzz.poll('[{"kinds":[1]}]', :'c0');
COMMIT;
SET ROLE buzz_standby_worker;
BEGIN;
SELECT buzz.enter_community(:'alpha_id');
SELECT buzz.current_worker() AS worker;
COMMIT;
SET ROLE buzz_relay;
-- Another community's token is still refused like a random one.
BEGIN;
SELECT buzz.enter('b.example', :'alice_token');
ROLLBACK;
-- A NIP-42 challenge is issued here too (it writes nothing, issue 15) and, signed, logs carol
-- in on the primary (below): the key replicates with everything else.
\set host a.example
\set sk :carol_sk
\i :abs_srcdir/include/challenge.psql
\set standby_answer :ev
SELECT length(:'chal') AS standby_challenge_length;
-- Writes: one catalog answer each.
BEGIN;
SELECT buzz.enter('a.example');
\set VERBOSITY sqlstate
SELECT buzz.authenticate(:'auth_answer');
\set VERBOSITY terse
ROLLBACK;
\i :abs_srcdir/include/last_error.psql
BEGIN;
SELECT buzz.enter('a.example', :'carol_token');
\set VERBOSITY sqlstate
SELECT buzz.publish(:'unpublished');
\set VERBOSITY terse
ROLLBACK;
\i :abs_srcdir/include/last_error.psql
-- The batch forms too (the one-statement form enters, which reads, then refuses the write).
BEGIN;
SELECT buzz.enter('a.example', :'carol_token');
\set VERBOSITY sqlstate
SELECT * FROM buzz.publish(ARRAY[:'unpublished']);
\set VERBOSITY terse
ROLLBACK;
\i :abs_srcdir/include/last_error.psql
\set VERBOSITY sqlstate
SELECT * FROM buzz.publish('a.example', :'carol_token', ARRAY[:'unpublished']);
\set VERBOSITY terse
\i :abs_srcdir/include/last_error.psql
BEGIN;
SELECT buzz.enter('a.example', :'alice_token');
\set VERBOSITY sqlstate
SELECT buzz.create_channel('standby-room');
\set VERBOSITY terse
ROLLBACK;
\i :abs_srcdir/include/last_error.psql
BEGIN;
SELECT buzz.enter('a.example', :'alice_token');
\set VERBOSITY sqlstate
SELECT buzz.mint_token('again', '{read}');
\set VERBOSITY terse
ROLLBACK;
\i :abs_srcdir/include/last_error.psql
BEGIN;
SELECT buzz.enter('a.example', :'alice_token');
\set VERBOSITY sqlstate
SELECT buzz.end_session(:'alice_token');
\set VERBOSITY terse
ROLLBACK;
\i :abs_srcdir/include/last_error.psql
-- The relay's own SQL in a context (here: a temporary table) is refused with the same entry.
BEGIN;
SELECT buzz.enter('a.example', :'alice_token');
\set VERBOSITY sqlstate
CREATE TEMP TABLE scratch (x int);
\set VERBOSITY terse
ROLLBACK;
\i :abs_srcdir/include/last_error.psql
RESET ROLE;
-- The operator's EXPLAIN of a req reads too.
BEGIN;
SELECT buzz.enter('a.example', :'alice_token');
SELECT count(*) > 0 AS explained FROM buzz.explain_req('[{"kinds":[1]}]');
COMMIT;

-- Back on the primary: the standby's challenge is good there, once.
\c - - - :primary_port
SET ROLE buzz_relay;
BEGIN;
SELECT buzz.enter('a.example') \gset
SELECT length(buzz.authenticate(:'standby_answer')) AS token_length;
COMMIT;
BEGIN;
SELECT buzz.enter('a.example') \gset
SELECT buzz.authenticate(:'standby_answer');
ROLLBACK;
RESET ROLE;
