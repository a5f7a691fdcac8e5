-- Host normalization and host → community resolution (P-RESOLVE-HOST / L6).
\getenv abs_srcdir PG_ABS_SRCDIR
\i :abs_srcdir/include/base.psql
\set VERBOSITY terse
SELECT h AS input, buzz.normalize_host(h) AS normalized
  FROM unnest(ARRAY['Relay.Example.COM', 'relay.example.com.', 'relay.example.com:8080',
                    'relay.example.com:443', 'relay.example.com:80', 'localhost:7777',
                    'xn--bcher-kva.example']) AS h
 ORDER BY 1;
-- Malformed hosts: each is invalid:, one per statement.
SELECT buzz.normalize_host('');
SELECT buzz.normalize_host('a..example');
SELECT buzz.normalize_host('-a.example');
SELECT buzz.normalize_host('user@a.example');
SELECT buzz.normalize_host('a.example:0');
SELECT buzz.normalize_host('a.example:65536');
SELECT buzz.normalize_host('[::1]');
SELECT buzz.normalize_host('bücher.example');
SELECT buzz.normalize_host('a_b.example');
SELECT buzz.normalize_host(repeat('a', 64) || '.example');
SELECT buzz.normalize_host(repeat('abcdefghi.', 26) || 'com');
-- Operator API: mapping is exact and unique; a host serves one community only.
SELECT buzz.add_host('alpha', 'a.example');          -- idempotent for the same community
SELECT buzz.add_host('beta', 'A.EXAMPLE.');          -- taken by alpha: duplicate:
SELECT buzz.add_host('gamma', 'g.example');          -- no such community
SELECT buzz.add_host('alpha', 'bad host');
SELECT host, c.slug FROM buzz.community_hosts h JOIN buzz.communities c ON c.id = h.community_id ORDER BY host;
-- The relay role resolves through enter() only; unmapped or malformed hosts fail closed,
-- and there is no default community. (Mutation: falling back to any community when the
-- host is unmapped turns the second statement's error into a row.)
SET ROLE buzz_relay;
BEGIN;
SELECT buzz.enter('unmapped.example');
ROLLBACK;
BEGIN;
SELECT buzz.enter('a.example:9999');                 -- same name, other port: another host
ROLLBACK;
BEGIN;
SELECT buzz.enter('a.example/evil');
ROLLBACK;
BEGIN;
SELECT buzz.enter(NULL);
ROLLBACK;
BEGIN;
SELECT buzz.enter('A.EXAMPLE.:443');                 -- normalizes to a.example
SELECT buzz.current_community() IS NOT NULL AS entered;
COMMIT;
-- Operator functions are not the relay's to call.
SELECT buzz.add_host('beta', 'evil.example');
RESET ROLE;
-- ... but members of buzz_admin may (mutation: not granting them to buzz_admin).
CREATE ROLE ops_person IN ROLE buzz_admin;
SET ROLE ops_person;
SELECT buzz.add_host('beta', 'ops.example');
SELECT buzz.remove_host('ops.example');
RESET ROLE;
DROP ROLE ops_person;
-- A remap in this connection is seen by the next transaction of another, long-lived
-- connection that has the old mapping cached (DESIGN §12.8; mutation: dropping the
-- host_cache trigger, or a relcache callback that ignores buzz.community_hosts, keeps
-- serving beta from the other backend's cache).
SELECT id AS alpha_id FROM buzz.communities WHERE slug = 'alpha' \gset
SELECT id AS beta_id FROM buzz.communities WHERE slug = 'beta' \gset
CREATE EXTENSION dblink;
SELECT dblink_connect('relay2', format('host=%s port=%s dbname=%s user=buzz_relay',
       current_setting('unix_socket_directories'), current_setting('port'), current_database()));
SELECT buzz.add_host('beta', 'moving.example');
SELECT dblink_exec('relay2', 'BEGIN');
SELECT * FROM dblink('relay2', $$SELECT buzz.enter('moving.example')::text$$) AS t(x text);
SELECT c = :'beta_id' AS relay2_serves_beta FROM dblink('relay2', 'SELECT buzz.current_community()') AS t(c uuid);
SELECT dblink_exec('relay2', 'COMMIT');
SELECT buzz.remove_host('moving.example');
SELECT buzz.remove_host('moving.example');           -- already gone
SELECT buzz.add_host('alpha', 'moving.example');
SELECT dblink_exec('relay2', 'BEGIN');
SELECT * FROM dblink('relay2', $$SELECT buzz.enter('moving.example')::text$$) AS t(x text);
SELECT c = :'alpha_id' AS relay2_serves_alpha FROM dblink('relay2', 'SELECT buzz.current_community()') AS t(c uuid);
SELECT dblink_exec('relay2', 'COMMIT');
SELECT buzz.remove_host('moving.example');
SELECT * FROM dblink('relay2', $$SELECT buzz.enter('moving.example')::text$$) AS t(x text);   -- unmapped: fails closed
-- An uncommitted remap that rolls back leaves no trace in this backend's cache either.
BEGIN;
SELECT buzz.add_host('beta', 'moving.example');
SELECT buzz.enter('moving.example');
SELECT buzz.current_community() = :'beta_id' AS sees_own_uncommitted_mapping;
ROLLBACK;
BEGIN;
SELECT buzz.enter('moving.example');                 -- rolled back: unmapped again
ROLLBACK;
SELECT dblink_disconnect('relay2');
DROP EXTENSION dblink;
