# A release build of the extension for the benchmarks, without touching the system's PostgreSQL.
# Usage (from the repository root): source this file; `build_release BUILD LOG` packages a
# snapshot of the source (concurrent edits cannot change the build halfway) with
# `cargo pgrx package` and lays out a private PostgreSQL 15 tree with it in BUILD/pg; its
# binaries are in BUILD/pg/usr/lib/postgresql/15/bin. PostgreSQL finds its share/ and lib/
# relative to its binaries, so the copy loads this build and nothing else.

build_release() {
    local build=$1 log=$2 sys=/usr/lib/postgresql/15
    rm -rf "$build/src" "$build/pkg" "$build/pg"
    mkdir -p "$build/src/tests"
    cp -r Cargo.toml Cargo.lock buzz_tenancy.control src sql "$build/src/"
    cp -r tests/vectors "$build/src/tests/"
    (cd "$build/src" && CARGO_TARGET_DIR="$build/target" cargo pgrx package \
        --pg-config "$sys/bin/pg_config" --out-dir "$build/pkg") >"$log" 2>&1 \
        || { tail -30 "$log"; exit 1; }
    mkdir -p "$build/pg/usr/lib/postgresql" "$build/pg/usr/share/postgresql"
    cp -a "$sys" "$build/pg/usr/lib/postgresql/"
    cp -a /usr/share/postgresql/15 "$build/pg/usr/share/postgresql/"
    rm -f "$build"/pg/usr/share/postgresql/15/extension/buzz_tenancy* "$build"/pg/usr/lib/postgresql/15/lib/buzz_tenancy*
    cp -r "$build/pkg/." "$build/pg/"
    chmod -R a+rX "$build/pg"
}
