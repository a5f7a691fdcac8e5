# PgBouncer (Debian's package) in transaction pooling mode in front of the scratch cluster of
# scripts/lib/cluster.sh, listening on a Unix socket in $CLUSTER_DIR. Fewer server connections
# than clients, so that consecutive transactions of one client land on different server
# connections and one server connection serves many clients.
# Usage: source after cluster.sh; `pgbouncer_start USER...` (sets PGBOUNCER_PORT); stopped by
# `pgbouncer_stop` (cluster_stop calls it too).

pgbouncer_start() {
    local dir="$CLUSTER_DIR/pgbouncer" u
    mkdir -p "$dir"
    PGBOUNCER_PORT=$((PGPORT + 1))
    : >"$dir/users.txt"
    for u in postgres "$@"; do printf '"%s" ""\n' "$u" >>"$dir/users.txt"; done
    cat >"$dir/pgbouncer.ini" <<INI
[databases]
* = host=$CLUSTER_DIR port=$PGPORT

[pgbouncer]
listen_addr =
listen_port = $PGBOUNCER_PORT
unix_socket_dir = $CLUSTER_DIR
auth_type = trust
auth_file = $dir/users.txt
admin_users = postgres
pool_mode = transaction
default_pool_size = ${PGBOUNCER_POOL_SIZE:-4}
max_client_conn = 1000
server_reset_query = DISCARD ALL
; After a failed server login (PostgreSQL restarting) retry in 1 s, not 15 (the default).
server_login_retry = 1
ignore_startup_parameters = extra_float_digits
logfile = $dir/pgbouncer.log
pidfile = $dir/pgbouncer.pid
INI
    [ "$(id -u)" = 0 ] && chown -R "$PG_OS_USER" "$dir"
    as_pg pgbouncer -d -q "$dir/pgbouncer.ini" || { cat "$dir/pgbouncer.log"; return 1; }
    local i
    for i in $(seq 50); do
        [ -S "$CLUSTER_DIR/.s.PGSQL.$PGBOUNCER_PORT" ] && return 0
        sleep 0.1
    done
    cat "$dir/pgbouncer.log"
    return 1
}

pgbouncer_stop() {
    local pid="${CLUSTER_DIR:-/nonexistent}/pgbouncer/pgbouncer.pid"
    [ -f "$pid" ] && kill "$(cat "$pid")" 2>/dev/null || true
}
