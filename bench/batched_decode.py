#!/usr/bin/env python3
"""Batched decode against its roofline, in one run (issue #13).

One random V3-shaped bf16 checkpoint of at least 0.5 GB (bench/cpu_kernels.py's
model with 64 routed experts; with --dtype fp8 the same model in FP8, half the
bytes) runs through dsmlir.Engine at batch sizes 1..64: B prompts of
--prompt tokens are admitted together, then decode --steps tokens each
(ignore_eos). A decode step's time is the median gap between a request's
consecutive tokens once every request decodes (ITL); tokens/s = B / step.

The bound is max(bytes read per step / read bandwidth, FLOPs per step / GEMM
rate), both measured in the same run by ds-cpu-bench (a multi-threaded
read-only stream over 1 GiB; a 256 x 4096 x 4096 GEMM in the checkpoint's
dtype through the runtime's own kernels):
- bytes per step: every tensor of the file once, except the routed experts
  (the expected number of distinct experts B tokens touch per layer,
  E (1 - (1 - k/E)^B), uniform routing) and the embedding (B rows); plus
  the latent cache every sequence reads (B x context x bytes per token);
- FLOPs per step: B x (2 x the GEMM weights a token multiplies, routed
  experts at k of E, lm_head included) + attention over the context in the
  absorbed form (per head: q_latent . c, q_rope . k_pe and the weighted sum
  of c).

Prints a Markdown table: B, step ms, tok/s, bound tok/s, share of the bound,
which limit binds, and step time relative to B = 1 (how much slower a step
gets while it carries B times the tokens).

    /usr/bin/python3 bench/batched_decode.py [--build build] [--work DIR] [--dtype fp8]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "test", "tools"))
sys.path.insert(0, os.path.join(ROOT, "bench"))
from ds_testing import checkpoint  # noqa: E402
import cpu_kernels  # noqa: E402  (the model and the tensor-size helpers)


def step_bytes(cfg, tensors, batch, ctx, cache_bytes_per_token):
    E, k = cfg["n_routed_experts"], cfg["num_experts_per_tok"]
    touched = E * (1.0 - (1.0 - k / E) ** batch)
    total = 0.0
    for name, (_, shape, nbytes) in tensors.items():
        if name == "model.embed_tokens.weight":
            nbytes = nbytes / shape[0] * batch
        elif ".experts." in name and ".shared_experts." not in name:
            nbytes = nbytes * touched / E
        total += nbytes
    return total + batch * ctx * cache_bytes_per_token


def step_flops(cfg, shapes, batch, ctx):
    gemm = cpu_kernels.gemm_flops_per_token(cfg, shapes, 1)
    heads = cfg["num_attention_heads"]
    width = cfg["kv_lora_rank"] + cfg["qk_rope_head_dim"]
    attn = cfg["num_hidden_layers"] * heads * ctx * 2 * (width + cfg["kv_lora_rank"])
    return batch * (gemm + attn)


def measure(dsmlir, art, ckpt, cfg, batch, prompt_len, steps, seed):
    import numpy as np
    rng = np.random.default_rng(seed + batch)
    prompts = [[int(t) for t in rng.integers(0, cfg["vocab_size"], prompt_len)]
               for _ in range(batch)]
    need = prompt_len + steps
    eng = dsmlir.Engine(art, ckpt, num_pages=batch * -(-need // 64) + 1,
                        max_num_seqs=batch, max_num_batched_tokens=max(2048, batch * prompt_len),
                        max_model_len=need, enable_prefix_caching=False)
    times = [[] for _ in prompts]
    for ev in eng.stream(prompts, max_new_tokens=steps, ignore_eos=True):
        if ev["token"] is not None:
            times[ev["prompt_index"]].append(ev["time"])
    # Gaps once every request has its first token: pure decode steps.
    start = max(t[0] for t in times)
    gaps = [b - a for t in times for a, b in zip(t, t[1:]) if a >= start]
    return statistics.median(gaps), eng.stats()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--work", default=None)
    ap.add_argument("--prompt", type=int, default=32)
    ap.add_argument("--steps", type=int, default=12)
    ap.add_argument("--batches", default="1,2,4,8,16,32,64")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--dtype", choices=["bf16", "fp8"], default="bf16")
    args = ap.parse_args()
    sys.path.insert(0, os.path.join(args.build, "python"))
    import dsmlir

    bin_dir = os.path.join(args.build, "bin")
    work = args.work or tempfile.mkdtemp(prefix="ds-batched-decode-")
    # bench/cpu_kernels.py's model with 64 experts instead of 32: 0.56 GB in
    # bf16, and a batch has more distinct experts to share a step's read.
    cfg = cpu_kernels.config()
    cfg.update(n_routed_experts=64)
    ckpt = os.path.join(work, f"ckpt-{args.dtype}")
    if not os.path.exists(os.path.join(ckpt, "config.json")):
        checkpoint.write_checkpoint(ckpt, cfg, dtype=args.dtype, seed=2)
    art = os.path.join(work, f"model-{args.dtype}.dsa")
    if not os.path.exists(art):
        dsmlir.compile(ckpt, art)
    tensors = cpu_kernels.tensor_bytes(ckpt)
    shapes = checkpoint.tensor_shapes(cfg)
    file_bytes = sum(b for _, _, b in tensors.values())
    if file_bytes < 0.5e9 / (2 if args.dtype == "fp8" else 1):
        sys.exit(f"batched_decode: the checkpoint is {file_bytes / 1e9:.2f} GB, under 0.5 GB")
    per_token = dsmlir.Model(art, ckpt).info["kv_cache_bytes_per_token"]

    gemm = cpu_kernels.probe(bin_dir, "gemm", 256, 4096, 4096, 3)
    bw = cpu_kernels.read_stream(bin_dir)
    rate = gemm[f"ds_{args.dtype}_gflops"] * 1e9
    rows = []
    for batch in [int(b) for b in args.batches.split(",")]:
        step, stats = measure(dsmlir, art, ckpt, cfg, batch, args.prompt, args.steps, args.seed)
        ctx = args.prompt + args.steps / 2
        nbytes = step_bytes(cfg, tensors, batch, ctx, per_token)
        flops = step_flops(cfg, shapes, batch, ctx)
        t_mem, t_flop = nbytes / bw, flops / rate
        rows.append(dict(batch=batch, step=step, bytes=nbytes, flops=flops, t_mem=t_mem,
                         t_flop=t_flop, tokens_per_step=stats["tokens_per_step"]))
        print(f"  batch {batch}: step {step * 1e3:.1f} ms", file=sys.stderr, flush=True)
    bw_after = cpu_kernels.read_stream(bin_dir)
    best_bw = max(bw, bw_after)  # a shared machine may only make the roofline too low

    print(f"model: {file_bytes / 2**20:.0f} MiB of {args.dtype} tensors, {cfg['num_hidden_layers']} "
          f"layers, {cfg['n_routed_experts']} experts (top {cfg['num_experts_per_tok']}); "
          f"prompt {args.prompt}, {args.steps} decode steps per batch")
    print(f"read stream {bw / 1e9:.1f} GB/s before, {bw_after / 1e9:.1f} after; {args.dtype} GEMM "
          f"{rate / 1e9:.1f} GFLOP/s ({gemm['threads']} threads, {gemm['isa']})")
    print()
    print("| batch | step ms | tok/s | bound tok/s | of bound | bound by | MB read/step "
          "| GFLOP/step | step vs B=1 |")
    print("|---|---|---|---|---|---|---|---|---|")
    base = rows[0]["step"]
    for r in rows:
        t_mem = r["bytes"] / best_bw
        bound = max(t_mem, r["t_flop"])
        kind = "memory" if t_mem >= r["t_flop"] else "compute"
        print(f"| {r['batch']} | {r['step'] * 1e3:.1f} | {r['batch'] / r['step']:.1f} "
              f"| {r['batch'] / bound:.1f} | {bound / r['step']:.0%} | {kind} "
              f"| {r['bytes'] / 1e6:.0f} | {r['flops'] / 1e9:.2f} "
              f"| {r['step'] / base:.2f}x |")
    with open(os.path.join(work, "batched_decode.json"), "w") as f:
        json.dump({"gemm": gemm, "read_gbps": [bw / 1e9, bw_after / 1e9], "rows": rows}, f)


if __name__ == "__main__":
    main()
