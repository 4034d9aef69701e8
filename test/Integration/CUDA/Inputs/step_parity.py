"""The engine's mixed batch (a chunked prefill beside decodes and short
prompts, teacher-forced, every logits row returned) on two (artifact,
device, executor) sides; prints the largest difference of their logits
and "ok" when within --atol and the first side ran through @ragged_step.
Usage: step_parity.py DS_BIN WEIGHTS A_ARTIFACT A_DEVICE A_EXECUTOR
                      B_ARTIFACT B_DEVICE B_EXECUTOR --atol X"""
import argparse
import os
import sys

ap = argparse.ArgumentParser()
ap.add_argument("ds_bin")
ap.add_argument("weights")
ap.add_argument("sides", nargs=6)
ap.add_argument("--atol", type=float, required=True)
ap.add_argument("--prompts", default="40,17,6,1")
ap.add_argument("--forced", type=int, default=8)
ap.add_argument("--budget", type=int, default=24)
args = ap.parse_args()
sys.path.insert(0, os.path.join(args.ds_bin, os.pardir, "python"))
import dsmlir  # noqa: E402
import numpy as np  # noqa: E402

rng = np.random.default_rng(7)
lengths = [int(n) for n in args.prompts.split(",")]
prompts = [rng.integers(2, 60, size=n).tolist() for n in lengths]
forced = [rng.integers(2, 60, size=args.forced).tolist() for _ in lengths]
rows, stats = [], []
for artifact, device, executor in (args.sides[:3], args.sides[3:]):
    os.environ["DSRT_ENGINE_EXECUTOR"] = executor
    pages = sum((n + args.forced + 63) // 64 for n in lengths) + 1
    engine = dsmlir.Engine(artifact, args.weights, device=device, num_pages=pages,
                           max_num_seqs=len(lengths), max_num_batched_tokens=args.budget,
                           enable_prefix_caching=False)
    outs = engine.generate(prompts, max_new_tokens=args.forced, force_tokens=forced,
                           return_logits=True)
    rows.append([np.asarray(o["logits"]) for o in outs])
    stats.append(engine.stats())
diff = max(float(np.abs(a - b).max()) for a, b in zip(*rows))
through_step = stats[0]["step_calls"] == stats[0]["steps"] > 0
ok = diff <= args.atol and through_step
print(f"{'ok' if ok else 'FAIL'}: max diff {diff:.2e} (atol {args.atol}) over "
      f"{sum(len(r) for r in rows[0])} rows, {stats[0]['step_calls']} step calls in "
      f"{stats[0]['steps']} engine steps")
sys.exit(0 if ok else 1)
