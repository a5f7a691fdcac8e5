#!/usr/bin/env python3
"""Fail if the modules under src/ import each other in a cycle (layers must only point down).

A module is a file under src/ (src/a/b.rs and src/a/b/mod.rs are `a::b`; src/lib.rs is the
crate root and is skipped). An edge A -> B is any `crate::B...` path in A's code (use lines and
inline paths), comments and `#[cfg(test)]`/`pg_test` test modules excluded. B is the longest
known module that prefixes the path. Edges between a module and its own descendants or
ancestors (a parent re-exporting or declaring its children) are ignored.
Prints the strongly connected components with more than one module and exits 1 if any.
"""
import os
import re
import sys

root = sys.argv[1] if len(sys.argv) > 1 else "src"
mods = {}
for dirpath, _, files in os.walk(root):
    for f in files:
        if not f.endswith(".rs"):
            continue
        path = os.path.join(dirpath, f)
        rel = os.path.relpath(path, root)[:-3].split(os.sep)
        if rel[-1] == "mod":
            rel = rel[:-1]
        if rel == ["lib"]:
            continue
        mods["::".join(rel)] = path


def strip(text):
    text = re.sub(r"//[^\n]*", "", text)
    # drop test modules: from a #[cfg(...test...)] attribute to the end of the file
    m = re.search(r"#\[cfg\([^\]]*test[^\]]*\)\]\s*(#\[pg_schema\]\s*)?mod tests", text)
    return text[: m.start()] if m else text


def related(a, b):
    return a == b or a.startswith(b + "::") or b.startswith(a + "::")


edges = {m: set() for m in mods}
for m, path in mods.items():
    text = strip(open(path).read())
    # expand `use crate::{a, b::c}` groups into paths
    paths = re.findall(r"crate::((?:[A-Za-z_][A-Za-z0-9_]*::)*[A-Za-z_][A-Za-z0-9_]*)", text)
    for group in re.findall(r"crate::\{([^}]*)\}", text):
        paths += [p.strip() for p in group.split(",") if p.strip()]
    for p in paths:
        parts = p.split("::")
        target = None
        for i in range(len(parts), 0, -1):
            cand = "::".join(parts[:i])
            if cand in mods:
                target = cand
                break
        if target and not related(m, target):
            edges[m].add(target)

# Tarjan's strongly connected components
index, low, on, stack, sccs, counter = {}, {}, set(), [], [], [0]


def visit(v):
    index[v] = low[v] = counter[0]
    counter[0] += 1
    stack.append(v)
    on.add(v)
    for w in sorted(edges[v]):
        if w not in index:
            visit(w)
            low[v] = min(low[v], low[w])
        elif w in on:
            low[v] = min(low[v], index[w])
    if low[v] == index[v]:
        comp = []
        while True:
            w = stack.pop()
            on.discard(w)
            comp.append(w)
            if w == v:
                break
        sccs.append(comp)


sys.setrecursionlimit(10000)
for v in sorted(mods):
    if v not in index:
        visit(v)
cycles = [sorted(c) for c in sccs if len(c) > 1]
for c in cycles:
    inner = sorted(f"{a} -> {b}" for a in c for b in edges[a] if b in c)
    print(f"import cycle among {len(c)} modules: {', '.join(c)}")
    for e in inner:
        print(f"    {e}")
if cycles:
    sys.exit(1)
print(f"no import cycle among {len(mods)} modules")
