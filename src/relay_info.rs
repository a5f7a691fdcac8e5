//! `buzz.relay_info(host)`: the NIP-11 relay information document for one host (C2.4).
//!
//! A host-less, unauthenticated surface: it is built from the static settings and the public
//! fields of the one community the host serves (name, signing pubkey) — never a
//! count, and nothing about any other community. An unmapped or malformed host gets NULL.

use serde_json::json;

use crate::errors::OrRaise;
use crate::gucs;
use crate::resolve;

/// NIPs the extension implements for a relay built on it.
const SUPPORTED_NIPS: &[u32] = &[1, 9, 11, 40, 42, 45, 98];

pub(crate) fn relay_info(host: Option<&str>) -> Option<pgrx::JsonB> {
    crate::incident::guard(|| {
        let (community, _) = resolve::try_community_for_host(host?)?;
        let row = crate::spi_cache::read_query(
            "SELECT name, signing_pubkey FROM buzz.communities WHERE id = $1",
            &[community.into()],
            |rows| {
                let row = rows.first();
                Ok((row.get::<String>(1)?, row.get::<String>(2)?))
            },
        )
        .or_raise();
        let (Some(name), pubkey) = row else { return None };
        let mut doc = json!({
            "name": name,
            "supported_nips": SUPPORTED_NIPS,
            "software": "buzz_tenancy",
            "version": env!("CARGO_PKG_VERSION"),
            "limitation": {
                "max_message_length": gucs::MAX_EVENT_SIZE.get(),
                "max_event_tags": gucs::MAX_TAGS.get(),
                "max_limit": gucs::MAX_LIMIT.get(),
                "default_limit": gucs::MAX_LIMIT.get(),
                "created_at_upper_limit": gucs::MAX_FUTURE.get(),
                // Reads need an authenticated member in every community (req, count, poll);
                // in an open one, authenticating makes the member.
                "auth_required": true,
                "restricted_writes": true,
                "payment_required": false,
            },
        });
        if let Some(pk) = pubkey {
            doc["pubkey"] = json!(pk);
        }
        Some(pgrx::JsonB(doc))
    })
}
