-- NIP-11 relay information (C2.4): static settings and the addressed host's community only;
-- an unknown or malformed host gets NULL; never a count, never another community
-- (mutant "relay_info ignores the host").
\getenv abs_srcdir PG_ABS_SRCDIR
\i :abs_srcdir/include/base.psql
\set VERBOSITY terse
SET ROLE buzz_relay;
SELECT jsonb_pretty(buzz.relay_info('a.example'));
SELECT buzz.relay_info('ALPHA.example:8443') = buzz.relay_info('a.example') AS same_community_same_document;
SELECT buzz.relay_info('b.example.') ->> 'name' AS beta_name,
       buzz.relay_info('b.example') -> 'limitation' -> 'auth_required' AS beta_auth_required;
SELECT buzz.relay_info('nowhere.example') IS NULL AS unknown_host,
       buzz.relay_info('bad host!') IS NULL AS malformed_host,
       buzz.relay_info(NULL) IS NULL AS null_host;
SELECT buzz.relay_info('a.example')::text ~* 'beta' AS alpha_document_mentions_beta;
RESET ROLE;
