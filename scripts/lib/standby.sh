# A streaming hot standby of the running scratch cluster (scripts/lib/cluster.sh), made the way
# an operator makes one (pg_basebackup -R -X stream), on a port of its own in the same socket
# directory. Usage: after cluster_start, `standby_start` (exports BUZZ_STANDBY_PORT);
# cluster_stop stops it too.

standby_start() {
    STANDBY_DIR="$CLUSTER_DIR/standby"
    export BUZZ_STANDBY_PORT=$((20000 + RANDOM % 20000))
    [ "$BUZZ_STANDBY_PORT" = "$PGPORT" ] && BUZZ_STANDBY_PORT=$((PGPORT + 1))
    as_pg pg_basebackup -h "$CLUSTER_DIR" -p "$PGPORT" -U postgres -D "$STANDBY_DIR" -R -X stream \
        --checkpoint=fast >"$CLUSTER_DIR/basebackup.log" 2>&1 || { cat "$CLUSTER_DIR/basebackup.log"; return 1; }
    as_pg env -u RUST_BACKTRACE pg_ctl -D "$STANDBY_DIR" -l "$CLUSTER_DIR/standby.log" -w \
        -o "-c listen_addresses='' -k $CLUSTER_DIR -p $BUZZ_STANDBY_PORT -c hot_standby=on" start >/dev/null \
        || { cat "$CLUSTER_DIR/standby.log"; return 1; }
}

standby_stop() {
    if [ -n "${STANDBY_DIR:-}" ] && [ -d "$STANDBY_DIR" ]; then
        as_pg pg_ctl -D "$STANDBY_DIR" -m immediate stop >/dev/null 2>&1 || true
    fi
}
