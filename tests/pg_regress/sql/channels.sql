-- Channels: stamped from the host's community, never re-tenanted, invisible across
-- communities; membership needs admission to the same community (I5); revoke cascades.
\getenv abs_srcdir PG_ABS_SRCDIR
\i :abs_srcdir/include/base.psql
\set VERBOSITY terse
SELECT id AS alpha_id FROM buzz.communities WHERE slug = 'alpha' \gset
SELECT id AS beta_id FROM buzz.communities WHERE slug = 'beta' \gset
SET ROLE buzz_relay;
\set host a.example
\set sk :alice_sk
\i :abs_srcdir/include/login.psql
\set alice_token :token
\set sk :carol_sk
\i :abs_srcdir/include/login.psql
\set carol_token :token
\set host b.example
\set sk :bob_sk
\i :abs_srcdir/include/login.psql
\set bob_token :token

-- Anonymous actors cannot create channels; bad names and visibilities are invalid:.
BEGIN;
SELECT buzz.enter('a.example');
SELECT buzz.create_channel('general');
ROLLBACK;
BEGIN;
SELECT buzz.enter('a.example', :'alice_token');
SELECT buzz.create_channel('');
ROLLBACK;
BEGIN;
SELECT buzz.enter('a.example', :'alice_token') \gset
SELECT buzz.create_channel('x', 'secret');
ROLLBACK;
BEGIN;
SELECT buzz.enter('a.example', :'alice_token') \gset
SELECT buzz.create_channel(NULL);
ROLLBACK;

-- alice creates two channels in alpha, bob one in beta. Ids are server-generated.
BEGIN;
SELECT buzz.enter('a.example', :'alice_token');
SELECT buzz.create_channel('general') AS general \gset
SELECT buzz.create_channel('council', 'private') AS council \gset
COMMIT;
BEGIN;
SELECT buzz.enter('b.example', :'bob_token');
SELECT buzz.create_channel('beta-room') AS beta_room \gset
COMMIT;

-- The community is stamped from the host (mutation: taking it from anywhere but the
-- context would put 'general' elsewhere), and the creator is the channel admin.
RESET ROLE;
SELECT c.name, c.visibility, c.community_id = :'alpha_id' AS in_alpha, c.community_id = :'beta_id' AS in_beta,
       c.created_by = :'alice' AS by_alice
  FROM buzz.channels c ORDER BY c.name;
SELECT ch.name, m.role, m.pubkey = :'alice' AS is_alice FROM buzz.channel_members m
  JOIN buzz.channels ch ON ch.community_id = m.community_id AND ch.id = m.channel_id ORDER BY 1;

-- Nobody can re-tenant a channel or change its id, not even a superuser (mutation:
-- dropping the immutable_tenant trigger).
UPDATE buzz.channels SET community_id = :'beta_id' WHERE id = :'general';
UPDATE buzz.channels SET id = gen_random_uuid() WHERE id = :'general';
UPDATE buzz.channel_members SET community_id = :'beta_id' WHERE channel_id = :'general';
UPDATE buzz.members SET community_id = :'beta_id' WHERE pubkey = :'carol';
UPDATE buzz.channels SET name = 'general' WHERE id = :'general';   -- other columns may change
-- A text key named as the trigger's argument (members' pubkey), and a name and a regclass key
-- (a counter's) are each refused; a change of another column passes (mutations "the
-- re-tenant trigger ignores its arguments", "re-tenant compares no bytes").
UPDATE buzz.members SET pubkey = :'bob' WHERE pubkey = :'carol';
UPDATE buzz.channel_members SET pubkey = :'bob' WHERE channel_id = :'general';
INSERT INTO buzz.community_counters VALUES (:'alpha_id', 'buzz.channels', 'probe', 0);
UPDATE buzz.community_counters SET col = 'other' WHERE community_id = :'alpha_id' AND col = 'probe';
UPDATE buzz.community_counters SET tbl = 'buzz.members' WHERE community_id = :'alpha_id' AND col = 'probe';
UPDATE buzz.community_counters SET last = last + 1 WHERE community_id = :'alpha_id' AND col = 'probe' RETURNING tbl, col, last;
DELETE FROM buzz.community_counters WHERE community_id = :'alpha_id' AND col = 'probe';
UPDATE buzz.members SET role = role WHERE pubkey = :'carol';
-- The owner role with beta's context cannot even see alpha's channel to update it.
SET ROLE buzz_owner;
BEGIN;
SELECT buzz.enter('b.example') \gset
UPDATE buzz.channels SET name = 'stolen' WHERE id = :'general';
SELECT count(*) AS alpha_channels_visible_from_beta FROM buzz.channels WHERE id = :'general';
ROLLBACK;
RESET ROLE;

-- Beta's channel is invisible and unusable from alpha's host, with exactly the error a
-- nonexistent channel gets (mutation: a distinct message for foreign channels; the lookup's
-- community predicate is pinned by the #[pg_test] channel_admin_is_per_community, RLS on
-- buzz.channel_members by fences.sql).
SET ROLE buzz_relay;
BEGIN;
SELECT buzz.enter('a.example', :'alice_token');
SELECT name, visibility, my_role FROM buzz.list_channels();
SELECT buzz.add_channel_member(:'beta_room', :'carol');
ROLLBACK;
BEGIN;
SELECT buzz.enter('a.example', :'alice_token') \gset
SELECT buzz.add_channel_member('00000000-0000-0000-0000-000000000000', :'carol');
ROLLBACK;
BEGIN;
SELECT buzz.enter('a.example', :'alice_token') \gset
SELECT buzz.add_channel_member(NULL, :'carol');
ROLLBACK;
BEGIN;
SELECT buzz.enter('a.example', :'alice_token') \gset
SELECT buzz.add_channel_member('not-a-channel', :'carol');   -- never a raw cast error echoing input
ROLLBACK;
BEGIN;
SELECT buzz.enter('a.example', :'alice_token');
SELECT buzz.remove_channel_member(:'beta_room', :'bob');
ROLLBACK;
BEGIN;
SELECT buzz.enter('b.example', :'bob_token');
SELECT name, visibility, my_role FROM buzz.list_channels();
SELECT buzz.add_channel_member(:'general', :'bob');
ROLLBACK;

-- I5: bob is admitted only in beta, dave only in beta: neither can join an alpha channel,
-- and both get the same answer as a never-seen pubkey (mutation: skipping the admission
-- check makes the composite foreign key answer with a raw error instead; the check's
-- community predicate is pinned by the #[pg_test] membership_is_per_community).
BEGIN;
SELECT buzz.enter('a.example', :'alice_token');
SELECT buzz.add_channel_member(:'general', :'bob');
ROLLBACK;
BEGIN;
SELECT buzz.enter('a.example', :'alice_token');
SELECT buzz.add_channel_member(:'general', :'dave');
ROLLBACK;
BEGIN;
SELECT buzz.enter('a.example', :'alice_token');
SELECT buzz.add_channel_member(:'general', '2f8bde4d1a07209355b4a7250a5c5128e88b84bddc619ab7cba8d569b240efe4');
ROLLBACK;
BEGIN;
SELECT buzz.enter('a.example', :'alice_token');
SELECT buzz.add_channel_member(:'general', 'NOT-A-PUBKEY');
ROLLBACK;
-- By construction too: the composite foreign key refuses it even for a superuser
-- (mutation: a foreign key on pubkey alone).
RESET ROLE;
INSERT INTO buzz.channel_members (community_id, channel_id, pubkey, role) VALUES (:'alpha_id', :'general', :'bob', 'member');
INSERT INTO buzz.channel_members (community_id, channel_id, pubkey, role) VALUES (:'alpha_id', :'beta_room', :'alice', 'member');
SET ROLE buzz_relay;

-- A channel admin adds an admitted member; a non-admin cannot manage the channel.
BEGIN;
SELECT buzz.enter('a.example', :'alice_token');
SELECT buzz.add_channel_member(:'council', :'carol');
SELECT buzz.add_channel_member(:'general', :'carol', 'member');
COMMIT;
BEGIN;
SELECT buzz.enter('a.example', :'carol_token');
SELECT name, visibility, my_role FROM buzz.list_channels();
SELECT buzz.add_channel_member(:'council', :'alice', 'member');
ROLLBACK;
BEGIN;
SELECT buzz.enter('a.example', :'alice_token');
SELECT buzz.remove_channel_member(:'general', :'carol') AS removed;
SELECT buzz.remove_channel_member(:'general', :'carol') AS removed_again;
COMMIT;

-- Revoking carol from alpha removes her channel memberships and ends her sessions
-- (mutation: foreign keys without ON DELETE CASCADE keep them).
RESET ROLE;
SELECT count(*) AS carol_channel_rows_before FROM buzz.channel_members WHERE pubkey = :'carol';
SELECT buzz.revoke('alpha', :'carol') AS revoked;
SELECT buzz.revoke('alpha', :'carol') AS revoked_again;
SELECT count(*) AS carol_channel_rows_after FROM buzz.channel_members WHERE pubkey = :'carol';
SELECT count(*) AS carol_sessions_after FROM buzz.sessions WHERE pubkey = :'carol';
SELECT count(*) AS allowlist_bans FROM buzz.bans WHERE pubkey = :'carol';
SET ROLE buzz_relay;
BEGIN;
SELECT buzz.enter('a.example', :'carol_token');
ROLLBACK;
-- Re-admitted, carol must log in again and re-join channels.
RESET ROLE;
SELECT buzz.admit('alpha', :'carol');
SET ROLE buzz_relay;
BEGIN;
SELECT buzz.enter('a.example', :'carol_token');
ROLLBACK;
RESET ROLE;

-- The per-backend caches (readable channels: src/store/readable.rs; sessions), in this one
-- backend. carol, logged in again, is a member of the private channel vault, which holds one
-- event (written by the operator).
\set host a.example
\set sk :carol_sk
\i :abs_srcdir/include/login.psql
\set carol_token :token
BEGIN;
SELECT buzz.enter('a.example', :'alice_token') \gset
SELECT buzz.create_channel('vault', 'private') AS vault \gset
SELECT buzz.add_channel_member(:'vault', :'carol') AS added;
COMMIT;
RESET ROLE;
INSERT INTO buzz.events (community_id, id, pubkey, created_at, kind, channel_id, event, position)
VALUES (:'alpha_id', repeat('e', 64), :'carol', 1, 1, :'vault', '{}', 1000000);
SET ROLE buzz_relay;
BEGIN;
SELECT buzz.enter('a.example', :'carol_token') \gset
SELECT buzz.count(jsonb_build_object('#h', jsonb_build_array(:'vault'))) AS carol_reads_vault,
       buzz.count(jsonb_build_object('#h', jsonb_build_array(:'vault'))) AS carol_reads_vault_cached;
COMMIT;
-- A change applied as a replica (a logical replication subscriber, a restore) empties the
-- cache too (mutation: the cache triggers not ENABLE ALWAYS).
RESET ROLE;
SET session_replication_role = replica;
DELETE FROM buzz.channel_members WHERE channel_id = :'vault' AND pubkey = :'carol';
RESET session_replication_role;
SET ROLE buzz_relay;
BEGIN;
SELECT buzz.enter('a.example', :'carol_token') \gset
SELECT buzz.count(jsonb_build_object('#h', jsonb_build_array(:'vault'))) AS carol_reads_vault_after_replica_delete;
COMMIT;
-- A trigger that fires only for origin changes turns the cache off: a replica change would
-- not empty it (mutation: the cache ignores how its triggers fire).
RESET ROLE;
ALTER TABLE buzz.channel_members ENABLE TRIGGER reader_cache;
INSERT INTO buzz.channel_members (community_id, channel_id, pubkey, role) VALUES (:'alpha_id', :'vault', :'carol', 'member');
SET ROLE buzz_relay;
BEGIN;
SELECT buzz.enter('a.example', :'carol_token') \gset
SELECT buzz.count(jsonb_build_object('#h', jsonb_build_array(:'vault'))) AS carol_reads_vault_again,
       buzz.count(jsonb_build_object('#h', jsonb_build_array(:'vault'))) AS carol_reads_vault_again_2;
COMMIT;
RESET ROLE;
SET session_replication_role = replica;
DELETE FROM buzz.channel_members WHERE channel_id = :'vault' AND pubkey = :'carol';
RESET session_replication_role;
SET ROLE buzz_relay;
BEGIN;
SELECT buzz.enter('a.example', :'carol_token') \gset
SELECT buzz.count(jsonb_build_object('#h', jsonb_build_array(:'vault'))) AS carol_reads_vault_after_origin_only;
COMMIT;
RESET ROLE;
ALTER TABLE buzz.channel_members ENABLE ALWAYS TRIGGER reader_cache;
-- The same for the trigger of another table the cache depends on: an open channel made
-- private as a replica, with that table's trigger firing only for origin changes (mutation:
-- a cache watches only its first table, and never asks about the others' triggers again).
SET ROLE buzz_relay;
BEGIN;
SELECT buzz.enter('a.example', :'alice_token') \gset
SELECT buzz.create_channel('square', 'open') AS square \gset
COMMIT;
RESET ROLE;
INSERT INTO buzz.events (community_id, id, pubkey, created_at, kind, channel_id, event, position)
VALUES (:'alpha_id', repeat('f', 64), :'alice', 1, 1, :'square', '{}', 1000001);
SET ROLE buzz_relay;
BEGIN;
SELECT buzz.enter('a.example', :'carol_token') \gset
SELECT buzz.count(jsonb_build_object('#h', jsonb_build_array(:'square'))) AS carol_reads_square,
       buzz.count(jsonb_build_object('#h', jsonb_build_array(:'square'))) AS carol_reads_square_cached;
COMMIT;
RESET ROLE;
ALTER TABLE buzz.channels ENABLE TRIGGER reader_cache;
SET ROLE buzz_relay;
BEGIN;
SELECT buzz.enter('a.example', :'carol_token') \gset
SELECT buzz.count(jsonb_build_object('#h', jsonb_build_array(:'square'))) AS carol_reads_square_origin_only,
       buzz.count(jsonb_build_object('#h', jsonb_build_array(:'square'))) AS carol_reads_square_origin_only_2;
COMMIT;
RESET ROLE;
SET session_replication_role = replica;
UPDATE buzz.channels SET visibility = 'private' WHERE id = :'square';
RESET session_replication_role;
SET ROLE buzz_relay;
BEGIN;
SELECT buzz.enter('a.example', :'carol_token') \gset
SELECT buzz.count(jsonb_build_object('#h', jsonb_build_array(:'square'))) AS carol_reads_square_made_private;
COMMIT;
RESET ROLE;
ALTER TABLE buzz.channels ENABLE ALWAYS TRIGGER reader_cache;

-- A pooled backend outlives a re-created extension (a reinstall, a restore): its caches watch
-- the new tables, whose OIDs are new (mutation: the watched OID kept after its table is
-- dropped).
RESET ROLE;
DROP EXTENSION buzz_tenancy CASCADE;
\i :abs_srcdir/include/base.psql
\set VERBOSITY terse
SELECT id AS alpha_id FROM buzz.communities WHERE slug = 'alpha' \gset
SET ROLE buzz_relay;
\set sk :alice_sk
\i :abs_srcdir/include/login.psql
\set alice_token :token
\set sk :carol_sk
\i :abs_srcdir/include/login.psql
\set carol_token :token
BEGIN;
SELECT buzz.enter('a.example', :'alice_token') \gset
SELECT buzz.create_channel('vault', 'private') AS vault \gset
SELECT buzz.add_channel_member(:'vault', :'carol') AS added;
COMMIT;
RESET ROLE;
INSERT INTO buzz.events (community_id, id, pubkey, created_at, kind, channel_id, event, position)
VALUES (:'alpha_id', repeat('e', 64), :'carol', 1, 1, :'vault', '{}', 1000000);
SET ROLE buzz_relay;
BEGIN;
SELECT buzz.enter('a.example', :'carol_token') \gset
SELECT buzz.count(jsonb_build_object('#h', jsonb_build_array(:'vault'))) AS carol_reads_new_vault;
COMMIT;
BEGIN;
SELECT buzz.enter('a.example', :'alice_token') \gset
SELECT buzz.remove_channel_member(:'vault', :'carol') AS removed;
COMMIT;
BEGIN;
SELECT buzz.enter('a.example', :'carol_token') \gset
SELECT buzz.count(jsonb_build_object('#h', jsonb_build_array(:'vault'))) AS carol_reads_new_vault_after_removal;
SELECT buzz.end_session(:'carol_token') AS ended;
COMMIT;
BEGIN;
SELECT buzz.enter('a.example', :'carol_token');
ROLLBACK;
