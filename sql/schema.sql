-- buzz_tenancy schema (bootstrap). Every tenant table carries community_id, every key and
-- foreign key leads with it, and all tables belong to the NOLOGIN, NOBYPASSRLS role
-- buzz_owner so that even the extension's own SECURITY DEFINER code is fenced by RLS.

-- Refuse to install into a schema somebody prepared: objects, or CREATE rights, planted
-- there beforehand could otherwise end up running as (or next to) the owner role.
-- (pg_restore pre-creates the schema owned by buzz_owner, empty: that is fine.)
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_class WHERE relnamespace = 'buzz'::regnamespace)
       OR EXISTS (SELECT 1 FROM pg_proc WHERE pronamespace = 'buzz'::regnamespace)
       OR EXISTS (SELECT 1 FROM pg_type WHERE typnamespace = 'buzz'::regnamespace)
    THEN
        RAISE EXCEPTION 'buzz_tenancy: schema buzz already holds objects; install into a fresh schema';
    END IF;
    IF EXISTS (SELECT 1 FROM pg_namespace n JOIN pg_roles r ON r.oid = n.nspowner
                WHERE n.nspname = 'buzz' AND NOT r.rolsuper AND r.rolname <> 'buzz_owner')
       OR EXISTS (SELECT 1 FROM pg_namespace n, aclexplode(n.nspacl) a
                   WHERE n.nspname = 'buzz' AND a.privilege_type = 'CREATE' AND a.grantee <> n.nspowner)
    THEN
        RAISE EXCEPTION 'buzz_tenancy: schema buzz is owned by, or grants CREATE to, an untrusted role';
    END IF;
    IF EXISTS (SELECT 1 FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.roleid WHERE r.rolname = 'buzz_owner') THEN
        RAISE EXCEPTION 'buzz_tenancy: role buzz_owner has members; nobody may be a member of it';
    END IF;
END
$$;

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'buzz_owner') THEN
        CREATE ROLE buzz_owner NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'buzz_admin') THEN
        CREATE ROLE buzz_admin NOLOGIN;
    END IF;
END
$$;
-- Whatever existed before, the owner must be unable to bypass RLS.
ALTER ROLE buzz_owner NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEROLE NOCREATEDB NOREPLICATION;
ALTER ROLE buzz_admin NOSUPERUSER NOBYPASSRLS;

-- Operator-global registry: which communities exist, and which host serves which.
CREATE TABLE communities (
    id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    slug           text NOT NULL UNIQUE,
    name           text NOT NULL,
    admission      text NOT NULL CHECK (admission IN ('open', 'allowlist')),
    signing_pubkey text CHECK (signing_pubkey ~ '^[0-9a-f]{64}$'),
    -- Random per community: keys its delivery cursors and names its wake-up channel
    -- (src/store/delivery.rs). 244 random bits.
    delivery_key   bytea NOT NULL DEFAULT uuid_send(gen_random_uuid()) || uuid_send(gen_random_uuid()),
    created_at     timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE community_hosts (
    host         text PRIMARY KEY,
    community_id uuid NOT NULL REFERENCES communities (id) ON DELETE CASCADE,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX community_hosts_community ON community_hosts (community_id);

-- Tenant tables.
CREATE TABLE members (
    community_id uuid NOT NULL REFERENCES communities (id) ON DELETE CASCADE,
    pubkey       text NOT NULL CHECK (pubkey ~ '^[0-9a-f]{64}$'),
    role         text NOT NULL CHECK (role IN ('owner', 'admin', 'member')),
    source       text NOT NULL CHECK (source IN ('admin', 'nip43', 'open-auth')),
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (community_id, pubkey)
);

-- Pubkeys revoked from an open community; open AUTH refuses them.
CREATE TABLE bans (
    community_id uuid NOT NULL REFERENCES communities (id) ON DELETE CASCADE,
    pubkey       text NOT NULL CHECK (pubkey ~ '^[0-9a-f]{64}$'),
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (community_id, pubkey)
);

CREATE TABLE channels (
    community_id uuid NOT NULL REFERENCES communities (id) ON DELETE CASCADE,
    id           uuid NOT NULL DEFAULT gen_random_uuid(),
    name         text NOT NULL,
    visibility   text NOT NULL CHECK (visibility IN ('open', 'private')),
    created_by   text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (community_id, id)
);

-- Composite foreign keys: membership of a channel without admission to the *same*
-- community is impossible by construction (I5), and revocation cascades.
CREATE TABLE channel_members (
    community_id uuid NOT NULL,
    channel_id   uuid NOT NULL,
    pubkey       text NOT NULL,
    role         text NOT NULL CHECK (role IN ('admin', 'member')),
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (community_id, channel_id, pubkey),
    FOREIGN KEY (community_id, channel_id) REFERENCES channels (community_id, id) ON DELETE CASCADE,
    FOREIGN KEY (community_id, pubkey) REFERENCES members (community_id, pubkey) ON DELETE CASCADE
);
CREATE INDEX channel_members_pubkey ON channel_members (community_id, pubkey);

CREATE TABLE challenges (
    community_id uuid NOT NULL REFERENCES communities (id) ON DELETE CASCADE,
    challenge    text NOT NULL,
    expires_at   timestamptz NOT NULL,
    PRIMARY KEY (community_id, challenge)
);

-- The key NIP-42 challenges are sealed with (src/auth/challenge.rs): one row, made here from
-- PostgreSQL's strong random source, readable by the owner only. pg_dump leaves it out
-- (finalize.sql): a restored database makes its own, and refuses the few minutes' worth of
-- challenges issued before.
CREATE TABLE challenge_key (
    one boolean PRIMARY KEY DEFAULT true CHECK (one),
    key bytea NOT NULL CHECK (length(key) = 32)
);
INSERT INTO challenge_key (key)
SELECT sha256(uuid_send(gen_random_uuid()) || uuid_send(gen_random_uuid()) || uuid_send(gen_random_uuid()) || uuid_send(gen_random_uuid()));

-- Sessions hang off a membership: revoking the member ends them.
CREATE TABLE sessions (
    community_id uuid NOT NULL,
    token_hash   bytea NOT NULL CHECK (length(token_hash) = 32),
    pubkey       text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    PRIMARY KEY (community_id, token_hash),
    FOREIGN KEY (community_id, pubkey) REFERENCES members (community_id, pubkey) ON DELETE CASCADE
);
CREATE INDEX sessions_pubkey ON sessions (community_id, pubkey);
-- Expired sessions are swept at each login (src/auth/sessions.rs).
CREATE INDEX sessions_expiry ON sessions (community_id, expires_at);

-- A row's community (and the key columns named as trigger arguments) never change, for
-- anyone, superusers included: nobody can re-tenant a channel or a membership. A C trigger
-- (src/retenant.rs): it fires on every update of these tables, one per published event.
CREATE FUNCTION forbid_retenant() RETURNS trigger
LANGUAGE c AS 'MODULE_PATHNAME', 'forbid_retenant';
COMMENT ON FUNCTION forbid_retenant() IS 'Trigger: refuses any UPDATE that changes community_id or the listed key columns.';

CREATE TRIGGER immutable_tenant BEFORE UPDATE ON members FOR EACH ROW EXECUTE FUNCTION forbid_retenant('pubkey');
CREATE TRIGGER immutable_tenant BEFORE UPDATE ON bans FOR EACH ROW EXECUTE FUNCTION forbid_retenant('pubkey');
CREATE TRIGGER immutable_tenant BEFORE UPDATE ON channels FOR EACH ROW EXECUTE FUNCTION forbid_retenant('id');
CREATE TRIGGER immutable_tenant BEFORE UPDATE ON channel_members FOR EACH ROW EXECUTE FUNCTION forbid_retenant('channel_id', 'pubkey');
CREATE TRIGGER immutable_tenant BEFORE UPDATE ON challenges FOR EACH ROW EXECUTE FUNCTION forbid_retenant('challenge');
CREATE TRIGGER immutable_tenant BEFORE UPDATE ON sessions FOR EACH ROW EXECUTE FUNCTION forbid_retenant('token_hash', 'pubkey');
CREATE TRIGGER immutable_host BEFORE UPDATE ON community_hosts FOR EACH ROW EXECUTE FUNCTION forbid_retenant('host');

-- Every change to the host map invalidates every backend's host cache (DESIGN §12.8).
CREATE FUNCTION host_map_changed() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM buzz.invalidate_host_cache();
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION host_map_changed() IS 'Trigger: queue a host-cache invalidation for every backend.';
CREATE TRIGGER host_cache AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON community_hosts
    FOR EACH STATEMENT EXECUTE FUNCTION host_map_changed();
-- ALWAYS: changes made with session_replication_role = replica (a restore, a replication
-- tool) must empty the caches too (a logical replication subscriber's apply fires no statement
-- triggers: src/relcache_watch.rs turns the caches off for tables a subscription writes). The
-- same for the triggers below.
ALTER TABLE community_hosts ENABLE ALWAYS TRIGGER host_cache;

-- Every change that could end a session (an UPDATE, DELETE or TRUNCATE of sessions or of
-- members: end_session, revocation, a member list) empties every backend's session cache
-- (src/auth/sessions.rs) before its next transaction. New rows need nothing: no cache has them.
CREATE FUNCTION sessions_changed() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM buzz.invalidate_session_cache();
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION sessions_changed() IS 'Trigger: queue a session-cache invalidation for every backend.';
CREATE TRIGGER session_cache AFTER UPDATE OR TRUNCATE ON sessions
    FOR EACH STATEMENT EXECUTE FUNCTION sessions_changed();
ALTER TABLE sessions ENABLE ALWAYS TRIGGER session_cache;
-- A DELETE only matters if it took a session that had not expired yet (each login sweeps the
-- expired ones: that must not empty every cache).
CREATE FUNCTION sessions_deleted() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM gone WHERE expires_at > clock_timestamp()) THEN
        PERFORM buzz.invalidate_session_cache();
    END IF;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION sessions_deleted() IS 'Trigger: queue a session-cache invalidation for every backend when a live session is deleted.';
CREATE TRIGGER session_cache_delete AFTER DELETE ON sessions REFERENCING OLD TABLE AS gone
    FOR EACH STATEMENT EXECUTE FUNCTION sessions_deleted();
ALTER TABLE sessions ENABLE ALWAYS TRIGGER session_cache_delete;
CREATE TRIGGER session_cache AFTER UPDATE OR DELETE OR TRUNCATE ON members
    FOR EACH STATEMENT EXECUTE FUNCTION sessions_changed();
ALTER TABLE members ENABLE ALWAYS TRIGGER session_cache;

-- Every change to what a member may read (channels, channel members, members) empties every
-- backend's readable-channels cache (src/store/readable.rs) before its next statement.
CREATE FUNCTION readers_changed() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM buzz.invalidate_reader_cache();
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION readers_changed() IS 'Trigger: queue a readable-channels cache invalidation for every backend.';
CREATE TRIGGER reader_cache AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON channels
    FOR EACH STATEMENT EXECUTE FUNCTION readers_changed();
ALTER TABLE channels ENABLE ALWAYS TRIGGER reader_cache;
CREATE TRIGGER reader_cache AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON channel_members
    FOR EACH STATEMENT EXECUTE FUNCTION readers_changed();
ALTER TABLE channel_members ENABLE ALWAYS TRIGGER reader_cache;
CREATE TRIGGER reader_cache AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON members
    FOR EACH STATEMENT EXECUTE FUNCTION readers_changed();
ALTER TABLE members ENABLE ALWAYS TRIGGER reader_cache;

-- The canonical event log. `event` is the event's exact NIP-01 JSON as served by buzz.req;
-- the other columns are projections of it for filtering. d_tag is '' for replaceable kinds,
-- the d value for addressable kinds and NULL otherwise, so one partial unique index keeps one
-- head per (community, pubkey, kind, d).
CREATE TABLE events (
    community_id uuid NOT NULL REFERENCES communities (id) ON DELETE CASCADE,
    id           text NOT NULL,
    pubkey       text NOT NULL,
    created_at   bigint NOT NULL,
    kind         integer NOT NULL,
    channel_id   uuid,
    d_tag        text,
    expires_at   bigint,
    event        jsonb NOT NULL,
    -- Delivery order within the community, which is commit order (src/store/delivery.rs).
    position     bigint NOT NULL,
    PRIMARY KEY (community_id, id),
    -- An event can only name a channel of its own community (P-RESOLVE / I2).
    FOREIGN KEY (community_id, channel_id) REFERENCES channels (community_id, id) ON DELETE CASCADE
);
CREATE UNIQUE INDEX events_head ON events (community_id, pubkey, kind, d_tag) WHERE d_tag IS NOT NULL;
CREATE INDEX events_time ON events (community_id, created_at DESC, id);
CREATE UNIQUE INDEX events_position ON events (community_id, position);
CREATE INDEX events_author_kind ON events (community_id, pubkey, kind, created_at DESC);
CREATE INDEX events_kind ON events (community_id, kind, created_at DESC);
CREATE INDEX events_channel ON events (community_id, channel_id, created_at DESC) WHERE channel_id IS NOT NULL;

-- Single-letter tags, for #x filters: a btree because jsonb operators are not LEAKPROOF and
-- could not use an index under RLS. Each row carries its event's community (L2).
CREATE TABLE event_tags (
    community_id uuid NOT NULL,
    event_id     text NOT NULL,
    name         text NOT NULL,
    value        text NOT NULL,
    created_at   bigint NOT NULL,
    PRIMARY KEY (community_id, name, value, created_at, event_id),
    FOREIGN KEY (community_id, event_id) REFERENCES events (community_id, id) ON DELETE CASCADE
);
CREATE INDEX event_tags_event ON event_tags (community_id, event_id);

-- NIP-09 tombstones: (community, author, id), created only by a kind 5 of that author
-- (DESIGN §12.10); and deleted coordinates of the deleter's own replaceable events.
CREATE TABLE deleted_events (
    community_id uuid NOT NULL REFERENCES communities (id) ON DELETE CASCADE,
    pubkey       text NOT NULL,
    event_id     text NOT NULL,
    PRIMARY KEY (community_id, event_id, pubkey)
);
CREATE TABLE deleted_coords (
    community_id uuid NOT NULL REFERENCES communities (id) ON DELETE CASCADE,
    pubkey       text NOT NULL,
    kind         integer NOT NULL,
    d_tag        text NOT NULL,
    until        bigint NOT NULL,
    PRIMARY KEY (community_id, pubkey, kind, d_tag)
);

-- Ephemeral events (kinds 20000-29999): never in req or count, delivered by poll to live
-- subscribers of their community for buzz_tenancy.ephemeral_retention seconds, then purged
-- (each ephemeral publish purges its community's expired rows). Positions are shared with
-- events (one delivery order per community).
CREATE TABLE ephemeral_events (
    community_id uuid NOT NULL REFERENCES communities (id) ON DELETE CASCADE,
    position     bigint NOT NULL,
    id           text NOT NULL,
    pubkey       text NOT NULL,
    created_at   bigint NOT NULL,
    kind         integer NOT NULL,
    channel_id   uuid,
    expires_at   bigint,
    event        jsonb NOT NULL,
    stored_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (community_id, position),
    UNIQUE (community_id, id),
    FOREIGN KEY (community_id, channel_id) REFERENCES channels (community_id, id) ON DELETE CASCADE
);
CREATE INDEX ephemeral_events_stored ON ephemeral_events (community_id, stored_at);
CREATE TRIGGER immutable_tenant BEFORE UPDATE ON ephemeral_events FOR EACH ROW EXECUTE FUNCTION forbid_retenant('id', 'position');

CREATE TRIGGER immutable_tenant BEFORE UPDATE ON events FOR EACH ROW EXECUTE FUNCTION forbid_retenant('id', 'channel_id');
CREATE TRIGGER immutable_tenant BEFORE UPDATE ON event_tags FOR EACH ROW EXECUTE FUNCTION forbid_retenant('event_id');
CREATE TRIGGER immutable_tenant BEFORE UPDATE ON deleted_events FOR EACH ROW EXECUTE FUNCTION forbid_retenant('event_id', 'pubkey');
CREATE TRIGGER immutable_tenant BEFORE UPDATE ON deleted_coords FOR EACH ROW EXECUTE FUNCTION forbid_retenant('pubkey');

-- Tenancy of the relay's own tables (src/tenancy/). The registry says what each relay table
-- is; buzz.conformance() reads it. Only the parent of a partitioned table is registered: its
-- partitions share its mode.
--   tenant    fenced by community (enable_tenancy)
--   global    deliberately shared by every community, with a reason (declare_global); the
--             relay may read it unless it carries community_id
--   log       operator-global, written by the relay: it may INSERT rows of the entered
--             community only, and may not read (declare_log)
--   operator  for operators only: the relay holds no privilege on it, so it may keep foreign
--             keys into tenant tables (declare_operator_only)
CREATE TABLE tenancy_tables (
    tbl              regclass PRIMARY KEY,
    mode             text NOT NULL CHECK (mode IN ('tenant', 'global', 'log', 'operator')),
    reason           text,
    anonymous_writes boolean NOT NULL DEFAULT false,
    worker_writes    boolean NOT NULL DEFAULT false,
    registered_at    timestamptz NOT NULL DEFAULT now(),
    registered_by    name NOT NULL DEFAULT current_user,
    CHECK (mode = 'tenant' OR (reason IS NOT NULL AND btrim(reason) <> ''))
);

-- Row guard of every adopted table (trigger buzz_tenant_guard): an INSERT naming another
-- community than the entered one is refused (RLS would refuse it too, but not for a
-- superuser), and community_id never changes, for anyone.
CREATE FUNCTION tenant_guard() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    cur uuid;
BEGIN
    IF TG_OP = 'UPDATE' THEN
        IF NEW.community_id IS DISTINCT FROM OLD.community_id THEN
            -- Catalog entry "immutable".
            RAISE EXCEPTION USING ERRCODE = '42501',
                MESSAGE = 'restricted: a row''s community and id cannot change';
        END IF;
    ELSE
        cur := buzz.current_community();
        IF cur IS NOT NULL AND NEW.community_id IS DISTINCT FROM cur THEN
            -- Catalog entry "foreign_community".
            RAISE EXCEPTION USING ERRCODE = '42501',
                MESSAGE = 'restricted: rows can only be written in the entered community';
        END IF;
    END IF;
    RETURN NEW;
END
$$;
COMMENT ON FUNCTION tenant_guard() IS 'Trigger of adopted tables: inserts only into the entered community; community_id never changes.';

-- Row guard of relay-written log tables (declare_log, trigger buzz_log_guard): the relay adds
-- rows only for the community it entered; outside a context only an operator (a superuser or
-- a member of buzz_admin) may add rows; community_id never changes.
CREATE FUNCTION log_guard() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    cur uuid;
BEGIN
    IF TG_OP = 'UPDATE' THEN
        IF NEW.community_id IS DISTINCT FROM OLD.community_id THEN
            RAISE EXCEPTION USING ERRCODE = '42501',
                MESSAGE = 'restricted: a row''s community and id cannot change';
        END IF;
        RETURN NEW;
    END IF;
    cur := buzz.current_community();
    IF cur IS NULL THEN
        IF NOT (current_setting('is_superuser')::boolean OR pg_has_role(current_user, 'buzz_admin', 'USAGE')) THEN
            -- Catalog entry "context_missing".
            RAISE EXCEPTION USING ERRCODE = '42501',
                MESSAGE = 'restricted: no community context; call buzz.enter first';
        END IF;
    ELSIF NEW.community_id IS DISTINCT FROM cur THEN
        RAISE EXCEPTION USING ERRCODE = '42501',
            MESSAGE = 'restricted: rows can only be written in the entered community';
    END IF;
    RETURN NEW;
END
$$;
COMMENT ON FUNCTION log_guard() IS 'Trigger of relay-written log tables: rows only for the entered community; community_id never changes.';

-- Per-community counters (enable_tenancy(..., per_community_ids => true)): a column that
-- numbered every community's rows from one sequence instead counts each community's rows on
-- its own, so no tenant sees another's insert rate (DESIGN §12.13). One row per community,
-- table and column; the increment locks it, so inserts of one community into one table
-- serialize while other communities never wait.
CREATE TABLE community_counters (
    community_id uuid NOT NULL REFERENCES communities (id) ON DELETE CASCADE,
    tbl          regclass NOT NULL,
    col          name NOT NULL,
    last         bigint NOT NULL,
    PRIMARY KEY (community_id, tbl, col)
);
CREATE TRIGGER immutable_tenant BEFORE UPDATE ON community_counters FOR EACH ROW EXECUTE FUNCTION forbid_retenant('tbl', 'col');

-- BEFORE INSERT trigger (buzz_tenant_ids, after buzz_tenant_guard by name): every column
-- named in its arguments that the row leaves NULL gets its community's next number. SECURITY
-- DEFINER as buzz_owner, whom RLS binds: only the entered community's counter is reachable,
-- so without a context (or for a row of another community) the insert fails.
CREATE FUNCTION assign_community_ids() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    numbered text;
    n        bigint;
    vals     jsonb := '{}';
BEGIN
    FOREACH numbered IN ARRAY TG_ARGV LOOP
        IF to_jsonb(NEW) -> numbered = 'null'::jsonb THEN
            -- Answer from the catalog before the counter's fence refuses with a raw error.
            IF buzz.current_community() IS NULL THEN
                RAISE EXCEPTION USING ERRCODE = '42501',    -- catalog entry "context_missing"
                    MESSAGE = 'restricted: no community context; call buzz.enter first';
            ELSIF NEW.community_id IS DISTINCT FROM buzz.current_community() THEN
                RAISE EXCEPTION USING ERRCODE = '42501',    -- catalog entry "foreign_community"
                    MESSAGE = 'restricted: rows can only be written in the entered community';
            END IF;
            INSERT INTO buzz.community_counters AS k (community_id, tbl, col, last)
            VALUES (NEW.community_id, coalesce(pg_partition_root(TG_RELID), TG_RELID)::regclass, numbered, 1)
            ON CONFLICT (community_id, tbl, col) DO UPDATE SET last = k.last + 1
            RETURNING k.last INTO n;
            vals := vals || jsonb_build_object(numbered, n);
        END IF;
    END LOOP;
    IF vals <> '{}' THEN
        NEW := jsonb_populate_record(NEW, vals);
    END IF;
    RETURN NEW;
END
$$;
COMMENT ON FUNCTION assign_community_ids() IS 'Trigger: per-community numbers for the named columns of an adopted table.';

-- Partitions created or attached later get their parent's fences: after any CREATE/ALTER
-- TABLE that touches a partitioned tree whose root carries the guard trigger (= adopted),
-- buzz.tenancy_sync fences every partition. Other DDL returns after a catalog-only check, so
-- roles without rights on schema buzz are not affected; a role that cannot fence a new
-- partition of an adopted table cannot create it. (Sessions with row_security = off, such as
-- pg_restore, are left alone; conformance reports any partition left unfenced.)
CREATE FUNCTION tenancy_partitions() RETURNS event_trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    root oid;
BEGIN
    -- pg_dump scripts run with row_security = off; a dump already carries every partition's
    -- fences, and adding them early would make its own CREATE POLICY statements fail.
    IF current_setting('row_security') = 'off' THEN
        RETURN;
    END IF;
    FOR root IN
        SELECT DISTINCT a.relid
          FROM pg_event_trigger_ddl_commands() c
          JOIN pg_class k ON k.oid = c.objid AND (k.relispartition OR k.relkind = 'p')
          CROSS JOIN LATERAL pg_partition_ancestors(c.objid) a
          JOIN pg_class r ON r.oid = a.relid AND NOT r.relispartition
         WHERE c.classid = 'pg_class'::regclass
           AND EXISTS (SELECT 1 FROM pg_trigger g WHERE g.tgrelid = a.relid AND g.tgname = 'buzz_tenant_guard')
    LOOP
        PERFORM buzz.tenancy_sync(root::regclass);
    END LOOP;
END
$$;
COMMENT ON FUNCTION tenancy_partitions() IS 'Event trigger: fence new or attached partitions of adopted tables.';
CREATE EVENT TRIGGER buzz_tenancy_partitions ON ddl_command_end
    WHEN TAG IN ('CREATE TABLE', 'ALTER TABLE') EXECUTE FUNCTION tenancy_partitions();

-- A dropped table leaves the registry with it (a stale oid could later name another table).
-- SECURITY DEFINER so any role's DROP can clean up; an event trigger function cannot be
-- called directly.
CREATE FUNCTION tenancy_dropped() RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    DELETE FROM buzz.tenancy_tables t
     USING pg_event_trigger_dropped_objects() d
     WHERE d.classid = 'pg_class'::regclass AND d.objsubid = 0 AND t.tbl = d.objid;
END
$$;
COMMENT ON FUNCTION tenancy_dropped() IS 'Event trigger: forget dropped tables in the registry.';
CREATE EVENT TRIGGER buzz_tenancy_dropped ON sql_drop EXECUTE FUNCTION tenancy_dropped();

-- NIP-98 seen-set (P3): an HTTP auth event is accepted once per community, across every relay
-- replica sharing this database. Entries outlive twice the acceptance window.
CREATE TABLE http_seen (
    community_id uuid NOT NULL REFERENCES communities (id) ON DELETE CASCADE,
    event_id     text NOT NULL,
    expires_at   timestamptz NOT NULL,
    PRIMARY KEY (community_id, event_id)
);
CREATE INDEX http_seen_expiry ON http_seen (community_id, expires_at);
CREATE TRIGGER immutable_tenant BEFORE UPDATE ON http_seen FOR EACH ROW EXECUTE FUNCTION forbid_retenant('event_id');

-- The per-community audit chain (S4 / L3, DESIGN §12.14). Each community's control-plane
-- changes form one hash chain: row seq links to seq - 1 through prev_hash, and hash covers a
-- domain-separated, length-prefixed encoding of community, seq, time, action, actor, object,
-- the canonical (jsonb) detail and prev_hash (buzz.audit_hash). An append locks its
-- community's head row FOR UPDATE: appends in one community serialize (no fork, no gap),
-- different communities never contend, and no advisory lock is involved.
CREATE TABLE audit_heads (
    community_id uuid PRIMARY KEY REFERENCES communities (id),
    seq          bigint NOT NULL,
    hash         bytea NOT NULL
);
CREATE TABLE audit_log (
    community_id uuid NOT NULL REFERENCES communities (id),
    seq          bigint NOT NULL CHECK (seq > 0),
    prev_hash    bytea NOT NULL,
    hash         bytea NOT NULL,
    action       text NOT NULL,
    actor        text NOT NULL,
    object       text NOT NULL,
    detail       jsonb NOT NULL,
    created_at   timestamptz NOT NULL,
    PRIMARY KEY (community_id, seq)
);
-- Operator-global actions (adopting the relay's tables) have their own chain.
CREATE TABLE operator_audit_log (
    seq        bigint PRIMARY KEY CHECK (seq > 0),
    prev_hash  bytea NOT NULL,
    hash       bytea NOT NULL,
    action     text NOT NULL,
    actor      text NOT NULL,
    object     text NOT NULL,
    detail     jsonb NOT NULL,
    created_at timestamptz NOT NULL
);

CREATE FUNCTION audit_field(b bytea) RETURNS bytea
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE SET search_path = pg_catalog, pg_temp
AS $$ SELECT int4send(length(b)) || b $$;
COMMENT ON FUNCTION audit_field(bytea) IS 'Audit hash encoding: a 4-byte big-endian length, then the bytes.';

-- sha256("buzz-audit-v1" 0x00 | field(community: 16 bytes, empty for the operator chain) |
-- seq int8 | time in microseconds since 1970 int8 | field(action) | field(actor) |
-- field(object) | field(detail as jsonb text) | field(prev_hash)); text as UTF-8.
CREATE FUNCTION audit_hash(community uuid, seq bigint, at timestamptz, action text, actor text,
                           object text, detail jsonb, prev_hash bytea) RETURNS bytea
LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp
AS $$
SELECT sha256(convert_to('buzz-audit-v1', 'UTF8') || '\x00'::bytea
              || buzz.audit_field(coalesce(uuid_send(community), ''::bytea))
              || int8send(seq)
              || int8send((extract(epoch FROM at) * 1000000)::bigint)
              || buzz.audit_field(convert_to(action, 'UTF8'))
              || buzz.audit_field(convert_to(actor, 'UTF8'))
              || buzz.audit_field(convert_to(object, 'UTF8'))
              || buzz.audit_field(convert_to(detail::text, 'UTF8'))
              || buzz.audit_field(prev_hash))
$$;
COMMENT ON FUNCTION audit_hash(uuid, bigint, timestamptz, text, text, text, jsonb, bytea) IS 'The hash of one audit row (community NULL for the operator chain).';

-- Append-only: rows change or go only by a superuser's hand (the extension's own code runs
-- as buzz_owner and cannot); TRUNCATE is granted to nobody and refused here too.
CREATE FUNCTION audit_append_only() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF NOT current_setting('is_superuser')::boolean THEN
        -- Catalog entry "audit_append_only".
        RAISE EXCEPTION USING ERRCODE = '42501', MESSAGE = 'restricted: the audit log is append-only';
    END IF;
    RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
END
$$;
COMMENT ON FUNCTION audit_append_only() IS 'Trigger: audit rows are never updated or deleted except by a superuser.';
CREATE TRIGGER append_only BEFORE UPDATE OR DELETE ON audit_log FOR EACH ROW EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER append_only_truncate BEFORE TRUNCATE ON audit_log FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER append_only BEFORE UPDATE OR DELETE ON operator_audit_log FOR EACH ROW EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER append_only_truncate BEFORE TRUNCATE ON operator_audit_log FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER immutable_tenant BEFORE UPDATE ON audit_heads FOR EACH ROW EXECUTE FUNCTION forbid_retenant();
CREATE TRIGGER immutable_tenant BEFORE UPDATE ON audit_log FOR EACH ROW EXECUTE FUNCTION forbid_retenant('seq');

-- API tokens (S1, S2, S5, S6): stored as SHA-256 only, keyed (community_id, hash), stamped
-- with the minting context's community; they hang off the minter's membership, and their
-- channel claims reference channels of the same community by construction.
CREATE TABLE api_tokens (
    community_id    uuid NOT NULL,
    token_hash      bytea NOT NULL CHECK (length(token_hash) = 32),
    pubkey          text NOT NULL,
    name            text NOT NULL,
    scopes          text[] NOT NULL CHECK (cardinality(scopes) > 0 AND scopes <@ ARRAY['read', 'write']),
    channel_limited boolean NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    expires_at      timestamptz NOT NULL,
    last_used_at    timestamptz,
    PRIMARY KEY (community_id, token_hash),
    UNIQUE (community_id, pubkey, name),
    FOREIGN KEY (community_id, pubkey) REFERENCES members (community_id, pubkey) ON DELETE CASCADE
);
CREATE TABLE api_token_channels (
    community_id uuid NOT NULL,
    token_hash   bytea NOT NULL,
    channel_id   uuid NOT NULL,
    PRIMARY KEY (community_id, token_hash, channel_id),
    FOREIGN KEY (community_id, token_hash) REFERENCES api_tokens (community_id, token_hash) ON DELETE CASCADE,
    FOREIGN KEY (community_id, channel_id) REFERENCES channels (community_id, id) ON DELETE CASCADE
);
CREATE TRIGGER immutable_tenant BEFORE UPDATE ON api_tokens FOR EACH ROW EXECUTE FUNCTION forbid_retenant('token_hash', 'pubkey');
CREATE TRIGGER immutable_tenant BEFORE UPDATE ON api_token_channels FOR EACH ROW EXECUTE FUNCTION forbid_retenant('token_hash', 'channel_id');

-- NIP-43: the last member list applied per community (a list must be newer to apply).
CREATE TABLE member_lists (
    community_id uuid PRIMARY KEY REFERENCES communities (id),
    created_at   bigint NOT NULL,
    event_id     text NOT NULL,
    applied_at   timestamptz NOT NULL DEFAULT now()
);
CREATE TRIGGER immutable_tenant BEFORE UPDATE ON member_lists FOR EACH ROW EXECUTE FUNCTION forbid_retenant();

-- NIP-98 claim step (DESIGN §12.9): single-use nonces handed out by buzz.claim_http after the
-- event's claim committed on its own; stored hashed, keyed like every credential.
CREATE TABLE http_nonces (
    community_id uuid NOT NULL,
    nonce_hash   bytea NOT NULL CHECK (length(nonce_hash) = 32),
    pubkey       text NOT NULL,
    expires_at   timestamptz NOT NULL,
    -- the claiming transaction: the nonce is refused there (one statement, or a pipeline
    -- before Sync, would otherwise share the claim's fate)
    claim_xact   xid8 NOT NULL DEFAULT pg_current_xact_id(),
    PRIMARY KEY (community_id, nonce_hash),
    FOREIGN KEY (community_id, pubkey) REFERENCES members (community_id, pubkey) ON DELETE CASCADE
);
CREATE TRIGGER immutable_tenant BEFORE UPDATE ON http_nonces FOR EACH ROW EXECUTE FUNCTION forbid_retenant('nonce_hash', 'pubkey');

-- A signing key belongs to one community: a list or system event signed with it must not be
-- replayable into another community that shares the key (S3, S7).
CREATE UNIQUE INDEX communities_signing_pubkey ON communities (signing_pubkey) WHERE signing_pubkey IS NOT NULL;
