WITH t AS (
    SELECT c.oid, c.relkind, c.relispartition, c.relpersistence, c.relnamespace, n.nspname,
           format('%I.%I', n.nspname, c.relname) AS name
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = $1)
SELECT jsonb_build_object(
    'name', t.name,
    'literal', quote_literal(t.name),
    'relkind', t.relkind,
    'is_partition', t.relispartition,
    'temp', t.relpersistence = 't',
    'system', t.nspname IN ('pg_catalog', 'information_schema', 'pg_toast'),
    'extension', EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                            AND d.objid = t.oid AND d.deptype = 'e'),
    'mode', (SELECT r.mode FROM buzz.tenancy_tables r WHERE r.tbl = t.oid),
    -- what the caller may do (the generator runs as the caller): own every relation of the
    -- tree, create in the table's schema (indexes and keys need it)
    'owned', NOT EXISTS (SELECT 1 FROM (SELECT t.oid AS relid UNION ALL SELECT p.relid FROM pg_partition_tree(t.oid) p) tr
                          JOIN pg_class pc ON pc.oid = tr.relid
                         WHERE NOT pg_has_role(pc.relowner, 'USAGE')),
    'schema', quote_ident(t.nspname),
    'can_create', has_schema_privilege(t.relnamespace, 'CREATE'),
    -- columns numbered from a sequence (identity, or a nextval default), community_id aside
    'numbered', COALESCE((SELECT jsonb_agg(jsonb_build_object('name', quote_ident(a.attname), 'identity', a.attidentity <> '',
                                           'in_key', EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = t.oid AND i.indisunique
                                                                AND a.attnum = ANY ((i.indkey::int2[])[0:i.indnkeyatts - 1])))
                                           ORDER BY a.attnum)
                            FROM pg_attribute a
                            LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
                           WHERE a.attrelid = t.oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attname <> 'community_id'
                             AND (a.attidentity <> '' OR pg_get_expr(d.adbin, d.adrelid) LIKE 'nextval(%')), '[]'),
    'counter_trigger', EXISTS (SELECT 1 FROM pg_trigger g WHERE g.tgrelid = t.oid AND g.tgname = 'buzz_tenant_ids'),
    'column', (SELECT jsonb_build_object('type', format_type(a.atttypid, a.atttypmod),
                                         'not_null', a.attnotnull,
                                         'default', pg_get_expr(d.adbin, d.adrelid))
                 FROM pg_attribute a
                 LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
                WHERE a.attrelid = t.oid AND a.attname = 'community_id' AND NOT a.attisdropped),
    'has_rows', false, 'null_rows', false,
    'community_fk', EXISTS (
        SELECT 1 FROM pg_constraint k JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = k.conkey[1]
         WHERE k.conrelid = t.oid AND k.contype = 'f' AND k.confrelid = 'buzz.communities'::regclass
           AND cardinality(k.conkey) = 1 AND a.attname = 'community_id'),
    'guard', EXISTS (SELECT 1 FROM pg_trigger g WHERE g.tgrelid = t.oid AND g.tgname = 'buzz_tenant_guard'),
    'log_guard', EXISTS (SELECT 1 FROM pg_trigger g WHERE g.tgrelid = t.oid AND g.tgname = 'buzz_log_guard'),
    -- inheritance (not partitioning): a scan of a parent returns its children's rows under the
    -- parent's policies, so a tenant table may only inherit from tenant tables
    'untenanted_parent', (SELECT format('%I.%I', pn.nspname, pc.relname)
                            FROM pg_inherits i JOIN pg_class pc ON pc.oid = i.inhparent
                            JOIN pg_namespace pn ON pn.oid = pc.relnamespace
                           WHERE i.inhrelid = t.oid AND pc.relkind <> 'p'
                             AND NOT EXISTS (SELECT 1 FROM buzz.tenancy_tables r WHERE r.tbl = pc.oid AND r.mode = 'tenant')
                           ORDER BY 1 LIMIT 1),
    'tenant_child', (SELECT format('%I.%I', cn.nspname, cc.relname)
                       FROM pg_inherits i JOIN pg_class cc ON cc.oid = i.inhrelid
                       JOIN pg_namespace cn ON cn.oid = cc.relnamespace
                      WHERE i.inhparent = t.oid AND NOT cc.relispartition
                        AND (EXISTS (SELECT 1 FROM buzz.tenancy_tables r WHERE r.tbl = cc.oid AND r.mode = 'tenant')
                             OR EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = cc.oid AND a.attname = 'community_id'
                                          AND NOT a.attisdropped AND a.attnum > 0))
                      ORDER BY 1 LIMIT 1),
    'rels', COALESCE((
        SELECT jsonb_agg(jsonb_build_object(
                   'name', format('%I.%I', pn.nspname, pc.relname),
                   'rls', pc.relrowsecurity, 'force', pc.relforcerowsecurity,
                   'policies', COALESCE((SELECT jsonb_agg(p.polname::text ORDER BY p.polname)
                                           FROM pg_policy p WHERE p.polrelid = pc.oid), '[]'),
                   'default', (SELECT pg_get_expr(d.adbin, d.adrelid) FROM pg_attribute a
                                 JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
                                WHERE a.attrelid = pc.oid AND a.attname = 'community_id'))
                 ORDER BY tr.level, pc.relname)
          FROM (SELECT t.oid AS relid, 0 AS level
                UNION ALL SELECT p.relid, p.level FROM pg_partition_tree(t.oid) p WHERE p.relid <> t.oid) tr
          JOIN pg_class pc ON pc.oid = tr.relid JOIN pg_namespace pn ON pn.oid = pc.relnamespace), '[]'))
  FROM t
