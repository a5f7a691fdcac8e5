-- The tenant context (DESIGN §4): transaction-scoped, one community per transaction,
-- unforgeable by the relay role, correct under parallel query and generic plans.
\set VERBOSITY terse
\getenv abs_srcdir PG_ABS_SRCDIR
\i :abs_srcdir/include/keys.psql
SELECT id AS alpha_id FROM buzz.communities WHERE slug = 'alpha' \gset
SELECT id AS beta_id FROM buzz.communities WHERE slug = 'beta' \gset
SET ROLE buzz_relay;

-- Gone after COMMIT and after ROLLBACK (mutation: GUC_ACTION_SET instead of
-- GUC_ACTION_LOCAL keeps it alive and the second column turns true).
BEGIN;
SELECT buzz.enter('a.example');
SELECT buzz.current_community() = :'alpha_id' AS inside, buzz.current_actor() IS NULL AS anonymous;
COMMIT;
SELECT buzz.current_community() IS NULL AS gone_after_commit;
BEGIN;
SELECT buzz.enter('a.example');
ROLLBACK;
SELECT buzz.current_community() IS NULL AS gone_after_rollback;
-- Outside an explicit transaction the statement is the transaction.
SELECT buzz.enter('b.example');
SELECT buzz.current_community() IS NULL AS gone_after_autocommit;

-- ROLLBACK TO SAVEPOINT undoes an enter made after the savepoint.
BEGIN;
SAVEPOINT before_enter;
SELECT buzz.enter('a.example');
SELECT buzz.current_community() = :'alpha_id' AS entered;
ROLLBACK TO SAVEPOINT before_enter;
SELECT buzz.current_community() IS NULL AS undone;
SELECT buzz.enter('b.example');                      -- free to enter another community now
SELECT buzz.current_community() = :'beta_id' AS beta_after_rollback_to;
COMMIT;

-- Two transactions on one connection with different hosts: each sees only its own.
BEGIN;
SELECT buzz.enter('a.example');
SELECT buzz.current_community() = :'alpha_id' AS first_is_alpha;
COMMIT;
BEGIN;
SELECT buzz.enter('b.example');
SELECT buzz.current_community() = :'beta_id' AS second_is_beta;
COMMIT;

-- One community per transaction (mutation: dropping the check in set_transaction_context
-- lets the second enter succeed). Another host of the same community is fine.
BEGIN;
SELECT buzz.enter('a.example');
SELECT buzz.enter('alpha.example:8443');
SELECT buzz.current_community() = :'alpha_id' AS still_alpha;
SELECT buzz.enter('b.example');
ROLLBACK;
-- RESET ALL does not clear the context either, so it cannot open the door to a second
-- community (mutation: dropping GUC_NO_RESET_ALL lets the last enter succeed).
BEGIN;
SELECT buzz.enter('a.example');
RESET ALL;
SELECT buzz.current_community() = :'alpha_id' AS still_alpha_after_reset_all;
SELECT buzz.enter('b.example');
ROLLBACK;
-- A failed enter inside a savepoint leaves the earlier context intact.
BEGIN;
SELECT buzz.enter('a.example');
SAVEPOINT s;
SELECT buzz.enter('unmapped.example');
ROLLBACK TO SAVEPOINT s;
SELECT buzz.current_community() = :'alpha_id' AS kept;
COMMIT;

-- The relay role cannot install or alter a context by any other way. Errors that would
-- echo the forged value are shown by SQLSTATE only.
\set forged :alpha_id|a.example|:alice
SET buzz.context = :'forged';
BEGIN;
SET LOCAL buzz.context = :'forged';
ROLLBACK;
SELECT set_config('buzz.context', :'forged', true);
BEGIN;
SELECT buzz.enter('b.example');
\set VERBOSITY sqlstate
SELECT set_config('buzz.context', :'forged', true);  -- not even on top of a real context
\set VERBOSITY terse
ROLLBACK;
ALTER ROLE buzz_relay SET buzz.context = 'x';
-- A function's SET clause is another way in; the relay role can create functions nowhere.
CREATE FUNCTION public.forge() RETURNS uuid LANGUAGE sql SET buzz.context = 'x' AS 'SELECT buzz.current_community()';
RESET buzz.context;                                  -- clearing is refused too
RESET ROLE;
-- Not even a superuser can write it: the check hook refuses values the extension did not set.
\set VERBOSITY sqlstate
SET buzz.context = :'forged';
SELECT set_config('buzz.context', :'forged', false);
ALTER ROLE buzz_relay SET buzz.context = :'forged';
ALTER SYSTEM SET buzz.context = :'forged';
\set VERBOSITY terse
-- The library reserves its prefix: no other buzz.* placeholder can be created.
SET buzz.something_else = 'x';

-- Placeholder trap: before the library is loaded in a backend, a custom setting is only a
-- placeholder that anyone may SET. The first extension call then discards it (a WARNING we
-- silence here because it echoes the value). Mutation: reading the context with
-- current_setting() in policies (or no check hook) would honour the forged value.
\c - buzz_relay
\set VERBOSITY terse
SET client_min_messages = error;
SET buzz.context = :'forged';
SELECT current_setting('buzz.context') = :'forged' AS placeholder_accepted_before_load;
SELECT buzz.current_community() IS NULL AS forged_placeholder_ignored,
       buzz.current_actor() IS NULL AS no_actor;
SELECT current_setting('buzz.context', true) AS after_load;
-- Same trap through ALTER ROLE … SET made by an operator in a backend without the library.
\c - postgres
ALTER ROLE buzz_relay SET buzz.context = :'forged';
\c - buzz_relay
SET client_min_messages = error;
SELECT buzz.current_community() IS NULL AS role_setting_ignored;
\c - postgres
\set VERBOSITY terse
ALTER ROLE buzz_relay RESET buzz.context;

-- Parallel query: workers receive the context (mutation: keeping it in a Rust static or
-- thread-local would give the worker no context, so the RLS-fenced count would be 0).
SET force_parallel_mode = on;
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET ROLE buzz_owner;                                 -- table owner, still fenced by FORCE RLS
BEGIN;
SELECT buzz.enter('a.example');
-- The scan and its RLS qual run in a worker (Single Copy: the leader only gathers).
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) SELECT count(*) FROM buzz.members;
SELECT count(*) AS alpha_members, bool_and(community_id = buzz.current_community()) AS all_alpha FROM buzz.members;
COMMIT;
BEGIN;
SELECT buzz.enter('b.example');
SELECT count(*) AS beta_members, bool_and(community_id = buzz.current_community()) AS all_beta FROM buzz.members;
COMMIT;
RESET force_parallel_mode;

-- A prepared statement with a generic plan, executed under two contexts (mutation: marking
-- buzz.current_community() IMMUTABLE folds the first context into the cached plan and the
-- second execution returns alpha's rows).
SET plan_cache_mode = force_generic_plan;
PREPARE members_here AS SELECT count(*) AS n, min(pubkey) AS first_pubkey FROM buzz.members;
BEGIN;
SELECT buzz.enter('a.example');
EXECUTE members_here;
COMMIT;
BEGIN;
SELECT buzz.enter('b.example');
EXECUTE members_here;
COMMIT;
EXECUTE members_here;                                -- no context: nothing
RESET ROLE;
RESET plan_cache_mode;

-- Nothing survives a community transaction (DESIGN §12.3): a WITH HOLD cursor would be
-- materialized at COMMIT under the context and stay readable in the next transaction, which a
-- pooler may give to another community. Refused in either order (mutants "WITH HOLD allowed
-- in a context" and "enter ignores a WITH HOLD cursor").
SET ROLE buzz_relay;
BEGIN;
SELECT buzz.enter('a.example');
DECLARE held CURSOR WITH HOLD FOR SELECT 1;
ROLLBACK;
BEGIN;
DECLARE held CURSOR WITH HOLD FOR SELECT 1;
SELECT buzz.enter('a.example');
ROLLBACK;
-- An ordinary cursor is fine, and outside community transactions WITH HOLD is untouched.
BEGIN;
SELECT buzz.enter('a.example');
DECLARE plain CURSOR FOR SELECT 1 AS one;
FETCH plain;
COMMIT;
BEGIN;
DECLARE held CURSOR WITH HOLD FOR SELECT 2 AS two;
COMMIT;
FETCH held;
CLOSE held;
RESET ROLE;
-- In a new backend the library loads inside enter, after the DECLARE it could not see:
-- enter asks pg_cursors.
\c
SET ROLE buzz_relay;
BEGIN;
DECLARE held CURSOR WITH HOLD FOR SELECT 1;
SELECT buzz.enter('a.example');
ROLLBACK;
RESET ROLE;
