//! The operator API (superuser or members of `buzz_admin`; EXECUTE revoked from PUBLIC).
//! These functions run as the RLS-bound owner role, so tenant rows are reached only through
//! `with_operator_scope(community, …)`, one community at a time.

use pgrx::prelude::*;
use pgrx::Uuid;
use serde_json::json;

use crate::authorize::check_pubkey;
use crate::enter::with_operator_scope;
use crate::errors::{raise, Error, OrRaise};
use crate::resolve::normalize_host;

fn community_id(slug: &str) -> Uuid {
    crate::spi_cache::one::<Uuid>("SELECT id FROM buzz.communities WHERE slug = $1", &[slug.into()])
        .or_raise() // a database error is an incident, not an unknown community
        .unwrap_or_else(|| raise(Error::CommunityUnknown))
}

/// A signing key serves one community only (its signatures must not replay elsewhere).
fn refuse_shared_key(signing_pubkey: Option<&str>, except: Option<Uuid>) {
    let Some(pk) = signing_pubkey else { return };
    let taken = crate::spi_cache::one::<bool>(
        "SELECT EXISTS (SELECT 1 FROM buzz.communities WHERE signing_pubkey = $1 AND id IS DISTINCT FROM $2)",
        &[pk.into(), except.into()],
    )
    .or_raise()
    .unwrap_or(false);
    if taken {
        raise(Error::SigningKeyTaken);
    }
}

fn check_slug(slug: &str) -> Result<(), Error> {
    let ok = (1..=63).contains(&slug.len())
        && slug.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok { Ok(()) } else { Err(Error::SlugInvalid) }
}

/// `buzz.create_community` (declared in src/api/operator.rs).
pub(crate) fn create_community(
    slug: Option<&str>,
    name: Option<&str>,
    admission: Option<&str>,
    signing_pubkey: Option<&str>,
    id: Option<Uuid>,
) -> Uuid {
    let slug = slug.unwrap_or_default();
    check_slug(slug).or_raise();
    let name = name.unwrap_or_default();
    if !(1..=200).contains(&name.chars().count()) {
        raise(Error::NameInvalid);
    }
    let admission = admission.unwrap_or_default();
    if !matches!(admission, "open" | "allowlist") {
        raise(Error::AdmissionInvalid);
    }
    if let Some(pk) = signing_pubkey {
        check_pubkey(pk).or_raise();
    }
    if id == Some(Uuid::from_bytes([0; 16])) {
        raise(Error::CommunityIdInvalid);
    }
    refuse_shared_key(signing_pubkey, None);
    let (new_id, taken) = crate::spi_cache::two::<Uuid, bool>(
        "WITH ins AS (INSERT INTO buzz.communities (id, slug, name, admission, signing_pubkey)
                      VALUES (coalesce($5, gen_random_uuid()), $1, $2, $3, $4)
                      ON CONFLICT DO NOTHING RETURNING id)
         SELECT (SELECT id FROM ins), EXISTS (SELECT 1 FROM buzz.communities WHERE id = $5)",
        &[slug.into(), name.into(), admission.into(), signing_pubkey.into(), id.into()],
    )
    .or_raise();
    let Some(id) = new_id else {
        raise(if taken == Some(true) { Error::CommunityIdTaken } else { Error::CommunityExists })
    };
    with_operator_scope(id, || {
        let detail = json!({"slug": slug, "name": name, "admission": admission, "signing_pubkey": signing_pubkey});
        crate::audit::append(id, None, "community.create", slug, detail);
    });
    id
}

/// `buzz.add_host` (declared in src/api/operator.rs).
pub(crate) fn add_host(community: &str, host: &str) -> String {
    let id = community_id(community);
    let host = normalize_host(host).or_raise();
    let owner = crate::spi_cache::one::<Uuid>(
        "WITH ins AS (INSERT INTO buzz.community_hosts (host, community_id) VALUES ($1, $2)
                      ON CONFLICT (host) DO NOTHING RETURNING community_id)
         SELECT community_id FROM ins
         UNION ALL SELECT community_id FROM buzz.community_hosts WHERE host = $1
         LIMIT 1",
        &[host.as_str().into(), id.into()],
    )
    .or_raise();
    if owner != Some(id) {
        raise(Error::HostTaken);
    }
    with_operator_scope(id, || crate::audit::append(id, None, "host.add", &host, json!({})));
    host
}

/// `buzz.remove_host` (declared in src/api/operator.rs).
pub(crate) fn remove_host(host: &str) -> bool {
    let host = normalize_host(host).or_raise();
    let community = crate::spi_cache::one::<Uuid>(
        "DELETE FROM buzz.community_hosts WHERE host = $1 RETURNING community_id",
        &[host.as_str().into()],
    )
    .or_raise();
    if let Some(id) = community {
        with_operator_scope(id, || crate::audit::append(id, None, "host.remove", &host, json!({})));
    }
    community.is_some()
}

/// `buzz.admit` (declared in src/api/operator.rs).
pub(crate) fn admit(community: &str, pubkey: &str, role: &str) {
    check_pubkey(pubkey).or_raise();
    if !matches!(role, "owner" | "admin" | "member") {
        raise(Error::MemberRoleInvalid);
    }
    let id = community_id(community);
    with_operator_scope(id, || {
        crate::spi_cache::run(
            "INSERT INTO buzz.members (community_id, pubkey, role, source) VALUES ($1, $2, $3, 'admin')
             ON CONFLICT (community_id, pubkey) DO UPDATE SET role = EXCLUDED.role, source = 'admin'",
            &[id.into(), pubkey.into(), role.into()],
        )
        .or_raise();
        crate::spi_cache::run(
            "DELETE FROM buzz.bans WHERE community_id = $1 AND pubkey = $2",
            &[id.into(), pubkey.into()],
        )
        .or_raise();
        crate::audit::append(id, None, "member.admit", pubkey, json!({"role": role}));
    })
}

/// `buzz.revoke` (declared in src/api/operator.rs).
pub(crate) fn revoke(community: &str, pubkey: &str) -> bool {
    check_pubkey(pubkey).or_raise();
    let id = community_id(community);
    with_operator_scope(id, || {
        let was_member = crate::spi_cache::one::<bool>(
            "WITH gone AS (DELETE FROM buzz.members WHERE community_id = $1 AND pubkey = $2 RETURNING 1)
             SELECT count(*) > 0 FROM gone",
            &[id.into(), pubkey.into()],
        )
        .or_raise()
        .unwrap_or(false);
        crate::spi_cache::run(
            "INSERT INTO buzz.bans (community_id, pubkey)
             SELECT id, $2 FROM buzz.communities WHERE id = $1 AND admission = 'open'
             ON CONFLICT DO NOTHING",
            &[id.into(), pubkey.into()],
        )
        .or_raise();
        crate::audit::append(id, None, "member.revoke", pubkey, json!({"was_member": was_member}));
        was_member
    })
}

/// `buzz.set_signing_key` (declared in src/api/operator.rs).
pub(crate) fn set_signing_key(community: &str, signing_pubkey: Option<&str>) {
    if let Some(pk) = signing_pubkey {
        check_pubkey(pk).or_raise();
    }
    let id = community_id(community);
    refuse_shared_key(signing_pubkey, Some(id));
    crate::spi_cache::run(
        "UPDATE buzz.communities SET signing_pubkey = $2 WHERE id = $1",
        &[id.into(), signing_pubkey.into()],
    )
    .or_raise();
    with_operator_scope(id, || {
        crate::audit::append(id, None, "community.signing_key", community, json!({"signing_pubkey": signing_pubkey}))
    });
}

/// `buzz.set_community_name` (declared in src/api/operator.rs).
pub(crate) fn set_community_name(community: &str, name: &str) {
    if !(1..=200).contains(&name.chars().count()) {
        raise(Error::NameInvalid);
    }
    let id = community_id(community);
    crate::spi_cache::run("UPDATE buzz.communities SET name = $2 WHERE id = $1", &[id.into(), name.into()]).or_raise();
    with_operator_scope(id, || crate::audit::append(id, None, "community.name", community, json!({"name": name})));
}

/// `buzz.setup_relay_role` (declared in src/api/operator.rs).
pub(crate) fn setup_relay_role(role: &str) {
    let ordinary = crate::spi_cache::one::<bool>("SELECT rolname NOT LIKE 'pg\\_%' FROM pg_roles WHERE rolname = $1", &[role.into()])
        .or_raise()
        .unwrap_or_else(|| raise(Error::RoleUnknown));
    let unsafe_role = !ordinary
        || crate::spi_cache::one::<bool>(
            "WITH sc AS MATERIALIZED (SELECT buzz.conformance_scope($1) AS s)
             SELECT EXISTS (SELECT 1 FROM sc, buzz.conformance_roles(sc.s) f WHERE f.status = 'fail')
                 OR EXISTS (SELECT 1 FROM sc, unnest((sc.s).roles) AS r(oid)
                             WHERE has_database_privilege(r.oid, current_database(), 'CREATE')
                                OR EXISTS (SELECT 1 FROM pg_namespace n WHERE has_schema_privilege(r.oid, n.oid, 'CREATE')))",
            &[role.into()],
        )
        .or_raise()
        .unwrap_or(true);
    if unsafe_role {
        raise(Error::RoleUnsafe);
    }
    let quoted = crate::spi_cache::one::<String>("SELECT quote_ident($1)", &[role.into()])
        .or_raise()
        .unwrap_or_else(|| raise(Error::RoleUnknown));
    grant_api(&quoted, "buzz.relay_api()");
}

/// Grant `quoted` (an identifier) USAGE on `buzz` and EXECUTE on every function `lister` (an
/// SQL set-returning function) names. The lists live next to their declarations (src/api/)
/// and are read here through SQL, so this module needs nothing above it.
pub(crate) fn grant_api(quoted: &str, lister: &str) {
    Spi::run(&format!("GRANT USAGE ON SCHEMA buzz TO {quoted}")).or_raise();
    let api: Vec<String> = Spi::connect(|c| {
        // Only those that exist: this library also serves databases still on an older
        // version's SQL until ALTER EXTENSION UPDATE (whose script grants the new ones).
        c.select(&format!("SELECT f FROM {lister} f WHERE to_regprocedure(f) IS NOT NULL"), None, &[])?
            .map(|r| r.get::<String>(1))
            .collect::<Result<Vec<_>, _>>()
            .map(|v| v.into_iter().flatten().collect())
    })
    .or_raise();
    Spi::run(&format!("GRANT EXECUTE ON FUNCTION {} TO {quoted}", api.join(", "))).or_raise();
}
