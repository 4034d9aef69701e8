#!/usr/bin/env python3
"""Whole-model prefill and decode tok/s of two builds, interleaved (wall clock).

Runs `ds-cpu-bench model MODEL-DTYPE.dsa CKPT-DTYPE PROMPT STEPS REPS` with
build A's tools on --work-a's artifacts and build B's on --work-b's (each
build's own compiler output, as bench/cpu_kernels.py leaves in its --work
folder), alternating, the order swapped every pair (a side that always runs
first measures a few percent apart from itself, bench/RESULTS.md). Prints
per dtype the median of B / A over the pairs and each side's median tok/s.
Wall clock: use it at low load; on a busy machine bench/cpu_time.py's CPU
time per token is the steadier measure.

    /usr/bin/python3 bench/model_ab.py --a /work/main/build/bin \\
        --work-a /tmp/old/bench --b build/bin --work-b /tmp/new/bench --pairs 15
"""
import argparse
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cpu_kernels import probe  # noqa: E402


def run(bin_dir, work, dtype, prompt, steps, reps):
    j = probe(bin_dir, "model", os.path.join(work, f"model-{dtype}.dsa"),
              os.path.join(work, f"ckpt-{dtype}"), prompt, steps, reps)
    return j["prefill_tokens_per_second"], j["decode_tokens_per_second"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--a", required=True, help="build A's bin folder")
    ap.add_argument("--b", required=True, help="build B's bin folder")
    ap.add_argument("--work-a", required=True)
    ap.add_argument("--work-b", required=True)
    ap.add_argument("--dtypes", default="bf16,fp8,f32")
    ap.add_argument("--pairs", type=int, default=5)
    ap.add_argument("--prompt", type=int, default=256)
    ap.add_argument("--steps", type=int, default=16)
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args()
    print("| dtype | pairs | prefill B / A | decode B / A | prefill tok/s A, B "
          "| decode tok/s A, B |")
    print("|---|---|---|---|---|---|")
    for dtype in args.dtypes.split(","):
        a_runs, b_runs = [], []
        for i in range(args.pairs):
            sides = [("a", args.a, args.work_a), ("b", args.b, args.work_b)]
            if i % 2:
                sides.reverse()
            for name, bin_dir, work in sides:
                r = run(bin_dir, work, dtype, args.prompt, args.steps, args.reps)
                (a_runs if name == "a" else b_runs).append(r)
        ratio = lambda k: statistics.median(b[k] / a[k] for a, b in zip(a_runs, b_runs))
        med = lambda runs, k: statistics.median(r[k] for r in runs)
        print(f"| {dtype} | {args.pairs} | {ratio(0):.3f}x | {ratio(1):.3f}x "
              f"| {med(a_runs, 0):.0f}, {med(b_runs, 0):.0f} "
              f"| {med(a_runs, 1):.1f}, {med(b_runs, 1):.1f} |", flush=True)


if __name__ == "__main__":
    main()
