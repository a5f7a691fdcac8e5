# Scratch PostgreSQL 15 clusters for tests and the demo. PostgreSQL refuses to run as root,
# so the cluster belongs to the unprivileged `postgres` user and lives under a temp dir that
# user owns; it listens only on a Unix socket inside that dir.
# Usage: source this file, then `cluster_start NAME` (sets PGHOST PGPORT PGUSER PGDATABASE,
# CLUSTER_DIR) and `cluster_stop` (also registered on EXIT).

PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}   # scripts/lib/pgtree.sh points it at a private copy
PG_OS_USER=postgres

as_pg() { # run a command as the postgres OS user, keeping the PG* environment
    if [ "$(id -u)" = 0 ]; then
        runuser -u "$PG_OS_USER" -- env PATH="$PG_BIN:$PATH" PGHOST="${PGHOST:-}" PGPORT="${PGPORT:-}" \
            PGUSER="${PGUSER:-}" PGDATABASE="${PGDATABASE:-}" PGOPTIONS="${PGOPTIONS:-}" \
            BUZZ_SIGN="${BUZZ_SIGN:-}" BUZZ_SERVER_LOG="${BUZZ_SERVER_LOG:-}" \
            BUZZ_STANDBY_PORT="${BUZZ_STANDBY_PORT:-}" "$@"
    else
        PATH="$PG_BIN:$PATH" "$@"
    fi
}

cluster_start() {
    CLUSTER_DIR=$(mktemp -d "/tmp/buzz-$1.XXXXXX")
    chmod 755 "$CLUSTER_DIR"
    [ "$(id -u)" = 0 ] && chown "$PG_OS_USER" "$CLUSTER_DIR"
    export PGHOST="$CLUSTER_DIR" PGPORT=$((20000 + RANDOM % 20000)) PGUSER=postgres
    # RUST_BACKTRACE in the postmaster's environment would put backtraces into error details.
    as_pg env -u RUST_BACKTRACE initdb -D "$CLUSTER_DIR/data" -U postgres -A trust --no-sync >"$CLUSTER_DIR/initdb.log" 2>&1 \
        || { cat "$CLUSTER_DIR/initdb.log"; return 1; }
    as_pg env -u RUST_BACKTRACE pg_ctl -D "$CLUSTER_DIR/data" -l "$CLUSTER_DIR/server.log" -w \
        -o "-c listen_addresses='' -k $CLUSTER_DIR -p $PGPORT -c fsync=off -c max_connections=50" start >/dev/null \
        || { cat "$CLUSTER_DIR/server.log"; return 1; }
    trap cluster_stop EXIT
}

cluster_stop() {
    if declare -F pgbouncer_stop >/dev/null; then pgbouncer_stop; fi
    if declare -F standby_stop >/dev/null; then standby_stop; fi
    if [ -n "${CLUSTER_DIR:-}" ] && [ -d "$CLUSTER_DIR/data" ]; then
        as_pg pg_ctl -D "$CLUSTER_DIR/data" -m immediate stop >/dev/null 2>&1 || true
        [ -n "${KEEP_CLUSTER:-}" ] || rm -rf "$CLUSTER_DIR"
    fi
}
