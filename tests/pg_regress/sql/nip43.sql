-- NIP-43 member lists (S7) and community-signed system events (S3): authoritative only when
-- signed by the entered community's own key, looked up from the context. Mutants: "member
-- list accepted with a foreign key", "system event accepted with a foreign key".
\getenv abs_srcdir PG_ABS_SRCDIR
\i :abs_srcdir/include/base.psql
\set VERBOSITY terse
SELECT id AS alpha_id FROM buzz.communities WHERE slug = 'alpha' \gset
-- Each community's signing key (held client-side; the database sees pubkeys).
\set alpha_key_sk 0000000000000000000000000000000000000000000000000000000000000005
\set beta_key_sk 0000000000000000000000000000000000000000000000000000000000000006
\set alpha_key `:sign pubkey --sk :alpha_key_sk`
\set beta_key `:sign pubkey --sk :beta_key_sk`
SELECT buzz.set_signing_key('alpha', :'alpha_key'), buzz.set_signing_key('beta', :'beta_key');
-- A key serves one community: its signatures must not replay into another.
SELECT buzz.set_signing_key('beta', :'alpha_key');
SELECT buzz.create_community('gamma2', 'Gamma 2', 'allowlist', :'alpha_key');
\o /dev/null
\i :abs_srcdir/include/channels.psql
\o

-- A list for alpha, signed with alpha's key: dave and bob become members (source nip43).
\set kind 13534
\set content ''
\set sk :alpha_key_sk
\set at 1700200000
\set tags '[["-"],["member","' :dave '"],["member","' :bob '"]]'
\i :abs_srcdir/include/sign.psql
\set list1 :ev
BEGIN;
SELECT buzz.enter('a.example');
SELECT * FROM buzz.apply_member_list(:'list1');
COMMIT;
RESET ROLE;
SELECT CASE pubkey WHEN :'alice' THEN 'alice' WHEN :'bob' THEN 'bob' WHEN :'carol' THEN 'carol' WHEN :'dave' THEN 'dave' END AS member,
       source FROM buzz.members WHERE community_id = :'alpha_id' ORDER BY 1;
SET ROLE buzz_relay;
-- The same list again, or an older one: refused.
BEGIN;
SELECT buzz.enter('a.example');
SELECT * FROM buzz.apply_member_list(:'list1');
ROLLBACK;
\set at 1700100000
\i :abs_srcdir/include/sign.psql
BEGIN;
SELECT buzz.enter('a.example');
SELECT * FROM buzz.apply_member_list(:'ev');
ROLLBACK;
-- Signed with beta's key (beta's own list, presented on alpha's host), or by a member, or
-- of another kind: refused.
\set at 1700300000
\set sk :beta_key_sk
\i :abs_srcdir/include/sign.psql
\set beta_list :ev
BEGIN;
SELECT buzz.enter('a.example');
SELECT * FROM buzz.apply_member_list(:'beta_list');
ROLLBACK;
\set sk :alice_sk
\i :abs_srcdir/include/sign.psql
BEGIN;
SELECT buzz.enter('a.example');
SELECT * FROM buzz.apply_member_list(:'ev');
ROLLBACK;
\set at 4000000000
\set sk :alpha_key_sk
\i :abs_srcdir/include/sign.psql
BEGIN;
SELECT buzz.enter('a.example');
SELECT * FROM buzz.apply_member_list(:'ev');                     -- dated in the future
ROLLBACK;
\set at 1700300000
\set kind 13535
\set sk :alpha_key_sk
\i :abs_srcdir/include/sign.psql
BEGIN;
SELECT buzz.enter('a.example');
SELECT * FROM buzz.apply_member_list(:'ev');
ROLLBACK;
-- ... but on beta's host, beta's list applies to beta only.
BEGIN;
SELECT buzz.enter('b.example');
SELECT * FROM buzz.apply_member_list(:'beta_list');
COMMIT;

-- Bob, now admitted to alpha, logs in and joins a channel; the next list drops him: his
-- session and channel membership go with him. Alice and carol (admitted by the operator)
-- are not the lists' to remove.
\set host a.example
\set sk :bob_sk
\o /dev/null
\i :abs_srcdir/include/login.psql
\o
\set bob_alpha_token :token
BEGIN;
SELECT buzz.enter('a.example', :'alice_token');
SELECT id AS general FROM buzz.list_channels() WHERE name = 'general' \gset
SELECT buzz.add_channel_member(:'general', :'bob');
COMMIT;
\set kind 13534
\set sk :alpha_key_sk
\set at 1700400000
\set tags '[["-"],["member","' :dave '"]]'
\i :abs_srcdir/include/sign.psql
BEGIN;
SELECT buzz.enter('a.example');
SELECT * FROM buzz.apply_member_list(:'ev');
COMMIT;
BEGIN;
SELECT buzz.enter('a.example', :'bob_alpha_token');
ROLLBACK;
RESET ROLE;
SELECT CASE pubkey WHEN :'alice' THEN 'alice' WHEN :'bob' THEN 'bob' WHEN :'carol' THEN 'carol' WHEN :'dave' THEN 'dave' END AS member,
       source FROM buzz.members WHERE community_id = :'alpha_id' ORDER BY 1;
SELECT count(*) AS bob_channel_memberships_in_alpha FROM buzz.channel_members
 WHERE community_id = :'alpha_id' AND pubkey = :'bob';
SELECT count(*) AS bob_still_in_beta FROM buzz.members m JOIN buzz.communities c ON c.id = m.community_id
 WHERE c.slug = 'beta' AND m.pubkey = :'bob';
SELECT action, detail ->> 'added' AS added, detail ->> 'removed' AS removed
  FROM buzz.audit_log WHERE community_id = :'alpha_id' AND action = 'member_list.apply' ORDER BY seq;
SET ROLE buzz_relay;

-- NIP-29 system events (kinds 39000-39002): the same group id "g1" in both communities, each
-- signed by its own community's key and submitted by any authenticated member.
\set kind 39000
\set at 1700500000
\set content ''
\set tags '[["d","g1"],["name","Alpha group"]]'
\set sk :alpha_key_sk
\i :abs_srcdir/include/sign.psql
\set alpha_g1 :ev
\set tags '[["d","g1"],["name","Beta group"]]'
\set sk :beta_key_sk
\i :abs_srcdir/include/sign.psql
\set beta_g1 :ev
BEGIN;
SELECT buzz.enter('a.example', :'alice_token');
SELECT * FROM buzz.publish(:'alpha_g1');
SELECT * FROM buzz.publish(:'beta_g1');                       -- beta's key, on alpha
COMMIT;
BEGIN;
SELECT buzz.enter('b.example', :'bob_token');
SELECT * FROM buzz.publish(:'beta_g1');
SELECT * FROM buzz.publish(:'alpha_g1');                      -- alpha's key, on beta
COMMIT;
-- A member's own key, and a system event naming a channel: refused.
\set kind 39001
\set tags '[["d","g1"],["p","' :alice '"]]'
\set sk :alice_sk
\i :abs_srcdir/include/sign.psql
\set by_alice :ev
\set tags '[["d","g1"],["h","00000000-0000-0000-0000-000000000000"]]'
\set sk :alpha_key_sk
\i :abs_srcdir/include/sign.psql
BEGIN;
SELECT buzz.enter('a.example', :'alice_token');
SELECT * FROM buzz.publish(:'by_alice');
SELECT * FROM buzz.publish(:'ev');
COMMIT;
-- Each community reads its own g1.
BEGIN;
SELECT buzz.enter('a.example', :'alice_token');
SELECT e -> 'tags' -> 1 ->> 1 AS alpha_reads, e ->> 'pubkey' = :'alpha_key' AS by_alpha_key
  FROM buzz.req('{"kinds":[39000], "#d":["g1"]}') e;
COMMIT;
BEGIN;
SELECT buzz.enter('b.example', :'bob_token');
SELECT e -> 'tags' -> 1 ->> 1 AS beta_reads, e ->> 'pubkey' = :'beta_key' AS by_beta_key
  FROM buzz.req('{"kinds":[39000], "#d":["g1"]}') e;
COMMIT;
RESET ROLE;
