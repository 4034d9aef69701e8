#!/usr/bin/env python3
"""A model partitioned over ranks (ds-compile --tp/--ep, ds-run under
mpiexec) against the same model on one rank and the float64 reference.

Writes a random checkpoint of a preset, compiles it twice (one rank; the
given layout), runs both with teacher forcing, and checks:
  - the partitioned run's logits (every prompt row and forced decode step)
    within --atol of the single-rank run (only summation order differs);
  - both within --ref-atol of the float64 reference;
  - the partitioned run's greedy continuation (rank 0 samples, every rank
    feeds its token) equal to the single-rank one.
Prints one line per check; exits 1 on the first failure.
"""
import argparse
import os
import shlex
import subprocess
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ds_testing import checkpoint  # noqa: E402
from ds_testing.reference import ReferenceModel  # noqa: E402


def run(cmd, timeout=300):
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if r.returncode != 0:
        sys.exit(f"FAIL: {' '.join(cmd)} exited {r.returncode}: {r.stderr.strip()}")
    return r.stdout


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", required=True, choices=sorted(checkpoint.PRESETS))
    ap.add_argument("--bin", required=True)
    ap.add_argument("--mpiexec", required=True, help="the launcher command line")
    ap.add_argument("--tp", type=int, default=1)
    ap.add_argument("--ep", type=int, default=1)
    ap.add_argument("--dp-attention", action="store_true",
                    help="compile with --dp-attention (every rank runs the "
                         "same sequences under ds-run, so each dispatches "
                         "all of them: the degenerate data-parallel case)")
    ap.add_argument("--weights-dtype", default="f32", choices=["f32", "bf16", "fp8"])
    ap.add_argument("--prompt", type=int, default=12)
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--atol", type=float, default=1e-4)
    ap.add_argument("--ref-atol", type=float, default=1e-4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--skew-experts", action="store_true",
                    help="imbalanced routing: +3 on the router bias of rank "
                         "0's experts (noaux_tc selects by score + bias, "
                         "scores in (0, 1)), so rank 0 receives every token")
    ap.add_argument("--work", default=None)
    args = ap.parse_args()

    ranks = max(args.tp, args.ep)
    work = args.work or tempfile.mkdtemp(prefix=f"ds-parallel-{args.preset}-")
    os.makedirs(work, exist_ok=True)
    ckpt = os.path.join(work, "ckpt")
    cfg = checkpoint.PRESETS[args.preset]()
    weights = checkpoint.random_weights(cfg, seed=args.seed)
    if args.skew_experts:
        skewed = [n for n in weights if n.endswith("e_score_correction_bias")]
        if not skewed:
            sys.exit(f"FAIL: --skew-experts: {args.preset} has no router bias")
        for n in skewed:
            weights[n][: cfg["n_routed_experts"] // ranks] += 3.0
    checkpoint.write_checkpoint(ckpt, cfg, weights=weights, dtype=args.weights_dtype,
                                seed=args.seed)
    compile_ = os.path.join(args.bin, "ds-compile")
    single, parallel = os.path.join(work, "one.dsa"), os.path.join(work, "par.dsa")
    run([compile_, ckpt, "-o", single])
    run([compile_, ckpt, "-o", parallel, "--tp", str(args.tp), "--ep", str(args.ep)]
        + (["--dp-attention"] if args.dp_attention else []))

    rng = np.random.default_rng(args.seed + 1)
    seq = rng.integers(2, cfg["vocab_size"], size=args.prompt + args.steps).tolist()
    prompt, forced = seq[:args.prompt], seq[args.prompt:]
    ds_run = os.path.join(args.bin, "ds-run")
    common = ["--weights", ckpt, "--prompt-tokens", ",".join(map(str, prompt))]
    forcing = ["--force-tokens", ",".join(map(str, forced))]
    mpi = shlex.split(args.mpiexec) + ["-n", str(ranks)]

    one_npy, par_npy = os.path.join(work, "one.npy"), os.path.join(work, "par.npy")
    run([ds_run, single] + common + forcing + ["--dump-logits", one_npy])
    run(mpi + [ds_run, parallel] + common + forcing + ["--dump-logits", par_npy])
    one, par = np.load(one_npy), np.load(par_npy)
    layout = f"tp={args.tp} ep={args.ep} on {ranks} ranks"
    if args.dp_attention:
        layout += " (dp attention)"
    if args.skew_experts:
        layout += " (skewed routing)"
    if one.shape != par.shape:
        sys.exit(f"FAIL: {layout}: logits shape {par.shape}, one rank {one.shape}")
    d = np.abs(par - one).max()
    status = "ok" if d <= args.atol else "FAIL"
    print(f"{status}: {args.preset} {layout} vs one rank: max |diff| {d:.3g} "
          f"(atol {args.atol})")
    if status == "FAIL":
        sys.exit(1)

    ref = ReferenceModel.load(ckpt)
    ref_logits = ref.forward(seq, 0, ref.new_cache("f32", "nearest"))
    d = np.abs(par - ref_logits).max()
    status = "ok" if d <= args.ref_atol else "FAIL"
    print(f"{status}: {args.preset} {layout} vs float64 reference: max |diff| {d:.3g} "
          f"(atol {args.ref_atol})")
    if status == "FAIL":
        sys.exit(1)

    greedy = ["--max-new-tokens", str(args.steps)]
    a = run([ds_run, single] + common + greedy).strip()
    b = run(mpi + [ds_run, parallel] + common + greedy).strip()
    status = "ok" if a == b else "FAIL"
    print(f"{status}: {args.preset} {layout} greedy tokens {b} (one rank {a})")
    if status == "FAIL":
        sys.exit(1)


if __name__ == "__main__":
    main()
