-- buzz_tenancy conformance: the deployment gate (DESIGN §7 A-RLS-1..5, §12.3/12.4/12.5/12.12).
--
-- buzz.conformance(role) inspects the catalogs and reports, for the relay role `role`, whether
-- this database is configured fail-closed. One row per finding:
--
--   check_id  which rule (A-RLS-1 .. UNREGISTERED, see the blocks below)
--   object    the operator-facing name of what was found (public.t, public.t.some_index,
--             role relay, database app, buzz.max_limit ...)
--   status    'fail' (the deployment does not conform), 'warn' (review it) or 'pass'
--   detail    a short fixed sentence saying what is wrong
--
-- A check with no fail/warn finding reports exactly one row (check_id, '', 'pass', 'no findings').
-- Rows come ordered by check_id, then fail before warn before pass, then object (all in "C"
-- collation, so the report is byte-for-byte stable). buzz.assert_conformance(role) is the gate:
-- it raises 55000 "error: deployment does not conform" if any row fails, listing the failures.
--
-- Scope used throughout:
--   tenant tables  = tables registered with mode 'tenant' in buzz.tenancy_tables, every partition
--                    of them, and the extension's own tables of schema buzz that have a
--                    community_id column (except the operator-global buzz.community_hosts)
--   global tables  = tables registered with mode 'global', their partitions, and the extension's
--                    other tables (buzz.communities, buzz.community_hosts, buzz.tenancy_tables);
--                    a table that is both (a global partition of a tenant table) counts as tenant
--   checked tables = tenant tables plus every other non-global table with a community_id
--                    column (a relay table not adopted yet): A-RLS-1, -2, -4 and -5 inspect
--                    these, so the report before adoption already names their keys and grants
--   reachable schemas = schemas the role has USAGE on, except pg_catalog, information_schema,
--                    pg_toast and temporary schemas
-- The functions only read catalogs: no dynamic SQL, nothing built from catalog names is executed.
-- They are SECURITY INVOKER; a non-superuser operator gets a 'warn' where it cannot read
-- something (pg_file_settings, the registry) instead of an error.

CREATE FUNCTION conformance(role text)
RETURNS TABLE (check_id text, object text, status text, detail text)
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $fn$
#variable_conflict use_column
DECLARE
    -- The exact text pg_get_expr() gives for the fence on PG 15 (buzz is not on this
    -- function's search_path, so the call is always schema-qualified).
    fence CONSTANT text := '(community_id = buzz.current_community())';
    v_name      text := $1;
    v_role      oid;
    v_super     boolean;
    v_bypass    boolean;
    v_createrole boolean;
    v_repl      boolean;
    v_db        oid;
    v_ext       oid;
    v_buzz      oid;
    v_registry  text;                  -- 'ok' | 'missing' | 'unreadable'
    v_reg_tenant oid[] := '{}';
    v_reg_global oid[] := '{}';
    v_reg_gone  oid[] := '{}';         -- registry rows whose table no longer exists
    v_ext_tables oid[] := '{}';
    v_ext_tenant oid[] := '{}';
    v_audited   oid[] := '{}';         -- the extension's own functions
    v_tenant    oid[] := '{}';
    v_global    oid[] := '{}';
    v_reach     oid[] := '{}';
    v_rls1      oid[] := '{}';
    v_files     text[] := '{}';        -- pg_file_settings entries setting buzz.* (objects)
    v_files_ok  boolean;
    v_track     text;
    v_lmm       text;
    v_spl       text;
    v_sessl     text;
    v_libs_ok   boolean;               -- could read the *_preload_libraries settings
    cid         text;
    n           bigint;
BEGIN
    -- The role under test.
    SELECT r.oid, r.rolsuper, r.rolbypassrls, r.rolcreaterole, r.rolreplication
      INTO v_role, v_super, v_bypass, v_createrole, v_repl
      FROM pg_catalog.pg_roles r WHERE r.rolname = v_name;
    IF v_role IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'invalid: unknown role';
    END IF;

    -- Load the library (if it is not preloaded) so pg_settings shows the real buzz.*
    -- settings and their contexts, not placeholders.
    IF pg_catalog.to_regprocedure('buzz.current_community()') IS NOT NULL THEN
        PERFORM buzz.current_community();
    END IF;

    SELECT d.oid INTO v_db FROM pg_catalog.pg_database d WHERE d.datname = pg_catalog.current_database();
    SELECT x.oid INTO v_ext FROM pg_catalog.pg_extension x WHERE x.extname = 'buzz_tenancy';
    SELECT s.oid INTO v_buzz FROM pg_catalog.pg_namespace s WHERE s.nspname = 'buzz';

    ---------------------------------------------------------------------------------------------
    -- Scope: the extension's tables and functions, the registry, tenant and global tables.
    ---------------------------------------------------------------------------------------------
    SELECT coalesce(pg_catalog.array_agg(c.oid), '{}'),
           coalesce(pg_catalog.array_agg(c.oid) FILTER (
               WHERE c.relnamespace = v_buzz AND c.relname <> 'community_hosts'
                 AND EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a
                              WHERE a.attrelid = c.oid AND a.attname = 'community_id'
                                AND a.attnum > 0 AND NOT a.attisdropped)), '{}')
      INTO v_ext_tables, v_ext_tenant
      FROM pg_catalog.pg_depend d
      JOIN pg_catalog.pg_class c ON c.oid = d.objid
     WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass
       AND d.refclassid = 'pg_catalog.pg_extension'::pg_catalog.regclass
       AND d.refobjid = v_ext AND d.deptype = 'e' AND c.relkind IN ('r', 'p');

    SELECT coalesce(pg_catalog.array_agg(d.objid), '{}') INTO v_audited
      FROM pg_catalog.pg_depend d
     WHERE d.classid = 'pg_catalog.pg_proc'::pg_catalog.regclass
       AND d.refclassid = 'pg_catalog.pg_extension'::pg_catalog.regclass
       AND d.refobjid = v_ext AND d.deptype = 'e';

    IF pg_catalog.to_regclass('buzz.tenancy_tables') IS NULL THEN
        v_registry := 'missing';
    ELSIF NOT pg_catalog.has_table_privilege(pg_catalog.to_regclass('buzz.tenancy_tables'), 'SELECT') THEN
        v_registry := 'unreadable';
    ELSE
        v_registry := 'ok';
        SELECT coalesce(pg_catalog.array_agg(r.tbl::oid) FILTER (WHERE c.oid IS NOT NULL AND r.mode = 'tenant'), '{}'),
               coalesce(pg_catalog.array_agg(r.tbl::oid) FILTER (WHERE c.oid IS NOT NULL AND r.mode = 'global'), '{}'),
               coalesce(pg_catalog.array_agg(r.tbl::oid) FILTER (WHERE c.oid IS NULL), '{}')
          INTO v_reg_tenant, v_reg_global, v_reg_gone
          FROM buzz.tenancy_tables r
          LEFT JOIN pg_catalog.pg_class c ON c.oid = r.tbl::oid;
    END IF;

    -- Tenant tables: registered tenant + extension tenant tables, and all their partitions
    -- (pg_partition_tree returns nothing for a table that is not partitioned: keep the roots).
    SELECT coalesce(pg_catalog.array_agg(DISTINCT t.oid), '{}') INTO v_tenant
      FROM (SELECT root.oid FROM pg_catalog.unnest(v_reg_tenant || v_ext_tenant) AS root(oid)
            UNION
            SELECT pt.relid::oid FROM pg_catalog.unnest(v_reg_tenant || v_ext_tenant) AS root(oid),
                   LATERAL pg_catalog.pg_partition_tree(root.oid::pg_catalog.regclass) pt) t;

    -- Global tables: registered global + the extension's non-tenant tables, their partitions.
    SELECT coalesce(pg_catalog.array_agg(DISTINCT g.oid), '{}') INTO v_global
      FROM (SELECT root.oid FROM pg_catalog.unnest(v_reg_global || v_ext_tables) AS root(oid)
            UNION
            SELECT pt.relid::oid FROM pg_catalog.unnest(v_reg_global || v_ext_tables) AS root(oid),
                   LATERAL pg_catalog.pg_partition_tree(root.oid::pg_catalog.regclass) pt) g
     WHERE NOT g.oid = ANY (v_tenant);

    SELECT coalesce(pg_catalog.array_agg(s.oid), '{}') INTO v_reach
      FROM pg_catalog.pg_namespace s
     WHERE s.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
       AND s.nspname !~ '^pg_(toast_)?temp_'
       AND pg_catalog.has_schema_privilege(v_role, s.oid, 'USAGE');

    -- A-RLS-1 scope: tenant tables, and every other table with a community_id column that is
    -- not global (wherever it lives, reachable or not).
    SELECT coalesce(pg_catalog.array_agg(DISTINCT t.oid), '{}') INTO v_rls1
      FROM (SELECT pg_catalog.unnest(v_tenant) AS oid
            UNION
            SELECT c.oid FROM pg_catalog.pg_class c
              JOIN pg_catalog.pg_namespace s ON s.oid = c.relnamespace
              JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attname = 'community_id'
                                             AND a.attnum > 0 AND NOT a.attisdropped
             WHERE c.relkind IN ('r', 'p') AND c.relpersistence <> 't'
               AND s.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
               AND NOT c.oid = ANY (v_global)) t;

    ---------------------------------------------------------------------------------------------
    -- A-RLS-1: every tenant table (and every non-global table with community_id) is ENABLE +
    -- FORCE ROW LEVEL SECURITY, has a RESTRICTIVE fence on community_id for all commands,
    -- has community_id, and has an enabled trigger keeping community_id immutable. PERMISSIVE
    -- policies other than the plain fence expression are reported for review.
    -- The fence is recognized by what it does, not by its name. The guard is an enabled
    -- (origin or always: a REPLICA trigger does not fire in normal sessions) BEFORE UPDATE
    -- row trigger without column list or WHEN clause running buzz.tenant_guard or
    -- buzz.forbid_retenant.
    ---------------------------------------------------------------------------------------------
    cid := 'A-RLS-1';
    RETURN QUERY
    SELECT cid, f.object, f.status, f.detail FROM (
        SELECT c.oid::pg_catalog.regclass::text AS object, 'fail' AS status,
               'row level security is not enabled' AS detail
          FROM pg_catalog.pg_class c WHERE c.oid = ANY (v_rls1) AND NOT c.relrowsecurity
        UNION ALL
        SELECT c.oid::pg_catalog.regclass::text, 'fail',
               'row level security is not forced (the owner bypasses it)'
          FROM pg_catalog.pg_class c WHERE c.oid = ANY (v_rls1) AND NOT c.relforcerowsecurity
        UNION ALL
        SELECT c.oid::pg_catalog.regclass::text, 'fail',
               'no RESTRICTIVE policy for all commands fences it to buzz.current_community()'
          FROM pg_catalog.pg_class c
         WHERE c.oid = ANY (v_rls1)
           AND NOT EXISTS (
               SELECT 1 FROM pg_catalog.pg_policy p
                WHERE p.polrelid = c.oid AND NOT p.polpermissive AND p.polcmd = '*'
                  AND EXISTS (SELECT 1 FROM pg_catalog.unnest(p.polroles) pr(oid)
                               WHERE pr.oid = 0 OR pg_catalog.pg_has_role(v_role, pr.oid, 'MEMBER'))
                  AND pg_catalog.pg_get_expr(p.polqual, p.polrelid) = fence
                  AND pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid) = fence)
        UNION ALL
        SELECT c.oid::pg_catalog.regclass::text, 'fail', 'tenant table has no community_id column'
          FROM pg_catalog.pg_class c
         WHERE c.oid = ANY (v_rls1)
           AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a
                            WHERE a.attrelid = c.oid AND a.attname = 'community_id'
                              AND a.attnum > 0 AND NOT a.attisdropped)
        UNION ALL
        SELECT c.oid::pg_catalog.regclass::text, 'fail',
               'no enabled BEFORE UPDATE row trigger keeps community_id immutable'
          FROM pg_catalog.pg_class c
         WHERE c.oid = ANY (v_rls1)
           AND NOT EXISTS (
               SELECT 1 FROM pg_catalog.pg_trigger g
                 JOIN pg_catalog.pg_proc gp ON gp.oid = g.tgfoid
                WHERE g.tgrelid = c.oid AND g.tgenabled IN ('O', 'A')
                  AND g.tgtype & 1 = 1 AND g.tgtype & 2 = 2 AND g.tgtype & 16 = 16   -- ROW, BEFORE, UPDATE
                  AND g.tgqual IS NULL AND pg_catalog.cardinality(g.tgattr::int2[]) = 0
                  AND gp.pronamespace = v_buzz AND gp.proname IN ('tenant_guard', 'forbid_retenant'))
        UNION ALL
        SELECT pg_catalog.format('%s.%I', c.oid::pg_catalog.regclass, p.polname), 'warn',
               'permissive policy may widen access inside the community'
          FROM pg_catalog.pg_class c
          JOIN pg_catalog.pg_policy p ON p.polrelid = c.oid
         WHERE c.oid = ANY (v_rls1) AND p.polpermissive
           AND NOT (coalesce(pg_catalog.pg_get_expr(p.polqual, p.polrelid), fence) = fence
                    AND coalesce(pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid), fence) = fence)
    ) f
    ORDER BY f.status <> 'fail', f.object COLLATE "C", f.detail COLLATE "C";
    GET DIAGNOSTICS n = ROW_COUNT;
    IF n = 0 THEN RETURN QUERY SELECT cid, '', 'pass', 'no findings'; END IF;

    ---------------------------------------------------------------------------------------------
    -- A-RLS-2: the relay role cannot bypass RLS, directly or through membership (§12.4):
    -- no SUPERUSER / BYPASSRLS / CREATEROLE / REPLICATION, no (transitive) membership in the
    -- server-file and program roles, buzz_owner, buzz_admin or any tenant table's owner, owns no
    -- tenant table and does not own the current database.
    ---------------------------------------------------------------------------------------------
    cid := 'A-RLS-2';
    RETURN QUERY
    SELECT cid, pg_catalog.format('role %I', v_name), f.status, f.detail FROM (
        SELECT 'fail' AS status, 'role is SUPERUSER' AS detail WHERE v_super
        UNION ALL SELECT 'fail', 'role has BYPASSRLS' WHERE v_bypass
        UNION ALL SELECT 'fail', 'role has CREATEROLE' WHERE v_createrole
        UNION ALL SELECT 'fail', 'role has REPLICATION' WHERE v_repl
        UNION ALL
        SELECT 'fail', pg_catalog.format('role is a member of %I', r.rolname)
          FROM pg_catalog.pg_roles r
         WHERE r.rolname IN ('pg_read_server_files', 'pg_write_server_files', 'pg_execute_server_program',
                             'buzz_owner', 'buzz_admin')
           AND pg_catalog.pg_has_role(v_role, r.oid, 'MEMBER')
        UNION ALL
        SELECT 'fail', pg_catalog.format('role owns tenant table %s', c.oid::pg_catalog.regclass)
          FROM pg_catalog.pg_class c WHERE c.oid = ANY (v_rls1) AND c.relowner = v_role
        UNION ALL
        SELECT 'fail', pg_catalog.format('role is a member of %I, which owns tenant tables', r.rolname)
          FROM pg_catalog.pg_roles r
         WHERE r.oid <> v_role
           AND r.rolname NOT IN ('buzz_owner', 'buzz_admin')       -- already reported above
           AND r.oid IN (SELECT c.relowner FROM pg_catalog.pg_class c WHERE c.oid = ANY (v_rls1))
           AND pg_catalog.pg_has_role(v_role, r.oid, 'MEMBER')
        UNION ALL
        SELECT 'fail', CASE WHEN d.datdba = v_role THEN 'role owns the current database'
                            ELSE 'role is a member of the owner of the current database' END
          FROM pg_catalog.pg_database d
         WHERE d.oid = v_db AND pg_catalog.pg_has_role(v_role, d.datdba, 'MEMBER')
    ) f
    ORDER BY f.status <> 'fail', f.detail COLLATE "C";
    GET DIAGNOSTICS n = ROW_COUNT;
    IF n = 0 THEN RETURN QUERY SELECT cid, '', 'pass', 'no findings'; END IF;

    ---------------------------------------------------------------------------------------------
    -- A-RLS-3: buzz.* settings cannot be changed by the relay (§4, §12.6): no per-role or
    -- per-database override, no setting in the configuration files / ALTER SYSTEM, no SET or
    -- ALTER SYSTEM privilege granted on them, and every buzz.* setting is superuser-only
    -- (contexts superuser, superuser-backend, sighup, postmaster, internal).
    ---------------------------------------------------------------------------------------------
    cid := 'A-RLS-3';
    v_files_ok := pg_catalog.has_table_privilege('pg_catalog.pg_file_settings', 'SELECT')
              AND pg_catalog.has_function_privilege('pg_catalog.pg_show_all_file_settings()', 'EXECUTE');
    IF v_files_ok THEN
        SELECT coalesce(pg_catalog.array_agg(pg_catalog.format('%s (%s:%s)', fs.name, fs.sourcefile, fs.sourceline)
                                             ORDER BY fs.seqno), '{}')
          INTO v_files
          FROM pg_catalog.pg_file_settings fs
         WHERE pg_catalog.lower(fs.name) LIKE 'buzz.%';
    END IF;
    RETURN QUERY
    SELECT cid, f.object, f.status, f.detail FROM (
        SELECT CASE WHEN s.setrole <> 0 AND s.setdatabase <> 0
                        THEN pg_catalog.format('role %I in database %I', r.rolname, d.datname)
                    WHEN s.setrole <> 0 THEN pg_catalog.format('role %I', r.rolname)
                    WHEN s.setdatabase <> 0 THEN pg_catalog.format('database %I', d.datname)
                    ELSE 'all roles' END AS object,
               'fail' AS status,
               pg_catalog.format('a role or database setting overrides %s', pg_catalog.split_part(cfg.c, '=', 1)) AS detail
          FROM pg_catalog.pg_db_role_setting s
          CROSS JOIN LATERAL pg_catalog.unnest(s.setconfig) AS cfg(c)
          LEFT JOIN pg_catalog.pg_roles r ON r.oid = s.setrole
          LEFT JOIN pg_catalog.pg_database d ON d.oid = s.setdatabase
         WHERE pg_catalog.lower(pg_catalog.split_part(cfg.c, '=', 1)) LIKE 'buzz.%'
        UNION ALL
        -- Superuser-only, but worth a look: a long auth window defeats replay protection.
        SELECT fo.o, 'warn', 'a configuration file or ALTER SYSTEM sets a buzz setting; check its value'
          FROM pg_catalog.unnest(v_files) AS fo(o)
        UNION ALL
        SELECT 'pg_file_settings', 'warn', 'cannot read pg_file_settings; configuration files were not checked'
         WHERE NOT v_files_ok
        UNION ALL
        SELECT pn.name, 'fail', pg_catalog.format('role has %s privilege on this setting', pv.priv)
          FROM (SELECT st.name FROM pg_catalog.pg_settings st WHERE pg_catalog.lower(st.name) LIKE 'buzz.%'
                UNION
                SELECT pa.parname FROM pg_catalog.pg_parameter_acl pa WHERE pg_catalog.lower(pa.parname) LIKE 'buzz.%') pn
          CROSS JOIN (VALUES ('SET'), ('ALTER SYSTEM')) AS pv(priv)
         WHERE pg_catalog.has_parameter_privilege(v_role, pn.name, pv.priv)
        UNION ALL
        SELECT st.name, 'fail', pg_catalog.format('setting is not superuser-only (context %s)', st.context)
          FROM pg_catalog.pg_settings st
         WHERE pg_catalog.lower(st.name) LIKE 'buzz.%'
           AND st.context NOT IN ('superuser', 'superuser-backend', 'sighup', 'postmaster', 'internal')
    ) f
    ORDER BY f.status <> 'fail', f.object COLLATE "C", f.detail COLLATE "C";
    GET DIAGNOSTICS n = ROW_COUNT;
    IF n = 0 THEN RETURN QUERY SELECT cid, '', 'pass', 'no findings'; END IF;

    ---------------------------------------------------------------------------------------------
    -- A-RLS-4: nothing runs with someone else's rights over tenant data, and no privilege
    -- ignores RLS (§9, §12.12):
    --  * non-audited SECURITY DEFINER functions (audited = members of the extension) that the
    --    role can EXECUTE, or that run from a trigger on a table it can write, or are referenced
    --    by a policy, default, check constraint, rule, trigger WHEN clause or index expression of
    --    a table it can access;
    --  * LEAKPROOF functions outside pg_catalog;
    --  * views over tenant tables (directly or through other views) without security_invoker,
    --    and materialized views over tenant tables;
    --  * foreign tables in reachable schemas (warn: what they read is not known here);
    --  * TRUNCATE, REFERENCES (table or column) and TRIGGER on tenant tables.
    ---------------------------------------------------------------------------------------------
    cid := 'A-RLS-4';
    RETURN QUERY
    WITH RECURSIVE over_tenant(oid) AS (           -- views and matviews reading tenant tables
        SELECT rw.ev_class
          FROM pg_catalog.pg_depend d
          JOIN pg_catalog.pg_rewrite rw ON rw.oid = d.objid
         WHERE d.classid = 'pg_catalog.pg_rewrite'::pg_catalog.regclass
           AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass
           AND d.refobjid = ANY (v_rls1) AND rw.ev_class <> d.refobjid
        UNION
        SELECT rw.ev_class
          FROM over_tenant o
          JOIN pg_catalog.pg_depend d ON d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass
                                     AND d.refobjid = o.oid
                                     AND d.classid = 'pg_catalog.pg_rewrite'::pg_catalog.regclass
          JOIN pg_catalog.pg_rewrite rw ON rw.oid = d.objid
         WHERE rw.ev_class <> o.oid
    ),
    secdef AS (                                    -- non-audited SECURITY DEFINER functions
        SELECT p.oid FROM pg_catalog.pg_proc p
          JOIN pg_catalog.pg_namespace s ON s.oid = p.pronamespace
         WHERE p.prosecdef AND NOT p.oid = ANY (v_audited)
           AND s.nspname NOT IN ('pg_catalog', 'information_schema')
    ),
    accessible AS (                                -- relations the role holds any privilege on
        SELECT c.oid,
               pg_catalog.has_table_privilege(v_role, c.oid, 'INSERT, UPDATE, DELETE, TRUNCATE') AS writable
          FROM pg_catalog.pg_class c
         WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f')
           AND (pg_catalog.has_table_privilege(v_role, c.oid, 'SELECT, INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER')
                OR pg_catalog.has_any_column_privilege(v_role, c.oid, 'SELECT, INSERT, UPDATE, REFERENCES'))
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
    )
    SELECT cid, f.object, f.status, f.detail FROM (
        SELECT p.oid::pg_catalog.regprocedure::text AS object, 'fail' AS status,
               'role can execute this non-audited SECURITY DEFINER function' AS detail
          FROM secdef sd JOIN pg_catalog.pg_proc p ON p.oid = sd.oid
         WHERE pg_catalog.has_function_privilege(v_role, p.oid, 'EXECUTE')
        UNION ALL
        SELECT DISTINCT g.tgfoid::pg_catalog.regprocedure::text, 'fail',
               pg_catalog.format('non-audited SECURITY DEFINER function runs from trigger %I on %s',
                                 g.tgname, g.tgrelid::pg_catalog.regclass)
          FROM pg_catalog.pg_trigger g
          JOIN accessible a ON a.oid = g.tgrelid AND a.writable
         WHERE g.tgenabled <> 'D' AND g.tgfoid IN (SELECT sd.oid FROM secdef sd)
        UNION ALL
        SELECT DISTINCT u.fn::pg_catalog.regprocedure::text, 'fail',
               pg_catalog.format('non-audited SECURITY DEFINER function is called by %s of %s',
                                 u.via, u.rel::pg_catalog.regclass)
          FROM uses u JOIN accessible a ON a.oid = u.rel
        UNION ALL
        SELECT p.oid::pg_catalog.regprocedure::text, 'fail',
               'LEAKPROOF function outside pg_catalog (it sees rows before row level security filters them)'
          FROM pg_catalog.pg_proc p
          JOIN pg_catalog.pg_namespace s ON s.oid = p.pronamespace
         WHERE p.proleakproof AND s.nspname <> 'pg_catalog'
        UNION ALL
        SELECT c.oid::pg_catalog.regclass::text, 'fail',
               'view over tenant data runs with its owner''s rights (security_invoker is not set)'
          FROM pg_catalog.pg_class c
         WHERE c.oid IN (SELECT o.oid FROM over_tenant o) AND c.relkind = 'v'
           AND NOT EXISTS (SELECT 1 FROM pg_catalog.unnest(c.reloptions) opt(o)
                            WHERE pg_catalog.lower(pg_catalog.split_part(opt.o, '=', 1)) = 'security_invoker'
                              AND pg_catalog.substr(opt.o, pg_catalog.strpos(opt.o, '=') + 1)::boolean)
        UNION ALL
        SELECT c.oid::pg_catalog.regclass::text, 'fail',
               'materialized view copies tenant data out of row level security'
          FROM pg_catalog.pg_class c
         WHERE c.oid IN (SELECT o.oid FROM over_tenant o) AND c.relkind = 'm'
        UNION ALL
        SELECT c.oid::pg_catalog.regclass::text, 'warn',
               'foreign table in a reachable schema: check it does not expose tenant data'
          FROM pg_catalog.pg_class c
         WHERE c.relkind = 'f' AND c.relnamespace = ANY (v_reach)
        UNION ALL
        SELECT c.oid::pg_catalog.regclass::text, 'fail',
               pg_catalog.format('role has %s on a tenant table (it ignores row level security)', pv.priv)
          FROM pg_catalog.pg_class c
          CROSS JOIN (VALUES ('TRUNCATE'), ('REFERENCES'), ('TRIGGER')) AS pv(priv)
         WHERE c.oid = ANY (v_rls1)
           AND CASE pv.priv
                   WHEN 'REFERENCES' THEN pg_catalog.has_any_column_privilege(v_role, c.oid, 'REFERENCES')
                   ELSE pg_catalog.has_table_privilege(v_role, c.oid, pv.priv) END
    ) f
    ORDER BY f.status <> 'fail', f.object COLLATE "C", f.detail COLLATE "C";
    GET DIAGNOSTICS n = ROW_COUNT;
    IF n = 0 THEN RETURN QUERY SELECT cid, '', 'pass', 'no findings'; END IF;

    ---------------------------------------------------------------------------------------------
    -- A-RLS-5: uniqueness and foreign-key checks ignore RLS, so on tenant tables every key
    -- includes community_id (§5, §12.12): PRIMARY KEY / UNIQUE / unique indexes (partial and
    -- expression ones too) among their key columns, exclusion constraints with `=` on it,
    -- tenant -> tenant FKs at the same position on both sides. Tenant -> non-tenant FKs without
    -- community_id are reported for review; any FK from a non-tenant table into a tenant table
    -- fails. Index partitions and cloned constraints of partitions are reported once, at the
    -- parent. Serial and identity columns of tenant tables are reported for review (§12.13).
    ---------------------------------------------------------------------------------------------
    cid := 'A-RLS-5';
    RETURN QUERY
    WITH catt AS (                                 -- community_id's attnum, per table
        SELECT a.attrelid AS rel, a.attnum
          FROM pg_catalog.pg_attribute a
         WHERE a.attname = 'community_id' AND a.attnum > 0 AND NOT a.attisdropped
    )
    SELECT cid, f.object, f.status, f.detail FROM (
        SELECT pg_catalog.format('%s.%I', i.indrelid::pg_catalog.regclass, ic.relname) AS object, 'fail' AS status,
               CASE k.contype WHEN 'p' THEN 'primary key' WHEN 'u' THEN 'unique constraint' ELSE 'unique index' END
               || ' does not include community_id (uniqueness ignores row level security)' AS detail
          FROM pg_catalog.pg_index i
          JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
          LEFT JOIN pg_catalog.pg_constraint k ON k.conindid = i.indexrelid AND k.conrelid = i.indrelid
                                              AND k.contype IN ('p', 'u')
          LEFT JOIN catt ON catt.rel = i.indrelid
         WHERE i.indrelid = ANY (v_rls1) AND i.indisunique AND NOT ic.relispartition
           AND NOT EXISTS (SELECT 1 FROM pg_catalog.generate_series(0, i.indnkeyatts - 1) j
                            WHERE i.indkey[j] = catt.attnum)
        UNION ALL
        SELECT pg_catalog.format('%s.%I', k.conrelid::pg_catalog.regclass, k.conname), 'fail',
               'exclusion constraint does not compare community_id with ='
          FROM pg_catalog.pg_constraint k
          LEFT JOIN catt ON catt.rel = k.conrelid
         WHERE k.contype = 'x' AND k.conrelid = ANY (v_rls1) AND k.conparentid = 0
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
           AND k.conrelid = ANY (v_rls1) AND k.confrelid = ANY (v_rls1)
           AND NOT EXISTS (SELECT 1 FROM pg_catalog.generate_subscripts(k.conkey, 1) j
                            WHERE k.conkey[j] = src.attnum AND k.confkey[j] = dst.attnum)
        UNION ALL
        SELECT pg_catalog.format('%s.%I', k.conrelid::pg_catalog.regclass, k.conname), 'warn',
               pg_catalog.format('foreign key to non-tenant table %s does not include community_id',
                                 k.confrelid::pg_catalog.regclass)
          FROM pg_catalog.pg_constraint k
          LEFT JOIN catt src ON src.rel = k.conrelid
         WHERE k.contype = 'f' AND k.conparentid = 0
           AND k.conrelid = ANY (v_rls1) AND NOT k.confrelid = ANY (v_rls1)
           AND NOT coalesce(src.attnum = ANY (k.conkey), false)
        UNION ALL
        SELECT pg_catalog.format('%s.%I', k.conrelid::pg_catalog.regclass, k.conname), 'fail',
               pg_catalog.format('foreign key from a non-tenant table into tenant table %s (an existence oracle)',
                                 k.confrelid::pg_catalog.regclass)
          FROM pg_catalog.pg_constraint k
         WHERE k.contype = 'f' AND k.conparentid = 0
           AND k.confrelid = ANY (v_rls1) AND NOT k.conrelid = ANY (v_rls1)
        UNION ALL
        -- Counters are per community (§12.13): a serial or identity column numbers every
        -- community's rows from one sequence, so a tenant sees how busy the others are.
        SELECT pg_catalog.format('%s.%I', c.oid::pg_catalog.regclass, a.attname), 'warn',
               'column numbers rows from a sequence shared by every community (use random ids or a per-community counter)'
          FROM pg_catalog.pg_attribute a
          JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
          LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
         WHERE c.oid = ANY (v_rls1) AND NOT c.relispartition AND a.attnum > 0 AND NOT a.attisdropped
           AND (a.attidentity <> '' OR pg_catalog.pg_get_expr(d.adbin, d.adrelid) LIKE 'nextval(%')
    ) f
    ORDER BY f.status <> 'fail', f.object COLLATE "C", f.detail COLLATE "C";
    GET DIAGNOSTICS n = ROW_COUNT;
    IF n = 0 THEN RETURN QUERY SELECT cid, '', 'pass', 'no findings'; END IF;

    ---------------------------------------------------------------------------------------------
    -- ACTIVITY (§12.5): backends of the same role see each other's query text. Warn if query
    -- text is tracked for the role's sessions (track_activities, taking ALTER ROLE / DATABASE
    -- overrides into account) and if the role can read every backend's statistics.
    ---------------------------------------------------------------------------------------------
    cid := 'ACTIVITY';
    -- Effective value in the role's sessions here: role+database, role, database overrides,
    -- then the server value.
    SELECT coalesce(
        (SELECT pg_catalog.substr(cfg.c, pg_catalog.strpos(cfg.c, '=') + 1)
           FROM pg_catalog.pg_db_role_setting s CROSS JOIN LATERAL pg_catalog.unnest(s.setconfig) AS cfg(c)
          WHERE pg_catalog.lower(pg_catalog.split_part(cfg.c, '=', 1)) = 'track_activities'
            AND s.setrole IN (v_role, 0) AND s.setdatabase IN (v_db, 0)
          ORDER BY s.setrole <> 0 DESC, s.setdatabase <> 0 DESC LIMIT 1),
        (SELECT st.reset_val FROM pg_catalog.pg_settings st WHERE st.name = 'track_activities'))
      INTO v_track;
    RETURN QUERY
    SELECT cid, f.object, f.status, f.detail FROM (
        SELECT 'track_activities' AS object, 'warn' AS status,
               'same-role backends see each other''s query text in pg_stat_activity; pass credentials and events only as bound parameters' AS detail
         WHERE v_track::boolean
        UNION ALL
        SELECT pg_catalog.format('role %I', v_name), 'warn',
               pg_catalog.format('role is a member of %I and sees the query text of every backend', r.rolname)
          FROM pg_catalog.pg_roles r
         WHERE r.rolname IN ('pg_read_all_stats', 'pg_monitor') AND pg_catalog.pg_has_role(v_role, r.oid, 'MEMBER')
    ) f
    ORDER BY f.status <> 'fail', f.object COLLATE "C", f.detail COLLATE "C";
    GET DIAGNOSTICS n = ROW_COUNT;
    IF n = 0 THEN RETURN QUERY SELECT cid, '', 'pass', 'no findings'; END IF;

    ---------------------------------------------------------------------------------------------
    -- GLOBAL-WRITES (§12.12): the relay cannot change operator-global tables (registered global
    -- tables and the extension's communities / community_hosts / tenancy_tables): no INSERT,
    -- UPDATE (table or column), DELETE or TRUNCATE.
    ---------------------------------------------------------------------------------------------
    cid := 'GLOBAL-WRITES';
    RETURN QUERY
    SELECT cid, f.object, f.status, f.detail FROM (
        SELECT c.oid::pg_catalog.regclass::text AS object, 'fail' AS status,
               pg_catalog.format('role has %s on a global table', pv.priv) AS detail
          FROM pg_catalog.pg_class c
          CROSS JOIN (VALUES ('INSERT'), ('UPDATE'), ('DELETE'), ('TRUNCATE')) AS pv(priv)
         WHERE c.oid = ANY (v_global)
           AND CASE WHEN pv.priv IN ('INSERT', 'UPDATE')
                    THEN pg_catalog.has_any_column_privilege(v_role, c.oid, pv.priv)
                    ELSE pg_catalog.has_table_privilege(v_role, c.oid, pv.priv) END
    ) f
    ORDER BY f.status <> 'fail', f.object COLLATE "C", f.detail COLLATE "C";
    GET DIAGNOSTICS n = ROW_COUNT;
    IF n = 0 THEN RETURN QUERY SELECT cid, '', 'pass', 'no findings'; END IF;

    ---------------------------------------------------------------------------------------------
    -- NOTHING-SURVIVES (§12.3): the role cannot keep anything beyond its transaction: no TEMP
    -- or CREATE on the database, no CREATE on any schema, owns (or can act as owner of) no
    -- relation and no large object; can it create large objects at all (warn).
    ---------------------------------------------------------------------------------------------
    cid := 'NOTHING-SURVIVES';
    RETURN QUERY
    SELECT cid, f.object, f.status, f.detail FROM (
        SELECT pg_catalog.format('database %I', pg_catalog.current_database()) AS object, 'fail' AS status,
               'role can create temporary tables (TEMP)' AS detail
         WHERE pg_catalog.has_database_privilege(v_role, v_db, 'TEMP')
        UNION ALL
        SELECT pg_catalog.format('database %I', pg_catalog.current_database()), 'fail',
               'role can create schemas (CREATE)'
         WHERE pg_catalog.has_database_privilege(v_role, v_db, 'CREATE')
        UNION ALL
        SELECT pg_catalog.format('schema %I', s.nspname), 'fail', 'role can create objects in this schema'
          FROM pg_catalog.pg_namespace s
         WHERE s.nspname NOT IN ('pg_catalog', 'information_schema')
           AND s.nspname !~ '^pg_(toast_)?temp_'    -- temporary schemas: covered by TEMP above
           AND pg_catalog.has_schema_privilege(v_role, s.oid, 'CREATE')
        UNION ALL
        SELECT pg_catalog.format('role %I', v_name), 'fail',
               'a superuser can act as the owner of every relation and large object'
         WHERE v_super
        UNION ALL
        SELECT c.oid::pg_catalog.regclass::text, 'fail',
               CASE WHEN c.relowner = v_role THEN 'role owns this relation'
                    ELSE pg_catalog.format('role is a member of %I, which owns this relation', o.rolname) END
          FROM pg_catalog.pg_class c
          JOIN pg_catalog.pg_namespace s ON s.oid = c.relnamespace
          JOIN pg_catalog.pg_roles o ON o.oid = c.relowner
         WHERE NOT v_super AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')
           AND s.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
           AND pg_catalog.pg_has_role(v_role, c.relowner, 'MEMBER')
        UNION ALL
        SELECT pg_catalog.format('role %I', v_name), 'fail',
               'role owns, or can act as the owner of, large objects'
         WHERE NOT v_super
           AND EXISTS (SELECT 1 FROM pg_catalog.pg_largeobject_metadata lo
                        WHERE pg_catalog.pg_has_role(v_role, lo.lomowner, 'MEMBER'))
        UNION ALL
        SELECT p.oid::pg_catalog.regprocedure::text, 'warn',
               'role can create large objects, which outlive the transaction (revoke EXECUTE from PUBLIC)'
          FROM pg_catalog.pg_proc p
         WHERE p.oid IN ('pg_catalog.lo_creat(integer)'::pg_catalog.regprocedure,
                         'pg_catalog.lo_create(oid)'::pg_catalog.regprocedure,
                         'pg_catalog.lo_from_bytea(oid, bytea)'::pg_catalog.regprocedure,
                         'pg_catalog.lo_import(text)'::pg_catalog.regprocedure,
                         'pg_catalog.lo_import(text, oid)'::pg_catalog.regprocedure)
           AND NOT v_super
           AND pg_catalog.has_function_privilege(v_role, p.oid, 'EXECUTE')
    ) f
    ORDER BY f.status <> 'fail', f.object COLLATE "C", f.detail COLLATE "C";
    GET DIAGNOSTICS n = ROW_COUNT;
    IF n = 0 THEN RETURN QUERY SELECT cid, '', 'pass', 'no findings'; END IF;

    ---------------------------------------------------------------------------------------------
    -- P-RESOLVE (§7, M11): a channel's community never changes: buzz.channels has an enabled
    -- BEFORE UPDATE row trigger (no column list, no WHEN) executing buzz.forbid_retenant.
    ---------------------------------------------------------------------------------------------
    cid := 'P-RESOLVE';
    RETURN QUERY
    SELECT cid, 'buzz.channels', 'fail',
           'no enabled BEFORE UPDATE row trigger runs buzz.forbid_retenant (channel community immutability)'
     WHERE NOT EXISTS (
         SELECT 1 FROM pg_catalog.pg_trigger g
           JOIN pg_catalog.pg_proc gp ON gp.oid = g.tgfoid
          WHERE g.tgrelid = pg_catalog.to_regclass('buzz.channels') AND g.tgenabled IN ('O', 'A')
            AND g.tgtype & 1 = 1 AND g.tgtype & 2 = 2 AND g.tgtype & 16 = 16   -- ROW, BEFORE, UPDATE
            AND g.tgqual IS NULL AND pg_catalog.cardinality(g.tgattr::int2[]) = 0
            AND gp.pronamespace = v_buzz AND gp.proname = 'forbid_retenant');
    GET DIAGNOSTICS n = ROW_COUNT;
    IF n = 0 THEN RETURN QUERY SELECT cid, '', 'pass', 'no findings'; END IF;

    ---------------------------------------------------------------------------------------------
    -- SANITIZER (§6, §12.12): every ERROR reaches the extension's emit_log_hook, i.e.
    -- log_min_messages (as the role's sessions see it) is at most `error`; and the library is
    -- preloaded (shared_preload_libraries, or session_preload_libraries for the role), so it
    -- sanitizes errors raised before any buzz function is called. (Both library settings are
    -- hidden from operators without pg_read_all_settings: then a warn says so.)
    ---------------------------------------------------------------------------------------------
    cid := 'SANITIZER';
    SELECT coalesce(
        (SELECT pg_catalog.substr(cfg.c, pg_catalog.strpos(cfg.c, '=') + 1)
           FROM pg_catalog.pg_db_role_setting s CROSS JOIN LATERAL pg_catalog.unnest(s.setconfig) AS cfg(c)
          WHERE pg_catalog.lower(pg_catalog.split_part(cfg.c, '=', 1)) = 'log_min_messages'
            AND s.setrole IN (v_role, 0) AND s.setdatabase IN (v_db, 0)
          ORDER BY s.setrole <> 0 DESC, s.setdatabase <> 0 DESC LIMIT 1),
        (SELECT st.reset_val FROM pg_catalog.pg_settings st WHERE st.name = 'log_min_messages'))
      INTO v_lmm;
    SELECT coalesce(
        (SELECT pg_catalog.substr(cfg.c, pg_catalog.strpos(cfg.c, '=') + 1)
           FROM pg_catalog.pg_db_role_setting s CROSS JOIN LATERAL pg_catalog.unnest(s.setconfig) AS cfg(c)
          WHERE pg_catalog.lower(pg_catalog.split_part(cfg.c, '=', 1)) = 'session_preload_libraries'
            AND s.setrole IN (v_role, 0) AND s.setdatabase IN (v_db, 0)
          ORDER BY s.setrole <> 0 DESC, s.setdatabase <> 0 DESC LIMIT 1),
        (SELECT st.reset_val FROM pg_catalog.pg_settings st WHERE st.name = 'session_preload_libraries'))
      INTO v_sessl;
    SELECT st.setting INTO v_spl FROM pg_catalog.pg_settings st WHERE st.name = 'shared_preload_libraries';
    v_libs_ok := v_spl IS NOT NULL
                 AND EXISTS (SELECT 1 FROM pg_catalog.pg_settings st WHERE st.name = 'session_preload_libraries');
    RETURN QUERY
    SELECT cid, f.object, f.status, f.detail FROM (
        SELECT 'log_min_messages' AS object, 'fail' AS status,
               pg_catalog.format('log_min_messages is %s: errors do not reach the sanitizer''s log hook', v_lmm) AS detail
         WHERE pg_catalog.lower(pg_catalog.btrim(v_lmm, ' "')) IN ('log', 'fatal', 'panic')
        UNION ALL
        SELECT 'shared_preload_libraries', 'warn',
               CASE WHEN v_libs_ok
                    THEN 'buzz_tenancy is in neither shared_preload_libraries nor session_preload_libraries'
                    ELSE 'cannot read shared_preload_libraries and session_preload_libraries (needs pg_read_all_settings)' END
         WHERE NOT EXISTS (
             SELECT 1 FROM pg_catalog.regexp_split_to_table(coalesce(v_spl, '') || ',' || coalesce(v_sessl, ''), ',') AS lib(l)
              WHERE pg_catalog.regexp_replace(pg_catalog.regexp_replace(pg_catalog.btrim(lib.l, ' "'), '^.*/', ''),
                                              '\.so$', '') = 'buzz_tenancy')
    ) f
    ORDER BY f.status <> 'fail', f.object COLLATE "C", f.detail COLLATE "C";
    GET DIAGNOSTICS n = ROW_COUNT;
    IF n = 0 THEN RETURN QUERY SELECT cid, '', 'pass', 'no findings'; END IF;

    ---------------------------------------------------------------------------------------------
    -- UNREGISTERED: every table the role can reach is classified: each ordinary or partitioned
    -- table (not temporary) in a reachable schema is tenant or global, and no table anywhere
    -- has a community_id column without being registered. A partition is reported only when
    -- its root is not (the root is what gets registered). Registry rows naming dropped tables
    -- and an unreadable or missing registry are warnings.
    ---------------------------------------------------------------------------------------------
    cid := 'UNREGISTERED';
    RETURN QUERY
    WITH stray AS (
        SELECT c.oid,
               EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a
                        WHERE a.attrelid = c.oid AND a.attname = 'community_id'
                          AND a.attnum > 0 AND NOT a.attisdropped) AS has_cid
          FROM pg_catalog.pg_class c
          JOIN pg_catalog.pg_namespace s ON s.oid = c.relnamespace
         WHERE c.relkind IN ('r', 'p') AND c.relpersistence <> 't'
           AND s.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
           AND NOT c.oid = ANY (v_tenant) AND NOT c.oid = ANY (v_global)
    ),
    stray_listed AS (
        SELECT st.oid, st.has_cid FROM stray st JOIN pg_catalog.pg_class c ON c.oid = st.oid
         WHERE st.has_cid OR c.relnamespace = ANY (v_reach)
    )
    SELECT cid, f.object, f.status, f.detail FROM (
        SELECT sl.oid::pg_catalog.regclass::text AS object, 'fail' AS status,
               CASE WHEN sl.has_cid THEN 'has community_id but is not registered'
                    ELSE 'table is neither registered as tenant nor declared global' END AS detail
          FROM stray_listed sl
         WHERE coalesce(pg_catalog.pg_partition_root(sl.oid::pg_catalog.regclass)::oid, sl.oid) = sl.oid
            OR pg_catalog.pg_partition_root(sl.oid::pg_catalog.regclass)::oid NOT IN (SELECT x.oid FROM stray_listed x)
        UNION ALL
        SELECT pg_catalog.format('buzz.tenancy_tables row %s', g.oid), 'warn',
               'registry row names a table that no longer exists'
          FROM pg_catalog.unnest(v_reg_gone) AS g(oid)
        UNION ALL
        SELECT 'buzz.tenancy_tables', 'warn',
               'cannot read the registry: relay tables are reported as unregistered'
         WHERE v_registry = 'unreadable'
        UNION ALL
        SELECT 'buzz.tenancy_tables', 'warn',
               'the registry does not exist: relay tables are reported as unregistered'
         WHERE v_registry = 'missing'
    ) f
    ORDER BY f.status <> 'fail', f.object COLLATE "C", f.detail COLLATE "C";
    GET DIAGNOSTICS n = ROW_COUNT;
    IF n = 0 THEN RETURN QUERY SELECT cid, '', 'pass', 'no findings'; END IF;
END
$fn$;

-- The deployment gate: raises if buzz.conformance(role) reports any failure. The DETAIL lists
-- each failing finding as "check_id object: detail", one per line, in report order.
CREATE FUNCTION assert_conformance(role text)
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    failures text;
BEGIN
    SELECT pg_catalog.string_agg(pg_catalog.format('%s %s: %s', r.check_id, r.object, r.detail), E'\n' ORDER BY r.ord)
      INTO failures
      FROM buzz.conformance($1) WITH ORDINALITY AS r(check_id, object, status, detail, ord)
     WHERE r.status = 'fail';
    IF failures IS NOT NULL THEN
        RAISE EXCEPTION USING ERRCODE = '55000', MESSAGE = 'error: deployment does not conform', DETAIL = failures;
    END IF;
END
$fn$;
