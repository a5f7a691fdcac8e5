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
) f ORDER BY t;
-- Every stateful table must be registered for pg_dump (DESIGN §12.18).
SELECT count(*) AS unregistered_tables FROM pg_class c
 WHERE c.relnamespace = 'buzz'::regnamespace AND c.relkind = 'r'
   AND c.oid <> ALL ((SELECT extconfig FROM pg_extension WHERE extname = 'buzz_tenancy')::oid[]);
