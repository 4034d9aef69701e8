#!/usr/bin/env python3
"""Prefill of a long prompt through @ragged_step: the per-sequence MLA form
choice (naive over pages from the cost model's threshold) against the same
artifact forced to the absorbed form, in one run.

The model has DeepSeek-V2-Lite's attention shape (16 heads, kv_lora_rank
512, nope 128, rope 64, v 128, q_proj without q_lora: threshold 171 new
tokens) with a small hidden size, vocabulary and MoE so the weights stay
small (f32, random). `ds-run` prefills a prompt of --prompt tokens as one
sequence of one step (a batch of one on @ragged_step), --repeat times per
artifact; tok/s = prompt tokens / prefill seconds (ds-run --stats-json),
best of the repeats. Prints a Markdown table and the ratio.

With --ref-build DIR the per-sequence artifact is also compiled and run by
that build (its own ds-compile and ds-run), each repeat alternating the
builds, and the table adds it and this build's ratio to it: the naive
form's kernels A/B in one run.

    /usr/bin/python3 bench/naive_prefill.py [--build build] [--prompt 1024]
        [--ref-build /work/main/build]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "test", "tools"))
from ds_testing import checkpoint  # noqa: E402

NEVER = str(2 ** 31)


def config(layers, max_pos):
    cfg = checkpoint.PRESETS["tiny_v2_lite"]()
    cfg.update(vocab_size=1024, hidden_size=512, intermediate_size=1024,
               moe_intermediate_size=128, num_hidden_layers=layers,
               first_k_dense_replace=1, num_attention_heads=16, q_lora_rank=None,
               kv_lora_rank=512, qk_nope_head_dim=128, qk_rope_head_dim=64,
               v_head_dim=128, n_routed_experts=8, num_experts_per_tok=2,
               n_shared_experts=1, max_position_embeddings=max_pos)
    return cfg


def prefill_tok_s(bin_dir, artifact, ckpt, prompt, work):
    stats = os.path.join(work, "stats.json")
    subprocess.run([os.path.join(bin_dir, "ds-run"), artifact, "--weights", ckpt,
                    "--prompt-tokens", ",".join(map(str, prompt)), "--max-new-tokens", "0",
                    "--stats-json", stats], check=True, capture_output=True, timeout=1200)
    with open(stats) as f:
        s = json.load(f)
    return s["prefill_tokens"] / s["prefill_seconds"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--work", default=None)
    ap.add_argument("--prompt", type=int, default=1024)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--ref-build", default=None,
                    help="another build to run the per-sequence form with, alternating")
    args = ap.parse_args()
    bin_dir = os.path.join(args.build, "bin")
    work = args.work or tempfile.mkdtemp(prefix="ds-naive-prefill-")
    ckpt = os.path.join(work, "ckpt")
    if not os.path.exists(os.path.join(ckpt, "config.json")):
        checkpoint.write_checkpoint(ckpt, config(args.layers, max(2048, args.prompt + 64)))
    arts = {}
    runs = [("per-sequence (cost model)", bin_dir, ["--explain"], "auto"),
            ("absorbed only", bin_dir, ["--mla-naive-min-tokens=" + NEVER], "absorbed")]
    ref = "per-sequence, --ref-build"
    if args.ref_build:
        runs.append((ref, os.path.join(args.ref_build, "bin"), [], "auto-ref"))
    for name, bins, extra, stem in runs:
        path = os.path.join(work, stem + ".dsa")
        r = subprocess.run([os.path.join(bins, "ds-compile"), ckpt, "-o", path, *extra],
                           check=True, capture_output=True, text=True, timeout=1200)
        for line in r.stderr.splitlines():
            if "@ragged_step" in line and "chooses" in line:
                print(line.split("chooses")[1].split("(")[0].strip(), file=sys.stderr)
        arts[name] = (bins, path)
    prompt = [2 + (7 * i) % 1000 for i in range(args.prompt)]
    samples = {name: [] for name in arts}
    for _ in range(args.repeat):
        for name, (bins, path) in arts.items():
            samples[name].append(prefill_tok_s(bins, path, ckpt, prompt, work))
    rates = {name: max(v) for name, v in samples.items()}
    print(f"| {args.prompt}-token prefill, {args.layers} layers | tok/s |")
    print("|---|---|")
    for name, rate in rates.items():
        print(f"| {name} | {rate:.1f} |")
    a, b = rates["per-sequence (cost model)"], rates["absorbed only"]
    print(f"\nper-sequence / absorbed only: {a / b:.2f}x")
    if args.ref_build:
        print(f"per-sequence, this build / --ref-build: {a / rates[ref]:.2f}x")


if __name__ == "__main__":
    main()
