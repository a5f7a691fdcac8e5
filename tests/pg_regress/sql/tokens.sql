-- API tokens (S1, S2, S5, S6, DESIGN §12.7): minted once from a signed session, stamped with
-- the community, refused like a random token anywhere else; scopes and channel claims bound
-- publish, req and count; revocation, expiry and the minter's revocation take effect at the
-- next enter; usage costs no write per read. Mutants: "API token ignores its community",
-- "mint accepts another community's channel", "token scopes ignored".
\getenv abs_srcdir PG_ABS_SRCDIR
\i :abs_srcdir/include/base.psql
\i :abs_srcdir/include/adopted.psql
\set VERBOSITY terse
SELECT id AS alpha_id FROM buzz.communities WHERE slug = 'alpha' \gset
\i :abs_srcdir/include/channels.psql
\i :abs_srcdir/include/events.psql
\i :abs_srcdir/include/relay_data.psql
\o /dev/null
BEGIN;
SELECT buzz.enter('a.example', :'alice_token');
SELECT buzz.create_channel('bots', 'open') AS bots \gset
SELECT buzz.create_channel('ops', 'private') AS ops \gset
COMMIT;
\o

-- Minting needs an authenticated actor of a signed session, sane arguments, and channels
-- the minter may use in this community (another community's channel, a malformed id and a
-- private channel without the minter all answer like an unknown channel).
BEGIN;
SELECT buzz.enter('a.example');
SELECT buzz.mint_token('x', '{read}');
ROLLBACK;
BEGIN;
SELECT buzz.enter('a.example', :'alice_token');
SELECT buzz.mint_token('', '{read}');
ROLLBACK;
BEGIN;
SELECT buzz.enter('a.example', :'alice_token');
SELECT buzz.mint_token('x', '{read,admin}');
ROLLBACK;
BEGIN;
SELECT buzz.enter('a.example', :'alice_token');
SELECT buzz.mint_token('x', '{read}', NULL, '-1 hour');
ROLLBACK;
BEGIN;
SELECT buzz.enter('a.example', :'alice_token');
SELECT buzz.mint_token('x', '{write}', ARRAY[:'beta_room']);
ROLLBACK;
BEGIN;
SELECT buzz.enter('a.example', :'alice_token');
SELECT buzz.mint_token('x', '{write}', ARRAY['not-a-uuid']);
ROLLBACK;
BEGIN;
SELECT buzz.enter('a.example', :'carol_token');
SELECT buzz.mint_token('x', '{write}', ARRAY[:'ops']);
ROLLBACK;
-- Arrays are bounded before they are copied (16 scopes, 10,000 channel ids): past that,
-- the same answers, without a copy of the array (130 million NULLs were a 3 GB allocation
-- that aborted the backend). The same scope twice is still fine.
BEGIN;
SELECT buzz.enter('a.example', :'alice_token');
SELECT buzz.mint_token('x', array_fill('read'::text, ARRAY[17]));
ROLLBACK;
BEGIN;
SELECT buzz.enter('a.example', :'alice_token');
SELECT buzz.mint_token('x', '{write}', array_fill(NULL::text, ARRAY[10001]));
ROLLBACK;
BEGIN;
SELECT buzz.enter('a.example', :'alice_token');
SELECT length(buzz.mint_token('twice', '{read,read}')) AS twice_token_length;
ROLLBACK;

-- Alice mints: full rights, read only, write only, and one limited to #bots.
BEGIN;
SELECT buzz.enter('a.example', :'alice_token');
SELECT buzz.mint_token('full', '{read,write}') AS full_token \gset
SELECT buzz.mint_token('reader', '{read}') AS read_token \gset
SELECT buzz.mint_token('writer', '{write}') AS write_token \gset
SELECT buzz.mint_token('bots-only', '{read,write}', ARRAY[:'bots']) AS bots_token \gset
COMMIT;
BEGIN;
SELECT buzz.enter('a.example', :'alice_token');
SELECT buzz.mint_token('full', '{read}');                       -- the name is taken
ROLLBACK;
SELECT left(:'full_token', 9) AS prefix, length(:'full_token') AS length;
RESET ROLE;
SELECT name, scopes, channel_limited, expires_at > now() + interval '89 days' AS default_ttl
  FROM buzz.api_tokens WHERE community_id = :'alpha_id' ORDER BY name;
SET ROLE buzz_relay;

-- A token works on every host of its community, as its minter; a token cannot mint.
BEGIN;
SELECT buzz.enter('alpha.example:8443', :'full_token');
SELECT buzz.current_actor() = :'alice' AS actor_is_alice;
SELECT buzz.mint_token('child', '{read}');
ROLLBACK;
-- On another community's host it fails exactly like a random token (S5).
BEGIN;
SELECT buzz.enter('b.example', :'full_token');
ROLLBACK;
BEGIN;
SELECT buzz.enter('b.example', 'buzz_api_0000000000000000000000000000000000000000000000000000000000000000');
ROLLBACK;

-- Scopes (S6): a read-only token cannot publish; a write-only token cannot read or count.
\set sk :alice_sk
\set kind 1
\set tags '[]'
\set at 1700100001
\set content 'via reader'
\i :abs_srcdir/include/sign.psql
BEGIN;
SELECT buzz.enter('a.example', :'read_token');
SELECT * FROM buzz.publish(:'ev');
SELECT count(*) > 0 AS reader_reads FROM buzz.req('{"kinds":[1]}');
ROLLBACK;
BEGIN;
SELECT buzz.enter('a.example', :'write_token');
SELECT * FROM buzz.publish(:'ev');
ROLLBACK;
BEGIN;
SELECT buzz.enter('a.example', :'write_token');
SELECT count(*) FROM buzz.req('{"kinds":[1]}');
ROLLBACK;
BEGIN;
SELECT buzz.enter('a.example', :'write_token');
SELECT buzz.count('{"kinds":[1]}');
ROLLBACK;

-- Channel claims: the #bots token posts only into #bots and reads only #bots.
\set content 'in bots'
\set tags '[["h","' :bots '"]]'
\i :abs_srcdir/include/sign.psql
\set in_bots :ev
\set content 'no channel'
\set tags '[]'
\i :abs_srcdir/include/sign.psql
\set no_channel :ev
\set content 'in ops'
\set tags '[["h","' :ops '"]]'
\i :abs_srcdir/include/sign.psql
\set in_ops :ev
BEGIN;
SELECT buzz.enter('a.example', :'bots_token');
SELECT * FROM buzz.publish(:'in_bots');
SELECT * FROM buzz.publish(:'no_channel');
SELECT * FROM buzz.publish(:'in_ops');
COMMIT;
BEGIN;
SELECT buzz.enter('a.example', :'alice_token');
SELECT * FROM buzz.publish(:'no_channel');
SELECT * FROM buzz.publish(:'in_ops');
COMMIT;
BEGIN;
SELECT buzz.enter('a.example', :'bots_token');
SELECT e ->> 'content' AS bots_token_sees FROM buzz.req('{"since":1700100000}') e;
SELECT buzz.count('{"since":1700100000}') AS bots_token_counts;
COMMIT;
BEGIN;
SELECT buzz.enter('a.example', :'full_token');
SELECT e ->> 'content' AS full_token_sees FROM buzz.req('{"since":1700100000}') e ORDER BY 1;
COMMIT;

-- Usage is recorded at most once an hour, never by a read-only transaction.
RESET ROLE;
SELECT last_used_at AS first_use FROM buzz.api_tokens WHERE name = 'full' \gset
SET ROLE buzz_relay;
BEGIN;
SELECT buzz.enter('a.example', :'full_token');
COMMIT;
BEGIN READ ONLY;
SELECT buzz.enter('a.example', :'full_token');
SELECT count(*) > 0 AS read_only_reads FROM buzz.req('{"kinds":[1]}');
COMMIT;
RESET ROLE;
SELECT last_used_at = :'first_use' AS no_write_per_read FROM buzz.api_tokens WHERE name = 'full';

-- Revocation and expiry take effect at the next enter; so does revoking the minter.
SET ROLE buzz_relay;
BEGIN;
SELECT buzz.enter('a.example', :'alice_token');
SELECT buzz.revoke_token('reader') AS revoked, buzz.revoke_token('reader') AS again;
COMMIT;
BEGIN;
SELECT buzz.enter('a.example', :'read_token');
ROLLBACK;
RESET ROLE;
UPDATE buzz.api_tokens SET expires_at = now() - interval '1 second' WHERE name = 'writer';
SET ROLE buzz_relay;
BEGIN;
SELECT buzz.enter('a.example', :'write_token');
ROLLBACK;
-- Expiry is judged by the clock, not by the transaction's start (DESIGN §12.20): a
-- transaction opened before a credential expires does not accept it afterwards (mutants
-- "token expiry judged at the transaction start", "session expiry judged at the transaction
-- start").
BEGIN;
SELECT buzz.enter('a.example', :'alice_token');
SELECT buzz.mint_token('brief', '{read}', NULL, '1 second') AS brief_token \gset
COMMIT;
BEGIN;
SELECT now() IS NOT NULL AS transaction_started;
SELECT pg_sleep(1.5);
SELECT buzz.enter('a.example', :'brief_token');
ROLLBACK;
RESET ROLE;
UPDATE buzz.sessions SET expires_at = clock_timestamp() + interval '1 second' WHERE pubkey = :'carol';
SET ROLE buzz_relay;
BEGIN;
SELECT now() IS NOT NULL AS transaction_started;
SELECT pg_sleep(1.5);
SELECT buzz.enter('a.example', :'carol_token');
ROLLBACK;
RESET ROLE;
UPDATE buzz.sessions SET expires_at = clock_timestamp() + interval '1 day' WHERE pubkey = :'carol';
-- The lifetime cap compares the expiry timestamps a lifetime produces, not intervals: '1 year'
-- compares as 360 days, below a 362-day cap, but adds 365 or 366 (mutant "token lifetime capped
-- by interval comparison"; the same gap lets '2 months 30 days' outlive a 90-day cap).
SET buzz_tenancy.token_max_ttl = 31276800;
SET ROLE buzz_relay;
BEGIN;
SELECT buzz.enter('a.example', :'alice_token');
SELECT buzz.mint_token('yearly', '{read}', NULL, '1 year') IS NOT NULL AS minted;
COMMIT;
RESET ROLE;
SELECT expires_at <= created_at + interval '362 days' + interval '1 minute' AS within_cap,
       expires_at > created_at + interval '361 days' AS capped_not_cut
  FROM buzz.api_tokens WHERE name = 'yearly';
RESET buzz_tenancy.token_max_ttl;
SET ROLE buzz_relay;
BEGIN;
SELECT buzz.enter('a.example', :'carol_token');
SELECT buzz.mint_token('carol-bot', '{read}') AS carol_bot \gset
COMMIT;
RESET ROLE;
SELECT buzz.revoke('alpha', :'carol');
SET ROLE buzz_relay;
BEGIN;
SELECT buzz.enter('a.example', :'carol_bot');
ROLLBACK;
RESET ROLE;
SELECT buzz.admit('alpha', :'carol');

-- A token limited to a private channel loses it with its minter's membership.
SET ROLE buzz_relay;
BEGIN;
SELECT buzz.enter('a.example', :'alice_token');
SELECT buzz.add_channel_member(:'ops', :'carol');
COMMIT;
\o /dev/null
\i :abs_srcdir/include/logins.psql
\o
BEGIN;
SELECT buzz.enter('a.example', :'carol_token');
SELECT buzz.mint_token('carol-ops', '{read}', ARRAY[:'ops']) AS carol_ops \gset
COMMIT;
BEGIN;
SELECT buzz.enter('a.example', :'carol_ops');
SELECT e ->> 'content' AS carol_token_sees FROM buzz.req('{"since":1700100000}') e;
COMMIT;
BEGIN;
SELECT buzz.enter('a.example', :'alice_token');
SELECT buzz.remove_channel_member(:'ops', :'carol');
COMMIT;
BEGIN;
SELECT buzz.enter('a.example', :'carol_ops');
SELECT count(*) AS after_removal FROM buzz.req('{"since":1700100000}');
COMMIT;
RESET ROLE;

-- Every mint and revocation is on alpha's audit chain.
SELECT action, object FROM buzz.audit_log WHERE community_id = :'alpha_id' AND action LIKE 'token.%' ORDER BY seq;

-- A token never exceeds its scopes and claims (DESIGN §12.7), beyond publish and req too:
SET ROLE buzz_relay;
BEGIN;
SELECT buzz.enter('a.example', :'alice_token');
SELECT buzz.current_scopes() AS session_scopes;
SELECT buzz.mint_token('reader2', '{read}') AS read2_token \gset
COMMIT;
-- ... a channel-limited token publishes no deletion and no replaceable or addressable version
-- (they act on the author's events in every channel) ...
\set sk :alice_sk
\set kind 5
\set content ''
\set tags '[["h","' :bots '"],["e","0000000000000000000000000000000000000000000000000000000000000000"]]'
\i :abs_srcdir/include/sign.psql
\set deletion :ev
\set kind 0
\set tags '[["h","' :bots '"]]'
\i :abs_srcdir/include/sign.psql
\set profile :ev
BEGIN;
SELECT buzz.enter('a.example', :'bots_token');
SELECT * FROM buzz.publish(:'deletion');
SELECT * FROM buzz.publish(:'profile');
-- ... lists only its channels ...
SELECT name AS bots_token_lists FROM buzz.list_channels();
COMMIT;
-- ... administers no channel and no token ...
BEGIN;
SELECT buzz.enter('a.example', :'full_token');
SELECT buzz.create_channel('from-a-token');
ROLLBACK;
BEGIN;
SELECT buzz.enter('a.example', :'full_token');
SELECT buzz.add_channel_member(:'ops', :'carol');
ROLLBACK;
BEGIN;
SELECT buzz.enter('a.example', :'full_token');
SELECT buzz.revoke_token('bots-only');
ROLLBACK;
-- ... and its scopes are visible to the policies of the relay's own tables: a read-only
-- token reads them but cannot write them.
BEGIN;
SELECT buzz.enter('a.example', :'read2_token');
SELECT buzz.current_scopes() AS read_token_scopes;
SELECT count(*) > 0 AS reads_relay_tables FROM relay.channels;
\set VERBOSITY sqlstate
INSERT INTO relay.channels (name) VALUES ('by-a-read-token');
\set VERBOSITY terse
ROLLBACK;
BEGIN;
SELECT buzz.enter('a.example', :'full_token');
INSERT INTO relay.channels (name) VALUES ('by-a-write-token');
ROLLBACK;
RESET ROLE;
