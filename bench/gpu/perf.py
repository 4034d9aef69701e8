"""bench/gpu/run.py's performance stages: decode attention over the
latent cache by context, batch-1 decode end to end against its roofline and
transformers, and batched decode through the serving engine (stages 5-7 of
run.py's list)."""
import json
import os
import time

import numpy as np

import batch as batching
from common import ds_run, log
from ds_testing import checkpoint

CONTEXTS = [1024, 2048, 4096, 8192, 16384, 32768]


def decode_seconds(artifact, ckpt, dsrun, start, steps, scratch):
    stats = os.path.join(scratch, "stats.json")
    ds_run([artifact, "--weights", ckpt, "--device", "cuda", "--prompt-tokens", "5",
            "--max-new-tokens", steps, "--start-position", start,
            "--max-context", start + steps + 8, "--stats-json", stats], dsrun)
    with open(stats) as f:
        s = json.load(f)
    return s["decode_seconds"] / max(s["decode_tokens"], 1), s["kv_cache_bytes_per_token"]


def attention(case, work, scratch, dsrun, bw):
    ckpt = os.path.join(scratch, case["name"])
    checkpoint.write_checkpoint(ckpt, case["config"], dtype="bf16", seed=0)
    artifact = os.path.join(work, case["name"] + ".dsa")
    base, token_bytes = decode_seconds(artifact, ckpt, dsrun, 0, 64, scratch)
    kv = case.get("kv", "bf16")
    # ds-run's own count: every layer's row of one token.
    row_bytes = token_bytes // case["config"]["num_hidden_layers"]
    out = []
    for ctx in CONTEXTS:
        t = decode_seconds(artifact, ckpt, dsrun, ctx, 64, scratch)[0]
        attn = max(t - base, 1e-9)
        bytes_read = ctx * row_bytes  # one layer's cache rows
        out.append({"heads": case["heads"], "kv": kv, "context": ctx, "step_ms": t * 1e3,
                    "attention_ms": attn * 1e3, "GB_per_s": bytes_read / attn / 1e9,
                    "of_copy_bw": bytes_read / attn / bw})
    return out


def active_params(cfg):
    """Parameters one decode token reads: attention + dense MLPs, the shared
    and top-k routed experts of MoE layers, the router, norms, lm_head (the
    embedding is one row)."""
    k = cfg["num_experts_per_tok"]
    total = 0
    for name, (shape, kind) in checkpoint.tensor_shapes(cfg).items():
        size = int(np.prod(shape))
        if "embed_tokens" in name:
            size = shape[-1]
        elif ".experts." in name and int(name.split(".experts.")[1].split(".")[0]) >= k:
            size = 0  # k routed experts per MoE layer (which ones does not matter)
        total += size
    return total


def write_random_bf16(cfg, out, seed=0):
    """A random bf16 checkpoint of `cfg`, drawn on the GPU with torch and
    written shard by shard (numpy would take minutes at this size)."""
    import torch
    from safetensors.torch import save_file
    if os.path.exists(os.path.join(out, "model.safetensors.index.json")):
        return
    os.makedirs(out, exist_ok=True)
    g = torch.Generator(device="cuda").manual_seed(seed)
    shard, shard_bytes, index, n = {}, 0, {}, 0

    def flush():
        nonlocal shard, shard_bytes, n
        if shard:
            name = f"model-{n:05d}.safetensors"
            save_file(shard, os.path.join(out, name), metadata={"format": "pt"})
            for t in shard:
                index[t] = name
            shard, shard_bytes, n = {}, 0, n + 1

    for name, (shape, kind) in checkpoint.tensor_shapes(cfg).items():
        w = torch.randn(shape, generator=g, device="cuda", dtype=torch.float32)
        if kind == "norm":
            w = 1.0 + 0.1 * w
        elif kind == "bias":
            w = 0.1 * w
        elif kind != "embed":
            w = w / float(np.sqrt(shape[-1]))
        dt = torch.float32 if kind == "bias" else torch.bfloat16
        shard[name] = w.to(dt).cpu().contiguous()
        shard_bytes += shard[name].numel() * shard[name].element_size()
        if shard_bytes > (2 << 30):
            flush()
    flush()
    cfg = dict(cfg, torch_dtype="bfloat16")
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(cfg, f, indent=1)
    with open(os.path.join(out, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {}, "weight_map": index}, f)


def hf_decode_tokens_per_second(ckpt, steps=64):
    import torch
    import transformers
    model = transformers.AutoModelForCausalLM.from_pretrained(
        ckpt, torch_dtype=torch.bfloat16, device_map="cuda")
    ids = torch.tensor([[5, 6, 7, 8, 9, 10, 11, 12]], device="cuda")
    model.generate(ids, max_new_tokens=4, do_sample=False)  # warm-up
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    out = model.generate(ids, max_new_tokens=steps, min_new_tokens=steps, do_sample=False)
    torch.cuda.synchronize()
    dt = time.perf_counter() - t0
    return (out.shape[1] - ids.shape[1]) / dt, transformers.__version__


def e2e(cases, args, bw):
    """Batch-1 decode of a random V2-Lite-sized bf16 checkpoint: ds against
    the roofline and against transformers on the same weights."""
    cfg = cases["e2e"]["config"]
    ckpt = os.path.join(args.scratch, "v2lite-ckpt")
    t0 = time.time()
    write_random_bf16(cfg, ckpt)
    log(f"random V2-Lite-sized bf16 checkpoint: {time.time() - t0:.0f} s")
    dsrun = os.path.join(args.scratch, "runtime", "bin", "ds-run")
    t, cache = decode_seconds(os.path.join(args.work, "v2lite.dsa"), ckpt, dsrun, 0, 64,
                              args.scratch)
    params = active_params(cfg)
    roof_bf16 = bw / (params * 2 + cache)
    roof_f32 = bw / (params * 4 + cache)
    out = {"tokens_per_s": 1 / t, "active_params": params,
           "roofline_bf16_weights": roof_bf16, "roofline_f32_weights": roof_f32}
    log(f"v2lite decode: {1 / t:.1f} tok/s; roofline {roof_bf16:.0f} tok/s with bf16 "
        f"weights ({100 / t / roof_bf16:.0f}%), {roof_f32:.0f} tok/s with f32 weights "
        f"({100 / t / roof_f32:.0f}%)")
    try:
        hf, ver = hf_decode_tokens_per_second(ckpt)
        out.update(hf_tokens_per_s=hf, transformers=ver)
        log(f"transformers {ver}: {hf:.1f} tok/s; ds / transformers = {1 / t / hf:.2f}")
    except Exception as e:
        out["hf_error"] = str(e).splitlines()[0] if str(e) else type(e).__name__
        log(f"transformers: not run ({out['hf_error']})")
    return out


BATCHES = [1, 2, 4, 8, 16, 32, 64]


def batched_roofline(cfg, batch, context, bw):
    """Decode tokens/s one batched step of `batch` tokens could reach: the
    bf16 weights it must read (dense parts once, the distinct routed experts
    `batch` tokens touch per MoE layer) plus each token's cache rows, at the
    copy bandwidth."""
    k, experts = cfg["num_experts_per_tok"], cfg["n_routed_experts"]
    expert = 3 * cfg["hidden_size"] * cfg["moe_intermediate_size"]
    moe_layers = sum(1 for layer in range(cfg["num_hidden_layers"])
                     if layer >= cfg.get("first_k_dense_replace", 0)
                     and layer % cfg.get("moe_layer_freq", 1) == 0)
    dense = active_params(cfg) - k * expert * moe_layers
    touched = batching.expected_experts(experts, k, batch) * expert * moe_layers
    cache = batch * context * cfg["num_hidden_layers"] * (
        cfg["kv_lora_rank"] + cfg["qk_rope_head_dim"]) * 2
    return batch * bw / ((dense + touched) * 2 + cache)


def hf_batched_tokens_per_second(ckpt, batch, steps=16):
    import torch
    import transformers
    model = transformers.AutoModelForCausalLM.from_pretrained(
        ckpt, torch_dtype=torch.bfloat16, device_map="cuda")
    ids = torch.randint(2, 1000, (batch, 8), device="cuda")
    model.generate(ids, max_new_tokens=2, do_sample=False)  # warm-up
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    model.generate(ids, max_new_tokens=steps, min_new_tokens=steps, do_sample=False)
    torch.cuda.synchronize()
    return batch * steps / (time.perf_counter() - t0)


EXECUTORS = {"step": "engine, one @ragged_step per step",
             "session": "engine, one session per request"}


def batched(cfg, artifact, ckpt, libdsrt, device, bw, budget, batches, steps, hf=True,
            executor="session"):
    """Batched decode through the engine; one row per batch size."""
    rt = batching.Runtime(libdsrt)
    model = rt.load(artifact, ckpt, device)
    out = []
    try:
        for b in batches:
            if budget is not None and not budget.allows(
                    f"batched decode ({executor}) batch {b}", 20):
                break
            tps, n = batching.batched_decode(rt, model, b, steps, vocab=cfg["vocab_size"],
                                             executor=executor)
            r = {"batch": b, "executor": executor, "tokens_per_s": tps, "engine_steps": n}
            line = f"batched decode ({EXECUTORS[executor]}) batch {b}: {tps:.1f} tok/s"
            if bw:
                roof = batched_roofline(cfg, b, 8 + steps, bw)
                r.update(roofline_tokens_per_s=roof, of_roofline=tps / roof)
                line += f"; batched roofline {roof:.0f} tok/s ({100 * tps / roof:.1f}%)"
            out.append(r)
            log(line)
    finally:
        rt.lib.dsrt_model_free(model)
    if hf:
        for b in (8, 64):
            if not budget.allows(f"transformers batch {b}", 40):
                break
            try:
                t = hf_batched_tokens_per_second(ckpt, b)
                row = next((r for r in out if r["batch"] == b), None)
                ratio = f"; ds / transformers = {row['tokens_per_s'] / t:.2f}" if row else ""
                log(f"transformers batch {b}: {t:.1f} tok/s{ratio}")
                if row:
                    row["hf_tokens_per_s"] = t
            except Exception as e:
                log(f"transformers batch {b}: not run ({str(e).splitlines()[0] if str(e) else type(e).__name__})")
    return out
