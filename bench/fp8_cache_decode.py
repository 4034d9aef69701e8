#!/usr/bin/env python3
"""Decode cost with an FP8 latent cache against the f32 and bf16 caches, at
contexts where attention is a real share of a step, in one run.

bench/fp8_cache.py's model (V3's attention shape: kv_lora_rank 512, rope
64, so a cache row is V3's 656 fp8 bytes per layer; 4 layers, 4 heads,
random weights) compiled with each cache dtype. One session per dtype
prefills to the first context, decodes --steps tokens (timed), prefills to
the next context, decodes again, and so on. The figure is CPU time per
decoded token (the process's user + system time around the decode calls,
one thread by default: DSRT_NUM_THREADS=1), which the other jobs on a
shared machine do not inflate the way they inflate wall time; wall-clock
tok/s is printed beside it.

With --ref BUILD (another build directory, e.g. /work/main/build) each
build compiles its own artifacts and the two run alternately, --pairs
times; the table shows the best run (least CPU time), the fp8/f32 and fp8/bf16 speed ratios of
each build, and this build's speed over the reference's.

    /usr/bin/python3 bench/fp8_cache_decode.py --build build \\
        --ref /work/main/build --contexts 512,2048,4096 --pairs 3
"""
import argparse
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DTYPES = ("f32", "bf16", "fp8")


def model_config(layers, max_positions):
    sys.path.insert(0, os.path.join(ROOT, "test", "tools"))
    from ds_testing import checkpoint
    # bench/fp8_cache.py's model, with room for the longest context.
    return checkpoint, checkpoint._base(
        vocab_size=4096, hidden_size=256, intermediate_size=512, moe_intermediate_size=64,
        num_hidden_layers=layers, num_attention_heads=4, q_lora_rank=96,
        kv_lora_rank=512, qk_nope_head_dim=32, qk_rope_head_dim=64, v_head_dim=32,
        n_routed_experts=16, num_experts_per_tok=4, n_group=4, topk_group=2,
        max_position_embeddings=max_positions,
        rope_scaling={"type": "yarn", "factor": 4.0, "original_max_position_embeddings": 256,
                      "beta_fast": 32, "beta_slow": 1, "mscale": 1.0, "mscale_all_dim": 1.0})


def worker(args):
    """One build's measurements: JSON {dtype: {context: (cpu s/token, wall tok/s)}}."""
    sys.path.insert(0, os.path.join(args.build, "python"))
    import dsmlir
    contexts = [int(c) for c in args.contexts.split(",")]
    out = {}
    for dtype in DTYPES:
        art = os.path.join(args.work, f"{os.path.basename(args.tag)}-{dtype}.dsa")
        m = dsmlir.Model(art, os.path.join(args.work, "ckpt"))
        s = m.session(contexts[-1] + args.steps + 1)
        pos, res = 0, {}
        for c in contexts:
            # Chunks of at most 512 rows keep the prefill's transient
            # buffers small; the tokens only need to vary.
            while pos < c:
                n = min(512, c - pos)
                s.prefill([2 + (i * 7919) % 4000 for i in range(pos, pos + n)])
                pos += n
            tok = 5
            cpu0, wall0 = time.process_time(), time.perf_counter()
            for _ in range(args.steps):
                tok = 2 + int(s.decode(tok).argmax()) % 4000
            cpu = (time.process_time() - cpu0) / args.steps
            wall = time.perf_counter() - wall0
            res[c] = (cpu, args.steps / wall)
            pos += args.steps
        out[dtype] = res
    print(json.dumps(out))


def compile_artifacts(build, tag, work):
    for dtype in DTYPES:
        # Always: the build's compiler is what is measured.
        art = os.path.join(work, f"{tag}-{dtype}.dsa")
        subprocess.run([os.path.join(build, "bin", "ds-compile"), os.path.join(work, "ckpt"),
                        "-o", art, f"--kv-dtype={dtype}"], check=True)


def run_worker(build, tag, args):
    env = dict(os.environ, DSRT_NUM_THREADS=str(args.threads))
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", "--build", build,
           "--tag", tag, "--work", args.work, "--contexts", args.contexts,
           "--steps", str(args.steps)]
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1800)
    if p.returncode:
        sys.exit(f"FAIL: {tag} worker: {p.stderr.strip()[-2000:]}")
    return {d: {int(c): v for c, v in r.items()}
            for d, r in json.loads(p.stdout.strip().splitlines()[-1]).items()}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--ref", default=None, help="a reference build directory")
    ap.add_argument("--contexts", default="512,2048,4096")
    ap.add_argument("--steps", type=int, default=32)
    ap.add_argument("--pairs", type=int, default=1)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--work", default="/tmp/ds-fp8-cache-decode")
    ap.add_argument("--tag", default="this")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        return worker(args)

    contexts = [int(c) for c in args.contexts.split(",")]
    os.makedirs(args.work, exist_ok=True)
    ckpt = os.path.join(args.work, "ckpt")
    if not os.path.exists(os.path.join(ckpt, "config.json")):
        checkpoint, cfg = model_config(args.layers, 8192)
        if contexts[-1] + args.steps + 1 > cfg["max_position_embeddings"]:
            sys.exit("FAIL: contexts past the model's 8192 positions")
        checkpoint.write_checkpoint(ckpt, cfg, seed=0)
    builds = [("this", os.path.abspath(args.build))]
    if args.ref:
        builds.append(("ref", os.path.abspath(args.ref)))
    for tag, build in builds:
        compile_artifacts(build, tag, args.work)

    runs = {tag: [] for tag, _ in builds}
    for i in range(args.pairs):
        order = builds if i % 2 == 0 else builds[::-1]
        for tag, build in order:
            runs[tag].append(run_worker(build, tag, args))

    def med(tag, dtype, c, k):
        # The least disturbed run: the least CPU time, the most tok/s
        # (other jobs only ever add to a run's time).
        vals = [r[dtype][c][k] for r in runs[tag]]
        return min(vals) if k == 0 else max(vals)

    load = os.getloadavg()[0]
    print(f"model: bench/fp8_cache.py's ({args.layers} layers, latent 512, rope 64, 4 heads); "
          f"{args.steps} decode steps per context; DSRT_NUM_THREADS={args.threads}; "
          f"{args.pairs} run(s) per build, the best of them; load average {load:.1f}\n")
    print("| build | context | f32 / bf16 / fp8 CPU ms per token | fp8/f32 speed | "
          "fp8/bf16 speed | wall tok/s f32 / bf16 / fp8 |")
    print("|---|---|---|---|---|---|")
    for tag, _ in builds:
        for c in contexts:
            cpu = {d: med(tag, d, c, 0) for d in DTYPES}
            wall = {d: med(tag, d, c, 1) for d in DTYPES}
            print(f"| {tag} | {c} | {cpu['f32'] * 1e3:.2f} / {cpu['bf16'] * 1e3:.2f} / "
                  f"{cpu['fp8'] * 1e3:.2f} | {cpu['f32'] / cpu['fp8']:.2f}x | "
                  f"{cpu['bf16'] / cpu['fp8']:.2f}x | {wall['f32']:.0f} / {wall['bf16']:.0f} / "
                  f"{wall['fp8']:.0f} |")
    if args.ref:
        print("\nthis build's speed over the reference's (CPU time per token, ref / this):\n")
        print("| context | f32 | bf16 | fp8 |")
        print("|---|---|---|---|")
        for c in contexts:
            print(f"| {c} | " + " | ".join(
                f"{med('ref', d, c, 0) / med('this', d, c, 0):.2f}x" for d in DTYPES) + " |")


if __name__ == "__main__":
    main()
