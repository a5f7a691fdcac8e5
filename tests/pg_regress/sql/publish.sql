-- buzz.publish: the typed pipeline, kind rules, NIP-09/NIP-40, the h fence, duplicates.
-- Answers are (accepted, message) like NIP-01 OK; client faults never raise.
\getenv abs_srcdir PG_ABS_SRCDIR
\i :abs_srcdir/include/base.psql
\set VERBOSITY terse
SELECT id AS alpha_id FROM buzz.communities WHERE slug = 'alpha' \gset
SELECT id AS beta_id FROM buzz.communities WHERE slug = 'beta' \gset
\i :abs_srcdir/include/channels.psql

\set sk :alice_sk
\set kind 1
\set content 'hello alpha'
\set tags '[["t","nostr"]]'
\set at 1700000001
\i :abs_srcdir/include/sign.psql
\set e1 :ev

-- No context, or no authenticated actor: auth-required:, never an exception (whatever the
-- input: nothing reaches the client from a parser outside the extension).
SELECT * FROM buzz.publish(:'e1');
SELECT * FROM buzz.publish('{"a":1e400}'::json);
BEGIN;
SELECT buzz.enter('a.example') \gset
SELECT * FROM buzz.publish(:'e1');
ROLLBACK;

-- Accepted once; the same id again in the same community is a duplicate.
BEGIN;
SELECT buzz.enter('a.example', :'alice_token') \gset
SELECT * FROM buzz.publish(:'e1');
SELECT * FROM buzz.publish(:'e1');
SELECT * FROM buzz.publish(:'e1'::json);              -- the json form, same answer
COMMIT;
-- What is stored is exactly the NIP-01 event, labelled with the host's community.
RESET ROLE;
SELECT community_id = :'alpha_id' AS in_alpha, kind, created_at, channel_id IS NULL AS channel_less,
       event = :'e1'::jsonb AS exact_json
  FROM buzz.events WHERE id = :'e1'::jsonb ->> 'id';
SELECT community_id = :'alpha_id' AS in_alpha, name, value FROM buzz.event_tags WHERE event_id = :'e1'::jsonb ->> 'id';
SET ROLE buzz_relay;

-- Malformed input is invalid:, one message per kind of fault.
BEGIN;
SELECT buzz.enter('a.example', :'alice_token') \gset
SELECT * FROM buzz.publish('not json');
SELECT * FROM buzz.publish('{"kind":1}');
SELECT * FROM buzz.publish(NULL::text);
SELECT * FROM buzz.publish(replace(:'e1', '"kind":1', '"kind":"1"'));
SELECT * FROM buzz.publish(replace(:'e1', '"created_at":1700000001', '"created_at":-1'));
SELECT * FROM buzz.publish(jsonb_set(:'e1'::jsonb, '{id}', to_jsonb(upper(:'e1'::jsonb ->> 'id')))::text);
SELECT * FROM buzz.publish(jsonb_set(:'e1'::jsonb, '{sig}', to_jsonb(left(:'e1'::jsonb ->> 'sig', 100)))::text);
SELECT * FROM buzz.publish(jsonb_set(:'e1'::jsonb, '{pubkey}', '"xyz"')::text);
SELECT * FROM buzz.publish(replace(:'e1', 'hello alpha', 'hello\u0000alpha'));
SELECT * FROM buzz.publish(jsonb_set(:'e1'::jsonb, '{tags}', '[["t", 1]]')::text);
-- One parser, one answer: the json form is the text as sent, so it refuses exactly what the
-- text form refuses — a duplicate field (a lax parser keeps the last "kind"), a field name in
-- another case, a number that is not a plain integer. There is no jsonb form: jsonb has lost
-- duplicates and number spellings before any function sees it.
SELECT * FROM buzz.publish(replace(:'e1', '{', '{"kind":7,')::json);
SELECT * FROM buzz.publish(replace(:'e1', '{', '{"kind":7,'));
SELECT * FROM buzz.publish(replace(:'e1', '{', '{"KIND":7,')::json);
SELECT * FROM buzz.publish(replace(:'e1', '"created_at":1700000001', '"created_at":1.700000001e9')::json);
SELECT * FROM buzz.publish(replace(:'e1', '"created_at":1700000001', '"created_at":1700000001.0'));
SELECT * FROM buzz.publish('{"a":1e400}'::json);
SELECT proname, pg_get_function_identity_arguments(oid) AS args FROM pg_proc
 WHERE proname = 'publish' AND pronamespace = 'buzz'::regnamespace ORDER BY 2;
-- Verification: a changed field breaks the id; a changed signature fails BIP-340.
SELECT * FROM buzz.publish(replace(:'e1', 'hello alpha', 'hello alphA'));
SELECT * FROM buzz.publish(jsonb_set(:'e1'::jsonb, '{sig}', to_jsonb(repeat('1', 128)))::text);
COMMIT;

-- The author must be the authenticated actor (mutation: skipping the author check lets
-- alice store carol's event).
\set sk :carol_sk
\set content 'carol speaking'
\i :abs_srcdir/include/sign.psql
\set carol_note :ev
BEGIN;
SELECT buzz.enter('a.example', :'alice_token') \gset
SELECT * FROM buzz.publish(:'carol_note');
ROLLBACK;
BEGIN;
SELECT buzz.enter('a.example', :'carol_token') \gset
SELECT * FROM buzz.publish(:'carol_note');
COMMIT;

-- Limits are settings (superuser-only); set for this session by the operator.
RESET ROLE;
SET buzz_tenancy.max_event_size = 1024;
SET buzz_tenancy.max_tags = 3;
SET buzz_tenancy.max_tag_length = 64;
SET buzz_tenancy.max_future = 60;
SET ROLE buzz_relay;
\set sk :alice_sk
\set tags '[]'
\set content `printf 'x%.0s' $(seq 1 1100)`
\i :abs_srcdir/include/sign.psql
\set too_large :ev
\set content 'tags'
\set tags '[["t","a"],["t","b"],["t","c"],["t","d"]]'
\i :abs_srcdir/include/sign.psql
\set too_many_tags :ev
\set tags '[["t","aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"]]'
\i :abs_srcdir/include/sign.psql
\set tag_too_long :ev
SELECT extract(epoch FROM now())::bigint + 3600 AS future \gset
\set tags '[]'
\set at :future
\i :abs_srcdir/include/sign.psql
\set from_future :ev
\set at 1700000001
BEGIN;
SELECT buzz.enter('a.example', :'alice_token') \gset
SELECT * FROM buzz.publish(:'too_large');
SELECT * FROM buzz.publish(:'too_many_tags');
SELECT * FROM buzz.publish(:'tag_too_long');
SELECT * FROM buzz.publish(:'from_future');
COMMIT;
RESET ROLE;
RESET buzz_tenancy.max_event_size;
RESET buzz_tenancy.max_tags;
RESET buzz_tenancy.max_tag_length;
RESET buzz_tenancy.max_future;
SET ROLE buzz_relay;

-- Kinds: 22242 is never stored; 20000-29999 are ephemeral (validated, answered, not stored).
\set kind 22242
\set content ''
\i :abs_srcdir/include/sign.psql
\set auth_kind :ev
\set kind 20001
\set content 'typing...'
\i :abs_srcdir/include/sign.psql
\set ephemeral :ev
BEGIN;
SELECT buzz.enter('a.example', :'alice_token') \gset
SELECT * FROM buzz.publish(:'auth_kind');
SELECT * FROM buzz.publish(:'ephemeral');
SELECT buzz.count(jsonb_build_object('ids', jsonb_build_array(:'ephemeral'::jsonb ->> 'id'))) AS ephemeral_stored;
SELECT * FROM buzz.publish(jsonb_set(:'ephemeral'::jsonb, '{sig}', to_jsonb(repeat('1', 128)))::text);
COMMIT;

-- The h fence (P-RESOLVE / I2): an event names at most one channel, a channel of the host's
-- community the author may post in. Foreign, unknown, malformed and forbidden channels get
-- one identical answer (mutations: skipping the fence lets the composite foreign key
-- answer with a raw error; a distinct message for foreign channels shows in the diff).
\set kind 1
\set at 1700000010
\set content 'in general'
\set tags '[["h","' :general '"]]'
\i :abs_srcdir/include/sign.psql
\set in_general :ev
\set content 'into beta'
\set tags '[["h","' :beta_room '"]]'
\i :abs_srcdir/include/sign.psql
\set into_beta :ev
\set content 'nowhere'
\set tags '[["h","00000000-0000-0000-0000-000000000000"]]'
\i :abs_srcdir/include/sign.psql
\set into_nowhere :ev
\set tags '[["h","not-a-channel"]]'
\i :abs_srcdir/include/sign.psql
\set into_garbage :ev
\set content 'two channels'
\set tags '[["h","' :general '"],["h","' :council '"]]'
\i :abs_srcdir/include/sign.psql
\set two_channels :ev
\set content 'same channel twice'
\set at 1700000011
\set tags '[["h","' :general '"],["h","' :general '"]]'
\i :abs_srcdir/include/sign.psql
\set same_twice :ev
BEGIN;
SELECT buzz.enter('a.example', :'alice_token') \gset
SELECT * FROM buzz.publish(:'in_general');
SELECT * FROM buzz.publish(:'into_beta');
SELECT * FROM buzz.publish(:'into_nowhere');
SELECT * FROM buzz.publish(:'into_garbage');
SELECT * FROM buzz.publish(:'two_channels');
SELECT * FROM buzz.publish(:'same_twice');
COMMIT;
-- (Channel ids are random per run, so channel events get distinct created_at values: their
-- order must not depend on their ids.)
-- Private channel: carol is not in council (her membership went with her revocation), so
-- her post is refused exactly like a foreign channel's; once added, it is accepted.
\set sk :carol_sk
\set at 1700000012
\set content 'council, please'
\set tags '[["h","' :council '"]]'
\i :abs_srcdir/include/sign.psql
\set carol_council :ev
BEGIN;
SELECT buzz.enter('a.example', :'carol_token') \gset
SELECT * FROM buzz.publish(:'carol_council');
ROLLBACK;
BEGIN;
SELECT buzz.enter('a.example', :'alice_token') \gset
SELECT buzz.add_channel_member(:'council', :'carol');
COMMIT;
BEGIN;
SELECT buzz.enter('a.example', :'carol_token') \gset
SELECT * FROM buzz.publish(:'carol_council');
COMMIT;

-- Duplicates are per community (I3): alice publishes the same signed event on beta's host.
-- The channel-less one is a fresh row there; the one naming alpha's channel is refused by
-- the h fence before any duplicate lookup, so it cannot reveal that alpha has it
-- (mutation: a duplicate check before the fence answers "duplicate:").
BEGIN;
SELECT buzz.enter('b.example', :'alice_beta_token') \gset
SELECT * FROM buzz.publish(:'e1');
SELECT * FROM buzz.publish(:'e1');
SELECT * FROM buzz.publish(:'in_general');
COMMIT;
RESET ROLE;
SELECT c.slug, count(*) AS rows_with_e1_id FROM buzz.events e JOIN buzz.communities c ON c.id = e.community_id
 WHERE e.id = :'e1'::jsonb ->> 'id' GROUP BY 1 ORDER BY 1;
SET ROLE buzz_relay;

-- Replaceable (kind 0): the newest created_at wins; an older version is not stored.
\set sk :alice_sk
\set kind 0
\set tags '[]'
\set content '{"name":"alice v1"}'
\set at 1700000100
\i :abs_srcdir/include/sign.psql
\set profile_v1 :ev
\set content '{"name":"alice v2"}'
\set at 1700000200
\i :abs_srcdir/include/sign.psql
\set profile_v2 :ev
BEGIN;
SELECT buzz.enter('a.example', :'alice_token') \gset
SELECT * FROM buzz.publish(:'profile_v2');
SELECT * FROM buzz.publish(:'profile_v1');
SELECT * FROM buzz.publish(:'profile_v2');
SELECT e ->> 'content' AS profile FROM buzz.req(jsonb_build_object('kinds', '[0]'::jsonb, 'authors', jsonb_build_array(:'alice'))) e;
COMMIT;
-- Ties on created_at go to the lowest id, whichever arrives first.
\set content '{"name":"tie a"}'
\set at 1700000300
\i :abs_srcdir/include/sign.psql
\set tie_a :ev
\set content '{"name":"tie b"}'
\i :abs_srcdir/include/sign.psql
\set tie_b :ev
BEGIN;
SELECT buzz.enter('a.example', :'alice_token') \gset
SELECT accepted FROM buzz.publish(:'tie_a');
SELECT accepted FROM buzz.publish(:'tie_b');
SELECT (e ->> 'id') = least(:'tie_a'::jsonb ->> 'id', :'tie_b'::jsonb ->> 'id') AS lowest_id_won,
       count(*) OVER () AS versions
  FROM buzz.req(jsonb_build_object('kinds', '[0]'::jsonb, 'authors', jsonb_build_array(:'alice'))) e;
COMMIT;
-- Addressable (30023): one head per d tag.
\set kind 30023
\set content 'draft a1'
\set tags '[["d","a"]]'
\set at 1700000400
\i :abs_srcdir/include/sign.psql
\set article_a1 :ev
\set content 'draft a2'
\set at 1700000500
\i :abs_srcdir/include/sign.psql
\set article_a2 :ev
\set content 'draft b1'
\set tags '[["d","b"]]'
\i :abs_srcdir/include/sign.psql
\set article_b1 :ev
BEGIN;
SELECT buzz.enter('a.example', :'alice_token') \gset
SELECT * FROM buzz.publish(:'article_a1');
SELECT * FROM buzz.publish(:'article_a2');
SELECT * FROM buzz.publish(:'article_b1');
SELECT * FROM buzz.publish(:'article_a1');
SELECT e ->> 'content' AS article FROM buzz.req('{"kinds":[30023]}') e;
COMMIT;

-- NIP-09: alice deletes e1 (by id) and article "a" (by coordinate) in alpha only; a deleted
-- id cannot come back; beta's copy of e1 is untouched (mutation: deleting by id without
-- community_id removes beta's row too).
\set kind 5
\set content ''
SELECT jsonb_build_array(jsonb_build_array('e', :'e1'::jsonb ->> 'id'),
                         jsonb_build_array('a', '30023:' || :'alice' || ':a'))::text AS tags \gset
\set at 1700000600
\i :abs_srcdir/include/sign.psql
\set deletion :ev
-- carol's kind 5 naming alice's note deletes nothing (only an author deletes her own).
\set sk :carol_sk
SELECT jsonb_build_array(jsonb_build_array('e', :'in_general'::jsonb ->> 'id'),
                         jsonb_build_array('a', '30023:' || :'alice' || ':b'))::text AS tags \gset
\i :abs_srcdir/include/sign.psql
\set carol_deletion :ev
BEGIN;
SELECT buzz.enter('a.example', :'carol_token') \gset
SELECT * FROM buzz.publish(:'carol_deletion');
COMMIT;
BEGIN;
SELECT buzz.enter('a.example', :'alice_token') \gset
SELECT * FROM buzz.publish(:'deletion');
SELECT e ->> 'content' AS left_after_deletion, e ->> 'kind' AS kind FROM buzz.req('{"kinds":[1,30023]}') e;
SELECT * FROM buzz.publish(:'e1');
SELECT * FROM buzz.publish(:'article_a1');
COMMIT;
-- A newer version of the deleted coordinate may be published again.
\set sk :alice_sk
\set kind 30023
\set content 'draft a3'
\set tags '[["d","a"]]'
\set at 1700000700
\i :abs_srcdir/include/sign.psql
\set article_a3 :ev
BEGIN;
SELECT buzz.enter('a.example', :'alice_token') \gset
SELECT * FROM buzz.publish(:'article_a3');
COMMIT;
BEGIN;
SELECT buzz.enter('b.example', :'alice_beta_token') \gset
SELECT e ->> 'content' AS beta_still_has FROM buzz.req(jsonb_build_object('ids', jsonb_build_array(:'e1'::jsonb ->> 'id'))) e;
COMMIT;

-- NIP-40: an expired event is refused; a future expiration is stored, and hidden once past.
\set kind 1
\set content 'already expired'
\set tags '[["expiration","1600000000"]]'
\set at 1700000800
\i :abs_srcdir/include/sign.psql
\set expired :ev
\set content 'expires later'
SELECT jsonb_build_array(jsonb_build_array('expiration', (extract(epoch FROM now())::bigint + 86400)::text))::text AS tags \gset
\i :abs_srcdir/include/sign.psql
\set expires_later :ev
\set content 'bad expiration'
\set tags '[["expiration","soon"]]'
\i :abs_srcdir/include/sign.psql
\set bad_expiration :ev
BEGIN;
SELECT buzz.enter('a.example', :'alice_token') \gset
SELECT * FROM buzz.publish(:'expired');
SELECT * FROM buzz.publish(:'bad_expiration');
SELECT * FROM buzz.publish(:'expires_later');
SELECT buzz.count(jsonb_build_object('ids', jsonb_build_array(:'expires_later'::jsonb ->> 'id'))) AS visible_before;
COMMIT;
RESET ROLE;
UPDATE buzz.events SET expires_at = 1600000000 WHERE id = :'expires_later'::jsonb ->> 'id';   -- time passes
SET ROLE buzz_relay;
BEGIN;
SELECT buzz.enter('a.example', :'alice_token') \gset
SELECT buzz.count(jsonb_build_object('ids', jsonb_build_array(:'expires_later'::jsonb ->> 'id'))) AS visible_after;
COMMIT;

-- Events cannot be re-tenanted or moved to another channel, not even by a superuser.
RESET ROLE;
UPDATE buzz.events SET community_id = :'beta_id' WHERE id = :'in_general'::jsonb ->> 'id';
UPDATE buzz.events SET channel_id = NULL WHERE id = :'in_general'::jsonb ->> 'id';
UPDATE buzz.event_tags SET community_id = :'beta_id' WHERE event_id = :'in_general'::jsonb ->> 'id';
-- Tag rows carry their event's community (L2).
SELECT count(*) AS mislabelled_tag_rows FROM buzz.event_tags t
 WHERE NOT EXISTS (SELECT 1 FROM buzz.events e WHERE e.community_id = t.community_id AND e.id = t.event_id);

-- Every NIP-01 escape, other control characters, DEL, '/', non-ASCII and an astral emoji
-- survive storage: the served event is byte-for-byte the same content and still verifies
-- (mutation: hashing or storing a re-serialization that changes escaping breaks the id).
SET ROLE buzz_relay;
\set escapes `:sign event --sk :alice_sk --kind 1 --content-json '"line\nquote\"back\\cr\rtab\tbs\bff\fctl\u0001\u001fdel\u007f/slash é 😀"' --tags '[["t","escapes"]]' --created-at 1600000000`
BEGIN;
SELECT buzz.enter('a.example', :'alice_token') \gset
SELECT * FROM buzz.publish(:'escapes');
SELECT e ->> 'content' = E'line\nquote"back\\cr\rtab\tbs\bff\fctl\x01\x1fdel\x7f/slash é 😀' AS same_content,
       e ->> 'id' = :'escapes'::jsonb ->> 'id' AS same_id,
       buzz.verify_event(e::text) AS verifies
  FROM buzz.req('{"#t":["escapes"]}') e;
COMMIT;
-- (Deleted again so later suites see the same alpha as before.)
SELECT jsonb_build_array(jsonb_build_array('e', :'escapes'::jsonb ->> 'id'))::text AS tags \gset
\set sk :alice_sk
\set kind 5
\set content ''
\set at 1600000001
\i :abs_srcdir/include/sign.psql
BEGIN;
SELECT buzz.enter('a.example', :'alice_token') \gset
SELECT * FROM buzz.publish(:'ev');
SELECT count(*) AS escapes_left FROM buzz.req('{"#t":["escapes"]}');
COMMIT;
RESET ROLE;

-- The batch forms. publish(text[]): each event as publish(text) takes it, one row each, in
-- order; a refused event does not stop the ones after it (mutation "a refused event ends
-- its batch": the third, valid event would not be stored).
SET ROLE buzz_relay;
\set sk :alice_sk
\set kind 1
\set tags '[["t","batch"]]'
\set content 'batch one'
\set at 1700000101
\i :abs_srcdir/include/sign.psql
\set b1 :ev
\set content 'batch two'
\set at 1700000102
\i :abs_srcdir/include/sign.psql
\set b2 :ev
\set sk :bob_sk
\set content 'bob in alpha'
\i :abs_srcdir/include/sign.psql
\set bob_ev :ev
BEGIN;
SELECT buzz.enter('a.example', :'alice_token') \gset
SELECT * FROM buzz.publish(ARRAY[:'b1', 'not json', NULL, :'b1', :'bob_ev', :'b2']);
SELECT count(*) AS batch_stored FROM buzz.req('{"#t":["batch"]}');
COMMIT;
-- No context: every event answered auth-required:, nothing raised.
SELECT * FROM buzz.publish(ARRAY[:'b1', :'b2']);
-- An empty array answers nothing; more than 256 events is refused as a whole, before any
-- is stored (mutation "batches of any size").
BEGIN;
SELECT buzz.enter('a.example', :'alice_token') \gset
SELECT count(*) AS empty_batch FROM buzz.publish(ARRAY[]::text[]);
SELECT * FROM buzz.publish(array_fill(:'b1'::text, ARRAY[257]));
ROLLBACK;
-- Counted before anything is copied: ten million NULLs are refused at once. A
-- two-dimensional array is taken flattened, in order (n is the place in that order).
SELECT * FROM buzz.publish(array_fill(NULL::text, ARRAY[10000000]));
SELECT * FROM buzz.publish(ARRAY[[NULL, 'x'], ['y', NULL]]::text[]);
-- Elements are read where PostgreSQL holds them (never copied before the size check), and a
-- json event over buzz_tenancy.max_event_size is refused unread, in publish(text)'s order
-- (no context first): a 400 MB element used to be copied into one Rust allocation, which can
-- abort the backend.
BEGIN;
SELECT buzz.enter('a.example', :'alice_token') \gset
SELECT * FROM buzz.publish(ARRAY[repeat('x', 70000), :'b1']);
SELECT * FROM buzz.publish(('"' || repeat('x', 70000) || '"')::json);
ROLLBACK;
SELECT * FROM buzz.publish(('"' || repeat('x', 70000) || '"')::json);

-- publish(host, credential, events): enter and publish in one statement, the community the
-- host's. A credential of another community fails exactly like a random one (S5), and so
-- does none: the whole statement, nothing stored (mutation "the one-statement form trusts
-- the host without the credential": bob's token would publish in alpha).
\set sk :alice_sk
\set content 'one statement'
\set at 1700000103
\i :abs_srcdir/include/sign.psql
\set b3 :ev
SELECT * FROM buzz.publish('a.example', :'alice_token', ARRAY[:'b3', :'b3']);
SELECT * FROM buzz.publish('a.example', :'bob_token', ARRAY[:'bob_ev']);
SELECT * FROM buzz.publish('a.example', NULL, ARRAY[:'bob_ev']);
SELECT * FROM buzz.publish('nowhere.example', :'alice_token', ARRAY[:'b3']);
-- bob's event on alpha's host with alpha's credential: refused as another author's.
SELECT * FROM buzz.publish('A.EXAMPLE', :'alice_token', ARRAY[:'bob_ev']);
-- Stored in the host's community, once.
RESET ROLE;
SELECT community_id = :'alpha_id' AS in_alpha, count(*) FROM buzz.events
 WHERE event ->> 'content' IN ('batch one', 'batch two', 'one statement', 'bob in alpha') GROUP BY 1;
