SELECT to_regclass('relay.events') IS NOT NULL AS adopted \gset
-- A fingerprint of every stateful table of the extension (run as a superuser, so RLS does
-- not hide rows): row count and an order-independent hash of the rows' text.
SELECT t, count, md5 FROM (
          SELECT 'communities' AS t, count(*), md5(string_agg(r::text, '|' ORDER BY r::text)) FROM buzz.communities r
UNION ALL SELECT 'community_hosts', count(*), md5(string_agg(r::text, '|' ORDER BY r::text)) FROM buzz.community_hosts r
UNION ALL SELECT 'members', count(*), md5(string_agg(r::text, '|' ORDER BY r::text)) FROM buzz.members r
UNION ALL SELECT 'bans', count(*), md5(string_agg(r::text, '|' ORDER BY r::text)) FROM buzz.bans r
UNION ALL SELECT 'channels', count(*), md5(string_agg(r::text, '|' ORDER BY r::text)) FROM buzz.channels r
UNION ALL SELECT 'channel_members', count(*), md5(string_agg(r::text, '|' ORDER BY r::text)) FROM buzz.channel_members r
UNION ALL SELECT 'challenges', count(*), md5(string_agg(r::text, '|' ORDER BY r::text)) FROM buzz.challenges r
UNION ALL SELECT 'sessions', count(*), md5(string_agg(r::text, '|' ORDER BY r::text)) FROM buzz.sessions r
UNION ALL SELECT 'tenancy_tables', count(*), md5(string_agg(format('%s %s %s %s', tbl, mode, reason, anonymous_writes), '|'
                                                            ORDER BY tbl::text)) FROM buzz.tenancy_tables
) f ORDER BY t;
-- The relay's own adopted tables (suites that adopt tests/fixture/relay_schema.sql): their
-- policies and rows come back too.
\if :adopted
SELECT t, count, md5 FROM (
          SELECT 'relay policies' AS t, count(*), md5(string_agg(format('%s %s %s %s', polrelid::regclass, polname, polpermissive,
                                                            pg_get_expr(polqual, polrelid)), '|' ORDER BY polrelid::regclass::text, polname))
            FROM pg_policy WHERE polrelid::regclass::text LIKE 'relay.%'
UNION ALL SELECT 'relay.users', count(*), md5(string_agg(r::text, '|' ORDER BY r::text)) FROM relay.users r
UNION ALL SELECT 'relay.events', count(*), md5(string_agg(r::text, '|' ORDER BY r::text)) FROM relay.events r
) f ORDER BY t;
\endif
-- Every stateful table must be registered for pg_dump (DESIGN §12.18).
SELECT count(*) AS unregistered_tables FROM pg_class c
 WHERE c.relnamespace = 'buzz'::regnamespace AND c.relkind = 'r'
   AND c.oid <> ALL ((SELECT extconfig FROM pg_extension WHERE extname = 'buzz_tenancy')::oid[]);
