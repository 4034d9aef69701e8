#!/usr/bin/env python3
"""Checks a session cache written by DSRT_DEBUG_CACHE (runtime/src/api/
Session.cpp): [layers, rows, row bytes] as the kernels left it.

    check_cache_dump.py DUMP --layers L --row-bytes B --written N [--fp8-latent DC]

Every layer's rows [0, N) must hold data and rows past N be zero (the cache
starts zeroed and nothing writes past the position); with --fp8-latent, the
written rows' f32 scales (bytes [DC, DC + 4 * DC / 128)) must be positive
and finite. The layout the runtime writes beside the dump (DUMP.json) must
agree with these arguments and the dump's size, and its parts must cover a
row in order; the summary line lists them. Prints one summary line; exits 1
on the first violation."""
import argparse
import json
import os
import sys

import numpy as np


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dump")
    ap.add_argument("--layers", type=int, required=True)
    ap.add_argument("--row-bytes", type=int, required=True)
    ap.add_argument("--written", type=int, required=True)
    ap.add_argument("--fp8-latent", type=int, default=0)
    a = ap.parse_args()
    raw = np.fromfile(a.dump, np.uint8)
    if raw.size == 0 or raw.size % (a.layers * a.row_bytes):
        sys.exit(f"FAIL: {raw.size} bytes is not whole rows of {a.layers} layers x "
                 f"{a.row_bytes} bytes")
    rows = raw.size // (a.layers * a.row_bytes)
    if rows < a.written:
        sys.exit(f"FAIL: {rows} rows per layer, {a.written} written")
    cache = raw.reshape(a.layers, rows, a.row_bytes)
    for layer in range(a.layers):
        filled = cache[layer].any(axis=1)
        if not filled[:a.written].all():
            sys.exit(f"FAIL: layer {layer}: row {int(np.argmin(filled[:a.written]))} is zero")
        if filled[a.written:].any():
            sys.exit(f"FAIL: layer {layer}: row {a.written + int(np.argmax(filled[a.written:]))} "
                     "past the position holds data")
        if a.fp8_latent:
            groups = a.fp8_latent // 128
            scales = cache[layer, :a.written, a.fp8_latent:a.fp8_latent + 4 * groups].copy()
            s = scales.view(np.float32)
            if not (np.isfinite(s).all() and (s > 0).all()):
                sys.exit(f"FAIL: layer {layer}: scales {s.ravel()[:4].tolist()}...")
    parts = check_layout(a.dump + ".json", a, rows)
    print(f"ok: {a.layers} layers x {rows} rows of {a.row_bytes} bytes, "
          f"{a.written} written; {parts}")


def check_layout(path, a, rows):
    """DUMP.json against the arguments: its parts as 'name [begin, end)'."""
    if not os.path.exists(path):
        sys.exit(f"FAIL: no layout {path} beside the dump")
    with open(path) as f:
        lay = json.load(f)
    for key, want in (("layers", a.layers), ("row_bytes", a.row_bytes), ("rows", rows)):
        if lay.get(key) != want:
            sys.exit(f"FAIL: layout {key} {lay.get(key)}, expected {want}")
    end = 0
    for p in lay["parts"]:
        if p["begin"] != end or p["end"] <= p["begin"]:
            sys.exit(f"FAIL: layout part {p} does not follow byte {end}")
        end = p["end"]
    if end != a.row_bytes:
        sys.exit(f"FAIL: layout parts end at byte {end} of {a.row_bytes}")
    if a.fp8_latent:
        want = {"name": "latent scales", "begin": a.fp8_latent,
                "end": a.fp8_latent + 4 * (a.fp8_latent // 128)}
        if want not in lay["parts"]:
            sys.exit(f"FAIL: layout has no {want}")
    return ", ".join(f"{p['name']} [{p['begin']}, {p['end']})" for p in lay["parts"])


if __name__ == "__main__":
    main()
