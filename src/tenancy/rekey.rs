//! The key rewrite of `rewrite_keys` (A-RLS-5): every unique key of an adopted table, and every
//! foreign key between tenant tables that touches it, gets `community_id` in front. Planned
//! from the definitions PostgreSQL prints, refused (never guessed) when a definition has an
//! unexpected form. Pure functions, unit-tested below.

use super::catalog::{ForeignKey, Keys, Table};
use super::refusal::Refusal;

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
pub fn key_steps(t: &Table, k: &Keys, out: &mut Vec<String>) -> Result<(), Refusal> {
    let rewritten: Vec<i64> = k.keys.iter().map(|x| x.index_oid).collect();
    for key in &k.keys {
        if key.contype.as_deref() == Some("x") {
            return Err(Refusal::Exclusion(key.index.clone()));
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
            return Err(Refusal::ForeignRef { from: fk.from.clone(), to: fk.to.clone(), name: fk.name.clone() });
        }
        if fk.to_oid != k.oid && !fk.target_ok {
            return Err(Refusal::RefKey { from: fk.from.clone(), to: fk.to.clone(), name: fk.name.clone() });
        }
        if matches!(fk.upd.as_str(), "n" | "d") {
            return Err(Refusal::FkAction { from: fk.from.clone(), name: fk.name.clone() });
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
            None => return Err(Refusal::KeyShape(key.index.clone())),
        }
    }
    for fk in &redo {
        out.push(composite_fk(fk));
    }
    Ok(())
}


#[cfg(test)]
mod tests {
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
