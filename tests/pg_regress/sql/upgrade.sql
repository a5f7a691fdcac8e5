-- Upgrades (issue 14): a database installed with 0.1.0's SQL (tests/upgrade/, frozen; scripts/test
-- puts it next to the current version's), filled as a relay fills it (communities, sessions,
-- channels, events, an adopted relay table, audit rows), then ALTER EXTENSION UPDATE: the data
-- stays, every audit chain verifies, isolation holds. scripts/test then compares this
-- database's schema with a fresh install filled the same way (pg_dump --schema-only, extension
-- members included). Mutant: "upgrade script changes a function".
\getenv abs_srcdir PG_ABS_SRCDIR
SET client_min_messages = warning;
CREATE EXTENSION buzz_tenancy VERSION '0.1.0';
RESET client_min_messages;
\i :abs_srcdir/include/upgrade_fill.psql
RESET ROLE;
SELECT extversion FROM pg_extension WHERE extname = 'buzz_tenancy';
\o /dev/null
SELECT (SELECT count(*) FROM buzz.events) AS events, (SELECT count(*) FROM buzz.sessions) AS sessions,
       (SELECT count(*) FROM buzz.audit_log) AS audit_rows, (SELECT count(*) FROM buzz.channels) AS channels,
       (SELECT count(*) FROM relay.events) AS relay_events, (SELECT count(*) FROM relay.users) AS relay_users \gset before_
\o

-- A NIP-42 challenge issued before the update (the new library on 0.1.0's SQL issues the old,
-- stored kind) is still good after it.
SET ROLE buzz_relay;
\set host a.example
\set sk :carol_sk
\i :abs_srcdir/include/challenge.psql
\set stored_ev :ev
SELECT length(:'chal') AS stored_challenge_length;
RESET ROLE;

ALTER EXTENSION buzz_tenancy UPDATE;
SELECT extversion <> '0.1.0' AS updated FROM pg_extension WHERE extname = 'buzz_tenancy';
-- Functions new to the relay API (0.3.0: poll_many) reach existing relay roles when the
-- operator runs setup_relay_role again (docs/operations.md). The update script cannot grant
-- them: a grant made by an extension script is an initial privilege, which pg_dump leaves out
-- and a restore would not give back.
SELECT has_function_privilege('buzz_relay', 'buzz.poll_many(jsonb, integer)', 'EXECUTE') AS poll_many_before_setup;
SELECT buzz.setup_relay_role('buzz_relay');
SELECT has_function_privilege('buzz_relay', 'buzz.poll_many(jsonb, integer)', 'EXECUTE') AS poll_many_after_setup;
SELECT count(*) = :before_events AS events_kept FROM buzz.events;
SELECT count(*) = :before_sessions AS sessions_kept FROM buzz.sessions;
SELECT count(*) = :before_audit_rows AS audit_kept FROM buzz.audit_log;
SELECT count(*) = :before_channels AS channels_kept FROM buzz.channels;
SELECT count(*) = :before_relay_events AS relay_events_kept FROM relay.events;
SELECT count(*) = :before_relay_users AS relay_users_kept FROM relay.users;
-- Every community's chain (and the operator's) still verifies.
\i :abs_srcdir/include/audit_verify.psql

-- The challenge from before the update logs carol in, once; new challenges are sealed (no row).
SET ROLE buzz_relay;
BEGIN;
SELECT buzz.enter('a.example') \gset
SELECT length(buzz.authenticate(:'stored_ev')) AS token_length;
COMMIT;
BEGIN;
SELECT buzz.enter('a.example') \gset
SELECT buzz.authenticate(:'stored_ev');
ROLLBACK;
\i :abs_srcdir/include/challenge.psql
SELECT length(:'chal') AS sealed_challenge_length;
BEGIN;
SELECT buzz.enter('a.example') \gset
SELECT length(buzz.authenticate(:'ev')) AS token_length;
COMMIT;
RESET ROLE;

-- Isolation after the update, with sessions minted before it.
SET ROLE buzz_relay;
BEGIN;
SELECT buzz.enter('b.example', :'bob_token');
SELECT count(*) FILTER (WHERE e ->> 'pubkey' = :'bob' OR e ->> 'pubkey' = :'alice') = count(*) AS only_beta_authors,
       bool_and(e ->> 'content' <> 'carol speaking') AS no_alpha_note
  FROM buzz.req('[{}]') e;
SELECT count(*) AS beta_relay_events FROM relay.events;
COMMIT;
BEGIN;
SELECT buzz.enter('b.example', :'carol_token');
ROLLBACK;
BEGIN;
SELECT buzz.enter('a.example', :'carol_token');
SELECT count(*) > 0 AS alpha_events FROM buzz.req('[{"kinds":[1]}]');
COMMIT;
RESET ROLE;
