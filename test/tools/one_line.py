#!/usr/bin/env python3
"""Exits non-zero unless FILE holds exactly one line (in UTF-8, by Python's
splitlines, which also breaks at U+0085, U+2028 and U+2029).

usage: one_line.py FILE
"""
import sys

with open(sys.argv[1], encoding="utf-8") as f:
    text = f.read()
lines = text.splitlines()
if len(lines) != 1:
    sys.exit(f"one_line.py: {sys.argv[1]} holds {len(lines)} lines: {text!r}")
