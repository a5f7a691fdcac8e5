-- buzz.req / buzz.count: NIP-01 filter semantics, visibility, and isolation (I1).
-- Reads the event log publish.sql leaves behind (include/events.psql makes the same one).
\getenv abs_srcdir PG_ABS_SRCDIR
\i :abs_srcdir/include/base.psql
\set VERBOSITY terse
\i :abs_srcdir/include/channels.psql
\i :abs_srcdir/include/events.psql
RESET ROLE;
SELECT e.id AS e1_id FROM buzz.events e JOIN buzz.communities c ON c.id = e.community_id
 WHERE c.slug = 'beta' AND e.event ->> 'content' = 'hello alpha' \gset
SELECT id AS in_general_id FROM buzz.events WHERE event ->> 'content' = 'in general' \gset
SELECT id AS carol_note_id FROM buzz.events WHERE event ->> 'content' = 'carol speaking' \gset
SET ROLE buzz_relay;

-- Bad filters are invalid:, each its own statement.
BEGIN;
SELECT buzz.enter('a.example', :'alice_token') \gset
SAVEPOINT s;
SELECT * FROM buzz.req('{"kinds":"1"}');
ROLLBACK TO SAVEPOINT s;
SELECT * FROM buzz.req('{"kinds":[70000]}');
ROLLBACK TO SAVEPOINT s;
SELECT * FROM buzz.req('{"ids":["abc"]}');
ROLLBACK TO SAVEPOINT s;
SELECT * FROM buzz.req('{"authors":["79BE667EF9DCBBAC55A06295CE870B07029BFCDB2DCE28D959F2815B16F81798"]}');
ROLLBACK TO SAVEPOINT s;
SELECT * FROM buzz.req('{"since":-5}');
ROLLBACK TO SAVEPOINT s;
SELECT * FROM buzz.req('{"limit":"10"}');
ROLLBACK TO SAVEPOINT s;
SELECT * FROM buzz.req('{"#tag":["x"]}');
ROLLBACK TO SAVEPOINT s;
SELECT * FROM buzz.req('{"search":"hello"}');
ROLLBACK TO SAVEPOINT s;
SELECT * FROM buzz.req('"kinds"');
ROLLBACK TO SAVEPOINT s;
SELECT buzz.count('[1, 2]');
ROLLBACK TO SAVEPOINT s;
SELECT * FROM buzz.req(NULL);
ROLLBACK TO SAVEPOINT s;
-- Numbers and nesting serde cannot hold are the same invalid: (never a raw error naming a
-- Rust source file), with or without a context.
SELECT * FROM buzz.req('{"kinds":[1e400]}');
ROLLBACK TO SAVEPOINT s;
SELECT buzz.count(('{"kinds":' || repeat('[', 200) || '1' || repeat(']', 200) || '}')::jsonb);
ROLLBACK;
SELECT * FROM buzz.req('{"kinds":[1e400]}');
SELECT buzz.count('{"kinds":[1e400]}');
SELECT * FROM buzz.req(('[' || repeat('[', 200) || repeat(']', 200) || ']')::jsonb);
-- Nor does any catalog error name where in the code it was raised (no LOCATION field; mutant
-- "catalog errors carry their source location").
\set VERBOSITY verbose
SELECT * FROM buzz.req('{"kinds":[1e400]}');
\set VERBOSITY terse

-- No context: nothing (I4), and a count of 0. Anonymous: told to authenticate (NIP-42
-- "auth-required:"), so a relay can tell "log in first" from "no matches".
SELECT count(*) AS rows_without_context FROM buzz.req('{}');
SELECT buzz.count('{}') AS count_without_context;
BEGIN;
SELECT buzz.enter('a.example') \gset
SELECT (SELECT count(*) FROM buzz.req('{}')) AS rows_anonymous, buzz.count('{}') AS count_anonymous;
COMMIT;

-- Everything alice may see in alpha: newest first, ties broken by id.
BEGIN;
SELECT buzz.enter('a.example', :'alice_token') \gset
SELECT e ->> 'created_at' AS created_at, e ->> 'kind' AS kind, e ->> 'content' AS content,
       CASE WHEN e ->> 'created_at' = lead(e ->> 'created_at') OVER ()
            THEN (e ->> 'id') < lead(e ->> 'id') OVER () END AS tie_in_id_order
  FROM buzz.req('{}') e;
SELECT buzz.count('{}') AS everything;
-- The rows come back whole however the set is taken (req fills its result in one call, in
-- materialize mode): in FROM, in the select list, and in a PL/pgSQL loop.
SELECT (SELECT array_agg(e::text) FROM buzz.req('{}') e)
     = (SELECT array_agg(x::text) FROM (SELECT buzz.req('{}') AS x) s) AS select_list_same,
       (SELECT count(*) FROM buzz.req('{"limit":2}')) AS limit_two;
DO $$
DECLARE n int := 0; r jsonb;
BEGIN
    FOR r IN SELECT e FROM buzz.req('{}') e LOOP n := n + 1; END LOOP;
    RAISE WARNING 'plpgsql loop: % rows, count says %', n, buzz.count('{}');
END $$;
-- Each filter field.
SELECT e ->> 'content' AS by_ids FROM buzz.req(jsonb_build_object('ids', jsonb_build_array(:'carol_note_id', :'in_general_id'))) e;
SELECT e ->> 'content' AS by_author FROM buzz.req(jsonb_build_object('authors', jsonb_build_array(:'carol'))) e;
SELECT e ->> 'content' AS by_kind FROM buzz.req('{"kinds":[30023]}') e;
SELECT e ->> 'content' AS by_t FROM buzz.req('{"#t":["nostr"]}') e;
SELECT e ->> 'kind' AS by_e, e ->> 'pubkey' = :'carol' AS by_carol FROM buzz.req(jsonb_build_object('#e', jsonb_build_array(:'in_general_id'))) e;
SELECT e ->> 'content' AS by_channel FROM buzz.req(jsonb_build_object('#h', jsonb_build_array(:'general'))) e;
SELECT e ->> 'content' AS by_bad_channel FROM buzz.req('{"#h":["not-a-uuid"]}') e;
SELECT e ->> 'content' AS since_until FROM buzz.req('{"since":1700000010,"until":1700000300}') e;
SELECT e ->> 'content' AS limited FROM buzz.req('{"limit":2}') e;
SELECT e ->> 'content' AS limit_zero FROM buzz.req('{"limit":0}') e;
-- Several filters are OR'ed, each with its own limit, and no event comes back twice.
SELECT e ->> 'content' AS two_filters
  FROM buzz.req(jsonb_build_array(jsonb_build_object('#h', jsonb_build_array(:'general'), 'limit', 1),
                                  '{"kinds":[1],"since":1700000010}'::jsonb)) e;
-- count is what req returns without limits, for every shape above.
SELECT f, buzz.count(f::jsonb) AS count,
       (SELECT count(*) FROM buzz.req(f::jsonb - 'limit')) AS req_rows
  FROM unnest(ARRAY['{}', '{"kinds":[1]}', '{"#t":["nostr"]}', '{"limit":1}',
                    '[{"kinds":[1]},{"kinds":[1,30023]}]', '{"since":1700000010}']) AS f
 ORDER BY f;
-- Results are exactly the stored NIP-01 JSON: each one verifies.
SELECT bool_and(buzz.verify_event(e::text)) AS all_verify, count(*) FROM buzz.req('{}') e;
COMMIT;

-- A jsonb argument stored in over 16 MiB is refused before anything of it is copied into
-- Rust memory (a Rust allocation that fails aborts the backend): too_many_filters, with or
-- without a context.
SELECT count(*) FROM buzz.req(to_jsonb(repeat('x', 17000000)));
SELECT buzz.count(to_jsonb(repeat('x', 17000000)));
-- A value can print far longer than it is stored: 0e-16383 is a few bytes in the array and
-- 16,385 characters printed (serde reads it as 0.0). The walk counts what the text would be:
-- 1,100 of them (18 MB of text) are too_many_filters, 900 (14.7 MB) are read, and refused as
-- no filter (mutation "jsonb printed without a budget").
SELECT buzz.count(('[' || rtrim(repeat('0e-16383,', 1100), ',') || ']')::jsonb);
SELECT buzz.count(('[' || rtrim(repeat('0e-16383,', 900), ',') || ']')::jsonb);
-- And the Rust memory it will take: 200,000 one-key objects (2.4 MB of text, each a map node
-- of several hundred bytes) are too_many_filters, 100,000 are read and refused as no filter
-- (mutation "objects cost only their text").
SELECT buzz.count(('[' || rtrim(repeat('{"":null},', 200000), ',') || ']')::jsonb);
SELECT buzz.count(('[' || rtrim(repeat('{"":null},', 100000), ',') || ']')::jsonb);
-- What a relay really sends is read: poll_many of 512 subscriptions following 400 authors
-- each (14 MB), answered here by the missing context, after the argument was read.
CREATE FUNCTION pg_temp.hex64(i int) RETURNS text LANGUAGE sql AS $$SELECT encode(sha256(i::text::bytea), 'hex')$$;
SELECT * FROM buzz.poll_many((SELECT jsonb_agg(jsonb_build_object('token', pg_temp.hex64(e), 'cursor', repeat('c', 40),
    'filters', jsonb_build_array(jsonb_build_object('kinds', '[1,6]'::jsonb, 'limit', 100, 'since', 1700000000,
        'authors', (SELECT jsonb_agg(pg_temp.hex64(e * 10000 + i)) FROM generate_series(1, 400) i)))))
  FROM generate_series(1, 512) e), NULL);
-- One stored in 3 MB is read from its stored form, not from its text (3 MB of control
-- characters is 18 MB of text, six times as much), and refused as what it is: no filter.
SELECT count(*) FROM buzz.req(to_jsonb(repeat(chr(1), 3000000)));
SELECT buzz.count(to_jsonb(repeat(chr(1), 3000000)));

-- Ties at the limit: five events with one created_at, a limit of 2 inside the tie. NIP-01's
-- order (created_at descending, then id ascending) decides, for each shape req plans once
-- and for one it plans per call (mutation "the newest rows without their ties": a plain
-- LIMIT in the inner read keeps whichever tied rows its index gives first, the highest ids
-- for a tag read backward).
\set sk :alice_sk
\set kind 1
\set tags '[["t","ties"]]'
\set at 1700000777
\set content 'tie a'
\i :abs_srcdir/include/sign.psql
\set t1 :ev
\set content 'tie b'
\i :abs_srcdir/include/sign.psql
\set t2 :ev
\set content 'tie c'
\i :abs_srcdir/include/sign.psql
\set t3 :ev
\set content 'tie d'
\i :abs_srcdir/include/sign.psql
\set t4 :ev
\set content 'tie e'
\i :abs_srcdir/include/sign.psql
\set t5 :ev
SELECT string_agg(id, ',' ORDER BY id) AS lowest_two FROM (
  SELECT j ->> 'id' AS id FROM unnest(ARRAY[:'t1', :'t2', :'t3', :'t4', :'t5']::jsonb[]) j ORDER BY 1 LIMIT 2) x \gset
BEGIN;
SELECT buzz.enter('a.example', :'alice_token') \gset
SELECT count(*) FILTER (WHERE accepted) AS tied_stored FROM buzz.publish(ARRAY[:'t1', :'t2', :'t3', :'t4', :'t5']);
SELECT f, (SELECT string_agg(e ->> 'id', ',') FROM buzz.req(f::jsonb) e) = :'lowest_two' AS lowest_ids_first
  FROM unnest(ARRAY['{"#t":["ties"],"limit":2}',
                    '{"kinds":[1],"since":1700000777,"until":1700000777,"limit":2}',
                    '{"since":1700000777,"until":1700000777,"limit":2}',
                    '{"kinds":[1,2],"since":1700000777,"until":1700000777,"limit":2}']) AS f;
ROLLBACK;

-- Private channels are visible to their members only (mutation: dropping the membership
-- test from the visible-channel list shows council to carol after her removal).
BEGIN;
SELECT buzz.enter('a.example', :'carol_token') \gset
SELECT e ->> 'content' AS carol_sees_council FROM buzz.req(jsonb_build_object('#h', jsonb_build_array(:'council'))) e;
COMMIT;
BEGIN;
SELECT buzz.enter('a.example', :'alice_token') \gset
SELECT buzz.remove_channel_member(:'council', :'carol');
COMMIT;
BEGIN;
SELECT buzz.enter('a.example', :'carol_token') \gset
SELECT e ->> 'content' AS carol_sees_council FROM buzz.req(jsonb_build_object('#h', jsonb_build_array(:'council'))) e;
SELECT buzz.count(jsonb_build_object('#h', jsonb_build_array(:'council'))) AS carol_counts_council;
SELECT count(*) AS carol_sees_in_total FROM buzz.req('{}');
COMMIT;

-- Isolation (I1): from beta's host, alpha's events do not exist — not by id, author, kind,
-- tag, channel or count (mutations: dropping `e.community_id = $1` from the statement is
-- pinned by the #[pg_test] req_is_confined_to_its_community; RLS by fences.sql).
BEGIN;
SELECT buzz.enter('b.example', :'alice_beta_token') \gset
SELECT e ->> 'content' AS beta_sees, e ->> 'id' = :'e1_id' AS is_the_copy FROM buzz.req('{}') e;
SELECT count(*) AS by_alpha_ids FROM buzz.req(jsonb_build_object('ids', jsonb_build_array(:'carol_note_id', :'in_general_id')));
SELECT count(*) AS by_alpha_author FROM buzz.req(jsonb_build_object('authors', jsonb_build_array(:'carol')));
SELECT count(*) AS by_alpha_kinds FROM buzz.req('{"kinds":[0,5,30023]}');
SELECT count(*) AS by_alpha_e FROM buzz.req(jsonb_build_object('#e', jsonb_build_array(:'in_general_id', :'e1_id')));
SELECT count(*) AS by_alpha_channel FROM buzz.req(jsonb_build_object('#h', jsonb_build_array(:'general')));
SELECT buzz.count(jsonb_build_object('ids', jsonb_build_array(:'carol_note_id'))) AS count_alpha_id,
       buzz.count('{"kinds":[0,5,30023]}') AS count_alpha_kinds;
COMMIT;
BEGIN;
SELECT buzz.enter('b.example', :'bob_token') \gset
SELECT e ->> 'content' AS bob_sees FROM buzz.req('{}') e;
COMMIT;
