//! What the generator knows about a relay table, read from the catalogs in two statements
//! (`describe.sql`, `keys.sql`) as the caller. The planners (`plan.rs`) only look at these
//! values, so they are plain functions of them.

use pgrx::prelude::*;
use pgrx::pg_sys;
use serde::Deserialize;

use crate::errors::{raise, raise_detail, Error, OrRaise};

const DESCRIBE: &str = include_str!("describe.sql");
const KEYS: &str = include_str!("keys.sql");

/// One relation of the table's partition tree (the table itself first).
#[derive(Deserialize)]
pub struct Rel {
    pub name: String,
    pub rls: bool,
    pub force: bool,
    pub policies: Vec<String>,
    pub default: Option<String>,
}

#[derive(Deserialize)]
pub struct Column {
    #[serde(rename = "type")]
    pub ty: String,
    pub not_null: bool,
    pub default: Option<String>,
}

/// A column numbered from a sequence (an identity, or a `nextval` default).
#[derive(Deserialize)]
pub struct Numbered {
    /// Quoted identifier.
    pub name: String,
    pub identity: bool,
    /// A key column of some unique index.
    pub in_key: bool,
}

#[derive(Deserialize)]
pub struct Table {
    pub name: String,
    pub literal: String,
    pub relkind: String,
    pub is_partition: bool,
    pub temp: bool,
    pub system: bool,
    pub extension: bool,
    pub mode: Option<String>,
    /// The caller owns every relation of the tree.
    pub owned: bool,
    /// The table's schema (quoted) and whether the caller may create in it.
    pub schema: String,
    pub can_create: bool,
    pub numbered: Vec<Numbered>,
    pub counter_trigger: bool,
    pub column: Option<Column>,
    pub has_rows: bool,
    pub null_rows: bool,
    pub community_fk: bool,
    pub guard: bool,
    pub log_guard: bool,
    /// An inheritance parent (not a partitioned table) that is not tenant.
    pub untenanted_parent: Option<String>,
    /// An inheritance child that is tenant (or has `community_id`).
    pub tenant_child: Option<String>,
    pub rels: Vec<Rel>,
}

/// A unique key (PRIMARY KEY / UNIQUE / EXCLUDE constraint, or a bare unique index) of the
/// table whose key columns lack `community_id`.
#[derive(Deserialize)]
pub struct Key {
    pub index_oid: i64,
    pub index: String,
    pub index_name: String,
    pub constraint: Option<String>,
    pub contype: Option<String>,
    pub condef: Option<String>,
    pub indexdef: String,
}

#[derive(Deserialize)]
pub struct ForeignKey {
    pub name: String,
    pub from: String,
    pub from_oid: i64,
    pub to: String,
    pub to_oid: i64,
    pub index_oid: i64,
    pub cols: Vec<String>,
    pub refcols: Vec<String>,
    pub has_cid: bool,
    pub from_mode: Option<String>,
    pub from_has_cid: bool,
    pub to_mode: Option<String>,
    pub target_ok: bool,
    pub upd: String,
    pub del: String,
    pub matchtype: String,
    pub deferrable: bool,
    pub deferred: bool,
    pub delsetcols: Option<Vec<String>>,
}

#[derive(Deserialize)]
pub struct Keys {
    pub oid: i64,
    pub keys: Vec<Key>,
    pub fks: Vec<ForeignKey>,
}

pub fn describe(oid: pg_sys::Oid) -> Table {
    let json = crate::spi_cache::one::<pgrx::JsonB>(DESCRIBE, &[oid.into()]).or_raise();
    let Some(pgrx::JsonB(v)) = json else { raise_detail(Error::TenancyNotTable, "no such relation") };
    let mut t: Table = serde_json::from_value(v).unwrap_or_else(|e| raise_detail(Error::Internal, &e.to_string()));
    // Row checks run as the caller and only decide whether a backfill community is needed;
    // a caller who does not own the table is refused before they matter (plan.rs).
    if (t.relkind == "r" || t.relkind == "p") && t.owned {
        t.has_rows = Spi::get_one::<bool>(&format!("SELECT EXISTS (SELECT 1 FROM {})", t.name)).or_raise().unwrap_or(false);
        if t.column.is_some() {
            t.null_rows = Spi::get_one::<bool>(&format!("SELECT EXISTS (SELECT 1 FROM {} WHERE community_id IS NULL)", t.name))
                .or_raise()
                .unwrap_or(false);
        }
    }
    t
}

pub fn keys(oid: pg_sys::Oid) -> Keys {
    let json = crate::spi_cache::one::<pgrx::JsonB>(KEYS, &[oid.into()]).or_raise();
    let Some(pgrx::JsonB(v)) = json else { raise(Error::Internal) };
    serde_json::from_value(v).unwrap_or_else(|e| raise_detail(Error::Internal, &e.to_string()))
}

/// What the caller may do beyond the table itself, for the steps that need it.
pub struct Grants {
    pub references_communities: bool,
    pub register: bool,
    pub guard: bool,
    pub log_guard: bool,
    pub counters: bool,
}

pub fn grants() -> Grants {
    let row = Spi::connect(|c| {
        let r = c
            .select(
                "SELECT has_table_privilege('buzz.communities', 'REFERENCES'),
                        has_table_privilege('buzz.tenancy_tables', 'INSERT, UPDATE'),
                        has_function_privilege('buzz.tenant_guard()', 'EXECUTE'),
                        has_function_privilege('buzz.log_guard()', 'EXECUTE'),
                        has_function_privilege('buzz.assign_community_ids()', 'EXECUTE')",
                None,
                &[],
            )?
            .first();
        Ok::<_, pgrx::spi::Error>((r.get::<bool>(1)?, r.get::<bool>(2)?, r.get::<bool>(3)?, r.get::<bool>(4)?, r.get::<bool>(5)?))
    })
    .or_raise();
    Grants {
        references_communities: row.0.unwrap_or(false),
        register: row.1.unwrap_or(false),
        guard: row.2.unwrap_or(false),
        log_guard: row.3.unwrap_or(false),
        counters: row.4.unwrap_or(false),
    }
}
