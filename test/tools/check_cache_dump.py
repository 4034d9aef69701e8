#!/usr/bin/env python3
"""Checks a session cache written by DSRT_DEBUG_CACHE (runtime/src/api/
Session.cpp): [layers, rows, row bytes] as the kernels left it.

    check_cache_dump.py DUMP --layers L --row-bytes B --written N [--fp8-latent DC]

Every layer's rows [0, N) must hold data and rows past N be zero (the cache
starts zeroed and nothing writes past the position); with --fp8-latent, the
written rows' f32 scales (bytes [DC, DC + 4 * DC / 128)) must be positive
and finite. Prints one summary line; exits 1 on the first violation."""
import argparse
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
    print(f"ok: {a.layers} layers x {rows} rows of {a.row_bytes} bytes, "
          f"{a.written} written")


if __name__ == "__main__":
    main()
