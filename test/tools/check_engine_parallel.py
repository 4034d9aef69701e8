#!/usr/bin/env python3
"""The serving engine on a model partitioned over ranks (ds-compile
--tp/--ep, dsmlir.Engine under mpiexec: rank 0 schedules and samples, the
other ranks follow its steps) against the same engine on one rank.

Writes a random checkpoint, compiles it twice (one rank; the layout), and
runs the same mixed batch through both engines: prompts of different
lengths (one crossing a 64-token page), chunked by a small token budget so
that steps mix prefill chunks with decodes, teacher-forced with
return_logits (every row compared) plus greedy requests (tokens compared).
Prints one line per check; exits 1 on the first failure.

  check_engine_parallel.py --preset tiny_v3 --tp 2 --bin build/bin \\
      --mpiexec "timeout 120 mpiexec" --work DIR
  ... --kill follower|leader[-hang] --timeout 3   # a rank dies mid-run

With --kill, rank 0 SIGKILLs a rank (a follower, or itself) after a few
steps, or SIGSTOPs it (-hang): the job must end, non-zero, soon after, with
a line saying why (mpiexec's for a dead rank, the communicator's timeout
for a hung one); the script prints whether it did and the job's output.

--worker is the per-rank program mpiexec starts (the script itself).
"""
import argparse
import os
import shlex
import signal
import subprocess
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ds_testing import checkpoint  # noqa: E402

PROMPT_LENS = [5, 70, 17, 33]  # 70 crosses a page
FORCED = 6
GREEDY = 5


def batch(vocab, seed):
    rng = np.random.default_rng(seed)
    prompts = [rng.integers(2, vocab, size=n).tolist() for n in PROMPT_LENS]
    forced = [rng.integers(2, vocab, size=FORCED).tolist() for _ in PROMPT_LENS]
    return prompts, forced


def worker(args):
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(args.bin)), "python"))
    import dsmlir

    # A follower only loads the model: rank 0's options decide.
    eng = dsmlir.Engine(args.artifact, args.weights, num_pages=1 if args.bad_pool else 32,
                        max_num_seqs=8, max_num_batched_tokens=24, max_model_len=128,
                        enable_prefix_caching=False)
    if eng.rank != 0:
        with open(os.path.join(args.out + f".pid{eng.rank}"), "w") as f:
            f.write(str(os.getpid()))
        eng.follow()
        eng.close()
        return
    prompts, forced = batch(eng.info["vocab_size"], args.seed)
    # Nothing to do for a while: the followers wait through it.
    time.sleep(args.idle)
    if args.kill:
        # A long greedy run; after a few steps a rank dies.
        steps = 0
        for ev in eng.stream(prompts, max_new_tokens=40, ignore_eos=True):
            steps += 1
            if steps == 3:
                # Killed, the launcher sees the rank die; stopped, only the
                # collectives' timeout can tell.
                sig = signal.SIGSTOP if args.kill.endswith("-hang") else signal.SIGKILL
                if args.kill.startswith("leader"):
                    os.kill(os.getpid(), sig)
                pidfile = args.out + ".pid1"
                for _ in range(100):  # the follower writes it before following
                    if os.path.exists(pidfile):
                        break
                    time.sleep(0.05)
                os.kill(int(open(pidfile).read()), sig)
        eng.close()
        sys.exit("FAIL: the engine kept running after a rank was killed")
    outs = eng.generate(prompts, force_tokens=forced, return_logits=True)
    greedy = eng.generate(prompts, max_new_tokens=GREEDY, ignore_eos=True)
    stats = eng.stats()
    eng.close()
    arrays = {f"logits{i}": o["logits"] for i, o in enumerate(outs)}
    arrays.update({f"greedy{i}": np.array(o["tokens"]) for i, o in enumerate(greedy)})
    arrays["mixed_steps"] = np.array(stats["steps"])
    np.savez(args.out, **arrays)


def run(cmd, timeout=300, env=None):
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    if r.returncode != 0:
        sys.exit(f"FAIL: {' '.join(cmd)} exited {r.returncode}: {r.stderr.strip()}")
    return r.stdout


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--worker", action="store_true")
    ap.add_argument("--artifact")
    ap.add_argument("--weights")
    ap.add_argument("--out")
    ap.add_argument("--preset", default="tiny_v3", choices=sorted(checkpoint.PRESETS))
    ap.add_argument("--bin", required=True)
    ap.add_argument("--mpiexec")
    ap.add_argument("--tp", type=int, default=1)
    ap.add_argument("--ep", type=int, default=1)
    ap.add_argument("--atol", type=float, default=1e-4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--kill", choices=["follower", "leader", "follower-hang", "leader-hang"])
    ap.add_argument("--timeout", type=float, default=3.0,
                    help="DSRT_COMM_TIMEOUT for --kill")
    ap.add_argument("--idle", type=float, default=0.0,
                    help="rank 0 waits this long before its requests "
                         "(with DSRT_COMM_TIMEOUT=--timeout)")
    ap.add_argument("--bad-pool", action="store_true",
                    help="rank 0's engine options are refused: every rank "
                         "fails with its reason")
    ap.add_argument("--work", required=False)
    args = ap.parse_args()
    if args.worker:
        return worker(args)

    ranks = max(args.tp, args.ep)
    work = args.work
    os.makedirs(work, exist_ok=True)
    ckpt = os.path.join(work, "ckpt")
    # Room for a prompt past one page.
    cfg = checkpoint.PRESETS[args.preset]()
    cfg["max_position_embeddings"] = 128
    checkpoint.write_checkpoint(ckpt, cfg, weights=checkpoint.random_weights(cfg, args.seed),
                                seed=args.seed)
    compile_ = os.path.join(args.bin, "ds-compile")
    single, parallel = os.path.join(work, "one.dsa"), os.path.join(work, "par.dsa")
    run([compile_, ckpt, "-o", parallel, "--tp", str(args.tp), "--ep", str(args.ep)])
    me = [sys.executable, os.path.abspath(__file__), "--worker", "--bin", args.bin,
          "--weights", ckpt, "--seed", str(args.seed)]
    mpi = shlex.split(args.mpiexec) + ["-n", str(ranks)]
    layout = f"tp={args.tp} ep={args.ep} on {ranks} ranks"

    if args.kill:
        env = dict(os.environ, DSRT_COMM_TIMEOUT=str(args.timeout))
        start = time.monotonic()
        r = subprocess.run(mpi + me + ["--artifact", parallel, "--kill", args.kill,
                                       "--out", os.path.join(work, "kill")],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           timeout=120, env=env)
        took = time.monotonic() - start
        # Start-up (MPI, the model, Python) takes a few seconds on a busy
        # machine; the job must end at most a few timeouts after the kill.
        bound = 20 + 3 * args.timeout
        print(f"{args.kill}: exit {'non-zero' if r.returncode else 0}, "
              f"{'within' if took < bound else 'after'} {bound:g} s")
        sys.stdout.write(r.stdout)
        return

    if args.bad_pool:
        r = subprocess.run(mpi + me + ["--artifact", parallel, "--bad-pool",
                                       "--out", os.path.join(work, "bad")],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           timeout=120)
        print(f"bad pool: exit {'non-zero' if r.returncode else 0}")
        sys.stdout.write(r.stdout)
        return

    run([compile_, ckpt, "-o", single])
    one_out, par_out = os.path.join(work, "one.npz"), os.path.join(work, "par.npz")
    run(me + ["--artifact", single, "--out", one_out])
    env = None
    if args.idle:
        env = dict(os.environ, DSRT_COMM_TIMEOUT=str(args.timeout))
        layout += f" (idle {args.idle:g} s, timeout {args.timeout:g} s)"
    run(mpi + me + ["--artifact", parallel, "--out", par_out, "--idle", str(args.idle)],
        env=env)
    one, par = np.load(one_out), np.load(par_out)
    if int(par["mixed_steps"]) != int(one["mixed_steps"]):
        sys.exit(f"FAIL: {layout}: {int(par['mixed_steps'])} engine steps, one rank "
                 f"{int(one['mixed_steps'])}")
    d = 0.0
    for i in range(len(PROMPT_LENS)):
        a, b = one[f"logits{i}"], par[f"logits{i}"]
        if a.shape != b.shape or a.shape[0] != PROMPT_LENS[i] + FORCED:
            sys.exit(f"FAIL: {layout}: request {i} logits {b.shape}, one rank {a.shape}")
        d = max(d, float(np.abs(a - b).max()))
    status = "ok" if d <= args.atol else "FAIL"
    print(f"{status}: {args.preset} engine {layout} mixed batch vs one rank: "
          f"max |diff| {d:.3g} (atol {args.atol})")
    if status == "FAIL":
        sys.exit(1)
    same = all(np.array_equal(one[f"greedy{i}"], par[f"greedy{i}"])
               for i in range(len(PROMPT_LENS)))
    print(f"{'ok' if same else 'FAIL'}: {args.preset} engine {layout} greedy tokens")
    if not same:
        sys.exit(1)


if __name__ == "__main__":
    main()
