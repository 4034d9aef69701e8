#!/usr/bin/env python3
"""Prefill CPU time per token, two builds interleaved (one thread).

`ds-cpu-bench model ART CKPT PROMPT 0 REPS` runs two prefills of PROMPT
tokens per rep (generation's, logits of the last row, and a full-logits
prefill) after loading the model. The CPU time (user + system, from wait4)
of REPS reps minus that of one rep, over 2 (REPS - 1) PROMPT tokens, is the
prefill's own CPU cost per token: load and first-call costs cancel, and
other processes on a shared machine cost it only cache, not wall time.
DSRT_NUM_THREADS=1: no pool, so no worker spinning is counted. A and B run
alternately, the order flipped every pair (a side that always ran first
was measured 13-17% apart from itself, bench/RESULTS.md); the medians and
B / A are printed.

    /usr/bin/python3 bench/prefill_cpu_ab.py --a /work/main/build/bin \\
        --b build/bin --work /tmp/s5/bench --pairs 4
"""
import argparse
import os
import statistics
import subprocess


def cpu_seconds(bin_dir, art, ckpt, prompt, reps):
    env = dict(os.environ, DSRT_NUM_THREADS="1")
    cmd = [os.path.join(bin_dir, "ds-cpu-bench"), "model", art, ckpt,
           str(prompt), "0", str(reps)]
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE)
    _, _, ru = os.wait4(p.pid, 0)
    if p.returncode not in (None, 0):
        raise SystemExit(f"{' '.join(cmd)} failed")
    return ru.ru_utime + ru.ru_stime


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--a", required=True, help="bin directory of the reference build")
    ap.add_argument("--b", required=True, help="bin directory of the build measured")
    ap.add_argument("--work", required=True, help="bench/cpu_kernels.py's --work")
    ap.add_argument("--prompt", type=int, default=256)
    ap.add_argument("--reps", type=int, default=4)
    ap.add_argument("--pairs", type=int, default=4)
    ap.add_argument("--dtypes", default="f32,bf16,fp8")
    args = ap.parse_args()
    tokens = 2 * (args.reps - 1) * args.prompt
    print("| weights | prefill CPU ms/token A | B | B / A (A's time over B's: >1 is faster) |")
    print("|---|---|---|---|")
    for dtype in args.dtypes.split(","):
        art = os.path.join(args.work, f"model-{dtype}.dsa")
        ckpt = os.path.join(args.work, f"ckpt-{dtype}")
        ms = {"a": [], "b": []}
        for pair in range(args.pairs):
            order = ["a", "b"] if pair % 2 == 0 else ["b", "a"]
            for side in order:
                bin_dir = getattr(args, side)
                many = cpu_seconds(bin_dir, art, ckpt, args.prompt, args.reps)
                one = cpu_seconds(bin_dir, art, ckpt, args.prompt, 1)
                ms[side].append(1e3 * (many - one) / tokens)
        a, b = statistics.median(ms["a"]), statistics.median(ms["b"])
        print(f"| {dtype} | {a:.3f} | {b:.3f} | {a / b:.3f}x |  "
              f"(A {' '.join(f'{v:.3f}' for v in ms['a'])}; "
              f"B {' '.join(f'{v:.3f}' for v in ms['b'])})", flush=True)


if __name__ == "__main__":
    main()
