-- Live delivery (DESIGN §12.19): buzz.poll after a cursor, in delivery order, with req's
-- visibility; cursors bound to their community; per-community positions; wake-up channels.
-- Concurrency (commit order, the req → cursor hand-over, LISTEN) is tools/buzz-itest live's.
\getenv abs_srcdir PG_ABS_SRCDIR
\i :abs_srcdir/include/base.psql
\set VERBOSITY terse
\i :abs_srcdir/include/channels.psql
\set sk :alice_sk
\set kind 1
\set tags '[]'
\set content 'first'
\set at 1700000001
\i :abs_srcdir/include/sign.psql
\set first :ev
\set content 'second'
\i :abs_srcdir/include/sign.psql
\set second :ev
\set content 'in council'
\set tags '[["h","' :council '"]]'
\i :abs_srcdir/include/sign.psql
\set in_council :ev
\set content 'in general'
\set tags '[["h","' :general '"]]'
\i :abs_srcdir/include/sign.psql
\set in_general :ev
\set sk :carol_sk
\set content 'carol into council'
\set tags '[["h","' :council '"]]'
\i :abs_srcdir/include/sign.psql
\set carol_in_council :ev
\set sk :alice_sk

-- Before anything is stored: the cursor of an empty community.
BEGIN;
SELECT buzz.enter('a.example', :'alice_token') \gset
SELECT buzz.cursor() AS c0 \gset
-- A cursor is opaque: nonce, sealed position and MAC in hex; a fresh nonce each time, so two
-- cursors of one position differ and even position 0 does not show (mutations "cursors carry
-- their position in clear" and "cursor nonce fixed").
SELECT :'c0' ~ '^[0-9a-f]{72}$' AS shape, buzz.cursor() <> :'c0' AS fresh_each_time,
       substr(:'c0', 33, 16) <> '0000000000000000' AS position_sealed;
SELECT count(*) AS nothing_yet FROM buzz.poll('{}', :'c0');
COMMIT;
-- Two notes, then everything after c0 in the order they were stored, each with its cursor.
BEGIN;
SELECT buzz.enter('a.example', :'alice_token') \gset
SELECT * FROM buzz.publish(:'first');
SELECT * FROM buzz.publish(:'second');
COMMIT;
BEGIN;
SELECT buzz.enter('a.example', :'alice_token') \gset
SELECT event ->> 'content' AS content, cursor ~ '^[0-9a-f]{72}$' AS shape FROM buzz.poll('{}', :'c0');
SELECT cursor AS c1 FROM buzz.poll('{}', :'c0') LIMIT 1 \gset
SELECT cursor AS c2 FROM buzz.poll('{}', :'c0') OFFSET 1 \gset
SELECT event ->> 'content' AS after_c1 FROM buzz.poll('{}', :'c1');
SELECT count(*) AS nothing_after_c2 FROM buzz.poll('{}', :'c2');
SELECT count(*) AS nothing_after_cursor FROM buzz.poll('{}', buzz.cursor());
-- Filters are req's (and their limits do not apply to live delivery).
SELECT event ->> 'content' AS kind1_limit1 FROM buzz.poll('{"kinds":[1],"limit":1}', :'c0');
SELECT event ->> 'content' AS by_two_filters FROM buzz.poll(('[{"kinds":[7]},{"authors":["' || :'alice' || '"]}]')::jsonb, :'c0');
COMMIT;

-- A cursor belongs to its community: alpha's cursor on beta's host, an edited position or
-- tag, and malformed text all get one answer (mutation "cursor MAC ignores the community key"
-- accepts alpha's cursor in beta and makes both communities' channel names equal).
BEGIN;
SELECT buzz.enter('b.example', :'bob_token') \gset
SAVEPOINT s;
SELECT * FROM buzz.poll('{}', :'c2');
ROLLBACK TO SAVEPOINT s;
SELECT * FROM buzz.poll('{}', NULL);
ROLLBACK TO SAVEPOINT s;
SELECT * FROM buzz.poll('{}', 'garbage');
ROLLBACK TO SAVEPOINT s;
ROLLBACK;
-- In alpha, an edited nonce, position or tag, the cursor upper-cased, cut short or
-- lengthened: one answer too.
BEGIN;
SELECT buzz.enter('a.example', :'alice_token') \gset
SAVEPOINT s;
SELECT * FROM buzz.poll('{}', :'c2');
SELECT * FROM buzz.poll('{}', translate(substr(:'c2', 1, 1), '0123456789abcdef', '123456789abcdef0') || substr(:'c2', 2));
ROLLBACK TO SAVEPOINT s;
SELECT * FROM buzz.poll('{}', substr(:'c2', 1, 47) || translate(substr(:'c2', 48, 1), '0123456789abcdef', '123456789abcdef0') || substr(:'c2', 49));
ROLLBACK TO SAVEPOINT s;
SELECT * FROM buzz.poll('{}', substr(:'c2', 1, 71) || translate(substr(:'c2', 72, 1), '0123456789abcdef', '123456789abcdef0'));
ROLLBACK TO SAVEPOINT s;
SELECT * FROM buzz.poll('{}', upper(:'c2'));
ROLLBACK TO SAVEPOINT s;
SELECT * FROM buzz.poll('{}', substr(:'c2', 1, 70));
ROLLBACK TO SAVEPOINT s;
SELECT * FROM buzz.poll('{}', :'c2' || '00');
ROLLBACK;

-- A cursor never stands for a position that is not committed. A transaction that published
-- holds such positions, even after a savepoint rollback gave them back to the counter; a
-- cursor minted there would later tell where another event landed, and so how many events
-- the caller cannot see lie in between (mutation "feed reads after a write").
BEGIN;
SELECT buzz.enter('a.example', :'alice_token') \gset
SAVEPOINT s;
SELECT accepted FROM buzz.publish(:'in_council');
ROLLBACK TO SAVEPOINT s;
SAVEPOINT t;
SELECT buzz.cursor();
ROLLBACK TO SAVEPOINT t;
SELECT * FROM buzz.poll('{}', :'c2');
ROLLBACK;
-- A publish refused before any lock (another author's event; a channel carol is not in)
-- takes no position and writes nothing: the cursor still works, and positions stay
-- contiguous (mutation "refused publishes take a position" leaves gaps in the superuser's
-- view at the end).
BEGIN;
SELECT buzz.enter('a.example', :'carol_token') \gset
SELECT * FROM buzz.publish(:'in_council');
SELECT * FROM buzz.publish(:'carol_in_council');
SELECT count(*) AS nothing_new FROM buzz.poll('{}', buzz.cursor());
COMMIT;
-- An idle poll still checks admission: a member revoked after enter is told so even when
-- there is no news (mutation "idle poll skips admission").
BEGIN;
SELECT buzz.enter('a.example', :'carol_token') \gset
SELECT buzz.cursor() AS c_carol \gset
SELECT count(*) AS idle FROM buzz.poll('{}', :'c_carol');
RESET ROLE;
DELETE FROM buzz.members WHERE pubkey = :'carol';
SET ROLE buzz_relay;
SELECT * FROM buzz.poll('{}', :'c_carol');
ROLLBACK;

-- Private channels reach their members only; a channel-limited token only its channels.
BEGIN;
SELECT buzz.enter('a.example', :'alice_token') \gset
SELECT * FROM buzz.publish(:'in_council');
SELECT * FROM buzz.publish(:'in_general');
SELECT buzz.mint_token('general-reader', '{read}', ARRAY[:'general']) AS general_token \gset
COMMIT;
BEGIN;
SELECT buzz.enter('a.example', :'carol_token') \gset
SELECT event ->> 'content' AS carol_gets FROM buzz.poll('{}', :'c2');
COMMIT;
BEGIN;
SELECT buzz.enter('a.example', :'alice_token') \gset
SELECT event ->> 'content' AS alice_gets FROM buzz.poll('{}', :'c2');
COMMIT;
BEGIN;
SELECT buzz.enter('a.example', :'general_token') \gset
SELECT event ->> 'content' AS general_token_gets FROM buzz.poll('{}', :'c0');
COMMIT;

-- Deleted after it was stored, expired, or replaced before the subscriber polled: not
-- delivered; the deletion and the newer version are.
BEGIN;
SELECT buzz.enter('a.example', :'alice_token') \gset
SELECT buzz.cursor() AS c4 \gset
COMMIT;
\set kind 0
\set tags '[]'
\set content '{"name":"v1"}'
\set at 1700000100
\i :abs_srcdir/include/sign.psql
\set profile_v1 :ev
\set content '{"name":"v2"}'
\set at 1700000200
\i :abs_srcdir/include/sign.psql
\set profile_v2 :ev
\set kind 1
\set content 'to be deleted'
\i :abs_srcdir/include/sign.psql
\set doomed :ev
SELECT jsonb_build_array(jsonb_build_array('expiration', (extract(epoch FROM now())::bigint + 86400)::text))::text AS tags \gset
\set content 'expires'
\i :abs_srcdir/include/sign.psql
\set expiring :ev
SELECT jsonb_build_array(jsonb_build_array('e', :'doomed'::jsonb ->> 'id'))::text AS tags \gset
\set kind 5
\set content ''
\i :abs_srcdir/include/sign.psql
\set deletion :ev
BEGIN;
SELECT buzz.enter('a.example', :'alice_token') \gset
SELECT accepted FROM buzz.publish(:'profile_v1');
SELECT accepted FROM buzz.publish(:'doomed');
SELECT accepted FROM buzz.publish(:'expiring');
SELECT accepted FROM buzz.publish(:'profile_v2');
SELECT accepted FROM buzz.publish(:'deletion');
COMMIT;
RESET ROLE;
UPDATE buzz.events SET expires_at = 1600000000 WHERE id = :'expiring'::jsonb ->> 'id';   -- time passes
SET ROLE buzz_relay;
BEGIN;
SELECT buzz.enter('a.example', :'alice_token') \gset
SELECT event ->> 'kind' AS kind, event ->> 'content' AS content FROM buzz.poll('{}', :'c4');
COMMIT;

-- Ephemeral events (kinds 20000-29999) reach live subscribers of their community only, never
-- req or count, and only for buzz_tenancy.ephemeral_retention seconds (each ephemeral publish
-- purges its community's expired ones).
\set kind 20001
\set tags '[["t","typing"]]'
\set content 'typing...'
\i :abs_srcdir/include/sign.psql
\set typing :ev
\set content 'still typing...'
\i :abs_srcdir/include/sign.psql
\set typing2 :ev
BEGIN;
SELECT buzz.enter('a.example', :'alice_token') \gset
SELECT buzz.cursor() AS c5 \gset
SELECT * FROM buzz.publish(:'typing');
COMMIT;
BEGIN;
SELECT buzz.enter('a.example', :'carol_token') \gset
SELECT event ->> 'content' AS live, event ->> 'kind' AS kind FROM buzz.poll('{"#t":["typing"]}', :'c5');
SELECT count(*) AS by_other_tag FROM buzz.poll('{"#t":["other"]}', :'c5');
SELECT count(*) AS in_req FROM buzz.req('{"kinds":[20001]}');
SELECT buzz.count('{"kinds":[20001]}') AS in_count;
COMMIT;
BEGIN;
SELECT buzz.enter('b.example', :'bob_token') \gset
SELECT count(*) AS beta_gets FROM buzz.poll('{}', buzz.cursor());
COMMIT;
RESET ROLE;
UPDATE buzz.ephemeral_events SET stored_at = stored_at - interval '1 hour';   -- time passes
SET ROLE buzz_relay;
BEGIN;
SELECT buzz.enter('a.example', :'alice_token') \gset
SELECT event ->> 'content' AS after_retention FROM buzz.poll('{}', :'c5');
SELECT * FROM buzz.publish(:'typing2');
COMMIT;
RESET ROLE;
SELECT event ->> 'content' AS kept FROM buzz.ephemeral_events ORDER BY position;
SET ROLE buzz_relay;

-- An ephemeral event past its NIP-40 expiration, or deleted by its author, is not delivered,
-- and a deleted one cannot be published again (mutations "ephemeral events delivered past
-- their expiration", "deletions leave ephemeral events").
\set kind 20001
\set tags '[]'
\set content 'soon gone'
\i :abs_srcdir/include/sign.psql
\set eph_expiring :ev
\set content 'deleted typing'
\i :abs_srcdir/include/sign.psql
\set eph_doomed :ev
SELECT jsonb_build_array(jsonb_build_array('e', :'eph_doomed'::jsonb ->> 'id'))::text AS tags \gset
\set kind 5
\set content ''
\i :abs_srcdir/include/sign.psql
\set eph_deletion :ev
BEGIN;
SELECT buzz.enter('a.example', :'alice_token') \gset
SELECT buzz.cursor() AS c6 \gset
SELECT accepted FROM buzz.publish(:'eph_expiring');
SELECT accepted FROM buzz.publish(:'eph_doomed');
COMMIT;
RESET ROLE;
UPDATE buzz.ephemeral_events SET expires_at = 1600000000 WHERE id = :'eph_expiring'::jsonb ->> 'id';   -- time passes
SET ROLE buzz_relay;
BEGIN;
SELECT buzz.enter('a.example', :'alice_token') \gset
SELECT * FROM buzz.publish(:'eph_deletion');
SELECT * FROM buzz.publish(:'eph_doomed');
COMMIT;
BEGIN;
SELECT buzz.enter('a.example', :'carol_token') \gset
SELECT event ->> 'kind' AS kind, event ->> 'content' AS content FROM buzz.poll('{}', :'c6');
COMMIT;

-- Reads stay reads: enter with a session, poll, cursor and listen_channel take no
-- transaction id, and run in a read-only transaction as on a hot standby (pgrx's read-write
-- SPI path assigned one even to a SELECT: the session lookup used it).
BEGIN TRANSACTION READ ONLY;
SELECT buzz.enter('a.example', :'alice_token') \gset
SELECT count(*) AS rows FROM buzz.poll('{}', :'c0');
SELECT buzz.cursor() IS NOT NULL AS has_cursor, buzz.listen_channel() IS NOT NULL AS has_channel;
SELECT pg_current_xact_id_if_assigned() IS NULL AS no_transaction_id;
COMMIT;
BEGIN;
SELECT buzz.enter('a.example', :'alice_token') \gset
SELECT count(*) AS rows FROM buzz.poll('{}', :'c0');
SELECT buzz.cursor() IS NOT NULL AS has_cursor, buzz.listen_channel() IS NOT NULL AS has_channel;
SELECT pg_current_xact_id_if_assigned() IS NULL AS no_transaction_id;
COMMIT;
-- Anonymous contexts are told to authenticate (NIP-42 "auth-required:"), not given an empty
-- answer, and get no cursor and no channel: those would tell them when and how much the
-- community writes (mutation "cursor and channel for contexts that cannot read"). A token
-- without the read scope is refused the same way; without a context, all three refuse.
BEGIN;
SELECT buzz.enter('a.example') \gset
SAVEPOINT s;
SELECT count(*) AS anonymous_gets FROM buzz.poll('{}', :'c0');
ROLLBACK TO SAVEPOINT s;
SELECT buzz.cursor();
ROLLBACK TO SAVEPOINT s;
SELECT buzz.listen_channel();
ROLLBACK;
BEGIN;
SELECT buzz.enter('a.example', :'alice_token') \gset
SELECT buzz.mint_token('writer-only', '{write}') AS write_token \gset
COMMIT;
BEGIN;
SELECT buzz.enter('a.example', :'write_token') \gset
SAVEPOINT s;
SELECT buzz.cursor();
ROLLBACK TO SAVEPOINT s;
SELECT buzz.listen_channel();
ROLLBACK;
SELECT * FROM buzz.poll('{}', :'c0');
SELECT buzz.cursor();
SELECT buzz.listen_channel();

-- Wake-up channels: one per community, the same on each of its hosts and for every actor,
-- and nothing a relay can compute from what it has (a keyed hash of the community's random key).
BEGIN;
SELECT buzz.enter('a.example', :'carol_token') \gset
SELECT buzz.listen_channel() AS alpha_channel \gset
COMMIT;
BEGIN;
SELECT buzz.enter('alpha.example:8443', :'alice_token') \gset
SELECT buzz.listen_channel() = :'alpha_channel' AS same_on_every_host;
COMMIT;
BEGIN;
SELECT buzz.enter('b.example', :'bob_token') \gset
SELECT buzz.listen_channel() <> :'alpha_channel' AS beta_differs, buzz.listen_channel() ~ '^buzz_[0-9a-f]{24}$' AS shape;
COMMIT;
-- buzz.poll_many: poll for many subscriptions of the entered host at once, each read under
-- its own login, exactly as poll reads it under that login; a refusal is its entry's alone.
-- Alice and the channel-limited general_token ask the same filters from the same cursor but
-- see different channels: they must not share a statement (mutation "poll_many shares rows
-- across readers" gives general_token alice's council events). Bob's token is beta's: on
-- alpha's host it fails like a random one (S5). No token, a write-only token (mutation
-- "poll_many ignores the read scope"), a bad cursor, beta's cursor and bad filters each refuse
-- their own entry only.
BEGIN;
SELECT buzz.enter('b.example', :'bob_token') \gset
SELECT buzz.cursor() AS c_beta \gset
COMMIT;
BEGIN;
SELECT buzz.enter('a.example') \gset
SELECT entry, event ->> 'kind' AS kind, event ->> 'content' AS content, cursor ~ '^[0-9a-f]{72}$' AS cursor_shape, error
  FROM buzz.poll_many(jsonb_build_array(
       jsonb_build_object('token', :'alice_token', 'filters', '[{}]'::jsonb, 'cursor', :'c0'),
       jsonb_build_object('token', :'general_token', 'filters', '[{}]'::jsonb, 'cursor', :'c0'),
       jsonb_build_object('token', :'carol_token', 'filters', '[{"kinds":[1]}]'::jsonb, 'cursor', :'c2'),
       jsonb_build_object('token', :'bob_token', 'filters', '[{}]'::jsonb, 'cursor', :'c0'),
       jsonb_build_object('filters', '[{}]'::jsonb, 'cursor', :'c0'),
       jsonb_build_object('token', :'write_token', 'filters', '[{}]'::jsonb, 'cursor', :'c0'),
       jsonb_build_object('token', :'alice_token', 'filters', '[{}]'::jsonb, 'cursor', 'garbage'),
       jsonb_build_object('token', :'alice_token', 'filters', '[{}]'::jsonb, 'cursor', :'c_beta'),
       jsonb_build_object('token', :'alice_token', 'filters', '[{"bogus":1}]'::jsonb, 'cursor', :'c0'),
       jsonb_build_object('token', :'alice_token', 'filters', '[]'::jsonb, 'cursor', :'c0')));
ROLLBACK;
-- The same rows, in the same order, as poll under each login.
BEGIN;
SELECT buzz.enter('a.example', :'alice_token') \gset
SELECT array_agg(event ->> 'id')::text AS alice_poll FROM buzz.poll('{}', :'c0') \gset
SELECT buzz.enter('a.example', :'general_token') \gset
SELECT array_agg(event ->> 'id')::text AS general_poll FROM buzz.poll('{}', :'c0') \gset
SELECT buzz.enter('a.example', :'carol_token') \gset
SELECT array_agg(event ->> 'id')::text AS carol_poll FROM buzz.poll('{}', :'c0') \gset
SELECT buzz.enter('a.example') \gset
SELECT (array_agg(event ->> 'id') FILTER (WHERE entry = 0 AND event IS NOT NULL))::text = :'alice_poll' AS alice_same,
       (array_agg(event ->> 'id') FILTER (WHERE entry = 1 AND event IS NOT NULL))::text = :'general_poll' AS general_same,
       (array_agg(event ->> 'id') FILTER (WHERE entry = 2 AND event IS NOT NULL))::text = :'carol_poll' AS carol_same,
       count(*) FILTER (WHERE event IS NULL) AS end_rows
  FROM buzz.poll_many(jsonb_build_array(
       jsonb_build_object('token', :'alice_token', 'filters', '[{}]'::jsonb, 'cursor', :'c0'),
       jsonb_build_object('token', :'general_token', 'filters', '[{}]'::jsonb, 'cursor', :'c0'),
       jsonb_build_object('token', :'carol_token', 'filters', '[{}]'::jsonb, 'cursor', :'c0')));
-- An end row's cursor is where to resume: nothing after it. An idle entry gets a fresh cursor
-- for the same place (not its own text back, which would say that nothing was written since).
SELECT cursor AS c_end FROM buzz.poll_many(jsonb_build_array(
       jsonb_build_object('token', :'alice_token', 'filters', '[{}]'::jsonb, 'cursor', :'c0'))) WHERE event IS NULL \gset
SELECT entry, event IS NULL AS end_row, cursor = :'c_end' AS same_text, cursor
  FROM buzz.poll_many(jsonb_build_array(jsonb_build_object('token', :'alice_token', 'filters', '[{}]'::jsonb, 'cursor', :'c_end'))) \gset idle_
SELECT :'idle_entry' AS entry, :'idle_end_row' AS end_row, :'idle_same_text' AS same_text;
SELECT entry, event IS NULL AS end_row, error
  FROM buzz.poll_many(jsonb_build_array(jsonb_build_object('token', :'alice_token', 'filters', '[{}]'::jsonb, 'cursor', :'idle_cursor')));
-- The byte budget: events stop at max_bytes (the call's first event always comes). The entry
-- cut there gets no end row, and every later entry no row at all, with news (carol) or
-- without (alice at the head: whether anything was written stays unsaid); each asks again
-- from where it stands. Refusals found before reading are still answered. An entry that is not
-- an object is refused alone, an array too (not taken by position).
SELECT entry, event IS NOT NULL AS has_event, cursor IS NOT NULL AS has_cursor, error
  FROM buzz.poll_many(jsonb_build_array(
       jsonb_build_object('token', :'alice_token', 'filters', '[{}]'::jsonb, 'cursor', :'c0'),
       jsonb_build_object('token', :'carol_token', 'filters', '[{}]'::jsonb, 'cursor', :'c0'),
       jsonb_build_object('token', :'alice_token', 'filters', '[{}]'::jsonb, 'cursor', :'c_end'),
       '"not an entry"'::jsonb,
       jsonb_build_array(:'alice_token', '[{}]'::jsonb, :'c0'),
       jsonb_build_object('filters', '[{}]'::jsonb, 'cursor', :'c0')), 1);
-- NULL is the default budget (4 MiB), not the ceiling: everything here fits either way, so
-- the two answers are the same.
SELECT (SELECT count(*) FROM buzz.poll_many(jsonb_build_array(
            jsonb_build_object('token', :'alice_token', 'filters', '[{}]'::jsonb, 'cursor', :'c0')), NULL)) =
       (SELECT count(*) FROM buzz.poll_many(jsonb_build_array(
            jsonb_build_object('token', :'alice_token', 'filters', '[{}]'::jsonb, 'cursor', :'c0')))) AS null_is_default;
-- ... and with room for everything, each entry ends with its end row.
SELECT entry, count(*) FILTER (WHERE event IS NOT NULL) AS events, count(*) FILTER (WHERE event IS NULL) AS end_rows
  FROM buzz.poll_many(jsonb_build_array(
       jsonb_build_object('token', :'alice_token', 'filters', '[{}]'::jsonb, 'cursor', :'c0'),
       jsonb_build_object('token', :'carol_token', 'filters', '[{}]'::jsonb, 'cursor', :'c0')), 100000000)
 GROUP BY entry ORDER BY entry;
COMMIT;
-- A member revoked since her session was cached is refused, even with no news; beta's host
-- does not know alpha's tokens; reads stay reads (no transaction id, as on a standby).
BEGIN;
SELECT buzz.enter('a.example') \gset
RESET ROLE;
DELETE FROM buzz.members WHERE pubkey = :'carol';
SET ROLE buzz_relay;
SELECT entry, error FROM buzz.poll_many(jsonb_build_array(
       jsonb_build_object('token', :'carol_token', 'filters', '[{}]'::jsonb, 'cursor', :'c_end'),
       jsonb_build_object('token', :'alice_token', 'filters', '[{}]'::jsonb, 'cursor', :'c_end')));
ROLLBACK;
BEGIN TRANSACTION READ ONLY;
SELECT buzz.enter('b.example') \gset
SELECT entry, error FROM buzz.poll_many(jsonb_build_array(
       jsonb_build_object('token', :'alice_token', 'filters', '[{}]'::jsonb, 'cursor', :'c0'),
       jsonb_build_object('token', :'bob_token', 'filters', '[{}]'::jsonb, 'cursor', :'c_beta')));
SELECT pg_current_xact_id_if_assigned() IS NULL AS no_transaction_id;
COMMIT;
-- Refused as a whole: no context, a malformed list, more than 1,024 entries, after a publish
-- in the same transaction (mutation "poll_many after a write").
SELECT * FROM buzz.poll_many('[]');
BEGIN;
SELECT buzz.enter('a.example') \gset
SAVEPOINT s;
SELECT * FROM buzz.poll_many('{"token": "x"}');
ROLLBACK TO SAVEPOINT s;
SELECT * FROM buzz.poll_many((SELECT jsonb_agg(jsonb_build_object('filters', '[]'::jsonb)) FROM generate_series(1, 1025)));
ROLLBACK TO SAVEPOINT s;
SELECT count(*) AS at_most_1024 FROM buzz.poll_many((SELECT jsonb_agg(jsonb_build_object('filters', '[]'::jsonb)) FROM generate_series(1, 1024)));
ROLLBACK;
BEGIN;
SELECT buzz.enter('a.example', :'alice_token') \gset
SELECT accepted FROM buzz.publish(:'first');
SELECT * FROM buzz.poll_many(jsonb_build_array(jsonb_build_object('token', :'alice_token', 'filters', '[{}]'::jsonb, 'cursor', :'c0')));
ROLLBACK;
RESET ROLE;
-- Positions count each community's events in commit order (superuser's view).
SELECT c.slug, e.event ->> 'content' AS content, e.position
  FROM buzz.events e JOIN buzz.communities c ON c.id = e.community_id
 ORDER BY c.slug, e.position;
