//! The generator's planners: from what the catalogs say about a table (`catalog.rs`) and what
//! the operator asked for, the DDL that makes it tenant — only the pieces that are missing, so
//! a second run plans nothing. Pure functions of their inputs; refusals are catalog errors
//! with the object in the DETAIL, raised before anything runs.

use super::catalog::{Grants, Table};
use super::refusal::Refusal;

/// The fence every generated policy (and the extension's own) compares with.
pub const FENCE: &str = "(community_id = buzz.current_community())";
/// Writes need an authenticated actor whose credential allows writing (an API token's scopes
/// are visible here, DESIGN §12.7).
const ACTOR: &str = "(buzz.current_actor() IS NOT NULL AND 'write' = ANY (buzz.current_scopes()))";
/// ... or, on a table that allows it, a background worker's context (`enter_community`).
const ACTOR_OR_WORKER: &str =
    "((buzz.current_actor() IS NOT NULL AND 'write' = ANY (buzz.current_scopes())) OR buzz.current_worker())";
pub const GUARD_TRIGGER: &str = "buzz_tenant_guard";
pub const LOG_GUARD_TRIGGER: &str = "buzz_log_guard";
/// Runs after the guard (triggers fire in name order), which has checked the row's community.
pub const COUNTER_TRIGGER: &str = "buzz_tenant_ids";
const COMMUNITY_FK: &str = "buzz_community_fk";
/// Policies the generator owns, as (name, clause). The write policies carry §12.2: a host is
/// an assertion, so writes need an authenticated actor unless the table opts out; a table may
/// also let background workers write (the `_worker` set).
pub const FENCE_POLICIES: &[(&str, &str)] = &[
    ("buzz_fence", "AS RESTRICTIVE FOR ALL TO PUBLIC USING {F} WITH CHECK {F}"),
    ("buzz_access", "AS PERMISSIVE FOR ALL TO PUBLIC USING {F} WITH CHECK {F}"),
];
pub const WRITE_POLICIES: &[(&str, &str)] = &[
    ("buzz_write_insert", "AS RESTRICTIVE FOR INSERT TO PUBLIC WITH CHECK {A}"),
    ("buzz_write_update", "AS RESTRICTIVE FOR UPDATE TO PUBLIC USING {A}"),
    ("buzz_write_delete", "AS RESTRICTIVE FOR DELETE TO PUBLIC USING {A}"),
];
pub const WORKER_WRITE_POLICIES: &[(&str, &str)] = &[
    ("buzz_write_insert_worker", "AS RESTRICTIVE FOR INSERT TO PUBLIC WITH CHECK {W}"),
    ("buzz_write_update_worker", "AS RESTRICTIVE FOR UPDATE TO PUBLIC USING {W}"),
    ("buzz_write_delete_worker", "AS RESTRICTIVE FOR DELETE TO PUBLIC USING {W}"),
];

/// What the operator asked for.
#[derive(Default)]
pub struct Options {
    pub add_column: bool,
    pub rewrite_keys: bool,
    pub backfill: Option<pgrx::Uuid>,
    pub anonymous_writes: bool,
    pub worker_writes: bool,
    pub per_community_ids: bool,
}

/// Who may write a tenant table: an authenticated actor (the default), also a background
/// worker, or anyone in the community (anonymous writes: no write policy at all).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Writers {
    Actors,
    ActorsAndWorkers,
    Anyone,
}

impl Writers {
    pub fn of(o: &Options) -> Writers {
        match (o.anonymous_writes, o.worker_writes) {
            (true, _) => Writers::Anyone,
            (false, true) => Writers::ActorsAndWorkers,
            (false, false) => Writers::Actors,
        }
    }

    /// Read back from the policies of a table's root (partitions follow their root).
    pub fn from_policies(policies: &[String]) -> Writers {
        let has = |p: &str| policies.iter().any(|q| q == p);
        if has(WORKER_WRITE_POLICIES[0].0) {
            Writers::ActorsAndWorkers
        } else if has(WRITE_POLICIES[0].0) {
            Writers::Actors
        } else {
            Writers::Anyone
        }
    }

    fn policies(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Writers::Actors => WRITE_POLICIES,
            Writers::ActorsAndWorkers => WORKER_WRITE_POLICIES,
            Writers::Anyone => &[],
        }
    }
}

/// Refuse relations the generator must not touch, whatever is asked.
pub fn check_adoptable(t: &Table) -> Result<(), Refusal> {
    if !(t.relkind == "r" || t.relkind == "p") || t.temp || t.system {
        return Err(Refusal::NotTable(t.name.clone()));
    }
    if t.extension {
        return Err(Refusal::OwnTable(t.name.clone()));
    }
    if t.is_partition {
        return Err(Refusal::Partition(t.name.clone()));
    }
    Ok(())
}

/// A tenant table inherits only from tenant tables: a scan of a parent returns the child's
/// rows under the parent's policies.
pub fn check_inheritance(t: &Table) -> Result<(), Refusal> {
    match &t.untenanted_parent {
        Some(parent) => Err(Refusal::Inherits { table: t.name.clone(), parent: parent.clone() }),
        None => Ok(()),
    }
}

/// A relay-written log (`declare_log`): `community_id uuid` defaulting to the context, a
/// foreign key to `buzz.communities`, and the guard that keeps each row to the entered
/// community.
pub fn log_steps(t: &Table, out: &mut Vec<String>) -> Result<(), Refusal> {
    match &t.column {
        None => return Err(Refusal::NoColumn(t.name.clone())),
        Some(c) if c.ty != "uuid" => return Err(Refusal::ColumnType(t.name.clone())),
        Some(c) => {
            if c.default.as_deref() != Some("buzz.current_community()") {
                out.push(format!("ALTER TABLE {} ALTER COLUMN community_id SET DEFAULT buzz.current_community()", t.name));
            }
        }
    }
    community_fk_step(t, out);
    if !t.log_guard {
        out.push(format!(
            "CREATE TRIGGER {LOG_GUARD_TRIGGER} BEFORE INSERT OR UPDATE ON {} FOR EACH ROW EXECUTE FUNCTION buzz.log_guard()",
            t.name
        ));
    }
    Ok(())
}

fn policy_sql(name: &str, rel: &str, clause: &str) -> String {
    format!(
        "CREATE POLICY {name} ON {rel} {}",
        clause.replace("{F}", FENCE).replace("{A}", ACTOR).replace("{W}", ACTOR_OR_WORKER)
    )
}

/// RLS, policies and the column default on every relation of the tree (partitions are not
/// covered by their parent's policies when queried directly).
pub fn fence_steps(t: &Table, writers: Writers, out: &mut Vec<String>) {
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
        let wanted = writers.policies();
        for (name, _) in WRITE_POLICIES.iter().chain(WORKER_WRITE_POLICIES) {
            if has(name) && !wanted.iter().any(|(w, _)| w == name) {
                out.push(format!("DROP POLICY {name} ON {}", rel.name));
            }
        }
        for (name, clause) in wanted {
            if !has(name) {
                out.push(policy_sql(name, &rel.name, clause));
            }
        }
    }
}

/// `community_id uuid NOT NULL DEFAULT buzz.current_community()`, backfilled if asked.
pub fn column_steps(t: &Table, o: &Options, out: &mut Vec<String>) -> Result<(), Refusal> {
    let fill = o.backfill.map(|u| format!("'{u}'"));
    match &t.column {
        None if !o.add_column => return Err(Refusal::NoColumn(t.name.clone())),
        None => {
            if t.has_rows {
                let Some(fill) = fill else { return Err(Refusal::Backfill(t.name.clone())) };
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
                return Err(Refusal::ColumnType(t.name.clone()));
            }
            if t.null_rows {
                let Some(fill) = fill else { return Err(Refusal::Backfill(t.name.clone())) };
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
    community_fk_step(t, out);
    Ok(())
}

/// The foreign key to `buzz.communities`, if missing.
pub fn community_fk_step(t: &Table, out: &mut Vec<String>) {
    if !t.community_fk {
        out.push(format!(
            "ALTER TABLE {} ADD CONSTRAINT {COMMUNITY_FK} FOREIGN KEY (community_id) REFERENCES buzz.communities (id)",
            t.name
        ));
    }
}

/// Per-community numbers (§12.13): each column numbered from a shared sequence loses its
/// identity or default, and the counter trigger numbers each community's rows on its own.
pub fn id_steps(t: &Table, out: &mut Vec<String>) {
    for col in &t.numbered {
        out.push(if col.identity {
            format!("ALTER TABLE {} ALTER COLUMN {} DROP IDENTITY", t.name, col.name)
        } else {
            format!("ALTER TABLE {} ALTER COLUMN {} DROP DEFAULT", t.name, col.name)
        });
    }
    if !t.numbered.is_empty() {
        if t.counter_trigger {
            out.push(format!("DROP TRIGGER {COUNTER_TRIGGER} ON {}", t.name));
        }
        let args: Vec<String> = t.numbered.iter().map(|c| quote_literal(&unquote_ident(&c.name))).collect();
        out.push(format!(
            "CREATE TRIGGER {COUNTER_TRIGGER} BEFORE INSERT ON {} FOR EACH ROW EXECUTE FUNCTION buzz.assign_community_ids({})",
            t.name,
            args.join(", ")
        ));
    }
}

/// The registry row (insert or update).
pub fn register_step(t: &Table, mode: &str, reason: Option<&str>, anonymous_writes: bool, worker_writes: bool) -> String {
    let reason = reason.map(quote_literal).unwrap_or_else(|| "NULL".into());
    format!(
        "INSERT INTO buzz.tenancy_tables (tbl, mode, reason, anonymous_writes, worker_writes) \
         VALUES ({}::regclass, '{mode}', {reason}, {anonymous_writes}, {worker_writes}) \
         ON CONFLICT (tbl) DO UPDATE SET mode = EXCLUDED.mode, reason = EXCLUDED.reason, \
         anonymous_writes = EXCLUDED.anonymous_writes, worker_writes = EXCLUDED.worker_writes",
        t.literal
    )
}

/// Before anything runs, the privileges the planned steps need (a non-superuser migration
/// role, DESIGN §12.11): refuse with the missing one named in the DETAIL.
pub fn check_privileges(t: &Table, g: &Grants, steps: &[String]) -> Result<(), Refusal> {
    if steps.is_empty() {
        return Ok(());
    }
    let missing = |what: String| Err(Refusal::Privilege(what));
    if !t.owned {
        return missing(format!("ownership of {} and of each of its partitions (ALTER TABLE needs the owner)", t.name));
    }
    let creates_indexes = steps.iter().any(|s| {
        s.starts_with("CREATE UNIQUE INDEX ") || (s.contains(" ADD CONSTRAINT ") && (s.contains(" PRIMARY KEY ") || s.contains(" UNIQUE ")))
    });
    if creates_indexes && !t.can_create {
        return missing(format!("CREATE on schema {} (the composite keys create indexes there)", t.schema));
    }
    if steps.iter().any(|s| s.contains("REFERENCES buzz.communities ")) && !g.references_communities {
        return missing("REFERENCES on buzz.communities (granted to buzz_admin)".to_owned());
    }
    if steps.iter().any(|s| s.contains("buzz.tenant_guard()")) && !g.guard {
        return missing("EXECUTE on buzz.tenant_guard() (granted to buzz_admin)".to_owned());
    }
    if steps.iter().any(|s| s.contains("buzz.log_guard()")) && !g.log_guard {
        return missing("EXECUTE on buzz.log_guard() (granted to buzz_admin)".to_owned());
    }
    if steps.iter().any(|s| s.contains("buzz.assign_community_ids(")) && !g.counters {
        return missing("EXECUTE on buzz.assign_community_ids() (granted to buzz_admin)".to_owned());
    }
    if steps.iter().any(|s| s.starts_with("INSERT INTO buzz.tenancy_tables ") || s.starts_with("DELETE FROM buzz.tenancy_tables ")) && !g.register {
        return missing("INSERT and UPDATE on buzz.tenancy_tables (granted to buzz_admin)".to_owned());
    }
    Ok(())
}

/// `'text'` with quotes doubled (standard_conforming_strings is on in every supported setup;
/// a backslash is an ordinary character).
pub fn quote_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// The name inside a `quote_ident` result.
fn unquote_ident(s: &str) -> String {
    match s.strip_prefix('"').and_then(|r| r.strip_suffix('"')) {
        Some(inner) => inner.replace("\"\"", "\""),
        None => s.to_owned(),
    }
}

/// The planners are plain functions of what the catalogs said: tested here without a database.
#[cfg(test)]
mod tests {
    use super::*;

    /// A relay table as `describe.sql` would report it: owned, unadopted, with a uuid
    /// community_id; `edit` changes what a case needs.
    fn table(edit: impl FnOnce(&mut serde_json::Value)) -> Table {
        let mut v = serde_json::json!({
            "name": "relay.notes", "literal": "'relay.notes'", "relkind": "r", "is_partition": false,
            "temp": false, "system": false, "extension": false, "mode": null, "owned": true,
            "schema": "relay", "can_create": true, "numbered": [], "counter_trigger": false,
            "column": {"type": "uuid", "not_null": true, "default": null},
            "has_rows": false, "null_rows": false, "community_fk": false, "guard": false, "log_guard": false,
            "untenanted_parent": null, "tenant_child": null,
            "rels": [{"name": "relay.notes", "rls": false, "force": false, "policies": [], "default": null}]
        });
        edit(&mut v);
        serde_json::from_value(v).unwrap()
    }

    fn grants(all: bool) -> Grants {
        Grants { references_communities: all, register: all, guard: all, log_guard: all, counters: all }
    }

    #[test]
    fn refuses_what_it_must_not_touch() {
        assert_eq!(check_adoptable(&table(|v| v["relkind"] = "v".into())), Err(Refusal::NotTable("relay.notes".into())));
        assert_eq!(check_adoptable(&table(|v| v["extension"] = true.into())), Err(Refusal::OwnTable("relay.notes".into())));
        assert_eq!(check_adoptable(&table(|v| v["is_partition"] = true.into())), Err(Refusal::Partition("relay.notes".into())));
        assert_eq!(check_adoptable(&table(|_| {})), Ok(()));
        let child = table(|v| v["untenanted_parent"] = "relay.base".into());
        assert_eq!(check_inheritance(&child).unwrap_err().to_string(), "relay.notes inherits from relay.base");
    }

    #[test]
    fn column_needs_uuid_and_a_backfill_for_existing_rows() {
        let o = |add_column| Options { add_column, ..Options::default() };
        let mut out = Vec::new();
        let missing = table(|v| v["column"] = serde_json::Value::Null);
        assert_eq!(column_steps(&missing, &o(false), &mut out), Err(Refusal::NoColumn("relay.notes".into())));
        let with_rows = table(|v| {
            v["column"] = serde_json::Value::Null;
            v["has_rows"] = true.into();
        });
        assert_eq!(column_steps(&with_rows, &o(true), &mut out), Err(Refusal::Backfill("relay.notes".into())));
        let text = table(|v| v["column"]["type"] = "text".into());
        assert_eq!(column_steps(&text, &o(false), &mut out), Err(Refusal::ColumnType("relay.notes".into())));
        out.clear();
        column_steps(&table(|_| {}), &o(false), &mut out).unwrap();
        assert_eq!(
            out,
            [
                "ALTER TABLE relay.notes ALTER COLUMN community_id SET DEFAULT buzz.current_community()",
                "ALTER TABLE relay.notes ADD CONSTRAINT buzz_community_fk FOREIGN KEY (community_id) REFERENCES buzz.communities (id)",
            ]
        );
    }

    /// Every policy the generator writes compares community_id with the context: the fence
    /// restrictive, access permissive, and writes need an actor unless the table opts out.
    #[test]
    fn fences_every_relation_of_the_tree() {
        let mut t = table(|_| {});
        t.rels.push(serde_json::from_value(serde_json::json!(
            {"name": "relay.notes_2026", "rls": true, "force": true, "policies": ["buzz_fence"], "default": null}
        )).unwrap());
        let mut out = Vec::new();
        fence_steps(&t, Writers::Actors, &mut out);
        assert!(out.contains(&format!("CREATE POLICY buzz_fence ON relay.notes AS RESTRICTIVE FOR ALL TO PUBLIC USING {FENCE} WITH CHECK {FENCE}")));
        assert!(out.iter().any(|s| s.starts_with("CREATE POLICY buzz_write_insert ON relay.notes_2026 AS RESTRICTIVE")));
        assert!(!out.iter().any(|s| s.starts_with("CREATE POLICY buzz_fence ON relay.notes_2026")), "already there");
        assert!(out.contains(&"ALTER TABLE relay.notes_2026 ALTER COLUMN community_id SET DEFAULT buzz.current_community()".to_owned()));
    }

    #[test]
    fn names_the_missing_privilege() {
        let steps = vec!["ALTER TABLE relay.notes ADD CONSTRAINT x PRIMARY KEY (community_id, id)".to_owned()];
        let not_owner = table(|v| v["owned"] = false.into());
        assert!(matches!(check_privileges(&not_owner, &grants(true), &steps), Err(Refusal::Privilege(p)) if p.starts_with("ownership of relay.notes")));
        let no_create = table(|v| v["can_create"] = false.into());
        assert_eq!(
            check_privileges(&no_create, &grants(true), &steps),
            Err(Refusal::Privilege("CREATE on schema relay (the composite keys create indexes there)".into()))
        );
        let guard = vec!["CREATE TRIGGER g BEFORE INSERT ON relay.notes FOR EACH ROW EXECUTE FUNCTION buzz.tenant_guard()".to_owned()];
        assert!(check_privileges(&table(|_| {}), &grants(false), &guard).is_err());
        assert_eq!(check_privileges(&table(|_| {}), &grants(true), &guard), Ok(()));
        assert_eq!(check_privileges(&not_owner, &grants(false), &[]), Ok(()), "nothing to run, nothing needed");
    }
}
