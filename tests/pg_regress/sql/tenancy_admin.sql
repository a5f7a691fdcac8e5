-- What the generator refuses, with a clear message and the object in the DETAIL (operator
-- facing), before running anything; backfill; disable_tenancy.
\getenv abs_srcdir PG_ABS_SRCDIR
\i :abs_srcdir/include/base.psql
\i :abs_srcdir/include/adopted.psql
\set VERBOSITY default
CREATE SCHEMA scratch;
CREATE TABLE scratch.plain (id int PRIMARY KEY, note text);
CREATE VIEW scratch.v AS SELECT 1 AS x;
CREATE TABLE scratch.wrong_type (community_id text, id int);
CREATE TABLE scratch.parts (community_id uuid NOT NULL, at date NOT NULL) PARTITION BY RANGE (at);
CREATE TABLE scratch.parts_1 PARTITION OF scratch.parts FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
-- not tables, partitions, the extension's own tables
SELECT buzz.enable_tenancy('scratch.v');
SELECT buzz.enable_tenancy('scratch.parts_1');
SELECT buzz.enable_tenancy('buzz.members');
SELECT buzz.declare_global('buzz.communities', 'mine');
-- the column
SELECT buzz.enable_tenancy('scratch.plain');
SELECT buzz.enable_tenancy('scratch.wrong_type');
-- rows without a community need an explicit backfill community (§12.11)
INSERT INTO scratch.plain VALUES (1, 'old row');
SELECT buzz.enable_tenancy('scratch.plain', add_column => true);
SELECT buzz.enable_tenancy('scratch.plain', add_column => true, backfill => 'nosuch');
SELECT buzz.tenancy_plan('scratch.plain', add_column => true, backfill => 'alpha') ~ 'DEFAULT ''[0-9a-f-]{36}''' AS backfills_with_alpha;
SELECT buzz.enable_tenancy('scratch.plain', add_column => true, backfill => 'alpha') <> '' AS adopted;
SELECT community_id = (SELECT id FROM buzz.communities WHERE slug = 'alpha') AS backfilled, note FROM scratch.plain;
-- tenant vs global
SELECT buzz.declare_global('scratch.plain', 'try');
CREATE TABLE scratch.lookup (code text PRIMARY KEY);
SELECT buzz.declare_global('scratch.lookup', '  ');
SELECT buzz.declare_global('scratch.lookup', 'shared codes');
SELECT buzz.enable_tenancy('scratch.lookup', add_column => true);
-- a global table may not reference a tenant table, nor block a tenant key rewrite (§12.11)
CREATE TABLE scratch.global_ref (plain_id int REFERENCES scratch.plain (id));
SELECT buzz.declare_global('scratch.global_ref', 'pointing into tenant data');
SELECT buzz.enable_tenancy('scratch.plain', rewrite_keys => true);
DROP TABLE scratch.global_ref;
-- ... nor the extension's own tenant tables
CREATE TABLE scratch.member_notes (community_id uuid, pubkey text, FOREIGN KEY (community_id, pubkey) REFERENCES buzz.members);
SELECT buzz.declare_global('scratch.member_notes', 'notes about members of every community');
DROP TABLE scratch.member_notes;
-- foreign keys whose ON UPDATE action would null community_id; exclusion constraints
CREATE TABLE scratch.child (community_id uuid NOT NULL, plain_id int REFERENCES scratch.plain (id) ON UPDATE SET NULL);
SELECT buzz.enable_tenancy('scratch.child') <> '' AS child_adopted;
SELECT buzz.enable_tenancy('scratch.plain', rewrite_keys => true);
DROP TABLE scratch.child;
-- a dropped table leaves the registry with it (event trigger)
SELECT count(*) AS stale_registry_rows FROM buzz.tenancy_tables WHERE tbl::oid NOT IN (SELECT oid FROM pg_class);
CREATE TABLE scratch.booking (community_id uuid NOT NULL, room int, EXCLUDE USING btree (room WITH =));
SELECT buzz.enable_tenancy('scratch.booking', rewrite_keys => true);
-- a tenant table referencing a tenant table whose key is not composite yet; once the parent
-- is rewritten, the child's foreign key becomes composite with it
CREATE TABLE scratch.parent (community_id uuid NOT NULL, id int PRIMARY KEY);
CREATE TABLE scratch.kid (community_id uuid NOT NULL, parent_id int REFERENCES scratch.parent (id) ON DELETE SET NULL);
SELECT buzz.enable_tenancy('scratch.parent') <> '' AS parent_adopted;
SELECT buzz.enable_tenancy('scratch.kid', rewrite_keys => true);
SELECT buzz.enable_tenancy('scratch.kid') <> '' AS kid_adopted;
SELECT buzz.enable_tenancy('scratch.parent', rewrite_keys => true);
SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = 'scratch.kid'::regclass AND contype = 'f' AND conname <> 'buzz_community_fk';
-- anonymous writes are an explicit option (§12.2): the write policies are dropped
SELECT buzz.enable_tenancy('scratch.kid', anonymous_writes => true);
SELECT anonymous_writes FROM buzz.tenancy_tables WHERE tbl = 'scratch.kid'::regclass;
-- disable: fences and registry go, the column and composite keys stay
SELECT buzz.disable_tenancy('scratch.kid');
SELECT buzz.disable_tenancy('scratch.kid') AS disable_again;
SELECT count(*) AS kid_registered FROM buzz.tenancy_tables WHERE tbl = 'scratch.kid'::regclass;
-- only operators may run the generator
SET ROLE buzz_relay;
SELECT buzz.tenancy_plan('relay.users');
RESET ROLE;
DELETE FROM buzz.tenancy_tables WHERE tbl::text LIKE 'scratch.%';
DROP SCHEMA scratch CASCADE;
