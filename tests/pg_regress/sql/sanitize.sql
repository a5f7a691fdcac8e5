-- Errors of the relay's own SQL in a tenant context (C2.2, M6): the client sees a catalog
-- phrase, the SQLSTATE and an incident id — nothing else (tools/buzz-itest checks that every
-- other protocol field is empty); the raw error goes to the server log with the community and
-- the same incident id. Superusers and statements outside a context are untouched.
-- Mutant "relay SQL errors reach the client raw (M6)" (no hook) turns this suite red.
\getenv abs_srcdir PG_ABS_SRCDIR
\i :abs_srcdir/include/base.psql
\i :abs_srcdir/include/adopted.psql
\set VERBOSITY terse
\getenv server_log BUZZ_SERVER_LOG
SELECT id AS alpha_id FROM buzz.communities WHERE slug = 'alpha' \gset
\i :abs_srcdir/include/logins.psql
\i :abs_srcdir/include/relay_data.psql

-- unique violation (alpha already has a channel named general)
BEGIN;
SELECT buzz.enter('a.example', :'alice_token');
\set VERBOSITY sqlstate
INSERT INTO relay.channels (name) VALUES ('general');
\set VERBOSITY terse
ROLLBACK;
SELECT regexp_replace(:'LAST_ERROR_MESSAGE', '[0-9a-f]{16}', '<id>') AS client_sees, :'LAST_ERROR_SQLSTATE' AS sqlstate;
SELECT substring(:'LAST_ERROR_MESSAGE' from 'incident ([0-9a-f]{16})') AS incident \gset
-- foreign key violation
BEGIN;
SELECT buzz.enter('a.example', :'alice_token');
\set VERBOSITY sqlstate
INSERT INTO relay.channel_members (channel_id, user_id) VALUES (gen_random_uuid(), gen_random_uuid());
\set VERBOSITY terse
ROLLBACK;
SELECT regexp_replace(:'LAST_ERROR_MESSAGE', '[0-9a-f]{16}', '<id>') AS client_sees, :'LAST_ERROR_SQLSTATE' AS sqlstate;
-- check violation
BEGIN;
SELECT buzz.enter('a.example', :'alice_token');
\set VERBOSITY sqlstate
INSERT INTO relay.channels (name, visibility) VALUES ('x', 'secret');
\set VERBOSITY terse
ROLLBACK;
SELECT regexp_replace(:'LAST_ERROR_MESSAGE', '[0-9a-f]{16}', '<id>') AS client_sees, :'LAST_ERROR_SQLSTATE' AS sqlstate;
-- not-null violation
BEGIN;
SELECT buzz.enter('a.example', :'alice_token');
\set VERBOSITY sqlstate
INSERT INTO relay.users (pubkey) VALUES (NULL);
\set VERBOSITY terse
ROLLBACK;
SELECT regexp_replace(:'LAST_ERROR_MESSAGE', '[0-9a-f]{16}', '<id>') AS client_sees, :'LAST_ERROR_SQLSTATE' AS sqlstate;
-- RLS violation (an anonymous context may not write)
BEGIN;
SELECT buzz.enter('a.example');
\set VERBOSITY sqlstate
INSERT INTO relay.channels (name) VALUES ('anonymous');
\set VERBOSITY terse
ROLLBACK;
SELECT regexp_replace(:'LAST_ERROR_MESSAGE', '[0-9a-f]{16}', '<id>') AS client_sees, :'LAST_ERROR_SQLSTATE' AS sqlstate;
-- no privilege
BEGIN;
SELECT buzz.enter('a.example');
\set VERBOSITY sqlstate
DELETE FROM relay.schema_migrations;
\set VERBOSITY terse
ROLLBACK;
SELECT regexp_replace(:'LAST_ERROR_MESSAGE', '[0-9a-f]{16}', '<id>') AS client_sees, :'LAST_ERROR_SQLSTATE' AS sqlstate;
-- division by zero
BEGIN;
SELECT buzz.enter('a.example');
\set VERBOSITY sqlstate
SELECT 1 / 0;
\set VERBOSITY terse
ROLLBACK;
SELECT regexp_replace(:'LAST_ERROR_MESSAGE', '[0-9a-f]{16}', '<id>') AS client_sees, :'LAST_ERROR_SQLSTATE' AS sqlstate;
-- syntax error
BEGIN;
SELECT buzz.enter('a.example');
\set VERBOSITY sqlstate
SELEC 1;
\set VERBOSITY terse
ROLLBACK;
SELECT regexp_replace(:'LAST_ERROR_MESSAGE', '[0-9a-f]{16}', '<id>') AS client_sees, :'LAST_ERROR_SQLSTATE' AS sqlstate;
-- the abort itself resets the context, so what follows an error in that transaction is
-- PostgreSQL's fixed "transaction is aborted" text
BEGIN;
SELECT buzz.enter('a.example');
\set VERBOSITY sqlstate
SELECT 1 / 0;
SELECT 1;
\set VERBOSITY terse
ROLLBACK;
SELECT regexp_replace(:'LAST_ERROR_MESSAGE', '[0-9a-f]{16}', '<id>') AS client_sees, :'LAST_ERROR_SQLSTATE' AS sqlstate;
-- catalog messages (the extension's own, and the tenant guard's) pass unchanged
BEGIN;
SELECT buzz.enter('a.example', :'alice_token');
UPDATE relay.users SET community_id = gen_random_uuid();
ROLLBACK;
BEGIN;
SELECT buzz.enter('nowhere.example');
ROLLBACK;
-- outside a tenant context the relay's errors are PostgreSQL's own
SELECT 1 / 0;
RESET ROLE;
-- a superuser in a context: untouched
BEGIN;
SELECT buzz.enter('a.example');
SELECT 1 / 0;
ROLLBACK;
-- a role acting through SET ROLE is judged by that role
SET ROLE buzz_relay;
BEGIN;
SELECT buzz.enter('a.example');
\set VERBOSITY sqlstate
SELECT 1 / 0;
\set VERBOSITY terse
ROLLBACK;
SELECT regexp_replace(:'LAST_ERROR_MESSAGE', '[0-9a-f]{16}', '<id>') AS client_sees, :'LAST_ERROR_SQLSTATE' AS sqlstate;
RESET ROLE;
-- The hook only sees errors PostgreSQL writes to the server log. A session (or role, or
-- server) whose log_min_messages hides errors does not switch it off: enter pins the setting
-- to error for the transaction (mutant "log_min_messages not pinned by enter"), and restores
-- it after.
SET log_min_messages = fatal;
SET ROLE buzz_relay;
BEGIN;
SELECT buzz.enter('a.example');
SHOW log_min_messages;
\set VERBOSITY sqlstate
SELECT 1 / 0;
\set VERBOSITY terse
ROLLBACK;
SELECT regexp_replace(:'LAST_ERROR_MESSAGE', '[0-9a-f]{16}', '<id>') AS client_sees, :'LAST_ERROR_SQLSTATE' AS sqlstate;
SHOW log_min_messages;
RESET ROLE;
RESET log_min_messages;
-- The server log has the raw error under the same incident id, with the community.
SELECT pg_read_file(:'server_log') ~ format('buzz_tenancy incident %s community %s sqlstate 23505: duplicate key value violates unique constraint "channels_name_key"',
                                          :'incident', :'alpha_id') AS raw_error_logged;
-- ... and the client-facing line for it carries no constraint name.
SELECT pg_read_file(:'server_log') ~ format('ERROR:  duplicate: a row with this key already exists \(incident %s\)', :'incident') AS sanitized_error_logged;
