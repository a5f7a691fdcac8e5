-- buzz_tenancy 0.2.0 -> 0.3.0 (ALTER EXTENSION buzz_tenancy UPDATE).
--
-- scripts/test checks that a database updated from 0.1.0's script through this one (both
-- earlier install scripts are frozen in tests/upgrade/) has the schema of a fresh 0.3.0 install.
--   - NIP-42 challenges are stateless: auth_challenge seals its challenge under a key of the
--     database's (buzz.challenge_key, new) and writes nothing; buzz.challenges now holds the
--     challenges used, until they expire. Until this script runs, the 0.3.0 library issues
--     0.2.0's stored challenges; it accepts both kinds.
\echo Use "ALTER EXTENSION buzz_tenancy UPDATE TO '0.3.0'" to load this file. \quit

CREATE TABLE buzz.challenge_key (
    one boolean PRIMARY KEY DEFAULT true CHECK (one),
    key bytea NOT NULL CHECK (length(key) = 32)
);
INSERT INTO buzz.challenge_key (key)
SELECT sha256(uuid_send(gen_random_uuid()) || uuid_send(gen_random_uuid()) || uuid_send(gen_random_uuid()) || uuid_send(gen_random_uuid()));
ALTER TABLE buzz.challenge_key OWNER TO buzz_owner;
SELECT pg_catalog.pg_extension_config_dump('buzz.challenge_key', 'WHERE false');
COMMENT ON TABLE buzz.challenges IS 'Tenant: NIP-42 challenges used, kept until they expire (single use).';
COMMENT ON TABLE buzz.challenge_key IS 'The key NIP-42 challenges are sealed with; owner only, never dumped.';
