-- What a community transaction may not run (DESIGN §12.20), for the relay role:
--  * EXPLAIN ANALYZE: its counters ("Rows Removed by Filter", loops, heap fetches) count rows
--    an index not led by community_id visits before the fence filters them; probing key
--    ranges of relay.users (whose pubkey index is global) would recover another community's
--    pubkeys one comparison at a time;
--  * LOCK TABLE on a tenant table, an extension table or a view: an ACCESS EXCLUSIVE lock
--    would stall every other community.
-- Superusers, and statements outside a community transaction, are PostgreSQL's own business.
\getenv abs_srcdir PG_ABS_SRCDIR
\i :abs_srcdir/include/base.psql
\i :abs_srcdir/include/adopted.psql
\set VERBOSITY terse
\set ECHO none
\i :abs_srcdir/include/logins.psql
\set ECHO all
-- (logins.psql leaves the session as buzz_relay)

-- EXPLAIN ANALYZE of a statement reading a fenced table, in every spelling, also from
-- PL/pgSQL, with or without a context, and also when the statement enters a community itself
-- (mutant "EXPLAIN ANALYZE counters of fenced tables allowed"). A plain EXPLAIN shows
-- estimates only, and EXPLAIN ANALYZE of anything else is PostgreSQL's own.
BEGIN;
SELECT buzz.enter('a.example', :'alice_token');
SAVEPOINT s;
EXPLAIN ANALYZE SELECT * FROM relay.users WHERE pubkey >= 'a' AND pubkey < 'b';
ROLLBACK TO SAVEPOINT s;
EXPLAIN (ANALYZE, COSTS OFF) SELECT count(*) FROM relay.events;
ROLLBACK TO SAVEPOINT s;
EXPLAIN (ANALYZE true, TIMING off) SELECT count(*) FROM relay.channel_directory;   -- a view over a tenant table
ROLLBACK TO SAVEPOINT s;
DO $$ BEGIN EXECUTE 'EXPLAIN ANALYZE SELECT 1 FROM relay.users'; END $$;
ROLLBACK TO SAVEPOINT s;
EXPLAIN (ANALYZE false, COSTS OFF) SELECT 1 FROM relay.users;
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) SELECT 1;
ROLLBACK;
-- Without a context every row is another community's: refused all the same.
BEGIN;
SAVEPOINT s;
EXPLAIN (ANALYZE, COSTS OFF) SELECT * FROM relay.users WHERE pubkey >= 'p';
ROLLBACK TO SAVEPOINT s;
EXPLAIN (ANALYZE, COSTS OFF) SELECT e.* FROM (SELECT buzz.enter('a.example')) x, LATERAL (SELECT * FROM relay.users) e;
ROLLBACK;
-- A superuser, and the tables' owner (an operator), keep EXPLAIN ANALYZE.
RESET ROLE;
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) SELECT 1 FROM relay.users LIMIT 0;
SET ROLE relay_migrator;
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) SELECT 1 FROM relay.users LIMIT 0;
SET ROLE buzz_relay;

-- LOCK TABLE on a tenant table, an extension table (refused before PostgreSQL's own privilege
-- check) or a view, whose lock reaches its base tables, with or without a context: a lock
-- taken before enter is as good as one taken after (mutant "LOCK TABLE of shared tables
-- allowed"). A global table is PostgreSQL's own business, and so are the owner's locks.
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
BEGIN;
LOCK TABLE relay.users IN ACCESS SHARE MODE;
ROLLBACK;
RESET ROLE;
SET ROLE relay_migrator;
BEGIN;
LOCK TABLE relay.users IN SHARE MODE;
ROLLBACK;
RESET ROLE;
