#!/usr/bin/env python3
"""CPU time per decoded token and per prefill token, two builds side by side.

On a machine shared with other jobs (the project's 2-core build machine at
a load average of 10-25) wall-clock tok/s measures the scheduler more than
the kernels: a runnable thread gets a fraction of a core. The CPU time a
run consumes (user + system, from wait4) is what the kernels cost, stalls
on memory included, whatever else runs. This runs `ds-cpu-bench model` on
one thread (DSRT_NUM_THREADS=1: no pool, so no worker spinning is counted)
with a short and a long decode, and a short and a long prompt, and takes
differences, so load time and the fixed costs cancel:

    decode CPU ms/token  = (cpu(prompt 8, S steps) - cpu(prompt 8, 8 steps)) / (S - 8)
    prefill CPU ms/token = (cpu(prompt P, 8 steps) - cpu(prompt 8, 8 steps)) / (P - 8)

For each dtype of bench/cpu_kernels.py's model (its --work directory must
hold the checkpoints and artifacts: run that first), builds A and B run
alternately --pairs times; the table shows the medians and B / A.

With --batched WORK (bench/batched_decode.py's --work, run that first) and
--batches, it measures instead the engine's batched decode (issue #13's
workload: B requests of 32 prompt tokens through dsmlir.Engine, one
thread): CPU ms per decode step = (cpu(24 steps) - cpu(8 steps)) / 16.

    /usr/bin/python3 bench/cpu_time.py --a /work/main/build/bin --b build/bin \\
        --work /tmp/cpuk/bench
    /usr/bin/python3 bench/cpu_time.py --a /work/main/build/bin --b build/bin \\
        --batched /tmp/bd --batches 1,8,16,64

--work-b DIR gives B its own artifacts (compiled by B's ds-compile) when
they call runtime functions A's libdsrt does not have.
"""
import argparse
import os
import statistics
import subprocess


def cpu_seconds(bin_dir, art, ckpt, prompt, steps):
    env = dict(os.environ, DSRT_NUM_THREADS="1")
    p = subprocess.Popen([os.path.join(bin_dir, "ds-cpu-bench"), "model", art, ckpt,
                          str(prompt), str(steps), "1"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    _, status, ru = os.wait4(p.pid, 0)
    if status != 0:
        raise SystemExit(f"cpu_time: ds-cpu-bench model {art} failed ({status}): "
                         f"{p.stderr.read().decode()[-300:]}")
    return ru.ru_utime + ru.ru_stime


def engine_child(build, work, batch, steps):
    """Runs batched_decode.py's workload (in the child process measured)."""
    import sys
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    sys.path[:0] = [os.path.join(build, "python"), os.path.join(root, "bench"),
                    os.path.join(root, "test", "tools")]
    import dsmlir
    import batched_decode
    import cpu_kernels
    cfg = cpu_kernels.config()
    cfg.update(n_routed_experts=64)
    batched_decode.measure(dsmlir, os.path.join(work, "model-bf16.dsa"),
                           os.path.join(work, "ckpt-bf16"), cfg, batch, 32, steps, 0)


def engine_cpu_seconds(bin_dir, work, batch, steps):
    build = os.path.dirname(os.path.abspath(bin_dir))
    env = dict(os.environ, DSRT_NUM_THREADS="1")
    p = subprocess.Popen(["/usr/bin/python3", os.path.abspath(__file__), "--engine-child",
                          build, work, str(batch), str(steps)],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    _, status, ru = os.wait4(p.pid, 0)
    if status != 0:
        raise SystemExit(f"cpu_time: the engine at B={batch} failed ({status}): "
                         f"{p.stderr.read().decode()[-300:]}")
    return ru.ru_utime + ru.ru_stime


def batched(args):
    print(f"one thread; dsmlir.Engine, B requests of 32 prompt tokens; CPU ms per decode "
          f"step = (cpu(24 steps) - cpu(8 steps)) / 16; {args.pairs} alternating pairs, "
          f"medians; load average at start: {loadavg()}")
    print()
    print("| batch | CPU ms/step A | B | B / A |")
    print("|---|---|---|---|")
    for batch in [int(b) for b in args.batches.split(",")]:
        runs = {"a": [], "b": []}
        for _ in range(args.pairs):
            for side in ("a", "b"):
                d = getattr(args, side)
                runs[side].append((engine_cpu_seconds(d, args.batched, batch, 24) -
                                   engine_cpu_seconds(d, args.batched, batch, 8)) / 16 * 1e3)
        a, b = statistics.median(runs["a"]), statistics.median(runs["b"])
        print(f"| {batch} | {a:.1f} | {b:.1f} | {b / a:.2f}x |", flush=True)


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def per_token(bin_dir, art, ckpt, prompt, steps):
    base = cpu_seconds(bin_dir, art, ckpt, 8, 8)
    dec = cpu_seconds(bin_dir, art, ckpt, 8, steps)
    pre = cpu_seconds(bin_dir, art, ckpt, prompt, 8)
    return (dec - base) / (steps - 8) * 1e3, (pre - base) / (prompt - 8) * 1e3


def main():
    import sys
    if len(sys.argv) == 6 and sys.argv[1] == "--engine-child":
        return engine_child(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
    ap = argparse.ArgumentParser()
    ap.add_argument("--a", required=True, help="bin directory of the reference build")
    ap.add_argument("--b", required=True, help="bin directory of the build measured")
    ap.add_argument("--work", help="bench/cpu_kernels.py's --work")
    ap.add_argument("--work-b", help="B's artifacts and checkpoints, where B's compiler "
                    "emits calls A's runtime lacks (default: --work for both)")
    ap.add_argument("--batched", help="bench/batched_decode.py's --work")
    ap.add_argument("--batches", default="1,8,16,64")
    ap.add_argument("--prompt", type=int, default=256)
    ap.add_argument("--steps", type=int, default=136)
    ap.add_argument("--pairs", type=int, default=3)
    ap.add_argument("--dtypes", default="f32,bf16,fp8")
    args = ap.parse_args()
    if args.batched:
        return batched(args)
    if not args.work:
        ap.error("--work or --batched is required")
    load = loadavg()
    print(f"one thread; decode {args.steps - 8} steps after a prompt of 8, prefill "
          f"{args.prompt - 8} tokens; {args.pairs} alternating pairs, medians; load "
          f"average at start: {load}")
    print()
    print("| weights | decode CPU ms/token A | B | B / A | prefill CPU ms/token A | B | B / A |")
    print("|---|---|---|---|---|---|---|")
    for dtype in args.dtypes.split(","):
        work = {"a": args.work, "b": args.work_b or args.work}
        runs = {"a": [], "b": []}
        for _ in range(args.pairs):
            for side in ("a", "b"):
                art = os.path.join(work[side], f"model-{dtype}.dsa")
                ckpt = os.path.join(work[side], f"ckpt-{dtype}")
                runs[side].append(per_token(getattr(args, side), art, ckpt, args.prompt,
                                            args.steps))
        med = {s: [statistics.median(r[i] for r in runs[s]) for i in (0, 1)] for s in runs}
        print(f"| {dtype} | {med['a'][0]:.2f} | {med['b'][0]:.2f} | "
              f"{med['b'][0] / med['a'][0]:.2f}x | {med['a'][1]:.2f} | {med['b'][1]:.2f} | "
              f"{med['b'][1] / med['a'][1]:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
