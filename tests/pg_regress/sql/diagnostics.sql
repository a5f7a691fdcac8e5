-- What a community transaction may not run (DESIGN §12.20), for the relay role:
--  * EXPLAIN ANALYZE: its counters ("Rows Removed by Filter", loops, heap fetches) count rows
--    an index not led by community_id visits before the fence filters them; probing key
--    ranges of relay.users (whose pubkey index is global) would recover another community's
--    pubkeys one comparison at a time;
--  * LOCK TABLE on a tenant table, an extension table or a view: an ACCESS EXCLUSIVE lock
--    would stall every other community.
-- Superusers, and statements outside a community transaction, are PostgreSQL's own business.
\set VERBOSITY terse
\getenv abs_srcdir PG_ABS_SRCDIR
\set ECHO none
\i :abs_srcdir/include/keys.psql
\i :abs_srcdir/include/logins.psql
\set ECHO all
-- (logins.psql leaves the session as buzz_relay)

-- EXPLAIN ANALYZE in every spelling, also from PL/pgSQL (mutant "EXPLAIN ANALYZE allowed in a
-- community transaction"); a plain EXPLAIN shows estimates only and is fine.
BEGIN;
SELECT buzz.enter('a.example', :'alice_token');
SAVEPOINT s;
EXPLAIN ANALYZE SELECT * FROM relay.users WHERE pubkey >= 'a' AND pubkey < 'b';
ROLLBACK TO SAVEPOINT s;
EXPLAIN (ANALYZE, COSTS OFF) SELECT count(*) FROM relay.events;
ROLLBACK TO SAVEPOINT s;
EXPLAIN (ANALYZE true, TIMING off) SELECT 1;
ROLLBACK TO SAVEPOINT s;
DO $$ BEGIN EXECUTE 'EXPLAIN ANALYZE SELECT 1'; END $$;
ROLLBACK TO SAVEPOINT s;
EXPLAIN (ANALYZE false, COSTS OFF) SELECT 1;
EXPLAIN (COSTS OFF) SELECT 1;
ROLLBACK;
-- Outside a community transaction EXPLAIN ANALYZE is PostgreSQL's own; so it is for a
-- superuser in one.
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) SELECT 1;
RESET ROLE;
BEGIN;
SELECT buzz.enter('a.example');
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) SELECT 1;
ROLLBACK;
SET ROLE buzz_relay;

-- LOCK TABLE on a tenant table, an extension table (refused before PostgreSQL's own privilege
-- check) or a view, whose lock reaches its base tables (mutant "LOCK TABLE allowed in a
-- community transaction"). A global table is PostgreSQL's own business.
BEGIN;
SELECT buzz.enter('a.example', :'alice_token');
SAVEPOINT s;
LOCK TABLE relay.users IN ACCESS EXCLUSIVE MODE;
ROLLBACK TO SAVEPOINT s;
LOCK TABLE relay.events IN SHARE MODE;               -- a partitioned table
ROLLBACK TO SAVEPOINT s;
LOCK TABLE buzz.events;
ROLLBACK TO SAVEPOINT s;
LOCK TABLE relay.channel_directory;
ROLLBACK TO SAVEPOINT s;
LOCK TABLE relay.kind_registry IN ACCESS SHARE MODE;
ROLLBACK;
-- Without a context the relay's locks are PostgreSQL's own (what its privileges allow).
BEGIN;
LOCK TABLE relay.users IN ACCESS SHARE MODE;
ROLLBACK;
RESET ROLE;
