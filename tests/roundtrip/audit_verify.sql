-- Every community's audit chain, verified by buzz.audit_verify in its own transaction (run as
-- a superuser after pg_restore, DESIGN §12.18): one line "slug|rows checked|first bad seq" (and an empty line per enter).
\set QUIET on
SELECT 'BEGIN', format('SELECT buzz.enter(%L)', h.host),
       format('SELECT %L, checked, first_bad_seq FROM buzz.audit_verify()', c.slug), 'COMMIT'
  FROM buzz.communities c
  JOIN LATERAL (SELECT host FROM buzz.community_hosts WHERE community_id = c.id ORDER BY host LIMIT 1) h ON true
 ORDER BY c.slug \gexec
SELECT 'operator', checked, first_bad_seq FROM buzz.audit_verify_operator();
