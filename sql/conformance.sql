-- buzz_tenancy conformance: the deployment gate (DESIGN §7 A-RLS-1..5, §12.3/12.4/12.5/12.12).
--
-- buzz.conformance(role) inspects the catalogs and reports, for the relay role `role`, whether
-- this database is configured fail-closed. One row per finding:
--
--   check_id  which rule (A-RLS-1 .. UNREGISTERED, one function each below)
--   object    the operator-facing name of what was found (public.t, public.t.some_index,
--             role relay, database app, buzz_tenancy.max_limit ...)
--   status    'fail' (the deployment does not conform), 'warn' (review it) or 'pass'
--   detail    a short fixed sentence saying what is wrong
--
-- A check with no fail/warn finding reports exactly one row (check_id, '', 'pass', 'no findings').
-- Rows come ordered by check_id, then fail before warn before pass, then object (all in "C"
-- collation, so the report is byte-for-byte stable). buzz.assert_conformance(role) is the gate:
-- it raises 55000 "error: deployment does not conform" if any row fails, listing the failures.
--
-- Roles are considered as PostgreSQL uses them (§12.4): the relay can act as every role it is
-- a member of, directly or indirectly, with or without INHERIT (on PostgreSQL 15 any membership
-- allows SET ROLE). Every check asks about that whole set (scope.roles), and every privilege
-- any of those roles holds, directly, through PUBLIC or through predefined roles.
--
-- The scope (buzz.conformance_scope) used throughout:
--   tenant tables  = tables registered with mode 'tenant' in buzz.tenancy_tables, every partition
--                    of them, and the extension's own tables of schema buzz that have a
--                    community_id column (except the operator-global buzz.community_hosts)
--   global tables  = tables registered with mode 'global', their partitions, and the extension's
--                    other tables (buzz.communities, buzz.community_hosts, buzz.tenancy_tables, ...);
--                    a table that is both (a global partition of a tenant table) counts as tenant
--   checked tables = tenant tables plus every other non-global table with a community_id
--                    column (a relay table not adopted yet): A-RLS-1, -2, -4 and -5 inspect
--                    these, so the report before adoption already names their keys and grants
--   protected      = checked tables, the extension's own tables, and declared-global tables
--                    that carry a community_id column: what the relay may never read around
--                    row level security (views, rules and materialized views over them)
--   reachable schemas = schemas one of the roles has USAGE on, except pg_catalog,
--                    information_schema, pg_toast and temporary schemas
-- Functions that shipped with PostgreSQL are recognized by oid (below FirstNormalObjectId,
-- 16384), never by the schema they live in: anybody with CREATE on pg_catalog's neighbours
-- could name a schema anything, and a superuser can create functions in pg_catalog itself.
-- The functions only read catalogs: no dynamic SQL, nothing built from catalog names is executed.
-- They are SECURITY INVOKER; a non-superuser operator gets a 'warn' where it cannot read
-- something (pg_file_settings, the registry) instead of an error.

CREATE TYPE conformance_scope AS (
    role        oid,       -- the relay role (or the worker role)
    role_name   text,
    kind        text,      -- 'relay' | 'worker'
    api         oid[],     -- the extension's functions a role of this kind may execute
    roles       oid[],     -- every role it can act as, itself included
    db          oid,
    buzz        oid,       -- schema buzz
    registry    text,      -- 'ok' | 'missing' | 'unreadable'
    reg_gone    oid[],     -- registry rows whose table no longer exists
    audited     oid[],     -- the extension's own functions
    ext_tables  oid[],     -- the extension's own tables and sequences
    tenant      oid[],
    global      oid[],
    logs        oid[],     -- relay-written logs (mode 'log') and their partitions
    operator    oid[],     -- operator-only tables (mode 'operator') and their partitions
    declared    oid[],     -- relations registered as global (tables and materialized views)
    communities oid[],     -- the relay's own community registries (tenant tables reference them by community_id)
    schemas     oid[],     -- reachable schemas
    checked     oid[],     -- checked tables (see above)
    protected   oid[]
);

-- True if one of `roles` holds one of `privs` on relation `rel`: on the whole relation or, for
-- SELECT, INSERT, UPDATE and REFERENCES, on any of its columns.
CREATE FUNCTION any_role_can(roles oid[], rel oid, privs text[])
RETURNS boolean
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $fn$
    SELECT EXISTS (
        SELECT 1 FROM pg_catalog.unnest($1) AS r(oid), pg_catalog.unnest($3) AS p(priv)
         WHERE CASE WHEN p.priv IN ('SELECT', 'INSERT', 'UPDATE', 'REFERENCES')
                    THEN pg_catalog.has_any_column_privilege(r.oid, $2, p.priv)
                    ELSE pg_catalog.has_table_privilege(r.oid, $2, p.priv) END)
$fn$;

-- The setting `name` as the role's sessions in this database start with it: role+database,
-- role, database overrides, then the server's value.
CREATE FUNCTION effective_setting(s conformance_scope, name text)
RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $fn$
    SELECT buzz.role_setting(($1).role, ($1).db, $2)
$fn$;

-- Functions that read state every community shares, around row level security: the
-- per-object statistics counters (pg_stat_get_*(oid): tuples read, fetched, inserted, live,
-- index scans — an index not led by community_id counts other communities' matching keys),
-- relation, database and tablespace sizes, the WAL position and counters (they grow by each
-- write's size), the lock table, pg_notify (channels are server-wide), and every function of
-- the contrib modules that read whole relations (pgstattuple, pgrowlocks, pg_visibility, ...),
-- when installed. The recipe revokes EXECUTE on them from PUBLIC; A-RLS-4 fails a relay that
-- can still execute one (also through a role such as pg_stat_scan_tables).
CREATE FUNCTION shared_state_functions()
RETURNS SETOF regprocedure
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $fn$
    SELECT f.oid::pg_catalog.regprocedure FROM (
        SELECT p.oid
          FROM pg_catalog.pg_proc p
         WHERE p.oid < 16384 AND p.pronamespace = 'pg_catalog'::pg_catalog.regnamespace
           AND ((p.proname LIKE 'pg\_stat\_get\_%' AND p.pronargs = 1 AND p.proargtypes[0] = 'pg_catalog.oid'::pg_catalog.regtype)
                OR p.proname IN ('pg_relation_size', 'pg_table_size', 'pg_indexes_size', 'pg_total_relation_size',
                                 'pg_database_size', 'pg_tablespace_size', 'pg_notify', 'pg_lock_status',
                                 -- the server-wide NOTIFY queue fills by every community's commits
                                 'pg_notification_queue_usage',
                                 -- the WAL position and counters grow by every community's writes, byte by byte
                                 'pg_current_wal_lsn', 'pg_current_wal_insert_lsn', 'pg_current_wal_flush_lsn',
                                 'pg_stat_get_wal'))
        UNION
        -- contrib modules that read pages, tuples, locks and statistics of a whole relation
        SELECT d.objid
          FROM pg_catalog.pg_depend d
          JOIN pg_catalog.pg_extension x ON x.oid = d.refobjid
         WHERE d.classid = 'pg_catalog.pg_proc'::pg_catalog.regclass AND d.deptype = 'e'
           AND x.extname IN ('pgstattuple', 'pgrowlocks', 'pg_visibility', 'pg_freespacemap', 'pg_buffercache',
                             'pageinspect', 'pg_walinspect', 'pg_stat_statements')
    ) f
     ORDER BY f.oid::pg_catalog.regprocedure::text
$fn$;

-- The same for any login role `role` in database `db`.
CREATE FUNCTION role_setting(role oid, db oid, name text)
RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $fn$
    SELECT coalesce(
        (SELECT pg_catalog.substr(cfg.c, pg_catalog.strpos(cfg.c, '=') + 1)
           FROM pg_catalog.pg_db_role_setting rs CROSS JOIN LATERAL pg_catalog.unnest(rs.setconfig) AS cfg(c)
          WHERE pg_catalog.lower(pg_catalog.split_part(cfg.c, '=', 1)) = $3
            AND rs.setrole IN ($1, 0) AND rs.setdatabase IN ($2, 0)
          ORDER BY rs.setrole <> 0 DESC, rs.setdatabase <> 0 DESC LIMIT 1),
        (SELECT st.reset_val FROM pg_catalog.pg_settings st WHERE st.name = $3))
$fn$;

CREATE FUNCTION conformance_scope(role text, kind text DEFAULT 'relay')
RETURNS conformance_scope
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    s          buzz.conformance_scope;
    v_ext      oid;
    v_reg_tenant oid[] := '{}';
    v_reg_global oid[] := '{}';
    v_reg_log   oid[] := '{}';
    v_reg_op    oid[] := '{}';
    v_ext_tenant oid[] := '{}';
BEGIN
    SELECT r.oid, r.rolname INTO s.role, s.role_name FROM pg_catalog.pg_roles r WHERE r.rolname = $1;
    IF s.role IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'invalid: unknown role';
    END IF;
    -- A worker is judged like a relay, except that it may enter communities by id.
    s.kind := $2;
    IF $2 = 'relay' THEN
        s.api := ARRAY(SELECT pg_catalog.to_regprocedure(f)::oid FROM buzz.relay_api() AS f);
    ELSIF $2 = 'worker' THEN
        s.api := ARRAY(SELECT pg_catalog.to_regprocedure(f)::oid FROM buzz.worker_api() AS f);
    ELSE
        RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'invalid: a parameter is malformed';
    END IF;
    -- Load the library (if it is not preloaded) so pg_settings shows the real settings of the
    -- extension and their contexts, not placeholders.
    IF pg_catalog.to_regprocedure('buzz.current_community()') IS NOT NULL THEN
        PERFORM buzz.current_community();
    END IF;

    SELECT pg_catalog.array_agg(r.oid ORDER BY r.oid) INTO s.roles
      FROM pg_catalog.pg_roles r WHERE pg_catalog.pg_has_role(s.role, r.oid, 'MEMBER');
    SELECT d.oid INTO s.db FROM pg_catalog.pg_database d WHERE d.datname = pg_catalog.current_database();
    SELECT x.oid INTO v_ext FROM pg_catalog.pg_extension x WHERE x.extname = 'buzz_tenancy';
    SELECT n.oid INTO s.buzz FROM pg_catalog.pg_namespace n WHERE n.nspname = 'buzz';

    SELECT coalesce(pg_catalog.array_agg(c.oid), '{}'),
           coalesce(pg_catalog.array_agg(c.oid) FILTER (
               WHERE c.relkind IN ('r', 'p') AND c.relnamespace = s.buzz AND c.relname <> 'community_hosts'
                 AND EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a
                              WHERE a.attrelid = c.oid AND a.attname = 'community_id'
                                AND a.attnum > 0 AND NOT a.attisdropped)), '{}')
      INTO s.ext_tables, v_ext_tenant
      FROM pg_catalog.pg_depend d
      JOIN pg_catalog.pg_class c ON c.oid = d.objid
     WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass
       AND d.refclassid = 'pg_catalog.pg_extension'::pg_catalog.regclass
       AND d.refobjid = v_ext AND d.deptype = 'e' AND c.relkind IN ('r', 'p', 'S');

    SELECT coalesce(pg_catalog.array_agg(d.objid), '{}') INTO s.audited
      FROM pg_catalog.pg_depend d
     WHERE d.classid = 'pg_catalog.pg_proc'::pg_catalog.regclass
       AND d.refclassid = 'pg_catalog.pg_extension'::pg_catalog.regclass
       AND d.refobjid = v_ext AND d.deptype = 'e';

    s.reg_gone := '{}';
    s.declared := '{}';
    IF pg_catalog.to_regclass('buzz.tenancy_tables') IS NULL THEN
        s.registry := 'missing';
    ELSIF NOT pg_catalog.has_table_privilege(pg_catalog.to_regclass('buzz.tenancy_tables'), 'SELECT') THEN
        s.registry := 'unreadable';
    ELSE
        s.registry := 'ok';
        SELECT coalesce(pg_catalog.array_agg(r.tbl::oid) FILTER (WHERE c.oid IS NOT NULL AND r.mode = 'tenant'), '{}'),
               coalesce(pg_catalog.array_agg(r.tbl::oid) FILTER (WHERE c.oid IS NOT NULL AND r.mode = 'global' AND c.relkind IN ('r', 'p')), '{}'),
               coalesce(pg_catalog.array_agg(r.tbl::oid) FILTER (WHERE c.oid IS NOT NULL AND r.mode = 'global'), '{}'),
               coalesce(pg_catalog.array_agg(r.tbl::oid) FILTER (WHERE c.oid IS NOT NULL AND r.mode = 'log'), '{}'),
               coalesce(pg_catalog.array_agg(r.tbl::oid) FILTER (WHERE c.oid IS NOT NULL AND r.mode = 'operator'), '{}'),
               coalesce(pg_catalog.array_agg(r.tbl::oid) FILTER (WHERE c.oid IS NULL), '{}')
          INTO v_reg_tenant, v_reg_global, s.declared, v_reg_log, v_reg_op, s.reg_gone
          FROM buzz.tenancy_tables r
          LEFT JOIN pg_catalog.pg_class c ON c.oid = r.tbl::oid;
    END IF;

    -- Tenant tables: registered tenant + extension tenant tables, and all their partitions
    -- (pg_partition_tree returns nothing for a table that is not partitioned: keep the roots).
    SELECT coalesce(pg_catalog.array_agg(DISTINCT t.oid), '{}') INTO s.tenant
      FROM (SELECT root.oid FROM pg_catalog.unnest(v_reg_tenant || v_ext_tenant) AS root(oid)
            UNION
            SELECT pt.relid::oid FROM pg_catalog.unnest(v_reg_tenant || v_ext_tenant) AS root(oid),
                   LATERAL pg_catalog.pg_partition_tree(root.oid::pg_catalog.regclass) pt) t;

    -- Logs and operator-only tables, with their partitions.
    SELECT coalesce(pg_catalog.array_agg(DISTINCT x.oid), '{}') INTO s.logs
      FROM (SELECT pg_catalog.unnest(v_reg_log) AS oid
            UNION SELECT pt.relid::oid FROM pg_catalog.unnest(v_reg_log) AS root(oid),
                         LATERAL pg_catalog.pg_partition_tree(root.oid::pg_catalog.regclass) pt) x
     WHERE NOT x.oid = ANY (s.tenant);
    SELECT coalesce(pg_catalog.array_agg(DISTINCT x.oid), '{}') INTO s.operator
      FROM (SELECT pg_catalog.unnest(v_reg_op) AS oid
            UNION SELECT pt.relid::oid FROM pg_catalog.unnest(v_reg_op) AS root(oid),
                         LATERAL pg_catalog.pg_partition_tree(root.oid::pg_catalog.regclass) pt) x
     WHERE NOT x.oid = ANY (s.tenant);

    -- Global tables: registered global + the extension's other tables, their partitions.
    SELECT coalesce(pg_catalog.array_agg(DISTINCT g.oid), '{}') INTO s.global
      FROM (SELECT root.oid FROM pg_catalog.unnest(v_reg_global) AS root(oid)
            UNION
            SELECT c.oid FROM pg_catalog.pg_class c WHERE c.oid = ANY (s.ext_tables) AND c.relkind IN ('r', 'p')
            UNION
            SELECT pt.relid::oid FROM pg_catalog.unnest(v_reg_global || s.ext_tables) AS root(oid),
                   LATERAL pg_catalog.pg_partition_tree(root.oid::pg_catalog.regclass) pt) g
     WHERE NOT g.oid = ANY (s.tenant);

    SELECT coalesce(pg_catalog.array_agg(n.oid), '{}') INTO s.schemas
      FROM pg_catalog.pg_namespace n
     WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
       AND n.nspname !~ '^pg_(toast_)?temp_'
       AND EXISTS (SELECT 1 FROM pg_catalog.unnest(s.roles) r(oid)
                    WHERE pg_catalog.has_schema_privilege(r.oid, n.oid, 'USAGE'));

    -- Checked tables: tenant tables, and every other table with a community_id column that
    -- is not global (wherever it lives, reachable or not).
    SELECT coalesce(pg_catalog.array_agg(DISTINCT t.oid), '{}') INTO s.checked
      FROM (SELECT pg_catalog.unnest(s.tenant) AS oid
            UNION
            SELECT c.oid FROM pg_catalog.pg_class c
              JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
              JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attname = 'community_id'
                                             AND a.attnum > 0 AND NOT a.attisdropped
             WHERE c.relkind IN ('r', 'p') AND c.relpersistence <> 't'
               AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
               AND NOT c.oid = ANY (s.global || s.logs || s.operator)) t;

    -- The relay's own community registries: global tables a checked table references through
    -- community_id alone.
    SELECT coalesce(pg_catalog.array_agg(DISTINCT k.confrelid), '{}') INTO s.communities
      FROM pg_catalog.pg_constraint k
      JOIN pg_catalog.pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = k.conkey[1] AND a.attname = 'community_id'
     WHERE k.contype = 'f' AND k.confrelid = ANY (s.global) AND NOT k.confrelid = ANY (s.ext_tables)
       AND k.conrelid = ANY (s.checked) AND pg_catalog.cardinality(k.conkey) = 1;

    -- Protected: checked tables, the extension's tables, logs, operator-only tables, the
    -- registries, global tables holding communities' rows (with community_id, or a foreign key
    -- into buzz.communities or a registry, whatever the column is called), and every
    -- inheritance ancestor of those (a scan of a parent returns its children's rows under the
    -- parent's policies).
    WITH RECURSIVE direct(oid) AS (
        SELECT pg_catalog.unnest(s.checked || s.ext_tables || s.logs || s.operator || s.communities)
        UNION
        SELECT g.oid FROM pg_catalog.unnest(s.global) AS g(oid)
         WHERE EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a
                        WHERE a.attrelid = g.oid AND a.attname = 'community_id'
                          AND a.attnum > 0 AND NOT a.attisdropped)
            OR EXISTS (SELECT 1 FROM pg_catalog.pg_constraint k
                        WHERE k.contype = 'f' AND k.conrelid = g.oid
                          AND (k.confrelid = ANY (s.communities) OR k.confrelid = pg_catalog.to_regclass('buzz.communities')))
    ), up(oid) AS (
        SELECT d.oid FROM direct d
        UNION
        SELECT i.inhparent FROM up JOIN pg_catalog.pg_inherits i ON i.inhrelid = up.oid
    )
    SELECT coalesce(pg_catalog.array_agg(DISTINCT up.oid), '{}') INTO s.protected FROM up;
    RETURN s;
END
$fn$;

---------------------------------------------------------------------------------------------
-- A-RLS-1: every checked table is ENABLE + FORCE ROW LEVEL SECURITY, has a RESTRICTIVE fence
-- on community_id for all commands that applies to every role the relay can act as and that
-- holds a privilege on it, has community_id, has an enabled trigger keeping community_id
-- immutable, and is not owned by a role that bypasses row level security whatever FORCE says
-- (a superuser or BYPASSRLS owner: its rules and views would read every community).
-- PERMISSIVE policies other than the plain fence expression are reported for review.
-- The fence is recognized by what it does, not by its name. A policy applies to a role as
-- PostgreSQL decides it: the policy names PUBLIC, or a role whose privileges the role uses
-- (pg_has_role USAGE: a NOINHERIT member does not use its groups' privileges, and the group's
-- policies do not apply to it). The guard is an enabled (origin or always: a REPLICA trigger
-- does not fire in normal sessions) BEFORE UPDATE row trigger without column list or WHEN
-- clause running buzz.tenant_guard or buzz.forbid_retenant.
---------------------------------------------------------------------------------------------
CREATE FUNCTION conformance_rls(s conformance_scope)
RETURNS TABLE (object text, status text, detail text)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $fn$
    WITH fence(rel, roles) AS (     -- the fences of each table, with the roles they name
        SELECT p.polrelid, p.polroles FROM pg_catalog.pg_policy p
         WHERE p.polrelid = ANY (($1).checked) AND NOT p.polpermissive AND p.polcmd = '*'
           -- The exact text pg_get_expr() gives for the fence on PG 15 (buzz is not on this
           -- function's search_path, so the call is always schema-qualified).
           AND pg_catalog.pg_get_expr(p.polqual, p.polrelid) = buzz.fence_expression()
           AND pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid) = buzz.fence_expression()
    )
    SELECT c.oid::pg_catalog.regclass::text, 'fail', 'row level security is not enabled'
      FROM pg_catalog.pg_class c WHERE c.oid = ANY (($1).checked) AND NOT c.relrowsecurity
    UNION ALL
    SELECT c.oid::pg_catalog.regclass::text, 'fail', 'row level security is not forced (the owner bypasses it)'
      FROM pg_catalog.pg_class c WHERE c.oid = ANY (($1).checked) AND NOT c.relforcerowsecurity
    UNION ALL
    SELECT c.oid::pg_catalog.regclass::text, 'fail',
           'no RESTRICTIVE policy for all commands fences it to buzz.current_community()'
      FROM pg_catalog.pg_class c
     WHERE c.oid = ANY (($1).checked) AND NOT EXISTS (SELECT 1 FROM fence f WHERE f.rel = c.oid)
    UNION ALL
    SELECT c.oid::pg_catalog.regclass::text, 'fail',
           CASE WHEN r.oid = ($1).role
                THEN 'the fence does not apply to the role itself (a policy applies to the roles whose privileges the current role uses)'
                ELSE pg_catalog.format('the fence does not apply to role %I, which the relay can act as and which holds privileges on it', r.rolname) END
      FROM pg_catalog.pg_class c
      CROSS JOIN pg_catalog.unnest(($1).roles) AS ro(oid)
      JOIN pg_catalog.pg_roles r ON r.oid = ro.oid
     WHERE c.oid = ANY (($1).checked)
       AND EXISTS (SELECT 1 FROM fence f WHERE f.rel = c.oid)
       AND buzz.any_role_can(ARRAY[r.oid], c.oid, '{SELECT,INSERT,UPDATE,DELETE}')
       AND NOT EXISTS (SELECT 1 FROM fence f CROSS JOIN pg_catalog.unnest(f.roles) AS pr(oid)
                        WHERE f.rel = c.oid AND (pr.oid = 0 OR pg_catalog.pg_has_role(r.oid, pr.oid, 'USAGE')))
    UNION ALL
    SELECT c.oid::pg_catalog.regclass::text, 'fail', 'tenant table has no community_id column'
      FROM pg_catalog.pg_class c
     WHERE c.oid = ANY (($1).checked)
       AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a
                        WHERE a.attrelid = c.oid AND a.attname = 'community_id'
                          AND a.attnum > 0 AND NOT a.attisdropped)
    UNION ALL
    SELECT c.oid::pg_catalog.regclass::text, 'fail',
           'no enabled BEFORE UPDATE row trigger keeps community_id immutable'
      FROM pg_catalog.pg_class c
     WHERE c.oid = ANY (($1).checked)
       AND NOT EXISTS (
           SELECT 1 FROM pg_catalog.pg_trigger g
             JOIN pg_catalog.pg_proc gp ON gp.oid = g.tgfoid
            WHERE g.tgrelid = c.oid AND g.tgenabled IN ('O', 'A')
              AND g.tgtype & 1 = 1 AND g.tgtype & 2 = 2 AND g.tgtype & 16 = 16   -- ROW, BEFORE, UPDATE
              AND g.tgqual IS NULL AND pg_catalog.cardinality(g.tgattr::int2[]) = 0
              AND gp.pronamespace = ($1).buzz AND gp.proname IN ('tenant_guard', 'forbid_retenant'))
    UNION ALL
    SELECT c.oid::pg_catalog.regclass::text, 'fail',
           pg_catalog.format('inherits from %s, which is not a tenant table: a scan of the parent returns this table''s rows under the parent''s policies',
                             i.inhparent::pg_catalog.regclass)
      FROM pg_catalog.pg_class c
      JOIN pg_catalog.pg_inherits i ON i.inhrelid = c.oid
      JOIN pg_catalog.pg_class pc ON pc.oid = i.inhparent
     WHERE c.oid = ANY (($1).checked) AND NOT c.relispartition AND NOT i.inhparent = ANY (($1).checked)
    UNION ALL
    SELECT c.oid::pg_catalog.regclass::text, 'fail',
           pg_catalog.format('owned by %I, a superuser or BYPASSRLS role: row level security never binds the owner, nor its rules and views', o.rolname)
      FROM pg_catalog.pg_class c JOIN pg_catalog.pg_roles o ON o.oid = c.relowner
     WHERE c.oid = ANY (($1).checked) AND (o.rolsuper OR o.rolbypassrls)
    UNION ALL
    SELECT pg_catalog.format('%s.%I', c.oid::pg_catalog.regclass, p.polname), 'warn',
           'permissive policy may widen access inside the community'
      FROM pg_catalog.pg_class c
      JOIN pg_catalog.pg_policy p ON p.polrelid = c.oid
     WHERE c.oid = ANY (($1).checked) AND p.polpermissive
       AND NOT (coalesce(pg_catalog.pg_get_expr(p.polqual, p.polrelid), buzz.fence_expression())
                    = buzz.fence_expression()
                AND coalesce(pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid), buzz.fence_expression())
                    = buzz.fence_expression())
$fn$;

---------------------------------------------------------------------------------------------
-- A-RLS-2: the relay role cannot bypass RLS, directly or as any role it can act as (§12.4):
-- none of those roles is SUPERUSER / BYPASSRLS / CREATEROLE / REPLICATION; none is a
-- server-file or program role, pg_read_all_data, pg_write_all_data, buzz_owner, buzz_admin,
-- the owner of a tenant table (or of any table with row security) or the database owner.
---------------------------------------------------------------------------------------------
CREATE FUNCTION conformance_roles(s conformance_scope)
RETURNS TABLE (object text, status text, detail text)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $fn$
    WITH acts(oid, rolname, self) AS (
        SELECT r.oid, r.rolname, r.oid = ($1).role
          FROM pg_catalog.unnest(($1).roles) AS ro(oid) JOIN pg_catalog.pg_roles r ON r.oid = ro.oid
    )
    SELECT pg_catalog.format('role %I', ($1).role_name), 'fail', f.detail FROM (
        SELECT CASE WHEN a.self THEN pg_catalog.format('role %s', attr.what)
                    ELSE pg_catalog.format('role can act as %I, which %s', a.rolname, attr.what) END AS detail
          FROM acts a
          JOIN pg_catalog.pg_roles r ON r.oid = a.oid
          CROSS JOIN LATERAL (VALUES ('is SUPERUSER', r.rolsuper), ('has BYPASSRLS', r.rolbypassrls),
                                     ('has CREATEROLE', r.rolcreaterole), ('has REPLICATION', r.rolreplication)) AS attr(what, holds)
         WHERE attr.holds
        UNION ALL
        SELECT pg_catalog.format('role is a member of %I', a.rolname)
          FROM acts a
         WHERE NOT a.self
           AND a.rolname IN ('pg_read_server_files', 'pg_write_server_files', 'pg_execute_server_program',
                             'pg_read_all_data', 'pg_write_all_data', 'pg_signal_backend', 'buzz_owner', 'buzz_admin')
        UNION ALL
        SELECT pg_catalog.format('role is %I', a.rolname)
          FROM acts a WHERE a.self AND a.rolname IN ('buzz_owner', 'buzz_admin')
        UNION ALL
        SELECT pg_catalog.format('role owns tenant table %s', c.oid::pg_catalog.regclass)
          FROM pg_catalog.pg_class c
         WHERE (c.oid = ANY (($1).checked) OR (c.relrowsecurity AND c.relkind IN ('r', 'p'))) AND c.relowner = ($1).role
        UNION ALL
        SELECT DISTINCT pg_catalog.format('role is a member of %I, which owns tenant tables', a.rolname)
          FROM acts a
          JOIN pg_catalog.pg_class c ON c.relowner = a.oid
         WHERE NOT a.self AND a.rolname NOT IN ('buzz_owner', 'buzz_admin')      -- reported above
           AND (c.oid = ANY (($1).checked) OR (c.relrowsecurity AND c.relkind IN ('r', 'p')))
        UNION ALL
        SELECT CASE WHEN d.datdba = ($1).role THEN 'role owns the current database'
                    ELSE 'role is a member of the owner of the current database' END
          FROM pg_catalog.pg_database d
         WHERE d.oid = ($1).db AND d.datdba = ANY (($1).roles)
        UNION ALL
        -- a worker's privilege: enter any community by id, without a host
        SELECT 'role can execute buzz.enter_community(uuid), which enters any community without a host'
         WHERE ($1).kind = 'relay' AND pg_catalog.to_regprocedure('buzz.enter_community(uuid)') IS NOT NULL
           AND EXISTS (SELECT 1 FROM pg_catalog.unnest(($1).roles) AS ro(oid)
                        WHERE pg_catalog.has_function_privilege(ro.oid, 'buzz.enter_community(uuid)', 'EXECUTE'))
        UNION ALL
        -- the relay API (buzz.relay_api(), what setup_relay_role grants; for a worker
        -- buzz.worker_api()) is the only code of the extension the role may run: anything else
        -- is an operator's power (or the other kind's)
        SELECT pg_catalog.format('role can execute %s, which is not in the %s API', p.oid::pg_catalog.regprocedure, ($1).kind)
          FROM pg_catalog.pg_proc p
         WHERE p.pronamespace = ($1).buzz
           AND NOT (($1).kind = 'relay' AND p.oid = 'buzz.enter_community(uuid)'::pg_catalog.regprocedure)  -- reported above
           AND NOT p.oid = ANY (($1).api)
           -- a superuser or a member of the extension's roles can run anything: reported above
           AND NOT EXISTS (SELECT 1 FROM acts a JOIN pg_catalog.pg_roles r ON r.oid = a.oid
                            WHERE r.rolsuper OR a.rolname IN ('buzz_owner', 'buzz_admin'))
           AND EXISTS (SELECT 1 FROM pg_catalog.unnest(($1).roles) AS ro(oid)
                        WHERE pg_catalog.has_function_privilege(ro.oid, p.oid, 'EXECUTE'))
        UNION ALL
        -- functions PostgreSQL reserves to superusers by revoking EXECUTE from PUBLIC (server
        -- files, WAL, settings, replication origins): granted, they bypass row level security
        -- (pg_read_binary_file reads the heap files of every table)
        SELECT pg_catalog.format('role can execute %s, which PostgreSQL reserves to superusers', p.oid::pg_catalog.regprocedure)
          FROM pg_catalog.pg_proc p
         WHERE p.oid < 16384 AND p.proacl IS NOT NULL
           AND NOT EXISTS (SELECT 1 FROM pg_catalog.aclexplode(p.proacl) a WHERE a.grantee = 0 AND a.privilege_type = 'EXECUTE')
           AND p.oid NOT IN ('pg_catalog.lo_creat(integer)'::pg_catalog.regprocedure, 'pg_catalog.lo_create(oid)'::pg_catalog.regprocedure,
                             'pg_catalog.lo_from_bytea(oid, bytea)'::pg_catalog.regprocedure)   -- NOTHING-SURVIVES
           AND p.oid NOT IN (SELECT f FROM buzz.shared_state_functions() AS f)                  -- A-RLS-4
           AND EXISTS (SELECT 1 FROM pg_catalog.unnest(($1).roles) AS ro(oid)
                        JOIN pg_catalog.pg_roles r ON r.oid = ro.oid
                       WHERE NOT r.rolsuper AND pg_catalog.has_function_privilege(ro.oid, p.oid, 'EXECUTE'))
    ) f
$fn$;

---------------------------------------------------------------------------------------------
-- A-RLS-3: the extension's settings cannot be changed by the relay (§4, §12.6): no per-role or
-- per-database override, no setting in the configuration files / ALTER SYSTEM (a warn: only a
-- superuser can write those), no SET or ALTER SYSTEM privilege on them for any role the relay
-- can act as, and every such setting is superuser-only (contexts superuser,
-- superuser-backend, sighup, postmaster, internal).
---------------------------------------------------------------------------------------------
CREATE FUNCTION conformance_settings(s conformance_scope)
RETURNS TABLE (object text, status text, detail text)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $fn$
#variable_conflict use_column
DECLARE
    v_files    text[] := '{}';
    v_files_ok boolean;
BEGIN
    v_files_ok := pg_catalog.has_table_privilege('pg_catalog.pg_file_settings', 'SELECT')
              AND pg_catalog.has_function_privilege('pg_catalog.pg_show_all_file_settings()', 'EXECUTE');
    IF v_files_ok THEN
        SELECT coalesce(pg_catalog.array_agg(pg_catalog.format('%s (%s:%s)', fs.name, fs.sourcefile, fs.sourceline)
                                             ORDER BY fs.seqno), '{}')
          INTO v_files
          FROM pg_catalog.pg_file_settings fs
         WHERE pg_catalog.lower(fs.name) LIKE 'buzz\_tenancy.%';
    END IF;
    RETURN QUERY
    SELECT CASE WHEN rs.setrole <> 0 AND rs.setdatabase <> 0
                    THEN pg_catalog.format('role %I in database %I', r.rolname, d.datname)
                WHEN rs.setrole <> 0 THEN pg_catalog.format('role %I', r.rolname)
                WHEN rs.setdatabase <> 0 THEN pg_catalog.format('database %I', d.datname)
                ELSE 'all roles' END,
           'fail',
           pg_catalog.format('a role or database setting overrides %s', pg_catalog.split_part(cfg.c, '=', 1))
      FROM pg_catalog.pg_db_role_setting rs
      CROSS JOIN LATERAL pg_catalog.unnest(rs.setconfig) AS cfg(c)
      LEFT JOIN pg_catalog.pg_roles r ON r.oid = rs.setrole
      LEFT JOIN pg_catalog.pg_database d ON d.oid = rs.setdatabase
     WHERE pg_catalog.lower(pg_catalog.split_part(cfg.c, '=', 1)) LIKE 'buzz\_tenancy.%'
    UNION ALL
    SELECT fo.o, 'warn', 'a configuration file or ALTER SYSTEM sets a buzz setting; check its value'
      FROM pg_catalog.unnest(v_files) AS fo(o)
    UNION ALL
    SELECT 'pg_file_settings', 'warn', 'cannot read pg_file_settings; configuration files were not checked'
     WHERE NOT v_files_ok
    UNION ALL
    SELECT DISTINCT pn.name, 'fail', pg_catalog.format('role has %s privilege on this setting', pv.priv)
      FROM (SELECT st.name FROM pg_catalog.pg_settings st WHERE pg_catalog.lower(st.name) LIKE 'buzz\_tenancy.%'
            UNION
            SELECT pa.parname FROM pg_catalog.pg_parameter_acl pa WHERE pg_catalog.lower(pa.parname) LIKE 'buzz\_tenancy.%') pn
      CROSS JOIN (VALUES ('SET'), ('ALTER SYSTEM')) AS pv(priv)
      CROSS JOIN pg_catalog.unnest(($1).roles) AS ro(oid)
     WHERE pg_catalog.has_parameter_privilege(ro.oid, pn.name, pv.priv)
    UNION ALL
    -- replica mode silences ordinary triggers and foreign-key checks: the guards that keep a
    -- row's community, and the composite keys
    SELECT DISTINCT 'session_replication_role', 'fail',
           pg_catalog.format('role has %s privilege on session_replication_role (replica mode disables the guard triggers and foreign keys)', pv.priv)
      FROM (VALUES ('SET'), ('ALTER SYSTEM')) AS pv(priv)
      CROSS JOIN pg_catalog.unnest(($1).roles) AS ro(oid)
      JOIN pg_catalog.pg_roles r ON r.oid = ro.oid
     WHERE NOT r.rolsuper AND pg_catalog.has_parameter_privilege(ro.oid, 'session_replication_role', pv.priv)
    UNION ALL
    SELECT st.name, 'fail', pg_catalog.format('setting is not superuser-only (context %s)', st.context)
      FROM pg_catalog.pg_settings st
     WHERE pg_catalog.lower(st.name) LIKE 'buzz\_tenancy.%'
       AND st.context NOT IN ('superuser', 'superuser-backend', 'sighup', 'postmaster', 'internal');
END
$fn$;

---------------------------------------------------------------------------------------------
-- A-RLS-4: nothing runs with someone else's rights over protected data, and no privilege
-- ignores RLS (§9, §12.12). For every role the relay can act as:
--  * non-audited SECURITY DEFINER functions (audited = members of this extension; exempt:
--    only functions that shipped with PostgreSQL, by oid) that the role can EXECUTE, or that
--    run from a trigger on a table it can write, or are referenced by a policy, default, check
--    constraint, rule, trigger WHEN clause or index expression of a relation it can access;
--  * LEAKPROOF functions that did not ship with PostgreSQL;
--  * views over protected relations (directly or through other views) without
--    security_invoker, or owned by a superuser or BYPASSRLS role;
--  * rules of every event type (other than a view's own SELECT rule) whose action reads a
--    protected relation: they run with the rights of the rule's table owner — a failure when
--    they reach the extension's or a declared-global directory table, or when that owner
--    bypasses row level security;
--  * materialized views over protected relations, and every materialized view the role can
--    read that the operator has not declared global (what a materialized view reads through
--    a function is invisible to the catalogs, and REFRESH runs as its owner);
--  * foreign tables the role can read or write that the operator has not declared global
--    (what they read is not known here: a loopback server reads every community's rows),
--    and views, materialized views and rules over them; USAGE on a foreign server, and user
--    mappings for PUBLIC or a role it can act as;
--  * functions that read state every community shares around row level security
--    (buzz.shared_state_functions(): per-relation statistics counters, relation, database
--    and tablespace sizes, the WAL position, locks, pg_notify, and the functions of contrib
--    modules that read whole relations), when the role can execute them;
--  * triggers on tables the role can write whose function is C code that did not ship with
--    PostgreSQL or this extension (no hook sees what it does: tcn sends NOTIFYs);
--  * TRUNCATE, REFERENCES (table or column) and TRIGGER on tenant tables.
---------------------------------------------------------------------------------------------
CREATE FUNCTION conformance_definers(s conformance_scope)
RETURNS TABLE (object text, status text, detail text)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $fn$
    WITH RECURSIVE over_protected(oid) AS (      -- views and matviews reading protected relations
        SELECT rw.ev_class
          FROM pg_catalog.pg_depend d
          JOIN pg_catalog.pg_rewrite rw ON rw.oid = d.objid
         WHERE d.classid = 'pg_catalog.pg_rewrite'::pg_catalog.regclass
           AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass
           AND (d.refobjid = ANY (($1).protected)
                -- a foreign table not declared global: what it reads is unknown (a loopback
                -- server reads every community, with the mapping of the view's owner)
                OR EXISTS (SELECT 1 FROM pg_catalog.pg_class ft
                            WHERE ft.oid = d.refobjid AND ft.relkind = 'f' AND NOT ft.oid = ANY (($1).declared)))
           AND rw.ev_class <> d.refobjid AND rw.rulename = '_RETURN'
        UNION
        SELECT rw.ev_class
          FROM over_protected o
          JOIN pg_catalog.pg_depend d ON d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass
                                     AND d.refobjid = o.oid
                                     AND d.classid = 'pg_catalog.pg_rewrite'::pg_catalog.regclass
          JOIN pg_catalog.pg_rewrite rw ON rw.oid = d.objid
         WHERE rw.ev_class <> o.oid AND rw.rulename = '_RETURN'
    ),
    secdef AS (                                    -- non-audited SECURITY DEFINER functions
        -- (PostgreSQL ships none, so no built-in is exempt: a superuser may redefine one)
        SELECT p.oid FROM pg_catalog.pg_proc p
         WHERE p.prosecdef AND NOT p.oid = ANY (($1).audited)
    ),
    accessible AS (                                -- relations one of the roles holds any privilege on
        SELECT c.oid, buzz.any_role_can(($1).roles, c.oid, '{INSERT,UPDATE,DELETE,TRUNCATE}') AS writable
          FROM pg_catalog.pg_class c
         WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f')
           AND buzz.any_role_can(($1).roles, c.oid, '{SELECT,INSERT,UPDATE,DELETE,TRUNCATE,REFERENCES,TRIGGER}')
    ),
    uses AS (                                      -- catalog objects that call a function, by table
        SELECT d.refobjid AS fn,
               coalesce(pol.polrelid, ad.adrelid, con.conrelid, rw.ev_class, tg.tgrelid, ix.indrelid) AS rel,
               CASE WHEN pol.oid IS NOT NULL THEN pg_catalog.format('policy %I', pol.polname)
                    WHEN ad.oid IS NOT NULL THEN 'a column default'
                    WHEN con.oid IS NOT NULL THEN pg_catalog.format('constraint %I', con.conname)
                    WHEN rw.oid IS NOT NULL THEN pg_catalog.format('rule %I', rw.rulename)
                    WHEN tg.oid IS NOT NULL THEN pg_catalog.format('the WHEN clause of trigger %I', tg.tgname)
                    ELSE pg_catalog.format('index %I', ic.relname) END AS via
          FROM pg_catalog.pg_depend d
          LEFT JOIN pg_catalog.pg_policy pol ON d.classid = 'pg_catalog.pg_policy'::pg_catalog.regclass AND pol.oid = d.objid
          LEFT JOIN pg_catalog.pg_attrdef ad ON d.classid = 'pg_catalog.pg_attrdef'::pg_catalog.regclass AND ad.oid = d.objid
          LEFT JOIN pg_catalog.pg_constraint con ON d.classid = 'pg_catalog.pg_constraint'::pg_catalog.regclass AND con.oid = d.objid
          LEFT JOIN pg_catalog.pg_rewrite rw ON d.classid = 'pg_catalog.pg_rewrite'::pg_catalog.regclass AND rw.oid = d.objid
          LEFT JOIN pg_catalog.pg_trigger tg ON d.classid = 'pg_catalog.pg_trigger'::pg_catalog.regclass AND tg.oid = d.objid
                                             AND tg.tgfoid <> d.refobjid     -- the trigger function: reported separately
          LEFT JOIN pg_catalog.pg_index ix ON d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND ix.indexrelid = d.objid
          LEFT JOIN pg_catalog.pg_class ic ON ic.oid = ix.indexrelid
         WHERE d.refclassid = 'pg_catalog.pg_proc'::pg_catalog.regclass
           AND d.refobjid IN (SELECT sd.oid FROM secdef sd)
    ),
    rule_reads AS (                                -- rules (not a view's SELECT) reading protected relations
        SELECT DISTINCT rw.rulename, rw.ev_class, o.rolname AS owner, o.rolsuper OR o.rolbypassrls AS bypasses,
               d.refobjid AS target, NOT d.refobjid = ANY (($1).checked) AS directory,
               -- a fence of the target binds the owner (as PostgreSQL applies policies)
               EXISTS (SELECT 1 FROM pg_catalog.pg_policy p CROSS JOIN pg_catalog.unnest(p.polroles) AS pr(oid)
                        WHERE p.polrelid = d.refobjid AND NOT p.polpermissive AND p.polcmd = '*'
                          AND pg_catalog.pg_get_expr(p.polqual, p.polrelid) = buzz.fence_expression()
                          AND (pr.oid = 0 OR pg_catalog.pg_has_role(o.oid, pr.oid, 'USAGE'))) AS fenced
          FROM pg_catalog.pg_rewrite rw
          JOIN pg_catalog.pg_class ev ON ev.oid = rw.ev_class
          JOIN pg_catalog.pg_roles o ON o.oid = ev.relowner
          JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_rewrite'::pg_catalog.regclass AND d.objid = rw.oid
                                     AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass
         WHERE rw.rulename <> '_RETURN' AND d.refobjid <> rw.ev_class
           AND (d.refobjid = ANY (($1).protected)
                OR EXISTS (SELECT 1 FROM pg_catalog.pg_class ft
                            WHERE ft.oid = d.refobjid AND ft.relkind = 'f' AND NOT ft.oid = ANY (($1).declared)))
    )
    SELECT p.oid::pg_catalog.regprocedure::text, 'fail', 'role can execute this non-audited SECURITY DEFINER function'
      FROM secdef sd JOIN pg_catalog.pg_proc p ON p.oid = sd.oid
     WHERE EXISTS (SELECT 1 FROM pg_catalog.unnest(($1).roles) AS ro(oid)
                    WHERE pg_catalog.has_function_privilege(ro.oid, p.oid, 'EXECUTE'))
    UNION ALL
    SELECT DISTINCT g.tgfoid::pg_catalog.regprocedure::text, 'fail',
           pg_catalog.format('non-audited SECURITY DEFINER function runs from trigger %I on %s',
                             g.tgname, g.tgrelid::pg_catalog.regclass)
      FROM pg_catalog.pg_trigger g
      JOIN accessible a ON a.oid = g.tgrelid AND a.writable
     WHERE g.tgenabled <> 'D' AND g.tgfoid IN (SELECT sd.oid FROM secdef sd)
    UNION ALL
    -- A trigger function in C that did not ship with PostgreSQL or this extension can do what
    -- no hook sees (tcn's triggered_change_notification sends a NOTIFY carrying the row's key).
    SELECT DISTINCT g.tgfoid::pg_catalog.regprocedure::text, 'fail',
           pg_catalog.format('C trigger function that did not ship with PostgreSQL runs from trigger %I on %s (it can notify or read around row level security)',
                             g.tgname, g.tgrelid::pg_catalog.regclass)
      FROM pg_catalog.pg_trigger g
      JOIN accessible a ON a.oid = g.tgrelid AND a.writable
      JOIN pg_catalog.pg_proc tp ON tp.oid = g.tgfoid
     WHERE g.tgenabled <> 'D' AND tp.prolang = 13 AND tp.oid >= 16384 AND NOT tp.oid = ANY (($1).audited)
    UNION ALL
    SELECT DISTINCT u.fn::pg_catalog.regprocedure::text, 'fail',
           pg_catalog.format('non-audited SECURITY DEFINER function is called by %s of %s',
                             u.via, u.rel::pg_catalog.regclass)
      FROM uses u JOIN accessible a ON a.oid = u.rel
    UNION ALL
    SELECT p.oid::pg_catalog.regprocedure::text, 'fail',
           'LEAKPROOF function that did not ship with PostgreSQL (it sees rows before row level security filters them)'
      FROM pg_catalog.pg_proc p
     WHERE p.proleakproof
       AND NOT (p.oid < 16384 AND p.prolang IN (12, 13))     -- shipped, in C (languages internal and c)
    UNION ALL
    SELECT c.oid::pg_catalog.regclass::text, 'fail',
           'view over tenant data runs with its owner''s rights (security_invoker is not set)'
      FROM pg_catalog.pg_class c
     WHERE c.oid IN (SELECT o.oid FROM over_protected o) AND c.relkind = 'v'
       AND NOT EXISTS (SELECT 1 FROM pg_catalog.unnest(c.reloptions) opt(o)
                        WHERE pg_catalog.lower(pg_catalog.split_part(opt.o, '=', 1)) = 'security_invoker'
                          AND pg_catalog.substr(opt.o, pg_catalog.strpos(opt.o, '=') + 1)::boolean)
    UNION ALL
    SELECT c.oid::pg_catalog.regclass::text, 'fail',
           pg_catalog.format('view over tenant data is owned by %I, a superuser or BYPASSRLS role', o.rolname)
      FROM pg_catalog.pg_class c JOIN pg_catalog.pg_roles o ON o.oid = c.relowner
     WHERE c.oid IN (SELECT ov.oid FROM over_protected ov) AND c.relkind = 'v' AND (o.rolsuper OR o.rolbypassrls)
    UNION ALL
    SELECT pg_catalog.format('%s.%I', r.ev_class::pg_catalog.regclass, r.rulename), 'fail',
           CASE WHEN r.directory
                THEN pg_catalog.format('rule reads %s with the rights of %I, the owner of %s',
                                       r.target::pg_catalog.regclass, r.owner, r.ev_class::pg_catalog.regclass)
                WHEN r.bypasses
                THEN pg_catalog.format('rule reads tenant table %s with the rights of %I, a superuser or BYPASSRLS role',
                                       r.target::pg_catalog.regclass, r.owner)
                ELSE pg_catalog.format('rule reads tenant table %s with the rights of %I, whom no fence of that table binds',
                                       r.target::pg_catalog.regclass, r.owner) END
      FROM rule_reads r
     WHERE r.directory OR r.bypasses OR NOT r.fenced
    UNION ALL
    SELECT c.oid::pg_catalog.regclass::text, 'fail',
           'materialized view copies tenant data out of row level security'
      FROM pg_catalog.pg_class c
     WHERE c.oid IN (SELECT o.oid FROM over_protected o) AND c.relkind = 'm'
    UNION ALL
    SELECT c.oid::pg_catalog.regclass::text, 'fail',
           'the role can read this materialized view, whose rows no policy fences (declare it global if it holds no tenant data)'
      FROM pg_catalog.pg_class c
     WHERE c.relkind = 'm' AND NOT c.oid = ANY (($1).declared)
       AND c.oid NOT IN (SELECT o.oid FROM over_protected o)
       AND buzz.any_role_can(($1).roles, c.oid, '{SELECT}')
    UNION ALL
    SELECT c.oid::pg_catalog.regclass::text, 'fail',
           'the role can read or write this foreign table, whose rows no policy fences (declare it global if it holds no tenant data)'
      FROM pg_catalog.pg_class c
     WHERE c.relkind = 'f' AND NOT c.oid = ANY (($1).declared)
       AND buzz.any_role_can(($1).roles, c.oid, '{SELECT,INSERT,UPDATE,DELETE}')
    UNION ALL
    SELECT pg_catalog.format('server %I', fs.srvname), 'fail',
           'role can use this foreign server (foreign tables and its user mappings connect around row level security)'
      FROM pg_catalog.pg_foreign_server fs
     WHERE EXISTS (SELECT 1 FROM pg_catalog.unnest(($1).roles) AS ro(oid)
                    WHERE pg_catalog.has_server_privilege(ro.oid, fs.oid, 'USAGE'))
    UNION ALL
    SELECT pg_catalog.format('server %I', fs.srvname), 'fail',
           CASE WHEN um.umuser = 0 THEN 'a user mapping for PUBLIC lets any role''s foreign tables connect as another user'
                ELSE pg_catalog.format('a user mapping for %I lets its foreign tables connect as another user', r.rolname) END
      FROM pg_catalog.pg_user_mapping um
      JOIN pg_catalog.pg_foreign_server fs ON fs.oid = um.umserver
      LEFT JOIN pg_catalog.pg_roles r ON r.oid = um.umuser
     WHERE um.umuser = 0 OR um.umuser = ANY (($1).roles)
    UNION ALL
    SELECT 'buzz.shared_state_functions()', 'fail',
           pg_catalog.format('role can execute %s functions that read state every community shares around row level security (%s%s): revoke EXECUTE on them (from PUBLIC, and from the roles that grant them)',
                             pg_catalog.count(*),
                             pg_catalog.array_to_string((pg_catalog.array_agg(x.fn ORDER BY x.fn))[1:3], ', '),
                             CASE WHEN pg_catalog.count(*) > 3 THEN ', ...' ELSE '' END)
      FROM (SELECT f.fn::pg_catalog.regprocedure::text AS fn
              FROM buzz.shared_state_functions() AS f(fn)
             WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles r WHERE r.oid = ANY (($1).roles) AND r.rolsuper)
               AND EXISTS (SELECT 1 FROM pg_catalog.unnest(($1).roles) AS ro(oid)
                            WHERE pg_catalog.has_function_privilege(ro.oid, f.fn, 'EXECUTE'))) x
    HAVING pg_catalog.count(*) > 0
    UNION ALL
    SELECT c.oid::pg_catalog.regclass::text, 'fail',
           pg_catalog.format('role has %s on a tenant table (it ignores row level security)', pv.priv)
      FROM pg_catalog.pg_class c
      CROSS JOIN (VALUES ('TRUNCATE'), ('REFERENCES'), ('TRIGGER')) AS pv(priv)
     WHERE c.oid = ANY (($1).checked) AND buzz.any_role_can(($1).roles, c.oid, ARRAY[pv.priv])
$fn$;

---------------------------------------------------------------------------------------------
-- A-RLS-5: uniqueness and foreign-key checks ignore RLS, so on tenant tables every key
-- includes community_id (§5, §12.12): PRIMARY KEY / UNIQUE / unique indexes (partial and
-- expression ones too) among their key columns, exclusion constraints with `=` on it,
-- tenant -> tenant FKs at the same position on both sides. Tenant -> non-tenant FKs without
-- community_id are reported for review; any FK from a non-tenant table into a tenant table
-- fails. Index partitions and cloned constraints of partitions are reported once, at the
-- parent. Serial and identity columns of tenant tables are reported for review (§12.13), and
-- so are other indexes not led by community_id: an index scan visits other communities' rows
-- before the fence filters them, and counters that report such visits would reveal them
-- (EXPLAIN ANALYZE is refused in a community transaction for that reason, §12.20). The keys
-- of relay-written logs follow the same rule, and none of their key columns is numbered from a
-- shared sequence; foreign keys of operator-only tables never act on the relay's writes.
---------------------------------------------------------------------------------------------
CREATE FUNCTION conformance_keys(s conformance_scope)
RETURNS TABLE (object text, status text, detail text)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $fn$
    WITH catt AS (                                 -- community_id's attnum, per table
        SELECT a.attrelid AS rel, a.attnum
          FROM pg_catalog.pg_attribute a
         WHERE a.attname = 'community_id' AND a.attnum > 0 AND NOT a.attisdropped
    )
    SELECT pg_catalog.format('%s.%I', i.indrelid::pg_catalog.regclass, ic.relname), 'fail',
           CASE k.contype WHEN 'p' THEN 'primary key' WHEN 'u' THEN 'unique constraint' ELSE 'unique index' END
           || ' does not include community_id (uniqueness ignores row level security)'
      FROM pg_catalog.pg_index i
      JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
      LEFT JOIN pg_catalog.pg_constraint k ON k.conindid = i.indexrelid AND k.conrelid = i.indrelid
                                          AND k.contype IN ('p', 'u')
      LEFT JOIN catt ON catt.rel = i.indrelid
     WHERE i.indrelid = ANY (($1).checked) AND i.indisunique AND NOT ic.relispartition
       AND NOT EXISTS (SELECT 1 FROM pg_catalog.generate_series(0, i.indnkeyatts - 1) j
                        WHERE i.indkey[j] = catt.attnum)
    UNION ALL
    SELECT pg_catalog.format('%s.%I', i.indrelid::pg_catalog.regclass, ic.relname), 'warn',
           'index is not led by community_id (its scans visit other communities'' rows before the fence filters them)'
      FROM pg_catalog.pg_index i
      JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
      LEFT JOIN catt ON catt.rel = i.indrelid
     WHERE i.indrelid = ANY (($1).checked) AND NOT i.indisunique AND NOT ic.relispartition
       AND i.indkey[0] IS DISTINCT FROM catt.attnum
    UNION ALL
    SELECT pg_catalog.format('%s.%I', k.conrelid::pg_catalog.regclass, k.conname), 'fail',
           'exclusion constraint does not compare community_id with ='
      FROM pg_catalog.pg_constraint k
      LEFT JOIN catt ON catt.rel = k.conrelid
     WHERE k.contype = 'x' AND k.conrelid = ANY (($1).checked) AND k.conparentid = 0
       AND NOT EXISTS (SELECT 1 FROM pg_catalog.generate_subscripts(k.conkey, 1) j
                         JOIN pg_catalog.pg_operator op ON op.oid = k.conexclop[j]
                        WHERE k.conkey[j] = catt.attnum AND op.oprname = '=')
    UNION ALL
    SELECT pg_catalog.format('%s.%I', k.conrelid::pg_catalog.regclass, k.conname), 'fail',
           pg_catalog.format('foreign key to tenant table %s does not match community_id on both sides',
                             k.confrelid::pg_catalog.regclass)
      FROM pg_catalog.pg_constraint k
      LEFT JOIN catt src ON src.rel = k.conrelid
      LEFT JOIN catt dst ON dst.rel = k.confrelid
     WHERE k.contype = 'f' AND k.conparentid = 0
       AND k.conrelid = ANY (($1).checked) AND k.confrelid = ANY (($1).checked)
       AND NOT EXISTS (SELECT 1 FROM pg_catalog.generate_subscripts(k.conkey, 1) j
                        WHERE k.conkey[j] = src.attnum AND k.confkey[j] = dst.attnum)
    UNION ALL
    SELECT pg_catalog.format('%s.%I', k.conrelid::pg_catalog.regclass, k.conname),
           CASE WHEN hid.oid IS NULL THEN 'warn' ELSE 'fail' END,
           CASE WHEN hid.oid IS NULL
                THEN pg_catalog.format('foreign key to non-tenant table %s does not include community_id',
                                       k.confrelid::pg_catalog.regclass)
                ELSE pg_catalog.format('foreign key to %s, which the relay may not read, does not include community_id (which values exist there is an oracle)',
                                       k.confrelid::pg_catalog.regclass) END
      FROM pg_catalog.pg_constraint k
      LEFT JOIN catt src ON src.rel = k.conrelid
      LEFT JOIN (SELECT pg_catalog.unnest(($1).communities || ($1).logs || ($1).operator || ($1).ext_tables) AS oid) hid
             ON hid.oid = k.confrelid
     WHERE k.contype = 'f' AND k.conparentid = 0
       AND k.conrelid = ANY (($1).checked) AND NOT k.confrelid = ANY (($1).checked)
       AND NOT coalesce(src.attnum = ANY (k.conkey), false)
    UNION ALL
    SELECT pg_catalog.format('%s.%I', k.conrelid::pg_catalog.regclass, k.conname), 'fail',
           pg_catalog.format('foreign key from a non-tenant table into tenant table %s (an existence oracle)',
                             k.confrelid::pg_catalog.regclass)
      FROM pg_catalog.pg_constraint k
     WHERE k.contype = 'f' AND k.conparentid = 0
       AND k.confrelid = ANY (($1).checked) AND NOT k.conrelid = ANY (($1).checked)
       AND NOT k.conrelid = ANY (($1).operator)     -- the relay holds no privilege there (DIRECTORY)
    UNION ALL
    -- Counters are per community (§12.13): a serial or identity column numbers every
    -- community's rows from one sequence, so a tenant sees how busy the others are.
    SELECT pg_catalog.format('%s.%I', c.oid::pg_catalog.regclass, a.attname), 'warn',
           'column numbers rows from a sequence shared by every community (use random ids or a per-community counter)'
      FROM pg_catalog.pg_attribute a
      JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
      LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
     WHERE c.oid = ANY (($1).checked) AND NOT c.relispartition AND a.attnum > 0 AND NOT a.attisdropped
       AND (a.attidentity <> '' OR pg_catalog.pg_get_expr(d.adbin, d.adrelid) LIKE 'nextval(%')
    UNION ALL
    -- Relay-written logs: INSERT ... ON CONFLICT DO NOTHING needs only INSERT, so a unique key
    -- answers "does this key exist?" for every row it covers. It must include community_id,
    -- and no column of it may be numbered from a shared sequence (OVERRIDING SYSTEM VALUE
    -- probes other communities' ids, or squats the ids they will get next).
    SELECT pg_catalog.format('%s.%I', i.indrelid::pg_catalog.regclass, ic.relname), 'fail',
           'unique key of a relay-written log does not include community_id (INSERT ... ON CONFLICT tells the relay which keys other communities wrote)'
      FROM pg_catalog.pg_index i
      JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
      LEFT JOIN catt ON catt.rel = i.indrelid
     WHERE i.indrelid = ANY (($1).logs) AND i.indisunique AND NOT ic.relispartition
       AND NOT EXISTS (SELECT 1 FROM pg_catalog.generate_series(0, i.indnkeyatts - 1) j
                        WHERE i.indkey[j] = catt.attnum)
    UNION ALL
    SELECT pg_catalog.format('%s.%I', k.conrelid::pg_catalog.regclass, k.conname), 'fail',
           'exclusion constraint of a relay-written log does not compare community_id with = (INSERT ... ON CONFLICT tells the relay which rows other communities wrote)'
      FROM pg_catalog.pg_constraint k
      LEFT JOIN catt ON catt.rel = k.conrelid
     WHERE k.contype = 'x' AND k.conrelid = ANY (($1).logs) AND k.conparentid = 0
       AND NOT EXISTS (SELECT 1 FROM pg_catalog.generate_subscripts(k.conkey, 1) j
                         JOIN pg_catalog.pg_operator op ON op.oid = k.conexclop[j]
                        WHERE k.conkey[j] = catt.attnum AND op.oprname = '=')
    UNION ALL
    SELECT DISTINCT pg_catalog.format('%s.%I', c.oid::pg_catalog.regclass, a.attname), 'fail',
           'a unique key of a relay-written log uses a column numbered from a sequence shared by every community (use per_community_ids)'
      FROM pg_catalog.pg_index i
      JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
      JOIN pg_catalog.pg_class c ON c.oid = i.indrelid
      JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum = ANY (i.indkey::int2[])
      LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
     WHERE c.oid = ANY (($1).logs) AND i.indisunique AND NOT ic.relispartition AND NOT c.relispartition
       AND (a.attidentity <> '' OR pg_catalog.pg_get_expr(d.adbin, d.adrelid) LIKE 'nextval(%')
    UNION ALL
    -- Operator-only tables may reference tenant tables, but the relay's writes there must not
    -- change operator records (ON DELETE/UPDATE CASCADE, SET NULL, SET DEFAULT); a plain
    -- reference refuses the relay's delete, which tells it the row is referenced (reported).
    SELECT pg_catalog.format('%s.%I', k.conrelid::pg_catalog.regclass, k.conname), 'fail',
           pg_catalog.format('foreign key of an operator-only table into %s changes operator records when the relay deletes or updates there',
                             k.confrelid::pg_catalog.regclass)
      FROM pg_catalog.pg_constraint k
     WHERE k.contype = 'f' AND k.conparentid = 0 AND k.conrelid = ANY (($1).operator)
       AND ((k.confdeltype IN ('c', 'n', 'd') AND buzz.any_role_can(($1).roles, k.confrelid, '{DELETE}'))
         OR (k.confupdtype IN ('c', 'n', 'd') AND buzz.any_role_can(($1).roles, k.confrelid, '{UPDATE}')))
    UNION ALL
    SELECT pg_catalog.format('%s.%I', k.conrelid::pg_catalog.regclass, k.conname), 'warn',
           pg_catalog.format('foreign key of an operator-only table into %s: a refused delete or update there tells the relay the row is referenced',
                             k.confrelid::pg_catalog.regclass)
      FROM pg_catalog.pg_constraint k
     WHERE k.contype = 'f' AND k.conparentid = 0 AND k.conrelid = ANY (($1).operator)
       AND k.confdeltype IN ('a', 'r') AND k.confupdtype IN ('a', 'r')
       AND buzz.any_role_can(($1).roles, k.confrelid, '{DELETE,UPDATE}')
$fn$;

---------------------------------------------------------------------------------------------
-- ACTIVITY (§12.5): backends of the same role see each other's query text. Warn if query
-- text is tracked for the role's sessions (track_activities, taking ALTER ROLE / DATABASE
-- overrides into account) and if the role can read every backend's statistics.
---------------------------------------------------------------------------------------------
CREATE FUNCTION conformance_activity(s conformance_scope)
RETURNS TABLE (object text, status text, detail text)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $fn$
    SELECT 'track_activities', 'warn',
           'same-role backends see each other''s query text in pg_stat_activity; pass credentials and events only as bound parameters'
     WHERE buzz.effective_setting($1, 'track_activities')::boolean
    UNION ALL
    SELECT pg_catalog.format('role %I', ($1).role_name), 'warn',
           pg_catalog.format('role is a member of %I and sees the query text of every backend', r.rolname)
      FROM pg_catalog.pg_roles r
     WHERE r.rolname IN ('pg_read_all_stats', 'pg_monitor') AND r.oid = ANY (($1).roles)
$fn$;

---------------------------------------------------------------------------------------------
-- DIRECTORY (§12.1): the relay reaches the extension only through its functions, and never
-- reads another community's rows in an operator table. No role the relay can act as holds any
-- privilege (by grant, through PUBLIC, or as pg_read_all_data / pg_write_all_data) on a table
-- or sequence of the extension (communities, hosts, signing keys, sessions, ...), nor a read
-- privilege on a declared-global table that carries a community_id column or is the relay's
-- own community registry (tenant tables reference it by community_id); on a relay-written
-- log it may only INSERT (and the log keeps its guard trigger); on an operator-only table it
-- holds nothing. The same holds for what is derived from those tables: no read of a view or
-- materialized view built (through any chain of views) on a table it may not read, and no
-- privilege on a sequence that numbers a log, an operator-only table or the registry (its
-- value counts every community's rows); nor UPDATE (setval) on one of a tenant table.
---------------------------------------------------------------------------------------------
CREATE FUNCTION conformance_directory(s conformance_scope)
RETURNS TABLE (object text, status text, detail text)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $fn$
    WITH RECURSIVE hidden(oid) AS (               -- tables the relay may not read
        SELECT pg_catalog.unnest(($1).communities)
        UNION SELECT pg_catalog.unnest(($1).logs || ($1).operator)
        UNION SELECT c.oid FROM pg_catalog.pg_class c WHERE c.oid = ANY (($1).ext_tables) AND c.relkind IN ('r', 'p')
        UNION SELECT g.oid FROM pg_catalog.unnest(($1).global) AS g(oid) WHERE g.oid = ANY (($1).protected)
    ),
    derived(oid, source) AS (                     -- views and matviews built on them
        SELECT h.oid, h.oid FROM hidden h
        UNION
        SELECT rw.ev_class, dv.source
          FROM derived dv
          JOIN pg_catalog.pg_depend d ON d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.refobjid = dv.oid
                                     AND d.classid = 'pg_catalog.pg_rewrite'::pg_catalog.regclass
          JOIN pg_catalog.pg_rewrite rw ON rw.oid = d.objid AND rw.rulename = '_RETURN' AND rw.ev_class <> dv.oid
    ),
    numbering(seq, rel) AS (                      -- sequences owned by a table, or in its defaults
        SELECT d.objid, d.refobjid
          FROM pg_catalog.pg_depend d
         WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass
           AND d.deptype IN ('a', 'i') AND d.refobjsubid > 0
        UNION
        SELECT d.refobjid, ad.adrelid
          FROM pg_catalog.pg_attrdef ad
          JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_attrdef'::pg_catalog.regclass AND d.objid = ad.oid
                                     AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass
    )
    SELECT DISTINCT c.oid::pg_catalog.regclass::text, 'fail',
           pg_catalog.format('the role can read this view, which is built on %s (a table it may not read)', dv.source::pg_catalog.regclass)
      FROM derived dv JOIN pg_catalog.pg_class c ON c.oid = dv.oid
     WHERE dv.oid <> dv.source AND c.relkind IN ('v', 'm')
       AND buzz.any_role_can(($1).roles, c.oid, '{SELECT}')
    UNION ALL
    -- sequences: only those numbering a tenant table (which inserts need), nothing else (a
    -- sequence counts whatever uses it: a log's rows through a trigger, every community's)
    SELECT sq.oid::pg_catalog.regclass::text, 'fail',
           'role holds a privilege on a sequence that numbers no tenant table (its value counts rows of every community that uses it)'
      FROM pg_catalog.pg_class sq
      JOIN pg_catalog.pg_namespace n ON n.oid = sq.relnamespace
     WHERE sq.relkind = 'S' AND NOT sq.oid = ANY (($1).ext_tables)
       AND n.nspname NOT IN ('pg_catalog', 'information_schema')
       AND NOT EXISTS (SELECT 1 FROM numbering nb WHERE nb.seq = sq.oid AND nb.rel = ANY (($1).checked))
       AND EXISTS (SELECT 1 FROM pg_catalog.unnest(($1).roles) AS ro(oid)
                    WHERE pg_catalog.has_sequence_privilege(ro.oid, sq.oid, 'USAGE, SELECT, UPDATE'))
    UNION ALL
    SELECT DISTINCT sq.oid::pg_catalog.regclass::text, 'fail',
           pg_catalog.format('role can set the value of a sequence numbering tenant table %s (every community''s rows)',
                             n.rel::pg_catalog.regclass)
      FROM numbering n JOIN pg_catalog.pg_class sq ON sq.oid = n.seq AND sq.relkind = 'S'
     WHERE n.rel = ANY (($1).checked) AND NOT sq.oid = ANY (($1).ext_tables)
       AND EXISTS (SELECT 1 FROM pg_catalog.unnest(($1).roles) AS ro(oid)
                    WHERE pg_catalog.has_sequence_privilege(ro.oid, sq.oid, 'UPDATE'))
    UNION ALL
    SELECT c.oid::pg_catalog.regclass::text, 'fail',
           'role holds a privilege on a table of the extension (it may use the extension only through its functions)'
      FROM pg_catalog.pg_class c
     WHERE c.oid = ANY (($1).ext_tables) AND c.relkind IN ('r', 'p')
       AND buzz.any_role_can(($1).roles, c.oid, '{SELECT,INSERT,UPDATE,DELETE,TRUNCATE,REFERENCES,TRIGGER}')
    UNION ALL
    SELECT c.oid::pg_catalog.regclass::text, 'fail',
           'role holds a privilege on a sequence of the extension'
      FROM pg_catalog.pg_class c
     WHERE c.oid = ANY (($1).ext_tables) AND c.relkind = 'S'
       AND EXISTS (SELECT 1 FROM pg_catalog.unnest(($1).roles) AS ro(oid)
                    WHERE pg_catalog.has_sequence_privilege(ro.oid, c.oid, 'USAGE, SELECT, UPDATE'))
    UNION ALL
    SELECT c.oid::pg_catalog.regclass::text, 'fail',
           'declared-global table holds every community''s rows (it carries community_id or a foreign key into a community registry, or tenant tables inherit from it) and the role can read it'
      FROM pg_catalog.pg_class c
     WHERE c.oid = ANY (($1).global) AND NOT c.oid = ANY (($1).ext_tables || ($1).communities)
       AND c.oid = ANY (($1).protected)
       AND buzz.any_role_can(($1).roles, c.oid, '{SELECT}')
    UNION ALL
    -- a relay's own community registry: tenant tables reference it through community_id
    SELECT c.oid::pg_catalog.regclass::text, 'fail',
           'a registry of communities (tenant tables reference it by community_id) and the role can read it (it lists every community)'
      FROM pg_catalog.pg_class c
     WHERE c.oid = ANY (($1).communities)
       AND buzz.any_role_can(($1).roles, c.oid, '{SELECT}')
    UNION ALL
    SELECT c.oid::pg_catalog.regclass::text, 'fail',
           pg_catalog.format('role has %s on a relay-written log (it may only add rows of the community it entered)', pv.priv)
      FROM pg_catalog.pg_class c
      CROSS JOIN (VALUES ('SELECT'), ('UPDATE'), ('DELETE'), ('TRUNCATE'), ('REFERENCES'), ('TRIGGER')) AS pv(priv)
     WHERE c.oid = ANY (($1).logs) AND buzz.any_role_can(($1).roles, c.oid, ARRAY[pv.priv])
    UNION ALL
    SELECT c.oid::pg_catalog.regclass::text, 'fail',
           'relay-written log has no enabled buzz_log_guard trigger (rows of any community could be added)'
      FROM pg_catalog.pg_class c
     WHERE c.oid = ANY (($1).logs) AND NOT c.relispartition
       AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_trigger g JOIN pg_catalog.pg_proc gp ON gp.oid = g.tgfoid
                        WHERE g.tgrelid = c.oid AND g.tgenabled IN ('O', 'A')
                          AND g.tgtype & 1 = 1 AND g.tgtype & 2 = 2 AND g.tgtype & 4 = 4 AND g.tgtype & 16 = 16  -- ROW BEFORE INSERT UPDATE
                          AND g.tgqual IS NULL AND gp.pronamespace = ($1).buzz AND gp.proname = 'log_guard')
    UNION ALL
    SELECT c.oid::pg_catalog.regclass::text, 'fail',
           'role holds a privilege on an operator-only table'
      FROM pg_catalog.pg_class c
     WHERE c.oid = ANY (($1).operator)
       AND buzz.any_role_can(($1).roles, c.oid, '{SELECT,INSERT,UPDATE,DELETE,TRUNCATE,REFERENCES,TRIGGER}')
$fn$;

---------------------------------------------------------------------------------------------
-- GLOBAL-WRITES (§12.12): the relay cannot change the relay's operator-global tables
-- (registered global tables): no INSERT, UPDATE (table or column), DELETE or TRUNCATE, for any
-- role it can act as. (The extension's own tables are covered by DIRECTORY.)
---------------------------------------------------------------------------------------------
CREATE FUNCTION conformance_global_writes(s conformance_scope)
RETURNS TABLE (object text, status text, detail text)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $fn$
    SELECT c.oid::pg_catalog.regclass::text, 'fail', pg_catalog.format('role has %s on a global table', pv.priv)
      FROM pg_catalog.pg_class c
      CROSS JOIN (VALUES ('INSERT'), ('UPDATE'), ('DELETE'), ('TRUNCATE')) AS pv(priv)
     WHERE c.oid = ANY (($1).global) AND NOT c.oid = ANY (($1).ext_tables)
       AND buzz.any_role_can(($1).roles, c.oid, ARRAY[pv.priv])
$fn$;

---------------------------------------------------------------------------------------------
-- NOTHING-SURVIVES (§12.3): the relay cannot keep anything beyond its transaction, as any role
-- it can act as: no TEMP or CREATE on the database, no CREATE on any schema, owns no relation
-- and no large object; can it create large objects at all (warn).
---------------------------------------------------------------------------------------------
CREATE FUNCTION conformance_survives(s conformance_scope)
RETURNS TABLE (object text, status text, detail text)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $fn$
    WITH super AS (
        SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_roles r WHERE r.oid = ANY (($1).roles) AND r.rolsuper) AS any
    )
    SELECT pg_catalog.format('database %I', pg_catalog.current_database()), 'fail',
           'role can create temporary tables (TEMP)'
     WHERE EXISTS (SELECT 1 FROM pg_catalog.unnest(($1).roles) AS ro(oid)
                    WHERE pg_catalog.has_database_privilege(ro.oid, ($1).db, 'TEMP'))
    UNION ALL
    SELECT pg_catalog.format('database %I', pg_catalog.current_database()), 'fail', 'role can create schemas (CREATE)'
     WHERE EXISTS (SELECT 1 FROM pg_catalog.unnest(($1).roles) AS ro(oid)
                    WHERE pg_catalog.has_database_privilege(ro.oid, ($1).db, 'CREATE'))
    UNION ALL
    SELECT pg_catalog.format('schema %I', n.nspname), 'fail', 'role can create objects in this schema'
      FROM pg_catalog.pg_namespace n
     WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
       AND n.nspname !~ '^pg_(toast_)?temp_'    -- temporary schemas: covered by TEMP above
       AND EXISTS (SELECT 1 FROM pg_catalog.unnest(($1).roles) AS ro(oid)
                    WHERE pg_catalog.has_schema_privilege(ro.oid, n.oid, 'CREATE'))
    UNION ALL
    SELECT pg_catalog.format('role %I', ($1).role_name), 'fail',
           'a superuser can act as the owner of every relation and large object'
      FROM super WHERE super.any
    UNION ALL
    SELECT c.oid::pg_catalog.regclass::text, 'fail',
           CASE WHEN c.relowner = ($1).role THEN 'role owns this relation'
                ELSE pg_catalog.format('role is a member of %I, which owns this relation', o.rolname) END
      FROM pg_catalog.pg_class c
      JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
      JOIN pg_catalog.pg_roles o ON o.oid = c.relowner
     WHERE NOT (SELECT super.any FROM super) AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')
       AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
       AND c.relowner = ANY (($1).roles)
    UNION ALL
    -- any other object: a schema's owner may drop what is in it and grant itself CREATE again;
    -- a function's or type's owner may replace what tenant tables rely on
    SELECT DISTINCT pg_catalog.pg_describe_object(d.classid, d.objid, 0), 'fail',
           CASE WHEN d.refobjid = ($1).role THEN 'role owns this object'
                ELSE pg_catalog.format('role is a member of %I, which owns this object', o.rolname) END
      FROM pg_catalog.pg_shdepend d
      JOIN pg_catalog.pg_roles o ON o.oid = d.refobjid
     WHERE NOT (SELECT super.any FROM super) AND d.deptype = 'o'
       AND d.dbid = ($1).db AND d.refclassid = 'pg_catalog.pg_authid'::pg_catalog.regclass
       AND d.classid NOT IN ('pg_catalog.pg_class'::pg_catalog.regclass, 'pg_catalog.pg_largeobject'::pg_catalog.regclass)
       AND d.refobjid = ANY (($1).roles)
    UNION ALL
    SELECT pg_catalog.format('role %I', ($1).role_name), 'fail', 'role owns, or can act as the owner of, large objects'
     WHERE NOT (SELECT super.any FROM super)
       AND EXISTS (SELECT 1 FROM pg_catalog.pg_largeobject_metadata lo WHERE lo.lomowner = ANY (($1).roles))
    UNION ALL
    SELECT p.oid::pg_catalog.regprocedure::text, 'warn',
           'role can create large objects, which outlive the transaction (revoke EXECUTE from PUBLIC)'
      FROM pg_catalog.pg_proc p
     WHERE p.oid IN ('pg_catalog.lo_creat(integer)'::pg_catalog.regprocedure,
                     'pg_catalog.lo_create(oid)'::pg_catalog.regprocedure,
                     'pg_catalog.lo_from_bytea(oid, bytea)'::pg_catalog.regprocedure,
                     'pg_catalog.lo_import(text)'::pg_catalog.regprocedure,
                     'pg_catalog.lo_import(text, oid)'::pg_catalog.regprocedure)
       AND NOT (SELECT super.any FROM super)
       AND EXISTS (SELECT 1 FROM pg_catalog.unnest(($1).roles) AS ro(oid)
                    WHERE pg_catalog.has_function_privilege(ro.oid, p.oid, 'EXECUTE'))
$fn$;

---------------------------------------------------------------------------------------------
-- P-RESOLVE (§7, M11): a channel's community never changes: buzz.channels has an enabled
-- BEFORE UPDATE row trigger (no column list, no WHEN) executing buzz.forbid_retenant.
---------------------------------------------------------------------------------------------
CREATE FUNCTION conformance_resolve(s conformance_scope)
RETURNS TABLE (object text, status text, detail text)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $fn$
    SELECT 'buzz.channels', 'fail',
           'no enabled BEFORE UPDATE row trigger runs buzz.forbid_retenant (channel community immutability)'
     WHERE NOT EXISTS (
         SELECT 1 FROM pg_catalog.pg_trigger g
           JOIN pg_catalog.pg_proc gp ON gp.oid = g.tgfoid
          WHERE g.tgrelid = pg_catalog.to_regclass('buzz.channels') AND g.tgenabled IN ('O', 'A')
            AND g.tgtype & 1 = 1 AND g.tgtype & 2 = 2 AND g.tgtype & 16 = 16   -- ROW, BEFORE, UPDATE
            AND g.tgqual IS NULL AND pg_catalog.cardinality(g.tgattr::int2[]) = 0
            AND gp.pronamespace = ($1).buzz AND gp.proname = 'forbid_retenant')
$fn$;

---------------------------------------------------------------------------------------------
-- SANITIZER (§6, §12.12): every ERROR reaches the extension's emit_log_hook, i.e.
-- log_min_messages (as the role's sessions see it) lets errors into the server log (at most
-- `error`; `log` ranks above `error` there); no role the relay can act as may SET (or ALTER
-- SYSTEM) a setting that hides errors from the hook or loads code into its sessions
-- (log_min_messages, session_preload_libraries, shared_preload_libraries, auto_explain.*:
-- auto_explain can report plans with row counts to the client); and the library is preloaded
-- (shared_preload_libraries, or session_preload_libraries for the role), so its hooks are in
-- place from a session's first statement: without it the sanitizer and the refusals of LOCK and
-- EXPLAIN ANALYZE are missing until a buzz function is called. (Both library settings are
-- hidden from operators without pg_read_all_settings: the check then fails, since it cannot
-- tell; the relay cannot undo a per-role session_preload_libraries.) `enter` also pins
-- log_min_messages to `error` for a community transaction.
---------------------------------------------------------------------------------------------
CREATE FUNCTION conformance_sanitizer(s conformance_scope)
RETURNS TABLE (object text, status text, detail text)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $fn$
    WITH lmm AS (SELECT pg_catalog.lower(pg_catalog.btrim(buzz.effective_setting($1, 'log_min_messages'), ' "')) AS v),
    -- Sessions that can run as the role: its own, and those of every login role that is a
    -- member of it (a pooler's login role that SETs ROLE relay loads what its own settings
    -- say, not the relay's). Superusers are reported elsewhere.
    sessions AS (
        SELECT r.oid, r.rolname, r.oid = ($1).role AS self
          FROM pg_catalog.pg_roles r
         WHERE r.oid = ($1).role
            OR (r.rolcanlogin AND NOT r.rolsuper AND pg_catalog.pg_has_role(r.oid, ($1).role, 'MEMBER'))
            -- on PostgreSQL 15 a CREATEROLE role can grant itself any non-superuser role, and
            -- so can a login role that can SET ROLE to one (any membership allows it)
            OR (r.rolcanlogin AND NOT r.rolsuper
                AND EXISTS (SELECT 1 FROM pg_catalog.pg_roles cr
                             WHERE cr.rolcreaterole AND pg_catalog.pg_has_role(r.oid, cr.oid, 'MEMBER')))
    ),
    libs AS (
        SELECT ses.rolname, ses.self,
               (SELECT st.setting FROM pg_catalog.pg_settings st WHERE st.name = 'shared_preload_libraries') AS spl,
               buzz.role_setting(ses.oid, ($1).db, 'session_preload_libraries') AS sessl,
               EXISTS (SELECT 1 FROM pg_catalog.pg_settings st WHERE st.name = 'session_preload_libraries')
               AND (SELECT st.setting FROM pg_catalog.pg_settings st WHERE st.name = 'shared_preload_libraries') IS NOT NULL AS readable
          FROM sessions ses
    ),
    guarded(name) AS (
        SELECT pg_catalog.unnest('{log_min_messages,session_preload_libraries,shared_preload_libraries}'::text[])
        UNION
        SELECT pa.parname FROM pg_catalog.pg_parameter_acl pa WHERE pa.parname LIKE 'auto\_explain.%'
        UNION
        SELECT st.name FROM pg_catalog.pg_settings st WHERE st.name LIKE 'auto\_explain.%'
    )
    SELECT 'log_min_messages', 'fail',
           pg_catalog.format('log_min_messages is %s: errors do not reach the sanitizer''s log hook', lmm.v)
      FROM lmm WHERE lmm.v IN ('log', 'fatal', 'panic')
    UNION ALL
    SELECT DISTINCT g.name, 'fail',
           pg_catalog.format('role has %s privilege on this setting (it hides errors from the sanitizer or loads code that reports row counts)', pv.priv)
      FROM guarded g
      CROSS JOIN (VALUES ('SET'), ('ALTER SYSTEM')) AS pv(priv)
      CROSS JOIN pg_catalog.unnest(($1).roles) AS ro(oid)
     WHERE pg_catalog.has_parameter_privilege(ro.oid, g.name, pv.priv)
    UNION ALL
    SELECT DISTINCT 'shared_preload_libraries', 'fail',
           CASE WHEN NOT libs.readable
                THEN 'cannot read shared_preload_libraries and session_preload_libraries to check the library is preloaded (needs pg_read_all_settings)'
                WHEN libs.self
                THEN 'buzz_tenancy is in neither shared_preload_libraries nor session_preload_libraries: its hooks (sanitizer, LOCK and EXPLAIN ANALYZE refusals) are missing until a buzz function is called'
                ELSE pg_catalog.format('login role %I can act as the role (a member, or CREATEROLE can make it one), and its sessions do not preload buzz_tenancy (set session_preload_libraries for it too)', libs.rolname) END
      FROM libs
     WHERE NOT EXISTS (
         SELECT 1 FROM pg_catalog.regexp_split_to_table(coalesce(libs.spl, '') || ',' || coalesce(libs.sessl, ''), ',') AS lib(l)
          WHERE pg_catalog.regexp_replace(pg_catalog.regexp_replace(pg_catalog.btrim(lib.l, ' "'), '^.*/', ''),
                                          '\.so$', '') = 'buzz_tenancy')
$fn$;

---------------------------------------------------------------------------------------------
-- UNREGISTERED: every table the relay can reach is classified: each ordinary or partitioned
-- table (not temporary) in a reachable schema is tenant or global, and no table anywhere
-- has a community_id column without being registered. A partition is reported only when
-- its root is not (the root is what gets registered). Registry rows naming dropped tables
-- and an unreadable or missing registry are warnings.
---------------------------------------------------------------------------------------------
CREATE FUNCTION conformance_unregistered(s conformance_scope)
RETURNS TABLE (object text, status text, detail text)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $fn$
    WITH stray AS (
        SELECT c.oid,
               EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a
                        WHERE a.attrelid = c.oid AND a.attname = 'community_id'
                          AND a.attnum > 0 AND NOT a.attisdropped) AS has_cid
          FROM pg_catalog.pg_class c
          JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
         WHERE c.relkind IN ('r', 'p') AND c.relpersistence <> 't'
           AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
           AND NOT c.oid = ANY (($1).tenant || ($1).global || ($1).logs || ($1).operator)
    ),
    stray_listed AS (
        SELECT st.oid, st.has_cid FROM stray st JOIN pg_catalog.pg_class c ON c.oid = st.oid
         WHERE st.has_cid OR c.relnamespace = ANY (($1).schemas)
    )
    SELECT sl.oid::pg_catalog.regclass::text, 'fail',
           CASE WHEN sl.has_cid THEN 'has community_id but is not registered'
                ELSE 'table is neither registered as tenant nor declared global' END
      FROM stray_listed sl
     WHERE coalesce(pg_catalog.pg_partition_root(sl.oid::pg_catalog.regclass)::oid, sl.oid) = sl.oid
        OR pg_catalog.pg_partition_root(sl.oid::pg_catalog.regclass)::oid NOT IN (SELECT x.oid FROM stray_listed x)
    UNION ALL
    SELECT pg_catalog.format('buzz.tenancy_tables row %s', g.oid), 'warn',
           'registry row names a table that no longer exists'
      FROM pg_catalog.unnest(($1).reg_gone) AS g(oid)
    UNION ALL
    SELECT 'buzz.tenancy_tables', 'warn',
           'cannot read the registry: relay tables are reported as unregistered'
     WHERE ($1).registry = 'unreadable'
    UNION ALL
    SELECT 'buzz.tenancy_tables', 'warn',
           'the registry does not exist: relay tables are reported as unregistered'
     WHERE ($1).registry = 'missing'
$fn$;

-- The report: every check's findings, or its one 'pass' row.
CREATE FUNCTION conformance(role text, kind text DEFAULT 'relay')
RETURNS TABLE (check_id text, object text, status text, detail text)
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $fn$
    WITH sc AS MATERIALIZED (SELECT buzz.conformance_scope($1, $2) AS s),
    findings AS (
        SELECT 'A-RLS-1' AS check_id, f.* FROM sc, buzz.conformance_rls(sc.s) f
        UNION ALL SELECT 'A-RLS-2', f.* FROM sc, buzz.conformance_roles(sc.s) f
        UNION ALL SELECT 'A-RLS-3', f.* FROM sc, buzz.conformance_settings(sc.s) f
        UNION ALL SELECT 'A-RLS-4', f.* FROM sc, buzz.conformance_definers(sc.s) f
        UNION ALL SELECT 'A-RLS-5', f.* FROM sc, buzz.conformance_keys(sc.s) f
        UNION ALL SELECT 'ACTIVITY', f.* FROM sc, buzz.conformance_activity(sc.s) f
        UNION ALL SELECT 'DIRECTORY', f.* FROM sc, buzz.conformance_directory(sc.s) f
        UNION ALL SELECT 'GLOBAL-WRITES', f.* FROM sc, buzz.conformance_global_writes(sc.s) f
        UNION ALL SELECT 'NOTHING-SURVIVES', f.* FROM sc, buzz.conformance_survives(sc.s) f
        UNION ALL SELECT 'P-RESOLVE', f.* FROM sc, buzz.conformance_resolve(sc.s) f
        UNION ALL SELECT 'SANITIZER', f.* FROM sc, buzz.conformance_sanitizer(sc.s) f
        UNION ALL SELECT 'UNREGISTERED', f.* FROM sc, buzz.conformance_unregistered(sc.s) f
    ),
    checks(check_id) AS (
        VALUES ('A-RLS-1'), ('A-RLS-2'), ('A-RLS-3'), ('A-RLS-4'), ('A-RLS-5'), ('ACTIVITY'), ('DIRECTORY'),
               ('GLOBAL-WRITES'), ('NOTHING-SURVIVES'), ('P-RESOLVE'), ('SANITIZER'), ('UNREGISTERED')
    )
    SELECT r.check_id, r.object, r.status, r.detail FROM (
        SELECT DISTINCT f.check_id, f.object, f.status, f.detail FROM findings f
        UNION ALL
        SELECT c.check_id, '', 'pass', 'no findings' FROM checks c
         WHERE NOT EXISTS (SELECT 1 FROM findings f WHERE f.check_id = c.check_id)
    ) r
    ORDER BY r.check_id COLLATE "C", r.status <> 'fail', r.object COLLATE "C", r.detail COLLATE "C"
$fn$;

-- The deployment gate: raises if buzz.conformance(role, kind) reports any failure. The DETAIL
-- lists each failing finding as "check_id object: detail", one per line, in report order.
CREATE FUNCTION assert_conformance(role text, kind text DEFAULT 'relay')
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    failures text;
BEGIN
    SELECT pg_catalog.string_agg(pg_catalog.format('%s %s: %s', r.check_id, r.object, r.detail), E'\n' ORDER BY r.ord)
      INTO failures
      FROM buzz.conformance($1, $2) WITH ORDINALITY AS r(check_id, object, status, detail, ord)
     WHERE r.status = 'fail';
    IF failures IS NOT NULL THEN
        RAISE EXCEPTION USING ERRCODE = '55000', MESSAGE = 'error: deployment does not conform', DETAIL = failures;
    END IF;
END
$fn$;
