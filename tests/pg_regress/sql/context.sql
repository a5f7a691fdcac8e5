-- The tenant context (DESIGN §4): transaction-scoped, one community per transaction,
-- unforgeable by the relay role, correct under parallel query and generic plans.
\getenv abs_srcdir PG_ABS_SRCDIR
\i :abs_srcdir/include/base.psql
\set VERBOSITY terse
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

-- ROLLBACK TO SAVEPOINT undoes an enter made after the savepoint (the context is gone), but
-- the transaction stays bound to that community until it ends (DESIGN §4): a cursor opened
-- under it is still readable, so another community is refused; the same one may be entered
-- again. (Mutant "two communities per transaction" lets beta in.)
BEGIN;
DECLARE rows_here CURSOR FOR
    SELECT g, buzz.current_community() = :'alpha_id' AS under_alpha FROM generate_series(1, 3) g;
SAVEPOINT before_enter;
SELECT buzz.enter('a.example');
SELECT buzz.current_community() = :'alpha_id' AS entered;
FETCH rows_here;                                     -- read under alpha
ROLLBACK TO SAVEPOINT before_enter;
SELECT buzz.current_community() IS NULL AS undone;
SAVEPOINT s;
SELECT buzz.enter('b.example');                      -- bound to alpha: refused
ROLLBACK TO SAVEPOINT s;
SELECT buzz.enter('a.example');                      -- the same community again: fine
SELECT buzz.current_community() = :'alpha_id' AS alpha_again;
FETCH rows_here;
COMMIT;
-- An exception block that entered and failed binds the transaction the same way.
BEGIN;
DO $$ BEGIN PERFORM buzz.enter('a.example'); RAISE EXCEPTION 'undo'; EXCEPTION WHEN raise_exception THEN NULL; END $$;
SELECT buzz.current_community() IS NULL AS undone_by_the_exception_block;
SELECT buzz.enter('b.example');
ROLLBACK;
-- The next transaction is free.
BEGIN;
SELECT buzz.enter('b.example');
SELECT buzz.current_community() = :'beta_id' AS next_transaction_is_free;
COMMIT;

-- A procedure or DO block that commits stays bound to the community it entered for the rest
-- of the client's statement (mutant "procedure COMMIT frees the statement"): rows it read under
-- alpha live on in its variables.
DO $$ BEGIN PERFORM buzz.enter('a.example'); COMMIT; PERFORM buzz.enter('b.example'); END $$;
DO $$ BEGIN PERFORM buzz.enter('a.example'); ROLLBACK; PERFORM buzz.enter('b.example'); END $$;
DO $$ BEGIN PERFORM buzz.enter('a.example'); COMMIT; PERFORM buzz.enter('a.example'); END $$;  -- same: fine
-- ... however deeply the later enter is nested: a function called from the block runs in an
-- atomic SPI level of its own, but it is still the same client statement.
DO $$ BEGIN PERFORM buzz.enter('a.example'); COMMIT;
             PERFORM query_to_xml('SELECT buzz.enter(''b.example'')', true, true, ''); END $$;
-- The next client statement is free again.
DO $$ BEGIN PERFORM buzz.enter('b.example'); END $$;
-- A loop over a query is held at COMMIT: PostgreSQL materializes its remaining rows under the
-- context still installed, and they reach the next transaction. enter refuses while any
-- holdable portal exists, whichever community (mutant "enter ignores portals held at a
-- procedure's COMMIT").
DO $$
DECLARE r record;
BEGIN
    PERFORM buzz.enter('a.example');
    FOR r IN SELECT g FROM generate_series(1, 3) g LOOP
        COMMIT;
        PERFORM buzz.enter('a.example');
    END LOOP;
END $$;
-- Once the loop is over nothing is held.
DO $$
DECLARE r record;
BEGIN
    FOR r IN SELECT g FROM generate_series(1, 3) g LOOP
        COMMIT;
    END LOOP;
    PERFORM buzz.enter('a.example');
END $$;

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
SET buzz_tenancy.context = :'forged';
BEGIN;
SET LOCAL buzz_tenancy.context = :'forged';
ROLLBACK;
SELECT set_config('buzz_tenancy.context', :'forged', true);
BEGIN;
SELECT buzz.enter('b.example');
\set VERBOSITY sqlstate
SELECT set_config('buzz_tenancy.context', :'forged', true);  -- not even on top of a real context
\set VERBOSITY terse
ROLLBACK;
ALTER ROLE buzz_relay SET buzz_tenancy.context = 'x';
-- A function's SET clause is another way in; the relay role can create functions nowhere.
CREATE FUNCTION public.forge() RETURNS uuid LANGUAGE sql SET buzz_tenancy.context = 'x' AS 'SELECT buzz.current_community()';
RESET buzz_tenancy.context;                                  -- clearing is refused too
RESET ROLE;
-- Not even a superuser can write it: the check hook refuses values the extension did not set.
\set VERBOSITY sqlstate
SET buzz_tenancy.context = :'forged';
SELECT set_config('buzz_tenancy.context', :'forged', false);
ALTER ROLE buzz_relay SET buzz_tenancy.context = :'forged';
ALTER SYSTEM SET buzz_tenancy.context = :'forged';
\set VERBOSITY terse
-- The library reserves its own prefix only: no other buzz_tenancy.* placeholder can be
-- created, while an application's own buzz.* settings keep working (issue 10: a relay's
-- functions use buzz.serving_community and the like), for the operator and for the relay
-- role, in this backend where the library is loaded — SET, SET LOCAL, set_config,
-- current_setting, and a function's SET clause. (Mutant "the extension reserves buzz.".)
SET buzz_tenancy.something_else = 'x';
SELECT count(*) AS library_loaded FROM pg_settings WHERE name = 'buzz_tenancy.max_limit';
SET buzz.created_at_floor = '1700000000';
SELECT current_setting('buzz.created_at_floor') AS operator_reads_it;
SET ROLE buzz_relay;
SET buzz.serving_community = 'app-defined';
BEGIN;
SELECT buzz.enter('a.example');
SET LOCAL buzz.deletion_executor = 'janitor';
SELECT set_config('buzz.serving_community', 'inside-a-context', true) AS relay_set_config,
       current_setting('buzz.deletion_executor') AS relay_set_local;
COMMIT;
SELECT current_setting('buzz.serving_community') AS back_to_session_value,
       current_setting('buzz.deletion_executor', true) AS local_gone;
RESET buzz.serving_community;
RESET ROLE;
CREATE FUNCTION public.app_floor() RETURNS text LANGUAGE sql SET buzz.created_at_floor = '42'
    AS $$ SELECT current_setting('buzz.created_at_floor') $$;
SELECT public.app_floor() AS function_set_clause, current_setting('buzz.created_at_floor') AS restored;
DROP FUNCTION public.app_floor();
RESET buzz.created_at_floor;

-- Placeholder trap: before the library is loaded in a backend, a custom setting is only a
-- placeholder that anyone may SET. The first extension call then discards it (a WARNING we
-- silence here because it echoes the value). Mutation: reading the context with
-- current_setting() in policies (or no check hook) would honour the forged value. (The trap
-- needs a backend without the library: the relay role's preload is lifted meanwhile.)
ALTER ROLE buzz_relay RESET session_preload_libraries;
\c - buzz_relay
\set VERBOSITY terse
SET client_min_messages = error;
SET buzz_tenancy.context = :'forged';
SELECT current_setting('buzz_tenancy.context') = :'forged' AS placeholder_accepted_before_load;
SELECT buzz.current_community() IS NULL AS forged_placeholder_ignored,
       buzz.current_actor() IS NULL AS no_actor;
SELECT current_setting('buzz_tenancy.context', true) AS after_load;
-- Same trap through ALTER ROLE … SET made by an operator in a backend without the library.
\c - postgres
ALTER ROLE buzz_relay SET buzz_tenancy.context = :'forged';
\c - buzz_relay
SET client_min_messages = error;
SELECT buzz.current_community() IS NULL AS role_setting_ignored;
\c - postgres
\set VERBOSITY terse
ALTER ROLE buzz_relay RESET buzz_tenancy.context;
ALTER ROLE buzz_relay SET session_preload_libraries = 'buzz_tenancy';
-- Preloaded, the setting is the extension's from the first statement: SET is refused.
\c - buzz_relay
SET buzz_tenancy.context = :'forged';
SELECT buzz.current_community() IS NULL AS forged_set_refused;
\c - postgres
\set VERBOSITY terse

-- Parallel query: workers receive the context (mutation: keeping it in a Rust static or
-- thread-local would give the worker no context, so the RLS-fenced count would be 0).
SET force_parallel_mode = on;
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET ROLE buzz_owner;                                 -- table owner, still fenced by FORCE RLS
BEGIN;
SELECT buzz.enter('a.example');
-- The scan and its RLS qual run in a worker (Single Copy: the leader only gathers).
EXPLAIN (COSTS OFF) SELECT count(*) FROM buzz.members;
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
-- A holdable cursor declared outside a context is materialized at COMMIT; a query that
-- enters a community would keep rows read under it for later transactions. Its enter runs
-- while the cursor is being held, so it is refused and the COMMIT fails: nothing is kept
-- (mutant "enter ignores a WITH HOLD cursor" keeps alpha's row for beta's transaction).
BEGIN;
DECLARE smuggled CURSOR WITH HOLD FOR
    SELECT buzz.current_community() = :'alpha_id' AS read_under_alpha FROM (SELECT buzz.enter('a.example')) e;
COMMIT;
SELECT buzz.enter('b.example');
SELECT count(*) AS cursors_left FROM pg_cursors;
-- In a new backend the library loads inside enter, after the DECLARE it could not see:
-- enter asks pg_cursors.
\c
SET ROLE buzz_relay;
BEGIN;
DECLARE held CURSOR WITH HOLD FOR SELECT 1;
SELECT buzz.enter('a.example');
ROLLBACK;
RESET ROLE;
