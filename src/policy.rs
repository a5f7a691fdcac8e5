//! Tenancy for the relay's own tables (DESIGN §5, §7 A-RLS-1/5, §12.2, §12.11):
//! `enable_tenancy` / `tenancy_plan` / `disable_tenancy` / `declare_global`.
//!
//! A plan is computed from the catalogs as a list of DDL statements — only the pieces that are
//! missing, so running it twice does nothing the second time — and `enable_tenancy` runs
//! exactly the text `tenancy_plan` shows. The functions are SECURITY INVOKER: the DDL runs as
//! the operator, who must own the table. Anything that cannot be done without weakening a
//! fence (a non-tenant table referencing a key that must change, an exclusion constraint, an
//! `ON UPDATE SET NULL` that would null `community_id`, rows without a community) is refused
//! before any statement runs, with a catalog message and the object in the DETAIL.

use std::cell::Cell;

use pgrx::prelude::*;
use pgrx::{pg_sys, PgRelation};
use serde::Deserialize;

use crate::errors::{raise, raise_detail, Error, OrRaise};

/// The fence every generated policy (and the extension's own) compares with.
const FENCE: &str = "(community_id = buzz.current_community())";
/// Writes need an authenticated actor whose credential allows writing (an API token's scopes
/// are visible here, DESIGN §12.7).
const ACTOR: &str = "(buzz.current_actor() IS NOT NULL AND 'write' = ANY (buzz.current_scopes()))";
const GUARD_TRIGGER: &str = "buzz_tenant_guard";
const COMMUNITY_FK: &str = "buzz_community_fk";
/// Policies the generator owns, as (name, clause). The write policies carry §12.2: a host is
/// an assertion, so writes need an authenticated actor unless the table opts out.
const FENCE_POLICIES: &[(&str, &str)] = &[
    ("buzz_fence", "AS RESTRICTIVE FOR ALL TO PUBLIC USING {F} WITH CHECK {F}"),
    ("buzz_access", "AS PERMISSIVE FOR ALL TO PUBLIC USING {F} WITH CHECK {F}"),
];
const WRITE_POLICIES: &[(&str, &str)] = &[
    ("buzz_write_insert", "AS RESTRICTIVE FOR INSERT TO PUBLIC WITH CHECK {A}"),
    ("buzz_write_update", "AS RESTRICTIVE FOR UPDATE TO PUBLIC USING {A}"),
    ("buzz_write_delete", "AS RESTRICTIVE FOR DELETE TO PUBLIC USING {A}"),
];

thread_local! {
    /// Set while this module runs DDL, so the partition event trigger (fired by that DDL)
    /// does not plan again underneath it.
    static RUNNING: Cell<bool> = const { Cell::new(false) };
}

struct Running;
impl Running {
    fn enter() -> Running {
        RUNNING.with(|r| r.set(true));
        Running
    }
}
impl Drop for Running {
    fn drop(&mut self) {
        RUNNING.with(|r| r.set(false));
    }
}

/// One relation of the table's partition tree (the table itself first).
#[derive(Deserialize)]
struct Rel {
    name: String,
    rls: bool,
    force: bool,
    policies: Vec<String>,
    default: Option<String>,
}

#[derive(Deserialize)]
struct Column {
    #[serde(rename = "type")]
    ty: String,
    not_null: bool,
    default: Option<String>,
}

#[derive(Deserialize)]
struct Table {
    name: String,
    literal: String,
    relkind: String,
    is_partition: bool,
    temp: bool,
    system: bool,
    extension: bool,
    mode: Option<String>,
    column: Option<Column>,
    has_rows: bool,
    null_rows: bool,
    community_fk: bool,
    guard: bool,
    rels: Vec<Rel>,
}

/// A unique key (PRIMARY KEY / UNIQUE / EXCLUDE constraint, or a bare unique index) of the
/// table whose key columns lack `community_id`.
#[derive(Deserialize)]
struct Key {
    index_oid: i64,
    index: String,
    index_name: String,
    constraint: Option<String>,
    contype: Option<String>,
    condef: Option<String>,
    indexdef: String,
}

#[derive(Deserialize)]
struct ForeignKey {
    name: String,
    from: String,
    from_oid: i64,
    to: String,
    to_oid: i64,
    index_oid: i64,
    cols: Vec<String>,
    refcols: Vec<String>,
    has_cid: bool,
    from_mode: Option<String>,
    from_has_cid: bool,
    to_mode: Option<String>,
    target_ok: bool,
    upd: String,
    del: String,
    matchtype: String,
    deferrable: bool,
    deferred: bool,
    delsetcols: Option<Vec<String>>,
}

#[derive(Deserialize)]
struct Keys {
    oid: i64,
    keys: Vec<Key>,
    fks: Vec<ForeignKey>,
}

const DESCRIBE: &str = r#"
WITH t AS (
    SELECT c.oid, c.relkind, c.relispartition, c.relpersistence, n.nspname,
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
  FROM t"#;

const KEYS: &str = r#"
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
       FROM fk k), '[]'))"#;

fn describe(oid: pg_sys::Oid) -> Table {
    let json = crate::spi_cache::one::<pgrx::JsonB>(DESCRIBE, &[oid.into()]).or_raise();
    let Some(pgrx::JsonB(v)) = json else { raise_detail(Error::TenancyNotTable, "no such relation") };
    let mut t: Table = serde_json::from_value(v).unwrap_or_else(|e| raise_detail(Error::Internal, &e.to_string()));
    // Row checks run as the caller; they only decide whether a backfill community is needed.
    if t.relkind == "r" || t.relkind == "p" {
        t.has_rows = Spi::get_one::<bool>(&format!("SELECT EXISTS (SELECT 1 FROM {})", t.name)).or_raise().unwrap_or(false);
        if t.column.is_some() {
            t.null_rows = Spi::get_one::<bool>(&format!("SELECT EXISTS (SELECT 1 FROM {} WHERE community_id IS NULL)", t.name))
                .or_raise()
                .unwrap_or(false);
        }
    }
    t
}

fn keys(oid: pg_sys::Oid) -> Keys {
    let json = crate::spi_cache::one::<pgrx::JsonB>(KEYS, &[oid.into()]).or_raise();
    let Some(pgrx::JsonB(v)) = json else { raise(Error::Internal) };
    serde_json::from_value(v).unwrap_or_else(|e| raise_detail(Error::Internal, &e.to_string()))
}


/// What the operator asked for.
struct Options {
    add_column: bool,
    rewrite_keys: bool,
    backfill: Option<pgrx::Uuid>,
    anonymous_writes: bool,
}

/// Refuse relations the generator must not touch, whatever is asked.
fn check_adoptable(t: &Table) {
    if !(t.relkind == "r" || t.relkind == "p") || t.temp || t.system {
        raise_detail(Error::TenancyNotTable, &t.name);
    }
    if t.extension {
        raise_detail(Error::TenancyOwnTable, &t.name);
    }
    if t.is_partition {
        raise_detail(Error::TenancyPartition, &t.name);
    }
}

fn policy_sql(name: &str, rel: &str, clause: &str) -> String {
    format!("CREATE POLICY {name} ON {rel} {}", clause.replace("{F}", FENCE).replace("{A}", ACTOR))
}

/// RLS, policies and the column default on every relation of the tree (partitions are not
/// covered by their parent's policies when queried directly).
fn fence_steps(t: &Table, anonymous_writes: bool, out: &mut Vec<String>) {
    for (i, rel) in t.rels.iter().enumerate() {
        if i > 0 && rel.default.as_deref() != Some("buzz.current_community()") {
            out.push(format!("ALTER TABLE {} ALTER COLUMN community_id SET DEFAULT buzz.current_community()", rel.name));
        }
        if !rel.rls {
            out.push(format!("ALTER TABLE {} ENABLE ROW LEVEL SECURITY", rel.name));
        }
        if !rel.force {
            out.push(format!("ALTER TABLE {} FORCE ROW LEVEL SECURITY", rel.name));
        }
        let has = |p: &str| rel.policies.iter().any(|q| q == p);
        for (name, clause) in FENCE_POLICIES {
            if !has(name) {
                out.push(policy_sql(name, &rel.name, clause));
            }
        }
        for (name, clause) in WRITE_POLICIES {
            match (anonymous_writes, has(name)) {
                (false, false) => out.push(policy_sql(name, &rel.name, clause)),
                (true, true) => out.push(format!("DROP POLICY {name} ON {}", rel.name)),
                _ => {}
            }
        }
    }
}

/// `community_id uuid NOT NULL DEFAULT buzz.current_community()`, backfilled if asked.
fn column_steps(t: &Table, o: &Options, out: &mut Vec<String>) {
    let fill = o.backfill.map(|u| format!("'{u}'"));
    match &t.column {
        None if !o.add_column => raise_detail(Error::TenancyNoColumn, &t.name),
        None => {
            if t.has_rows {
                let Some(fill) = fill else { raise_detail(Error::TenancyBackfill, &t.name) };
                out.push(format!("ALTER TABLE {} ADD COLUMN community_id uuid NOT NULL DEFAULT {fill}", t.name));
                out.push(format!("ALTER TABLE {} ALTER COLUMN community_id SET DEFAULT buzz.current_community()", t.name));
            } else {
                out.push(format!(
                    "ALTER TABLE {} ADD COLUMN community_id uuid NOT NULL DEFAULT buzz.current_community()",
                    t.name
                ));
            }
        }
        Some(c) => {
            if c.ty != "uuid" {
                raise_detail(Error::TenancyColumnType, &t.name);
            }
            if t.null_rows {
                let Some(fill) = fill else { raise_detail(Error::TenancyBackfill, &t.name) };
                out.push(format!("UPDATE {} SET community_id = {fill} WHERE community_id IS NULL", t.name));
            }
            if !c.not_null {
                out.push(format!("ALTER TABLE {} ALTER COLUMN community_id SET NOT NULL", t.name));
            }
            if c.default.as_deref() != Some("buzz.current_community()") {
                out.push(format!("ALTER TABLE {} ALTER COLUMN community_id SET DEFAULT buzz.current_community()", t.name));
            }
        }
    }
    if !t.community_fk {
        out.push(format!(
            "ALTER TABLE {} ADD CONSTRAINT {COMMUNITY_FK} FOREIGN KEY (community_id) REFERENCES buzz.communities (id)",
            t.name
        ));
    }
}

/// `PRIMARY KEY (a)` → `PRIMARY KEY (community_id, a)`: the definition starts with a fixed
/// keyword phrase, so the first parenthesis opens the key column list.
fn composite_constraint(def: &str) -> Option<String> {
    let at = def.find('(')?;
    let head = &def[..at];
    if !(head == "PRIMARY KEY " || head.starts_with("UNIQUE ")) {
        return None;
    }
    Some(format!("{head}(community_id, {}", &def[at + 1..]))
}

/// `CREATE UNIQUE INDEX i ON [ONLY] s.t USING btree (expr) …` → the same index led by
/// community_id (never ONLY: a partitioned parent's index must cover its partitions).
fn composite_index(def: &str, index_name: &str, table: &str) -> Option<String> {
    let rest = [format!("CREATE UNIQUE INDEX {index_name} ON {table} USING btree ("),
                format!("CREATE UNIQUE INDEX {index_name} ON ONLY {table} USING btree (")]
        .iter()
        .find_map(|p| def.strip_prefix(p.as_str()))?;
    Some(format!("CREATE UNIQUE INDEX {index_name} ON {table} USING btree (community_id, {rest}"))
}

fn composite_fk(fk: &ForeignKey) -> String {
    let action = |code: &str, set_cols: Option<String>| match code {
        "r" => " RESTRICT".to_owned(),
        "c" => " CASCADE".to_owned(),
        // Column-list form (§12.11): the row keeps its community_id.
        "n" => format!(" SET NULL ({})", set_cols.unwrap_or_default()),
        "d" => format!(" SET DEFAULT ({})", set_cols.unwrap_or_default()),
        _ => " NO ACTION".to_owned(),
    };
    let set_cols = fk.delsetcols.clone().unwrap_or_else(|| fk.cols.clone()).join(", ");
    let mut s = format!(
        "ALTER TABLE {} ADD CONSTRAINT {} FOREIGN KEY (community_id, {}) REFERENCES {} (community_id, {})",
        fk.from,
        fk.name,
        fk.cols.join(", "),
        fk.to,
        fk.refcols.join(", ")
    );
    if fk.matchtype == "f" {
        s.push_str(" MATCH FULL");
    }
    s.push_str(" ON UPDATE");
    s.push_str(&action(&fk.upd, None));
    s.push_str(" ON DELETE");
    s.push_str(&action(&fk.del, Some(set_cols)));
    if fk.deferrable {
        s.push_str(if fk.deferred { " DEFERRABLE INITIALLY DEFERRED" } else { " DEFERRABLE" });
    }
    s
}

/// Every key of the table and every foreign key between tenant tables that touches it
/// becomes composite, `community_id` leading (A-RLS-5): drop the foreign keys that depend on
/// a key being rewritten, rewrite the keys, add the foreign keys back composite. No CASCADE.
fn key_steps(t: &Table, k: &Keys, out: &mut Vec<String>) {
    let rewritten: Vec<i64> = k.keys.iter().map(|x| x.index_oid).collect();
    for key in &k.keys {
        if key.contype.as_deref() == Some("x") {
            raise_detail(Error::TenancyExclusion, &key.index);
        }
    }
    let mut redo: Vec<&ForeignKey> = Vec::new();
    for fk in &k.fks {
        if fk.has_cid {
            continue;
        }
        let incoming = fk.to_oid == k.oid && rewritten.contains(&fk.index_oid);
        let outgoing = fk.from_oid == k.oid && (fk.to_oid == k.oid || fk.to_mode.as_deref() == Some("tenant"));
        if !incoming && !outgoing {
            continue;
        }
        if fk.from_oid != k.oid && !(fk.from_mode.as_deref() == Some("tenant") && fk.from_has_cid) {
            // A global (or not yet adopted) table pointing into a tenant key (§12.11).
            raise_detail(Error::TenancyForeignRef, &format!("{} references {} ({})", fk.from, fk.to, fk.name));
        }
        if fk.to_oid != k.oid && !fk.target_ok {
            raise_detail(Error::TenancyRefKey, &format!("{} references {} ({})", fk.from, fk.to, fk.name));
        }
        if matches!(fk.upd.as_str(), "n" | "d") {
            raise_detail(Error::TenancyFkAction, &format!("{} ({})", fk.from, fk.name));
        }
        redo.push(fk);
    }
    for fk in &redo {
        out.push(format!("ALTER TABLE {} DROP CONSTRAINT {}", fk.from, fk.name));
    }
    for key in &k.keys {
        let rebuilt = match (&key.constraint, &key.condef) {
            (Some(con), Some(def)) => composite_constraint(def).map(|d| {
                vec![
                    format!("ALTER TABLE {} DROP CONSTRAINT {con}", t.name),
                    format!("ALTER TABLE {} ADD CONSTRAINT {con} {d}", t.name),
                ]
            }),
            _ => composite_index(&key.indexdef, &key.index_name, &t.name)
                .map(|d| vec![format!("DROP INDEX {}", key.index), d]),
        };
        match rebuilt {
            Some(steps) => out.extend(steps),
            None => raise_detail(Error::TenancyKeyShape, &key.index),
        }
    }
    for fk in &redo {
        out.push(composite_fk(fk));
    }
}

fn register_step(t: &Table, mode: &str, reason: Option<&str>, anonymous_writes: bool) -> String {
    let reason = reason
        .map(|r| Spi::get_one_with_args::<String>("SELECT quote_literal($1)", &[r.into()]).or_raise().unwrap_or_default())
        .unwrap_or_else(|| "NULL".into());
    format!(
        "INSERT INTO buzz.tenancy_tables (tbl, mode, reason, anonymous_writes) VALUES ({}::regclass, '{mode}', {reason}, {anonymous_writes}) \
         ON CONFLICT (tbl) DO UPDATE SET mode = EXCLUDED.mode, reason = EXCLUDED.reason, anonymous_writes = EXCLUDED.anonymous_writes",
        t.literal
    )
}

fn plan_enable(oid: pg_sys::Oid, o: &Options) -> Vec<String> {
    let t = describe(oid);
    check_adoptable(&t);
    if t.mode.as_deref() == Some("global") {
        raise_detail(Error::TenancyGlobal, &t.name);
    }
    let mut out = Vec::new();
    column_steps(&t, o, &mut out);
    if o.rewrite_keys {
        key_steps(&t, &keys(oid), &mut out);
    }
    fence_steps(&t, o.anonymous_writes, &mut out);
    if !t.guard {
        out.push(format!(
            "CREATE TRIGGER {GUARD_TRIGGER} BEFORE INSERT OR UPDATE ON {} FOR EACH ROW EXECUTE FUNCTION buzz.tenant_guard()",
            t.name
        ));
    }
    let registered = crate::spi_cache::one::<bool>(
        "SELECT anonymous_writes FROM buzz.tenancy_tables WHERE tbl = $1 AND mode = 'tenant'",
        &[oid.into()],
    )
    .or_raise();
    if registered != Some(o.anonymous_writes) {
        out.push(register_step(&t, "tenant", None, o.anonymous_writes));
    }
    out
}

fn run(steps: &[String]) -> String {
    let _running = Running::enter();
    for s in steps {
        Spi::run(s).or_raise();
    }
    render(steps)
}

fn render(steps: &[String]) -> String {
    steps.iter().map(|s| format!("{s};\n")).collect()
}

fn backfill_community(slug: Option<&str>) -> Option<pgrx::Uuid> {
    let slug = slug?;
    Some(
        crate::spi_cache::one::<pgrx::Uuid>("SELECT id FROM buzz.communities WHERE slug = $1", &[slug.into()])
            .or_raise()
            .unwrap_or_else(|| raise(Error::CommunityUnknown)),
    )
}

fn oid_of(tbl: PgRelation) -> pg_sys::Oid {
    // Close it at once: ALTER TABLE refuses a relation this backend still holds open.
    let oid = tbl.oid();
    drop(tbl);
    oid
}

/// `buzz.tenancy_plan(tbl, add_column, rewrite_keys, backfill, anonymous_writes)`: the DDL
/// `enable_tenancy` would run with the same arguments, one statement per line; '' when the
/// table is already fully tenant.
#[pg_extern(volatile, parallel_unsafe)]
#[search_path(pg_catalog, pg_temp)]
fn tenancy_plan(
    tbl: PgRelation,
    add_column: default!(bool, false),
    rewrite_keys: default!(bool, false),
    backfill: default!(Option<&str>, "NULL"),
    anonymous_writes: default!(bool, false),
) -> String {
    let o = Options { add_column, rewrite_keys, backfill: backfill_community(backfill), anonymous_writes };
    render(&plan_enable(oid_of(tbl), &o))
}

/// `buzz.enable_tenancy(tbl, add_column, rewrite_keys, backfill, anonymous_writes)`: make a
/// relay table tenant (column, FK, RLS + FORCE, policies, guard trigger, registry; with
/// `rewrite_keys`, composite keys) and return the DDL it ran.
#[pg_extern(volatile, parallel_unsafe)]
#[search_path(pg_catalog, pg_temp)]
fn enable_tenancy(
    tbl: PgRelation,
    add_column: default!(bool, false),
    rewrite_keys: default!(bool, false),
    backfill: default!(Option<&str>, "NULL"),
    anonymous_writes: default!(bool, false),
) -> String {
    let o = Options { add_column, rewrite_keys, backfill: backfill_community(backfill), anonymous_writes };
    let oid = oid_of(tbl);
    let steps = plan_enable(oid, &o);
    audited("tenancy.enable", oid, &steps, serde_json::json!({"rewrite_keys": rewrite_keys, "anonymous_writes": anonymous_writes}))
}

/// Run `steps` and, if there were any, record them on the operator chain.
fn audited(action: &str, oid: pg_sys::Oid, steps: &[String], mut detail: serde_json::Value) -> String {
    let ddl = run(steps);
    if !steps.is_empty() {
        let name = Spi::get_one_with_args::<String>("SELECT $1::regclass::text", &[oid.into()]).or_raise().unwrap_or_default();
        detail["statements"] = serde_json::json!(steps.len());
        crate::audit::append_operator(action, &name, detail);
    }
    ddl
}

/// `buzz.disable_tenancy(tbl)`: remove the generated policies, the guard trigger, FORCE and
/// RLS, and the registry entry (global declarations too). The column, its foreign key and the
/// composite keys stay. Returns the DDL it ran.
#[pg_extern(volatile, parallel_unsafe)]
#[search_path(pg_catalog, pg_temp)]
fn disable_tenancy(tbl: PgRelation) -> String {
    let oid = oid_of(tbl);
    let t = describe(oid);
    check_adoptable(&t);
    let mut out = Vec::new();
    for rel in &t.rels {
        for (name, _) in FENCE_POLICIES.iter().chain(WRITE_POLICIES) {
            if rel.policies.iter().any(|p| p == name) {
                out.push(format!("DROP POLICY {name} ON {}", rel.name));
            }
        }
        if rel.force {
            out.push(format!("ALTER TABLE {} NO FORCE ROW LEVEL SECURITY", rel.name));
        }
        if rel.rls {
            out.push(format!("ALTER TABLE {} DISABLE ROW LEVEL SECURITY", rel.name));
        }
    }
    if t.guard {
        out.push(format!("DROP TRIGGER {GUARD_TRIGGER} ON {}", t.name));
    }
    if t.mode.is_some() {
        out.push(format!("DELETE FROM buzz.tenancy_tables WHERE tbl = {}::regclass", t.literal));
    }
    audited("tenancy.disable", oid, &out, serde_json::json!({}))
}

/// `buzz.declare_global(tbl, reason)`: record that a table (or a materialized view the relay
/// may read) is deliberately operator-global. Refused for tenant tables and for tables whose
/// foreign keys point into tenant tables. The conformance gate fails every materialized view
/// the relay can read unless it is declared here (what it reads through functions is invisible
/// to the catalogs), and still fails one that reads tenant data directly.
#[pg_extern(volatile, parallel_unsafe)]
#[search_path(pg_catalog, pg_temp)]
fn declare_global(tbl: PgRelation, reason: Option<&str>) -> String {
    let oid = oid_of(tbl);
    let t = describe(oid);
    if t.relkind != "m" || t.temp || t.system || t.extension {
        check_adoptable(&t);
    }
    let reason = reason.map(str::trim).filter(|r| !r.is_empty()).unwrap_or_else(|| raise_detail(Error::ReasonRequired, &t.name));
    if t.mode.as_deref() == Some("tenant") || t.rels.iter().any(|r| r.policies.iter().any(|p| p == "buzz_fence")) {
        raise_detail(Error::TenancyTenant, &t.name);
    }
    if let Some(fk) = keys(oid).fks.iter().find(|fk| fk.from_oid == i64::from(u32::from(oid)) && fk.to_mode.as_deref() == Some("tenant")) {
        raise_detail(Error::GlobalRefsTenant, &format!("{} references {} ({})", fk.from, fk.to, fk.name));
    }
    let step = register_step(&t, "global", Some(reason), false);
    audited("tenancy.declare_global", oid, &[step], serde_json::json!({"reason": reason}))
}

/// `buzz.tenancy_sync(tbl)` (called by the `buzz_tenancy_partitions` event trigger): give
/// every partition of an adopted table the fences its parent has, so partitions created or
/// attached later are covered. The root's guard trigger marks it as adopted; its write
/// policies say whether anonymous writes were allowed (a partition then gets, or loses, the
/// write policies to match). The fence, FORCE and the default are only ever added.
#[pg_extern(volatile, parallel_unsafe)]
#[search_path(pg_catalog, pg_temp)]
fn tenancy_sync(tbl: PgRelation) -> String {
    if RUNNING.with(|r| r.get()) {
        return String::new();
    }
    let t = describe(oid_of(tbl));
    let Some(root) = t.rels.first() else { return String::new() };
    if !t.guard || t.is_partition {
        return String::new();
    }
    let anonymous = !root.policies.iter().any(|p| p == WRITE_POLICIES[0].0);
    let mut out = Vec::new();
    fence_steps(&t, anonymous, &mut out);
    run(&out)
}

#[cfg(any(test, feature = "pg_test"))]
#[pg_schema]
mod tests {
    #[allow(unused_imports)] // used by the plain #[test]s only
    use super::*;

    #[test]
    fn constraints_get_community_id_first() {
        assert_eq!(composite_constraint("PRIMARY KEY (id)").as_deref(), Some("PRIMARY KEY (community_id, id)"));
        assert_eq!(
            composite_constraint("UNIQUE NULLS NOT DISTINCT (a, b) INCLUDE (c) DEFERRABLE").as_deref(),
            Some("UNIQUE NULLS NOT DISTINCT (community_id, a, b) INCLUDE (c) DEFERRABLE")
        );
        // Anything else (an exclusion constraint, a CHECK) is not rewritten by text.
        assert_eq!(composite_constraint("EXCLUDE USING gist (room WITH =)"), None);
        assert_eq!(composite_constraint("CHECK ((x > 0))"), None);
    }

    #[test]
    fn unique_indexes_keep_expressions_and_predicates() {
        let def = "CREATE UNIQUE INDEX users_nip05 ON relay.users USING btree (lower(nip05)) WHERE (deleted_at IS NULL)";
        assert_eq!(
            composite_index(def, "users_nip05", "relay.users").as_deref(),
            Some("CREATE UNIQUE INDEX users_nip05 ON relay.users USING btree (community_id, lower(nip05)) WHERE (deleted_at IS NULL)")
        );
        // A partitioned parent's index is printed ON ONLY; the rewrite must cover the partitions.
        let def = "CREATE UNIQUE INDEX ev ON ONLY relay.events USING btree (id, created_at)";
        assert_eq!(
            composite_index(def, "ev", "relay.events").as_deref(),
            Some("CREATE UNIQUE INDEX ev ON relay.events USING btree (community_id, id, created_at)")
        );
        // A definition naming another table (or another access method) is refused, not guessed.
        assert_eq!(composite_index(def, "ev", "relay.other"), None);
        assert_eq!(composite_index("CREATE UNIQUE INDEX ev ON relay.events USING hash (id)", "ev", "relay.events"), None);
    }

    #[cfg(test)]
    fn fk(del: &str, delsetcols: Option<Vec<String>>) -> ForeignKey {
        ForeignKey {
            name: "w_fk".into(),
            from: "relay.workflows".into(),
            from_oid: 1,
            to: "relay.channels".into(),
            to_oid: 2,
            index_oid: 3,
            cols: vec!["channel_id".into()],
            refcols: vec!["id".into()],
            has_cid: false,
            from_mode: Some("tenant".into()),
            from_has_cid: true,
            to_mode: Some("tenant".into()),
            target_ok: true,
            upd: "a".into(),
            del: del.into(),
            matchtype: "s".into(),
            deferrable: true,
            deferred: true,
            delsetcols,
        }
    }

    #[test]
    fn foreign_keys_become_composite_and_never_null_community_id() {
        assert_eq!(
            composite_fk(&fk("n", None)),
            "ALTER TABLE relay.workflows ADD CONSTRAINT w_fk FOREIGN KEY (community_id, channel_id) \
             REFERENCES relay.channels (community_id, id) ON UPDATE NO ACTION ON DELETE SET NULL (channel_id) \
             DEFERRABLE INITIALLY DEFERRED"
        );
        assert!(composite_fk(&fk("c", None)).contains("ON DELETE CASCADE"));
        assert!(composite_fk(&fk("d", Some(vec!["channel_id".into()]))).contains("ON DELETE SET DEFAULT (channel_id)"));
    }
}
