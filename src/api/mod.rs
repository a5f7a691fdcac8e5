//! The SQL surface: every `#[pg_extern]` of the extension, grouped by who may call it. The
//! functions here only declare (markers, `search_path`, arguments) and call into the modules
//! that do the work, which never declare SQL themselves.

pub mod helpers;
pub mod operator;
pub mod relay;
pub mod tenancy;
pub mod worker;

/// Granted to PUBLIC (finalize.sql): context readers that policies on relay tables call as the
/// querying role, and pure helpers. Every kind of role may execute them.
pub const PUBLIC_API: &[&str] = &[
    "buzz.current_community()",
    "buzz.current_actor()",
    "buzz.current_scopes()",
    "buzz.current_worker()",
    "buzz.error_catalog()",
    "buzz.event_id(text)",
    "buzz.verify_event(text)",
    "buzz.schnorr_verify(text, text, text)",
    "buzz.normalize_host(text)",
];
