WITH cid AS (SELECT attnum FROM pg_attribute WHERE attrelid = $1 AND attname = 'community_id' AND NOT attisdropped),
fk AS (
    SELECT k.*,
           (SELECT attnum FROM pg_attribute WHERE attrelid = k.confrelid AND attname = 'community_id'
               AND NOT attisdropped) AS to_cid,
           (SELECT attnum FROM pg_attribute WHERE attrelid = k.conrelid AND attname = 'community_id'
               AND NOT attisdropped) AS from_cid
      FROM pg_constraint k
     WHERE k.contype = 'f' AND k.conparentid = 0 AND (k.conrelid = $1 OR k.confrelid = $1)
       AND k.confrelid <> 'buzz.communities'::regclass)
SELECT jsonb_build_object(
  'oid', $1::int8,
  'keys', COALESCE((
     SELECT jsonb_agg(jsonb_build_object(
              'index_oid', i.indexrelid::int8,
              'index', format('%I.%I', n.nspname, ic.relname),
              'index_name', quote_ident(ic.relname),
              'constraint', quote_ident(con.conname), 'contype', con.contype,
              'condef', pg_get_constraintdef(con.oid), 'indexdef', pg_get_indexdef(i.indexrelid))
            ORDER BY ic.relname)
       FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid JOIN pg_namespace n ON n.oid = ic.relnamespace
       LEFT JOIN pg_constraint con ON con.conindid = i.indexrelid AND con.conrelid = i.indrelid
                                  AND con.contype IN ('p', 'u', 'x')
      WHERE i.indrelid = $1 AND (i.indisunique OR con.contype = 'x')
        AND NOT COALESCE((SELECT attnum FROM cid) = ANY ((i.indkey::int2[])[0:i.indnkeyatts - 1]), false)), '[]'),
  'fks', COALESCE((
     SELECT jsonb_agg(jsonb_build_object(
              'name', quote_ident(k.conname),
              'from', (SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c
                         JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = k.conrelid),
              'from_oid', k.conrelid::int8,
              'to', (SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c
                       JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = k.confrelid),
              'to_oid', k.confrelid::int8,
              'index_oid', k.conindid::int8,
              'cols', (SELECT jsonb_agg(quote_ident(a.attname) ORDER BY u.o) FROM unnest(k.conkey) WITH ORDINALITY u(n, o)
                         JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = u.n),
              'refcols', (SELECT jsonb_agg(quote_ident(a.attname) ORDER BY u.o) FROM unnest(k.confkey) WITH ORDINALITY u(n, o)
                            JOIN pg_attribute a ON a.attrelid = k.confrelid AND a.attnum = u.n),
              'delsetcols', (SELECT jsonb_agg(quote_ident(a.attname) ORDER BY u.o)
                               FROM unnest(k.confdelsetcols) WITH ORDINALITY u(n, o)
                               JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = u.n),
              'has_cid', k.from_cid IS NOT NULL AND k.from_cid = ANY (k.conkey),
              'from_mode', (SELECT r.mode FROM buzz.tenancy_tables r WHERE r.tbl = k.conrelid),
              'from_has_cid', k.from_cid IS NOT NULL,
              -- the extension's own tenant tables count as tenant (community_hosts is global)
              'to_mode', COALESCE((SELECT r.mode FROM buzz.tenancy_tables r WHERE r.tbl = k.confrelid),
                                  CASE WHEN k.to_cid IS NOT NULL AND k.confrelid <> 'buzz.community_hosts'::regclass
                                        AND EXISTS (SELECT 1 FROM pg_depend d JOIN pg_extension x ON x.oid = d.refobjid
                                                     WHERE d.classid = 'pg_class'::regclass AND d.objid = k.confrelid
                                                       AND d.deptype = 'e' AND x.extname = 'buzz_tenancy')
                                       THEN 'tenant' END),
              -- the referenced table already has a unique key on exactly (community_id, refcols)
              'target_ok', k.to_cid IS NOT NULL AND EXISTS (
                  SELECT 1 FROM pg_index ri
                   WHERE ri.indrelid = k.confrelid AND ri.indisunique AND ri.indpred IS NULL
                     AND ri.indexprs IS NULL AND ri.indnkeyatts = cardinality(k.confkey) + 1
                     AND (SELECT array_agg(x ORDER BY x) FROM unnest((ri.indkey::int2[])[0:ri.indnkeyatts - 1]) x)
                       = (SELECT array_agg(x ORDER BY x) FROM unnest(k.confkey || k.to_cid) x)),
              'upd', k.confupdtype, 'del', k.confdeltype, 'matchtype', k.confmatchtype,
              'deferrable', k.condeferrable, 'deferred', k.condeferred)
            ORDER BY k.conname)
       FROM fk k), '[]'))
