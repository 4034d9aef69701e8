#!/usr/bin/env python3
"""Offline throughput of dsmlir.Engine, like `vllm bench throughput`.

Random prompts (--input-len tokens each, --num-prompts of them, --seed)
are all submitted at once and generate exactly --output-len tokens
(ignore_eos). Reports requests/s, output tok/s, total tok/s, and TTFT
(submission to first token), TPOT (per request: (last - first token time)
/ (output - 1)) and ITL (every gap between a request's tokens): mean,
median, p99. Then the same workload one request at a time through
dsmlir.Model.generate (dsrt_generate), and the engine/sequential ratio.

The model is a generated test checkpoint (--preset of
test/tools/ds_testing/checkpoint.py), compiled here.

    /usr/bin/python3 bench/throughput.py --build build --preset demo \
        --input-len 64 --output-len 32 --num-prompts 32 [--executor session]

With --tp/--ep the engine also runs the model partitioned over ranks
(ds-compile --tp/--ep, the same script started under --mpiexec: rank 0 runs
the engine, the others follow its steps), checks that its tokens are the
one-rank engine's, and prints the partitioned/one-rank throughput ratio
(instead of the sequential comparison).
"""
import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "test", "tools"))
from ds_testing import checkpoint  # noqa: E402


def summary(xs):
    if not xs:
        return "n/a"
    a = np.asarray(xs) * 1e3
    return (f"mean {a.mean():8.2f}  median {np.median(a):8.2f}  "
            f"p99 {np.percentile(a, 99):8.2f} ms")


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--preset", default="demo", choices=sorted(checkpoint.PRESETS))
    ap.add_argument("--dtype", default="f32", help="checkpoint storage dtype")
    ap.add_argument("--input-len", type=int, default=64)
    ap.add_argument("--output-len", type=int, default=32)
    ap.add_argument("--num-prompts", type=int, default=32)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--kv-cache-bytes", type=int, default=0,
                    help="pool size (default: every request fits at once)")
    ap.add_argument("--max-num-seqs", type=int, default=256)
    ap.add_argument("--max-num-batched-tokens", type=int, default=2048)
    ap.add_argument("--prefix-len", type=int, default=0,
                    help="the first N tokens of every prompt are the same "
                         "(a shared system prompt)")
    ap.add_argument("--no-prefix-caching", action="store_true")
    ap.add_argument("--skip-sequential", action="store_true")
    ap.add_argument("--repeat", type=int, default=3,
                    help="runs of each side, alternating; the fastest counts "
                         "(the machine is shared)")
    ap.add_argument("--work", default=None)
    ap.add_argument("--executor", choices=["step", "session"], default=None,
                    help="the engine's executor (DSRT_ENGINE_EXECUTOR); default: "
                         "step when the artifact has @ragged_step")
    ap.add_argument("--tp", type=int, default=1)
    ap.add_argument("--ep", type=int, default=1)
    ap.add_argument("--mpiexec", default="mpiexec",
                    help="the launcher of the partitioned run (--tp/--ep)")
    ap.add_argument("--rank-worker", action="store_true",
                    help=argparse.SUPPRESS)  # one rank of the partitioned run
    return ap.parse_args()


def report(args, best, seq_times, par_best):
    """Prints the engine's figures, then the partitioned or the sequential
    comparison; exits 1 when the partitioned run's tokens differ."""
    ranks = max(args.tp, args.ep)
    elapsed, t0, times, tokens, stats = best
    out_tokens = sum(len(t) for t in times)
    in_tokens = args.input_len * args.num_prompts
    print(f"model {args.preset} ({args.dtype}), {args.num_prompts} prompts x "
          f"{args.input_len} in ({args.prefix_len} shared) / {args.output_len} out, "
          f"seed {args.seed}, prefix caching "
          f"{'off' if args.no_prefix_caching else 'on'}")
    print(f"pool {stats['pages_total']} pages, max_num_seqs "
          f"{args.max_num_seqs}, max_num_batched_tokens {args.max_num_batched_tokens}")
    print(f"engine:     {elapsed:8.3f} s  {args.num_prompts / elapsed:8.2f} req/s  "
          f"{out_tokens / elapsed:9.1f} output tok/s  "
          f"{(in_tokens + out_tokens) / elapsed:9.1f} total tok/s")
    # Event times are C++'s steady_clock and time.monotonic is the same
    # CLOCK_MONOTONIC on Linux; every prompt is added right after t0.
    submit = t0
    ttft = [t[0] - submit for t in times]
    tpot = [(t[-1] - t[0]) / (len(t) - 1) for t in times if len(t) > 1]
    itl = [b - a for t in times for a, b in zip(t, t[1:])]
    print(f"TTFT  {summary(ttft)}")
    print(f"TPOT  {summary(tpot)}")
    print(f"ITL   {summary(itl)}")
    print(f"executor: {'step' if stats.get('step_calls', 0) else 'session'} "
          f"({stats.get('step_calls', 0)} compiled step calls)")
    print(f"steps {stats['steps']}, tokens/step {stats['tokens_per_step']:.1f}, "
          f"preemptions {stats['preemptions']}, prefix hit tokens "
          f"{stats['prefix_hit_tokens']} (copied {stats['prefix_copied_tokens']}, "
          f"recomputed {stats['prefix_recomputed_tokens']})")

    if par_best is not None:
        p = par_best["elapsed"]
        same = par_best["tokens"] == tokens
        print(f"tp={args.tp} ep={args.ep} on {ranks} ranks: {p:8.3f} s  "
              f"{args.num_prompts / p:8.2f} req/s  {out_tokens / p:9.1f} output tok/s  "
              f"(tokens {'equal to' if same else 'DIFFER from'} one rank's)")
        print(f"{ranks} ranks / one rank engine throughput: {elapsed / p:.2f}x "
              f"(one rank: best of {args.repeat}; {ranks} ranks: one run, MPI "
              f"starts once per process)")
        if not same:
            sys.exit(1)

    if seq_times:
        seq = min(seq_times)
        print(f"sequential: {seq:8.3f} s  {args.num_prompts / seq:8.2f} req/s  "
              f"{out_tokens / seq:9.1f} output tok/s  (dsrt_generate, one request "
              f"at a time, fed the engine's tokens)")
        print(f"engine / sequential throughput: {seq / elapsed:.2f}x "
              f"(best of {args.repeat} each)")


def main():
    args = parse_args()
    ranks = max(args.tp, args.ep)
    if args.executor:
        os.environ["DSRT_ENGINE_EXECUTOR"] = args.executor

    sys.path.insert(0, os.path.join(args.build, "python"))
    import dsmlir

    work = args.work or tempfile.mkdtemp(prefix="ds-bench-throughput-")
    ckpt = os.path.join(work, "ckpt")
    cfg = checkpoint.PRESETS[args.preset]()
    need = args.input_len + args.output_len
    if need > cfg["max_position_embeddings"]:
        cfg["max_position_embeddings"] = need
    art = os.path.join(work, "model.dsa")
    par = os.path.join(work, f"model-tp{args.tp}-ep{args.ep}.dsa")
    if not args.rank_worker:
        checkpoint.write_checkpoint(ckpt, cfg, dtype=args.dtype, seed=args.seed)
        dsmlir.compile(ckpt, art)
        if ranks > 1:
            subprocess.run([os.path.join(args.build, "bin", "ds-compile"), ckpt, "-o", par,
                            "--tp", str(args.tp), "--ep", str(args.ep)], check=True)

    rng = np.random.default_rng(args.seed)
    vocab = cfg["vocab_size"]
    shared = [int(t) for t in rng.integers(0, vocab, args.prefix_len)]
    prompts = [shared + [int(t) for t in rng.integers(0, vocab, args.input_len - args.prefix_len)]
               for _ in range(args.num_prompts)]

    # The pool in pages: the same on one rank and on each rank of a job.
    pages_per_req = -(-need // 64)
    if args.kv_cache_bytes:
        per_token = dsmlir.Model(art, ckpt).info["kv_cache_bytes_per_token"]
        pages = args.kv_cache_bytes // (64 * per_token)
    else:
        pages = args.num_prompts * pages_per_req + 4

    def run_engine(artifact=art):
        eng = dsmlir.Engine(artifact, ckpt, num_pages=pages, max_num_seqs=args.max_num_seqs,
                            max_num_batched_tokens=args.max_num_batched_tokens,
                            max_model_len=need,
                            enable_prefix_caching=not args.no_prefix_caching)
        if eng.rank != 0:
            eng.follow()
            eng.close()
            return None
        t0 = time.monotonic()
        times = [[] for _ in prompts]
        tokens = [[] for _ in prompts]
        for ev in eng.stream(prompts, max_new_tokens=args.output_len, ignore_eos=True):
            if ev["token"] is not None:
                times[ev["prompt_index"]].append(ev["time"])
                tokens[ev["prompt_index"]].append(ev["token"])
        elapsed, stats = time.monotonic() - t0, eng.stats()
        eng.close()
        return elapsed, t0, times, tokens, stats

    if args.rank_worker:
        # One rank of the partitioned run, once: MPI starts once per process
        # (a second model load cannot start it again).
        r = run_engine(par)
        if r is not None:
            print(json.dumps({"elapsed": r[0], "tokens": r[3]}))
        return

    def run_sequential(tokens):
        model = dsmlir.Model(art, ckpt)
        t1 = time.monotonic()
        for p, toks in zip(prompts, tokens):
            # The engine's tokens, forced: the same work, eos or not.
            model.generate(p, args.output_len, capacity=need, force_tokens=toks)
        return time.monotonic() - t1

    best, seq_times, par_best = None, [], None
    for _ in range(args.repeat):
        r = run_engine()
        if best is None or r[0] < best[0]:
            best = r
        if not args.skip_sequential and ranks == 1:
            seq_times.append(run_sequential(r[3]))
    if ranks > 1:
        me = [sys.executable, os.path.abspath(__file__), "--rank-worker"] + \
            sys.argv[1:] + ["--work", work]
        out = subprocess.run(shlex.split(args.mpiexec) + ["-n", str(ranks)] + me,
                             check=True, stdout=subprocess.PIPE, text=True).stdout
        par_best = json.loads(out.strip().splitlines()[-1])
    report(args, best, seq_times, par_best)


if __name__ == "__main__":
    main()
