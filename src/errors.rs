//! The error alphabet Σ_err (DESIGN §6): every message a client can see comes from this one
//! static catalog. Entries are fixed phrases; nothing is ever interpolated into them, so a
//! message cannot carry another community's ids, names or row values.

use pgrx::prelude::*;
use pgrx::PgSqlErrorCode as C;

macro_rules! catalog {
    ($($variant:ident = ($code:literal, $state:expr, $msg:literal),)*) => {
        /// One entry of the catalog. `Copy` so it can be returned from pure checks and raised later.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum Error { $($variant,)* }

        impl Error {
            pub const ALL: &'static [Error] = &[$(Error::$variant,)*];
            /// Stable machine-readable name (for docs and tests).
            pub fn code(self) -> &'static str { match self { $(Error::$variant => $code,)* } }
            /// The client-visible text: a NIP-01 prefix and a fixed phrase.
            pub fn message(self) -> &'static str { match self { $(Error::$variant => $msg,)* } }
            pub fn sqlstate(self) -> C { match self { $(Error::$variant => $state,)* } }
        }
    };
}

catalog! {
    // context and resolution
    HostUnknown        = ("host_unknown", C::ERRCODE_INSUFFICIENT_PRIVILEGE, "restricted: this relay does not serve that host"),
    HostMalformed      = ("host_malformed", C::ERRCODE_INVALID_PARAMETER_VALUE, "invalid: malformed host"),
    ContextConflict    = ("context_conflict", C::ERRCODE_INSUFFICIENT_PRIVILEGE, "restricted: this transaction already belongs to another community"),
    ContextMissing     = ("context_missing", C::ERRCODE_INSUFFICIENT_PRIVILEGE, "restricted: no community context; call buzz.enter first"),
    HoldCursor         = ("hold_cursor", C::ERRCODE_INSUFFICIENT_PRIVILEGE, "restricted: cursors WITH HOLD cannot be used in a community transaction"),
    ExplainAnalyze     = ("explain_analyze", C::ERRCODE_INSUFFICIENT_PRIVILEGE, "restricted: EXPLAIN ANALYZE of fenced tables is reserved to superusers and their owners"),
    LockTable          = ("lock_table", C::ERRCODE_INSUFFICIENT_PRIVILEGE, "restricted: shared tables cannot be locked explicitly"),
    AuthRequired       = ("auth_required", C::ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION, "auth-required: this action needs an authenticated session"),
    SessionInvalid     = ("session_invalid", C::ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION, "auth-required: invalid or expired session"),
    // event verification
    EventMalformed     = ("event_malformed", C::ERRCODE_INVALID_PARAMETER_VALUE, "invalid: malformed event"),
    EventNul           = ("event_nul", C::ERRCODE_INVALID_PARAMETER_VALUE, "invalid: event contains a NUL character"),
    EventBadId         = ("event_bad_id", C::ERRCODE_INVALID_PARAMETER_VALUE, "invalid: event id does not match its content"),
    EventBadSig        = ("event_bad_sig", C::ERRCODE_INVALID_PARAMETER_VALUE, "invalid: bad event signature"),
    HexMalformed       = ("hex_malformed", C::ERRCODE_INVALID_PARAMETER_VALUE, "invalid: malformed hex input"),
    PubkeyMalformed    = ("pubkey_malformed", C::ERRCODE_INVALID_PARAMETER_VALUE, "invalid: pubkey must be 64 lowercase hex characters"),
    // NIP-42
    AuthWrongKind      = ("auth_wrong_kind", C::ERRCODE_INVALID_PARAMETER_VALUE, "invalid: auth event must be kind 22242"),
    AuthChallengeTag   = ("auth_challenge_tag", C::ERRCODE_INVALID_PARAMETER_VALUE, "invalid: auth event needs exactly one challenge tag"),
    AuthChallenge      = ("auth_challenge", C::ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION, "auth-required: unknown, used or expired challenge"),
    AuthRelayTag       = ("auth_relay_tag", C::ERRCODE_INVALID_PARAMETER_VALUE, "invalid: auth event needs exactly one relay tag"),
    AuthRelayMismatch  = ("auth_relay_mismatch", C::ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION, "auth-required: auth event is for another relay"),
    AuthStale          = ("auth_stale", C::ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION, "auth-required: auth event created_at is outside the allowed window"),
    // NIP-98
    HttpWrongKind      = ("http_wrong_kind", C::ERRCODE_INVALID_PARAMETER_VALUE, "invalid: HTTP auth event must be kind 27235"),
    HttpUrlTag         = ("http_url_tag", C::ERRCODE_INVALID_PARAMETER_VALUE, "invalid: HTTP auth event needs exactly one u tag"),
    HttpUrlMismatch    = ("http_url_mismatch", C::ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION, "auth-required: HTTP auth event is for another URL"),
    HttpMethodTag      = ("http_method_tag", C::ERRCODE_INVALID_PARAMETER_VALUE, "invalid: HTTP auth event needs exactly one method tag"),
    HttpMethodMismatch = ("http_method_mismatch", C::ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION, "auth-required: HTTP auth event is for another method"),
    HttpPayloadMismatch = ("http_payload_mismatch", C::ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION, "auth-required: HTTP auth event does not match the request body"),
    HttpStale          = ("http_stale", C::ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION, "auth-required: HTTP auth event created_at is outside the allowed window"),
    HttpReplay         = ("http_replay", C::ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION, "auth-required: HTTP auth event was already used"),
    HttpClaimInTransaction = ("http_claim_in_transaction", C::ERRCODE_ACTIVE_SQL_TRANSACTION, "error: claim_http must run in its own transaction"),
    HttpReadOnly       = ("http_read_only", C::ERRCODE_READ_ONLY_SQL_TRANSACTION, "error: HTTP auth needs a writable transaction"),
    NotMember          = ("not_member", C::ERRCODE_INSUFFICIENT_PRIVILEGE, "restricted: not a member of this community"),
    Banned             = ("banned", C::ERRCODE_INSUFFICIENT_PRIVILEGE, "blocked: banned from this community"),
    // channels
    ChannelUnknown     = ("channel_unknown", C::ERRCODE_INSUFFICIENT_PRIVILEGE, "restricted: no such channel, or not permitted"),
    VisibilityInvalid  = ("visibility_invalid", C::ERRCODE_INVALID_PARAMETER_VALUE, "invalid: visibility must be open or private"),
    ChannelRoleInvalid = ("channel_role_invalid", C::ERRCODE_INVALID_PARAMETER_VALUE, "invalid: channel role must be admin or member"),
    NameInvalid        = ("name_invalid", C::ERRCODE_INVALID_PARAMETER_VALUE, "invalid: name must be 1 to 200 characters"),
    AuditAppendOnly    = ("audit_append_only", C::ERRCODE_INSUFFICIENT_PRIVILEGE, "restricted: the audit log is append-only"),
    Immutable          = ("immutable", C::ERRCODE_INSUFFICIENT_PRIVILEGE, "restricted: a row's community and id cannot change"),
    // operator API
    SlugInvalid        = ("slug_invalid", C::ERRCODE_INVALID_PARAMETER_VALUE, "invalid: slug must be 1 to 63 characters of a-z, 0-9 and -"),
    AdmissionInvalid   = ("admission_invalid", C::ERRCODE_INVALID_PARAMETER_VALUE, "invalid: admission must be open or allowlist"),
    MemberRoleInvalid  = ("member_role_invalid", C::ERRCODE_INVALID_PARAMETER_VALUE, "invalid: member role must be owner, admin or member"),
    CommunityUnknown   = ("community_unknown", C::ERRCODE_INVALID_PARAMETER_VALUE, "invalid: unknown community"),
    CommunityIdInvalid = ("community_id_invalid", C::ERRCODE_INVALID_PARAMETER_VALUE, "invalid: a community id must not be the nil uuid"),
    CommunityIdTaken   = ("community_id_taken", C::ERRCODE_UNIQUE_VIOLATION, "duplicate: community id already exists"),
    CommunityExists    = ("community_exists", C::ERRCODE_UNIQUE_VIOLATION, "duplicate: community slug already exists"),
    HostTaken          = ("host_taken", C::ERRCODE_UNIQUE_VIOLATION, "duplicate: host is already mapped"),
    RoleUnknown        = ("role_unknown", C::ERRCODE_INVALID_PARAMETER_VALUE, "invalid: unknown role"),
    RoleUnsafe         = ("role_unsafe", C::ERRCODE_INSUFFICIENT_PRIVILEGE, "restricted: role is unsafe for a relay (superuser, bypassrls, createrole, replication, file access, database owner, create rights, or owns or inherits tenant tables)"),
    // API tokens
    TokenCannotMint    = ("token_cannot_mint", C::ERRCODE_INSUFFICIENT_PRIVILEGE, "restricted: an API token cannot mint tokens"),
    TokenScopeInvalid  = ("token_scope_invalid", C::ERRCODE_INVALID_PARAMETER_VALUE, "invalid: scopes must be read and/or write"),
    TokenScope         = ("token_scope", C::ERRCODE_INSUFFICIENT_PRIVILEGE, "restricted: this token does not allow that"),
    TokenNameTaken     = ("token_name_taken", C::ERRCODE_UNIQUE_VIOLATION, "duplicate: a token with this name already exists"),
    TtlInvalid         = ("ttl_invalid", C::ERRCODE_INVALID_PARAMETER_VALUE, "invalid: ttl must be positive"),
    // NIP-43 member lists and community-signed system events
    MemberListKind     = ("member_list_kind", C::ERRCODE_INVALID_PARAMETER_VALUE, "invalid: member list must be kind 13534"),
    MemberListForeignKey = ("member_list_foreign_key", C::ERRCODE_INSUFFICIENT_PRIVILEGE, "restricted: member list is not signed by this community"),
    MemberListStale    = ("member_list_stale", C::ERRCODE_UNIQUE_VIOLATION, "duplicate: have a newer member list"),
    SigningKeyTaken    = ("signing_key_taken", C::ERRCODE_UNIQUE_VIOLATION, "duplicate: signing key belongs to another community"),
    SystemEventForeignKey = ("system_event_foreign_key", C::ERRCODE_INSUFFICIENT_PRIVILEGE, "restricted: only this community's key may publish this kind"),
    // publish
    WrongAuthor        = ("wrong_author", C::ERRCODE_INSUFFICIENT_PRIVILEGE, "restricted: event author is not the authenticated user"),
    ChannelAmbiguous   = ("channel_ambiguous", C::ERRCODE_INVALID_PARAMETER_VALUE, "invalid: event names more than one channel"),
    AuthKindRefused    = ("auth_kind_refused", C::ERRCODE_INVALID_PARAMETER_VALUE, "invalid: auth events cannot be published"),
    EventTooLarge      = ("event_too_large", C::ERRCODE_INVALID_PARAMETER_VALUE, "invalid: event is too large"),
    TooManyTags        = ("too_many_tags", C::ERRCODE_INVALID_PARAMETER_VALUE, "invalid: event has too many tags"),
    TagTooLong         = ("tag_too_long", C::ERRCODE_INVALID_PARAMETER_VALUE, "invalid: event tag is too long"),
    TooFarInFuture     = ("too_far_in_future", C::ERRCODE_INVALID_PARAMETER_VALUE, "invalid: event created_at is too far in the future"),
    ExpirationInvalid  = ("expiration_invalid", C::ERRCODE_INVALID_PARAMETER_VALUE, "invalid: malformed expiration tag"),
    Expired            = ("expired", C::ERRCODE_INVALID_PARAMETER_VALUE, "invalid: event has expired"),
    Duplicate          = ("duplicate", C::ERRCODE_UNIQUE_VIOLATION, "duplicate: already have this event"),
    Superseded         = ("superseded", C::ERRCODE_UNIQUE_VIOLATION, "duplicate: have a newer version of this event"),
    Deleted            = ("deleted", C::ERRCODE_INSUFFICIENT_PRIVILEGE, "blocked: event was deleted"),
    // req / count
    FilterInvalid      = ("filter_invalid", C::ERRCODE_INVALID_PARAMETER_VALUE, "invalid: malformed filter"),
    CursorInvalid      = ("cursor_invalid", C::ERRCODE_INVALID_PARAMETER_VALUE, "invalid: bad cursor"),
    FeedAfterWrite     = ("feed_after_write", C::ERRCODE_INVALID_TRANSACTION_STATE, "restricted: poll and cursor cannot follow a publish in one transaction"),
    TooManyFilters     = ("too_many_filters", C::ERRCODE_INVALID_PARAMETER_VALUE, "invalid: too many filters or filter values"),
    TooManyEvents      = ("too_many_events", C::ERRCODE_PROGRAM_LIMIT_EXCEEDED, "invalid: too many events in one call"),
    // tenant guard on the relay's own tables
    ForeignCommunity   = ("foreign_community", C::ERRCODE_INSUFFICIENT_PRIVILEGE, "restricted: rows can only be written in the entered community"),
    // operator: tenancy of the relay's own tables (the DETAIL names the object)
    TenancyNotTable    = ("tenancy_not_table", C::ERRCODE_WRONG_OBJECT_TYPE, "invalid: tenancy applies to ordinary and partitioned tables only"),
    TenancyOwnTable    = ("tenancy_own_table", C::ERRCODE_WRONG_OBJECT_TYPE, "invalid: the extension's own tables are managed by the extension"),
    TenancyPartition   = ("tenancy_partition", C::ERRCODE_WRONG_OBJECT_TYPE, "invalid: adopt the partitioned table, not one of its partitions"),
    TenancyNoColumn    = ("tenancy_no_column", C::ERRCODE_UNDEFINED_COLUMN, "invalid: table has no community_id column (pass add_column => true)"),
    TenancyColumnType  = ("tenancy_column_type", C::ERRCODE_DATATYPE_MISMATCH, "invalid: community_id must be of type uuid"),
    TenancyBackfill    = ("tenancy_backfill", C::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE, "invalid: table has rows without a community (pass backfill => a community slug)"),
    TenancyGlobal      = ("tenancy_global", C::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE, "invalid: table is declared global"),
    TenancyTenant      = ("tenancy_tenant", C::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE, "invalid: table is tenant; disable tenancy first"),
    TenancyForeignRef  = ("tenancy_foreign_ref", C::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE, "invalid: a table that is not tenant references a key that must become composite; adopt it first"),
    TenancyRefKey      = ("tenancy_ref_key", C::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE, "invalid: a referenced tenant table has no composite key yet; rewrite its keys first"),
    TenancyExclusion   = ("tenancy_exclusion", C::ERRCODE_FEATURE_NOT_SUPPORTED, "invalid: an exclusion constraint without community_id cannot be rewritten; add community_id to it by hand"),
    TenancyFkAction    = ("tenancy_fk_action", C::ERRCODE_FEATURE_NOT_SUPPORTED, "invalid: ON UPDATE SET NULL or SET DEFAULT would change community_id; change the foreign key first"),
    TenancyInherits    = ("tenancy_inherits", C::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE, "invalid: a tenant table may inherit only from tenant tables; adopt the parent first"),
    TenancyDeclared    = ("tenancy_declared", C::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE, "invalid: table is declared a log or operator-only; disable tenancy first"),
    TenancyPrivilege   = ("tenancy_privilege", C::ERRCODE_INSUFFICIENT_PRIVILEGE, "invalid: the caller lacks a privilege this needs"),
    NotifyRefused      = ("notify_refused", C::ERRCODE_INSUFFICIENT_PRIVILEGE, "restricted: NOTIFY is not available in a community transaction"),
    TenancyLogKey      = ("tenancy_log_key", C::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE, "invalid: a relay-written log's unique keys must include community_id and no shared-sequence column (pass rewrite_keys and per_community_ids)"),
    TenancyKeyShape    = ("tenancy_key_shape", C::ERRCODE_FEATURE_NOT_SUPPORTED, "invalid: unique key of an unexpected form cannot be rewritten"),
    ReasonRequired     = ("reason_required", C::ERRCODE_INVALID_PARAMETER_VALUE, "invalid: declaring a table global needs a reason"),
    GlobalRefsTenant   = ("global_refs_tenant", C::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE, "invalid: a global table cannot reference a tenant table"),
    NonConforming      = ("nonconforming", C::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE, "error: deployment does not conform"),
    // what the sanitizer (src/sanitize.rs) shows instead of a raw error of the relay's own SQL
    SqlUnique          = ("sql_unique", C::ERRCODE_UNIQUE_VIOLATION, "duplicate: a row with this key already exists"),
    SqlForeignKey      = ("sql_foreign_key", C::ERRCODE_FOREIGN_KEY_VIOLATION, "invalid: referenced row does not exist or is still referenced"),
    SqlNotNull         = ("sql_not_null", C::ERRCODE_NOT_NULL_VIOLATION, "invalid: a required value is missing"),
    SqlCheck           = ("sql_check", C::ERRCODE_CHECK_VIOLATION, "invalid: a value is not allowed"),
    SqlConstraint      = ("sql_constraint", C::ERRCODE_INTEGRITY_CONSTRAINT_VIOLATION, "invalid: constraint violated"),
    SqlData            = ("sql_data", C::ERRCODE_DATA_EXCEPTION, "invalid: bad value"),
    SqlDenied          = ("sql_denied", C::ERRCODE_INSUFFICIENT_PRIVILEGE, "restricted: not permitted"),
    SqlStatement       = ("sql_statement", C::ERRCODE_SYNTAX_ERROR_OR_ACCESS_RULE_VIOLATION, "error: statement failed"),
    SqlRetry           = ("sql_retry", C::ERRCODE_T_R_SERIALIZATION_FAILURE, "error: transaction conflict, retry"),
    SqlCanceled        = ("sql_canceled", C::ERRCODE_QUERY_CANCELED, "error: statement canceled"),
    Internal           = ("internal", C::ERRCODE_INTERNAL_ERROR, "error: internal error"),
    ReadOnly           = ("read_only", C::ERRCODE_READ_ONLY_SQL_TRANSACTION, "error: this server or transaction is read-only"),
    // Never raised by the extension: what a relay front end says about its transport, kept
    // here so that every client-visible message is in one catalog (relay/ looks them up).
    MessageInvalid     = ("message_invalid", C::ERRCODE_INVALID_PARAMETER_VALUE, "invalid: malformed message"),
    FrameTooLarge      = ("frame_too_large", C::ERRCODE_PROGRAM_LIMIT_EXCEEDED, "frame-too-large: message is too large"),
    TooManySubs        = ("too_many_subscriptions", C::ERRCODE_PROGRAM_LIMIT_EXCEEDED, "rate-limited: too many open subscriptions"),
    TooManyAuthFailures = ("too_many_auth_failures", C::ERRCODE_PROGRAM_LIMIT_EXCEEDED, "rate-limited: too many failed AUTH attempts"),
    TooManyLogins      = ("too_many_logins", C::ERRCODE_PROGRAM_LIMIT_EXCEEDED, "rate-limited: too many logins on this connection"),
    TooBusy            = ("too_busy", C::ERRCODE_PROGRAM_LIMIT_EXCEEDED, "rate-limited: too many requests from this address; slow down"),
    RelayUnavailable   = ("relay_unavailable", C::ERRCODE_CONNECTION_FAILURE, "error: the relay cannot reach its database; try again"),
    RelayShutdown      = ("relay_shutdown", C::ERRCODE_ADMIN_SHUTDOWN, "error: the relay is shutting down"),
}

/// Raise `e` as a PostgreSQL ERROR with its catalog text and SQLSTATE.
pub fn raise(e: Error) -> ! {
    ereport!(ERROR, e.sqlstate(), e.message());
}

/// Raise `e` with an operator-facing DETAIL (object names): only for operator functions, never
/// on a path a relay reaches.
pub fn raise_detail(e: Error, detail: &str) -> ! {
    ereport!(ERROR, e.sqlstate(), e.message(), detail);
}

/// The catalog entry whose message is exactly `msg`, or `msg` with an incident id appended.
pub fn by_message(msg: &[u8]) -> Option<Error> {
    let bare = strip_incident(msg).unwrap_or(msg);
    Error::ALL.iter().copied().find(|e| e.message().as_bytes() == bare)
}

/// `msg` without a trailing ` (incident <16 hex>)`, if it has one.
fn strip_incident(msg: &[u8]) -> Option<&[u8]> {
    let (head, tail) = msg.split_at(msg.len().checked_sub(" (incident 0123456789abcdef)".len())?);
    let id = tail.strip_prefix(b" (incident ")?.strip_suffix(b")")?;
    (id.len() == 16 && id.iter().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b))).then_some(head)
}

/// Unwrap a catalog result or raise it.
pub trait OrRaise<T> {
    fn or_raise(self) -> T;
}

impl<T> OrRaise<T> for Result<T, Error> {
    fn or_raise(self) -> T {
        self.unwrap_or_else(|e| raise(e))
    }
}

/// Raise `e` with an incident id appended (`error: internal error (incident 0123…)`): the raw
/// detail went to the server log under that id (`incident.rs`).
pub fn raise_incident(e: Error, incident: &str) -> ! {
    ereport!(ERROR, e.sqlstate(), format!("{} (incident {incident})", e.message()));
}

/// `buzz.error_catalog` (declared in src/api/helpers.rs).
pub(crate) fn error_catalog() -> TableIterator<'static, (name!(code, &'static str), name!(sqlstate, String), name!(message, &'static str))> {
    TableIterator::new(Error::ALL.iter().map(|e| {
        let state = sqlstate_text(e.sqlstate() as i32);
        (e.code(), state, e.message())
    }))
}

/// The five-character SQLSTATE of PostgreSQL's packed code (6 bits per character).
pub fn sqlstate_text(code: i32) -> String {
    let mut v = code;
    let mut s = String::with_capacity(5);
    for _ in 0..5 {
        s.push((((v & 0x3F) as u8) + b'0') as char);
        v >>= 6;
    }
    s
}
