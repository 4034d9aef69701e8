#!/usr/bin/env python3
"""FP8 latent cache (ds-compile --kv-dtype fp8) against the f32 and bf16
caches, in one run:

- accuracy: a greedy generation of --new-tokens tokens with the f32 cache,
  then the same tokens teacher-forced through each cache dtype; per
  generated position the relative L2 error of the logits against the f32
  cache's (||l - l_f32|| / ||l_f32||) and whether the top-1 token agrees;
  at the positions where the top-1 differs, the f32 cache's own margin
  between its first and second token (a near-tie flips); plus free-running
  greedy generations from --free-runs prompts with each dtype: the first
  position where the tokens leave the f32 cache's (after it the contexts
  differ, so later tokens are not comparable);
- capacity: bytes per token per the runtime (dsrt_model_info), the engine's
  pages at a fixed --kv-cache-bytes and how many --seq-len-token sequences
  that holds; the DeepSeek-V3 shape (61 layers, latent 512, rope 64) from
  the same layout arithmetic;
- decode tok/s at the end of the generation (the machine is shared: a
  ratio, not a figure to quote).

The model is generated (random weights, V3 style) with V3's attention
shape: kv_lora_rank 512, qk_rope_head_dim 64, so a cache row is exactly
V3's (656 bytes per layer in fp8).

    /usr/bin/python3 bench/fp8_cache.py --build build
"""
import argparse
import os
import sys
import tempfile

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "test", "tools"))
from ds_testing import checkpoint  # noqa: E402

V3_LAYERS, V3_LATENT, V3_ROPE = 61, 512, 64


def row_bytes(dtype, latent, rope, group=128):
    if dtype == "fp8":
        return latent + 4 * (latent // group) + 2 * rope
    return (latent + rope) * (4 if dtype == "f32" else 2)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--prompt-len", type=int, default=16)
    ap.add_argument("--new-tokens", type=int, default=256)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--kv-cache-bytes", type=int, default=256 << 20)
    ap.add_argument("--seq-len", type=int, default=1024)
    ap.add_argument("--free-runs", type=int, default=4,
                    help="prompts for the free-running comparison")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--work", default=None)
    args = ap.parse_args()
    sys.path.insert(0, os.path.join(args.build, "python"))
    import dsmlir

    cfg = checkpoint._base(
        vocab_size=4096, hidden_size=256, intermediate_size=512, moe_intermediate_size=64,
        num_hidden_layers=args.layers, num_attention_heads=4, q_lora_rank=96,
        kv_lora_rank=V3_LATENT, qk_nope_head_dim=32, qk_rope_head_dim=V3_ROPE, v_head_dim=32,
        n_routed_experts=16, num_experts_per_tok=4, n_group=4, topk_group=2,
        max_position_embeddings=args.seq_len,
        rope_scaling={"type": "yarn", "factor": 4.0, "original_max_position_embeddings": 256,
                      "beta_fast": 32, "beta_slow": 1, "mscale": 1.0, "mscale_all_dim": 1.0})
    work = args.work or tempfile.mkdtemp(prefix="ds-fp8-cache-")
    ckpt = os.path.join(work, "ckpt")
    if not os.path.exists(os.path.join(ckpt, "config.json")):
        checkpoint.write_checkpoint(ckpt, cfg, seed=args.seed)
    models = {}
    for dtype in ("f32", "bf16", "fp8"):
        art = os.path.join(work, f"{dtype}.dsa")
        if not os.path.exists(art):
            dsmlir.compile(ckpt, art, dtype=dtype)
        models[dtype] = (art, dsmlir.Model(art, ckpt))

    rng = np.random.default_rng(args.seed + 1)
    prompts = [[int(t) for t in rng.integers(2, cfg["vocab_size"], args.prompt_len)]
               for _ in range(max(args.free_runs, 1))]
    cap = args.prompt_len + args.new_tokens + 1
    p = args.prompt_len
    runs = {d: [m.generate(q, args.new_tokens, capacity=cap) for q in prompts]
            for d, (_, m) in models.items()}
    gen = runs["f32"][0]["tokens"]
    logits = {}
    for dtype, (_, m) in models.items():
        out = m.generate(prompts[0], force_tokens=gen, capacity=cap)
        logits[dtype] = out["logits"][p - 1:p - 1 + len(gen)]

    def first_diff(a, b):
        return next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))

    ref = logits["f32"]
    top2 = np.sort(ref, axis=1)[:, -2:]
    margin = top2[:, 1] - top2[:, 0]
    print(f"model: V3-style, {args.layers} layers, latent {V3_LATENT}, rope {V3_ROPE}, "
          f"random weights; prompt {p} tokens, {len(gen)} generated (greedy, f32 cache); "
          f"f32 top-2 margin median {np.median(margin):.3f}\n")
    print("| cache | rel. L2 of logits vs f32 cache: mean / max | top-1 agreement "
          "(teacher-forced) | largest f32 margin where top-1 differs | free runs: first "
          "position leaving the f32 tokens | decode tok/s (ratio to f32) |")
    print("|---|---|---|---|---|---|")
    for dtype in ("f32", "bf16", "fp8"):
        l = logits[dtype]
        rel = np.linalg.norm(l - ref, axis=1) / np.linalg.norm(ref, axis=1)
        agree = l.argmax(1) == ref.argmax(1)
        worst = f"{margin[~agree].max():.3f}" if (~agree).any() else "-"
        firsts = [first_diff(r["tokens"], f["tokens"])
                  for r, f in zip(runs[dtype], runs["f32"])]
        speed = np.mean([r["stats"]["decode_tokens_per_second"] for r in runs[dtype]])
        base = np.mean([r["stats"]["decode_tokens_per_second"] for r in runs["f32"]])
        print(f"| {dtype} | {rel.mean():.2e} / {rel.max():.2e} | {agree.mean() * 100:.1f}% "
              f"({int(agree.sum())}/{len(gen)}) | {worst} | {firsts} | {speed:.0f} "
              f"({speed / base:.2f}x) |")

    print(f"\ncapacity at kv_cache_bytes = {args.kv_cache_bytes} "
          f"({args.kv_cache_bytes / 2**20:.0f} MiB), sequences of {args.seq_len} tokens:\n")
    print("| cache | bytes/token (this model, runtime) | engine pages (64 tokens) | "
          f"{args.seq_len}-token sequences | V3 bytes/token (61 layers) | vs f32 |")
    print("|---|---|---|---|---|---|")
    per_token = {d: m.info["kv_cache_bytes_per_token"] for d, (_, m) in models.items()}
    for dtype, (art, _) in models.items():
        eng = dsmlir.Engine(art, ckpt, kv_cache_bytes=args.kv_cache_bytes)
        pages = eng.stats()["pages_total"]
        expect = args.layers * row_bytes(dtype, V3_LATENT, V3_ROPE)
        if per_token[dtype] != expect:
            sys.exit(f"FAIL: {dtype} cache reports {per_token[dtype]} bytes/token, "
                     f"the layout says {expect}")
        v3 = V3_LAYERS * row_bytes(dtype, V3_LATENT, V3_ROPE)
        print(f"| {dtype} | {per_token[dtype]} | {pages} | {pages * 64 // args.seq_len} | "
              f"{v3} | {per_token['f32'] / per_token[dtype]:.2f}x |")


if __name__ == "__main__":
    main()
