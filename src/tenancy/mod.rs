//! Tenancy for the relay's own tables (DESIGN §5, §7 A-RLS-1/5, §12.2, §12.11, §12.13): what
//! each relay table is, and the DDL that makes it so.
//!
//! * `enable_tenancy` / `tenancy_plan`: make a table tenant (column, foreign key, RLS + FORCE,
//!   policies, guard trigger, registry; on request composite keys and per-community ids);
//! * `declare_global`: shared by every community, with a reason;
//! * `declare_log`: written by the relay, one community per row, never read by it;
//! * `declare_operator_only`: for operators only, so it may keep foreign keys into tenant tables;
//! * `disable_tenancy`, and `tenancy_sync` for partitions created later.
//!
//! A plan is computed from the catalogs (`catalog.rs`) as a list of DDL statements — only the
//! pieces that are missing — by the planners of `plan.rs`, and `enable_tenancy` runs exactly
//! the text `tenancy_plan` shows. The functions are SECURITY INVOKER: the DDL runs as the
//! operator, whose privileges are checked first. Anything that cannot be done without
//! weakening a fence is refused before any statement runs, with a catalog message and the
//! object in the DETAIL.

mod catalog;
pub(crate) mod plan;
mod refusal;
mod rekey;

use std::cell::Cell;

use pgrx::prelude::*;
use pgrx::{pg_sys, PgRelation};

use crate::errors::{raise, Error, OrRaise};
use catalog::{describe, keys, Table};
use plan::{Options, Writers};
use refusal::{OrRefuse, Refusal};

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

fn plan_enable(oid: pg_sys::Oid, o: &Options) -> Result<Vec<String>, Refusal> {
    let t = describe(oid);
    plan::check_adoptable(&t)?;
    plan::check_inheritance(&t)?;
    match t.mode.as_deref() {
        Some("global") => return Err(Refusal::Global(t.name.clone())),
        Some("log") | Some("operator") => return Err(Refusal::Declared(t.name.clone())),
        _ => {}
    }
    let mut out = Vec::new();
    plan::column_steps(&t, o, &mut out)?;
    if o.rewrite_keys {
        rekey::key_steps(&t, &keys(oid), &mut out)?;
    }
    if o.per_community_ids {
        plan::id_steps(&t, &mut out);
    }
    plan::fence_steps(&t, Writers::of(o), &mut out);
    if !t.guard {
        out.push(format!(
            "CREATE TRIGGER {} BEFORE INSERT OR UPDATE ON {} FOR EACH ROW EXECUTE FUNCTION buzz.tenant_guard()",
            plan::GUARD_TRIGGER,
            t.name
        ));
    }
    let registered = crate::spi_cache::two::<bool, bool>(
        "SELECT anonymous_writes, worker_writes FROM buzz.tenancy_tables WHERE tbl = $1 AND mode = 'tenant'",
        &[oid.into()],
    )
    .or_raise();
    if registered != (Some(o.anonymous_writes), Some(o.worker_writes)) {
        out.push(plan::register_step(&t, "tenant", None, o.anonymous_writes, o.worker_writes));
    }
    plan::check_privileges(&t, &catalog::grants(), &out)?;
    Ok(out)
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

/// `buzz.tenancy_plan` (declared in src/api/tenancy.rs).
pub(crate) fn tenancy_plan(
    tbl: PgRelation,
    add_column: bool,
    rewrite_keys: bool,
    backfill: Option<&str>,
    anonymous_writes: bool,
    worker_writes: bool,
    per_community_ids: bool,
) -> String {
    let o = Options {
        add_column,
        rewrite_keys,
        backfill: backfill_community(backfill),
        anonymous_writes,
        worker_writes,
        per_community_ids,
    };
    render(&plan_enable(oid_of(tbl), &o).or_refuse())
}

/// `buzz.enable_tenancy` (declared in src/api/tenancy.rs).
pub(crate) fn enable_tenancy(
    tbl: PgRelation,
    add_column: bool,
    rewrite_keys: bool,
    backfill: Option<&str>,
    anonymous_writes: bool,
    worker_writes: bool,
    per_community_ids: bool,
) -> String {
    let o = Options {
        add_column,
        rewrite_keys,
        backfill: backfill_community(backfill),
        anonymous_writes,
        worker_writes,
        per_community_ids,
    };
    let oid = oid_of(tbl);
    let steps = plan_enable(oid, &o).or_refuse();
    let detail = serde_json::json!({
        "rewrite_keys": rewrite_keys, "anonymous_writes": anonymous_writes,
        "worker_writes": worker_writes, "per_community_ids": per_community_ids,
    });
    audited("tenancy.enable", oid, &steps, detail)
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

/// `buzz.disable_tenancy` (declared in src/api/tenancy.rs).
pub(crate) fn disable_tenancy(tbl: PgRelation) -> String {
    let oid = oid_of(tbl);
    let t = describe(oid);
    plan::check_adoptable(&t).or_refuse();
    let mut out = Vec::new();
    for rel in &t.rels {
        for (name, _) in plan::FENCE_POLICIES.iter().chain(plan::WRITE_POLICIES).chain(plan::WORKER_WRITE_POLICIES) {
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
        out.push(format!("DROP TRIGGER {} ON {}", plan::GUARD_TRIGGER, t.name));
    }
    if t.counter_trigger {
        out.push(format!("DROP TRIGGER {} ON {}", plan::COUNTER_TRIGGER, t.name));
    }
    if t.log_guard {
        out.push(format!("DROP TRIGGER {} ON {}", plan::LOG_GUARD_TRIGGER, t.name));
    }
    if t.mode.is_some() {
        out.push(format!("DELETE FROM buzz.tenancy_tables WHERE tbl = {}::regclass", t.literal));
    }
    plan::check_privileges(&t, &catalog::grants(), &out).or_refuse();
    audited("tenancy.disable", oid, &out, serde_json::json!({}))
}

/// The checks every declaration shares: a table (or, for `global`, a materialized view or a
/// foreign table the relay may read), not tenant, with a reason.
fn declarable<'r>(t: &Table, reason: Option<&'r str>, derived_ok: bool) -> Result<&'r str, Refusal> {
    if !(derived_ok && (t.relkind == "m" || t.relkind == "f")) || t.temp || t.system || t.extension {
        plan::check_adoptable(t)?;
    }
    let reason = reason.map(str::trim).filter(|r| !r.is_empty()).ok_or_else(|| Refusal::ReasonRequired(t.name.clone()))?;
    if t.mode.as_deref() == Some("tenant") || t.rels.iter().any(|r| r.policies.iter().any(|p| p == plan::FENCE_POLICIES[0].0)) {
        return Err(Refusal::Tenant(t.name.clone()));
    }
    if let Some(child) = &t.tenant_child {
        // A scan of this table would return the tenant child's rows under this table's rules.
        return Err(Refusal::InheritedByTenant { table: t.name.clone(), child: child.clone() });
    }
    Ok(reason)
}

/// `buzz.declare_global` (declared in src/api/tenancy.rs).
pub(crate) fn declare_global(tbl: PgRelation, reason: Option<&str>) -> String {
    let oid = oid_of(tbl);
    let t = describe(oid);
    let reason = declarable(&t, reason, true).or_refuse();
    if let Some(fk) = keys(oid).fks.iter().find(|fk| fk.from_oid == i64::from(u32::from(oid)) && fk.to_mode.as_deref() == Some("tenant")) {
        Refusal::GlobalRefsTenant { from: fk.from.clone(), to: fk.to.clone(), name: fk.name.clone() }.raise();
    }
    let steps = vec![plan::register_step(&t, "global", Some(reason), false, false)];
    plan::check_privileges(&t, &catalog::grants(), &steps).or_refuse();
    audited("tenancy.declare_global", oid, &steps, serde_json::json!({"reason": reason}))
}

/// `buzz.declare_log` (declared in src/api/tenancy.rs).
pub(crate) fn declare_log(tbl: PgRelation, reason: Option<&str>, rewrite_keys: bool, per_community_ids: bool) -> String {
    let oid = oid_of(tbl);
    let t = describe(oid);
    let reason = declarable(&t, reason, false).or_refuse();
    let k = keys(oid);
    // ON CONFLICT answers "does this key exist?" with INSERT alone: keys stay per community.
    if let (false, Some(key)) = (rewrite_keys, k.keys.first()) {
        Refusal::LogKey(key.index.clone()).raise();
    }
    if let (false, Some(col)) = (per_community_ids, t.numbered.iter().find(|c| c.in_key)) {
        Refusal::LogKey(format!("{}.{}", t.name, col.name)).raise();
    }
    let mut steps = Vec::new();
    plan::log_steps(&t, &mut steps).or_refuse();
    if rewrite_keys {
        rekey::key_steps(&t, &k, &mut steps).or_refuse();
    }
    if per_community_ids {
        plan::id_steps(&t, &mut steps);
    }
    if t.mode.as_deref() != Some("log") {
        steps.push(plan::register_step(&t, "log", Some(reason), false, false));
    }
    plan::check_privileges(&t, &catalog::grants(), &steps).or_refuse();
    let detail = serde_json::json!({"reason": reason, "rewrite_keys": rewrite_keys, "per_community_ids": per_community_ids});
    audited("tenancy.declare_log", oid, &steps, detail)
}

/// `buzz.declare_operator_only` (declared in src/api/tenancy.rs).
pub(crate) fn declare_operator_only(tbl: PgRelation, reason: Option<&str>) -> String {
    let oid = oid_of(tbl);
    let t = describe(oid);
    let reason = declarable(&t, reason, false).or_refuse();
    let steps = vec![plan::register_step(&t, "operator", Some(reason), false, false)];
    plan::check_privileges(&t, &catalog::grants(), &steps).or_refuse();
    audited("tenancy.declare_operator_only", oid, &steps, serde_json::json!({"reason": reason}))
}

/// `buzz.tenancy_sync` (declared in src/api/tenancy.rs).
pub(crate) fn tenancy_sync(tbl: PgRelation) -> String {
    if RUNNING.with(|r| r.get()) {
        return String::new();
    }
    let t = describe(oid_of(tbl));
    let Some(root) = t.rels.first() else { return String::new() };
    if !t.guard || t.is_partition {
        return String::new();
    }
    let mut out = Vec::new();
    plan::fence_steps(&t, Writers::from_policies(&root.policies), &mut out);
    run(&out)
}
