#!/usr/bin/env python3
"""The relay front end holds no tenancy logic (issue 13): relay/src never names a community id
and never reads or writes a buzz table. Every `buzz.` it mentions must be a call of a function
of the relay API (RELAY_API in src/api/relay.rs); comment lines are skipped. Exit 1, naming each offending line, if not."""
import pathlib
import re
import sys

api = re.search(r'pub const RELAY_API: &\[&str\] = &\[(.*?)\];', open('src/api/relay.rs').read(), re.S)
functions = {re.match(r'buzz\.([a-z_]+)\(', s).group(1) for s in re.findall(r'"(buzz\.[^"]+)"', api.group(1))}
bad = 0
files = sorted(pathlib.Path('relay/src').rglob('*.rs'))
for path in files:
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if line.lstrip().startswith('//'):
            continue  # comments may name anything; code may not
        if re.search(r'community_id', line, re.I):
            print(f"{path}:{n}: names community_id: {line.strip()}")
            bad += 1
        for m in re.finditer(r'\bbuzz\.([A-Za-z_][A-Za-z0-9_]*)(\s*\()?', line):
            if m.group(1) not in functions or not m.group(2):
                print(f"{path}:{n}: buzz.{m.group(1)} is not a call of the relay API: {line.strip()}")
                bad += 1
if not files:
    sys.exit("relay/src: no sources")
if bad:
    sys.exit(1)
print(f"relay/src ({len(files)} files): no community_id, only calls of the relay API")
