#!/usr/bin/env python3
"""The API lists are declared once, next to their functions (RELAY_API in src/api/relay.rs,
WORKER_API in src/api/worker.rs, PUBLIC_API in src/api/mod.rs); docs/api.md's "Who may call
what" table must list exactly the same signatures, and sql/finalize.sql grant PUBLIC_API to PUBLIC.
The error catalog (src/errors.rs) and docs/api.md's buzz.error_catalog table must hold the same
codes and messages, and the row count stated there must be right. Exit 1, naming the difference, if not."""
import re
import sys


def const(path, name):
    m = re.search(r'pub const ' + name + r': &\[&str\] = &\[(.*?)\];', open(path).read(), re.S)
    if not m:
        sys.exit(f"{path}: {name} not found")
    return re.findall(r'"buzz\.([^"]+)"', m.group(1))


def doc_row(doc, caller):
    m = re.search(r'^\| ' + re.escape(caller) + r' \|[^|]*\|(.*)\|$', doc, re.M)
    if not m:
        sys.exit(f"docs/api.md: no '{caller}' row")
    return re.findall(r'`([^`]+)`', m.group(1))


doc = open('docs/api.md').read()
bad = 0
for caller, path, name in [('relay role', 'src/api/relay.rs', 'RELAY_API'),
                           ('worker role', 'src/api/worker.rs', 'WORKER_API'),
                           ('PUBLIC', 'src/api/mod.rs', 'PUBLIC_API')]:
    code, listed = const(path, name), doc_row(doc, caller)
    if sorted(code) != sorted(listed) or len(set(code)) != len(code):
        bad = 1
        print(f"{name} and docs/api.md's '{caller}' row differ: "
              f"only in code {sorted(set(code) - set(listed))}, only in docs {sorted(set(listed) - set(code))}")
    else:
        print(f"{name}: {len(code)} functions, as docs/api.md lists")
# finalize.sql grants PUBLIC_API to PUBLIC, and nothing else.
m = re.search(r'GRANT EXECUTE ON FUNCTION (.*?) TO PUBLIC;', open('sql/finalize.sql').read(), re.S)
granted = [re.sub(r'\s+', ' ', g.strip()).replace('buzz.', '', 1) for g in re.findall(r'buzz\.\w+\([^)]*\)', m.group(1))] if m else []
if sorted(granted) != sorted(const('src/api/mod.rs', 'PUBLIC_API')):
    bad = 1
    print(f"sql/finalize.sql grants PUBLIC {sorted(granted)}, not PUBLIC_API")
# The error catalog: code and message of every entry, as docs/api.md's error_catalog table lists them.
entries = dict(re.findall(r'^\s*\w+\s*=\s*\("(\w+)",\s*C::\w+,\s*"((?:[^"\\]|\\.)*)"\),', open('src/errors.rs').read(), re.M))
section = doc.split('### buzz.error_catalog', 1)[1].split('\n### Catalog', 1)[1].split('\n#', 1)[0]
count_section = doc.split('### buzz.error_catalog', 1)[1]
documented = dict(re.findall(r'^\| `(\w+)` \| \w+ \| `(.*)` \|$', section, re.M))
for code in sorted(set(entries) | set(documented)):
    if entries.get(code) != documented.get(code):
        bad = 1
        print(f"error {code}: src/errors.rs says {entries.get(code)!r}, docs/api.md says {documented.get(code)!r}")
m = re.search(r'one row per entry \((\d+) rows\)', count_section)
if not m or int(m.group(1)) != len(entries):
    bad = 1
    print(f"docs/api.md states {m.group(1) if m else 'no'} error_catalog rows; src/errors.rs has {len(entries)}")
else:
    print(f"error catalog: {len(entries)} entries, as docs/api.md lists")
sys.exit(bad)
