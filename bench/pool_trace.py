#!/usr/bin/env python3
"""Where a decode step's (or a prefill's) wall time goes, per parallel region shape.

Runs `ds-cpu-bench model` twice with DSRT_POOL_TRACE=1 (the runtime's
thread pool then prints, at exit, every parallelFor shape (n, grain) with
its calls and wall time), once with 1 decode step and once with 1 + STEPS,
and prints the difference per step: a shape's calls per step, the share
split over the pool, milliseconds per step and microseconds per call. The
prefill and the first step cancel out. "Outside the pool" is the decode
steps' wall time less all of that: the caller's own code between calls
(single-threaded generated kernels, runtime entries).

With --prefill REPS the two runs take no decode step and 2 and 2 + REPS
repetitions of the benchmark's prefill pair (the prompt with every row's
logits, then as generation runs it, the last row's only): the table is per
pair, and "outside the pool" is the pair's best wall time less the regions.

Usage: /usr/bin/python3 bench/pool_trace.py ARTIFACT CKPT [--steps 100]
       [--prompt 256] [--prefill REPS] [--bin build/bin]
Prefix with `chrt -f 10` on a shared machine to measure a quiet run.
"""
import argparse
import json
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The wait fields are absent from older runtimes' lines (read as zeros).
LINE = re.compile(r"dsrt-pool n=(\d+) grain=(\d+) calls=(\d+) split=(\d+) seconds=([\d.]+)"
                  r"(?: busy=[\d.]+ wait=([\d.]+) worker_start=([\d.]+) no_worker=(\d+))?")


def run(args, steps, reps=1):
    env = dict(os.environ, DSRT_POOL_TRACE="1")
    out = subprocess.run([os.path.join(args.bin, "ds-cpu-bench"), "model", args.artifact,
                          args.ckpt, str(args.prompt), str(steps), str(reps)],
                         env=env, capture_output=True, text=True, check=True)
    shapes = {}
    for line in out.stderr.splitlines():
        if m := LINE.match(line):
            shapes[(int(m[1]), int(m[2]))] = (int(m[3]), int(m[4]), float(m[5]),
                                              float(m[6] or 0), float(m[7] or 0),
                                              int(m[8] or 0))
    r = json.loads(out.stdout)
    if args.prefill:
        # The best pair: all rows' logits, then the last row's only.
        return shapes, args.prompt * (1 / r["prefill_tokens_per_second"]
                                      + 1 / r["prefill_last_row_tokens_per_second"])
    return shapes, steps / r["decode_tokens_per_second"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("artifact")
    ap.add_argument("ckpt")
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--prompt", type=int, default=256)
    ap.add_argument("--prefill", type=int, default=0, metavar="REPS")
    ap.add_argument("--bin", default=os.path.join(ROOT, "build", "bin"))
    args = ap.parse_args()
    if args.prefill:
        base, _ = run(args, 0, 2)
        more, pair = run(args, 0, 2 + args.prefill)
        args.steps = args.prefill
        base_decode, more_decode = 0.0, pair * args.steps
    else:
        base, base_decode = run(args, 1)
        more, more_decode = run(args, 1 + args.steps)
    rows, total = [], 0.0
    for key, (calls, split, seconds, wait, start, none) in sorted(more.items()):
        b = base.get(key, (0, 0, 0.0, 0.0, 0.0, 0))
        dc, ds, dt = calls - b[0], split - b[1], seconds - b[2]
        if dc <= 0:
            continue
        ms = dt * 1e3 / args.steps
        total += ms
        # The caller's wait after its last chunk, per split call; the first
        # worker's start after the region's, per split call a worker joined.
        dw, dn = wait - b[3], none - b[5]
        joined = ds - dn
        ds_start = (start - b[4]) / joined * 1e6 if joined > 0 else 0.0
        rows.append((key, dc / args.steps, ds / max(dc, 1), ms, dt / dc * 1e6,
                     dw * 1e3 / args.steps, dw / max(ds, 1) * 1e6, ds_start,
                     dn / max(ds, 1)))
    step = (more_decode - base_decode) * 1e3 / args.steps
    between = step - total
    if args.prefill:
        print(f"{args.prompt}-token prefill pair, {args.prefill} reps: {step:.3f} ms/pair (best), "
              f"{sum(r[1] for r in rows):.0f} parallelFor calls/pair (columns: per pair)")
    else:
        print(f"{args.steps} steps after a {args.prompt}-token prompt: {step:.3f} ms/step, "
              f"{sum(r[1] for r in rows):.0f} parallelFor calls/step")
    waits = sum(r[5] for r in rows)
    print("| n | grain | calls/step | split | ms/step | share | us/call | wait ms/step "
          "| wait us/call | worker start us | no worker |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for (n, grain), per, split, ms, us, wms, wus, start, none in rows:
        print(f"| {n} | {grain} | {per:.0f} | {split:.0%} | {ms:.3f} | {ms / step:.1%} | {us:.1f} "
              f"| {wms:.3f} | {wus:.1f} | {start:.1f} | {none:.0%} |")
    print(f"| outside the pool | | | | {between:.3f} | {between / step:.1%} | | | | | |")
    print(f"caller waiting at region ends: {waits:.3f} ms/step ({waits / step:.1%})")


if __name__ == "__main__":
    sys.exit(main())
