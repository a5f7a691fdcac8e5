-- NIP-42: challenges, auth events and sessions (S1/S2/S5/S6/S8).
\getenv abs_srcdir PG_ABS_SRCDIR
\i :abs_srcdir/include/base.psql
\set VERBOSITY terse
SELECT id AS alpha_id FROM buzz.communities WHERE slug = 'alpha' \gset
SELECT id AS beta_id FROM buzz.communities WHERE slug = 'beta' \gset
SET ROLE buzz_relay;

-- No context, no challenge and no authentication.
SELECT buzz.auth_challenge();
SELECT buzz.authenticate('{}');

-- A database error inside the extension (here: a write in a read-only transaction) reaches
-- the client as a catalog entry (read_only) with an incident id, never as a raw message
-- (mutation: removing incident::guard shows "cannot execute DELETE in a read-only transaction").
\set host a.example
\set sk :alice_sk
\i :abs_srcdir/include/challenge.psql
BEGIN READ ONLY;
SELECT buzz.enter('a.example');
\set VERBOSITY sqlstate
SELECT buzz.authenticate(:'ev');
\set VERBOSITY terse
ROLLBACK;
SELECT regexp_replace(:'LAST_ERROR_MESSAGE', '[0-9a-f]{16}', '<id>') AS client_sees, :'LAST_ERROR_SQLSTATE' AS sqlstate;

-- The happy path: alice (allowlisted in alpha) logs in on a.example.
\set host a.example
\set sk :alice_sk
\i :abs_srcdir/include/login.psql
SELECT length(:'token') AS token_length;
BEGIN;
SELECT buzz.enter('a.example', :'token');
SELECT buzz.current_community() = :'alpha_id' AS alpha, buzz.current_actor() = :'alice' AS actor_is_alice;
COMMIT;
-- The token works on every host of the same community.
BEGIN;
SELECT buzz.enter('alpha.example:8443', :'token');
SELECT buzz.current_actor() = :'alice' AS actor_on_alias;
COMMIT;
\set alice_token :token

-- Each rejection below: a fresh challenge of alpha's, a bad event, its own transaction.
\set host a.example
\set sk :alice_sk
\i :abs_srcdir/include/challenge.psql
-- Wrong kind.
\set ev `:sign auth --sk :alice_sk --challenge :chal --relay wss://a.example/ --kind 1`
BEGIN; SELECT buzz.enter('a.example') \gset
SELECT buzz.authenticate(:'ev');
ROLLBACK;
\set ev `:sign auth --sk :alice_sk --challenge :chal --relay wss://a.example/`
-- Bad id (the signature is over the original id).
BEGIN; SELECT buzz.enter('a.example') \gset
SELECT buzz.authenticate(jsonb_set(:'ev'::jsonb, '{id}', to_jsonb(repeat('0', 64)))::text);
ROLLBACK;
-- Bad signature (a well-formed signature that does not verify).
BEGIN; SELECT buzz.enter('a.example') \gset
SELECT buzz.authenticate(jsonb_set(:'ev'::jsonb, '{sig}', to_jsonb(repeat('1', 128)))::text);
ROLLBACK;
-- Missing challenge tag.
\set ev `:sign auth --sk :alice_sk --no-challenge --relay wss://a.example/`
BEGIN; SELECT buzz.enter('a.example') \gset
SELECT buzz.authenticate(:'ev');
ROLLBACK;
-- Duplicate challenge tag (even with the right value twice).
\set dup '["challenge","' :chal '"]'
\set ev `:sign auth --sk :alice_sk --challenge :chal --relay wss://a.example/ --extra-tag :'dup'`
BEGIN; SELECT buzz.enter('a.example') \gset
SELECT buzz.authenticate(:'ev');
ROLLBACK;
-- Wrong challenge: never issued.
\set ev `:sign auth --sk :alice_sk --challenge 00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff --relay wss://a.example/`
BEGIN; SELECT buzz.enter('a.example') \gset
SELECT buzz.authenticate(:'ev');
ROLLBACK;
-- Relay tag for another host, for another port, with userinfo, missing, or doubled.
\set ev `:sign auth --sk :alice_sk --challenge :chal --relay wss://b.example/`
BEGIN; SELECT buzz.enter('a.example') \gset
SELECT buzz.authenticate(:'ev');
ROLLBACK;
\set ev `:sign auth --sk :alice_sk --challenge :chal --relay wss://a.example:8443/`
BEGIN; SELECT buzz.enter('a.example') \gset
SELECT buzz.authenticate(:'ev');
ROLLBACK;
\set ev `:sign auth --sk :alice_sk --challenge :chal --relay wss://alice@a.example/`
BEGIN; SELECT buzz.enter('a.example') \gset
SELECT buzz.authenticate(:'ev');
ROLLBACK;
\set ev `:sign auth --sk :alice_sk --challenge :chal --no-relay`
BEGIN; SELECT buzz.enter('a.example') \gset
SELECT buzz.authenticate(:'ev');
ROLLBACK;
\set ev `:sign auth --sk :alice_sk --challenge :chal --relay wss://a.example/ --extra-tag '["relay","wss://a.example/"]'`
BEGIN; SELECT buzz.enter('a.example') \gset
SELECT buzz.authenticate(:'ev');
ROLLBACK;
-- Stale and future created_at (window: buzz_tenancy.auth_window, 600 s by default).
SELECT extract(epoch FROM now())::bigint - 3600 AS past, extract(epoch FROM now())::bigint + 3600 AS future \gset
\set ev `:sign auth --sk :alice_sk --challenge :chal --relay wss://a.example/ --created-at :past`
BEGIN; SELECT buzz.enter('a.example') \gset
SELECT buzz.authenticate(:'ev');
ROLLBACK;
\set ev `:sign auth --sk :alice_sk --challenge :chal --relay wss://a.example/ --created-at :future`
BEGIN; SELECT buzz.enter('a.example') \gset
SELECT buzz.authenticate(:'ev');
ROLLBACK;
-- The relay cannot widen the window: settings are superuser-only.
SET buzz_tenancy.auth_window = 3600;
-- Malformed events.
BEGIN; SELECT buzz.enter('a.example') \gset
SELECT buzz.authenticate('not json');
ROLLBACK;
BEGIN; SELECT buzz.enter('a.example') \gset
SELECT buzz.authenticate('{"kind":22242}');
ROLLBACK;
BEGIN; SELECT buzz.enter('a.example') \gset
SELECT buzz.authenticate(NULL);
ROLLBACK;
-- After all those failures the challenge is still unused: the right event succeeds once
-- (the relay tag may carry the default port) ...
\set ev `:sign auth --sk :alice_sk --challenge :chal --relay wss://a.example:443/`
BEGIN; SELECT buzz.enter('a.example') \gset
SELECT length(buzz.authenticate(:'ev')) AS first_use_ok;
COMMIT;
-- ... and never again: it was consumed (mutation: SELECT instead of DELETE … RETURNING).
BEGIN; SELECT buzz.enter('a.example') \gset
SELECT buzz.authenticate(:'ev');
ROLLBACK;
\set ev `:sign auth --sk :alice_sk --challenge :chal --relay wss://a.example/`
BEGIN; SELECT buzz.enter('a.example') \gset
SELECT buzz.authenticate(:'ev');
ROLLBACK;
-- Foreign challenge: issued by beta's host, presented on alpha's. Its seal is over beta
-- (mutation "challenge seal ignores community" accepts it; the #[pg_test]
-- challenge_is_consumed_once_only_in_its_community catches it too).
\set host b.example
\i :abs_srcdir/include/challenge.psql
\set ev `:sign auth --sk :alice_sk --challenge :chal --relay wss://a.example/`
BEGIN; SELECT buzz.enter('a.example') \gset
SELECT buzz.authenticate(:'ev');
ROLLBACK;
-- Expired challenge: one of 1 s, used 1.2 s later (mutation "sealed challenges never expire").
\set host a.example
RESET ROLE;
SET buzz_tenancy.challenge_ttl = 1;
SET ROLE buzz_relay;
\i :abs_srcdir/include/challenge.psql
RESET ROLE;
RESET buzz_tenancy.challenge_ttl;
SELECT pg_sleep(1.2);
SET ROLE buzz_relay;
BEGIN; SELECT buzz.enter('a.example') \gset
SELECT buzz.authenticate(:'ev');
ROLLBACK;

-- Challenges are stateless (issue 15): issuing one takes no transaction id and writes no row
-- (mutation "challenges stored again": the 0.2.0 path, which inserts one).
RESET ROLE;
SELECT count(*) AS stored_before FROM buzz.challenges \gset
SET ROLE buzz_relay;
BEGIN;
SELECT buzz.enter('a.example') \gset
SELECT length(buzz.auth_challenge()) AS challenge_length, pg_current_xact_id_if_assigned() IS NULL AS no_transaction_id;
COMMIT;
RESET ROLE;
SELECT count(*) - :stored_before AS rows_written FROM buzz.challenges;
-- The key they are sealed with is the owner's alone.
SET ROLE buzz_relay;
\set VERBOSITY sqlstate
SELECT key FROM buzz.challenge_key;
\set VERBOSITY terse
-- A used challenge spelled in capitals is not another challenge (mutation "challenges in any
-- case": accepting uppercase hex would give each challenge 2^112 spellings, each usable once).
\set host a.example
\set sk :alice_sk
\i :abs_srcdir/include/login.psql
\set upper_chal `echo :chal | tr a-f A-F`
\set ev `:sign auth --sk :alice_sk --challenge :upper_chal --relay wss://a.example/`
BEGIN; SELECT buzz.enter('a.example') \gset
SELECT buzz.authenticate(:'ev');
ROLLBACK;
-- A made-up challenge of the sealed length, and one whose expiry was moved: never issued.
\set ev `:sign auth --sk :alice_sk --challenge 00000001a2497da04aba6bab523a33ebbac27594ec09d49a110544d9a040e735c040bce7b7b9c61dec14e7c40e8fdcbed0b0a8933ae562e6d6 --relay wss://a.example/`
BEGIN; SELECT buzz.enter('a.example') \gset
SELECT buzz.authenticate(:'ev');
ROLLBACK;
\i :abs_srcdir/include/challenge.psql
\set moved_chal `echo :chal | sed 's/^........./fffffffff/'`
\set ev `:sign auth --sk :alice_sk --challenge :moved_chal --relay wss://a.example/`
BEGIN; SELECT buzz.enter('a.example') \gset
SELECT buzz.authenticate(:'ev');
ROLLBACK;

-- Allowlist: dave is not a member of alpha (mutation: skipping the admission check).
\set host a.example
\set sk :dave_sk
\i :abs_srcdir/include/challenge.psql
BEGIN; SELECT buzz.enter('a.example') \gset
SELECT buzz.authenticate(:'ev');
ROLLBACK;

-- Open community: dave registers into beta — the host's community — and nowhere else (S8).
\set host b.example
\set sk :dave_sk
\i :abs_srcdir/include/login.psql
SELECT length(:'token') AS dave_beta_token_length;
\set dave_token :token
RESET ROLE;
SELECT c.slug, m.role, m.source FROM buzz.members m JOIN buzz.communities c ON c.id = m.community_id
 WHERE m.pubkey = :'dave' ORDER BY 1;
SET ROLE buzz_relay;

-- S5: a token presented on another community's host fails exactly like a random or
-- malformed one (mutation: resolving the community from the token instead of the host lets
-- alice in on beta; the lookup's own predicate is pinned by the #[pg_test]
-- token_is_found_only_in_its_community, RLS on buzz.sessions by fences.sql).
BEGIN;
SELECT buzz.enter('b.example', :'alice_token');
ROLLBACK;
BEGIN;
SELECT buzz.enter('b.example', '00000000000000000000000000000000000000000000000000000000000000aa');
ROLLBACK;
BEGIN;
SELECT buzz.enter('b.example', 'not-a-token');
ROLLBACK;
BEGIN;
SELECT buzz.enter('b.example', NULL);
ROLLBACK;
-- ... and the same for beta's token on alpha.
BEGIN;
SELECT buzz.enter('a.example', :'dave_token');
ROLLBACK;

-- Tokens are stored only as SHA-256 hashes.
RESET ROLE;
SELECT count(*) AS plaintext_tokens FROM buzz.sessions WHERE encode(token_hash, 'hex') IN (:'alice_token', :'dave_token');
SELECT count(*) AS hashed_tokens FROM buzz.sessions
 WHERE token_hash IN (sha256(decode(:'alice_token', 'hex')), sha256(decode(:'dave_token', 'hex')));
SET ROLE buzz_relay;

-- end_session ends it; the token then fails like any other.
BEGIN;
SELECT buzz.enter('b.example');
SELECT buzz.end_session(:'dave_token') AS ended;
SELECT buzz.end_session(:'dave_token') AS ended_again;
COMMIT;
BEGIN;
SELECT buzz.enter('b.example', :'dave_token');
ROLLBACK;
-- end_session is fenced too: alice's alpha token cannot be ended from beta.
BEGIN;
SELECT buzz.enter('b.example');
SELECT buzz.end_session(:'alice_token') AS ended_foreign;
COMMIT;
BEGIN;
SELECT buzz.enter('a.example', :'alice_token');
SELECT buzz.current_actor() = :'alice' AS alice_still_in;
COMMIT;

-- Revoking a member of an open community bans them from open AUTH (DESIGN §12.16); a
-- re-admission lifts the ban.
RESET ROLE;
SELECT buzz.revoke('beta', :'dave') AS revoked;
SET ROLE buzz_relay;
\set host b.example
\set sk :dave_sk
\i :abs_srcdir/include/challenge.psql
BEGIN;
SELECT buzz.enter('b.example') \gset
SELECT buzz.authenticate(:'ev');
ROLLBACK;
RESET ROLE;
SELECT buzz.admit('beta', :'dave');
SET ROLE buzz_relay;
\i :abs_srcdir/include/login.psql
SELECT length(:'token') AS readmitted_dave_token_length;
RESET ROLE;
