#!/usr/bin/env python3
"""The latent cache against per-head K/V at the same KV byte budgets.

One model compiled twice: `--kv-layout=latent` (the engine's pages hold
kv_lora_rank + qk_rope_head_dim values per token per layer) and
`--kv-layout=per-head` (every head's K = qk_nope + qk_rope and V =
v_head_dim values, what an MHA deployment caches; MLA's naive form over
those pages). For each budget, the same random workload as
bench/throughput.py (all prompts submitted at once, exactly --output-len
tokens each) runs through dsmlir.Engine with each artifact. Reported per
budget and layout: pages, the sequences of full length that fit at once,
output tok/s, TPOT mean, mean tokens per step; then the capacity ratio
(bytes per token) and the throughput ratio per budget; and a plot of
output tok/s against the budget (PNG).

The model (--heads etc.) has DeepSeek-V2-Lite's attention shapes (16 heads
of 128 + 64 query/key, 128 value, kv_lora_rank 512: 8.9x fewer bytes per
token for the latent) on a small body so that a run fits in minutes on a
CPU; budgets are in units of one full-length request's per-head pages.

    /usr/bin/python3 bench/kv_layout.py --build build [--budgets 1,2,4,8,16]
"""
import argparse
import os
import statistics
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "test", "tools"))
from ds_testing import checkpoint  # noqa: E402

PAGE = 64
LAYOUTS = ("latent", "per-head")


def model_config(args):
    """V2-Lite's attention (no q_lora) on a small MoE body."""
    cfg = checkpoint.PRESETS["tiny_v2_lite"]()
    cfg.update(vocab_size=512, hidden_size=args.hidden, intermediate_size=2 * args.hidden,
               moe_intermediate_size=args.hidden // 2, num_hidden_layers=args.layers,
               num_attention_heads=args.heads, kv_lora_rank=512, qk_nope_head_dim=128,
               qk_rope_head_dim=64, v_head_dim=128, n_routed_experts=16,
               num_experts_per_tok=4, n_shared_experts=1,
               max_position_embeddings=args.input_len + args.output_len)
    return cfg


def run(dsmlir, art, ckpt, prompts, args, budget):
    eng = dsmlir.Engine(art, ckpt, kv_cache_bytes=budget, max_num_seqs=256,
                        max_num_batched_tokens=args.max_num_batched_tokens,
                        max_model_len=args.input_len + args.output_len,
                        enable_prefix_caching=False)
    t0 = time.monotonic()
    times = [[] for _ in prompts]
    for ev in eng.stream(prompts, max_new_tokens=args.output_len, ignore_eos=True):
        if ev["token"] is not None:
            times[ev["prompt_index"]].append(ev["time"])
    elapsed = time.monotonic() - t0
    out = sum(len(t) for t in times)
    tpot = [(t[-1] - t[0]) / (len(t) - 1) for t in times if len(t) > 1]
    return {"tok_s": out / elapsed, "tpot_ms": 1e3 * statistics.mean(tpot),
            "elapsed": elapsed, "stats": eng.stats()}


def plot(path, budgets_mib, rows):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6, 4))
    for layout, marker in zip(LAYOUTS, "os"):
        ax.plot(budgets_mib, [r[layout]["tok_s"] for r in rows], marker=marker,
                label=f"{layout} cache")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("KV cache budget (MiB)")
    ax.set_ylabel("output tokens/s")
    ax.set_title("Same model, same budget: latent vs per-head K/V")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--budgets", default="1,2,4,8,16",
                    help="KV budgets in full-length requests of the per-head layout")
    ap.add_argument("--input-len", type=int, default=32)
    ap.add_argument("--output-len", type=int, default=32)
    ap.add_argument("--num-prompts", type=int, default=32)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-num-batched-tokens", type=int, default=512)
    ap.add_argument("--heads", type=int, default=16)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=2,
                    help="runs of each (budget, layout), alternating layouts; the "
                         "fastest counts (the machine is shared)")
    ap.add_argument("--plot", default=os.path.join(ROOT, "bench", "kv_layout.png"))
    ap.add_argument("--work", default=None)
    args = ap.parse_args()

    sys.path.insert(0, os.path.join(args.build, "python"))
    import dsmlir

    work = args.work or tempfile.mkdtemp(prefix="ds-bench-kv-layout-")
    ckpt = os.path.join(work, "ckpt")
    cfg = model_config(args)
    checkpoint.write_checkpoint(ckpt, cfg, seed=args.seed)
    arts, per_token = {}, {}
    for layout in LAYOUTS:
        arts[layout] = dsmlir.compile(ckpt, os.path.join(work, f"{layout}.dsa"),
                                      kv_layout=layout)
        per_token[layout] = dsmlir.Model(arts[layout], ckpt).info["kv_cache_bytes_per_token"]

    rng = np.random.default_rng(args.seed)
    prompts = [[int(t) for t in rng.integers(2, cfg["vocab_size"], args.input_len)]
               for _ in range(args.num_prompts)]
    need = args.input_len + args.output_len
    pages_per_req = -(-need // PAGE)
    request_bytes = pages_per_req * PAGE * per_token["per-head"]
    budgets = [int(b) * request_bytes for b in args.budgets.split(",")]

    print(f"model: {cfg['num_hidden_layers']} layers, {cfg['num_attention_heads']} heads, "
          f"kv_lora_rank {cfg['kv_lora_rank']}, qk {cfg['qk_nope_head_dim']}+"
          f"{cfg['qk_rope_head_dim']}, v {cfg['v_head_dim']}, hidden {cfg['hidden_size']}, "
          f"{cfg['n_routed_experts']} experts (top {cfg['num_experts_per_tok']}), f32")
    print(f"workload: {args.num_prompts} prompts x {args.input_len} in / {args.output_len} out "
          f"({pages_per_req} pages of {PAGE} tokens a request), seed {args.seed}, "
          f"max_num_batched_tokens {args.max_num_batched_tokens}, prefix caching off")
    for layout in LAYOUTS:
        print(f"{layout:9s} cache: {per_token[layout]} bytes per token")
    print()
    print(f"{'budget':>10} | {'layout':9s} {'pages':>6} {'seqs fit':>8} {'tok/step':>8} "
          f"{'preempt':>7} {'out tok/s':>9} {'TPOT ms':>8} {'time s':>7}")
    rows = []
    for budget in budgets:
        row = {}
        runs = {layout: [] for layout in LAYOUTS}
        for _ in range(args.repeat):
            for layout in LAYOUTS:
                runs[layout].append(run(dsmlir, arts[layout], ckpt, prompts, args, budget))
        for layout in LAYOUTS:
            r = max(runs[layout], key=lambda x: x["tok_s"])
            s = r["stats"]
            r["fit"] = min(args.num_prompts, s["pages_total"] // pages_per_req)
            row[layout] = r
            print(f"{budget / 2**20:7.2f} MiB | {layout:9s} {s['pages_total']:6d} "
                  f"{s['pages_total'] // pages_per_req:8d} {s['tokens_per_step']:8.1f} "
                  f"{s['preemptions']:7d} {r['tok_s']:9.1f} {r['tpot_ms']:8.1f} "
                  f"{r['elapsed']:7.2f}", flush=True)
        rows.append(row)
    print()
    cap = per_token["per-head"] / per_token["latent"]
    print(f"capacity ratio (latent / per-head sequences at one budget): {cap:.2f}x "
          f"({per_token['per-head']} / {per_token['latent']} bytes per token)")
    ratios = [r["latent"]["tok_s"] / r["per-head"]["tok_s"] for r in rows]
    for budget, row, ratio in zip(budgets, rows, ratios):
        print(f"throughput ratio at {budget / 2**20:6.2f} MiB: {ratio:.2f}x "
              f"(latent {row['latent']['fit']} seqs, per-head {row['per-head']['fit']})")
    print(f"throughput ratio, geometric mean over the budgets: "
          f"{float(np.exp(np.mean(np.log(ratios)))):.2f}x")
    if args.plot:
        plot(args.plot, [b / 2**20 for b in budgets], rows)
        print(f"plot: {os.path.relpath(args.plot, os.getcwd())}")


if __name__ == "__main__":
    main()
