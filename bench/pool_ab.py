#!/usr/bin/env python3
"""Two threads on the pool: prefill and decode tok/s of two builds, interleaved.

Runs `ds-cpu-bench model ART CKPT PROMPT STEPS REPS` for build A and build B
alternately (--pairs times per dtype, each build with its own artifacts:
B's generated code may split kernels A's keeps on one thread) and prints,
per dtype, the medians of A and B, B / A, and what B's pool reports: the
share of a warm prefill's (and a decode step's) wall time inside parallel
regions and the share of threads x wall time in which a thread had no work
(`*_idle_core_share`, printed by builds that count busy time). The load
average before and after is printed too: on the shared 2-core build
machine wall-clock rates move +-30% with other jobs, so compare only
interleaved pairs run at the same time.

    /usr/bin/python3 bench/pool_ab.py --a /work/main/build/bin \\
        --work-a /tmp/s5/bench --b build/bin --work-b /tmp/serial/art \\
        --ckpt /tmp/s5/bench --pairs 4 --rt
"""
import argparse
import json
import os
import statistics
import subprocess

FIELDS = ("prefill_tokens_per_second", "decode_tokens_per_second",
          "prefill_region_time_share", "prefill_idle_core_share",
          "prefill_worker_chunk_share", "decode_region_time_share",
          "decode_idle_core_share")


def run(bin_dir, art, ckpt, prompt, steps, reps, prefix):
    out = subprocess.run(
        prefix + [os.path.join(bin_dir, "ds-cpu-bench"), "model", art, ckpt,
                  str(prompt), str(steps), str(reps)],
        check=True, capture_output=True, text=True, timeout=600).stdout
    return json.loads(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--a", required=True, help="build A's bin directory")
    ap.add_argument("--b", required=True, help="build B's bin directory")
    ap.add_argument("--work-a", required=True, help="A's model-DTYPE.dsa")
    ap.add_argument("--work-b", required=True, help="B's model-DTYPE.dsa")
    ap.add_argument("--ckpt", required=True, help="holds ckpt-DTYPE/")
    ap.add_argument("--dtypes", default="bf16,f32,fp8")
    ap.add_argument("--prompt", type=int, default=256)
    ap.add_argument("--steps", type=int, default=32)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--pairs", type=int, default=3)
    ap.add_argument("--rt", action="store_true",
                    help="run under `chrt -f 10` (root): other jobs' "
                         "threads no longer preempt the two measured")
    args = ap.parse_args()
    prefix = ["chrt", "-f", "10"] if args.rt else []
    print("load average before: %s" % " ".join(
        f"{x:.2f}" for x in os.getloadavg()))
    for dtype in args.dtypes.split(","):
        ckpt = os.path.join(args.ckpt, f"ckpt-{dtype}")
        got = {"A": [], "B": []}
        for _ in range(args.pairs):
            for name, bin_dir, work in (("A", args.a, args.work_a),
                                        ("B", args.b, args.work_b)):
                art = os.path.join(work, f"model-{dtype}.dsa")
                got[name].append(run(bin_dir, art, ckpt, args.prompt,
                                     args.steps, args.reps, prefix))
        print(f"{dtype}:")
        for f in FIELDS:
            med = {}
            for name in ("A", "B"):
                vals = [r[f] for r in got[name] if f in r]
                med[name] = statistics.median(vals) if vals else None
            if med["B"] is None:
                continue
            line = f"  {f:28s} A {'-':>8} B {med['B']:8.3f}"
            if med["A"]:
                line = (f"  {f:28s} A {med['A']:8.3f} B {med['B']:8.3f} "
                        f"B/A {med['B'] / med['A']:.3f}")
            print(line)
    print("load average after: %s" % " ".join(
        f"{x:.2f}" for x in os.getloadavg()))


if __name__ == "__main__":
    main()
