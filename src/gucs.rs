//! Every setting of the extension. All are `Suset` (DESIGN §12.6): a relay role that could
//! `SET LOCAL` a year-long auth window or session lifetime would defeat replay protection.

use pgrx::{GucContext, GucFlags, GucRegistry, GucSetting};

/// Seconds an auth event's `created_at` may differ from the server clock (NIP-42).
pub static AUTH_WINDOW: GucSetting<i32> = GucSetting::<i32>::new(600);
/// Seconds a NIP-98 event's `created_at` may differ from the server clock; its seen-set
/// entry is kept for twice this.
pub static HTTP_AUTH_WINDOW: GucSetting<i32> = GucSetting::<i32>::new(60);
/// Longest lifetime of an API token, in seconds (also the default).
pub static TOKEN_MAX_TTL: GucSetting<i32> = GucSetting::<i32>::new(90 * 86_400);
/// Seconds a NIP-42 challenge stays usable.
pub static CHALLENGE_TTL: GucSetting<i32> = GucSetting::<i32>::new(600);
/// Seconds a session token stays valid.
pub static SESSION_TTL: GucSetting<i32> = GucSetting::<i32>::new(86_400);

/// Largest accepted event, in bytes of its JSON text.
pub static MAX_EVENT_SIZE: GucSetting<i32> = GucSetting::<i32>::new(65_536);
/// Most tags an event may carry.
pub static MAX_TAGS: GucSetting<i32> = GucSetting::<i32>::new(2_000);
/// Longest tag element, in bytes (indexed tag values must fit a btree entry).
pub static MAX_TAG_LENGTH: GucSetting<i32> = GucSetting::<i32>::new(1_024);
/// How far in the future an event's created_at may be, in seconds.
pub static MAX_FUTURE: GucSetting<i32> = GucSetting::<i32>::new(900);
/// Upper bound of a filter's `limit` (also the limit of a filter without one).
pub static MAX_LIMIT: GucSetting<i32> = GucSetting::<i32>::new(500);
/// Most filters in one request, and most values in one filter field.
pub static MAX_FILTERS: GucSetting<i32> = GucSetting::<i32>::new(20);
pub static MAX_FILTER_VALUES: GucSetting<i32> = GucSetting::<i32>::new(1_000);
/// How long an ephemeral event (kinds 20000-29999) stays deliverable to live subscribers.
pub static EPHEMERAL_RETENTION: GucSetting<i32> = GucSetting::<i32>::new(60);

fn int_setting(name: &'static std::ffi::CStr, short: &'static std::ffi::CStr, setting: &'static GucSetting<i32>, min: i32, max: i32, flags: GucFlags) {
    GucRegistry::define_int_guc(name, short, c"Superuser-only, like every buzz_tenancy setting.", setting, min, max, GucContext::Suset, flags);
}

pub fn init() {
    int_setting(c"buzz_tenancy.max_event_size", c"Largest accepted event, in bytes of JSON.", &MAX_EVENT_SIZE, 1_024, 16 << 20, GucFlags::UNIT_BYTE);
    int_setting(c"buzz_tenancy.max_tags", c"Most tags an event may carry.", &MAX_TAGS, 1, 100_000, GucFlags::empty());
    int_setting(c"buzz_tenancy.max_tag_length", c"Longest tag element, in bytes.", &MAX_TAG_LENGTH, 64, 2_048, GucFlags::UNIT_BYTE);
    int_setting(c"buzz_tenancy.max_future", c"How far in the future created_at may be, in seconds.", &MAX_FUTURE, 0, 86_400, GucFlags::UNIT_S);
    int_setting(c"buzz_tenancy.max_limit", c"Cap on a filter's limit.", &MAX_LIMIT, 1, 100_000, GucFlags::empty());
    int_setting(c"buzz_tenancy.max_filters", c"Most filters in one req/count.", &MAX_FILTERS, 1, 1_000, GucFlags::empty());
    int_setting(c"buzz_tenancy.http_auth_window", c"Allowed clock skew, in seconds, for a NIP-98 event's created_at.", &HTTP_AUTH_WINDOW, 1, 600, GucFlags::UNIT_S);
    int_setting(c"buzz_tenancy.token_max_ttl", c"Longest (and default) lifetime of an API token, in seconds.", &TOKEN_MAX_TTL, 60, 366 * 86_400, GucFlags::UNIT_S);
    int_setting(c"buzz_tenancy.max_filter_values", c"Most values in one filter field.", &MAX_FILTER_VALUES, 1, 100_000, GucFlags::empty());
    int_setting(c"buzz_tenancy.ephemeral_retention", c"How long, in seconds, an ephemeral event stays deliverable to poll.", &EPHEMERAL_RETENTION, 1, 3_600, GucFlags::UNIT_S);
    GucRegistry::define_int_guc(
        c"buzz_tenancy.auth_window",
        c"Allowed clock skew, in seconds, for a NIP-42 auth event's created_at.",
        c"Auth events older or newer than this are refused.",
        &AUTH_WINDOW,
        1,
        3_600,
        GucContext::Suset,
        GucFlags::UNIT_S,
    );
    GucRegistry::define_int_guc(
        c"buzz_tenancy.challenge_ttl",
        c"Lifetime, in seconds, of a NIP-42 challenge.",
        c"A challenge is single-use and expires after this many seconds.",
        &CHALLENGE_TTL,
        1,
        3_600,
        GucContext::Suset,
        GucFlags::UNIT_S,
    );
    GucRegistry::define_int_guc(
        c"buzz_tenancy.session_ttl",
        c"Lifetime, in seconds, of a session token minted by buzz.authenticate.",
        c"Tokens are stored only as SHA-256 hashes and expire after this many seconds.",
        &SESSION_TTL,
        60,
        30 * 86_400,
        GucContext::Suset,
        GucFlags::UNIT_S,
    );
}
