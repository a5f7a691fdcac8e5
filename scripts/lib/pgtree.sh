# A private copy of the system's PostgreSQL 15 for this checkout (target/pgtree), so that
# building and installing the extension for tests, the demo or a mutant never replaces the
# library under another checkout's running clusters (a backend that has the old library mapped
# can die with SIGBUS), and never touches /usr/lib/postgresql or /usr/share/postgresql.
# PostgreSQL finds its share/ and lib/ relative to its binaries, so the copy loads only what is
# installed into it. Headers stay the system's (a symlink).
#
# Usage: ROOT=<checkout>; source scripts/lib/pgtree.sh; pgtree_prepare
# Sets PGTREE, PG_CONFIG, PG_BIN and PGRX_HOME (a cargo-pgrx home whose pg15 is the copy, so
# `cargo pgrx test pg15` installs and runs there too).

pgtree_prepare() {
    local sys=/usr/lib/postgresql/15 share=/usr/share/postgresql/15
    PGTREE=$ROOT/target/pgtree
    local stamp=$PGTREE/.copied-from
    local want
    want=$(stat -c %Y "$sys/bin/postgres")
    if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
        rm -rf "$PGTREE"
        mkdir -p "$PGTREE/usr/lib/postgresql" "$PGTREE/usr/share/postgresql"
        cp -a "$sys" "$PGTREE/usr/lib/postgresql/"
        cp -a "$share" "$PGTREE/usr/share/postgresql/"
        ln -s /usr/include "$PGTREE/usr/include"
        rm -f "$PGTREE"/usr/share/postgresql/15/extension/buzz_tenancy* "$PGTREE"/usr/lib/postgresql/15/lib/buzz_tenancy*
        chmod -R a+rX "$PGTREE"
        echo "$want" >"$stamp"
    fi
    # The postgres OS user must reach the copy (cluster scripts run its binaries as that user).
    local d=$PGTREE
    while [ "$d" != / ]; do chmod a+x "$d" 2>/dev/null || true; d=$(dirname "$d"); done
    PG_CONFIG=$PGTREE/usr/lib/postgresql/15/bin/pg_config
    PG_BIN=$PGTREE/usr/lib/postgresql/15/bin
    PGRX_HOME=$ROOT/target/pgrx-home
    mkdir -p "$PGRX_HOME"
    # cargo pgrx test listens on base_testing_port + 15: one port per checkout, so a mutant's
    # scratch run and this checkout's can run side by side.
    local base=$((41000 + $(printf %s "$ROOT" | cksum | cut -d' ' -f1) % 4000))
    printf 'base_testing_port = %s\n[configs]\npg15 = "%s"\n' "$base" "$PG_CONFIG" >"$PGRX_HOME/config.toml"
    export PGTREE PG_CONFIG PG_BIN PGRX_HOME
}
