# The pg_regress suites, each alone in a database of its own (tests/pg_regress/schedule).
# Used by scripts/test (all suites) and scripts/regress (any of them, for a quick look).
# Usage: source after scripts/lib/pgtree.sh (pgtree_prepare) and scripts/lib/cluster.sh with a
# running cluster (cluster_start); then `regress_prepare` and `regress_run SUITE...`.
# Sets regress_rc (non-zero when a suite failed) and leaves $work/summary.txt, $work/all.diffs.

PG_REGRESS=$PGTREE/usr/lib/postgresql/15/lib/pgxs/src/test/regress/pg_regress

source scripts/lib/standby.sh

regress_prepare() {
    # Suite standby reads from a hot standby of the cluster.
    standby_start
    work="$CLUSTER_DIR/regress"
    mkdir -p "$work"
    cp -r tests/pg_regress/sql tests/pg_regress/expected tests/pg_regress/include tests/fixture "$work/"
    # The production suite runs docs/operations.md's recipe blocks verbatim (<!-- recipe:NAME -->).
    python3 - docs/operations.md "$work/recipe" <<'PY'
import re, sys
doc, prefix = sys.argv[1:3]
blocks = re.findall(r'<!-- recipe:(\w+) -->\n```sql\n(.*?)```', open(doc).read(), re.S)
assert len(blocks) >= 5, "docs/operations.md lost its recipe blocks"
for name, sql in blocks:
    open(f"{prefix}_{name}.sql", "w").write(sql)
PY
    cp tools/buzz-sign/target/release/buzz-sign "$CLUSTER_DIR/buzz-sign"
    [ "$(id -u)" = 0 ] && chown -R "$PG_OS_USER" "$work" "$CLUSTER_DIR/buzz-sign"
    # BUZZ_SERVER_LOG: the sanitizer suite checks that raw errors reach the server log.
    export BUZZ_SIGN="$CLUSTER_DIR/buzz-sign" BUZZ_SERVER_LOG="$CLUSTER_DIR/server.log" PGOPTIONS='-c client_min_messages=warning'
}

regress_run() {
    regress_rc=0
    : > "$work/summary.txt"; : > "$work/all.diffs"
    local suite
    for suite in "$@"; do
        # Every suite starts from include/base.psql in an empty database: none reads another's state.
        as_pg createdb "buzz_$suite"
        (cd "$work" && as_pg "$PG_REGRESS" --use-existing --dbname="buzz_$suite" --inputdir="$work" \
            --outputdir="$work" "$suite") > "$work/one.txt" 2>&1 || regress_rc=$?
        # pg_regress 15 prints "test NAME ... ok  12 ms" or "... FAILED".
        if grep -qE "^test $suite +\.\.\. ok" "$work/one.txt"; then
            echo "ok - $suite" | tee -a "$work/summary.txt"
        else
            cat "$work/one.txt"; echo "not ok - $suite" | tee -a "$work/summary.txt"
        fi
        cat "$work/regression.diffs" >> "$work/all.diffs" 2>/dev/null || true
        rm -f "$work/regression.diffs"
    done
}
