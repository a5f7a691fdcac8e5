-- Installing into a schema somebody prepared beforehand is refused: a function planted
-- there must never end up owned by buzz_owner (mutation: chowning every function in the
-- schema instead of the extension's own members, and dropping the bootstrap check).
\getenv abs_srcdir PG_ABS_SRCDIR
\i :abs_srcdir/include/base.psql
\set VERBOSITY terse
CREATE DATABASE buzz_install_probe;
\c buzz_install_probe
\set VERBOSITY terse
CREATE ROLE install_attacker;
CREATE SCHEMA buzz AUTHORIZATION install_attacker;
CREATE EXTENSION buzz_tenancy;
DROP SCHEMA buzz;
CREATE SCHEMA buzz;
CREATE FUNCTION buzz.zz_backdoor() RETURNS int LANGUAGE sql SECURITY DEFINER AS 'SELECT 1';
CREATE EXTENSION buzz_tenancy;
DROP FUNCTION buzz.zz_backdoor();
GRANT CREATE ON SCHEMA buzz TO install_attacker;
CREATE EXTENSION buzz_tenancy;
REVOKE CREATE ON SCHEMA buzz FROM install_attacker;
-- A clean schema (what pg_restore or a DBA leaves) is fine.
CREATE EXTENSION buzz_tenancy;
SELECT count(*) AS functions_not_owned_by_buzz_owner FROM pg_proc
 WHERE pronamespace = 'buzz'::regnamespace AND pg_get_userbyid(proowner) <> 'buzz_owner';
-- Nobody may be a member of the owner role: a second install refuses while one is.
GRANT buzz_owner TO install_attacker;
CREATE DATABASE buzz_install_probe2;
\c buzz_install_probe2
\set VERBOSITY terse
CREATE EXTENSION buzz_tenancy;
\c buzz_install_probe
\set VERBOSITY terse
REVOKE buzz_owner FROM install_attacker;
\c postgres
\set VERBOSITY terse
DROP DATABASE buzz_install_probe;
DROP DATABASE buzz_install_probe2;
DROP ROLE install_attacker;
