-- Every common filter shape runs on an index under RLS (DESIGN §8: cost grows with
-- log(events), never with the number of communities). Synthetic rows are written by the
-- operator straight into the tables of a third and fourth community, then analyzed.
\getenv abs_srcdir PG_ABS_SRCDIR
\i :abs_srcdir/include/base.psql
\set VERBOSITY terse
SELECT buzz.create_community('gamma', 'Gamma') IS NOT NULL AS gamma, buzz.create_community('delta', 'Delta') IS NOT NULL AS delta;
SELECT buzz.add_host('gamma', 'g.example');
SELECT buzz.admit('gamma', :'alice');
SELECT id AS gamma_id FROM buzz.communities WHERE slug = 'gamma' \gset
SELECT id AS delta_id FROM buzz.communities WHERE slug = 'delta' \gset
-- 40,000 events over 2 communities, 200 authors, kinds 1/7/0, three tag names.
INSERT INTO buzz.events (community_id, id, pubkey, created_at, kind, channel_id, d_tag, expires_at, event, position)
SELECT CASE WHEN g % 2 = 0 THEN :'gamma_id'::uuid ELSE :'delta_id'::uuid END,
       encode(sha256(('ev' || g)::bytea), 'hex'),
       encode(sha256(('pk' || g % 200)::bytea), 'hex'),
       1600000000 + g, CASE WHEN g % 10 = 0 THEN 7 ELSE 1 END, NULL, NULL, NULL,
       jsonb_build_object('id', encode(sha256(('ev' || g)::bytea), 'hex'), 'kind', 1), g
  FROM generate_series(1, 40000) g;
INSERT INTO buzz.event_tags (community_id, event_id, name, value, created_at)
SELECT e.community_id, e.id, t.name, t.value, e.created_at
  FROM buzz.events e,
       LATERAL (VALUES ('t', 'tag' || (e.created_at % 50)),
                       ('p', encode(sha256(('pk' || (e.created_at % 300))::bytea), 'hex')),
                       ('e', encode(sha256(('ev' || (e.created_at - 1600000000) / 3)::bytea), 'hex'))) AS t(name, value)
 WHERE e.community_id IN (:'gamma_id', :'delta_id');
ANALYZE buzz.events;
ANALYZE buzz.event_tags;
SET ROLE buzz_relay;
\set host g.example
\set sk :alice_sk
\i :abs_srcdir/include/login.psql
RESET ROLE;
-- buzz.explain_req shows the plan of the exact statement buzz.req runs, as the RLS-bound
-- owner role, in this context. No shape may fall back to a sequential scan (mutation: a
-- jsonb tag predicate, or a non-LEAKPROOF comparison, instead of the btree columns).
BEGIN;
SELECT buzz.enter('g.example', :'token') \gset
SELECT s.shape,
       count(*) FILTER (WHERE x.line ~ 'Seq Scan') AS seq_scans,
       string_agg(DISTINCT substring(x.line FROM '(?:using|Index Scan on) (\w+)'), ', ') AS indexes
  FROM (VALUES
    (1, 'ids',         jsonb_build_object('ids', jsonb_build_array(encode(sha256('ev10'::bytea), 'hex')))),
    (2, 'author+kind', jsonb_build_object('authors', jsonb_build_array(encode(sha256('pk10'::bytea), 'hex')), 'kinds', '[1]'::jsonb)),
    (3, 'kind',        '{"kinds":[7],"limit":20}'::jsonb),
    (4, '#e',          jsonb_build_object('#e', jsonb_build_array(encode(sha256('ev300'::bytea), 'hex')))),
    (5, '#p',          jsonb_build_object('#p', jsonb_build_array(encode(sha256('pk7'::bytea), 'hex')), 'limit', 20)),
    (6, '#t',          '{"#t":["tag7"],"limit":20}'::jsonb),
    (7, 'channel',     '{"#h":["00000000-0000-0000-0000-000000000001"],"limit":20}'::jsonb),
    (8, 'time range',  '{"since":1600010000,"until":1600010100}'::jsonb),
    (9, 'newest',      '{"limit":20}'::jsonb)
  ) AS s(n, shape, filter)
  CROSS JOIN LATERAL buzz.explain_req(s.filter) AS x(line)
 GROUP BY s.n, s.shape
 ORDER BY s.n;
-- One full plan, ids and clock masked: the community is an index condition, not a filter.
SELECT regexp_replace(regexp_replace(line, '''[0-9a-f]{8}-[0-9a-f-]{27}''::uuid', '<community>', 'g'),
                      '''1[0-9]{9}''::bigint', '<now>', 'g') AS plan
  FROM buzz.explain_req('{"#t":["tag7"],"limit":20}') AS line;
COMMIT;
-- The relay role cannot read plans.
SET ROLE buzz_relay;
SELECT * FROM buzz.explain_req('{}');
RESET ROLE;
