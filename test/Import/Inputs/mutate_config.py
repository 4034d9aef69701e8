#!/usr/bin/env python3
"""Writes a copy of a config.json with fields changed, for error-path tests.

usage: mutate_config.py BASE OUT [key=JSON ...] [-key ...]
  key may be dotted (rope_scaling.mscale=0.5); -key deletes the field.
"""
import json
import sys

base, out, edits = sys.argv[1], sys.argv[2], sys.argv[3:]
with open(base) as f:
    cfg = json.load(f)
for edit in edits:
    if edit.startswith("-"):
        *path, last = edit[1:].split(".")
        node = cfg
        for p in path:
            node = node[p]
        node.pop(last, None)
        continue
    key, value = edit.split("=", 1)
    *path, last = key.split(".")
    node = cfg
    for p in path:
        node = node.setdefault(p, {})
    node[last] = json.loads(value)
with open(out, "w") as f:
    json.dump(cfg, f, indent=1)
