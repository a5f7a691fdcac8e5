#!/usr/bin/env python3
"""Every `unsafe` block, fn, impl or extern fn in src/ carries a `SAFETY` note on its line or
within the four lines above it. Exit 1, listing the sites without one."""
import glob
import re
import sys

missing = []
for path in sorted(glob.glob('src/**/*.rs', recursive=True)):
    lines = open(path).read().split('\n')
    for i, line in enumerate(lines):
        if re.search(r'\bunsafe\s*(\{|fn\b|extern\b|impl\b)', line) and not line.strip().startswith('//'):
            if 'SAFETY' not in '\n'.join(lines[max(0, i - 4):i + 1]):
                missing.append(f"{path}:{i + 1}: {line.strip()}")
for m in missing:
    print(f"unsafe without a SAFETY note: {m}")
print(f"{'no' if not missing else len(missing)} unsafe site(s) without a SAFETY note")
sys.exit(1 if missing else 0)
