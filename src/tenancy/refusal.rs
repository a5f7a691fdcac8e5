//! Why the generator refuses a table. The planners are pure: they return a [`Refusal`] — the
//! catalog entry the caller sees plus the operator's detail (which object, which privilege) —
//! and the SQL boundary raises it as that message with the detail in `DETAIL`. Client-facing
//! text stays in the static catalog; only the `DETAIL` is built here.

use crate::errors::{raise_detail, Error};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("{0}")]
    NotTable(String),
    #[error("{0}")]
    OwnTable(String),
    #[error("{0}")]
    Partition(String),
    #[error("{table} inherits from {parent}")]
    Inherits { table: String, parent: String },
    #[error("{0}")]
    NoColumn(String),
    #[error("{0}")]
    ColumnType(String),
    #[error("{0}")]
    Backfill(String),
    #[error("{0}")]
    Global(String),
    #[error("{0}")]
    Declared(String),
    #[error("{0}")]
    Tenant(String),
    #[error("{table} is inherited by tenant table {child}")]
    InheritedByTenant { table: String, child: String },
    #[error("{0}")]
    ReasonRequired(String),
    #[error("{from} references {to} ({name})")]
    GlobalRefsTenant { from: String, to: String, name: String },
    #[error("{0}")]
    LogKey(String),
    #[error("{0}")]
    Exclusion(String),
    #[error("{from} references {to} ({name})")]
    ForeignRef { from: String, to: String, name: String },
    #[error("{from} references {to} ({name})")]
    RefKey { from: String, to: String, name: String },
    #[error("{from} ({name})")]
    FkAction { from: String, name: String },
    #[error("{0}")]
    KeyShape(String),
    /// The privilege the planned DDL needs and the caller lacks.
    #[error("{0}")]
    Privilege(String),
}

impl Refusal {
    /// The catalog entry the caller sees.
    pub fn catalog(&self) -> Error {
        match self {
            Refusal::NotTable(_) => Error::TenancyNotTable,
            Refusal::OwnTable(_) => Error::TenancyOwnTable,
            Refusal::Partition(_) => Error::TenancyPartition,
            Refusal::Inherits { .. } => Error::TenancyInherits,
            Refusal::NoColumn(_) => Error::TenancyNoColumn,
            Refusal::ColumnType(_) => Error::TenancyColumnType,
            Refusal::Backfill(_) => Error::TenancyBackfill,
            Refusal::Global(_) => Error::TenancyGlobal,
            Refusal::Declared(_) => Error::TenancyDeclared,
            Refusal::Tenant(_) | Refusal::InheritedByTenant { .. } => Error::TenancyTenant,
            Refusal::ReasonRequired(_) => Error::ReasonRequired,
            Refusal::GlobalRefsTenant { .. } => Error::GlobalRefsTenant,
            Refusal::LogKey(_) => Error::TenancyLogKey,
            Refusal::Exclusion(_) => Error::TenancyExclusion,
            Refusal::ForeignRef { .. } => Error::TenancyForeignRef,
            Refusal::RefKey { .. } => Error::TenancyRefKey,
            Refusal::FkAction { .. } => Error::TenancyFkAction,
            Refusal::KeyShape(_) => Error::TenancyKeyShape,
            Refusal::Privilege(_) => Error::TenancyPrivilege,
        }
    }

    /// Raise it: the catalog message, with this refusal as the `DETAIL`.
    pub fn raise(self) -> ! {
        raise_detail(self.catalog(), &self.to_string())
    }
}

/// `result.or_refuse()`: the value, or the refusal raised at the SQL boundary.
pub trait OrRefuse<T> {
    fn or_refuse(self) -> T;
}

impl<T> OrRefuse<T> for Result<T, Refusal> {
    fn or_refuse(self) -> T {
        self.unwrap_or_else(|r| r.raise())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detail_names_the_objects() {
        let r = Refusal::ForeignRef { from: "relay.a".into(), to: "relay.b".into(), name: "a_fk".into() };
        assert_eq!(r.to_string(), "relay.a references relay.b (a_fk)");
        assert_eq!(r.catalog(), Error::TenancyForeignRef);
        let r = Refusal::InheritedByTenant { table: "relay.base".into(), child: "relay.notes".into() };
        assert_eq!(r.to_string(), "relay.base is inherited by tenant table relay.notes");
        assert_eq!(r.catalog(), Error::TenancyTenant);
    }
}
